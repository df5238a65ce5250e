// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - reporting dirty pages to user space.
 *
 * VFIO_IOMMU_DIRTY_PAGES and the bitmap of VFIO_IOMMU_UNMAP_DMA land here:
 * the caller's description of its bitmap is checked, and each mapping's
 * bits (vid_dirty.c) are written into it.
 *
 * Bits go to user space word by word through a one-page bounce buffer. A
 * mapping may start and end in the middle of a user word: the bits of that
 * word outside the mapping are read first and written back unchanged, so
 * holes between mappings keep whatever the caller had there. With a block
 * size above the base page (an extension), a block two mappings share is
 * the OR of both.
 */
#include <linux/bitmap.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include <uapi/linux/vfio_iommu_dirty.h>

#include "vfio_iommu_dirty.h"
#include "vid_trace.h"

/* User words assembled in the kernel per vid_put_words() call. */
#define VID_COPY_WORDS		(PAGE_SIZE / sizeof(u64))

/* A page of ones, the source of all-dirty reports. */
static u64 *vid_ones;

/**
 * vid_report_init() - allocate what reports share, at module load
 *
 * Return: 0 or -ENOMEM.
 */
int vid_report_init(void)
{
	vid_ones = (u64 *)__get_free_page(GFP_KERNEL);
	if (!vid_ones)
		return -ENOMEM;
	memset(vid_ones, 0xff, PAGE_SIZE);
	return 0;
}

/**
 * vid_report_exit() - free what vid_report_init() allocated
 */
void vid_report_exit(void)
{
	free_page((unsigned long)vid_ones);
}

/*
 * Where a report goes, and a source of bits for it: either all ones, or the
 * OR of up to two kernel bitmaps of @nbits bits.
 */
struct vid_bitsrc {
	const unsigned long *a;
	const unsigned long *b;
	unsigned long nbits;
	bool ones;
};

static unsigned long vid_src_fetch(const struct vid_bitsrc *s,
				   unsigned long idx)
{
	if (idx >= BITS_TO_LONGS(s->nbits))
		return 0;
	if (s->ones)
		return ~0UL;
	return s->a[idx] | (s->b ? s->b[idx] : 0);
}

/*
 * The 64 source bits that start at bit @j, which may be negative or run
 * past the end: bits outside [0, nbits) read as 0.
 */
static unsigned long vid_src_word(const struct vid_bitsrc *s, long j)
{
	unsigned long w, sh, valid;

	if (j <= -BITS_PER_LONG || j >= (long)s->nbits)
		return 0;
	if (j < 0) {
		w = vid_src_fetch(s, 0) << -j;
	} else {
		sh = j % BITS_PER_LONG;
		w = vid_src_fetch(s, j / BITS_PER_LONG) >> sh;
		if (sh)
			w |= vid_src_fetch(s, j / BITS_PER_LONG + 1) <<
			     (BITS_PER_LONG - sh);
	}
	/* Result bit r is source bit j + r: valid while r < nbits - j. */
	valid = s->nbits - j;
	if (valid < BITS_PER_LONG)
		w &= GENMASK(valid - 1, 0);
	return w;
}

/*
 * @n words of the source starting at bit @j. When the source is word
 * aligned with the user bitmap (the usual case: a mapping starting on a
 * 64-page boundary of the range) the words are ORed directly.
 */
static void vid_fill_words(const struct vid_bitsrc *s, long j, u64 *buf,
			   u64 n)
{
	unsigned long idx, last = BITS_TO_LONGS(s->nbits);
	u64 k;

	if (j < 0 || j % BITS_PER_LONG) {
		for (k = 0; k < n; k++)
			buf[k] = vid_src_word(s, j + (long)k * BITS_PER_LONG);
		return;
	}
	idx = j / BITS_PER_LONG;
	for (k = 0; k < n; k++, idx++) {
		if (idx >= last)
			buf[k] = 0;
		else
			buf[k] = s->a[idx] | (s->b ? s->b[idx] : 0);
	}
	/* The last word of the source may have bits past its end. */
	if (s->nbits % BITS_PER_LONG && idx >= last && last > j / BITS_PER_LONG) {
		k = last - 1 - j / BITS_PER_LONG;
		if (k < n)
			buf[k] &= BITMAP_LAST_WORD_MASK(s->nbits);
	}
}

/*
 * Store @n words from @src at @dst, one 8-byte store each, in one
 * user-access section. It does what copy_to_user() does, but where that
 * is a string instruction (rep movsb on CPUs with fast short strings),
 * which an emulator such as QEMU's TCG steps through byte by byte, this
 * is a plain loop; on hardware the two cost about the same for these
 * sizes. No function may be called while user access is open.
 */
static int vid_put_words(u64 __user *dst, const u64 *src, u64 n)
{
	if (!user_access_begin(dst, n * sizeof(u64)))
		return -EFAULT;
	for (; n; n--, dst++, src++)
		unsafe_put_user(*src, dst, fault);
	user_access_end();
	return 0;
fault:
	user_access_end();
	return -EFAULT;
}

/*
 * Merge @val into user word @w, replacing only the bits in @own; the bits
 * in @or are ORed instead (a block shared with the previous mapping).
 */
static int vid_merge_edge(u64 __user *ubits, u64 w, u64 own, u64 or,
			  u64 *val)
{
	u64 old;

	if (get_user(old, ubits + w))
		return -EFAULT;
	*val = (old & ~own) | (*val & own) | (old & or);
	return 0;
}

/* One user word: replace the bits in @own with ones, OR those in @or. */
static int vid_put_ones(struct vid_report *rep, u64 w, u64 own, u64 or)
{
	u64 val = ~0ULL;
	int ret = vid_merge_edge(rep->ubits, w, own, or, &val);

	if (!ret && put_user(val, rep->ubits + w))
		ret = -EFAULT;
	rep->bytes += sizeof(u64);
	return ret;
}

/*
 * Every bit of [@first, @last] set (IOMMU-backed scope): the words in
 * between come straight from a page of ones, with no buffer to fill.
 */
static int vid_copy_ones(struct vid_report *rep, u64 first, u64 last,
			 bool or_first)
{
	u64 w0 = first / 64, w1 = last / 64, w, n, own;
	u64 or = or_first ? BIT_ULL(first % 64) : 0;
	int ret;

	rep->bits += last - first + 1;
	own = GENMASK_ULL(63, first % 64);
	if (w0 == w1)
		return vid_put_ones(rep, w0, own & GENMASK_ULL(last % 64, 0), or);
	ret = vid_put_ones(rep, w0, own, or);
	for (w = w0 + 1; !ret && w < w1; w += n) {
		n = min_t(u64, w1 - w, VID_COPY_WORDS);
		ret = vid_put_words(rep->ubits + w, vid_ones, n);
		rep->bytes += n * sizeof(u64);
		cond_resched();
	}
	return ret ? ret : vid_put_ones(rep, w1, GENMASK_ULL(last % 64, 0), 0);
}

/**
 * vid_copy_bits() - write a run of bits into a user bitmap
 * @rep: the report, with its bounce buffer
 * @first: index in the user bitmap of the source's bit 0
 * @src: the bits, @src->nbits of them (not 0)
 * @or_first: OR the first bit into the user's instead of replacing it
 *
 * Bits of the user bitmap outside [@first, @first + nbits) are not changed.
 *
 * Return: 0 or -EFAULT.
 */
static int vid_copy_bits(struct vid_report *rep, u64 first,
			 const struct vid_bitsrc *src, bool or_first)
{
	u64 last = first + src->nbits - 1;
	u64 w0 = first / 64, w1 = last / 64, w, n, k, own;
	u64 *buf;
	int ret;

	if (src->ones)
		return vid_copy_ones(rep, first, last, or_first);
	if (!*rep->buf) {
		*rep->buf = (u64 *)__get_free_page(GFP_KERNEL_ACCOUNT);
		if (!*rep->buf)
			return -ENOMEM;
	}
	buf = *rep->buf;
	for (w = w0; w <= w1; w += n) {
		n = min_t(u64, w1 - w + 1, VID_COPY_WORDS);
		vid_fill_words(src, (long)(w * 64 - first), buf, n);
		for (k = 0; k < n; k++)
			if (buf[k])
				rep->bits += hweight64(buf[k]);

		/* Edge words: keep the user's bits outside the mapping. */
		if (w == w0) {
			own = GENMASK_ULL(63, first % 64);
			if (w0 == w1)
				own &= GENMASK_ULL(last % 64, 0);
			ret = vid_merge_edge(rep->ubits, w0, own,
					     or_first ? BIT_ULL(first % 64) : 0,
					     &buf[0]);
			if (ret)
				return ret;
		}
		if (w + n - 1 == w1 && w1 != w0) {
			own = GENMASK_ULL(last % 64, 0);
			ret = vid_merge_edge(rep->ubits, w1, own, 0,
					     &buf[n - 1]);
			if (ret)
				return ret;
		}
		ret = vid_put_words(rep->ubits + w, buf, n);
		if (ret)
			return ret;
		rep->bytes += n * sizeof(u64);
		cond_resched();
	}
	return 0;
}

/*
 * Fold a base-page source into blocks of 1 << @ratio pages, starting at the
 * block that holds base page @lead (pages before the mapping in its first
 * block). Return: the coarse bitmap, or NULL.
 */
static unsigned long *vid_coarsen(const struct vid_bitsrc *src,
				  unsigned long lead, unsigned int ratio,
				  unsigned long nblocks)
{
	unsigned long *out = vid_bitmap_alloc(nblocks);
	const unsigned long *maps[2] = { src->a, src->b };
	unsigned long bit, block;
	int m;

	if (!out)
		return NULL;
	if (src->ones) {
		bitmap_fill(out, nblocks);
		return out;
	}
	for (m = 0; m < 2 && maps[m]; m++) {
		bit = find_first_bit(maps[m], src->nbits);
		while (bit < src->nbits) {
			block = (bit + lead) >> ratio;
			__set_bit(block, out);
			/* Skip to the first page of the next block. */
			bit = find_next_bit(maps[m], src->nbits,
					    ((block + 1) << ratio) - lead);
		}
	}
	return out;
}

/* The page at @i of a report source is dirty. */
static bool vid_src_bit(const struct vid_bitsrc *s, unsigned long i)
{
	return s->ones || test_bit(i, s->a) || (s->b && test_bit(i, s->b));
}

/*
 * Emit vid_dirty_run for each run of dirty base pages of @dma. Only while
 * the event is enabled: a walk over every bit is the price of watching.
 */
static void vid_trace_runs(struct vid_container *c, struct vid_dma *dma,
			   const struct vid_bitsrc *s)
{
	unsigned long i = 0, start;

	while (i < s->nbits) {
		if (!vid_src_bit(s, i)) {
			i++;
			continue;
		}
		for (start = i; i < s->nbits && vid_src_bit(s, i); i++)
			;
		trace_vid_dirty_run(c->id,
				    dma->iova + ((u64)start << c->dirty_shift),
				    i - start, c->dirty_shift);
	}
}

/**
 * vid_dirty_report() - report one mapping's dirty pages to user space
 * @c: container, locked, tracking
 * @rep: destination; covers the whole mapping
 * @dma: mapping inside @rep's range
 *
 * Nothing is cleared here: vid_dirty_clear() does that once every mapping
 * of the request has been reported, so a failing request loses nothing.
 *
 * Return: 0, -EFAULT or -ENOMEM.
 */
int vid_dirty_report(struct vid_container *c, struct vid_report *rep,
		     struct vid_dma *dma)
{
	unsigned int ratio = rep->shift - c->dirty_shift;
	u64 off = dma->iova - rep->iova;
	struct vid_bitsrc src = {
		.a = dma->dirty,
		.b = dma->pinned_bits,
		.nbits = vid_dirty_nbits(c, dma),
		/* IOMMU-backed devices may have written any mapped page. */
		.ones = dma->mapped && !vid_pinned_scope(c),
	};
	struct vid_bitsrc coarse = { };
	u64 first = off >> rep->shift;
	unsigned long lead;
	int ret;

	if (trace_vid_dirty_run_enabled())
		vid_trace_runs(c, dma, &src);
	if (!ratio)
		return vid_copy_bits(rep, first, &src, false);

	/* Blocks: a bit is set when any base page in its block is. */
	lead = (off & ((1ULL << rep->shift) - 1)) >> c->dirty_shift;
	coarse.nbits = ((off + dma->size - 1) >> rep->shift) - first + 1;
	coarse.a = vid_coarsen(&src, lead, ratio, coarse.nbits);
	if (!coarse.a)
		return -ENOMEM;
	ret = vid_copy_bits(rep, first, &coarse, rep->have_last &&
			    rep->last_block == first);
	rep->have_last = true;
	rep->last_block = first + coarse.nbits - 1;
	kvfree(coarse.a);
	return ret;
}

/**
 * vid_dirty_report_pgsizes() - page sizes a report may use
 * @c: container, locked
 *
 * Return: the smallest IOMMU page size, as in-tree, and every larger IOMMU
 * page size of the container (one bit per block).
 */
u64 vid_dirty_report_pgsizes(struct vid_container *c)
{
	return c->pgsize_bitmap;
}

/**
 * vid_report_check_user() - check a caller's bitmap description
 * @bm: the caller's struct vfio_bitmap
 * @size: bytes of IOVA space the bitmap must describe
 *
 * The lock-free half of the checks, in the order and with the errno of
 * in-tree: a page size that is a power of two, a user range that can be
 * written, and a size that holds one bit per page yet stays under the
 * limit announced in the migration capability.
 *
 * Return: 0 or -EINVAL.
 */
int vid_report_check_user(const struct vfio_bitmap *bm, u64 size)
{
	u64 npages;

	if (!bm->pgsize || !is_power_of_2(bm->pgsize))
		return -EINVAL;
	if (!access_ok((void __user *)bm->data, bm->size))
		return -EINVAL;
	npages = size >> __ffs64(bm->pgsize);
	if (!npages || !bm->size || bm->size > VID_DIRTY_BITMAP_MAX ||
	    bm->size < DIV_ROUND_UP(npages, 64) * sizeof(u64))
		return -EINVAL;
	return 0;
}

/**
 * vid_report_begin() - prepare a report into a checked user bitmap
 * @c: container, locked
 * @rep: report to fill in
 * @bm: the caller's bitmap, checked by vid_report_check_user()
 * @iova: IOVA of bit 0
 * @size: bytes of IOVA space covered
 *
 * Return: 0; -EINVAL when tracking is off, when the page size is not one
 * vid_dirty_report_pgsizes() offers, or when the range is not aligned to
 * it; -ENOMEM.
 */
int vid_report_begin(struct vid_container *c, struct vid_report *rep,
		     const struct vfio_bitmap *bm, dma_addr_t iova, u64 size)
{
	u64 mask = bm->pgsize - 1;

	if (!c->dirty_tracking)
		return -EINVAL;
	if (!(bm->pgsize & vid_dirty_report_pgsizes(c)) ||
	    __ffs64(bm->pgsize) < c->dirty_shift)
		return -EINVAL;
	if (iova & mask || size & mask)
		return -EINVAL;

	rep->ubits = (u64 __user *)bm->data;
	rep->iova = iova;
	rep->shift = __ffs64(bm->pgsize);
	rep->have_last = false;
	rep->last_block = 0;
	rep->bits = 0;
	rep->bytes = 0;
	/* The bounce page is taken when a report first needs one. */
	rep->buf = &c->report_buf;
	return 0;
}

/**
 * vid_report_end() - count a report
 * @c: container, locked
 * @rep: a report that began successfully
 */
void vid_report_end(struct vid_container *c, struct vid_report *rep)
{
	c->stats.bitmap_queries++;
	c->stats.dirty_bits += rep->bits;
	c->stats.bitmap_bytes += rep->bytes;
}

/* START, STOP or GET_BITMAP: exactly one, PEEK only with GET_BITMAP. */
static bool vid_dirty_flags_valid(u32 flags)
{
	u32 op = flags & ~VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK;

	if (!op || (op & (op - 1)))
		return false;
	return op == VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP ||
	       !(flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK);
}

static long vid_get_bitmap(struct vid_container *c, void __user *arg,
			   u32 argsz, bool clear)
{
	unsigned long minsz = offsetofend(struct vfio_iommu_type1_dirty_bitmap,
					  flags);
	struct vfio_iommu_type1_dirty_bitmap_get range;
	struct vid_report rep;
	long ret;

	if (argsz - minsz < sizeof(range))
		return -EINVAL;
	if (copy_from_user(&range, arg + minsz, sizeof(range)))
		return -EFAULT;
	if (range.iova + range.size < range.iova)
		return -EINVAL;
	ret = vid_report_check_user(&range.bitmap, range.size);
	if (ret)
		return ret;

	mutex_lock(&c->lock);
	ret = vid_report_begin(c, &rep, &range.bitmap, range.iova,
			       range.size);
	if (!ret) {
		ret = vid_dma_get_dirty(c, range.iova, range.size, &rep,
					clear);
		vid_report_end(c, &rep);
	}
	mutex_unlock(&c->lock);
	trace_vid_get_bitmap(c->id, range.iova, range.size,
			     range.bitmap.pgsize, ret);
	return ret;
}

/**
 * vid_dirty_pages_ioctl() - VFIO_IOMMU_DIRTY_PAGES
 * @c: container
 * @arg: user pointer to struct vfio_iommu_type1_dirty_bitmap
 *
 * Return: 0, -EACCES on a v1 container, -EFAULT, -EINVAL for a bad argsz,
 * flag set, range or bitmap, or an error of START or of the report.
 */
long vid_dirty_pages_ioctl(struct vid_container *c, void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_iommu_type1_dirty_bitmap,
					  flags);
	u32 known = VFIO_IOMMU_DIRTY_PAGES_FLAG_START |
		    VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP |
		    VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP |
		    VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK;
	struct vfio_iommu_type1_dirty_bitmap dirty;
	long ret = 0;

	if (!c->v2)
		return -EACCES;
	if (copy_from_user(&dirty, arg, minsz))
		return -EFAULT;
	if (dirty.argsz < minsz || dirty.flags & ~known ||
	    !vid_dirty_flags_valid(dirty.flags))
		return -EINVAL;

	if (dirty.flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP)
		return vid_get_bitmap(c, arg, dirty.argsz,
				      !(dirty.flags &
					VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK));

	mutex_lock(&c->lock);
	if (dirty.flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_START)
		ret = vid_dirty_start(c);
	else
		vid_dirty_stop(c);
	trace_vid_dirty_tracking(c->id,
				 dirty.flags & VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
				 c->dma_limit - c->dma_avail, ret);
	mutex_unlock(&c->lock);
	return ret;
}
