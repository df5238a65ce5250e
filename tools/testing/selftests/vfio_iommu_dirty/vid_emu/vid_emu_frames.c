// SPDX-License-Identifier: GPL-2.0
/*
 * vid_emu: /dev/vid-emu-frames, a reserved page frame right next to a
 * page that can be pinned (see VID_EMU_FRAMES_INFO in vid_emu_uapi.h).
 *
 * A backend must never put memory it pins and memory it only maps (a
 * reserved frame, reached through a VM_PFNMAP VMA) in one physically
 * contiguous run: the run is charged, and unpinned, as one kind. User
 * space cannot otherwise place a page it can pin next to such a frame, so
 * each open file allocates two order-1 blocks, splits them into single
 * pages and marks one page of each reserved:
 *
 *	frame 0: ordinary	frame 1: reserved	(pfn 1 == pfn 0 + 1)
 *	frame 2: reserved	frame 3: ordinary	(pfn 3 == pfn 2 + 1)
 *
 * mmap() maps one frame per call, shared, at page offset = frame number.
 * An ordinary frame is inserted as a page (vm_insert_page(), VM_MIXEDMAP):
 * GUP pins it. A reserved frame is mapped with remap_pfn_range()
 * (VM_PFNMAP): GUP refuses it and a backend reaches it by its pfn. Two
 * such mappings at adjacent addresses give a mapping whose two pages are
 * physically consecutive and of different kinds.
 *
 * Two more ways to map a reserved frame, chosen by the mmap() offset
 * (VID_EMU_FRAMES_FAULT, VID_EMU_FRAMES_SIGBUS in vid_emu_uapi.h), reach
 * the fault handling a backend needs for such memory: the frame is not
 * mapped at mmap() time but by the VMA's fault handler, which first gives
 * up the mmap lock and has the fault retried (as a driver that waits for
 * its device does), or which always fails with SIGBUS. A fourth
 * (VID_EMU_FRAMES_NOPAGE) has the fault retried and then never maps the
 * frame, so that a backend faulting it in never finds it; a fifth
 * (VID_EMU_FRAMES_RAM) maps an ordinary frame with remap_pfn_range():
 * RAM behind VM_PFNMAP, which a backend must refuse; and a sixth
 * (VID_EMU_FRAMES_DIRECT) has the fault handler map the frame at once,
 * without giving up the lock.
 *
 * The frames are freed when the file is released, which happens only once
 * no VMA maps them. A backend holds no reference to a reserved frame it
 * maps: a test unmaps its DMA mapping before it closes the file.
 */
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "vid_emu.h"
#include "vid_emu_uapi.h"

/* The frames of one open file. */
struct vid_frames {
	struct page *page[VID_EMU_FRAMES];
	atomic_t faults;	/* faults handled */
	atomic_t retries;	/* ... of which answered "retry" */
};

/* Frames 1 and 2 are reserved, 0 and 3 ordinary. */
static bool vid_frame_reserved(unsigned int i)
{
	return i == 1 || i == 2;
}

static void vid_frames_free(struct vid_frames *f)
{
	unsigned int i;

	for (i = 0; i < VID_EMU_FRAMES; i++) {
		if (!f->page[i])
			continue;
		if (vid_frame_reserved(i))
			ClearPageReserved(f->page[i]);
		__free_page(f->page[i]);
	}
	kfree(f);
}

static int vid_frames_open(struct inode *inode, struct file *file)
{
	struct vid_frames *f;
	struct page *block;
	unsigned int i;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	for (i = 0; i < VID_EMU_FRAMES; i += 2) {
		block = alloc_pages(GFP_KERNEL | __GFP_ZERO, 1);
		if (!block) {
			vid_frames_free(f);
			return -ENOMEM;
		}
		/* Two independent pages, each with its own reference. */
		split_page(block, 1);
		f->page[i] = block;
		f->page[i + 1] = block + 1;
	}
	for (i = 0; i < VID_EMU_FRAMES; i++)
		if (vid_frame_reserved(i))
			SetPageReserved(f->page[i]);
	file->private_data = f;
	return 0;
}

static int vid_frames_release(struct inode *inode, struct file *file)
{
	vid_frames_free(file->private_data);
	return 0;
}

/* Give up the lock the fault was taken with (release_fault_lock()). */
static void vid_frames_unlock(struct vm_fault *vmf)
{
#ifdef VID_EMU_KERNEL_6_1
	mmap_read_unlock(vmf->vma->vm_mm);
#else
	release_fault_lock(vmf);
#endif
}

static void vid_frames_flags_set(struct vm_area_struct *vma,
				 unsigned long flags)
{
#ifdef VID_EMU_KERNEL_6_1
	vma->vm_flags |= flags;
#else
	vm_flags_set(vma, flags);
#endif
}

/* A reserved frame mapped by its fault handler (a mode other than _RAM). */
static vm_fault_t vid_frames_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct vid_frames *f = vma->vm_private_data;
	unsigned long i = vma->vm_pgoff % VID_EMU_FRAMES;
	unsigned long mode = vma->vm_pgoff / VID_EMU_FRAMES;

	if (mode == VID_EMU_FRAMES_SIGBUS)
		return VM_FAULT_SIGBUS;
	atomic_inc(&f->faults);
	/* The first try of each fault is told to retry, without the lock. */
	if (mode != VID_EMU_FRAMES_DIRECT &&
	    (vmf->flags & FAULT_FLAG_ALLOW_RETRY) &&
	    !(vmf->flags & (FAULT_FLAG_TRIED | FAULT_FLAG_RETRY_NOWAIT))) {
		atomic_inc(&f->retries);
		vid_frames_unlock(vmf);
		return VM_FAULT_RETRY;
	}
	/* Handled, yet nothing mapped: whoever faulted finds no page. */
	if (mode == VID_EMU_FRAMES_NOPAGE)
		return VM_FAULT_NOPAGE;
	return vmf_insert_pfn(vma, vmf->address, page_to_pfn(f->page[i]));
}

static const struct vm_operations_struct vid_frames_vm_ops = {
	.fault = vid_frames_fault,
};

static int vid_frames_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vid_frames *f = file->private_data;
	unsigned long i = vma->vm_pgoff % VID_EMU_FRAMES;
	unsigned long mode = vma->vm_pgoff / VID_EMU_FRAMES;

	if (vma->vm_end - vma->vm_start != PAGE_SIZE ||
	    mode > VID_EMU_FRAMES_DIRECT || !(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (mode == VID_EMU_FRAMES_RAM) {
		/* Only an ordinary frame: RAM that only a pfn reaches. */
		if (vid_frame_reserved(i))
			return -EINVAL;
		return remap_pfn_range(vma, vma->vm_start,
				       page_to_pfn(f->page[i]), PAGE_SIZE,
				       vma->vm_page_prot);
	}
	if (mode) {
		/* Only a reserved frame, and only by its fault handler. */
		if (!vid_frame_reserved(i))
			return -EINVAL;
		vid_frames_flags_set(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND |
				     VM_DONTDUMP);
		vma->vm_private_data = f;
		vma->vm_ops = &vid_frames_vm_ops;
		return 0;
	}
	if (vid_frame_reserved(i))
		return remap_pfn_range(vma, vma->vm_start,
				       page_to_pfn(f->page[i]), PAGE_SIZE,
				       vma->vm_page_prot);
	return vm_insert_page(vma, vma->vm_start, f->page[i]);
}

static long vid_frames_info(struct vid_frames *f, void __user *arg)
{
	const size_t minsz = offsetofend(struct vid_emu_frames, retries);
	struct vid_emu_frames info;
	unsigned int i;

	if (copy_from_user(&info, arg, offsetofend(struct vid_emu_frames,
						   flags)))
		return -EFAULT;
	if (info.argsz < minsz || info.flags)
		return -EINVAL;
	/* Frame numbers are physical addresses, as in /proc/PID/pagemap. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	memset(info.frame, 0, sizeof(info.frame));
	for (i = 0; i < VID_EMU_FRAMES; i++) {
		struct page *page = f->page[i];

		info.frame[i].pfn = page_to_pfn(page);
		info.frame[i].refcount = page_ref_count(page);
		if (PageReserved(page))
			info.frame[i].flags |= VID_EMU_FRAME_RESERVED;
		if (folio_maybe_dma_pinned(page_folio(page)))
			info.frame[i].flags |= VID_EMU_FRAME_DMA_PINNED;
	}
	info.faults = atomic_read(&f->faults);
	info.retries = atomic_read(&f->retries);
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

static long vid_frames_ioctl(struct file *file, unsigned int cmd,
			     unsigned long arg)
{
	if (cmd != VID_EMU_FRAMES_INFO)
		return -ENOTTY;
	return vid_frames_info(file->private_data, (void __user *)arg);
}

static const struct file_operations vid_frames_fops = {
	.owner		= THIS_MODULE,
	.open		= vid_frames_open,
	.release	= vid_frames_release,
	.mmap		= vid_frames_mmap,
	.unlocked_ioctl	= vid_frames_ioctl,
};

static struct miscdevice vid_frames_dev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= VID_EMU_FRAMES_NAME,
	.fops	= &vid_frames_fops,
};

/**
 * vid_emu_frames_register() - create /dev/vid-emu-frames
 *
 * Return: 0 or a negative errno.
 */
int vid_emu_frames_register(void)
{
	return misc_register(&vid_frames_dev);
}

/**
 * vid_emu_frames_unregister() - remove it; no file can be open (module
 * references)
 */
void vid_emu_frames_unregister(void)
{
	misc_deregister(&vid_frames_dev);
}
