// SPDX-License-Identifier: GPL-2.0
/*
 * vid_emu: the platform side shared by both kinds of test device (vid-emu
 * and vid-mig). Each kind is a platform driver with a set of numbered
 * platform devices; probing one allocates its VFIO device and registers
 * it with vfio_register_emulated_iommu_dev(), which gives it its own
 * emulated-IOMMU group. The platform device's driver data is the
 * struct vfio_device, the first member of either kind's structure.
 */
#include <linux/device.h>
#include <linux/err.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include <linux/vfio.h>

#include "vid_emu.h"

/**
 * vid_emu_probe_dev() - allocate and register one device's VFIO device
 * @pdev: the platform device being probed
 * @ops: the kind's VFIO device operations
 * @size: size of the kind's structure, whose first member is the
 *	struct vfio_device (as vfio_alloc_device() requires)
 *
 * Return: 0 or a negative errno, with nothing left allocated.
 */
int vid_emu_probe_dev(struct platform_device *pdev,
		      const struct vfio_device_ops *ops, size_t size)
{
	struct vfio_device *vdev;
	int ret;

	vdev = _vfio_alloc_device(size, &pdev->dev, ops);
	if (IS_ERR(vdev))
		return PTR_ERR(vdev);
	ret = vfio_register_emulated_iommu_dev(vdev);
	if (ret) {
		vfio_put_device(vdev);
		return ret;
	}
	platform_set_drvdata(pdev, vdev);
	return 0;
}

/**
 * vid_emu_remove_dev() - unregister and release one device's VFIO device
 * @pdev: the platform device being removed
 *
 * Waits until user space has closed every fd of the device.
 */
void vid_emu_remove_dev(struct platform_device *pdev)
{
	struct vfio_device *vdev = platform_get_drvdata(pdev);

	vfio_unregister_group_dev(vdev);
	vfio_put_device(vdev);
}

#ifdef VID_EMU_KERNEL_6_1
/**
 * vid_emu_remove_dev_int() - vid_emu_remove_dev() as 6.1's remove wants it
 * @pdev: the platform device being removed
 *
 * Return: 0.
 */
int vid_emu_remove_dev_int(struct platform_device *pdev)
{
	vid_emu_remove_dev(pdev);
	return 0;
}
#endif

/**
 * vid_emu_devset_remove() - remove a set's devices, then its driver
 * @set: the set; safe on a set that vid_emu_devset_add() left empty
 */
void vid_emu_devset_remove(struct vid_emu_devset *set)
{
	if (!set->pdevs)
		return;
	while (set->n)
		platform_device_unregister(set->pdevs[--set->n]);
	kfree(set->pdevs);
	set->pdevs = NULL;
	platform_driver_unregister(set->drv);
}

/**
 * vid_emu_devset_add() - register @set's driver and @count devices
 * @set: the set, with @drv filled in and nothing registered
 * @count: devices "<driver name>.0" ... "<driver name>.<count - 1>"
 *
 * The driver probes synchronously, so each device is bound (or not) when
 * its registration returns; a probe failure, which the registration does
 * not report, is one here.
 *
 * Return: 0 or a negative errno, with nothing left registered.
 */
int vid_emu_devset_add(struct vid_emu_devset *set, unsigned int count)
{
	struct platform_device *pdev;
	int ret;

	set->n = 0;
	set->pdevs = kcalloc(count, sizeof(*set->pdevs), GFP_KERNEL);
	if (!set->pdevs)
		return -ENOMEM;
	ret = platform_driver_register(set->drv);
	if (ret) {
		kfree(set->pdevs);
		set->pdevs = NULL;
		return ret;
	}
	while (set->n < count) {
		pdev = platform_device_register_simple(set->drv->driver.name,
						       set->n, NULL, 0);
		if (IS_ERR(pdev)) {
			ret = PTR_ERR(pdev);
			goto err;
		}
		set->pdevs[set->n++] = pdev;
		if (!platform_get_drvdata(pdev)) {
			dev_err(&pdev->dev, "could not register the VFIO device\n");
			ret = -ENODEV;
			goto err;
		}
	}
	return 0;
err:
	vid_emu_devset_remove(set);
	return ret;
}
