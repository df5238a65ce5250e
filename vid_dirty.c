// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - dirty page tracking.
 *
 * While tracking is on, every mapping carries a bitmap with one bit per
 * page of the container's smallest IOMMU page size (the base page), and,
 * once a device pins one of its pages, a second bitmap of the pages pinned
 * right now. Dirtiness is recorded when it happens: dma_rw() writes set
 * dirty bits, an unpin sets the bit of the page it lets go. A report is the
 * OR of the two bitmaps, so a page stays dirty for as long as it is pinned
 * without anything being rebuilt at query time; reporting then clears only
 * the dirty bitmap.
 *
 * Scope: a device behind an IOMMU can write anywhere it is mapped, unseen.
 * Unless every IOMMU-backed group has declared, by pinning, that its device
 * writes only what it pins, every page of every IOMMU-mapped mapping is
 * reported dirty; the bitmaps are then not even read. When the container
 * enters pinned-page scope (the last undeclared group pins or leaves), the
 * pages such a device may have written since the last report are unknown,
 * so every mapped page is marked dirty at that moment.
 *
 * vid_report.c turns these bitmaps into what user space asked for.
 */
#include <linux/bitmap.h>
#include <linux/slab.h>

#include "vfio_iommu_dirty.h"

#if BITS_PER_LONG != 64
#error "vfio_iommu_dirty: dirty bitmaps assume 64-bit longs"
#endif

/**
 * vid_dirty_nbits() - bits in a mapping's bitmaps
 * @c: container, tracking
 * @dma: mapping
 *
 * Mappings are aligned to the base page while tracking is on (see
 * vid_update_pgsizes()); a partial page would still get its bit, so that
 * no write can fall outside the bitmap.
 *
 * Return: the number of base pages of @dma, a partial one counted.
 */
unsigned long vid_dirty_nbits(struct vid_container *c, struct vid_dma *dma)
{
	return DIV_ROUND_UP_ULL(dma->size, 1ULL << c->dirty_shift);
}

/**
 * vid_pinned_scope() - do only pinned and written pages count as dirty?
 * @c: container, locked
 *
 * Return: true when every IOMMU-backed group has declared, by pinning,
 * that its device writes only what it pins (emulated groups always have).
 */
bool vid_pinned_scope(struct vid_container *c)
{
	struct vid_domain *d;
	struct vid_group *g;

	list_for_each_entry(d, &c->domains, node)
		list_for_each_entry(g, &d->groups, node)
			if (!g->pinned_scope)
				return false;
	return true;
}

/**
 * vid_bitmap_alloc() - a zeroed bitmap
 * @nbits: bits
 *
 * Return: the bitmap (kvfree() it), or NULL.
 */
unsigned long *vid_bitmap_alloc(unsigned long nbits)
{
	return kvcalloc(BITS_TO_LONGS(nbits), sizeof(unsigned long),
			GFP_KERNEL_ACCOUNT);
}

/* Set the pinned bits of the pages @dma's devices hold. */
static int vid_dirty_populate_pins(struct vid_container *c,
				   struct vid_dma *dma)
{
	struct rb_node *n;

	if (!dma->npins)
		return 0;
	dma->pinned_bits = vid_bitmap_alloc(vid_dirty_nbits(c, dma));
	if (!dma->pinned_bits)
		return -ENOMEM;
	for (n = rb_first(&dma->pins); n; n = rb_next(n)) {
		struct vid_pin *pin = rb_entry(n, struct vid_pin, node);

		__set_bit((pin->iova - dma->iova) >> c->dirty_shift,
			  dma->pinned_bits);
	}
	return 0;
}

/**
 * vid_dirty_alloc() - give a mapping its bitmaps while tracking is on
 * @c: container, locked, tracking (@dirty_shift valid)
 * @dma: mapping without bitmaps
 *
 * Return: 0, -EINVAL for a mapping beyond the bitmap size limit, or
 * -ENOMEM.
 */
int vid_dirty_alloc(struct vid_container *c, struct vid_dma *dma)
{
	unsigned long nbits = vid_dirty_nbits(c, dma);

	if (nbits > VID_DIRTY_PAGES_MAX)
		return -EINVAL;
	dma->dirty = vid_bitmap_alloc(nbits);
	if (!dma->dirty)
		return -ENOMEM;
	if (vid_dirty_populate_pins(c, dma)) {
		vid_dirty_free(dma);
		return -ENOMEM;
	}
	return 0;
}

/**
 * vid_dirty_free() - drop a mapping's bitmaps
 * @dma: mapping, container locked
 */
void vid_dirty_free(struct vid_dma *dma)
{
	kvfree(dma->dirty);
	dma->dirty = NULL;
	kvfree(dma->pinned_bits);
	dma->pinned_bits = NULL;
}

/**
 * vid_dirty_start() - VFIO_IOMMU_DIRTY_PAGES_FLAG_START
 * @c: container, locked
 *
 * All or nothing: tracking is switched on only once every mapping has its
 * bitmaps. Starting twice is harmless.
 *
 * Return: 0, -EINVAL (a mapping too large to track) or -ENOMEM.
 */
int vid_dirty_start(struct vid_container *c)
{
	struct rb_node *n, *u;
	int ret;

	if (c->dirty_tracking)
		return 0;
	c->dirty_shift = __ffs64(c->pgsize_bitmap);
	for (n = rb_first(&c->dma_tree); n; n = rb_next(n)) {
		ret = vid_dirty_alloc(c, rb_entry(n, struct vid_dma, node));
		if (ret)
			goto undo;
	}
	c->dirty_tracking = true;
	return 0;

undo:
	for (u = rb_first(&c->dma_tree); u != n; u = rb_next(u))
		vid_dirty_free(rb_entry(u, struct vid_dma, node));
	return ret;
}

/**
 * vid_dirty_stop() - VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP
 * @c: container, locked. Stopping twice is harmless.
 */
void vid_dirty_stop(struct vid_container *c)
{
	struct rb_node *n;

	if (!c->dirty_tracking)
		return;
	c->dirty_tracking = false;
	for (n = rb_first(&c->dma_tree); n; n = rb_next(n))
		vid_dirty_free(rb_entry(n, struct vid_dma, node));
	/* Page sizes a detach kept out while tracking are usable again. */
	vid_update_pgsizes(c);
}

/**
 * vid_dirty_mark() - record a write into a mapping
 * @c: container, locked
 * @dma: mapping written
 * @off: byte offset of the write in @dma
 * @len: bytes written, not 0
 */
void vid_dirty_mark(struct vid_container *c, struct vid_dma *dma, u64 off,
		    u64 len)
{
	unsigned long first, last;

	if (!c->dirty_tracking)
		return;
	first = off >> c->dirty_shift;
	last = (off + len - 1) >> c->dirty_shift;
	bitmap_set(dma->dirty, first, last - first + 1);
}

/**
 * vid_dirty_pin() - record that a device pinned a page
 * @c: container, locked
 * @dma: mapping holding the page
 * @iova: IOVA of the page
 *
 * Return: 0, or -ENOMEM when the pinned-page bitmap cannot be had (the pin
 * must then fail: it could not be reported).
 */
int vid_dirty_pin(struct vid_container *c, struct vid_dma *dma,
		  dma_addr_t iova)
{
	if (!c->dirty_tracking)
		return 0;
	if (!dma->pinned_bits) {
		dma->pinned_bits = vid_bitmap_alloc(vid_dirty_nbits(c, dma));
		if (!dma->pinned_bits)
			return -ENOMEM;
	}
	__set_bit((iova - dma->iova) >> c->dirty_shift, dma->pinned_bits);
	return 0;
}

/**
 * vid_dirty_unpin() - record that the last pin of a page went away
 * @c: container, locked
 * @dma: mapping holding the page
 * @iova: IOVA of the page
 *
 * The page stays dirty until it is reported.
 */
void vid_dirty_unpin(struct vid_container *c, struct vid_dma *dma,
		     dma_addr_t iova)
{
	unsigned long bit;

	if (!c->dirty_tracking)
		return;
	bit = (iova - dma->iova) >> c->dirty_shift;
	__set_bit(bit, dma->dirty);
	if (dma->pinned_bits)
		__clear_bit(bit, dma->pinned_bits);
}

/**
 * vid_dirty_scope_change() - react to a change of dirty scope
 * @c: container, locked
 * @was_pinned: vid_pinned_scope() before the change
 *
 * Entering pinned-page scope: what an IOMMU-backed device wrote since the
 * last report is unknown, so every page becomes dirty now.
 */
void vid_dirty_scope_change(struct vid_container *c, bool was_pinned)
{
	struct rb_node *n;

	if (!c->dirty_tracking || was_pinned || !vid_pinned_scope(c))
		return;
	/*
	 * Outside pinned-page scope there was an IOMMU domain, so every
	 * mapping was mapped into it until now (it may just have been
	 * unmapped, when the group that leaves had the last domain).
	 */
	for (n = rb_first(&c->dma_tree); n; n = rb_next(n)) {
		struct vid_dma *dma = rb_entry(n, struct vid_dma, node);

		bitmap_fill(dma->dirty, vid_dirty_nbits(c, dma));
	}
}

/**
 * vid_dirty_clear() - forget what was reported, keep what is pinned
 * @c: container, locked, tracking
 * @dma: mapping just reported
 */
void vid_dirty_clear(struct vid_container *c, struct vid_dma *dma)
{
	bitmap_zero(dma->dirty, vid_dirty_nbits(c, dma));
}

