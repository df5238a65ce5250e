// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - the IOVA space user space may map.
 *
 * The usable space is the intersection of the apertures of every domain,
 * minus every reserved region of every attached group (the x86 MSI window,
 * RMRRs, PCI host bridge windows, ...). Regions marked relaxable are left
 * usable, as in-tree does, since the devices needing them tolerate losing
 * them.
 *
 * The list is rebuilt from scratch whenever the set of groups changes
 * instead of being edited in place: attach and detach are rare, the lists
 * are short, and a rebuilt list cannot drift from what the groups report.
 * A new list is computed aside and only swapped in once the attach or
 * detach that needs it has succeeded.
 */
#include <linux/iommu.h>
#include <linux/slab.h>

#include "vfio_iommu_dirty.h"

/**
 * vid_iova_free() - free a list of &struct vid_iova_range
 * @ranges: list head; left empty
 */
void vid_iova_free(struct list_head *ranges)
{
	struct vid_iova_range *r, *rn;

	list_for_each_entry_safe(r, rn, ranges, node) {
		list_del(&r->node);
		kfree(r);
	}
}

static int vid_iova_add(struct list_head *before, dma_addr_t start,
			dma_addr_t last)
{
	struct vid_iova_range *r = kmalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);

	if (!r)
		return -ENOMEM;
	r->start = start;
	r->last = last;
	list_add_tail(&r->node, before);
	return 0;
}

/* Remove [@start, @last] from a sorted list of disjoint ranges. */
static int vid_iova_subtract(struct list_head *ranges, dma_addr_t start,
			     dma_addr_t last)
{
	struct vid_iova_range *r, *rn;
	int ret;

	list_for_each_entry_safe(r, rn, ranges, node) {
		if (last < r->start || start > r->last)
			continue;
		if (start > r->start && last < r->last) {
			/* A hole in the middle: keep both sides. */
			ret = vid_iova_add(&rn->node, last + 1, r->last);
			if (ret)
				return ret;
			r->last = start - 1;
		} else if (start > r->start) {
			r->last = start - 1;
		} else if (last < r->last) {
			r->start = last + 1;
		} else {
			list_del(&r->node);
			kfree(r);
		}
	}
	return 0;
}

static void vid_aperture_clip(struct iommu_domain *domain,
			      dma_addr_t *start, dma_addr_t *last)
{
	*start = max_t(dma_addr_t, *start, domain->geometry.aperture_start);
	*last = min_t(dma_addr_t, *last, domain->geometry.aperture_end);
}

/* Reserved regions of every group of @c plus @extra (may be NULL). */
static int vid_collect_resv(struct vid_container *c, struct iommu_group *extra,
			    struct list_head *resv)
{
	struct vid_domain *d;
	struct vid_group *g;
	int ret;

	list_for_each_entry(d, &c->domains, node) {
		list_for_each_entry(g, &d->groups, node) {
			ret = iommu_get_group_resv_regions(g->iommu_group,
							   resv);
			if (ret)
				return ret;
		}
	}
	return extra ? iommu_get_group_resv_regions(extra, resv) : 0;
}

static void vid_resv_free(struct list_head *resv)
{
	struct iommu_resv_region *r, *rn;

	list_for_each_entry_safe(r, rn, resv, list) {
		list_del(&r->list);
		kfree(r);
	}
}

/**
 * vid_iova_build() - compute the usable IOVA ranges of a container
 * @c: container, locked
 * @extra_domain: a domain about to join, or NULL
 * @extra_group: a group about to join, or NULL
 * @out: empty list head; receives sorted, disjoint &struct vid_iova_range
 *
 * Return: 0, -EINVAL if the apertures do not intersect, or -ENOMEM. On
 * error @out is left empty.
 */
int vid_iova_build(struct vid_container *c, struct vid_domain *extra_domain,
		   struct iommu_group *extra_group, struct list_head *out)
{
	dma_addr_t start = 0, last = ~(dma_addr_t)0;
	struct iommu_resv_region *region;
	struct vid_domain *d;
	LIST_HEAD(resv);
	int ret;

	list_for_each_entry(d, &c->domains, node)
		vid_aperture_clip(d->domain, &start, &last);
	if (extra_domain)
		vid_aperture_clip(extra_domain->domain, &start, &last);
	if (start > last)
		return -EINVAL;

	ret = vid_iova_add(out, start, last);
	if (!ret)
		ret = vid_collect_resv(c, extra_group, &resv);
	list_for_each_entry(region, &resv, list) {
		if (ret)
			break;
		if (region->type == IOMMU_RESV_DIRECT_RELAXABLE)
			continue;
		ret = vid_iova_subtract(out, region->start,
					region->start + region->length - 1);
	}
	vid_resv_free(&resv);
	if (ret)
		vid_iova_free(out);
	return ret;
}

/**
 * vid_group_sw_msi() - the software-managed MSI window a group needs
 * @iommu_group: the group attaching to a new domain
 * @base: set to the window's base when there is one
 *
 * Only the attaching group's own regions count, and a hardware MSI region
 * wins over a software one: an IOMMU driver that reports both (some SMMU
 * set-ups) has its MSIs translated already, and an MSI cookie would break
 * them. This is in-tree's rule.
 *
 * Return: true if @iommu_group needs a software MSI window at *@base.
 */
bool vid_group_sw_msi(struct iommu_group *iommu_group, phys_addr_t *base)
{
	struct iommu_resv_region *region;
	bool sw = false, hw = false;
	LIST_HEAD(resv);

	/* Without the list (no memory) there is no window to set up. */
	if (iommu_get_group_resv_regions(iommu_group, &resv))
		goto out;
	list_for_each_entry(region, &resv, list) {
		if (region->type == IOMMU_RESV_MSI)
			hw = true;
		if (region->type == IOMMU_RESV_SW_MSI && !sw) {
			*base = region->start;
			sw = true;
		}
	}
out:
	vid_resv_free(&resv);
	return sw && !hw;
}

/**
 * vid_iova_allows() - is a range inside one usable IOVA range?
 * @ranges: list of &struct vid_iova_range
 * @start: first IOVA
 * @last: last IOVA, >= @start
 *
 * An empty list means no IOMMU constrains the space (a container with only
 * emulated groups), so everything is allowed, as in-tree.
 *
 * Return: true if [@start, @last] may be mapped.
 */
bool vid_iova_allows(struct list_head *ranges, dma_addr_t start,
		     dma_addr_t last)
{
	struct vid_iova_range *r;

	if (list_empty(ranges))
		return true;
	list_for_each_entry(r, ranges, node)
		if (start >= r->start && last <= r->last)
			return true;
	return false;
}

/**
 * vid_iova_fits_mappings() - would every mapping stay usable?
 * @c: container, locked
 * @ranges: candidate usable ranges
 *
 * Return: true if every mapping of @c lies inside @ranges.
 */
bool vid_iova_fits_mappings(struct vid_container *c, struct list_head *ranges)
{
	struct rb_node *n;

	for (n = rb_first(&c->dma_tree); n; n = rb_next(n)) {
		struct vid_dma *dma = rb_entry(n, struct vid_dma, node);

		if (!vid_iova_allows(ranges, dma->iova,
				     dma->iova + dma->size - 1))
			return false;
	}
	return true;
}

/**
 * vid_iova_replace() - install a new list of usable ranges
 * @c: container, locked
 * @ranges: new list; its entries move to @c and it is left empty
 */
void vid_iova_replace(struct vid_container *c, struct list_head *ranges)
{
	vid_iova_free(&c->iova_ranges);
	list_splice_init(ranges, &c->iova_ranges);
}
