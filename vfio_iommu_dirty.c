// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - a VFIO type1 IOMMU backend with dirty page tracking.
 *
 * This file is the front end: module parameters, registration with the
 * VFIO core, container open/release, and the ioctls user space sends to a
 * /dev/vfio/vfio file once this backend serves it. Arguments are copied
 * and validated here; the work happens in vid_dma.c, vid_pin.c and
 * vid_domain.c under the container lock (see vfio_iommu_dirty.h).
 *
 * The user-visible behaviour is that of Linux 6.12's vfio_iommu_type1:
 * the same ioctls, the same argument checks and the same errno values.
 */
#include <linux/iommu.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include <uapi/linux/vfio_iommu_dirty.h>

#include "vfio_iommu_dirty.h"
#include "vid_trace.h"
#include "vid_trace.h"

bool vid_allow_unsafe_interrupts;
module_param_named(allow_unsafe_interrupts, vid_allow_unsafe_interrupts,
		   bool, 0644);
MODULE_PARM_DESC(allow_unsafe_interrupts,
		 "Enable VFIO IOMMU support on platforms without interrupt remapping support.");

bool vid_disable_hugepages;
module_param_named(disable_hugepages, vid_disable_hugepages, bool, 0644);
MODULE_PARM_DESC(disable_hugepages,
		 "Disable VFIO IOMMU support for IOMMU hugepages.");

unsigned int vid_dma_entry_limit __read_mostly = U16_MAX;
module_param_named(dma_entry_limit, vid_dma_entry_limit, uint, 0644);
MODULE_PARM_DESC(dma_entry_limit,
		 "Maximum number of user DMA mappings per container (65535).");

/*
 * For the test bed only: one emulated VT-d unit puts every group into the
 * same domain, so the paths of a container with several domains (replay,
 * unmapping further domains) would never run there. Read-only, so that it
 * holds for the life of the module.
 */
bool vid_test_domain_per_group;
module_param_named(test_domain_per_group, vid_test_domain_per_group, bool,
		   0444);
MODULE_PARM_DESC(test_domain_per_group,
		 "Testing only: give every IOMMU-backed group a domain of its own, never shared (default: N).");

static void *vid_open(unsigned long type)
{
	struct vid_container *c;

	if (type != VFIO_TYPE1_IOMMU && type != VFIO_TYPE1v2_IOMMU &&
	    type != VFIO_TYPE1_NESTING_IOMMU)
		return ERR_PTR(-EINVAL);

	c = kzalloc(sizeof(*c), GFP_KERNEL_ACCOUNT);
	if (!c)
		return ERR_PTR(-ENOMEM);
	if (vid_pin_init(c)) {
		kfree(c);
		return ERR_PTR(-ENOMEM);
	}
	mutex_init(&c->lock);
	INIT_LIST_HEAD(&c->domains);
	INIT_LIST_HEAD(&c->emulated);
	init_rwsem(&c->devices_rwsem);
	INIT_LIST_HEAD(&c->devices);
	c->dma_tree = RB_ROOT;
	INIT_LIST_HEAD(&c->iova_ranges);
	c->dma_limit = vid_dma_entry_limit;
	c->dma_avail = c->dma_limit;
	c->pgsize_bitmap = PAGE_MASK;
	/* Nesting is v2 plus a request for nesting on every domain. */
	c->v2 = type != VFIO_TYPE1_IOMMU;
	c->nesting = type == VFIO_TYPE1_NESTING_IOMMU;
	vid_debugfs_add(c);
	return c;
}

static void vid_release(void *iommu_data)
{
	struct vid_container *c = iommu_data;

	/* Readers of the debugfs files are waited for here. */
	vid_debugfs_remove(c);
	/*
	 * The core has detached every group; only a racing ioctl on the
	 * container file could still come in, and the lock orders it.
	 */
	mutex_lock(&c->lock);
	/* Tracking ends here if user space never stopped it: say so. */
	if (c->dirty_tracking) {
		vid_dirty_stop(c);
		trace_vid_dirty_tracking(c->id, 0, c->dma_limit - c->dma_avail,
					 0);
	}
	vid_dma_remove_all(c);
	vid_release_domains(c);
	vid_iova_free(&c->iova_ranges);
	mutex_unlock(&c->lock);
	mutex_destroy(&c->lock);
	vid_pin_fini(c);
	free_page((unsigned long)c->report_buf);
	kfree(c);
}

/* Does every domain block no-snoop DMA? True with no domain, as in-tree. */
static bool vid_cache_coherent(struct vid_container *c)
{
	struct vid_domain *d;
	bool ret = true;

	mutex_lock(&c->lock);
	list_for_each_entry(d, &c->domains, node)
		ret &= d->enforce_cc;
	mutex_unlock(&c->lock);
	return ret;
}

static bool vid_has_emulated(struct vid_container *c)
{
	bool ret;

	mutex_lock(&c->lock);
	ret = !list_empty(&c->emulated);
	mutex_unlock(&c->lock);
	return ret;
}

/* @c is NULL when the core asks before any backend serves the container. */
static long vid_check_extension(struct vid_container *c, unsigned long ext)
{
	switch (ext) {
	case VFIO_TYPE1_IOMMU:
	case VFIO_TYPE1v2_IOMMU:
	case VFIO_TYPE1_NESTING_IOMMU:
	case VFIO_UNMAP_ALL:
		return 1;
	case VFIO_UPDATE_VADDR:
		/* Emulated devices cannot pin while vaddrs are being updated. */
		return c && !vid_has_emulated(c);
	case VFIO_DMA_CC_IOMMU:
		return c && vid_cache_coherent(c);
	default:
		return 0;
	}
}

/* Smallest IOMMU page size of the container, the granule of MAP/UNMAP. */
static u64 vid_min_pgsize(struct vid_container *c)
{
	return 1ULL << __ffs64(c->pgsize_bitmap);
}

static long vid_map_args(struct vid_container *c,
			 struct vfio_iommu_type1_dma_map map, unsigned long minsz)
{
	u32 known = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE |
		    VFIO_DMA_MAP_FLAG_VADDR;
	bool set_vaddr;
	u64 mask;
	int prot = 0;
	long ret;

	if (map.argsz < minsz || map.flags & ~known)
		return -EINVAL;
	/* Every address must fit the kernel's types (32-bit kernels). */
	if ((unsigned long)map.vaddr != map.vaddr ||
	    (dma_addr_t)map.iova != map.iova || (size_t)map.size != map.size)
		return -EINVAL;

	/* Protection is from the device's point of view. */
	if (map.flags & VFIO_DMA_MAP_FLAG_READ)
		prot |= IOMMU_READ;
	if (map.flags & VFIO_DMA_MAP_FLAG_WRITE)
		prot |= IOMMU_WRITE;
	/* A new mapping needs a protection; a new vaddr must not have one. */
	set_vaddr = map.flags & VFIO_DMA_MAP_FLAG_VADDR;
	if (!prot == !set_vaddr)
		return -EINVAL;

	mutex_lock(&c->lock);
	mask = vid_min_pgsize(c) - 1;
	ret = -EINVAL;
	if (!map.size || (map.size | map.iova | map.vaddr) & mask)
		goto out_unlock;
	/* Neither the device range nor the user range may wrap around. */
	if (map.iova + map.size - 1 < map.iova ||
	    map.vaddr + map.size - 1 < map.vaddr)
		goto out_unlock;

	if (set_vaddr)
		ret = vid_dma_set_vaddr(c, map.iova, map.vaddr, map.size);
	else
		ret = vid_dma_map(c, map.iova, map.vaddr, map.size, prot);
out_unlock:
	mutex_unlock(&c->lock);
	return ret;
}

static long vid_map_dma(struct vid_container *c, void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_iommu_type1_dma_map,
					  size);
	struct vfio_iommu_type1_dma_map map;
	long ret;

	if (copy_from_user(&map, arg, minsz))
		return -EFAULT;
	ret = vid_map_args(c, map, minsz);
	trace_vid_map(c->id, map.iova, map.size, ret ? 0 : map.size, ret);
	return ret;
}

/* Check an unmap range; UNMAP_ALL turns it into the whole space. */
static int vid_unmap_range(struct vid_container *c,
			   struct vfio_iommu_type1_dma_unmap *unmap)
{
	u64 mask = vid_min_pgsize(c) - 1;

	if (unmap->iova & mask)
		return -EINVAL;
	if (unmap->flags & VFIO_DMA_UNMAP_FLAG_ALL) {
		if (unmap->iova || unmap->size)
			return -EINVAL;
		unmap->size = U64_MAX;
		return 0;
	}
	if (!unmap->size || unmap->size & mask ||
	    unmap->iova + unmap->size - 1 < unmap->iova)
		return -EINVAL;
	return 0;
}

/*
 * The bitmap of an unmap with VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: read
 * and checked before the lock, as in-tree.
 */
static int vid_unmap_bitmap(void __user *arg, unsigned long minsz,
			    const struct vfio_iommu_type1_dma_unmap *unmap,
			    struct vfio_bitmap *bm)
{
	if (unmap->flags & (VFIO_DMA_UNMAP_FLAG_ALL |
			    VFIO_DMA_UNMAP_FLAG_VADDR))
		return -EINVAL;
	if (unmap->argsz < minsz + sizeof(*bm))
		return -EINVAL;
	if (copy_from_user(bm, arg + minsz, sizeof(*bm)))
		return -EFAULT;
	return vid_report_check_user(bm, unmap->size);
}

static long vid_unmap_locked(struct vid_container *c,
			     struct vfio_iommu_type1_dma_unmap *unmap,
			     struct vfio_bitmap *bm, u64 *unmapped)
{
	bool all = unmap->flags & VFIO_DMA_UNMAP_FLAG_ALL;
	struct vid_report rep;
	long ret;

	/* Emulated devices cannot work while host addresses are invalid. */
	if (unmap->flags & VFIO_DMA_UNMAP_FLAG_VADDR &&
	    !list_empty(&c->emulated))
		return -EBUSY;
	ret = vid_unmap_range(c, unmap);
	if (ret)
		return ret;

	if (unmap->flags & VFIO_DMA_UNMAP_FLAG_VADDR)
		return vid_dma_invalidate_vaddr(c, unmap->iova, unmap->size,
						all, unmapped);
	if (!bm)
		return vid_dma_unmap(c, unmap->iova, unmap->size, all, NULL,
				     unmapped);

	ret = vid_report_begin(c, &rep, bm, unmap->iova, unmap->size);
	if (ret)
		return ret;
	ret = vid_dma_unmap(c, unmap->iova, unmap->size, all, &rep, unmapped);
	vid_report_end(c, &rep);
	return ret;
}

static long vid_unmap_dma(struct vid_container *c, void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_iommu_type1_dma_unmap,
					  size);
	u32 known = VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR |
		    VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	struct vfio_iommu_type1_dma_unmap unmap;
	struct vfio_bitmap bm, *bmp = NULL;
	u64 unmapped = 0;
	long ret;

	if (copy_from_user(&unmap, arg, minsz))
		return -EFAULT;
	if (unmap.argsz < minsz || unmap.flags & ~known)
		return -EINVAL;
	if (unmap.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) {
		ret = vid_unmap_bitmap(arg, minsz, &unmap, &bm);
		if (ret)
			return ret;
		bmp = &bm;
	}

	mutex_lock(&c->lock);
	ret = vid_unmap_locked(c, &unmap, bmp, &unmapped);
	mutex_unlock(&c->lock);
	if (bmp)
		trace_vid_unmap_bitmap(c->id, unmap.iova, unmap.size, unmapped,
				       ret);
	else
		trace_vid_unmap(c->id, unmap.iova, unmap.size, unmapped, ret);
	if (ret)
		return ret;

	/* Report how much went away. */
	unmap.size = unmapped;
	return copy_to_user(arg, &unmap, minsz) ? -EFAULT : 0;
}

static long vid_ioctl(void *iommu_data, unsigned int cmd, unsigned long arg)
{
	struct vid_container *c = iommu_data;
	void __user *uarg = (void __user *)arg;

	if (cmd == VFIO_CHECK_EXTENSION)
		return vid_check_extension(c, arg);
	if (!c)
		return -EINVAL;

	switch (cmd) {
	case VFIO_IOMMU_GET_INFO:
		return vid_get_info(c, uarg);
	case VFIO_IOMMU_MAP_DMA:
		return vid_map_dma(c, uarg);
	case VFIO_IOMMU_UNMAP_DMA:
		return vid_unmap_dma(c, uarg);
	case VFIO_IOMMU_DIRTY_PAGES:
		return vid_dirty_pages_ioctl(c, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct vfio_iommu_driver_ops vid_ops = {
	.name		= VFIO_IOMMU_DIRTY_DRIVER_NAME,
	.owner		= THIS_MODULE,
	.open		= vid_open,
	.release	= vid_release,
	.ioctl		= vid_ioctl,
	.attach_group	= vid_attach_group,
	.detach_group	= vid_detach_group,
	.pin_pages	= vid_pin_pages,
	.unpin_pages	= vid_unpin_pages,
	.register_device = vid_register_device,
	.unregister_device = vid_unregister_device,
	.dma_rw		= vid_dma_rw,
	.group_iommu_domain = vid_group_iommu_domain,
};

static int __init vid_init(void)
{
	int ret;

	ret = vid_report_init();
	if (ret)
		return ret;
	ret = vid_emu_init();
	if (ret)
		goto out_report;
	vid_debugfs_init();
	ret = vfio_register_iommu_driver(&vid_ops);
	if (ret)
		goto out_debugfs;
	return 0;

out_debugfs:
	vid_debugfs_exit();
	vid_emu_exit();
out_report:
	vid_report_exit();
	return ret;
}

static void __exit vid_exit(void)
{
	vfio_unregister_iommu_driver(&vid_ops);
	vid_debugfs_exit();
	vid_emu_exit();
	vid_report_exit();
}

module_init(vid_init);
module_exit(vid_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("VFIO type1 IOMMU backend with dirty page tracking");
/* Load after in-tree type1, so that this backend registers last and wins. */
MODULE_SOFTDEP("pre: vfio vfio_iommu_type1");
MODULE_VERSION(VID_VERSION);
