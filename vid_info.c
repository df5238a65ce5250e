// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - VFIO_IOMMU_GET_INFO and its capability chain.
 *
 * The reply is the fixed &struct vfio_iommu_type1_info followed, when the
 * caller's argsz leaves room for all of it, by a chain of capabilities.
 * When it does not, nothing past the fixed part is written and argsz is
 * raised to the size needed, so the caller can retry: the protocol of
 * include/uapi/linux/vfio.h, kept as in-tree keeps it.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include <uapi/linux/vfio_iommu_dirty.h>

#include "vfio_iommu_dirty.h"

/*
 * Dirty tracking: the page size a bitmap uses and the largest bitmap. As
 * in-tree, only the smallest IOMMU page size: a standard type1 user never
 * meets this backend's block sizes, which only its own capability
 * (vid_cap_dirty_ext) announces.
 */
static int vid_cap_migration(struct vid_container *c,
			     struct vfio_info_cap *caps)
{
	u64 pgsizes = vid_dirty_report_pgsizes(c);
	struct vfio_iommu_type1_info_cap_migration cap = {
		.header.id = VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
		.header.version = 1,
		.pgsize_bitmap = pgsizes & -pgsizes,
		.max_dirty_bitmap_size = VID_DIRTY_BITMAP_MAX,
	};

	return vfio_info_add_capability(caps, &cap.header, sizeof(cap));
}

/* What this backend offers beyond in-tree (uapi/linux/vfio_iommu_dirty.h). */
static int vid_cap_dirty_ext(struct vid_container *c,
			     struct vfio_info_cap *caps)
{
	struct vfio_iommu_type1_info_cap_dirty_ext cap = {
		.header.id = VFIO_IOMMU_TYPE1_INFO_CAP_DIRTY_EXT,
		.header.version = VFIO_IOMMU_DIRTY_EXT_VERSION,
		.flags = VFIO_IOMMU_DIRTY_EXT_PEEK |
			 VFIO_IOMMU_DIRTY_EXT_COARSE_PGSIZE,
		.pgsize_bitmap = vid_dirty_report_pgsizes(c),
	};

	return vfio_info_add_capability(caps, &cap.header, sizeof(cap));
}

static int vid_cap_dma_avail(struct vid_container *c,
			     struct vfio_info_cap *caps)
{
	struct vfio_iommu_type1_info_dma_avail cap = {
		.header.id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
		.header.version = 1,
		.avail = c->dma_avail,
	};

	return vfio_info_add_capability(caps, &cap.header, sizeof(cap));
}

static int vid_cap_iova_ranges(struct vid_container *c,
			       struct vfio_info_cap *caps)
{
	struct vfio_iommu_type1_info_cap_iova_range *cap;
	struct vid_iova_range *r;
	size_t size;
	u32 n = 0;
	int ret;

	list_for_each_entry(r, &c->iova_ranges, node)
		n++;
	if (!n)
		return 0;

	size = struct_size(cap, iova_ranges, n);
	cap = kzalloc(size, GFP_KERNEL);
	if (!cap)
		return -ENOMEM;
	cap->header.id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
	cap->header.version = 1;
	cap->nr_iovas = n;
	n = 0;
	list_for_each_entry(r, &c->iova_ranges, node) {
		cap->iova_ranges[n].start = r->start;
		cap->iova_ranges[n].end = r->last;
		n++;
	}
	ret = vfio_info_add_capability(caps, &cap->header, size);
	kfree(cap);
	return ret;
}

/* Build the whole chain under the lock, so it is one consistent picture. */
static int vid_build_caps(struct vid_container *c, struct vfio_info_cap *caps)
{
	int ret;

	ret = vid_cap_migration(c, caps);
	if (!ret)
		ret = vid_cap_dma_avail(c, caps);
	if (!ret)
		ret = vid_cap_iova_ranges(c, caps);
	if (!ret)
		ret = vid_cap_dirty_ext(c, caps);
	return ret;
}

/**
 * vid_get_info() - VFIO_IOMMU_GET_INFO
 * @c: container, not locked
 * @arg: user pointer to &struct vfio_iommu_type1_info and room after it
 *
 * Return: 0, -EFAULT, -EINVAL for an argsz below the fixed fields, or
 * -ENOMEM.
 */
long vid_get_info(struct vid_container *c, void __user *arg)
{
	unsigned long minsz = offsetofend(struct vfio_iommu_type1_info,
					  iova_pgsizes);
	struct vfio_iommu_type1_info info = { };
	struct vfio_info_cap caps = { };
	size_t outsz;
	long ret;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	/* Never write back more of the fixed part than the caller has. */
	outsz = min_t(size_t, info.argsz, sizeof(info));

	mutex_lock(&c->lock);
	info.flags = VFIO_IOMMU_INFO_PGSIZES;
	info.iova_pgsizes = c->pgsize_bitmap;
	ret = vid_build_caps(c, &caps);
	mutex_unlock(&c->lock);
	if (ret)
		goto out;

	if (caps.size) {
		info.flags |= VFIO_IOMMU_INFO_CAPS;
		if (info.argsz < sizeof(info) + caps.size) {
			/* Too small: say how much is needed, write no chain. */
			info.argsz = sizeof(info) + caps.size;
		} else {
			vfio_info_cap_shift(&caps, sizeof(info));
			if (copy_to_user(arg + sizeof(info), caps.buf,
					 caps.size)) {
				ret = -EFAULT;
				goto out;
			}
			info.cap_offset = sizeof(info);
		}
	}

	if (copy_to_user(arg, &info, outsz))
		ret = -EFAULT;
out:
	kfree(caps.buf);
	return ret;
}
