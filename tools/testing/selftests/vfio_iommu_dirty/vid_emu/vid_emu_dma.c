// SPDX-License-Identifier: GPL-2.0
/*
 * vid_emu: the pin table, the commands that reach the type1 backend's
 * emulated-device interface (pin_pages, unpin_pages, dma_rw), and the
 * dma_unmap callback through which the backend takes pins back.
 *
 * The table holds one entry per IOVA page, with the number of pins taken
 * on it. It mirrors the backend's own per-page pin counts, so that every
 * vfio_unpin_pages() call made here names a page this device pinned and
 * has not given back: the VFIO core and the backend treat anything else
 * as a driver bug.
 */
#include <linux/capability.h>
#include <linux/highmem.h>
#include <linux/iommu.h>
#include <linux/kernel.h>
#include <linux/limits.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vid_emu.h"
#include "vid_emu_uapi.h"

/* One IOVA page this device holds pinned. */
struct vid_emu_pinned {
	struct page *page;	/* what the backend returned for the first pin */
	unsigned int refs;	/* pins taken and not given back yet */
	int prot;		/* every IOMMU_READ/IOMMU_WRITE asked for */
};

/*
 * Table index of the page holding @iova. False when the page number does
 * not fit an index, which can only happen where unsigned long is 32 bits.
 */
static bool vid_emu_index(u64 iova, unsigned long *index)
{
	*index = iova >> PAGE_SHIFT;
	return *index == iova >> PAGE_SHIFT;
}

/**
 * vid_emu_range_ok() - check a user-supplied IOVA range
 * @iova: start
 * @len: length in bytes
 *
 * Return: true when [@iova, @iova + @len) is not empty, does not wrap
 * around the end of the 64-bit space and is representable as a dma_addr_t
 * and as pin table indexes.
 */
bool vid_emu_range_ok(u64 iova, u64 len)
{
	unsigned long index;
	u64 last;

	if (!len || len - 1 > U64_MAX - iova)
		return false;
	last = iova + len - 1;
	if ((dma_addr_t)last != last)
		return false;
	return vid_emu_index(last, &index);
}

static int vid_emu_prot(u32 flags)
{
	int prot = 0;

	if (flags & VID_EMU_PIN_READ)
		prot |= IOMMU_READ;
	if (flags & VID_EMU_PIN_WRITE)
		prot |= IOMMU_WRITE;
	return prot;
}

/* Count one more pin of the page at @index, which the backend just took. */
static int vid_emu_record(struct vid_emu_dev *emu, unsigned long index,
			  struct page *page, int prot)
{
	struct vid_emu_pinned *p;
	int ret;

	lockdep_assert_held(&emu->lock);

	p = xa_load(&emu->pins, index);
	if (p) {
		if (p->refs == UINT_MAX)
			return -EOVERFLOW;
		/* The backend must give the same page for the same IOVA. */
		if (p->page != page)
			emu->anomalies++;
		p->refs++;
		p->prot |= prot;
		emu->pinned_refs++;
		return 0;
	}

	p = kzalloc(sizeof(*p), GFP_KERNEL_ACCOUNT);
	if (!p)
		return -ENOMEM;
	p->page = page;
	p->refs = 1;
	p->prot = prot;
	ret = xa_insert(&emu->pins, index, p, GFP_KERNEL_ACCOUNT);
	if (ret) {
		kfree(p);
		return ret;
	}
	emu->pinned_pages++;
	emu->pinned_refs++;
	return 0;
}

/*
 * Take back one count of the page at @index from the table only; the
 * caller gives the pin itself back to the backend.
 */
static void vid_emu_forget(struct vid_emu_dev *emu, unsigned long index)
{
	struct vid_emu_pinned *p;

	lockdep_assert_held(&emu->lock);

	p = xa_load(&emu->pins, index);
	if (WARN_ON_ONCE(!p || !p->refs))
		return;
	emu->pinned_refs--;
	if (--p->refs)
		return;
	xa_erase(&emu->pins, index);
	kfree(p);
	emu->pinned_pages--;
}

/*
 * Give back every pin held on pages @first..@last (table indexes) and drop
 * their entries. Returns the number of pins given back.
 */
static u64 vid_emu_drop_range(struct vid_emu_dev *emu, unsigned long first,
			      unsigned long last)
{
	struct vid_emu_pinned *p;
	unsigned long index;
	u64 dropped = 0;

	lockdep_assert_held(&emu->lock);

	xa_for_each_range(&emu->pins, index, p, first, last) {
		dma_addr_t iova = (dma_addr_t)index << PAGE_SHIFT;

		for (; p->refs; p->refs--) {
			vfio_unpin_pages(&emu->vdev, iova, 1);
			dropped++;
		}
		xa_erase(&emu->pins, index);
		kfree(p);
		emu->pinned_pages--;
	}
	emu->pinned_refs -= dropped;
	return dropped;
}

/*
 * A successful vfio_pin_pages() returns @npages and fills every entry of
 * @pages. Anything else breaks its contract.
 */
static bool vid_emu_pin_result_ok(struct page **pages, u32 npages, int ret)
{
	u32 i;

	if (ret < 0 || (u32)ret != npages)
		return false;
	for (i = 0; i < npages; i++)
		if (!pages[i])
			return false;
	return true;
}

/**
 * vid_emu_pin_locked() - pin pages through the backend and count them
 * @emu: the device, with @emu->lock held
 * @iova: page-aligned start, checked by the caller
 * @npages: pages, 1..VID_EMU_PIN_MAX
 * @prot: IOMMU_READ and/or IOMMU_WRITE
 * @pages: room for @npages entries; receives the pinned pages
 *
 * Either every page is pinned and counted in the table, or nothing
 * changes: a failure after the backend pinned gives the pins back.
 *
 * Return: 0 or a negative errno: the backend's, -ENOMEM, -EOVERFLOW, or
 * -EIO when the backend broke the pin_pages contract.
 */
int vid_emu_pin_locked(struct vid_emu_dev *emu, u64 iova, u32 npages,
		       int prot, struct page **pages)
{
	unsigned long index;
	u32 done;
	int ret;

	lockdep_assert_held(&emu->lock);
	vid_emu_index(iova, &index);

	ret = vfio_pin_pages(&emu->vdev, iova, npages, prot, pages);
	if (ret < 0)
		return ret;
	if (!vid_emu_pin_result_ok(pages, npages, ret)) {
		/* Give back what the backend says it pinned, and no more. */
		emu->anomalies++;
		if (ret > 0)
			vfio_unpin_pages(&emu->vdev, iova,
					 min_t(u32, ret, npages));
		return -EIO;
	}
	for (done = 0; done < npages; done++) {
		ret = vid_emu_record(emu, index + done, pages[done], prot);
		if (ret)
			goto undo;
	}
	return 0;

undo:
	while (done)
		vid_emu_forget(emu, index + --done);
	vfio_unpin_pages(&emu->vdev, iova, npages);
	return ret;
}

/**
 * vid_emu_unpin_locked() - give back one pin of each page of a range
 * @emu: the device, with @emu->lock held
 * @iova: page-aligned start, checked by the caller
 * @npages: pages, 1..VID_EMU_PIN_MAX
 *
 * Every page named must be pinned by this device; otherwise nothing is
 * unpinned. The pages are given back with one vfio_unpin_pages() call for
 * the whole range, as a device driver would.
 *
 * Return: 0 or -ENOENT.
 */
int vid_emu_unpin_locked(struct vid_emu_dev *emu, u64 iova, u32 npages)
{
	unsigned long index;
	u32 i;

	lockdep_assert_held(&emu->lock);
	vid_emu_index(iova, &index);

	for (i = 0; i < npages; i++)
		if (!xa_load(&emu->pins, index + i))
			return -ENOENT;
	for (i = 0; i < npages; i++)
		vid_emu_forget(emu, index + i);
	vfio_unpin_pages(&emu->vdev, iova, npages);
	return 0;
}

/**
 * vid_emu_pin() - VID_EMU_PIN: pin pages through the backend
 * @emu: the device
 * @arg: user pointer to struct vid_emu_pin
 *
 * Either every page named is pinned and counted in the table, or nothing
 * changes: a failure after the backend pinned (no memory for the table,
 * the pfn array not writable) gives the pins back before returning.
 *
 * Return: 0 or a negative errno (see vid_emu_uapi.h).
 */
long vid_emu_pin(struct vid_emu_dev *emu, void __user *arg)
{
	const size_t minsz = offsetofend(struct vid_emu_pin, pfns);
	struct vid_emu_pin pin;
	struct page **pages;
	u64 __user *upfns;
	u32 i;
	int ret;

	if (copy_from_user(&pin, arg, minsz))
		return -EFAULT;
	if (pin.argsz < minsz || pin.pad || !pin.npages ||
	    (pin.flags & ~(VID_EMU_PIN_READ | VID_EMU_PIN_WRITE)))
		return -EINVAL;
	if (pin.npages > VID_EMU_PIN_MAX)
		return -E2BIG;
	if (!PAGE_ALIGNED(pin.iova) ||
	    !vid_emu_range_ok(pin.iova, (u64)pin.npages << PAGE_SHIFT))
		return -EINVAL;

	upfns = u64_to_user_ptr(pin.pfns);
	if (upfns) {
		/* Page frame numbers are for the privileged, as in pagemap. */
		if (!capable(CAP_SYS_ADMIN))
			return -EPERM;
		/* Fault the array in now, before anything is pinned. */
		if (clear_user(upfns, pin.npages * sizeof(*upfns)))
			return -EFAULT;
	}

	pages = kcalloc(pin.npages, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!pages)
		return -ENOMEM;

	mutex_lock(&emu->lock);
	ret = vid_emu_pin_locked(emu, pin.iova, pin.npages,
				 vid_emu_prot(pin.flags), pages);
	for (i = 0; !ret && upfns && i < pin.npages; i++) {
		if (put_user((u64)page_to_pfn(pages[i]), &upfns[i])) {
			vid_emu_unpin_locked(emu, pin.iova, pin.npages);
			ret = -EFAULT;
		}
	}
	mutex_unlock(&emu->lock);
	kfree(pages);
	return ret;
}

/**
 * vid_emu_unpin_all() - give back every pin the device holds
 * @emu: the device
 *
 * Used by VID_EMU_UNPIN_ALL and when the device is closed.
 */
void vid_emu_unpin_all(struct vid_emu_dev *emu)
{
	mutex_lock(&emu->lock);
	vid_emu_drop_range(emu, 0, ULONG_MAX);
	mutex_unlock(&emu->lock);
}

/**
 * vid_emu_unpin() - VID_EMU_UNPIN: give pins back through the backend
 * @emu: the device
 * @arg: user pointer to struct vid_emu_unpin
 *
 * Every page named must be pinned by this device; otherwise nothing is
 * unpinned. The pages are then given back with one vfio_unpin_pages() call
 * for the whole range, as a device driver would.
 *
 * Return: 0 or a negative errno (see vid_emu_uapi.h).
 */
long vid_emu_unpin(struct vid_emu_dev *emu, void __user *arg)
{
	const size_t minsz = offsetofend(struct vid_emu_unpin, pad);
	struct vid_emu_unpin unpin;
	int ret;

	if (copy_from_user(&unpin, arg, minsz))
		return -EFAULT;
	if (unpin.argsz < minsz || unpin.pad ||
	    (unpin.flags & ~VID_EMU_UNPIN_ALL))
		return -EINVAL;
	if (unpin.flags & VID_EMU_UNPIN_ALL) {
		if (unpin.iova || unpin.npages)
			return -EINVAL;
		vid_emu_unpin_all(emu);
		return 0;
	}
	if (!unpin.npages)
		return -EINVAL;
	if (unpin.npages > VID_EMU_PIN_MAX)
		return -E2BIG;
	if (!PAGE_ALIGNED(unpin.iova) ||
	    !vid_emu_range_ok(unpin.iova, (u64)unpin.npages << PAGE_SHIFT))
		return -EINVAL;
	mutex_lock(&emu->lock);
	ret = vid_emu_unpin_locked(emu, unpin.iova, unpin.npages);
	mutex_unlock(&emu->lock);
	return ret;
}

/**
 * vid_emu_rw_pinned_locked() - device access through pinned pages
 * @emu: the device, with @emu->lock held
 * @iova: start of the access
 * @buf: kernel buffer of @len bytes
 * @len: bytes, at least 1
 * @write: copy @buf to the pages rather than from them
 *
 * The way a mediated driver uses what vfio_pin_pages() gave it. Every page
 * touched must be pinned, with IOMMU_WRITE asked for if @write.
 *
 * Return: 0, -ENOENT (a page not pinned) or -EPERM (not pinned writable),
 * with nothing accessed.
 */
int vid_emu_rw_pinned_locked(struct vid_emu_dev *emu, u64 iova, u8 *buf,
			     size_t len, bool write)
{
	struct vid_emu_pinned *p;
	unsigned long first, n, i;
	size_t off, chunk;

	lockdep_assert_held(&emu->lock);
	vid_emu_index(iova, &first);
	n = (offset_in_page(iova) + len + PAGE_SIZE - 1) >> PAGE_SHIFT;

	for (i = 0; i < n; i++) {
		p = xa_load(&emu->pins, first + i);
		if (!p)
			return -ENOENT;
		if (write && !(p->prot & IOMMU_WRITE))
			return -EPERM;
	}
	off = offset_in_page(iova);
	for (i = 0; i < n; i++) {
		p = xa_load(&emu->pins, first + i);
		chunk = min_t(size_t, len, PAGE_SIZE - off);
		if (write)
			memcpy_to_page(p->page, off, buf, chunk);
		else
			memcpy_from_page(buf, p->page, off, chunk);
		buf += chunk;
		len -= chunk;
		off = 0;
	}
	return 0;
}

/**
 * vid_emu_rw() - VID_EMU_RW: device read or write at an IOVA
 * @emu: the device
 * @arg: user pointer to struct vid_emu_rw
 *
 * The user buffer is checked (a read faults it in) before the backend is
 * called, so a bad buffer fails with -EFAULT without any device access.
 *
 * Return: 0 or a negative errno (see vid_emu_uapi.h).
 */
long vid_emu_rw(struct vid_emu_dev *emu, void __user *arg)
{
	const size_t minsz = offsetofend(struct vid_emu_rw, length);
	struct vid_emu_rw rw;
	void __user *data;
	bool write;
	void *buf;
	int ret;

	if (copy_from_user(&rw, arg, minsz))
		return -EFAULT;
	if (rw.argsz < minsz || !rw.length ||
	    (rw.flags & ~(VID_EMU_RW_WRITE | VID_EMU_RW_PINNED)))
		return -EINVAL;
	if (rw.length > VID_EMU_RW_MAX)
		return -E2BIG;
	if (!vid_emu_range_ok(rw.iova, rw.length))
		return -EINVAL;
	write = rw.flags & VID_EMU_RW_WRITE;
	data = u64_to_user_ptr(rw.data);

	buf = kvzalloc(rw.length, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	if (write)
		ret = copy_from_user(buf, data, rw.length) ? -EFAULT : 0;
	else
		ret = clear_user(data, rw.length) ? -EFAULT : 0;
	if (ret)
		goto out_free;

	if (rw.flags & VID_EMU_RW_PINNED) {
		mutex_lock(&emu->lock);
		ret = vid_emu_rw_pinned_locked(emu, rw.iova, buf, rw.length,
					       write);
		mutex_unlock(&emu->lock);
	} else {
		ret = vfio_dma_rw(&emu->vdev, rw.iova, buf, rw.length, write);
	}
	if (!ret && !write && copy_to_user(data, buf, rw.length))
		ret = -EFAULT;
out_free:
	kvfree(buf);
	return ret;
}

/**
 * vid_emu_dma_unmap() - the dma_unmap callback of struct vfio_device_ops
 * @vdev: the device
 * @iova: start of the IOVA range user space is unmapping
 * @length: its length in bytes
 *
 * The backend calls this when a mapping that holds pins is about to go
 * away, and expects every pin this device holds in the range to be given
 * back before it returns (in-tree type1 retries the unmap and finally
 * gives up with a BUG otherwise). The call and its range are counted for
 * VID_EMU_STATUS.
 */
void vid_emu_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length)
{
	struct vid_emu_dev *emu = to_vid_emu(vdev);
	unsigned long first, last;
	u64 end;

	mutex_lock(&emu->lock);
	if (emu->gate_armed) {
		/* VID_EMU_GATE: let the test act while the backend waits. */
		emu->gate_held++;
		mutex_unlock(&emu->lock);
		wake_up_all(&emu->gate_wq);
		wait_event_timeout(emu->gate_wq, !READ_ONCE(emu->gate_armed),
				   msecs_to_jiffies(VID_EMU_GATE_MAX_MS));
		mutex_lock(&emu->lock);
		emu->gate_armed = false;
		emu->gate_held--;
	}
	emu->unmap_calls++;
	emu->last_unmap_iova = iova;
	emu->last_unmap_length = length;
	if (length && vid_emu_index(iova, &first)) {
		end = length - 1 > U64_MAX - iova ? U64_MAX : iova + length - 1;
		if (!vid_emu_index(end, &last))
			last = ULONG_MAX;
		emu->unmap_unpinned += vid_emu_drop_range(emu, first, last);
	}
	mutex_unlock(&emu->lock);
}

/**
 * vid_emu_gate() - VID_EMU_GATE: hold the next dma_unmap callback
 * @emu: the device
 * @arg: user pointer to struct vid_emu_gate
 *
 * Return: 0 or a negative errno (see vid_emu_uapi.h).
 */
long vid_emu_gate(struct vid_emu_dev *emu, void __user *arg)
{
	const size_t minsz = offsetofend(struct vid_emu_gate, count);
	const u32 all = VID_EMU_GATE_ARM | VID_EMU_GATE_WAIT |
			VID_EMU_GATE_OPEN;
	struct vid_emu_gate gate;
	unsigned long timeout;
	unsigned int held;
	long left;

	if (copy_from_user(&gate, arg, minsz))
		return -EFAULT;
	if (gate.argsz < minsz || (gate.flags & ~all) ||
	    gate.timeout_ms > VID_EMU_GATE_MAX_MS)
		return -EINVAL;
	/* Callbacks to wait for: at least one. */
	held = max(gate.count, 1U);
	if (gate.flags & VID_EMU_GATE_ARM) {
		mutex_lock(&emu->lock);
		emu->gate_armed = true;
		mutex_unlock(&emu->lock);
	}
	if (gate.flags & VID_EMU_GATE_WAIT) {
		timeout = msecs_to_jiffies(gate.timeout_ms);
		left = wait_event_interruptible_timeout(emu->gate_wq,
							READ_ONCE(emu->gate_held) >=
							held,
							timeout);
		if (left < 0)
			return left;
		if (!left)
			return -ETIMEDOUT;
	}
	if (gate.flags & VID_EMU_GATE_OPEN) {
		mutex_lock(&emu->lock);
		emu->gate_armed = false;
		mutex_unlock(&emu->lock);
		wake_up_all(&emu->gate_wq);
	}
	return 0;
}
