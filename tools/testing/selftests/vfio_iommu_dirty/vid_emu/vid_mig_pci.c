// SPDX-License-Identifier: GPL-2.0
/*
 * vid-mig: a small PCI function behind an emulated IOMMU, enough for
 * QEMU's vfio-pci to assign it and, with x-enable-migration=on, migrate
 * it (see vid_mig_uapi.h).
 *
 * What vfio-pci asks of a device and gets here: VFIO_DEVICE_FLAGS_PCI and
 * VFIO_DEVICE_FLAGS_RESET; the nine regions of a PCI device (BAR0 with
 * registers and a buffer, BAR1-5, ROM and VGA empty, a 256-byte config
 * space with no capability list and interrupt pin 0) plus the migration
 * region with its type capability; the interrupt indexes of a
 * conventional PCI function without interrupts. Regions are reached with
 * pread/pwrite only (no mmap), at offset index << VID_MIG_INDEX_SHIFT, as
 * vfio-pci lays them out.
 */
#include <linux/device.h>
#include <linux/err.h>
#include <linux/module.h>
#include <linux/pci_regs.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include "vid_mig.h"

#ifdef VID_EMU_KERNEL_6_1
#include <asm/unaligned.h>
#else
#include <linux/unaligned.h>
#endif

#define VID_MIG_INDEX_SHIFT	40
#define VID_MIG_OFFSET_MASK	((1ULL << VID_MIG_INDEX_SHIFT) - 1)
#define VID_MIG_MAX_DEVICES	8

/* The scratch registers occupy [REG_SCRATCH, REGS_END) of BAR0. */
#define VID_MIG_REGS_END	(VID_MIG_REG_SCRATCH + 8 * VID_MIG_NR_SCRATCH)

/* Command register bits the device implements: I/O, memory, bus master. */
#define VID_MIG_COMMAND_MASK	(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | \
				 PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE)

/* ---------------------------------------------------------------- state */

/**
 * vid_mig_buf_hash() - FNV-1a of a buffer, as the "state" attribute shows
 * @buf: the bytes
 * @len: their number
 *
 * Return: the 64-bit hash.
 */
u64 vid_mig_buf_hash(const u8 *buf, size_t len)
{
	u64 h = 0xcbf29ce484222325ULL;

	while (len--) {
		h ^= *buf++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/**
 * vid_mig_fill() - give the registers and the buffer contents from @seed
 * @mig: the device, with its lock held
 * @seed: what the contents derive from; 0 clears them (as a reset does)
 */
void vid_mig_fill(struct vid_mig *mig, u64 seed)
{
	unsigned int i;
	__le64 word;

	for (i = 0; i < VID_MIG_NR_SCRATCH; i++)
		mig->regs[i] = seed ? vid_mig_pattern(seed, 8 * i) : 0;
	for (i = 0; i < VID_MIG_BUF_SIZE; i += sizeof(word)) {
		word = cpu_to_le64(seed ?
				   vid_mig_pattern(seed, VID_MIG_BUF + i) : 0);
		memcpy(mig->buf + i, &word, sizeof(word));
	}
}

/* Config space after a reset: identity, no capabilities, no interrupt. */
static void vid_mig_config_reset(struct vid_mig *mig)
{
	u8 *c = mig->config;

	memset(c, 0, sizeof(mig->config));
	put_unaligned_le16(VID_MIG_VENDOR, c + PCI_VENDOR_ID);
	put_unaligned_le16(VID_MIG_DEVICE, c + PCI_DEVICE_ID);
	c[PCI_REVISION_ID] = 1;
	/* Class 0xff: a device that fits no defined class. */
	c[PCI_CLASS_DEVICE + 1] = 0xff;
	c[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
	/* BAR0: 32-bit, non-prefetchable memory; other BARs absent. */
	put_unaligned_le16(VID_MIG_VENDOR, c + PCI_SUBSYSTEM_VENDOR_ID);
	put_unaligned_le16(VID_MIG_DEVICE, c + PCI_SUBSYSTEM_ID);
	c[PCI_INTERRUPT_PIN] = 0;
}

/* VFIO_DEVICE_RESET, and the state of a device just opened. */
static void vid_mig_reset(struct vid_mig *mig)
{
	vid_mig_config_reset(mig);
	vid_mig_fill(mig, 0);
	vid_mig_state_reset(mig);
	/* A reset device runs, as the v1 protocol says. */
	vid_mig_enter(mig, VFIO_DEVICE_STATE_V1_RUNNING);
}

/* ----------------------------------------------------------- config/BAR0 */

/*
 * Config writes: the command register and BAR0 (which answers a sizing
 * write with its size) are kept; every other byte is read-only, and a
 * write there is dropped, as hardware drops it.
 */
static void vid_mig_config_write(struct vid_mig *mig, u64 off, const u8 *val,
				 size_t count)
{
	u32 bar;
	u16 cmd;

	for (; count; off++, val++, count--) {
		if (off == PCI_COMMAND || off == PCI_COMMAND + 1 ||
		    (off >= PCI_BASE_ADDRESS_0 && off < PCI_BASE_ADDRESS_1))
			mig->config[off] = *val;
	}
	cmd = get_unaligned_le16(mig->config + PCI_COMMAND);
	put_unaligned_le16(cmd & VID_MIG_COMMAND_MASK,
			   mig->config + PCI_COMMAND);
	bar = get_unaligned_le32(mig->config + PCI_BASE_ADDRESS_0);
	put_unaligned_le32(bar & ~(VID_MIG_BAR0_SIZE - 1),
			   mig->config + PCI_BASE_ADDRESS_0);
}

static ssize_t vid_mig_config_rw(struct vid_mig *mig, char __user *ubuf,
				 size_t count, u64 off, bool write)
{
	u8 tmp[VID_MIG_CONFIG_SIZE];

	if (!count || off >= sizeof(mig->config) ||
	    count > sizeof(mig->config) - off)
		return -EINVAL;
	if (!write)
		return copy_to_user(ubuf, mig->config + off, count) ?
		       -EFAULT : count;
	if (copy_from_user(tmp, ubuf, count))
		return -EFAULT;
	vid_mig_config_write(mig, off, tmp, count);
	return count;
}

/* A register access: 1, 2, 4 or 8 bytes, naturally aligned, one register. */
static bool vid_mig_reg_access_ok(u64 off, size_t count)
{
	if (count != 1 && count != 2 && count != 4 && count != 8)
		return false;
	if (off & (count - 1))
		return false;
	return off < VID_MIG_REGS_END;
}

static ssize_t vid_mig_bar0_rw(struct vid_mig *mig, char __user *ubuf,
			       size_t count, u64 off, bool write)
{
	u8 regs[VID_MIG_REGS_END];
	unsigned int i;

	if (!count || off >= VID_MIG_BAR0_SIZE ||
	    count > VID_MIG_BAR0_SIZE - off)
		return -EINVAL;
	if (off >= VID_MIG_BUF) {
		u8 *p = mig->buf + (off - VID_MIG_BUF);

		if (write ? copy_from_user(p, ubuf, count) :
			    copy_to_user(ubuf, p, count))
			return -EFAULT;
		return count;
	}
	if (!vid_mig_reg_access_ok(off, count))
		return -EINVAL;

	/* The register file as the device presents it, little-endian. */
	put_unaligned_le32(VID_MIG_ID, regs + VID_MIG_REG_ID);
	put_unaligned_le32(0, regs + VID_MIG_REG_ID + 4);
	for (i = 0; i < VID_MIG_NR_SCRATCH; i++)
		put_unaligned_le64(mig->regs[i], regs + VID_MIG_REG_SCRATCH + 8 * i);
	if (!write)
		return copy_to_user(ubuf, regs + off, count) ? -EFAULT : count;
	if (off < VID_MIG_REG_SCRATCH)
		return count;		/* the ID is read-only */
	if (copy_from_user(regs + off, ubuf, count))
		return -EFAULT;
	for (i = 0; i < VID_MIG_NR_SCRATCH; i++)
		mig->regs[i] = get_unaligned_le64(regs + VID_MIG_REG_SCRATCH +
						  8 * i);
	return count;
}

static ssize_t vid_mig_rw(struct vfio_device *vdev, char __user *ubuf,
			  size_t count, loff_t *ppos, bool write)
{
	struct vid_mig_dev *md = to_vid_mig(vdev);
	struct vid_mig *mig = &md->mig;
	u64 index = (u64)*ppos >> VID_MIG_INDEX_SHIFT;
	u64 off = (u64)*ppos & VID_MIG_OFFSET_MASK;
	ssize_t ret;

	if (*ppos < 0)
		return -EINVAL;
	mutex_lock(&md->emu.lock);
	switch (index) {
	case VFIO_PCI_BAR0_REGION_INDEX:
		ret = vid_mig_bar0_rw(mig, ubuf, count, off, write);
		break;
	case VFIO_PCI_CONFIG_REGION_INDEX:
		ret = vid_mig_config_rw(mig, ubuf, count, off, write);
		break;
	case VID_MIG_REGION_INDEX:
		ret = vid_mig_region_rw(mig, ubuf, count, off, write);
		break;
	default:
		ret = -EINVAL;		/* empty or no such region */
	}
	mutex_unlock(&md->emu.lock);
	if (ret > 0)
		*ppos += ret;
	return ret;
}

static ssize_t vid_mig_read(struct vfio_device *vdev, char __user *ubuf,
			    size_t count, loff_t *ppos)
{
	return vid_mig_rw(vdev, ubuf, count, ppos, false);
}

static ssize_t vid_mig_write(struct vfio_device *vdev, const char __user *ubuf,
			     size_t count, loff_t *ppos)
{
	return vid_mig_rw(vdev, (char __user *)ubuf, count, ppos, true);
}

/* --------------------------------------------------------------- ioctls */

static long vid_mig_get_info(void __user *arg)
{
	const size_t minsz = offsetofend(struct vfio_device_info, num_irqs);
	struct vfio_device_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz)
		return -EINVAL;
	info.flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
	info.num_regions = VID_MIG_NUM_REGIONS;
	info.num_irqs = VFIO_PCI_NUM_IRQS;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

static u64 vid_mig_region_size(u32 index)
{
	switch (index) {
	case VFIO_PCI_BAR0_REGION_INDEX:
		return VID_MIG_BAR0_SIZE;
	case VFIO_PCI_CONFIG_REGION_INDEX:
		return VID_MIG_CONFIG_SIZE;
	case VID_MIG_REGION_INDEX:
		return VID_MIG_REGION_SIZE;
	}
	return 0;
}

/*
 * VFIO_DEVICE_GET_REGION_INFO. The migration region carries its type in a
 * capability right after the structure; a caller whose argsz leaves no
 * room for it learns the size it needs, as with vfio-pci.
 */
static long vid_mig_get_region_info(void __user *arg)
{
	const size_t minsz = offsetofend(struct vfio_region_info, offset);
	struct vfio_region_info_cap_type cap = {
		.header.id = VFIO_REGION_INFO_CAP_TYPE,
		.header.version = 1,
		.type = VFIO_REGION_TYPE_MIGRATION_DEPRECATED,
		.subtype = VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED,
	};
	struct vfio_region_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz || info.index >= VID_MIG_NUM_REGIONS)
		return -EINVAL;
	info.size = vid_mig_region_size(info.index);
	info.offset = (u64)info.index << VID_MIG_INDEX_SHIFT;
	info.flags = info.size ? VFIO_REGION_INFO_FLAG_READ |
				 VFIO_REGION_INFO_FLAG_WRITE : 0;
	info.cap_offset = 0;
	if (info.index == VID_MIG_REGION_INDEX) {
		info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
		if (info.argsz < minsz + sizeof(cap)) {
			info.argsz = minsz + sizeof(cap);
		} else {
			if (copy_to_user(arg + minsz, &cap, sizeof(cap)))
				return -EFAULT;
			info.cap_offset = minsz;
		}
	}
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

/*
 * Interrupt indexes as vfio-pci has them for a conventional PCI function
 * with interrupt pin 0 and no MSI: INTx, MSI, MSI-X and REQ exist with no
 * interrupt; ERR (AER) exists only for PCI Express and is refused, which
 * QEMU takes quietly.
 */
static long vid_mig_get_irq_info(void __user *arg)
{
	const size_t minsz = offsetofend(struct vfio_irq_info, count);
	struct vfio_irq_info info;

	if (copy_from_user(&info, arg, minsz))
		return -EFAULT;
	if (info.argsz < minsz || info.index >= VFIO_PCI_NUM_IRQS ||
	    info.index == VFIO_PCI_ERR_IRQ_INDEX)
		return -EINVAL;
	info.flags = 0;
	info.count = 0;
	return copy_to_user(arg, &info, minsz) ? -EFAULT : 0;
}

/*
 * VFIO_DEVICE_SET_IRQS: with no interrupts, only "disable all of an
 * index" (DATA_NONE, ACTION_TRIGGER, count 0) means anything, and it is
 * already true.
 */
static long vid_mig_set_irqs(void __user *arg)
{
	const size_t minsz = offsetofend(struct vfio_irq_set, count);
	struct vfio_irq_set hdr;

	if (copy_from_user(&hdr, arg, minsz))
		return -EFAULT;
	if (hdr.argsz < minsz || hdr.index >= VFIO_PCI_NUM_IRQS)
		return -EINVAL;
	if (hdr.flags != (VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER) ||
	    hdr.start || hdr.count)
		return -EINVAL;
	return 0;
}

static long vid_mig_ioctl(struct vfio_device *vdev, unsigned int cmd,
			  unsigned long arg)
{
	struct vid_mig_dev *md = to_vid_mig(vdev);
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VFIO_DEVICE_GET_INFO:
		return vid_mig_get_info(uarg);
	case VFIO_DEVICE_GET_REGION_INFO:
		return vid_mig_get_region_info(uarg);
	case VFIO_DEVICE_GET_IRQ_INFO:
		return vid_mig_get_irq_info(uarg);
	case VFIO_DEVICE_SET_IRQS:
		return vid_mig_set_irqs(uarg);
	case VFIO_DEVICE_RESET:
		/* Registers and migration state; DMA mappings are not ours. */
		mutex_lock(&md->emu.lock);
		vid_mig_reset(&md->mig);
		mutex_unlock(&md->emu.lock);
		return 0;
	}
	return -ENOTTY;
}

/* ------------------------------------------------------- device and driver */

static int vid_mig_init_dev(struct vfio_device *vdev)
{
	struct vid_mig_dev *md = to_vid_mig(vdev);

	mutex_init(&md->emu.lock);
	xa_init(&md->emu.pins);
	init_waitqueue_head(&md->emu.gate_wq);
	return 0;
}

static void vid_mig_release_dev(struct vfio_device *vdev)
{
	struct vid_mig_dev *md = to_vid_mig(vdev);

	WARN_ON(!xa_empty(&md->emu.pins));
	xa_destroy(&md->emu.pins);
	mutex_destroy(&md->emu.lock);
}

/* First open: a device fresh from reset, counters from zero. */
static int vid_mig_open_device(struct vfio_device *vdev)
{
	struct vid_mig_dev *md = to_vid_mig(vdev);
	struct vid_mig *mig = &md->mig;

	mutex_lock(&md->emu.lock);
	mig->nhistory = 0;
	mig->saved = 0;
	mig->restored = 0;
	mig->writes = 0;
	mig->refused = 0;
	vid_mig_reset(mig);
	mig->open = true;
	mutex_unlock(&md->emu.lock);
	return 0;
}

/* Last close: the device stops, and gives back every page it holds. */
static void vid_mig_close_device(struct vfio_device *vdev)
{
	struct vid_mig_dev *md = to_vid_mig(vdev);

	mutex_lock(&md->emu.lock);
	md->mig.open = false;
	mutex_unlock(&md->emu.lock);
	vid_emu_unpin_all(&md->emu);
}

static const struct vfio_device_ops vid_mig_ops = {
	.name		= VID_MIG_NAME,
	.init		= vid_mig_init_dev,
	.release	= vid_mig_release_dev,
	VID_EMU_IOMMUFD_OPS
	.open_device	= vid_mig_open_device,
	.close_device	= vid_mig_close_device,
	.read		= vid_mig_read,
	.write		= vid_mig_write,
	.ioctl		= vid_mig_ioctl,
	.dma_unmap	= vid_emu_dma_unmap,
};

static int vid_mig_probe(struct platform_device *pdev)
{
	static_assert(offsetof(struct vid_mig_dev, emu.vdev) == 0);
	return vid_emu_probe_dev(pdev, &vid_mig_ops,
				 sizeof(struct vid_mig_dev));
}

static struct platform_driver vid_mig_driver = {
	.probe		= vid_mig_probe,
	.remove		= VID_EMU_REMOVE,
	.driver		= {
		.name			= VID_MIG_NAME,
		.dev_groups		= vid_mig_groups,
		.probe_type		= PROBE_FORCE_SYNCHRONOUS,
		.suppress_bind_attrs	= true,
	},
	/* No DMA of its own: VFIO gives it an emulated group. */
	.driver_managed_dma	= true,
};

static struct vid_emu_devset vid_mig_set = { .drv = &vid_mig_driver };

/**
 * vid_mig_unregister() - remove every vid-mig device and the driver
 *
 * Safe after a vid_mig_register() that failed or registered nothing.
 */
void vid_mig_unregister(void)
{
	vid_emu_devset_remove(&vid_mig_set);
}

/**
 * vid_mig_register() - register the driver and @count devices
 * @count: devices to create, 0..VID_MIG_MAX_DEVICES (0: nothing at all)
 *
 * Return: 0 or a negative errno, with nothing left registered.
 */
int vid_mig_register(unsigned int count)
{
	if (!count)
		return 0;
	if (count > VID_MIG_MAX_DEVICES)
		return -EINVAL;
	return vid_emu_devset_add(&vid_mig_set, count);
}
