/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What differs between the kernels this module supports.
 *
 * The IOMMU backend ops table, the group type enum and the registration
 * functions are declared in drivers/vfio/vfio.h, which distribution header
 * packages do not ship. This module therefore carries its own copy of their
 * layout, one block per kernel range it was checked against. A wrong layout
 * would make the core call through the wrong function pointers, so a kernel
 * that was not checked stops the build instead of guessing.
 *
 * The few kernel interfaces that changed between those kernels get one
 * wrapper each here, so that the rest of the module is written once.
 */
#ifndef VID_COMPAT_H
#define VID_COMPAT_H

#include <linux/version.h>
#include <linux/types.h>
#include <linux/iommu.h>
#include <linux/mm.h>

struct iommu_group;
struct iommu_domain;
struct module;
struct page;
struct vfio_device;

/* What kind of group the core hands to attach_group() (6.1 and 6.12). */
enum vfio_group_type {
	VFIO_IOMMU,		/* a device behind a real IOMMU */
	VFIO_EMULATED_IOMMU,	/* a mediated device: DMA only via pin/rw */
	VFIO_NO_IOMMU,		/* unsafe no-IOMMU mode, never ours */
};

#if LINUX_VERSION_MAJOR == 6 && LINUX_VERSION_PATCHLEVEL == 12
/* Checked against Linux 6.12 (Debian linux-source-6.12 6.12.117). */
#define VID_KERNEL_6_12	1
#elif LINUX_VERSION_MAJOR == 6 && LINUX_VERSION_PATCHLEVEL == 1
/*
 * Checked against Linux 6.1 (Debian linux-source-6.1 6.1.192): the ops end
 * with a notify() callback the core calls when the container file closes.
 */
#define VID_KERNEL_6_1	1

enum vfio_iommu_notify_type {
	VFIO_IOMMU_CONTAINER_CLOSE = 0,
};
#else
#error "vfio_iommu_dirty: unsupported kernel version; supported: Linux 6.1.x and 6.12.x"
#endif

/* drivers/vfio/vfio.h, struct vfio_iommu_driver_ops, of both kernels. */
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
#ifdef VID_KERNEL_6_1
	void		(*notify)(void *iommu_data,
				  enum vfio_iommu_notify_type event);
#endif
};

int vfio_register_iommu_driver(const struct vfio_iommu_driver_ops *ops);
void vfio_unregister_iommu_driver(const struct vfio_iommu_driver_ops *ops);

/* iommu_map() took a gfp_t from 6.3 on. */
static inline int vid_iommu_map(struct iommu_domain *domain,
				unsigned long iova, phys_addr_t paddr,
				size_t size, int prot)
{
#ifdef VID_KERNEL_6_12
	return iommu_map(domain, iova, paddr, size, prot, GFP_KERNEL_ACCOUNT);
#else
	return iommu_map(domain, iova, paddr, size, prot);
#endif
}

/* A paging domain for the IOMMU behind @dev; ERR_PTR on failure. */
static inline struct iommu_domain *vid_paging_domain_alloc(struct device *dev)
{
#ifdef VID_KERNEL_6_12
	return iommu_paging_domain_alloc(dev);
#else
	struct iommu_domain *domain = iommu_domain_alloc(dev->bus);

	return domain ? domain : ERR_PTR(-ENOMEM);
#endif
}

#ifdef VID_KERNEL_6_1
static inline int vid_dev_remaps_irq(struct device *dev, void *unused)
{
	return device_iommu_capable(dev, IOMMU_CAP_INTR_REMAP);
}
#endif

/* Can the group's devices only raise the interrupts they were given? */
static inline bool vid_group_msi_isolated(struct iommu_group *group)
{
#ifdef VID_KERNEL_6_12
	return iommu_group_has_isolated_msi(group);
#else
	return irq_domain_check_msi_remap() ||
	       iommu_group_for_each_dev(group, NULL, vid_dev_remaps_irq);
#endif
}

/* pin_user_pages_remote() lost its vmas argument in 6.5. */
static inline long vid_pin_user_pages_remote(struct mm_struct *mm,
					     unsigned long start,
					     unsigned long npages,
					     unsigned int gup,
					     struct page **pages)
{
#ifdef VID_KERNEL_6_12
	return pin_user_pages_remote(mm, start, npages, gup, pages, NULL);
#else
	return pin_user_pages_remote(mm, start, npages, gup, pages, NULL,
				     NULL);
#endif
}

/*
 * The frame mapped at @vaddr of a VM_PFNMAP @vma, with mmap_lock held for
 * reading, and whether it is mapped writable. 6.12 has follow_pfnmap_*();
 * 6.1 walks to the PTE with follow_pte().
 */
static inline int vid_follow_pfn(struct vm_area_struct *vma,
				 unsigned long vaddr, unsigned long *pfn,
				 bool *writable)
{
#ifdef VID_KERNEL_6_12
	struct follow_pfnmap_args args = { .vma = vma, .address = vaddr };
	int ret = follow_pfnmap_start(&args);

	if (ret)
		return ret;
	*pfn = args.pfn;
	*writable = args.writable;
	follow_pfnmap_end(&args);
	return 0;
#else
	spinlock_t *ptl;	/* the page table lock follow_pte() took */
	pte_t *ptep;
	int ret = follow_pte(vma->vm_mm, vaddr, &ptep, &ptl);

	if (ret)
		return ret;
	/* follow_pte() returned with the lock held; sparse cannot see it. */
	__acquire(ptl);
	*pfn = pte_pfn(*ptep);
	*writable = pte_write(*ptep);
	pte_unmap_unlock(ptep, ptl);
	return 0;
#endif
}

#endif /* VID_COMPAT_H */
