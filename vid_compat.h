/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Declarations the VFIO core keeps in its private header.
 *
 * The IOMMU backend ops table, the group type enum and the registration
 * functions are declared in drivers/vfio/vfio.h, which distribution header
 * packages do not ship. This module therefore carries its own copy of their
 * layout, one block per kernel range it was checked against. A wrong layout
 * would make the core call through the wrong function pointers, so a kernel
 * that was not checked stops the build instead of guessing.
 */
#ifndef VID_COMPAT_H
#define VID_COMPAT_H

#include <linux/version.h>
#include <linux/types.h>

struct iommu_group;
struct iommu_domain;
struct module;
struct page;
struct vfio_device;

#if LINUX_VERSION_MAJOR == 6 && LINUX_VERSION_PATCHLEVEL == 12
/*
 * Layout checked against Linux 6.12 (Debian linux-source-6.12 6.12.117):
 * drivers/vfio/vfio.h, struct vfio_iommu_driver_ops and enum vfio_group_type.
 */

/* What kind of group the core hands to attach_group(). */
enum vfio_group_type {
	VFIO_IOMMU,		/* a device behind a real IOMMU */
	VFIO_EMULATED_IOMMU,	/* a mediated device: DMA only via pin/rw */
	VFIO_NO_IOMMU,		/* unsafe no-IOMMU mode, never ours */
};

struct vfio_iommu_driver_ops {
	char		*name;
	struct module	*owner;
	void		*(*open)(unsigned long arg);
	void		(*release)(void *iommu_data);
	long		(*ioctl)(void *iommu_data, unsigned int cmd,
				 unsigned long arg);
	int		(*attach_group)(void *iommu_data,
					struct iommu_group *group,
					enum vfio_group_type type);
	void		(*detach_group)(void *iommu_data,
					struct iommu_group *group);
	int		(*pin_pages)(void *iommu_data,
				     struct iommu_group *group,
				     dma_addr_t user_iova, int npage, int prot,
				     struct page **pages);
	void		(*unpin_pages)(void *iommu_data,
				       dma_addr_t user_iova, int npage);
	void		(*register_device)(void *iommu_data,
					   struct vfio_device *vdev);
	void		(*unregister_device)(void *iommu_data,
					     struct vfio_device *vdev);
	int		(*dma_rw)(void *iommu_data, dma_addr_t user_iova,
				  void *data, size_t count, bool write);
	struct iommu_domain *(*group_iommu_domain)(void *iommu_data,
						   struct iommu_group *group);
};

int vfio_register_iommu_driver(const struct vfio_iommu_driver_ops *ops);
void vfio_unregister_iommu_driver(const struct vfio_iommu_driver_ops *ops);

#else
#error "vfio_iommu_dirty: unsupported kernel version; supported: Linux 6.12.x"
#endif

#endif /* VID_COMPAT_H */
