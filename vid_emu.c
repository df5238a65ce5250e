// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - the interface for emulated (mediated) devices.
 *
 * An emulated device has no IOMMU between it and memory: its driver reaches
 * guest memory only through this backend, by pinning pages of a mapping
 * (pin_pages/unpin_pages) or by copying through the owner's mm (dma_rw).
 * Each page pinned this way gets a &struct vid_pin in its mapping's pin
 * tree, with a reference count, so that a page pinned twice is pinned once
 * and released when the last user lets go.
 *
 * A registered device is told when user space unmaps a range that holds
 * its pins (&vfio_device_ops.dma_unmap) and must unpin before returning.
 * That call reaches back into unpin_pages(), so it is made without the
 * container lock: the device list has its own rw-semaphore, taken before
 * the container lock and never while holding it (vfio_iommu_dirty.h).
 */
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include "vfio_iommu_dirty.h"
#include "vid_trace.h"

/* Notifications tried on one mapping before an unmap gives up (-EBUSY). */
#define VID_NOTIFY_RETRIES	16

/*
 * Pins come from a cache of their own: a &struct vid_pin takes 48 bytes
 * there and 64 from kmalloc, and a device that pins all of a guest's
 * memory (a vGPU) holds one per 4 KiB page.
 */
static struct kmem_cache *vid_pin_cache;

/**
 * vid_emu_init() - create the pin cache, at module load
 *
 * Return: 0 or -ENOMEM.
 */
int vid_emu_init(void)
{
	vid_pin_cache = KMEM_CACHE(vid_pin, SLAB_ACCOUNT);
	return vid_pin_cache ? 0 : -ENOMEM;
}

/**
 * vid_emu_exit() - destroy the pin cache, at module unload
 *
 * Every container is gone by then, and with them every pin.
 */
void vid_emu_exit(void)
{
	kmem_cache_destroy(vid_pin_cache);
}

/**
 * vid_pin_find() - find the external pin of one page of a mapping
 * @dma: mapping, container locked
 * @iova: page-aligned IOVA inside @dma
 *
 * Return: the pin, or NULL if the page is not pinned by a device.
 */
struct vid_pin *vid_pin_find(struct vid_dma *dma, dma_addr_t iova)
{
	struct rb_node *n = dma->pins.rb_node;

	while (n) {
		struct vid_pin *pin = rb_entry(n, struct vid_pin, node);

		if (iova < pin->iova)
			n = n->rb_left;
		else if (iova > pin->iova)
			n = n->rb_right;
		else
			return pin;
	}
	return NULL;
}

static void vid_pin_link(struct vid_dma *dma, struct vid_pin *new)
{
	struct rb_node **link = &dma->pins.rb_node, *parent = NULL;

	while (*link) {
		parent = *link;
		if (new->iova < rb_entry(parent, struct vid_pin, node)->iova)
			link = &parent->rb_left;
		else
			link = &parent->rb_right;
	}
	rb_link_node(&new->node, parent, link);
	rb_insert_color(&new->node, &dma->pins);
	dma->npins++;
}

/*
 * Is the page at @iova charged to the IOMMU mapping? Then a device pinning
 * it takes the charge over without changing the total (vid_acct.c).
 */
static bool vid_iommu_holds(struct vid_dma *dma, dma_addr_t iova)
{
	return iova < dma->iova + dma->mapped;
}

/* Pin the one page at @vaddr of the owner's mm. */
static int vid_pin_user_page(struct vid_dma *dma, unsigned long vaddr,
			     struct page **page)
{
	unsigned int gup = FOLL_LONGTERM;
	struct mm_struct *mm = dma->mm;
	struct vm_area_struct *vma;
	long ret;

	if (dma->prot & IOMMU_WRITE)
		gup |= FOLL_WRITE;
	if (!mmget_not_zero(mm))
		return -ENODEV;
	mmap_read_lock(mm);
	ret = vid_pin_user_pages_remote(mm, vaddr, 1, gup, page);
	if (ret <= 0) {
		/* Memory without struct pages cannot be handed to a device. */
		vma = vma_lookup(mm, vaddr);
		ret = vma && vma->vm_flags & (VM_IO | VM_PFNMAP) ? -EINVAL :
		      ret ? ret : -EFAULT;
	}
	mmap_read_unlock(mm);
	mmput(mm);
	return ret < 0 ? ret : 0;
}

/* Take one reference on the page at @iova of @dma for a device. */
static int vid_pin_get(struct vid_container *c, struct vid_dma *dma,
		       dma_addr_t iova, struct page **page)
{
	struct vid_pin *pin = vid_pin_find(dma, iova);
	bool charge;
	int ret;

	if (pin) {
		if (pin->refs == UINT_MAX)
			return -EOVERFLOW;
		pin->refs++;
		*page = pin->page;
		return 0;
	}

	pin = kmem_cache_zalloc(vid_pin_cache, GFP_KERNEL_ACCOUNT);
	if (!pin)
		return -ENOMEM;
	ret = vid_pin_user_page(dma, dma->vaddr + (iova - dma->iova),
				&pin->page);
	if (ret)
		goto out_free;
	charge = !vid_pfn_reserved(page_to_pfn(pin->page)) &&
		 !vid_iommu_holds(dma, iova);
	if (charge) {
		ret = vid_acct_add(dma, 1);
		if (ret)
			goto out_unpin;
	}
	/* Tracking must be able to report the page before it is handed out. */
	ret = vid_dirty_pin(c, dma, iova);
	if (ret) {
		if (charge)
			vid_acct_sub(dma, 1);
		goto out_unpin;
	}
	pin->iova = iova;
	pin->refs = 1;
	vid_pin_link(dma, pin);
	*page = pin->page;
	return 0;

out_unpin:
	unpin_user_page(pin->page);
out_free:
	kmem_cache_free(vid_pin_cache, pin);
	return ret;
}

/**
 * vid_pin_put() - drop one device reference on a pinned page
 * @c: container, locked
 * @dma: mapping
 * @pin: one of @dma's pins
 *
 * The last reference unpins the page (marking it dirty for the mm, and for
 * dirty tracking until the next report) and gives back its charge unless
 * the IOMMU mapping holds it.
 */
void vid_pin_put(struct vid_container *c, struct vid_dma *dma,
		 struct vid_pin *pin)
{
	if (--pin->refs)
		return;
	rb_erase(&pin->node, &dma->pins);
	dma->npins--;
	vid_dirty_unpin(c, dma, pin->iova);
	if (!vid_pfn_reserved(page_to_pfn(pin->page)) &&
	    !vid_iommu_holds(dma, pin->iova))
		vid_acct_unpin(dma);
	unpin_user_pages_dirty_lock(&pin->page, 1, dma->prot & IOMMU_WRITE);
	kmem_cache_free(vid_pin_cache, pin);
}

/* Drop the references taken by the first @count pages of a pin_pages(). */
static void vid_pin_unwind(struct vid_container *c, dma_addr_t iova,
			   int count, struct page **pages)
{
	int i;

	for (i = 0; i < count; i++, iova += PAGE_SIZE) {
		struct vid_dma *dma = vid_dma_find(c, iova, PAGE_SIZE);
		struct vid_pin *pin = dma ? vid_pin_find(dma, iova) : NULL;

		if (!WARN_ON_ONCE(!pin))
			vid_pin_put(c, dma, pin);
		pages[i] = NULL;
	}
}

static int vid_pin_check(struct vid_container *c, dma_addr_t iova)
{
	/* The errno order is in-tree's: v1, vaddr update, no device. */
	if (!c->v2)
		return -EACCES;
	/* Host addresses are being replaced: nothing to pin through. */
	if (c->vaddr_invalid)
		return -EBUSY;
	/* Only a device that can be told about unmaps may pin. */
	if (!c->ndevices)
		return -EINVAL;
	if (iova & ~PAGE_MASK)
		return -EINVAL;
	return 0;
}

/**
 * vid_pin_pages() - the VFIO core's pin_pages() callback
 * @iommu_data: the &struct vid_container
 * @iommu_group: group of the device asking
 * @iova: first page-aligned IOVA
 * @npage: pages to pin (the core bounds it)
 * @prot: IOMMU_READ and/or IOMMU_WRITE the device needs
 * @pages: receives the pinned pages
 *
 * All or nothing. A group that pins declares that its device writes only
 * what it pins, which the dirty tracking scope relies on.
 *
 * Return: @npage, or -EINVAL (no mapping, no registered device, unaligned),
 * -EPERM (mapping lacks @prot), -EACCES (v1 container), -EBUSY (vaddr
 * update in progress), -ENOMEM, -EFAULT.
 */
int vid_pin_pages(void *iommu_data, struct iommu_group *iommu_group,
		  dma_addr_t iova, int npage, int prot, struct page **pages)
{
	struct vid_container *c = iommu_data;
	int i, ret;

	if (!c || !pages || npage <= 0)
		return -EINVAL;

	mutex_lock(&c->lock);
	ret = vid_pin_check(c, iova);
	if (ret)
		goto out;
	for (i = 0; i < npage; i++) {
		dma_addr_t page_iova = iova + ((dma_addr_t)i << PAGE_SHIFT);
		struct vid_dma *dma = vid_dma_find(c, page_iova, PAGE_SIZE);

		if (!dma || page_iova < iova)
			ret = -EINVAL;
		else if ((dma->prot & prot) != prot)
			ret = -EPERM;
		else
			ret = vid_pin_get(c, dma, page_iova, &pages[i]);
		if (ret) {
			vid_pin_unwind(c, iova, i, pages);
			goto out;
		}
	}
	vid_group_pinned(c, iommu_group);
	ret = npage;
out:
	mutex_unlock(&c->lock);
	trace_vid_pin(c->id, iova, npage, ret > 0 ? ret : 0,
		      ret < 0 ? ret : 0);
	return ret;
}

/**
 * vid_unpin_pages() - the VFIO core's unpin_pages() callback
 * @iommu_data: the &struct vid_container
 * @iova: first IOVA the device pinned
 * @npage: pages to unpin
 */
void vid_unpin_pages(void *iommu_data, dma_addr_t iova, int npage)
{
	struct vid_container *c = iommu_data;
	int i;

	mutex_lock(&c->lock);
	for (i = 0; i < npage; i++, iova += PAGE_SIZE) {
		struct vid_dma *dma = vid_dma_find(c, iova, PAGE_SIZE);
		struct vid_pin *pin;

		if (!dma)
			break;
		pin = vid_pin_find(dma, iova);
		if (pin)
			vid_pin_put(c, dma, pin);
	}
	mutex_unlock(&c->lock);
	trace_vid_unpin(c->id, iova - ((dma_addr_t)i << PAGE_SHIFT), npage, i,
			0);
	/* A driver unpinning what it never pinned is a driver bug. */
	WARN_ON_ONCE(i != npage);
}

/* Copy between @data and the part of one mapping that holds @iova. */
static int vid_rw_chunk(struct vid_container *c, dma_addr_t iova,
			void *data, size_t count, bool write, size_t *done)
{
	struct vid_dma *dma = vid_dma_find(c, iova, 1);
	bool kthread = !current->mm;
	unsigned long vaddr;
	size_t off;
	int ret = -EFAULT;

	*done = 0;
	if (!dma)
		return -EINVAL;
	/* The in-tree rule: a write needs WRITE, and any access needs READ. */
	if ((write && !(dma->prot & IOMMU_WRITE)) ||
	    !(dma->prot & IOMMU_READ))
		return -EPERM;
	if (!mmget_not_zero(dma->mm))
		return -EPERM;

	off = iova - dma->iova;
	count = min_t(size_t, count, dma->size - off);
	vaddr = dma->vaddr + off;

	if (kthread)
		kthread_use_mm(dma->mm);
	if (kthread || current->mm == dma->mm) {
		if (write)
			ret = copy_to_user((void __user *)vaddr, data, count);
		else
			ret = copy_from_user(data, (void __user *)vaddr, count);
		ret = ret ? -EFAULT : 0;
	}
	if (kthread)
		kthread_unuse_mm(dma->mm);
	mmput(dma->mm);

	if (!ret) {
		*done = count;
		if (write)
			vid_dirty_mark(c, dma, off, count);
	}
	return ret;
}

/**
 * vid_dma_rw() - the VFIO core's dma_rw() callback
 * @iommu_data: the &struct vid_container
 * @iova: first IOVA to access
 * @data: kernel buffer
 * @count: bytes
 * @write: copy @data to user memory (true) or from it
 *
 * The access may span several mappings; it stops at the first hole.
 *
 * Return: 0, -EINVAL (no mapping), -EPERM (protection, owner gone),
 * -EFAULT (unreadable memory, or called from a foreign process), -EBUSY
 * (vaddr update in progress).
 */
int vid_dma_rw(void *iommu_data, dma_addr_t iova, void *data, size_t count,
	       bool write)
{
	struct vid_container *c = iommu_data;
	size_t done;
	int ret = 0;

	mutex_lock(&c->lock);
	if (c->vaddr_invalid)
		ret = -EBUSY;
	while (!ret && count) {
		ret = vid_rw_chunk(c, iova, data, count, write, &done);
		count -= done;
		data += done;
		iova += done;
	}
	mutex_unlock(&c->lock);
	return ret;
}

/**
 * vid_register_device() - the VFIO core's register_device() callback
 * @iommu_data: the &struct vid_container
 * @vdev: an emulated device opened on this container
 *
 * Only devices that can be told about unmaps are listed; the others can
 * never pin.
 */
void vid_register_device(void *iommu_data, struct vfio_device *vdev)
{
	struct vid_container *c = iommu_data;

	if (!vdev->ops->dma_unmap)
		return;
	down_write(&c->devices_rwsem);
	mutex_lock(&c->lock);
	list_add(&vdev->iommu_entry, &c->devices);
	c->ndevices++;
	mutex_unlock(&c->lock);
	up_write(&c->devices_rwsem);
}

/**
 * vid_unregister_device() - the VFIO core's unregister_device() callback
 * @iommu_data: the &struct vid_container
 * @vdev: device being closed
 */
void vid_unregister_device(void *iommu_data, struct vfio_device *vdev)
{
	struct vid_container *c = iommu_data;

	if (!vdev->ops->dma_unmap)
		return;
	down_write(&c->devices_rwsem);
	mutex_lock(&c->lock);
	list_del(&vdev->iommu_entry);
	c->ndevices--;
	mutex_unlock(&c->lock);
	up_write(&c->devices_rwsem);
}

/**
 * vid_notify_unmap() - ask every device to drop its pins in a mapping
 * @c: container, locked; unlocked and locked again inside
 * @dma: mapping holding external pins; may be gone on return
 * @tries: notifications already made for this unmap call
 *
 * The caller must look the mapping up again afterwards: anything may have
 * changed while the lock was dropped.
 *
 * Return: 0, or -EBUSY when devices keep their pins after
 * VID_NOTIFY_RETRIES notifications (a driver bug; the unmap then fails
 * rather than free pages a device still uses).
 */
int vid_notify_unmap(struct vid_container *c, struct vid_dma *dma,
		     unsigned int tries)
{
	dma_addr_t iova = dma->iova;
	size_t size = dma->size;
	struct vfio_device *vdev;

	if (WARN_ONCE(tries >= VID_NOTIFY_RETRIES,
		      "vfio_iommu_dirty: devices keep pins at 0x%llx\n",
		      (unsigned long long)iova))
		return -EBUSY;

	/* The devices unpin page by page: charges go back in one go. */
	dma->acct_defer = true;
	mutex_unlock(&c->lock);
	down_read(&c->devices_rwsem);
	list_for_each_entry(vdev, &c->devices, iommu_entry)
		vdev->ops->dma_unmap(vdev, iova, size);
	up_read(&c->devices_rwsem);
	mutex_lock(&c->lock);
	/*
	 * Removed meanwhile, @dma gave its charges back then; a mapping
	 * made in its place since has nothing deferred.
	 */
	dma = vid_dma_find(c, iova, size);
	if (dma && dma->acct_defer)
		vid_acct_flush(dma);
	return 0;
}
