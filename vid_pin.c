// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - pinning, locked_vm accounting and IOMMU page tables
 * of one mapping.
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

#include "vfio_iommu_dirty.h"

/* Page pointers per pinning batch: exactly one page of them. */
#define VID_PIN_BATCH	(PAGE_SIZE / sizeof(struct page *))

/* Runs unmapped under one deferred IOTLB flush before they are unpinned. */
#define VID_UNPIN_BATCH	64

/* Physically contiguous pinned pages, mapped at consecutive IOVAs. */
struct vid_run {
	dma_addr_t iova;
	unsigned long pfn;
	unsigned long npages;
};

static void vid_run_unpin(const struct vid_run *run, bool dirty)
{
	if (run->npages)
		unpin_user_page_range_dirty_lock(pfn_to_page(run->pfn),
						 run->npages, dirty);
}

/*
 * Take mmap_lock of the mapping's mm for writing, as __account_locked_vm()
 * requires.
 */
static int vid_acct_locked(struct vid_dma *dma, unsigned long npages,
			   bool inc)
{
	int ret;

	if (inc) {
		ret = mmap_write_lock_killable(dma->mm);
		if (ret)
			return ret;
	} else {
		/*
		 * Giving pages back must not be skipped because the caller
		 * was killed: a lost decrement leaks locked_vm forever.
		 */
		mmap_write_lock(dma->mm);
	}
	ret = __account_locked_vm(dma->mm, npages, inc, dma->task,
				  dma->lock_cap);
	mmap_write_unlock(dma->mm);
	return ret;
}

/**
 * vid_acct_add() - charge pages to the mapping owner's locked_vm
 * @dma: mapping; its @mm must be current->mm or otherwise alive
 * @npages: pages to add
 *
 * Return: 0, -ENOMEM past RLIMIT_MEMLOCK (unless the owner had
 * CAP_IPC_LOCK), or -EINTR if a fatal signal interrupted the wait.
 */
int vid_acct_add(struct vid_dma *dma, unsigned long npages)
{
	int ret;

	if (!npages)
		return 0;
	ret = vid_acct_locked(dma, npages, true);
	if (!ret)
		dma->locked_vm += npages;
	return ret;
}

/**
 * vid_acct_sub() - give pages back to the mapping owner's locked_vm
 * @dma: mapping
 * @npages: pages to give back, at most @dma->locked_vm
 *
 * Once the owner's mm has no users left (the process exited) there is no
 * counter to correct, so only the mapping's own record is updated.
 */
void vid_acct_sub(struct vid_dma *dma, unsigned long npages)
{
	if (WARN_ON_ONCE(npages > dma->locked_vm))
		npages = dma->locked_vm;
	if (!npages)
		return;
	if (mmget_not_zero(dma->mm)) {
		vid_acct_locked(dma, npages, false);
		mmput(dma->mm);
	}
	dma->locked_vm -= npages;
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
		ret = iommu_map(d->domain, run->iova, phys, len,
				dma->prot | d->prot, GFP_KERNEL_ACCOUNT);
		if (ret)
			goto unwind;
	}
	return 0;

unwind:
	list_for_each_entry_continue_reverse(d, &c->domains, node)
		iommu_unmap(d->domain, run->iova, len);
	return ret;
}

/* Would page @pfn extend @run, given the hugepage policy? */
static bool vid_run_extends(const struct vid_run *run, unsigned long pfn)
{
	return run->npages && !vid_disable_hugepages &&
	       pfn == run->pfn + run->npages;
}

/*
 * Close @run: map it and grow the mapping by it. On failure the run's pages
 * are unpinned here; the caller still owns everything mapped before it.
 */
static int vid_flush_run(struct vid_container *c, struct vid_dma *dma,
			 struct vid_run *run)
{
	int ret;

	if (!run->npages)
		return 0;
	ret = vid_map_run(c, dma, run);
	if (ret) {
		vid_run_unpin(run, false);
	} else {
		/* A run always continues the mapped prefix of the mapping. */
		WARN_ON_ONCE(run->iova != dma->iova + dma->size);
		dma->size += run->npages << PAGE_SHIFT;
	}
	run->npages = 0;
	return ret;
}

/* Pin up to one batch at @vaddr; returns pages pinned (> 0) or -errno. */
static long vid_pin_batch(struct vid_dma *dma, unsigned long vaddr,
			  unsigned long npages, struct page **pages)
{
	unsigned int gup = FOLL_LONGTERM;
	long ret;

	if (dma->prot & IOMMU_WRITE)
		gup |= FOLL_WRITE;
	ret = pin_user_pages_fast(vaddr, min(npages, VID_PIN_BATCH), gup,
				  pages);
	return ret ? ret : -EFAULT;
}

/*
 * Feed a batch of pinned pages into the current run, flushing the run each
 * time the physical addresses break. On failure the pages of the batch not
 * yet handed to a run are unpinned.
 */
static int vid_consume_batch(struct vid_container *c, struct vid_dma *dma,
			     struct vid_run *run, struct page **pages,
			     long count, dma_addr_t iova)
{
	long i;
	int ret;

	for (i = 0; i < count; i++, iova += PAGE_SIZE) {
		unsigned long pfn = page_to_pfn(pages[i]);

		if (vid_run_extends(run, pfn)) {
			run->npages++;
			continue;
		}
		ret = vid_flush_run(c, dma, run);
		if (ret) {
			unpin_user_pages(pages + i, count - i);
			return ret;
		}
		run->iova = iova;
		run->pfn = pfn;
		run->npages = 1;
	}
	return 0;
}

/**
 * vid_pin_map() - pin and map the pages of a new mapping
 * @c: container, locked
 * @dma: mapping linked in the tree with @size 0, owned by current->mm
 * @size: bytes to pin and map from @dma->iova / @dma->vaddr
 *
 * The whole size is charged to locked_vm first, so a mapping over the limit
 * fails before any page is touched. On failure the caller removes @dma,
 * which unmaps, unpins and gives back whatever was done.
 *
 * Return: 0, or -ENOMEM, -EFAULT, -EINTR or an IOMMU driver error.
 */
int vid_pin_map(struct vid_container *c, struct vid_dma *dma, size_t size)
{
	unsigned long total = size >> PAGE_SHIFT, done = 0;
	struct vid_run run = { };
	struct page **pages;
	int ret;

	ret = vid_acct_add(dma, total);
	if (ret)
		return ret;

	pages = (struct page **)__get_free_page(GFP_KERNEL);
	if (!pages)
		return -ENOMEM;

	while (done < total) {
		long got;

		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		got = vid_pin_batch(dma, dma->vaddr + (done << PAGE_SHIFT),
				    total - done, pages);
		if (got < 0) {
			ret = got;
			break;
		}
		ret = vid_consume_batch(c, dma, &run, pages, got,
					dma->iova + (done << PAGE_SHIFT));
		if (ret)
			break;
		done += got;
		cond_resched();
	}

	if (ret)
		vid_run_unpin(&run, false);
	else
		ret = vid_flush_run(c, dma, &run);
	free_page((unsigned long)pages);
	return ret;
}

/* Runs unmapped from every domain but not yet flushed from the IOTLB. */
struct vid_unpin_batch {
	struct iommu_iotlb_gather gather;
	struct vid_run runs[VID_UNPIN_BATCH];
	unsigned int count;
};

/* Flush the first domain's IOTLB, then let the pages go. */
static void vid_unpin_flush(struct vid_domain *first,
			    struct vid_unpin_batch *b, bool dirty)
{
	unsigned int i;

	iommu_iotlb_sync(first->domain, &b->gather);
	iommu_iotlb_gather_init(&b->gather);
	for (i = 0; i < b->count; i++)
		vid_run_unpin(&b->runs[i], dirty);
	b->count = 0;
}

/*
 * Length of the physically contiguous run that starts at @iova in @domain,
 * at most up to @end.
 */
static size_t vid_run_len(struct iommu_domain *domain, dma_addr_t iova,
			  phys_addr_t phys, dma_addr_t end)
{
	size_t len = PAGE_SIZE;

	while (iova + len < end &&
	       iommu_iova_to_phys(domain, iova + len) == phys + len)
		len += PAGE_SIZE;
	return len;
}

/**
 * vid_unmap_unpin() - undo vid_pin_map() for everything a mapping holds
 * @c: container, locked
 * @dma: mapping; its @size bytes are mapped in every domain
 *
 * Leaves @dma with size 0 and locked_vm 0.
 */
void vid_unmap_unpin(struct vid_container *c, struct vid_dma *dma)
{
	bool dirty = dma->prot & IOMMU_WRITE;
	dma_addr_t iova = dma->iova, end = dma->iova + dma->size;
	struct vid_unpin_batch *b;
	struct vid_domain *first, *d;

	if (!dma->size || list_empty(&c->domains))
		goto out;

	/* Small enough for the stack of a syscall, but keep it off anyway. */
	b = kmalloc(sizeof(*b), GFP_KERNEL | __GFP_NOFAIL);
	iommu_iotlb_gather_init(&b->gather);
	b->count = 0;
	first = list_first_entry(&c->domains, struct vid_domain, node);

	while (iova < end) {
		phys_addr_t phys = iommu_iova_to_phys(first->domain, iova);
		size_t len;

		if (WARN_ON_ONCE(!phys)) {
			iova += PAGE_SIZE;
			continue;
		}
		len = vid_run_len(first->domain, iova, phys, end);
		iommu_unmap_fast(first->domain, iova, len, &b->gather);
		d = first;
		list_for_each_entry_continue(d, &c->domains, node)
			iommu_unmap(d->domain, iova, len);

		b->runs[b->count++] = (struct vid_run) {
			.iova = iova,
			.pfn = PHYS_PFN(phys),
			.npages = len >> PAGE_SHIFT,
		};
		if (b->count == VID_UNPIN_BATCH) {
			vid_unpin_flush(first, b, dirty);
			cond_resched();
		}
		iova += len;
	}
	vid_unpin_flush(first, b, dirty);
	kfree(b);
out:
	dma->size = 0;
	vid_acct_sub(dma, dma->locked_vm);
}

/* Replay one mapping; on failure @to keeps none of it. */
static int vid_replay_one(struct vid_domain *first, struct vid_domain *to,
			  struct vid_dma *dma)
{
	dma_addr_t iova = dma->iova, end = dma->iova + dma->size;
	int ret = 0;

	while (iova < end) {
		phys_addr_t phys = iommu_iova_to_phys(first->domain, iova);
		size_t len;

		if (WARN_ON_ONCE(!phys)) {
			ret = -EFAULT;
			break;
		}
		len = vid_run_len(first->domain, iova, phys, end);
		ret = iommu_map(to->domain, iova, phys, len,
				dma->prot | to->prot, GFP_KERNEL_ACCOUNT);
		if (ret)
			break;
		iova += len;
	}
	if (ret && iova > dma->iova)
		iommu_unmap(to->domain, dma->iova, iova - dma->iova);
	return ret;
}

/**
 * vid_replay() - map every existing mapping into a new domain
 * @c: container, locked
 * @to: the new domain, not yet on @c's list
 *
 * The pages are already pinned; the first domain tells where they are.
 *
 * Return: 0, or the IOMMU driver's error after undoing what was mapped.
 */
int vid_replay(struct vid_container *c, struct vid_domain *to)
{
	struct vid_domain *first;
	struct rb_node *n, *u;
	int ret;

	if (list_empty(&c->domains))
		return 0;
	first = list_first_entry(&c->domains, struct vid_domain, node);

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

		iommu_unmap(to->domain, dma->iova, dma->size);
	}
	return ret;
}
