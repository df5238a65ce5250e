/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * User-visible extensions of the vfio_iommu_dirty backend.
 *
 * The backend speaks the standard VFIO type1 uAPI of <linux/vfio.h>; a
 * program written for the in-tree vfio_iommu_type1 needs nothing from this
 * file and never meets anything it defines. A program that wants more
 * looks for VFIO_IOMMU_TYPE1_INFO_CAP_DIRTY_EXT in the capability chain of
 * VFIO_IOMMU_GET_INFO, and uses only the features its flags announce.
 */
#ifndef _UAPI_LINUX_VFIO_IOMMU_DIRTY_H
#define _UAPI_LINUX_VFIO_IOMMU_DIRTY_H

#include <linux/types.h>
#include <linux/vfio.h>

/* Name under which the backend registers with the VFIO core. */
#define VFIO_IOMMU_DIRTY_DRIVER_NAME	"vfio-iommu-dirty"

/* Name of the loaded module, as shown under /sys/module. */
#define VFIO_IOMMU_DIRTY_MODULE_NAME	"vfio_iommu_dirty"

/*
 * Capability ID of the extension announcement. In-tree type1 numbers its
 * capabilities from 1 upwards; this one sits far above, where they will
 * not reach.
 */
#define VFIO_IOMMU_TYPE1_INFO_CAP_DIRTY_EXT	0xd1d0

/* Version of struct vfio_iommu_type1_info_cap_dirty_ext. */
#define VFIO_IOMMU_DIRTY_EXT_VERSION	1

/*
 * struct vfio_iommu_type1_info_cap_dirty_ext - extensions of this backend
 * @header: id VFIO_IOMMU_TYPE1_INFO_CAP_DIRTY_EXT, version
 *	VFIO_IOMMU_DIRTY_EXT_VERSION
 * @flags: VFIO_IOMMU_DIRTY_EXT_* features available
 * @reserved: zero
 * @pgsize_bitmap: page sizes GET_BITMAP and UNMAP with a bitmap accept: the
 *	smallest IOMMU page size (one bit per page, as in-tree) and every
 *	larger IOMMU page size of the container (one bit per block: the bit
 *	is set when any page of the block is dirty)
 */
struct vfio_iommu_type1_info_cap_dirty_ext {
	struct vfio_info_cap_header header;
	__u32 flags;
#define VFIO_IOMMU_DIRTY_EXT_PEEK		(1 << 0)
#define VFIO_IOMMU_DIRTY_EXT_COARSE_PGSIZE	(1 << 1)
	__u32 reserved;
	__u64 pgsize_bitmap;
};

/*
 * VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK: together with
 * VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP (the only flag combination
 * accepted), report the dirty bitmap exactly as GET_BITMAP does but leave
 * the pages dirty: the next GET_BITMAP reports them again. Lets a tool
 * look without disturbing a migration in progress.
 */
#define VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK	(1U << 31)

#endif /* _UAPI_LINUX_VFIO_IOMMU_DIRTY_H */
