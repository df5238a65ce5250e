// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - groups and IOMMU domains of a container.
 *
 * Each IOMMU-backed group gets a paging domain. A new group first gets a
 * domain of its own, which tells what its IOMMU can do (page sizes, cache
 * coherency enforcement); if an existing domain of the container is of the
 * same kind the group moves there and the new domain is dropped, so groups
 * share page tables whenever the hardware allows it. Otherwise the existing
 * mappings are replayed into the new domain before it joins the container.
 */
#include <linux/iommu.h>
#include <linux/slab.h>

#include "vfio_iommu_dirty.h"

/*
 * Find an attached group. @owner receives its domain, or NULL for an
 * emulated group.
 */
static struct vid_group *vid_find_group(struct vid_container *c,
					struct iommu_group *iommu_group,
					struct vid_domain **owner)
{
	struct vid_domain *d;
	struct vid_group *g;

	list_for_each_entry(g, &c->emulated, node) {
		if (g->iommu_group == iommu_group) {
			if (owner)
				*owner = NULL;
			return g;
		}
	}
	list_for_each_entry(d, &c->domains, node) {
		list_for_each_entry(g, &d->groups, node) {
			if (g->iommu_group == iommu_group) {
				if (owner)
					*owner = d;
				return g;
			}
		}
	}
	return NULL;
}

/*
 * Would the container still have a usable page size with @fresh? Domains
 * that share none cannot serve the same mappings.
 */
static bool vid_pgsizes_compatible(struct vid_container *c,
				   struct vid_domain *fresh)
{
	unsigned long sizes = fresh->domain->pgsize_bitmap;
	struct vid_domain *d;

	list_for_each_entry(d, &c->domains, node)
		sizes &= d->domain->pgsize_bitmap;
	/* Sizes below PAGE_SIZE count as PAGE_SIZE (vid_update_pgsizes). */
	return sizes & PAGE_MASK || sizes & (PAGE_SIZE - 1);
}

/**
 * vid_update_pgsizes() - recompute the container's IOMMU page sizes
 * @c: container, locked
 *
 * The page sizes usable for the whole container are those every domain
 * supports. Pinning works in CPU pages, so an IOMMU able to map smaller
 * pages is presented as mapping PAGE_SIZE, as in-tree does.
 *
 * While dirty tracking is on, the bitmaps have one bit per page of the
 * size fixed at START, so nothing smaller may become usable until STOP:
 * a detach that would lower the smallest size (an IOMMU with a larger
 * granule leaving) keeps sizes below the tracked page out, and new
 * mappings stay aligned to it. Every remaining domain supports that page,
 * since it was common to all domains before, so a usable size is left.
 * vid_dirty_stop() calls this again to let the smaller sizes in.
 */
void vid_update_pgsizes(struct vid_container *c)
{
	struct vid_domain *d;
	u64 sizes = PAGE_MASK;

	if (!list_empty(&c->domains))
		sizes = ULONG_MAX;
	list_for_each_entry(d, &c->domains, node)
		sizes &= d->domain->pgsize_bitmap;
	if (sizes & ~PAGE_MASK)
		sizes = (sizes & PAGE_MASK) | PAGE_SIZE;
	if (c->dirty_tracking)
		sizes &= ~((1ULL << c->dirty_shift) - 1);
	c->pgsize_bitmap = sizes;
}

static int vid_first_dev_alloc(struct device *dev, void *data)
{
	struct iommu_domain **domain = data;

	*domain = vid_paging_domain_alloc(dev);
	return 1;	/* one device is enough to reach the IOMMU driver */
}

/* Allocate a paging domain for the IOMMU that serves @iommu_group. */
static struct iommu_domain *vid_domain_alloc(struct iommu_group *iommu_group)
{
	struct iommu_domain *domain = NULL;

	iommu_group_for_each_dev(iommu_group, &domain, vid_first_dev_alloc);
	return domain ? domain : ERR_PTR(-ENODEV);
}

/*
 * Interrupt isolation: without it a device could raise arbitrary MSIs by
 * DMA. Refuse such a group unless the administrator opted in, with the
 * errno and message in-tree uses.
 */
static int vid_check_msi_isolation(struct iommu_group *iommu_group)
{
	if (vid_allow_unsafe_interrupts || vid_group_msi_isolated(iommu_group))
		return 0;
	pr_warn("No interrupt remapping support. Use the module param \"allow_unsafe_interrupts\" to enable VFIO IOMMU support on this platform\n");
	return -EPERM;
}

/*
 * Move @g from its fresh domain @fresh into an existing domain of the same
 * kind, if one accepts it. With test_domain_per_group set it never moves,
 * so that a test bed with one IOMMU still gets several domains. Return: 1
 * if @g moved, 0 if it is still attached to @fresh, or -errno if it is
 * attached to neither.
 */
static int vid_try_join(struct vid_container *c, struct vid_domain *fresh,
			struct vid_group *g)
{
	struct vid_domain *d;
	int ret;

	if (vid_test_domain_per_group)
		return 0;
	list_for_each_entry(d, &c->domains, node) {
		if (d->domain->ops != fresh->domain->ops ||
		    d->enforce_cc != fresh->enforce_cc)
			continue;
		iommu_detach_group(fresh->domain, g->iommu_group);
		if (!iommu_attach_group(d->domain, g->iommu_group)) {
			list_add(&g->node, &d->groups);
			return 1;
		}
		ret = iommu_attach_group(fresh->domain, g->iommu_group);
		if (ret)
			return ret;
	}
	return 0;
}

/* A fresh domain for @g, attached, with interrupt isolation checked. */
static struct vid_domain *vid_domain_create(struct vid_container *c,
					    struct vid_group *g)
{
	struct vid_domain *fresh;
	int ret;

	fresh = kzalloc(sizeof(*fresh), GFP_KERNEL_ACCOUNT);
	if (!fresh)
		return ERR_PTR(-ENOMEM);
	INIT_LIST_HEAD(&fresh->groups);

	fresh->domain = vid_domain_alloc(g->iommu_group);
	if (IS_ERR(fresh->domain)) {
		ret = PTR_ERR(fresh->domain);
		goto out_free;
	}
	/* Nesting must be asked for before the domain is first attached. */
	if (c->nesting) {
		ret = iommu_enable_nesting(fresh->domain);
		if (ret)
			goto out_domain;
	}
	ret = iommu_attach_group(fresh->domain, g->iommu_group);
	if (ret)
		goto out_domain;
	ret = vid_check_msi_isolation(g->iommu_group);
	if (ret)
		goto out_detach;

	/*
	 * When the IOMMU can block no-snoop DMA, always ask for it: KVM then
	 * need not emulate WBINVD for the guest.
	 */
	if (fresh->domain->ops->enforce_cache_coherency)
		fresh->enforce_cc =
			fresh->domain->ops->enforce_cache_coherency(fresh->domain);
	return fresh;

out_detach:
	iommu_detach_group(fresh->domain, g->iommu_group);
out_domain:
	iommu_domain_free(fresh->domain);
out_free:
	kfree(fresh);
	return ERR_PTR(ret);
}

/*
 * Give @fresh what the container already has: the mappings and, where the
 * IOMMU needs software-managed MSI, the MSI window. Freeing the domain on
 * failure drops whatever was mapped into it.
 */
static int vid_domain_populate(struct vid_container *c,
			       struct vid_domain *fresh, phys_addr_t sw_msi)
{
	int ret;

	if (sw_msi != PHYS_ADDR_MAX) {
		ret = iommu_get_msi_cookie(fresh->domain, sw_msi);
		if (ret && ret != -ENODEV)
			return ret;
	}
	return vid_replay(c, fresh);
}

static int vid_attach_iommu_group(struct vid_container *c,
				  struct vid_group *g)
{
	phys_addr_t sw_msi = PHYS_ADDR_MAX;
	struct vid_domain *fresh;
	LIST_HEAD(ranges);
	int ret;

	fresh = vid_domain_create(c, g);
	if (IS_ERR(fresh))
		return PTR_ERR(fresh);

	ret = -EINVAL;
	if (!vid_pgsizes_compatible(c, fresh))
		goto out_detach;
	/* The new group must not take away IOVA space that is mapped. */
	ret = vid_iova_build(c, fresh, g->iommu_group, &ranges);
	if (ret)
		goto out_detach;
	if (!vid_group_sw_msi(g->iommu_group, &sw_msi))
		sw_msi = PHYS_ADDR_MAX;
	if (!vid_iova_fits_mappings(c, &ranges)) {
		ret = -EINVAL;
		goto out_detach;
	}

	ret = vid_try_join(c, fresh, g);
	if (ret < 0)
		goto out_domain;
	if (ret) {
		iommu_domain_free(fresh->domain);
		kfree(fresh);
		goto done;
	}

	/* Last on the list: replay copies from the first domain, if any. */
	list_add_tail(&fresh->node, &c->domains);
	ret = vid_domain_populate(c, fresh, sw_msi);
	if (ret) {
		list_del(&fresh->node);
		goto out_detach;
	}
	list_add(&g->node, &fresh->groups);
	vid_update_pgsizes(c);
done:
	vid_iova_replace(c, &ranges);
	return 0;

out_detach:
	iommu_detach_group(fresh->domain, g->iommu_group);
out_domain:
	iommu_domain_free(fresh->domain);
	kfree(fresh);
	vid_iova_free(&ranges);
	return ret;
}

/**
 * vid_attach_group() - the VFIO core's attach_group() callback
 * @iommu_data: the &struct vid_container
 * @iommu_group: group the user adds to the container
 * @type: what backs the group
 *
 * An emulated group needs no domain: its devices reach memory only
 * through pin_pages() and dma_rw(), so it starts in pinned-page scope.
 * While a vaddr update is in progress nothing may attach, since attaching
 * may have to pin.
 *
 * Return: 0, -EBUSY during a vaddr update, -EINVAL if the group is already
 * attached or of an unknown type, -EPERM without interrupt isolation, or
 * an IOMMU error.
 */
int vid_attach_group(void *iommu_data, struct iommu_group *iommu_group,
		     enum vfio_group_type type)
{
	struct vid_container *c = iommu_data;
	struct vid_group *g;
	int ret;

	if (type != VFIO_IOMMU && type != VFIO_EMULATED_IOMMU)
		return -EINVAL;

	mutex_lock(&c->lock);
	ret = -EBUSY;
	if (c->vaddr_invalid)
		goto out_unlock;
	ret = -EINVAL;
	if (vid_find_group(c, iommu_group, NULL))
		goto out_unlock;

	ret = -ENOMEM;
	g = kzalloc(sizeof(*g), GFP_KERNEL_ACCOUNT);
	if (!g)
		goto out_unlock;
	g->iommu_group = iommu_group;

	if (type == VFIO_EMULATED_IOMMU) {
		g->pinned_scope = true;
		list_add(&g->node, &c->emulated);
		ret = 0;
	} else {
		ret = vid_attach_iommu_group(c, g);
		if (ret)
			kfree(g);
	}
out_unlock:
	mutex_unlock(&c->lock);
	return ret;
}

/*
 * The container is about to lose its last domain, which is where unmapping
 * finds the pinned pages. Without emulated groups nobody can use the
 * mappings any more and they go, as in-tree. With emulated groups they
 * stay, unpinned, with only the devices' own pins still held and charged.
 */
static void vid_last_domain_leaves(struct vid_container *c)
{
	struct rb_node *n;

	if (list_empty(&c->emulated)) {
		WARN_ON_ONCE(c->ndevices);
		vid_dma_remove_all(c);
		return;
	}
	for (n = rb_first(&c->dma_tree); n; n = rb_next(n)) {
		vid_unmap_unpin(c, rb_entry(n, struct vid_dma, node));
		cond_resched();
	}
}

/* Free a domain that has no group left. */
static void vid_domain_destroy(struct vid_container *c, struct vid_domain *d)
{
	if (list_is_singular(&c->domains))
		vid_last_domain_leaves(c);
	list_del(&d->node);
	iommu_domain_free(d->domain);
	kfree(d);
	vid_update_pgsizes(c);
}

/*
 * A group left: its reserved regions (and maybe its domain's aperture) no
 * longer restrict the space. If the new list cannot be built, keeping the
 * old, stricter one is safe.
 */
static void vid_iova_refresh(struct vid_container *c)
{
	LIST_HEAD(ranges);

	if (list_empty(&c->domains))
		vid_iova_free(&c->iova_ranges);
	else if (!vid_iova_build(c, NULL, NULL, &ranges))
		vid_iova_replace(c, &ranges);
}

/**
 * vid_detach_group() - the VFIO core's detach_group() callback
 * @iommu_data: the &struct vid_container
 * @iommu_group: group leaving the container
 */
void vid_detach_group(void *iommu_data, struct iommu_group *iommu_group)
{
	struct vid_container *c = iommu_data;
	struct vid_domain *d;
	struct vid_group *g;
	bool was_pinned;

	mutex_lock(&c->lock);
	was_pinned = vid_pinned_scope(c);
	g = vid_find_group(c, iommu_group, &d);
	if (g && !d) {
		list_del(&g->node);
		kfree(g);
		/* The last group of any kind takes the mappings with it. */
		if (list_empty(&c->emulated) && list_empty(&c->domains)) {
			WARN_ON_ONCE(c->ndevices);
			vid_dma_remove_all(c);
		}
	} else if (g) {
		iommu_detach_group(d->domain, iommu_group);
		list_del(&g->node);
		kfree(g);
		if (list_empty(&d->groups))
			vid_domain_destroy(c, d);
		vid_iova_refresh(c);
	}
	/* Losing an undeclared group may enter pinned-page scope. */
	vid_dirty_scope_change(c, was_pinned);
	mutex_unlock(&c->lock);
}

/**
 * vid_release_domains() - detach every group and free every domain
 * @c: container being released; its mappings are already gone
 */
void vid_release_domains(struct vid_container *c)
{
	struct vid_domain *d, *dn;
	struct vid_group *g, *gn;

	list_for_each_entry_safe(g, gn, &c->emulated, node) {
		list_del(&g->node);
		kfree(g);
	}
	list_for_each_entry_safe(d, dn, &c->domains, node) {
		list_for_each_entry_safe(g, gn, &d->groups, node) {
			iommu_detach_group(d->domain, g->iommu_group);
			list_del(&g->node);
			kfree(g);
		}
		list_del(&d->node);
		iommu_domain_free(d->domain);
		kfree(d);
	}
	vid_update_pgsizes(c);
}

/**
 * vid_group_pinned() - note that a group's device pins what it uses
 * @c: container, locked
 * @iommu_group: group whose device called pin_pages()
 *
 * A device that pins declares that it writes only what it pins, so its
 * group joins the pinned-page dirty scope, as in-tree.
 */
void vid_group_pinned(struct vid_container *c, struct iommu_group *iommu_group)
{
	struct vid_group *g = vid_find_group(c, iommu_group, NULL);
	bool was_pinned;

	if (!g || g->pinned_scope)
		return;
	was_pinned = vid_pinned_scope(c);
	g->pinned_scope = true;
	vid_dirty_scope_change(c, was_pinned);
}

/**
 * vid_group_iommu_domain() - the VFIO core's group_iommu_domain() callback
 * @iommu_data: the &struct vid_container
 * @iommu_group: an attached group
 *
 * Return: the domain the group is attached to, ERR_PTR(-ENODEV) if it has
 * none (emulated, or not attached), ERR_PTR(-EINVAL) for missing
 * arguments.
 */
struct iommu_domain *vid_group_iommu_domain(void *iommu_data,
					    struct iommu_group *iommu_group)
{
	struct iommu_domain *domain = ERR_PTR(-ENODEV);
	struct vid_container *c = iommu_data;
	struct vid_domain *d;

	if (!c || !iommu_group)
		return ERR_PTR(-EINVAL);
	mutex_lock(&c->lock);
	if (vid_find_group(c, iommu_group, &d) && d)
		domain = d->domain;
	mutex_unlock(&c->lock);
	return domain;
}
