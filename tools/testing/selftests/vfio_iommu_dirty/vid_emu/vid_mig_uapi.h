/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vid-mig: the migratable PCI-like test device of vid_emu, as seen by the
 * selftests. Shared by the test module and the test programs; test-only,
 * never installed, not a stable ABI.
 *
 * Loading vid_emu with mig_count=N (1..8) registers N more platform
 * devices, "vid-mig.0" ... "vid-mig.<N-1>", each a VFIO device in its own
 * emulated-IOMMU group. Unmodified QEMU (7.2, the first VFIO migration
 * protocol) assigns one with
 *
 *	-device vfio-pci,sysfsdev=/sys/bus/platform/devices/vid-mig.0,
 *		x-enable-migration=on,addr=<same on both sides>
 *
 * and can migrate it: the device has BAR0 (VID_MIG_BAR0_SIZE bytes of
 * registers and an internal buffer), a config space with no capabilities
 * and interrupt pin 0, no interrupts (the ERR index is refused, as for
 * conventional PCI), a reset that keeps DMA mappings,
 * and region VID_MIG_REGION_INDEX, the v1 migration region
 * (VFIO_REGION_TYPE_MIGRATION_DEPRECATED / ..._SUBTYPE_..., struct
 * vfio_device_migration_info at offset 0, the data window at
 * VID_MIG_DATA_OFFSET). Its registers and buffer travel through the data
 * window when it is saved and are restored on the destination.
 *
 * A test acts as the device through two sysfs attributes of the platform
 * device (/sys/bus/platform/devices/vid-mig.<N>/):
 *
 * dma (write-only): one command per write(), fields separated by blanks,
 *	numbers in C notation (0x... accepted):
 *
 *	rw <gpa> <len> <seed>	write through vfio_dma_rw()
 *	pin <gpa> <len> <seed>	vfio_pin_pages() the pages, write them
 *				through the pinned pages, vfio_unpin_pages()
 *	hold <gpa> <len> <seed>	as pin, but keep the pages pinned: they
 *				stay pinned until "release", until QEMU
 *				unmaps them (dma_unmap) or closes the device
 *	release <gpa> <len>	give back the pins "hold" took there
 *
 *	The device writes vid_mig_pattern(seed, a) at every 8-byte aligned
 *	guest-physical address a of [gpa, gpa + len). gpa and len must be
 *	multiples of 8, len at most VID_MIG_DMA_MAX (pin, hold, release:
 *	the range must also lie within VID_EMU_PIN_MAX pages).
 *	Errors (the write() fails with them, nothing is written):
 *	EINVAL	malformed command, bad alignment, len 0, range wrapping;
 *	E2BIG	len above the limit;
 *	ENODEV	the device is not open (no QEMU owns it);
 *	EBUSY	the device is not RUNNING (a stopped device does no DMA);
 *	ENOENT	release of a page that "hold" did not pin;
 *	and the backend's errno when vfio_dma_rw() or vfio_pin_pages()
 *	fails (a vfio_dma_rw() failure may leave a part written).
 *
 * state (read-write): reading gives lines "key value...":
 *	device_state <n>	the v1 device_state
 *	history <n> <n> ...	every state entered since the device was
 *				opened, oldest first (the last 32)
 *	regs <r0> ... <r7>	the BAR0 registers, hex
 *	buffer <hash>		64-bit FNV-1a of the internal buffer, hex
 *	saved <bytes>		bytes handed out through the data window
 *	restored <bytes>	bytes of device state restored (0 before)
 *	held <pages>		pages pinned by "hold"
 *	writes <n>		dma commands that wrote
 *	refused <n>		dma commands refused with EBUSY
 *	Writing "seed <n>" fills the registers and the buffer from <n>
 *	(what a device's own work would leave there): the device state a
 *	migration must carry. Allowed in any device_state but RESUMING.
 *
 * Migration region access rules (each violation fails with EINVAL and
 * changes nothing): the header fields are accessed whole and aligned
 * (device_state 4 bytes, the others 8); device_state is read-write and
 * only VFIO_DEVICE_STATE_VALID states are accepted, with no direct move
 * between a SAVING state and RESUMING; pending_bytes, data_offset and
 * (when saving) data_size are read-only and readable only while SAVING;
 * data_offset is also readable while RESUMING; data_size is written only
 * while RESUMING, at most the window size and the bytes still expected;
 * the data window is read while SAVING and written while RESUMING, within
 * the window. Leaving RESUMING without a complete, valid device state
 * fails (EINVAL); a complete state that fails its check is refused at the
 * data_size write that completes it, and receiving starts over. Bytes 4-7
 * of the header are reserved: any access there fails.
 */
#ifndef VID_MIG_UAPI_H
#define VID_MIG_UAPI_H

#include <linux/types.h>

/* Name of the platform driver and stem of the device names. */
#define VID_MIG_NAME		"vid-mig"

/* PCI identity in the config space (not a real product). */
#define VID_MIG_VENDOR		0x1234
#define VID_MIG_DEVICE		0x7e57

/* BAR0: registers, then the internal buffer. */
#define VID_MIG_BAR0_SIZE	0x2000
#define VID_MIG_REG_ID		0x0	/* u32, read-only: VID_MIG_ID */
#define VID_MIG_ID		0x7e570001
#define VID_MIG_REG_SCRATCH	0x8	/* 8 u64 registers, read-write */
#define VID_MIG_NR_SCRATCH	8
#define VID_MIG_BUF		0x1000	/* the internal buffer */
#define VID_MIG_BUF_SIZE	0x1000

/* The migration region: index, data window. */
#define VID_MIG_REGION_INDEX	9	/* VFIO_PCI_NUM_REGIONS */
#define VID_MIG_NUM_REGIONS	10
#define VID_MIG_DATA_OFFSET	0x1000
#define VID_MIG_DATA_SIZE	0x1000
#define VID_MIG_REGION_SIZE	(VID_MIG_DATA_OFFSET + VID_MIG_DATA_SIZE)

/* Most bytes one dma command may write. */
#define VID_MIG_DMA_MAX		0x100000	/* 1 MiB */

/*
 * What the device writes at the 8-byte aligned guest-physical address
 * @gpa for a command with @seed: distinct for every page and every seed,
 * so that a page's content names the write that produced it.
 */
static inline __u64 vid_mig_pattern(__u64 seed, __u64 gpa)
{
	__u64 x = gpa ^ (seed * 0x9e3779b97f4a7c15ULL);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	return x | 1;	/* never 0, so that a written word is never blank */
}

#endif /* VID_MIG_UAPI_H */
