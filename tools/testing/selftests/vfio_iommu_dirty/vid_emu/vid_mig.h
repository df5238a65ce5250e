/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vid-mig: private objects of the migratable PCI-like test device of
 * vid_emu (see vid_mig_uapi.h for what user space and QEMU see).
 *
 * A vid-mig device is a vid_emu device (struct vid_emu_dev, with its pin
 * table and dma_unmap handling) plus the state of a small PCI function:
 * config space, BAR0 registers and buffer, and the v1 migration protocol.
 *
 * Locking: everything in struct vid_mig is protected by the embedded
 * emu.lock, the same mutex that protects the pin table, so the order of
 * vid_emu.h applies unchanged: emu.lock is taken before any backend lock
 * (the test's DMA commands call vfio_dma_rw() and vfio_pin_pages() with it
 * held, so that a command and a state change or a close never overlap;
 * the vfio_dma_rw() command waits with emu.lock held for a kernel worker
 * that takes only backend locks), and the backend's dma_unmap callback takes it with the backend's
 * device-list lock held. Region accesses copy to and from user space with
 * emu.lock held; nothing that handles a page fault takes emu.lock.
 * Everything here may sleep.
 *
 * Lifetime: allocated by vfio_alloc_device() at probe, freed by the VFIO
 * core after the last vfio_put_device(). The sysfs attributes are removed
 * (and in-flight accesses drained) before the driver's remove runs, so
 * they never see a freed device; they act only while @open is set.
 */
#ifndef VID_MIG_H
#define VID_MIG_H

#include <linux/types.h>

#include "vid_emu.h"
#include "vid_mig_uapi.h"

#define VID_MIG_CONFIG_SIZE	256
#define VID_MIG_HISTORY		32
#define VID_MIG_BLOB_MAGIC	0x4749444dU	/* "MDIG" little-endian */
#define VID_MIG_BLOB_VERSION	1

/**
 * struct vid_mig_blob - the device state as it travels in the data window
 * @magic: VID_MIG_BLOB_MAGIC
 * @version: VID_MIG_BLOB_VERSION
 * @regs: the BAR0 scratch registers
 * @buf: the internal buffer
 * @check: FNV-1a of every byte before it
 *
 * Larger than one data window on purpose: saving it takes two chunks.
 */
struct vid_mig_blob {
	__le32 magic;
	__le32 version;
	__le64 regs[VID_MIG_NR_SCRATCH];
	u8 buf[VID_MIG_BUF_SIZE];
	__le64 check;
};

/**
 * struct vid_mig - the PCI function and its migration state
 * @config: config space as the device holds it (little-endian)
 * @regs: BAR0 scratch registers
 * @buf: the internal buffer behind BAR0
 * @open: the VFIO device is open (a user owns it)
 * @device_state: the v1 device_state
 * @history: states entered since open, the last VID_MIG_HISTORY of them
 * @nhistory: states entered since open (may exceed VID_MIG_HISTORY)
 * @window: the data window of the migration region
 * @save: the snapshot being saved (SAVING without RUNNING)
 * @save_len: bytes in @save (0 while nothing is to be saved)
 * @save_pos: bytes of @save already handed out and consumed
 * @staged: bytes of @save at @save_pos now in @window, not yet consumed
 * @restore: the device state being received (RESUMING)
 * @restore_len: bytes received into @restore
 * @restored: bytes of device state applied by the last restore
 * @saved: bytes handed out through the data window since open
 * @writes: DMA commands that wrote since open
 * @refused: DMA commands refused because the device was not RUNNING
 */
struct vid_mig {
	u8 config[VID_MIG_CONFIG_SIZE];
	u64 regs[VID_MIG_NR_SCRATCH];
	u8 buf[VID_MIG_BUF_SIZE];
	bool open;
	u32 device_state;
	u32 history[VID_MIG_HISTORY];
	unsigned int nhistory;
	u8 window[VID_MIG_DATA_SIZE];
	struct vid_mig_blob save;
	u64 save_len;
	u64 save_pos;
	u64 staged;
	struct vid_mig_blob restore;
	u64 restore_len;
	u64 restored;
	u64 saved;
	u64 writes;
	u64 refused;
};

/**
 * struct vid_mig_dev - one vid-mig device
 * @emu: the emulated VFIO device; first, as vfio_alloc_device() requires
 * @mig: its PCI function
 */
struct vid_mig_dev {
	struct vid_emu_dev emu;
	struct vid_mig mig;
};

static inline struct vid_mig_dev *to_vid_mig(struct vfio_device *vdev)
{
	return container_of(vdev, struct vid_mig_dev, emu.vdev);
}

/* vid_mig_region.c: the v1 migration region */
void vid_mig_state_reset(struct vid_mig *mig);
void vid_mig_enter(struct vid_mig *mig, u32 state);
ssize_t vid_mig_region_rw(struct vid_mig *mig, char __user *ubuf,
			  size_t count, u64 off, bool write);

/* vid_mig_pci.c: config space, BAR0, the driver */
void vid_mig_fill(struct vid_mig *mig, u64 seed);
u64 vid_mig_buf_hash(const u8 *buf, size_t len);
int vid_mig_register(unsigned int count);
void vid_mig_unregister(void);

/* vid_mig_sysfs.c: the test's side of the device */
extern const struct attribute_group *vid_mig_groups[];

#endif /* VID_MIG_H */
