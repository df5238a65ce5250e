/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vid_emu: private objects of the emulated-IOMMU VFIO test device.
 *
 * Locking: one mutex per device, emu->lock, protects the pin table and
 * every counter. It is held across the calls into the VFIO core that pin
 * and unpin (vfio_pin_pages(), vfio_unpin_pages()), so that the table and
 * the backend always agree on what is pinned; those calls take the
 * backend's container lock and the owner's mmap lock inside it. The
 * backend calls dma_unmap with its own device-list lock held and its
 * container lock dropped; dma_unmap then takes emu->lock. Therefore:
 *
 *	backend device-list lock -> emu->lock -> backend container lock
 *						-> mmap lock
 *
 * and nothing here takes emu->lock while holding a backend lock in any
 * other order. The VID_EMU_RW command calls vfio_dma_rw() without
 * emu->lock: it does not use the table (vid-mig's DMA command holds it,
 * see vid_mig.h). A dma_unmap callback held by VID_EMU_GATE waits with
 * emu->lock dropped, only the backend's device-list lock held, so the
 * test can pin, write and map meanwhile. Everything here may sleep.
 *
 * Lifetime: struct vid_emu_dev is allocated by vfio_alloc_device() when
 * the platform device is probed and freed by the VFIO core once the last
 * reference to the vfio_device is gone (after remove). Pins exist only
 * while the device is open: close_device gives all of them back.
 */
#ifndef VID_EMU_H
#define VID_EMU_H

#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/version.h>
#include <linux/vfio.h>
#include <linux/wait.h>
#include <linux/xarray.h>

struct page;

struct platform_device;
struct platform_driver;

/* Linux 6.1 has neither the iommufd callbacks nor void remove(). */
#if LINUX_VERSION_MAJOR == 6 && LINUX_VERSION_PATCHLEVEL == 1
#define VID_EMU_KERNEL_6_1	1
#endif

/*
 * The iommufd callbacks of an emulated device, for both kinds' ops. The
 * helpers are NULL when the kernel has no IOMMUFD, which is what
 * __vfio_register_dev() expects then; with IOMMUFD it requires them.
 */
#ifdef VID_EMU_KERNEL_6_1
#define VID_EMU_IOMMUFD_OPS
#define VID_EMU_REMOVE		vid_emu_remove_dev_int
#else
#define VID_EMU_IOMMUFD_OPS						\
	.bind_iommufd	= vfio_iommufd_emulated_bind,			\
	.unbind_iommufd	= vfio_iommufd_emulated_unbind,			\
	.attach_ioas	= vfio_iommufd_emulated_attach_ioas,		\
	.detach_ioas	= vfio_iommufd_emulated_detach_ioas,
#define VID_EMU_REMOVE		vid_emu_remove_dev
#endif

/* The iommufd callbacks of a device in an IOMMU-backed group. */
#ifdef VID_EMU_KERNEL_6_1
#define VID_EMU_IOMMUFD_PHYS_OPS
#else
#define VID_EMU_IOMMUFD_PHYS_OPS					\
	.bind_iommufd	= vfio_iommufd_physical_bind,			\
	.unbind_iommufd	= vfio_iommufd_physical_unbind,			\
	.attach_ioas	= vfio_iommufd_physical_attach_ioas,		\
	.detach_ioas	= vfio_iommufd_physical_detach_ioas,
#endif

/**
 * struct vid_emu_devset - one kind of test device: a driver, its devices
 * @drv: the platform driver (its name is the devices' name stem)
 * @pdevs: the platform devices registered, @n of them
 * @n: how many
 */
struct vid_emu_devset {
	struct platform_driver *drv;
	struct platform_device **pdevs;
	unsigned int n;
};

/**
 * struct vid_emu_dev - one emulated device
 * @vdev: the VFIO device; first, as vfio_alloc_device() requires.
 * @lock: protects everything below.
 * @pins: IOVA page number -> struct vid_emu_pinned.
 * @pinned_pages: entries in @pins.
 * @pinned_refs: sum of their reference counts.
 * @unmap_calls: dma_unmap callbacks since the first open.
 * @unmap_unpinned: references given back by those callbacks.
 * @last_unmap_iova: start of the last dma_unmap range.
 * @last_unmap_length: length of the last dma_unmap range.
 * @anomalies: backend answers that broke the pin_pages contract.
 * @gate_armed: dma_unmap callbacks wait until it is cleared (VID_EMU_GATE).
 * @gate_held: how many callbacks are waiting at the gate.
 * @gate_wq: where the callbacks and VID_EMU_GATE wait for each other;
 *	the two fields are read there without @lock.
 */
struct vid_emu_dev {
	struct vfio_device vdev;
	struct mutex lock;		/* see the locking rules above */
	struct xarray pins;
	u64 pinned_pages;
	u64 pinned_refs;
	u64 unmap_calls;
	u64 unmap_unpinned;
	u64 last_unmap_iova;
	u64 last_unmap_length;
	u64 anomalies;
	bool gate_armed;
	unsigned int gate_held;
	wait_queue_head_t gate_wq;
};

static inline struct vid_emu_dev *to_vid_emu(struct vfio_device *vdev)
{
	return container_of(vdev, struct vid_emu_dev, vdev);
}

int vid_emu_probe_dev(struct platform_device *pdev,
		      const struct vfio_device_ops *ops, size_t size);
void vid_emu_remove_dev(struct platform_device *pdev);
int vid_emu_remove_dev_int(struct platform_device *pdev);
int vid_emu_devset_add(struct vid_emu_devset *set, unsigned int count);
void vid_emu_devset_remove(struct vid_emu_devset *set);
bool vid_emu_range_ok(u64 iova, u64 len);
int vid_emu_pin_locked(struct vid_emu_dev *emu, u64 iova, u32 npages,
		       int prot, struct page **pages);
int vid_emu_unpin_locked(struct vid_emu_dev *emu, u64 iova, u32 npages);
int vid_emu_rw_pinned_locked(struct vid_emu_dev *emu, u64 iova, u8 *buf,
			     size_t len, bool write);
long vid_emu_pin(struct vid_emu_dev *emu, void __user *arg);
long vid_emu_unpin(struct vid_emu_dev *emu, void __user *arg);
long vid_emu_rw(struct vid_emu_dev *emu, void __user *arg);
void vid_emu_unpin_all(struct vid_emu_dev *emu);
long vid_emu_gate(struct vid_emu_dev *emu, void __user *arg);
void vid_emu_dma_unmap(struct vfio_device *vdev, u64 iova, u64 length);
int vid_emu_frames_register(void);
void vid_emu_frames_unregister(void);

#endif /* VID_EMU_H */
