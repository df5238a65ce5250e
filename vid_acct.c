// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - locked_vm accounting.
 *
 * Every pinned page that has a struct page and is not reserved counts once
 * against the locked_vm of the mm that mapped it, and against its owner's
 * RLIMIT_MEMLOCK unless the owner had CAP_IPC_LOCK, exactly as in-tree. A
 * page is charged to whoever holds it: the IOMMU mapping while the mapping
 * is mapped into domains and the page has no external pin, else the
 * external pin (see vid_emu.c). Moving a page between the two owners never
 * changes the total.
 */
#include <linux/capability.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>

#include "vfio_iommu_dirty.h"

/**
 * vid_pfn_reserved() - does a pinned pfn escape accounting?
 * @pfn: page frame number
 *
 * Return: true for pfns without a struct page and for reserved pages (the
 * shared zero page among them), which are never charged.
 */
bool vid_pfn_reserved(unsigned long pfn)
{
	return !pfn_valid(pfn) || PageReserved(pfn_to_page(pfn));
}

/*
 * Change the mapping owner's locked_vm with its mmap_lock held for writing,
 * as __account_locked_vm() requires. An mm without users (the owner
 * exited) has no counter left to correct.
 */
static int vid_acct_locked(struct vid_dma *dma, unsigned long npages,
			   bool inc)
{
	int ret = 0;

	if (!mmget_not_zero(dma->mm))
		return inc ? -ESRCH : 0;
	if (inc) {
		ret = mmap_write_lock_killable(dma->mm);
	} else {
		/*
		 * Giving pages back must not be skipped because the caller
		 * was killed: a lost decrement leaks locked_vm for good.
		 */
		mmap_write_lock(dma->mm);
	}
	if (!ret) {
		ret = __account_locked_vm(dma->mm, npages, inc, dma->task,
					  dma->lock_cap);
		mmap_write_unlock(dma->mm);
	}
	mmput(dma->mm);
	return ret;
}

/**
 * vid_acct_add() - charge pages to the mapping owner's locked_vm
 * @dma: mapping
 * @npages: pages to add
 *
 * Return: 0, -ENOMEM past RLIMIT_MEMLOCK (unless the owner had
 * CAP_IPC_LOCK), -ESRCH if the owner has exited, or -EINTR if a fatal
 * signal interrupted the wait for its mmap_lock.
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
 */
void vid_acct_sub(struct vid_dma *dma, unsigned long npages)
{
	if (WARN_ON_ONCE(npages > dma->locked_vm))
		npages = dma->locked_vm;
	if (!npages)
		return;
	vid_acct_locked(dma, npages, false);
	dma->locked_vm -= npages;
}

/**
 * vid_acct_unpin() - give back the charge of a page a device unpinned
 * @dma: mapping, container locked
 *
 * While an unmap tells devices to unpin (@dma->acct_defer), the charge is
 * only counted, to be given back with the others by vid_acct_flush():
 * meanwhile locked_vm is higher than it need be, never lower.
 */
void vid_acct_unpin(struct vid_dma *dma)
{
	if (dma->acct_defer)
		dma->acct_deferred++;
	else
		vid_acct_sub(dma, 1);
}

/**
 * vid_acct_flush() - end a deferral begun by setting @dma->acct_defer
 * @dma: mapping, container locked
 */
void vid_acct_flush(struct vid_dma *dma)
{
	dma->acct_defer = false;
	vid_acct_sub(dma, dma->acct_deferred);
	dma->acct_deferred = 0;
}

/**
 * vid_acct_change_owner() - make the current process own a mapping
 * @dma: mapping whose vaddr is being set by current
 *
 * After a vaddr update from another process (a new QEMU after exec, say),
 * the charge moves from the old mm to current's, checked against current's
 * RLIMIT_MEMLOCK, and the mapping keeps current's task and mm from then on.
 *
 * Return: 0, or -ENOMEM / -EINTR with nothing changed.
 */
int vid_acct_change_owner(struct vid_dma *dma)
{
	struct task_struct *task = current->group_leader;
	struct mm_struct *mm = current->mm;
	bool lock_cap;
	int ret;

	if (!mm || mm == dma->mm)
		return 0;
	lock_cap = capable(CAP_IPC_LOCK);
	if (dma->locked_vm) {
		ret = mmap_write_lock_killable(mm);
		if (ret)
			return ret;
		ret = __account_locked_vm(mm, dma->locked_vm, true, task,
					  lock_cap);
		mmap_write_unlock(mm);
		if (ret)
			return ret;
		vid_acct_locked(dma, dma->locked_vm, false);
	}

	put_task_struct(dma->task);
	dma->task = get_task_struct(task);
	mmdrop(dma->mm);
	dma->mm = mm;
	mmgrab(mm);
	dma->lock_cap = lock_cap;
	return 0;
}
