// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - pinning a mapping and keeping it in the IOMMU page
 * tables of every domain.
 *
 * A mapping is pinned in batches of pointers that fit one page. Physically
 * contiguous pages are gathered into runs across batch boundaries and each
 * run is mapped with a single iommu_map() call per domain, so the IOMMU
 * driver can use 2 MiB and 1 GiB pages wherever memory allows it.
 *
 * Unmapping walks the IOVA range of the first domain, rebuilds the same
 * runs from iommu_iova_to_phys(), unmaps them with a deferred IOTLB flush
 * and unpins a run only after the flush that covers it: a device must never
 * reach a page that has already gone back to the allocator.
 */
#include <linux/iommu.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vfio_iommu_dirty.h"

/* Page pointers per pinning batch: exactly one page of them. */
#define VID_PIN_BATCH	(PAGE_SIZE / sizeof(struct page *))

/* Runs unmapped under one deferred IOTLB flush before they are unpinned. */
#define VID_UNPIN_BATCH	256

/* Physically contiguous pinned pages, mapped at consecutive IOVAs. */
struct vid_run {
	dma_addr_t iova;
	unsigned long pfn;
	unsigned long npages;
	bool reserved;		/* never pinned: reserved or no struct page */
};

/* Unpin a run; runs of memory without pins (MMIO, reserved) are skipped. */
static void vid_run_unpin(const struct vid_run *run, bool dirty)
{
	if (run->npages && !run->reserved)
		unpin_user_page_range_dirty_lock(pfn_to_page(run->pfn),
						 run->npages, dirty);
}

/*
 * Pages of a run that the mapping itself is charged for: not reserved and
 * not held by an external pin (which carries its own charge).
 */
static unsigned long vid_run_chargeable(struct vid_dma *dma,
					const struct vid_run *run)
{
	unsigned long i, n = 0;

	if (run->reserved)
		return 0;
	/* The common case: no device pins, every page is the mapping's. */
	if (!dma->npins)
		return run->npages;
	for (i = 0; i < run->npages; i++)
		if (!vid_pin_find(dma, run->iova + (i << PAGE_SHIFT)))
			n++;
	return n;
}

static struct iommu_domain *vid_first_domain(struct vid_container *c)
{
	return list_first_entry(&c->domains, struct vid_domain, node)->domain;
}

/*
 * Physically contiguous 2 MiB blocks. Unmapping has to find the physical
 * pages again, one iommu_iova_to_phys() per page; a block known to lie
 * inside one physically contiguous run can be taken whole instead. One bit
 * per 2 MiB of IOVA, relative to the first 2 MiB boundary at or after the
 * mapping's start, costs 64 bytes per GiB mapped. It is only a shortcut:
 * without it (allocation failed) unmapping walks page by page.
 */
#define VID_BLOCK	SZ_2M

static dma_addr_t vid_block_base(const struct vid_dma *dma)
{
	return ALIGN(dma->iova, VID_BLOCK);
}

static unsigned long vid_nblocks(const struct vid_dma *dma)
{
	dma_addr_t base = vid_block_base(dma);
	u64 end = (u64)dma->iova + dma->size;

	return base < dma->iova || base >= end ? 0 :
	       (end - base) / VID_BLOCK;
}

/* Note the blocks a freshly mapped run covers completely. */
static void vid_mark_blocks(struct vid_dma *dma, const struct vid_run *run)
{
	u64 start = ALIGN((u64)run->iova, VID_BLOCK);
	u64 end = (u64)run->iova + (run->npages << PAGE_SHIFT);
	unsigned long nblocks = vid_nblocks(dma);

	if (start < run->iova || start + VID_BLOCK > end || !nblocks)
		return;
	if (!dma->contig) {
		dma->contig = bitmap_zalloc(nblocks, GFP_KERNEL_ACCOUNT);
		if (!dma->contig)
			return;
	}
	bitmap_set(dma->contig, (start - vid_block_base(dma)) / VID_BLOCK,
		   (end - start) / VID_BLOCK);
}

/* Is the block that starts at @iova known to be contiguous? */
static bool vid_block_contig(const struct vid_dma *dma, dma_addr_t iova)
{
	return dma->contig && IS_ALIGNED(iova, VID_BLOCK) &&
	       iova >= vid_block_base(dma) &&
	       test_bit((iova - vid_block_base(dma)) / VID_BLOCK, dma->contig);
}

/* Map one run into every domain; on failure no domain keeps any of it. */
static int vid_map_run(struct vid_container *c, struct vid_dma *dma,
		       const struct vid_run *run)
{
	size_t len = run->npages << PAGE_SHIFT;
	phys_addr_t phys = PFN_PHYS(run->pfn);
	struct vid_domain *d;
	int ret;

	list_for_each_entry(d, &c->domains, node) {
		ret = vid_iommu_map(d->domain, run->iova, phys, len,
				    dma->prot | IOMMU_CACHE);
		if (ret)
			goto unwind;
	}
	return 0;

unwind:
	list_for_each_entry_continue_reverse(d, &c->domains, node)
		iommu_unmap(d->domain, run->iova, len);
	return ret;
}

/**
 * vid_pgsize_of() - the IOMMU page size counted in &vid_dma.iommu_pages[@i]
 * @i: 0 to VID_NR_PGSIZES - 1
 *
 * The CPU's page and block sizes: an IOMMU with the CPU's granule offers
 * the same blocks (VT-d with 4 KiB pages: 2 MiB and 1 GiB; an SMMU with
 * 16 KiB pages: 32 MiB).
 *
 * Return: PAGE_SIZE, PMD_SIZE or PUD_SIZE.
 */
unsigned long vid_pgsize_of(int i)
{
	return i == 0 ? PAGE_SIZE : i == 1 ? PMD_SIZE : PUD_SIZE;
}

/*
 * Count the IOMMU pages a run is mapped with: the IOMMU core always takes
 * the largest supported size that both addresses are aligned to and that
 * still fits, so the split is known without asking the driver.
 */
static void vid_count_pages(struct vid_dma *dma, unsigned long pgsizes,
			    const struct vid_run *run, long sign)
{
	dma_addr_t iova = run->iova;
	phys_addr_t phys = PFN_PHYS(run->pfn);
	size_t left = run->npages << PAGE_SHIFT;
	int i;

	while (left) {
		for (i = VID_NR_PGSIZES - 1; i > 0; i--) {
			if (pgsizes & vid_pgsize_of(i) &&
			    left >= vid_pgsize_of(i) &&
			    IS_ALIGNED(iova | phys, vid_pgsize_of(i)))
				break;
		}
		dma->iommu_pages[i] += sign;
		iova += vid_pgsize_of(i);
		phys += vid_pgsize_of(i);
		left -= min_t(size_t, left, vid_pgsize_of(i));
	}
}

/*
 * Would page @pfn extend @run, given the hugepage policy? Pinned memory and
 * memory that is never pinned (reserved pages, other devices' MMIO) never
 * share a run, so that a run is unpinned whole or not at all.
 */
static bool vid_run_extends(const struct vid_run *run, unsigned long pfn,
			    bool reserved)
{
	return run->npages && !READ_ONCE(vid_disable_hugepages) &&
	       pfn == run->pfn + run->npages && reserved == run->reserved;
}

/* State of one vid_pin_map() call. */
struct vid_pinner {
	struct vid_container *c;
	struct vid_dma *dma;
	struct vid_run run;		/* pinned, not yet mapped */
	unsigned long charged;		/* pages the mapped prefix is charged */
	unsigned long acct;		/* pages charged to locked_vm so far */
};

/*
 * Close the pending run: map it and grow the mapped prefix by it. On
 * failure the run's pages are unpinned here; everything mapped before it
 * stays for the caller to undo.
 */
static int vid_flush_run(struct vid_pinner *p)
{
	struct vid_run *run = &p->run;
	struct vid_dma *dma = p->dma;
	int ret;

	if (!run->npages)
		return 0;
	ret = vid_map_run(p->c, dma, run);
	if (ret) {
		vid_run_unpin(run, false);
	} else {
		/* A run always continues the mapped prefix of the mapping. */
		WARN_ON_ONCE(run->iova != dma->iova + dma->mapped);
		dma->mapped += run->npages << PAGE_SHIFT;
		p->charged += vid_run_chargeable(dma, run);
		vid_count_pages(dma, vid_first_domain(p->c)->pgsize_bitmap,
				run, 1);
		vid_mark_blocks(dma, run);
	}
	run->npages = 0;
	return ret;
}

/*
 * Pin up to one batch at @vaddr of the mapping owner's mm. MAP_DMA runs in
 * the owner's context and takes the lockless fast path; a replay started
 * by another process pins through the owner's mm.
 *
 * Return: pages pinned (> 0) or -errno.
 */
static long vid_pin_batch(struct vid_dma *dma, unsigned long vaddr,
			  unsigned long npages, struct page **pages)
{
	unsigned int gup = FOLL_LONGTERM;
	struct mm_struct *mm = dma->mm;
	long ret;

	if (dma->prot & IOMMU_WRITE)
		gup |= FOLL_WRITE;
	npages = min(npages, VID_PIN_BATCH);
	/*
	 * The fast path reports an address range past the top as overflow;
	 * it is memory the process cannot have, as the slow path says.
	 */
	if (!access_ok((void __user *)vaddr, npages << PAGE_SHIFT))
		return -EFAULT;
	if (current->mm == mm) {
		ret = pin_user_pages_fast(vaddr, npages, gup, pages);
	} else {
		if (!mmget_not_zero(mm))
			return -ESRCH;
		mmap_read_lock(mm);
		ret = vid_pin_user_pages_remote(mm, vaddr, npages, gup, pages);
		mmap_read_unlock(mm);
		mmput(mm);
	}
	return ret ? ret : -EFAULT;
}

/* Add the page at @iova, frame @pfn, to the pending run, or start one. */
static int vid_consume_pfn(struct vid_pinner *p, unsigned long pfn,
			   dma_addr_t iova)
{
	bool reserved = vid_pfn_reserved(pfn);
	struct vid_run *run = &p->run;
	int ret;

	if (vid_run_extends(run, pfn, reserved)) {
		run->npages++;
		return 0;
	}
	ret = vid_flush_run(p);
	if (ret)
		return ret;
	run->iova = iova;
	run->pfn = pfn;
	run->npages = 1;
	run->reserved = reserved;
	return 0;
}

/*
 * How many pages after pages[@i] continue it inside the same folio: they
 * are physically contiguous and of the same kind by construction, so they
 * join the run without their struct pages being looked at (a 2 MiB THP is
 * one folio: 511 pages for the price of one).
 */
static long vid_folio_tail(struct page **pages, long i, long count)
{
	struct page *page = pages[i];
	struct folio *folio = page_folio(page);
	long left, n = 0;

	if (READ_ONCE(vid_disable_hugepages))
		return 0;
	left = folio_nr_pages(folio) - (page_to_pfn(page) - folio_pfn(folio)) - 1;
	left = min(left, count - i - 1);
	while (n < left && pages[i + 1 + n] == page + 1 + n)
		n++;
	return n;
}

/* Pages of a batch the mapping is charged for (vid_charge_batch()). */
static unsigned long vid_batch_chargeable(struct vid_dma *dma,
					  struct page **pages, long count,
					  dma_addr_t iova)
{
	unsigned long n = 0;
	long i, k, tail;

	/*
	 * A folio's pages are one kind: the first page's struct page
	 * speaks for the rest of the folio (vid_folio_tail()), as it does
	 * when they join a run. Reading each one cost MAP of 1 GiB of THP
	 * its lead over in-tree (x1.2 against x7.7 before).
	 */
	for (i = 0; i < count; i += 1 + tail) {
		tail = vid_folio_tail(pages, i, count);
		if (vid_pfn_reserved(page_to_pfn(pages[i])))
			continue;
		if (!dma->npins) {
			n += 1 + tail;
			continue;
		}
		/* A page a device pinned is charged to that pin already. */
		for (k = i; k <= i + tail; k++)
			if (!vid_pin_find(dma, iova +
					  ((dma_addr_t)k << PAGE_SHIFT)))
				n++;
	}
	return n;
}

/*
 * Charge a batch of just pinned pages to locked_vm, as in-tree does batch
 * by batch: only pages the mapping is charged for (vid_run_chargeable()'s
 * rule), so that memory never pinned, such as another device's BAR for
 * peer-to-peer DMA, needs no RLIMIT_MEMLOCK headroom. Over the limit the
 * batch is unpinned and the map fails; what earlier batches charged is
 * given back by vid_pin_map().
 */
static int vid_charge_batch(struct vid_pinner *p, struct page **pages,
			    long count, dma_addr_t iova)
{
	struct vid_dma *dma = p->dma;
	unsigned long n = vid_batch_chargeable(dma, pages, count, iova);
	int ret;

	ret = vid_acct_add(dma, n);
	if (ret) {
		unpin_user_pages(pages, count);
		return ret;
	}
	p->acct += n;
	return 0;
}

/*
 * Feed a batch of pinned pages into the pending run. On failure the pages
 * of the batch not yet handed to a run are unpinned.
 */
static int vid_consume_batch(struct vid_pinner *p, struct page **pages,
			     long count, dma_addr_t iova)
{
	long i, tail;
	int ret;

	for (i = 0; i < count; i += 1 + tail) {
		ret = vid_consume_pfn(p, page_to_pfn(pages[i]),
				      iova + (i << PAGE_SHIFT));
		if (ret) {
			unpin_user_pages(pages + i, count - i);
			return ret;
		}
		tail = vid_folio_tail(pages, i, count);
		p->run.npages += tail;
	}
	return 0;
}

/*
 * Memory without struct pages (typically another device's BAR mapped into
 * the process, for peer-to-peer DMA) cannot be pinned. Its frame is looked
 * up instead, faulting it in first if need be, and mapped as it is, never
 * pinned and never charged. RAM reached this way is refused, as in-tree:
 * it could be freed under the device.
 */
static int vid_pfnmap_frame(struct vid_dma *dma, unsigned long vaddr,
			    unsigned long *pfn)
{
	bool write = dma->prot & IOMMU_WRITE, writable;
	struct mm_struct *mm = dma->mm;
	struct vm_area_struct *vma;
	int ret, tries = 0;

	if (!mmget_not_zero(mm))
		return -ESRCH;
	mmap_read_lock(mm);
again:
	ret = -EFAULT;
	vma = vma_lookup(mm, vaddr);
	if (!vma || !(vma->vm_flags & VM_PFNMAP))
		goto out;
	if (vid_follow_pfn(vma, vaddr, pfn, &writable)) {
		bool unlocked = false;

		ret = fixup_user_fault(mm, vaddr, FAULT_FLAG_REMOTE |
				       (write ? FAULT_FLAG_WRITE : 0),
				       &unlocked);
		/* The lock was dropped: the VMA may be another one now. */
		if (unlocked && ++tries < 4)
			goto again;
		if (ret || unlocked ||
		    vid_follow_pfn(vma, vaddr, pfn, &writable)) {
			ret = ret ? ret : -EFAULT;
			goto out;
		}
	}
	ret = -EFAULT;
	if ((!write || writable) && vid_pfn_reserved(*pfn))
		ret = 0;
out:
	mmap_read_unlock(mm);
	mmput(mm);
	return ret;
}

/* Not pinnable: perhaps memory without struct pages. One page, then. */
static int vid_pin_map_pfnmap(struct vid_pinner *p, unsigned long vaddr,
			      dma_addr_t iova, long *got)
{
	unsigned long pfn;

	if (vid_pfnmap_frame(p->dma, vaddr, &pfn))
		return -EFAULT;
	*got = 1;
	return vid_consume_pfn(p, pfn, iova);
}

/* Pin and map the whole mapping; on failure a prefix may stay mapped. */
static int vid_pin_map_pages(struct vid_pinner *p, struct page **pages)
{
	struct vid_dma *dma = p->dma;
	unsigned long total = dma->size >> PAGE_SHIFT, done = 0;
	int ret = 0;

	while (done < total) {
		unsigned long off = done << PAGE_SHIFT;
		long got;

		if (fatal_signal_pending(current))
			return -EINTR;
		got = vid_pin_batch(dma, dma->vaddr + off, total - done, pages);
		if (got > 0) {
			ret = vid_charge_batch(p, pages, got, dma->iova + off);
			if (!ret)
				ret = vid_consume_batch(p, pages, got,
							dma->iova + off);
		} else if (got == -EFAULT) {
			ret = vid_pin_map_pfnmap(p, dma->vaddr + off,
						 dma->iova + off, &got);
		} else {
			return got;
		}
		if (ret)
			return ret;
		done += got;
		cond_resched();
	}
	return vid_flush_run(p);
}

/**
 * vid_pin_map() - pin a mapping's pages and map them into every domain
 * @c: container, locked, with at least one domain
 * @dma: mapping not mapped yet (@mapped is 0)
 *
 * Pages are charged to locked_vm batch by batch as they are pinned, only
 * those the mapping is charged for (not reserved, no external pin: what
 * in-tree charges), so a mapping over the limit fails at the batch that
 * crosses it. All or nothing: on failure the mapping is left unmapped,
 * unpinned and charged as before.
 *
 * Return: 0, or -ENOMEM, -EFAULT, -EINTR, -ESRCH or an IOMMU driver error.
 */
int vid_pin_map(struct vid_container *c, struct vid_dma *dma)
{
	struct vid_pinner p = { .c = c, .dma = dma };
	struct page **pages;
	int ret;

	if (WARN_ON_ONCE(dma->mapped))
		return -EINVAL;

	pages = (struct page **)__get_free_page(GFP_KERNEL);
	if (pages) {
		ret = vid_pin_map_pages(&p, pages);
		free_page((unsigned long)pages);
	} else {
		ret = -ENOMEM;
	}
	if (ret)
		vid_run_unpin(&p.run, false);

	/* Keep only the charge of what is mapped now... */
	vid_acct_sub(dma, p.acct - p.charged);
	/* ...and let vid_unmap_unpin() give that back on failure. */
	if (ret)
		vid_unmap_unpin(c, dma);
	return ret;
}

/* Runs unmapped from every domain but not yet flushed from the IOTLB. */
struct vid_unpin_batch {
	struct iommu_iotlb_gather gather;
	struct vid_run runs[VID_UNPIN_BATCH];
	unsigned int count;
	unsigned long uncharge;
};

/*
 * Flush the first domain's IOTLB, then let the pages go. Other domains were
 * unmapped synchronously. The charge of the pages is counted before their
 * pins are dropped, while their external pins can still be looked up.
 */
static void vid_unpin_flush(struct vid_dma *dma, struct iommu_domain *first,
			    struct vid_unpin_batch *b)
{
	bool dirty = dma->prot & IOMMU_WRITE;
	unsigned int i;

	if (!b->count)
		return;
	iommu_iotlb_sync(first, &b->gather);
	iommu_iotlb_gather_init(&b->gather);
	for (i = 0; i < b->count; i++) {
		b->uncharge += vid_run_chargeable(dma, &b->runs[i]);
		vid_run_unpin(&b->runs[i], dirty);
	}
	b->count = 0;
}

/*
 * Length of the physically contiguous run at offset @off of a mapping, as
 * @domain maps it, at most up to @limit bytes from @off; pages of another
 * kind (pinned vs never pinned) end it. Offsets rather than end addresses,
 * so that a mapping ending at the top of the IOVA space needs no special
 * case. Blocks known to be contiguous are taken whole.
 */
static size_t vid_run_len(struct iommu_domain *domain, struct vid_dma *dma,
			  size_t off, phys_addr_t phys, bool reserved,
			  size_t limit)
{
	dma_addr_t iova = dma->iova + off;
	size_t len = 0;

	while (len < limit) {
		/* Does the next page continue the run? */
		if (len && (iommu_iova_to_phys(domain, iova + len) !=
			    phys + len ||
			    vid_pfn_reserved(PHYS_PFN(phys + len)) != reserved))
			break;
		/* It does; if it starts a contiguous block, so does all of it. */
		if (limit - len >= VID_BLOCK &&
		    vid_block_contig(dma, iova + len))
			len += VID_BLOCK;
		else
			len += PAGE_SIZE;
	}
	return len;
}

/*
 * Unmap one run from every domain and queue it for unpinning. A domain that
 * unmaps less than asked still lets the device reach those pages: leaking
 * the pins is then the only safe choice. Return: false in that case.
 */
static bool vid_unmap_run(struct vid_container *c, struct vid_dma *dma,
			  struct vid_unpin_batch *b, struct vid_run *run)
{
	struct iommu_domain *first = vid_first_domain(c);
	size_t len = run->npages << PAGE_SHIFT;

	if (WARN_ONCE(iommu_unmap_fast(first, run->iova, len, &b->gather) != len,
		      "vfio_iommu_dirty: IOMMU kept 0x%llx, pins leaked\n",
		      (unsigned long long)run->iova))
		return false;

	b->runs[b->count++] = *run;
	if (b->count == VID_UNPIN_BATCH) {
		vid_unpin_flush(dma, first, b);
		cond_resched();
	}
	return true;
}

/**
 * vid_pin_init() - allocate what unmapping needs, once per container
 * @c: new container
 *
 * The batch of runs waiting for an IOTLB flush is a few kilobytes: too
 * much for the stack of a syscall, too often needed to allocate on every
 * unmap. It is used under the container lock.
 *
 * Return: 0 or -ENOMEM.
 */
int vid_pin_init(struct vid_container *c)
{
	c->unpin = kvmalloc(sizeof(*c->unpin), GFP_KERNEL_ACCOUNT);
	return c->unpin ? 0 : -ENOMEM;
}

/**
 * vid_pin_fini() - free what vid_pin_init() allocated
 * @c: container being released
 */
void vid_pin_fini(struct vid_container *c)
{
	kvfree(c->unpin);
}

/*
 * Unmap the mapped part of @dma from every domain but the first, one call
 * per domain (one IOTLB flush each, as in-tree), before the first domain's
 * runs are walked and unpinned. Return: false if a domain kept some of it:
 * its device can still reach the pages, which must then stay pinned.
 */
static bool vid_unmap_secondary(struct vid_container *c, struct vid_dma *dma)
{
	struct vid_domain *d;
	bool ok = true;

	d = list_first_entry(&c->domains, struct vid_domain, node);
	list_for_each_entry_continue(d, &c->domains, node) {
		ok &= iommu_unmap(d->domain, dma->iova, dma->mapped) ==
		      dma->mapped;
		cond_resched();
	}
	return !WARN_ONCE(!ok, "vfio_iommu_dirty: IOMMU kept part of 0x%llx, pins leaked\n",
			  (unsigned long long)dma->iova);
}

/**
 * vid_unmap_unpin() - undo vid_pin_map(), also a partial one
 * @c: container, locked
 * @dma: mapping; its first @mapped bytes are mapped in every domain
 *
 * Leaves @dma unmapped, charged only for its external pins.
 */
void vid_unmap_unpin(struct vid_container *c, struct vid_dma *dma)
{
	struct iommu_domain *first;
	struct vid_unpin_batch *b;
	size_t off = 0;

	if (!dma->mapped)
		return;
	if (WARN_ON_ONCE(list_empty(&c->domains)))
		goto out;
	if (!vid_unmap_secondary(c, dma))
		goto out;

	b = c->unpin;
	iommu_iotlb_gather_init(&b->gather);
	b->count = 0;
	b->uncharge = 0;
	first = vid_first_domain(c);

	while (off < dma->mapped) {
		phys_addr_t phys = iommu_iova_to_phys(first, dma->iova + off);
		struct vid_run run;

		if (WARN_ON_ONCE(!phys)) {
			off += PAGE_SIZE;
			continue;
		}
		run.iova = dma->iova + off;
		run.pfn = PHYS_PFN(phys);
		run.reserved = vid_pfn_reserved(run.pfn);
		run.npages = vid_run_len(first, dma, off, phys, run.reserved,
					 dma->mapped - off) >> PAGE_SHIFT;
		if (!vid_unmap_run(c, dma, b, &run))
			break;
		off += run.npages << PAGE_SHIFT;
	}
	vid_unpin_flush(dma, first, b);
	vid_acct_sub(dma, b->uncharge);
out:
	dma->mapped = 0;
	memset(dma->iommu_pages, 0, sizeof(dma->iommu_pages));
	bitmap_free(dma->contig);
	dma->contig = NULL;
}

/* Copy one mapping into @to; on failure @to keeps none of it. */
static int vid_replay_one(struct iommu_domain *first, struct vid_domain *to,
			  struct vid_dma *dma)
{
	size_t off = 0, len;
	int ret = 0;

	while (off < dma->mapped) {
		phys_addr_t phys = iommu_iova_to_phys(first, dma->iova + off);

		if (WARN_ON_ONCE(!phys)) {
			ret = -EFAULT;
			break;
		}
		len = vid_run_len(first, dma, off, phys,
				  vid_pfn_reserved(PHYS_PFN(phys)),
				  dma->mapped - off);
		ret = vid_iommu_map(to->domain, dma->iova + off, phys, len,
				    dma->prot | IOMMU_CACHE);
		if (ret)
			break;
		off += len;
	}
	if (ret && off)
		iommu_unmap(to->domain, dma->iova, off);
	return ret;
}

/* Another domain already maps everything: copy its page tables. */
static int vid_replay_copy(struct vid_container *c, struct vid_domain *to)
{
	struct iommu_domain *first = vid_first_domain(c);
	struct rb_node *n, *u;
	int ret;

	for (n = rb_first(&c->dma_tree); n; n = rb_next(n)) {
		ret = vid_replay_one(first, to,
				     rb_entry(n, struct vid_dma, node));
		if (ret)
			goto undo;
		cond_resched();
	}
	return 0;

undo:
	for (u = rb_first(&c->dma_tree); u != n; u = rb_next(u)) {
		struct vid_dma *dma = rb_entry(u, struct vid_dma, node);

		iommu_unmap(to->domain, dma->iova, dma->mapped);
	}
	return ret;
}

/*
 * @to is the container's first and only domain: nothing is pinned for the
 * IOMMU yet, so pin and map every mapping now.
 */
static int vid_replay_pin(struct vid_container *c)
{
	struct rb_node *n, *u;
	int ret;

	for (n = rb_first(&c->dma_tree); n; n = rb_next(n)) {
		ret = vid_pin_map(c, rb_entry(n, struct vid_dma, node));
		if (ret)
			goto undo;
	}
	return 0;

undo:
	for (u = rb_first(&c->dma_tree); u != n; u = rb_next(u))
		vid_unmap_unpin(c, rb_entry(u, struct vid_dma, node));
	return ret;
}

/**
 * vid_replay() - give a new domain every existing mapping
 * @c: container, locked
 * @to: the new domain, already last on @c's domain list
 *
 * If another domain exists, its page tables say where the pinned pages are.
 * If @to is the first domain (the container so far had only emulated
 * groups), the mappings are pinned and charged now.
 *
 * Return: 0, or an error after undoing everything done to @to.
 */
int vid_replay(struct vid_container *c, struct vid_domain *to)
{
	if (WARN_ON_ONCE(list_last_entry(&c->domains, struct vid_domain,
					 node) != to))
		return -EINVAL;
	if (list_is_singular(&c->domains))
		return vid_replay_pin(c);
	return vid_replay_copy(c, to);
}
