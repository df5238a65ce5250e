// SPDX-License-Identifier: GPL-2.0
/*
 * vid_emu: an emulated-IOMMU VFIO device for the vfio_iommu_dirty
 * selftests.
 *
 * The module registers a platform driver and @count platform devices named
 * "vid-emu.0", "vid-emu.1", ... Probing one registers a VFIO device with
 * vfio_register_emulated_iommu_dev(): the VFIO core puts it alone in an
 * emulated-IOMMU group, and once user space has that group in a type1
 * container, the container's backend serves the device's pin_pages,
 * unpin_pages and dma_rw calls. The device fd takes the commands of
 * vid_emu_uapi.h, which let a test make exactly those calls and see what
 * the backend asked of the device (dma_unmap).
 *
 * The module also registers a PCI driver, VID_EMU_IOMMU_NAME, that binds
 * only to a function whose driver_override names it and puts the same
 * device in that function's IOMMU group: pins from an IOMMU-backed group.
 * And /dev/vid-emu-frames (vid_emu_frames.c) gives a test reserved page
 * frames physically next to pages it can pin.
 *
 * The device does no DMA of its own: it reaches memory only through the
 * backend or through pages the backend pinned for it. It exists only for
 * tests and is never installed.
 */
#include <linux/device.h>
#include <linux/err.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vfio.h>

#include "vid_emu.h"
#include "vid_mig.h"
#include "vid_emu_uapi.h"

#define VID_EMU_MAX_DEVICES	8

static unsigned int count = 1;
module_param(count, uint, 0444);
MODULE_PARM_DESC(count, "number of devices to create (1-8, default 1)");

static unsigned int mig_count;
module_param(mig_count, uint, 0444);
MODULE_PARM_DESC(mig_count,
		 "number of migratable PCI-like devices, vid-mig.N (0-8, default 0)");

/* Called by the VFIO core inside vfio_alloc_device(). */
static int vid_emu_init_dev(struct vfio_device *vdev)
{
	struct vid_emu_dev *emu = to_vid_emu(vdev);

	mutex_init(&emu->lock);
	xa_init(&emu->pins);
	init_waitqueue_head(&emu->gate_wq);
	return 0;
}

/* Called by the VFIO core when the last reference goes, before the free. */
static void vid_emu_release_dev(struct vfio_device *vdev)
{
	struct vid_emu_dev *emu = to_vid_emu(vdev);

	/* close_device emptied the table and nothing can fill it now. */
	WARN_ON(!xa_empty(&emu->pins));
	xa_destroy(&emu->pins);
	mutex_destroy(&emu->lock);
}

/* First open of the device: the event counters start from zero. */
static int vid_emu_open_device(struct vfio_device *vdev)
{
	struct vid_emu_dev *emu = to_vid_emu(vdev);

	mutex_lock(&emu->lock);
	emu->unmap_calls = 0;
	emu->unmap_unpinned = 0;
	emu->last_unmap_iova = 0;
	emu->last_unmap_length = 0;
	emu->anomalies = 0;
	mutex_unlock(&emu->lock);
	return 0;
}

/*
 * Last close. The device is still attached to its container here, so the
 * pins can and must be given back to the backend now.
 */
static void vid_emu_close_device(struct vfio_device *vdev)
{
	vid_emu_unpin_all(to_vid_emu(vdev));
}

/* VFIO_DEVICE_GET_INFO: a device with no regions and no interrupts. */
static long vid_emu_get_info(void __user *arg)
{
	const size_t minsz = offsetofend(struct vfio_device_info, num_irqs);
	struct vfio_device_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	info.flags = 0;
	info.num_regions = 0;
	info.num_irqs = 0;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

static long vid_emu_status(struct vid_emu_dev *emu, void __user *arg)
{
	const size_t minsz = offsetofend(struct vid_emu_status, anomalies);
	struct vid_emu_status st;
	long ret = 0;

	if (copy_from_user(&st, arg, offsetofend(struct vid_emu_status, flags)))
		return -EFAULT;
	if (st.argsz < minsz || (st.flags & ~VID_EMU_STATUS_RESET))
		return -EINVAL;

	/* Report and reset in one go, so that no event is lost between. */
	mutex_lock(&emu->lock);
	st.pinned_pages = emu->pinned_pages;
	st.pinned_refs = emu->pinned_refs;
	st.unmap_calls = emu->unmap_calls;
	st.unmap_unpinned = emu->unmap_unpinned;
	st.last_unmap_iova = emu->last_unmap_iova;
	st.last_unmap_length = emu->last_unmap_length;
	st.anomalies = emu->anomalies;
	if (copy_to_user(arg, &st, minsz)) {
		ret = -EFAULT;
	} else if (st.flags & VID_EMU_STATUS_RESET) {
		emu->unmap_calls = 0;
		emu->unmap_unpinned = 0;
		emu->last_unmap_iova = 0;
		emu->last_unmap_length = 0;
		emu->anomalies = 0;
	}
	mutex_unlock(&emu->lock);
	return ret;
}

static long vid_emu_ioctl(struct vfio_device *vdev, unsigned int cmd,
			  unsigned long arg)
{
	struct vid_emu_dev *emu = to_vid_emu(vdev);
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO:
		return vid_emu_get_info(uarg);
	case VID_EMU_PIN:
		return vid_emu_pin(emu, uarg);
	case VID_EMU_UNPIN:
		return vid_emu_unpin(emu, uarg);
	case VID_EMU_RW:
		return vid_emu_rw(emu, uarg);
	case VID_EMU_STATUS:
		return vid_emu_status(emu, uarg);
	case VID_EMU_GATE:
		return vid_emu_gate(emu, uarg);
	}
	return -ENOTTY;
}

static const struct vfio_device_ops vid_emu_ops = {
	.name		= VID_EMU_NAME,
	.init		= vid_emu_init_dev,
	.release	= vid_emu_release_dev,
	VID_EMU_IOMMUFD_OPS
	.open_device	= vid_emu_open_device,
	.close_device	= vid_emu_close_device,
	.ioctl		= vid_emu_ioctl,
	.dma_unmap	= vid_emu_dma_unmap,
};

static int vid_emu_probe(struct platform_device *pdev)
{
	static_assert(offsetof(struct vid_emu_dev, vdev) == 0);
	return vid_emu_probe_dev(pdev, &vid_emu_ops,
				 sizeof(struct vid_emu_dev));
}

static struct platform_driver vid_emu_driver = {
	.probe		= vid_emu_probe,
	.remove		= VID_EMU_REMOVE,
	.driver		= {
		.name			= VID_EMU_NAME,
		/* Module init checks that each device is bound. */
		.probe_type		= PROBE_FORCE_SYNCHRONOUS,
		/* No unbind through sysfs under an open device fd. */
		.suppress_bind_attrs	= true,
	},
	/*
	 * The device does no DMA: keep the platform bus from claiming an
	 * IOMMU domain for it. VFIO gives it its own emulated group.
	 */
	.driver_managed_dma	= true,
};

static struct vid_emu_devset vid_emu_set = { .drv = &vid_emu_driver };

/*
 * The same device behind a real IOMMU. A backend sees pins from an
 * IOMMU-backed group only through a driver like this one: every in-tree
 * driver that pins is mediated, in an emulated group. The PCI function
 * (edu in the test guest) is bound for its IOMMU group alone and does
 * nothing: no BAR is touched, bus mastering stays off.
 */
static const struct vfio_device_ops vid_emu_iommu_ops = {
	.name		= VID_EMU_IOMMU_NAME,
	.init		= vid_emu_init_dev,
	.release	= vid_emu_release_dev,
	VID_EMU_IOMMUFD_PHYS_OPS
	.open_device	= vid_emu_open_device,
	.close_device	= vid_emu_close_device,
	.ioctl		= vid_emu_ioctl,
	.dma_unmap	= vid_emu_dma_unmap,
};

static int vid_emu_iommu_probe(struct pci_dev *pdev,
			       const struct pci_device_id *id)
{
	struct vfio_device *vdev;
	int ret;

	vdev = _vfio_alloc_device(sizeof(struct vid_emu_dev), &pdev->dev,
				  &vid_emu_iommu_ops);
	if (IS_ERR(vdev))
		return PTR_ERR(vdev);
	/* The VFIO core puts it in the function's IOMMU group. */
	ret = vfio_register_group_dev(vdev);
	if (ret) {
		vfio_put_device(vdev);
		return ret;
	}
	pci_set_drvdata(pdev, vdev);
	return 0;
}

/* Waits until user space has closed every fd of the device. */
static void vid_emu_iommu_remove(struct pci_dev *pdev)
{
	struct vfio_device *vdev = pci_get_drvdata(pdev);

	vfio_unregister_group_dev(vdev);
	vfio_put_device(vdev);
}

/* No ID table: it binds only where driver_override names it. */
static struct pci_driver vid_emu_iommu_driver = {
	.name			= VID_EMU_IOMMU_NAME,
	.probe			= vid_emu_iommu_probe,
	.remove			= vid_emu_iommu_remove,
	/* VFIO owns the group's DMA, as with vfio-pci. */
	.driver_managed_dma	= true,
};

static int __init vid_emu_init(void)
{
	int ret;

	if (!count || count > VID_EMU_MAX_DEVICES) {
		pr_err("vid_emu: count must be 1..%d\n", VID_EMU_MAX_DEVICES);
		return -EINVAL;
	}
	ret = vid_emu_devset_add(&vid_emu_set, count);
	if (ret)
		return ret;
	ret = vid_mig_register(mig_count);
	if (ret) {
		pr_err("vid_emu: mig_count must be 0..8 (%d)\n", ret);
		goto err_emu;
	}
	ret = pci_register_driver(&vid_emu_iommu_driver);
	if (ret)
		goto err_mig;
	ret = vid_emu_frames_register();
	if (ret)
		goto err_pci;
	return 0;
err_pci:
	pci_unregister_driver(&vid_emu_iommu_driver);
err_mig:
	vid_mig_unregister();
err_emu:
	vid_emu_devset_remove(&vid_emu_set);
	return ret;
}

static void __exit vid_emu_exit(void)
{
	vid_emu_frames_unregister();
	pci_unregister_driver(&vid_emu_iommu_driver);
	vid_mig_unregister();
	vid_emu_devset_remove(&vid_emu_set);
}

module_init(vid_emu_init);
module_exit(vid_emu_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Emulated-IOMMU VFIO test device for the vfio_iommu_dirty selftests");
