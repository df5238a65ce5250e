/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * User-visible constants of the vfio_iommu_dirty backend.
 *
 * The backend speaks the standard VFIO type1 uAPI of <linux/vfio.h>; a
 * program written for the in-tree vfio_iommu_type1 needs nothing from this
 * file. It names what is specific to this backend, so that tools can tell
 * which backend serves a container.
 */
#ifndef _UAPI_LINUX_VFIO_IOMMU_DIRTY_H
#define _UAPI_LINUX_VFIO_IOMMU_DIRTY_H

/* Name under which the backend registers with the VFIO core. */
#define VFIO_IOMMU_DIRTY_DRIVER_NAME	"vfio-iommu-dirty"

/* Name of the loaded module, as shown under /sys/module. */
#define VFIO_IOMMU_DIRTY_MODULE_NAME	"vfio_iommu_dirty"

#endif /* _UAPI_LINUX_VFIO_IOMMU_DIRTY_H */
