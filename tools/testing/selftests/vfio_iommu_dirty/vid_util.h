/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for the vfio_iommu_dirty selftests.
 *
 * Everything here is plain C and independent of the kselftest harness:
 * functions return 0 or a negative errno and the tests assert on that.
 * Every program links all of them; each section below names its file:
 *
 *   vid_util.c     the environment, containers and groups, DMA mapping,
 *                  dirty tracking, seeds and time, passing fds
 *   vid_modules.c  the kernel modules (libkmod), the test device's
 *                  module, this backend's debugfs view
 *   vid_devices.c  the QEMU edu device, the emulated test device
 *   vid_kmsg.c     the kernel log and the problems it reports
 *   vid_proc.c     accounting (VmLck, pinned pages), other processes
 */
#ifndef VID_UTIL_H
#define VID_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vfio.h>

#include <linux/vfio_iommu_dirty.h>

#include "vid_emu/vid_emu_uapi.h"
#include "vid_sys.h"

/* The CPU's page size (4 KiB on x86-64, 4 or 16 KiB on the arm64 lanes). */
#define VID_PAGE		vid_page_size()
/* The same in kB, the unit of VmLck. */
#define VID_PAGE_KB		((long)(VID_PAGE / 1024))
#define VID_MOD_OURS		"vfio_iommu_dirty"
#define VID_MOD_TYPE1		"vfio_iommu_type1"
#define VID_DEFAULT_MODULE	"/opt/vid/vfio-iommu-dirty.ko"
#define VID_CONTAINER_PATH	"/dev/vfio/vfio"

#define VID_MAP_RW	(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

/*
 * The smallest argsz each type1 ioctl accepts: its structure up to and
 * including the last field every caller must provide.
 */
#define VID_INFO_MINSZ \
	(offsetof(struct vfio_iommu_type1_info, iova_pgsizes) + sizeof(__u64))
#define VID_MAP_MINSZ \
	(offsetof(struct vfio_iommu_type1_dma_map, size) + sizeof(__u64))
#define VID_UNMAP_MINSZ \
	(offsetof(struct vfio_iommu_type1_dma_unmap, size) + sizeof(__u64))

/* --- environment: vid_util.c -------------------------------------- */

/* True when VID_BACKEND=intree: run against in-tree vfio_iommu_type1. */
bool vid_backend_intree(void);
/* Name of the module expected to serve new type1 containers. */
const char *vid_backend_module(void);
/* VID_EDU_BDF, or NULL when unset. */
const char *vid_edu_bdf(void);
/* VID_EDU_GROUP, or -1 when unset or not a number. */
int vid_edu_group(void);
/*
 * The @n-th (from 0) BDF of VID_EDU_BDFS, the edu devices the guest bound
 * to vfio-pci, into @bdf (@len bytes): 0, or -ENODEV when there are not
 * that many.
 */
int vid_edu_bdf_nth(unsigned int n, char *bdf, size_t len);
/*
 * Why the VFIO tests cannot run here (no /dev/vfio/vfio, no edu device
 * in the environment), or NULL when they can.
 */
const char *vid_skip_reason(void);

/* --- kernel modules (libkmod): vid_modules.c ---------------------- */

/*
 * Put the modules in the state the tests expect: vfio_iommu_type1 loaded,
 * and vfio_iommu_dirty loaded after it (so that the VFIO core prefers it),
 * or, with VID_BACKEND=intree, vfio_iommu_dirty not loaded.
 * Returns 0 or -errno; on failure *why names the step that failed.
 */
int vid_modules_setup(const char **why);
/* True when /sys/module/NAME/initstate says "live". */
bool vid_module_live(const char *name);
/* /sys/module/NAME/refcnt, or -errno. */
long vid_module_refcnt(const char *name);
/* delete_module(NAME, O_NONBLOCK) through libkmod; 0 or -errno. */
int vid_module_remove(const char *name, bool quiet);
/* Insert vfio_iommu_dirty from $VID_MODULE; 0 (also if loaded) or -errno. */
int vid_module_load_ours(void);
/*
 * Insert vfio_iommu_dirty from $VID_MODULE with the parameters @opts,
 * removing it first if it is loaded; with @opts NULL, the same as
 * vid_module_load_ours(). 0 or -errno.
 */
int vid_module_reload_ours(const char *opts);

/* --- containers and groups: vid_util.c ---------------------------- */

/* An open container with the edu group attached. */
struct vid_ctx {
	int container;
	int group;
	int device;
};

void vid_ctx_init(struct vid_ctx *ctx);
/* Open /dev/vfio/vfio; fd or -errno. */
int vid_open_container(void);
/* Open the edu group, check it is viable, add it to @container. */
int vid_open_group(int container);
/* Same for /dev/vfio/@id: fd or -errno. */
int vid_open_group_id(int container, int id);
/* IOMMU group number of the device at /sys/bus/@bus/devices/@name, or -errno. */
int vid_device_group(const char *bus, const char *name);
/*
 * VFIO_SET_IOMMU(@type) on @container; 0 or -errno. *@served tells whether
 * the refcount of module @mod rose by one, that is whether @mod is the
 * driver the VFIO core chose for the container.
 */
int vid_set_iommu(int container, int type, const char *mod, bool *served);
/* Open container + group and, if @type is non-zero, VFIO_SET_IOMMU(@type). */
int vid_ctx_open(struct vid_ctx *ctx, int type);
/* Close device, group and container (in that order); idempotent. */
void vid_ctx_close(struct vid_ctx *ctx);

/* --- DMA mapping: vid_util.c -------------------------------------- */

/* VFIO_IOMMU_MAP_DMA; 0 or -errno. */
int vid_map(int container, uint64_t iova, const void *vaddr, uint64_t size,
	    uint32_t flags);
/* Same with every field chosen by the caller (for bad-argument tests). */
int vid_map_raw(int container, uint32_t argsz, uint32_t flags,
		uint64_t vaddr, uint64_t iova, uint64_t size);
/* VFIO_IOMMU_UNMAP_DMA; 0 or -errno; *unmapped gets the returned size. */
int vid_unmap(int container, uint64_t iova, uint64_t size,
	      uint64_t *unmapped);
int vid_unmap_raw(int container, uint32_t argsz, uint32_t flags,
		  uint64_t iova, uint64_t size, uint64_t *unmapped);

/* Anonymous private memory, populated, filled with @fill; NULL on error. */
void *vid_alloc(size_t size, int fill);
void vid_free(void *p, size_t size);
/* A byte pattern that differs per position and per @seed. */
void vid_fill_pattern(uint8_t *p, size_t len, unsigned int seed);
/* Index of the first byte where @x and @y differ, or -1. */
long vid_first_diff(const uint8_t *x, const uint8_t *y, size_t len);
/* Index of the first byte of @p that is not @v, or -1. */
long vid_first_not(const uint8_t *p, size_t len, uint8_t v);

/* --- accounting: vid_proc.c --------------------------------------- */

/* VmLck of this process in kB, or -errno. */
long vid_vmlck_kb(void);
/* nr_foll_pin_acquired - nr_foll_pin_released, or -errno via *err. */
long vid_pinned_pages(int *err);

struct vid_acct {
	long vmlck_kb;
	long pinned;
};

/* Snapshot both counters; 0 or -errno. */
int vid_acct_read(struct vid_acct *a);

/* --- kernel log: vid_kmsg.c --------------------------------------- */

/* Open /dev/kmsg for reading, positioned at its end; fd or -errno. */
int vid_kmsg_open(void);
/* Write one line to the kernel log; 0 or -errno. */
int vid_kmsg_write(const char *line);
/*
 * Wait up to @timeout_ms for a new kernel log record containing @needle.
 * Returns true when found.
 */
bool vid_kmsg_wait(int fd, const char *needle, int timeout_ms);

#define VID_FAULT_BEGIN	"vid: expect-dmar-fault begin"
#define VID_FAULT_END	"vid: expect-dmar-fault end"

/* --- the QEMU edu device: vid_devices.c --------------------------- */

#define EDU_REG_ID		0x00
#define EDU_REG_DMA_SRC		0x80
#define EDU_REG_DMA_DST		0x88
#define EDU_REG_DMA_CNT		0x90
#define EDU_REG_DMA_CMD		0x98
#define EDU_DMA_START		0x1
#define EDU_DMA_TO_RAM		0x2
#define EDU_DMA_IRQ		0x4
#define EDU_BUF			0x40000UL
#define EDU_BUF_SIZE		4096UL

struct vid_edu {
	int fd;			/* the device fd (not owned) */
	uint64_t bar0;		/* BAR0 region offset in the device fd */
	uint64_t bar0_size;
	uint64_t cfg;		/* config region offset in the device fd */
};

/*
 * Get the edu device fd from @ctx->group into @ctx->device, locate BAR0 and
 * the config region, check the edu identification register and enable
 * memory decoding and bus mastering. 0 or -errno.
 */
int vid_edu_open(struct vid_ctx *ctx, struct vid_edu *edu);
/* The same for the edu device @bdf of @ctx->group. */
int vid_edu_open_bdf(struct vid_ctx *ctx, const char *bdf,
		     struct vid_edu *edu);
int vid_edu_read64(struct vid_edu *edu, uint64_t reg, uint64_t *val);
int vid_edu_write64(struct vid_edu *edu, uint64_t reg, uint64_t val);
/*
 * One edu DMA transfer of @count bytes between IOVA @iova and the device
 * buffer at @buf_off (offset inside the 4 KiB buffer). @to_ram selects the
 * direction. Waits for completion (bounded). 0 or -errno (-ETIMEDOUT).
 */
int vid_edu_dma(struct vid_edu *edu, uint64_t iova, uint64_t buf_off,
		uint64_t count, bool to_ram);

/* --- dirty page tracking: vid_util.c ------------------------------ */

/* VFIO_IOMMU_DIRTY_PAGES with no range (START, STOP, bad flags); 0/-errno. */
int vid_dirty_op(int container, uint32_t argsz, uint32_t flags);
/*
 * VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP (| @flags) of [@iova, @iova +
 * @size) at @pgsize into @bits, a buffer of @bytes bytes; 0 or -errno.
 */
int vid_get_bitmap(int container, uint32_t flags, uint64_t iova,
		   uint64_t size, uint64_t pgsize, uint64_t *bits,
		   uint64_t bytes);
/* UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (| @flags). */
int vid_unmap_bitmap(int container, uint32_t flags, uint64_t iova,
		     uint64_t size, uint64_t pgsize, uint64_t *bits,
		     uint64_t bytes, uint64_t *unmapped);

/* --- the emulated test device (vid_emu/): vid_devices.c ----------- */

#define VID_EMU_MOD		"vid_emu"
#define VID_EMU_KO		"vid-emu.ko"
#define VID_EMU_DEV0		VID_EMU_NAME ".0"
/* Stem of the migratable devices' names (VID_MIG_NAME, vid_mig_uapi.h). */
#define VID_EMU_MIG		"vid-mig"

/*
 * Insert the test module from $VID_EMU_MODULE, by default vid-emu.ko in
 * the directory of the running program. 0 (also if it is loaded already)
 * or -errno. (This and vid_emu_load_mig() are in vid_modules.c.)
 */
int vid_emu_load(void);
/*
 * The same with at least @count (>= 1) migratable devices vid-mig.N
 * (vid_emu/vid_mig_uapi.h): a test module loaded without them is removed
 * and inserted again with mig_count=@count. 0 or -errno (-ENODEV: the
 * module has no such devices even so).
 */
int vid_emu_load_mig(unsigned int count);
/*
 * Open a container, add the group of emulated device @name, set the IOMMU
 * @type and get the device fd into @ctx (ctx->group is the emulated
 * group). *@served as for vid_set_iommu() with vid_backend_module().
 * 0 or -errno; on error @ctx is closed.
 */
int vid_emu_ctx_open(struct vid_ctx *ctx, const char *name, int type,
		     bool *served);

/* The device commands of vid_emu_uapi.h; 0 or -errno. */
int vid_emu_pin(int dev, uint64_t iova, uint32_t npages, uint32_t flags,
		uint64_t *pfns);
int vid_emu_unpin(int dev, uint64_t iova, uint32_t npages);
int vid_emu_unpin_all(int dev);
/* @flags: VID_EMU_RW_WRITE (buffer to IOVA), VID_EMU_RW_PINNED. */
int vid_emu_rw(int dev, uint64_t iova, void *buf, uint64_t len,
	       uint32_t flags);
int vid_emu_status(int dev, struct vid_emu_status *st, bool reset);
/* VID_EMU_GATE with @flags; 0 or -errno (-ETIMEDOUT for WAIT). */
int vid_emu_gate(int dev, uint32_t flags, uint32_t timeout_ms);

/*
 * An unmap run by another thread, for tests that act while it waits for
 * a device (VID_EMU_GATE). With @bits it asks for a dirty bitmap at
 * @pgsize. @ret and @unmapped hold the result once joined.
 */
struct vid_unmap_job {
	int container;
	uint64_t iova, size;
	uint64_t pgsize;
	uint64_t *bits;
	uint64_t bytes;
	uint64_t unmapped;
	int ret;
	pthread_t thread;
};

int vid_unmap_job_start(struct vid_unmap_job *job);
int vid_unmap_job_join(struct vid_unmap_job *job);

/* --- seeds, randomness, time: vid_util.c -------------------------- */

/*
 * The seed of a randomised test: $VID_SEED (decimal, or hex with 0x) when
 * set and valid, else @def. The test prints it so that a run can be
 * repeated.
 */
uint64_t vid_seed(uint64_t def);

/* A small deterministic generator (splitmix64); no global state. */
struct vid_rng {
	uint64_t state;
};

void vid_rng_init(struct vid_rng *rng, uint64_t seed);
uint64_t vid_rng_next(struct vid_rng *rng);
/* Uniform in [0, @n); 0 when @n is 0. */
uint64_t vid_rng_below(struct vid_rng *rng, uint64_t n);
/* True with probability @num / @den. */
bool vid_rng_chance(struct vid_rng *rng, unsigned int num, unsigned int den);

/* CLOCK_MONOTONIC in milliseconds. */
long long vid_now_ms(void);

/* --- debugfs view of this backend: vid_modules.c ------------------ */

#define VID_DEBUGFS_ROOT	"/sys/kernel/debug/" VID_MOD_OURS

/*
 * Container directories (numeric names) under VID_DEBUGFS_ROOT, or -errno
 * (-ENOENT when the directory does not exist, for example while the
 * module is not loaded or debugfs is not mounted).
 */
int vid_debugfs_containers(void);
/*
 * The value of "@key: N" in the state file of the only container
 * directory there is; -ENOENT if the key is missing, -EBUSY if there is
 * not exactly one container, other -errno on read errors.
 */
long long vid_debugfs_state(const char *key);
/*
 * Read the file @name ("state", "mappings") of the only container
 * directory to its end; the bytes read, or -errno (-EBUSY if there is not
 * exactly one container).
 */
long vid_debugfs_read(const char *name);

/* --- kernel log problems: vid_kmsg.c ------------------------------ */

/*
 * Read every kernel log record that arrived on @fd (from vid_kmsg_open())
 * and count those that report a kernel problem (WARNING, BUG, Oops, a
 * lockdep or KASAN report, a hung task, ...). The first such record is
 * copied to @first (@len bytes, NUL terminated) when @first is not NULL.
 * Returns the count, or -errno.
 */
int vid_kmsg_problems(int fd, char *first, size_t len);

/* --- other processes: vid_proc.c ---------------------------------- */

/*
 * The number after "@key:" on the first line of the text file @path that
 * starts so (decimal, or hex with 0x), into *@val: 0, -ENOENT when no line
 * has @key, -EINVAL when no number follows, other -errno.
 */
int vid_file_key(const char *path, const char *key, long long *val);
/*
 * The value of @field (e.g. "VmLck") in /proc/@pid/status, in the unit the
 * kernel prints it (kB for the Vm* fields), or -errno.
 */
long vid_proc_status_kb(int pid, const char *field);

/* --- passing file descriptors: vid_util.c ------------------------- */

/* Send @fd over the unix socket @sock (SCM_RIGHTS); 0 or -errno. */
int vid_send_fd(int sock, int fd);
/* Receive one file descriptor from @sock: the new fd, or -errno. */
int vid_recv_fd(int sock);

#endif /* VID_UTIL_H */
