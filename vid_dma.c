// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - the mapping tree and the MAP_DMA / UNMAP_DMA semantics.
 *
 * Mappings live in an rb-tree keyed by IOVA. They never overlap, so a node
 * is "left of" another exactly when it ends at or before the other's start;
 * every lookup below relies on that order. Callers hold the container lock.
 */
#include <linux/iommu.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/capability.h>

#include "vfio_iommu_dirty.h"

static inline struct vid_dma *to_dma(struct rb_node *n)
{
	return n ? rb_entry(n, struct vid_dma, node) : NULL;
}

/* Last IOVA of a range of @size bytes at @start; @size is never 0. */
static inline dma_addr_t range_last(dma_addr_t start, u64 size)
{
	return start + size - 1;
}

static inline dma_addr_t dma_last(const struct vid_dma *dma)
{
	return dma->iova + dma->size - 1;
}

/**
 * vid_dma_find() - find any mapping that intersects a range
 * @c: container, locked
 * @start: first IOVA of the range
 * @size: length of the range in bytes, not 0, not wrapping
 *
 * Return: a mapping intersecting [@start, @start + @size), or NULL.
 */
struct vid_dma *vid_dma_find(struct vid_container *c, dma_addr_t start,
			     u64 size)
{
	struct rb_node *n = c->dma_tree.rb_node;
	dma_addr_t last = range_last(start, size);

	while (n) {
		struct vid_dma *dma = to_dma(n);

		if (last < dma->iova)
			n = n->rb_left;
		else if (start > dma_last(dma))
			n = n->rb_right;
		else
			return dma;
	}
	return NULL;
}

/**
 * vid_dma_first_in() - find the lowest mapping that intersects a range
 * @c: container, locked
 * @start: first IOVA of the range
 * @size: length of the range in bytes, not 0, not wrapping
 *
 * Walks down the tree remembering the leftmost node that ends at or after
 * @start; that node is the first candidate, and it intersects the range
 * unless it starts after the range's end.
 *
 * Return: the intersecting mapping with the lowest IOVA, or NULL.
 */
struct vid_dma *vid_dma_first_in(struct vid_container *c, dma_addr_t start,
				 u64 size)
{
	struct rb_node *n = c->dma_tree.rb_node;
	struct vid_dma *best = NULL;

	while (n) {
		struct vid_dma *dma = to_dma(n);

		if (start <= dma_last(dma)) {
			best = dma;
			if (start >= dma->iova)
				break;
			n = n->rb_left;
		} else {
			n = n->rb_right;
		}
	}
	if (best && best->iova > range_last(start, size))
		return NULL;
	return best;
}

static void vid_dma_link(struct vid_container *c, struct vid_dma *new)
{
	struct rb_node **link = &c->dma_tree.rb_node, *parent = NULL;

	while (*link) {
		parent = *link;
		if (new->iova < to_dma(parent)->iova)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&new->node, parent, link);
	rb_insert_color(&new->node, &c->dma_tree);
}

static struct vid_dma *vid_dma_alloc(dma_addr_t iova, unsigned long vaddr,
				     u64 size, int prot)
{
	struct vid_dma *dma = kzalloc(sizeof(*dma), GFP_KERNEL_ACCOUNT);

	if (!dma)
		return NULL;
	dma->iova = iova;
	dma->vaddr = vaddr;
	dma->size = size;
	dma->prot = prot;
	dma->pins = RB_ROOT;
	/*
	 * Charge the memory lock limit of the whole process, as in-tree does:
	 * the group leader outlives any thread that happened to call us.
	 */
	dma->task = get_task_struct(current->group_leader);
	dma->mm = current->mm;
	mmgrab(dma->mm);
	dma->lock_cap = capable(CAP_IPC_LOCK);
	return dma;
}

static void vid_dma_free(struct vid_dma *dma)
{
	mmdrop(dma->mm);
	put_task_struct(dma->task);
	kfree(dma);
}

/**
 * vid_dma_map() - create a mapping: pin user pages and map them
 * @c: container, locked
 * @iova: first device address, aligned to the smallest IOMMU page
 * @vaddr: first user address in current->mm, equally aligned
 * @size: bytes, aligned, not 0; neither range wraps
 * @prot: IOMMU_READ and/or IOMMU_WRITE
 *
 * Without any IOMMU domain (only emulated groups) the mapping is recorded
 * and nothing is pinned: devices pin what they use. All or nothing: on
 * failure nothing stays pinned, mapped or accounted.
 *
 * Return: 0, -EEXIST if the range overlaps a mapping, -ENOSPC past
 * dma_entry_limit, -EINVAL outside the usable IOVA ranges, -ENOMEM,
 * -EFAULT for memory that cannot be pinned, or an IOMMU driver error.
 */
int vid_dma_map(struct vid_container *c, dma_addr_t iova,
		unsigned long vaddr, u64 size, int prot)
{
	struct vid_dma *dma;
	int ret;

	if (vid_dma_find(c, iova, size))
		return -EEXIST;
	if (!c->dma_avail)
		return -ENOSPC;
	if (!vid_iova_allows(&c->iova_ranges, iova, range_last(iova, size)))
		return -EINVAL;
	if (!current->mm)
		return -ENODEV;

	dma = vid_dma_alloc(iova, vaddr, size, prot);
	if (!dma)
		return -ENOMEM;

	/* Linked before pinning, so that a failure shares the remove path. */
	vid_dma_link(c, dma);
	c->dma_avail--;

	ret = list_empty(&c->domains) ? 0 : vid_pin_map(c, dma);
	/* While tracking, a new mapping starts clean, with its bitmaps. */
	if (!ret && c->dirty_tracking)
		ret = vid_dirty_alloc(c, dma);
	if (ret) {
		vid_dma_remove(c, dma);
		return ret;
	}
	c->stats.maps++;
	return 0;
}

/**
 * vid_dma_remove() - unmap, unpin, unaccount, unlink and free one mapping
 * @c: container, locked
 * @dma: mapping in @c's tree
 */
void vid_dma_remove(struct vid_container *c, struct vid_dma *dma)
{
	struct rb_node *n;

	vid_unmap_unpin(c, dma);
	/*
	 * Unmap asks devices to unpin first, and the core closes devices
	 * before it releases the container, so pins left here mean a driver
	 * forgot them. Dropping them beats leaking the pages for good.
	 */
	while ((n = rb_first(&dma->pins))) {
		struct vid_pin *pin = rb_entry(n, struct vid_pin, node);

		WARN_ONCE(1, "vfio_iommu_dirty: dropping a device's pin\n");
		pin->refs = 1;
		vid_pin_put(c, dma, pin);
	}
	/* An unmap telling devices about @dma may have deferred some. */
	vid_acct_flush(dma);
	vid_dirty_free(dma);
	rb_erase(&dma->node, &c->dma_tree);
	c->dma_avail++;
	if (dma->vaddr_invalid)
		c->vaddr_invalid--;
	vid_dma_free(dma);
}

/**
 * vid_dma_remove_all() - remove every mapping of a container
 * @c: container, locked (or no longer reachable by anyone else)
 */
void vid_dma_remove_all(struct vid_container *c)
{
	struct rb_node *n;

	while ((n = rb_first(&c->dma_tree))) {
		vid_dma_remove(c, to_dma(n));
		cond_resched();
	}
}

/*
 * A v2 unmap (and any dirty bitmap query) may cover several whole mappings
 * at once but must never cut one in two: the range has to start at the
 * first byte of whatever mapping holds @iova and end at the last byte of
 * whatever holds its end.
 */
static bool vid_unmap_bisects(struct vid_container *c, dma_addr_t iova,
			      u64 size)
{
	struct vid_dma *dma;

	dma = vid_dma_find(c, iova, 1);
	if (dma && dma->iova != iova)
		return true;
	dma = vid_dma_find(c, range_last(iova, size), 1);
	return dma && dma_last(dma) != range_last(iova, size);
}

/*
 * The first mapping an unmap of [@iova, @iova + @size) removes, or NULL.
 * Later ones follow in tree order while they start inside the range. A v1
 * container keeps the in-tree rule that a range starting inside a mapping
 * removes nothing at all.
 */
static struct vid_dma *vid_unmap_first(struct vid_container *c,
				       dma_addr_t iova, u64 size)
{
	struct vid_dma *dma = vid_dma_first_in(c, iova, size);

	if (dma && !c->v2 && dma->iova < iova)
		return NULL;
	return dma;
}

static struct vid_dma *vid_unmap_next(struct vid_dma *dma, dma_addr_t last)
{
	dma = to_dma(rb_next(&dma->node));
	return dma && dma->iova <= last ? dma : NULL;
}

/*
 * Ask devices to drop their pins in the range until none is left. The lock
 * is dropped for each request, so the scan starts again after it; and
 * another thread may have mapped across an edge of the range meanwhile,
 * which a v2 unmap (@check_edges) must refuse then as it would have
 * before (in-tree re-checks after every notification too).
 */
static int vid_unmap_quiesce(struct vid_container *c, dma_addr_t iova,
			     u64 size, bool check_edges)
{
	dma_addr_t last = range_last(iova, size), notified = 0;
	unsigned int tries = 0;
	struct vid_dma *dma;
	int ret;

	/* Only registered devices pin, so without any there is no pin. */
	if (!c->ndevices)
		return 0;
again:
	for (dma = vid_unmap_first(c, iova, size); dma;
	     dma = vid_unmap_next(dma, last)) {
		if (!dma->npins)
			continue;
		/* Count retries on the same mapping only. */
		if (notified != dma->iova)
			tries = 0;
		notified = dma->iova;
		ret = vid_notify_unmap(c, dma, tries++);
		if (ret)
			return ret;
		if (check_edges && vid_unmap_bisects(c, iova, size))
			return -EINVAL;
		goto again;
	}
	return 0;
}

/**
 * vid_dma_unmap() - remove the mappings a range covers
 * @c: container, locked
 * @iova: first IOVA of the range, aligned
 * @size: length, aligned, not 0, not wrapping
 * @all: VFIO_DMA_UNMAP_FLAG_ALL: the range is the whole space
 * @rep: if not NULL, where to report the dirty pages of what is removed
 * @unmapped: set to the number of bytes removed
 *
 * Version 2 containers remove every mapping inside the range and refuse a
 * range that would split one. Version 1 containers keep the in-tree type1
 * rule: a mapping is removed whole when the range covers its first byte,
 * and nothing is removed when the range starts inside a mapping.
 *
 * Mappings holding pages pinned by emulated devices are removed only once
 * the devices have been told and have unpinned. Then, without the lock
 * being dropped again, the dirty state of everything in the range is
 * reported and only after that removed: a failure leaves every mapping in
 * place, and nothing written before the report can be lost.
 *
 * Return: 0 (possibly with *@unmapped == 0), -EINVAL for a v2 range that
 * bisects a mapping, -EBUSY if devices would not let go of their pins, or
 * an error of the report; nothing is removed on failure.
 */
int vid_dma_unmap(struct vid_container *c, dma_addr_t iova, u64 size,
		  bool all, struct vid_report *rep, u64 *unmapped)
{
	struct vid_dma *dma, *next;
	dma_addr_t last = range_last(iova, size);
	bool check_edges = c->v2 && !all;
	int ret;

	*unmapped = 0;
	if (check_edges && vid_unmap_bisects(c, iova, size))
		return -EINVAL;
	ret = vid_unmap_quiesce(c, iova, size, check_edges);
	if (ret)
		return ret;
	/*
	 * Devices were asked to unpin with the lock dropped: tracking may
	 * have been stopped (the bitmaps freed) or restarted at another page
	 * size meanwhile. The report was checked against what was then.
	 */
	if (rep && (!c->dirty_tracking || rep->shift < c->dirty_shift))
		return -EINVAL;

	for (dma = rep ? vid_unmap_first(c, iova, size) : NULL; dma;
	     dma = vid_unmap_next(dma, last)) {
		ret = vid_dirty_report(c, rep, dma);
		if (ret)
			return ret;
	}

	for (dma = vid_unmap_first(c, iova, size); dma; dma = next) {
		next = vid_unmap_next(dma, last);
		*unmapped += dma->size;
		c->stats.unmaps++;
		vid_dma_remove(c, dma);
		cond_resched();
	}
	return 0;
}

/**
 * vid_dma_get_dirty() - VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP
 * @c: container, locked, tracking
 * @iova: first IOVA of the range, aligned to the report's page size
 * @size: length, likewise aligned, not 0, not wrapping
 * @rep: destination
 * @clear: forget what was reported (false: the PEEK extension)
 *
 * The range may span several mappings and the holes between them, but may
 * not cut one. Everything is reported before anything is cleared, so a
 * failing copy loses nothing.
 *
 * Return: 0, -EINVAL for a range that bisects a mapping, -EFAULT, -ENOMEM.
 */
int vid_dma_get_dirty(struct vid_container *c, dma_addr_t iova, u64 size,
		      struct vid_report *rep, bool clear)
{
	dma_addr_t last = range_last(iova, size);
	struct vid_dma *dma;
	int ret;

	if (vid_unmap_bisects(c, iova, size))
		return -EINVAL;
	for (dma = vid_dma_first_in(c, iova, size); dma;
	     dma = vid_unmap_next(dma, last)) {
		ret = vid_dirty_report(c, rep, dma);
		if (ret)
			return ret;
	}
	/*
	 * Outside pinned-page scope nothing reads the bitmaps (every page is
	 * reported) and entering the scope fills them: nothing to forget.
	 */
	if (!clear || !vid_pinned_scope(c))
		return 0;
	for (dma = vid_dma_first_in(c, iova, size); dma;
	     dma = vid_unmap_next(dma, last))
		vid_dirty_clear(c, dma);
	return 0;
}

/* Mark the mappings of a range valid again, up to (not including) @stop. */
static void vid_vaddr_revalidate(struct vid_container *c, dma_addr_t iova,
				 u64 size, struct vid_dma *stop)
{
	struct vid_dma *dma = vid_dma_first_in(c, iova, size);

	for (; dma && dma != stop; dma = to_dma(rb_next(&dma->node))) {
		dma->vaddr_invalid = false;
		c->vaddr_invalid--;
	}
}

/**
 * vid_dma_invalidate_vaddr() - VFIO_DMA_UNMAP_FLAG_VADDR
 * @c: container, locked, without emulated groups
 * @iova: first IOVA of the range, aligned
 * @size: length, aligned, not 0, not wrapping
 * @all: the range is the whole space (no bisection check)
 * @invalidated: set to the bytes whose vaddr was invalidated
 *
 * The mappings stay pinned and mapped; user space promises new host
 * addresses for them (typically across exec of a new QEMU) through
 * vid_dma_set_vaddr(). Until then nothing may pin through them.
 *
 * Return: 0, or -EINVAL if the range bisects a mapping (v2) or holds a
 * mapping already invalidated; then nothing changes.
 */
int vid_dma_invalidate_vaddr(struct vid_container *c, dma_addr_t iova,
			     u64 size, bool all, u64 *invalidated)
{
	dma_addr_t last = range_last(iova, size);
	struct vid_dma *dma;

	*invalidated = 0;
	if (c->v2 && !all && vid_unmap_bisects(c, iova, size))
		return -EINVAL;

	dma = vid_dma_first_in(c, iova, size);
	for (; dma && dma->iova <= last; dma = to_dma(rb_next(&dma->node))) {
		if (!c->v2 && dma->iova < iova)
			break;
		if (dma->vaddr_invalid) {
			vid_vaddr_revalidate(c, iova, size, dma);
			*invalidated = 0;
			return -EINVAL;
		}
		dma->vaddr_invalid = true;
		c->vaddr_invalid++;
		*invalidated += dma->size;
	}
	return 0;
}

/**
 * vid_dma_set_vaddr() - VFIO_DMA_MAP_FLAG_VADDR
 * @c: container, locked
 * @iova: IOVA of an invalidated mapping
 * @vaddr: its new host address in current->mm
 * @size: its size
 *
 * If the caller is another process than the mapping's owner, the locked
 * memory charge moves to the caller.
 *
 * Return: 0, -ENOENT if no mapping intersects the range, -EINVAL if the
 * range is not exactly one invalidated mapping, or -ENOMEM if the caller's
 * RLIMIT_MEMLOCK cannot take the charge.
 */
int vid_dma_set_vaddr(struct vid_container *c, dma_addr_t iova,
		      unsigned long vaddr, u64 size)
{
	struct vid_dma *dma = vid_dma_find(c, iova, size);
	int ret;

	if (!dma)
		return -ENOENT;
	if (!dma->vaddr_invalid || dma->iova != iova || dma->size != size)
		return -EINVAL;
	ret = vid_acct_change_owner(dma);
	if (ret)
		return ret;
	dma->vaddr = vaddr;
	dma->vaddr_invalid = false;
	c->vaddr_invalid--;
	return 0;
}
