/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Control interface of vid_emu, the emulated-IOMMU VFIO device that the
 * vfio_iommu_dirty selftests load to drive a type1 backend's pin_pages,
 * unpin_pages and dma_rw paths exactly. Shared by the test module and the
 * test programs; it exists only for the tests and is never installed, so
 * it is not a stable ABI.
 *
 * The module registers platform devices named "vid-emu.<N>". Each one is a
 * VFIO device in its own emulated-IOMMU group: open the group
 * (/sys/bus/platform/devices/vid-emu.<N>/iommu_group names it), add it to a
 * container, set the IOMMU type, then get the device fd with
 * VFIO_GROUP_GET_DEVICE_FD("vid-emu.<N>"). The commands below are ioctls on
 * that fd, each taking a pointer to its structure.
 *
 * As with VFIO's own ioctls, @argsz is the size of the structure the caller
 * passes (at least up to its last field; larger is accepted and the rest is
 * ignored) and @flags holds only the flags a command defines. Anything else
 * fails with EINVAL and changes nothing.
 */
#ifndef VID_EMU_UAPI_H
#define VID_EMU_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Name of the platform driver and stem of the device names. */
#define VID_EMU_NAME		"vid-emu"

/*
 * The same device in an IOMMU-backed group: a PCI driver of this name
 * binds to a PCI function whose driver_override names it (it has no ID
 * table, so it takes nothing else). The function itself is never
 * touched; its IOMMU group is what counts. The device fd is found by the
 * function's PCI name and takes the commands below.
 */
#define VID_EMU_IOMMU_NAME	"vid-emu-iommu"

/*
 * These commands only ever reach this device's own fd; the type byte is
 * not VFIO's so that they can never be taken for a VFIO device ioctl.
 */
#define VID_EMU_TYPE		0xE7
#define VID_EMU_BASE		0x40

/* Most pages one PIN or UNPIN may name: the VFIO core's limit on x86-64. */
#define VID_EMU_PIN_MAX		512
/* Most bytes one RW may move. */
#define VID_EMU_RW_MAX		0x100000	/* 1 MiB */

/*
 * VID_EMU_PIN - pin pages through vfio_pin_pages()
 *
 * Pins @npages pages from the page-aligned @iova with the protection in
 * @flags (VID_EMU_PIN_READ maps to IOMMU_READ, VID_EMU_PIN_WRITE to
 * IOMMU_WRITE; none is passed on as 0). The device keeps every pin in a
 * table, one reference per successful pin of a page, so that UNPIN,
 * dma_unmap and close can give each of them back exactly once.
 *
 * If @pfns is not 0 it points to @npages __u64 that receive the page frame
 * number of each pinned page (CAP_SYS_ADMIN only, as /proc/PID/pagemap).
 *
 * Return: 0 when all pages are pinned; otherwise nothing stays pinned and
 * errno is the backend's answer, or EINVAL (bad argument: argsz, flags,
 * pad, npages 0, unaligned iova, iova range wrapping), E2BIG (npages above
 * VID_EMU_PIN_MAX), EPERM (pfns without CAP_SYS_ADMIN), EFAULT (pfns not
 * writable), ENOMEM, EIO (the backend broke its contract: see
 * vid_emu_status.anomalies).
 */
struct vid_emu_pin {
	__u32	argsz;
	__u32	flags;
#define VID_EMU_PIN_READ	0x1
#define VID_EMU_PIN_WRITE	0x2
	__aligned_u64	iova;
	__u32	npages;
	__u32	pad;		/* must be 0 */
	__aligned_u64	pfns;	/* user pointer to __u64[npages], or 0 */
};

#define VID_EMU_PIN		_IO(VID_EMU_TYPE, VID_EMU_BASE + 0)

/*
 * VID_EMU_UNPIN - give pins back through vfio_unpin_pages()
 *
 * Drops one reference on each of the @npages pages from the page-aligned
 * @iova; each page must be pinned by this device (ENOENT otherwise, with
 * nothing unpinned). With VID_EMU_UNPIN_ALL (@iova and @npages 0) every
 * reference the device holds is dropped.
 *
 * Return: 0, or EINVAL, E2BIG, ENOENT as above.
 */
struct vid_emu_unpin {
	__u32	argsz;
	__u32	flags;
#define VID_EMU_UNPIN_ALL	0x1
	__aligned_u64	iova;
	__u32	npages;
	__u32	pad;		/* must be 0 */
};

#define VID_EMU_UNPIN		_IO(VID_EMU_TYPE, VID_EMU_BASE + 1)

/*
 * VID_EMU_RW - device access to @length bytes at @iova
 *
 * Without VID_EMU_RW_WRITE the device reads: the bytes at @iova are copied
 * to the user buffer @data. With it the device writes: the bytes of @data
 * are copied to @iova. The access goes through vfio_dma_rw() unless
 * VID_EMU_RW_PINNED is set: then it goes through the pages this device
 * holds pinned, as a device driver does with the pages vfio_pin_pages()
 * returned; every page touched must be pinned (ENOENT), with
 * VID_EMU_PIN_WRITE for a write (EPERM).
 *
 * Return: 0, or the backend's errno, or EINVAL (argsz, flags, length 0,
 * range wrapping), E2BIG (length above VID_EMU_RW_MAX), EFAULT (@data),
 * ENOENT, EPERM, ENOMEM. A failed device write may have written a part of
 * the range, as vfio_dma_rw() does.
 */
struct vid_emu_rw {
	__u32	argsz;
	__u32	flags;
#define VID_EMU_RW_WRITE	0x1
#define VID_EMU_RW_PINNED	0x2
	__aligned_u64	iova;
	__aligned_u64	data;	/* user pointer */
	__aligned_u64	length;
};

#define VID_EMU_RW		_IO(VID_EMU_TYPE, VID_EMU_BASE + 2)

/*
 * VID_EMU_STATUS - what the device holds and what it was told
 *
 * Fills in struct vid_emu_status. Return: 0, or EINVAL (argsz, flags),
 * EFAULT.
 */

/**
 * struct vid_emu_status - argument of VID_EMU_STATUS
 * @argsz: size of the structure passed.
 * @flags: VID_EMU_STATUS_RESET sets the event counters (@unmap_calls and
 *	below) to 0 after reporting them. They count from the first open of
 *	the device. Pins are never reset.
 * @pinned_pages: IOVA pages this device holds pinned.
 * @pinned_refs: pin references it holds (a page pinned twice counts 2).
 * @unmap_calls: dma_unmap callbacks received.
 * @unmap_unpinned: pin references given back inside those callbacks.
 * @last_unmap_iova: start of the range of the last dma_unmap callback.
 * @last_unmap_length: its length (0 when there was none).
 * @anomalies: backend answers that broke the pin_pages contract (success
 *	with a wrong count or a NULL page, another page for an IOVA already
 *	pinned). Always 0 with a correct backend.
 */
struct vid_emu_status {
	__u32	argsz;
	__u32	flags;
#define VID_EMU_STATUS_RESET	0x1
	__aligned_u64	pinned_pages;
	__aligned_u64	pinned_refs;
	__aligned_u64	unmap_calls;
	__aligned_u64	unmap_unpinned;
	__aligned_u64	last_unmap_iova;
	__aligned_u64	last_unmap_length;
	__aligned_u64	anomalies;
};

#define VID_EMU_STATUS		_IO(VID_EMU_TYPE, VID_EMU_BASE + 3)

/*
 * VID_EMU_GATE - hold the next dma_unmap callback
 *
 * Lets a test act while the backend waits for this device in the middle
 * of an unmap (with the backend's container lock dropped), for example
 * map across the edge of the range being unmapped.
 *
 * VID_EMU_GATE_ARM: the dma_unmap callbacks from now on wait, before
 *	they give any pin back, until the gate is opened (or
 *	VID_EMU_GATE_MAX_MS have passed: a test that dies never hangs the
 *	unmap for good). Two unmaps running at once both wait there.
 * VID_EMU_GATE_WAIT: wait, at most @timeout_ms, until @count callbacks
 *	(0 counts as 1) are held.
 * VID_EMU_GATE_OPEN: let the held callbacks (if any) go on; disarm.
 * Flags may be combined and act in that order.
 *
 * Return: 0, or EINVAL (argsz, flags, timeout above VID_EMU_GATE_MAX_MS),
 * ETIMEDOUT (WAIT: no callback arrived), EINTR.
 */
struct vid_emu_gate {
	__u32	argsz;
	__u32	flags;
#define VID_EMU_GATE_ARM	0x1
#define VID_EMU_GATE_WAIT	0x2
#define VID_EMU_GATE_OPEN	0x4
	__u32	timeout_ms;
	__u32	count;		/* WAIT: callbacks held (0: one) */
};

#define VID_EMU_GATE_MAX_MS	20000

#define VID_EMU_GATE		_IO(VID_EMU_TYPE, VID_EMU_BASE + 4)

/*
 * VID_EMU_FRAMES_INFO - the frames of an open /dev/VID_EMU_FRAMES_NAME
 *
 * Each open of /dev/vid-emu-frames allocates VID_EMU_FRAMES page frames of
 * its own, in two physically consecutive pairs: frame 0, an ordinary page,
 * then frame 1, a reserved one (PageReserved); frame 2, reserved, then
 * frame 3, ordinary. mmap() of one page, MAP_SHARED, at offset
 * N * page size maps frame N: an ordinary frame as a page that can be
 * pinned (VM_MIXEDMAP), a reserved one with remap_pfn_range() (VM_PFNMAP,
 * never pinned). Any other length or offset, or a private mapping, fails
 * with EINVAL. Mapped at adjacent addresses, a pair gives memory whose
 * pages are physically consecutive and of different kinds.
 *
 * A reserved frame N can also be mapped at offset
 * (VID_EMU_FRAMES_FAULT * VID_EMU_FRAMES + N) * page size: VM_PFNMAP as
 * well, but empty until the VMA's fault handler maps the frame; the first
 * try of each fault gives up the mmap lock and returns VM_FAULT_RETRY
 * (counted in faults and retries), the retry maps it. At offset
 * (VID_EMU_FRAMES_SIGBUS * VID_EMU_FRAMES + N) * page size every fault
 * fails with SIGBUS. At (VID_EMU_FRAMES_NOPAGE * VID_EMU_FRAMES + N) *
 * page size the fault handler never maps it: the first try of each fault
 * gives up the mmap lock and asks for a retry, as above, and the retry
 * returns VM_FAULT_NOPAGE with nothing mapped, so that every fault
 * "succeeds" and the page stays absent (user space must not touch such a
 * page: its own access would fault for ever). At
 * (VID_EMU_FRAMES_DIRECT * VID_EMU_FRAMES + N) * page size the fault
 * handler maps it at once, keeping the lock, as most drivers' handlers
 * do (counted in faults). An ordinary frame at those offsets is EINVAL.
 *
 * An ordinary frame N can also be mapped at offset
 * (VID_EMU_FRAMES_RAM * VID_EMU_FRAMES + N) * page size with
 * remap_pfn_range(): RAM behind a VM_PFNMAP VMA, which GUP refuses and a
 * backend must refuse too (nothing keeps the page from being freed under
 * the device). A reserved frame at that offset is EINVAL.
 *
 * This ioctl on that file reports, for each frame, its page frame number,
 * its page's reference count, whether it is reserved and whether it may
 * be pinned for DMA (folio_maybe_dma_pinned()). CAP_SYS_ADMIN only.
 *
 * Return: 0, or EINVAL (argsz, flags), EPERM, EFAULT.
 */
#define VID_EMU_FRAMES_NAME	"vid-emu-frames"
#define VID_EMU_FRAMES		4
#define VID_EMU_FRAMES_FAULT	1
#define VID_EMU_FRAMES_SIGBUS	2
#define VID_EMU_FRAMES_NOPAGE	3
#define VID_EMU_FRAMES_RAM	4
#define VID_EMU_FRAMES_DIRECT	5

struct vid_emu_frame {
	__aligned_u64	pfn;
	__u32	refcount;
	__u32	flags;
#define VID_EMU_FRAME_RESERVED		0x1
#define VID_EMU_FRAME_DMA_PINNED	0x2
};

struct vid_emu_frames {
	__u32	argsz;
	__u32	flags;		/* must be 0 */
	struct vid_emu_frame	frame[VID_EMU_FRAMES];
	__u32	faults;		/* faults of the mappings by a handler */
	__u32	retries;	/* of them, answered VM_FAULT_RETRY */
};

#define VID_EMU_FRAMES_INFO	_IO(VID_EMU_TYPE, VID_EMU_BASE + 5)

#endif /* VID_EMU_UAPI_H */
