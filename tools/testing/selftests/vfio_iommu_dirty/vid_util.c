// SPDX-License-Identifier: GPL-2.0
/*
 * Shared helpers for the vfio_iommu_dirty selftests: environment, module
 * loading through libkmod, container/group setup, DMA map wrappers, memory
 * accounting counters, kernel log markers and the QEMU edu device.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libkmod.h>

#include "vid_util.h"

/* ---------------------------------------------------------------------- */
/* environment                                                            */
/* ---------------------------------------------------------------------- */

bool vid_backend_intree(void)
{
	const char *b = getenv("VID_BACKEND");

	return b && !strcmp(b, "intree");
}

const char *vid_backend_module(void)
{
	return vid_backend_intree() ? VID_MOD_TYPE1 : VID_MOD_OURS;
}

const char *vid_edu_bdf(void)
{
	const char *bdf = getenv("VID_EDU_BDF");

	return bdf && *bdf ? bdf : NULL;
}

int vid_edu_bdf_nth(unsigned int n, char *bdf, size_t len)
{
	const char *p = getenv("VID_EDU_BDFS");
	size_t w;

	if (!p)
		return -ENODEV;
	for (;;) {
		p += strspn(p, " ");
		w = strcspn(p, " ");
		if (!w)
			return -ENODEV;
		if (!n--)
			break;
		p += w;
	}
	if (w >= len)
		return -ENAMETOOLONG;
	memcpy(bdf, p, w);
	bdf[w] = '\0';
	return 0;
}

int vid_edu_group(void)
{
	const char *g = getenv("VID_EDU_GROUP");
	char *end;
	long v;

	if (!g || !*g)
		return -1;
	errno = 0;
	v = strtol(g, &end, 10);
	if (errno || *end || v < 0 || v > INT_MAX)
		return -1;
	return (int)v;
}

const char *vid_skip_reason(void)
{
	if (access(VID_CONTAINER_PATH, R_OK | W_OK))
		return VID_CONTAINER_PATH " is not available";
	if (!vid_edu_bdf() || vid_edu_group() < 0)
		return "VID_EDU_BDF/VID_EDU_GROUP not set (run in the test guest)";
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* kernel modules                                                         */
/* ---------------------------------------------------------------------- */

static int read_sysfs_line(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

bool vid_module_live(const char *name)
{
	char path[PATH_MAX], state[32];

	snprintf(path, sizeof(path), "/sys/module/%s/initstate", name);
	if (read_sysfs_line(path, state, sizeof(state)))
		return false;
	return !strcmp(state, "live");
}

long vid_module_refcnt(const char *name)
{
	char path[PATH_MAX], buf[32];
	char *end;
	long v;
	int ret;

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", name);
	ret = read_sysfs_line(path, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || *end || end == buf)
		return -EINVAL;
	return v;
}

static struct kmod_ctx *kmod_open(void)
{
	struct kmod_ctx *ctx = kmod_new(NULL, NULL);

	/* Keep libkmod quiet unless something is really wrong. */
	if (ctx)
		kmod_set_log_priority(ctx, 3);
	return ctx;
}

int vid_module_remove(const char *name, bool quiet)
{
	struct kmod_module *mod = NULL;
	struct kmod_ctx *ctx;
	int ret;

	ctx = kmod_open();
	if (!ctx)
		return -ENOMEM;
	ret = kmod_module_new_from_name(ctx, name, &mod);
	if (!ret)
		ret = kmod_module_remove_module(mod,
						quiet ? KMOD_REMOVE_NOLOG : 0);
	if (mod)
		kmod_module_unref(mod);
	kmod_unref(ctx);
	return ret;
}

/*
 * Insert the module file at @path with the parameters @opts (or none);
 * 0 (also if loaded already) or -errno.
 */
static int load_from_path(const char *path, const char *opts)
{
	struct kmod_module *mod = NULL;
	struct kmod_ctx *ctx;
	int ret;

	if (access(path, R_OK))
		return -errno;
	ctx = kmod_open();
	if (!ctx)
		return -ENOMEM;
	ret = kmod_module_new_from_path(ctx, path, &mod);
	if (!ret)
		ret = kmod_module_insert_module(mod, 0, opts);
	if (ret == -EEXIST)
		ret = 0;
	if (mod)
		kmod_module_unref(mod);
	kmod_unref(ctx);
	return ret;
}

int vid_module_load_ours(void)
{
	return vid_module_reload_ours(NULL);
}

int vid_module_reload_ours(const char *opts)
{
	const char *path = getenv("VID_MODULE");
	int ret;

	if (!path || !*path)
		path = VID_DEFAULT_MODULE;
	if (opts && vid_module_live(VID_MOD_OURS)) {
		ret = vid_module_remove(VID_MOD_OURS, false);
		if (ret)
			return ret;
	}
	return load_from_path(path, opts);
}

static int load_by_name(const char *name)
{
	struct kmod_module *mod = NULL;
	struct kmod_ctx *ctx;
	int ret;

	ctx = kmod_open();
	if (!ctx)
		return -ENOMEM;
	ret = kmod_module_new_from_name(ctx, name, &mod);
	if (!ret)
		ret = kmod_module_probe_insert_module(mod, 0, NULL, NULL,
						      NULL, NULL);
	if (ret > 0)	/* blacklisted or similar: treat as not loadable */
		ret = -EPERM;
	if (mod)
		kmod_module_unref(mod);
	kmod_unref(ctx);
	return ret;
}

int vid_modules_setup(const char **why)
{
	const char *dummy;
	int ret;

	if (!why)
		why = &dummy;
	*why = NULL;

	if (vid_backend_intree()) {
		if (vid_module_live(VID_MOD_OURS)) {
			ret = vid_module_remove(VID_MOD_OURS, false);
			if (ret) {
				*why = "unload " VID_MOD_OURS;
				return ret;
			}
		}
		if (!vid_module_live(VID_MOD_TYPE1)) {
			ret = load_by_name(VID_MOD_TYPE1);
			if (ret) {
				*why = "load " VID_MOD_TYPE1;
				return ret;
			}
		}
		return 0;
	}

	/*
	 * The VFIO core tries IOMMU drivers newest first, so ours must be
	 * registered after type1. If type1 is missing, (re)load in order.
	 */
	if (!vid_module_live(VID_MOD_TYPE1)) {
		if (vid_module_live(VID_MOD_OURS)) {
			ret = vid_module_remove(VID_MOD_OURS, false);
			if (ret) {
				*why = "unload " VID_MOD_OURS;
				return ret;
			}
		}
		ret = load_by_name(VID_MOD_TYPE1);
		if (ret) {
			*why = "load " VID_MOD_TYPE1;
			return ret;
		}
	}
	if (!vid_module_live(VID_MOD_OURS)) {
		ret = vid_module_load_ours();
		if (ret) {
			*why = "load " VID_MOD_OURS " from $VID_MODULE";
			return ret;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* containers and groups                                                  */
/* ---------------------------------------------------------------------- */

void vid_ctx_init(struct vid_ctx *ctx)
{
	ctx->container = -1;
	ctx->group = -1;
	ctx->device = -1;
}

int vid_open_container(void)
{
	int fd = open(VID_CONTAINER_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int vid_open_group(int container)
{
	if (vid_edu_group() < 0)
		return -ENODEV;
	return vid_open_group_id(container, vid_edu_group());
}

int vid_open_group_id(int container, int id)
{
	struct vfio_group_status status = { .argsz = sizeof(status) };
	char path[64];
	int fd, ret;

	if (id < 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/dev/vfio/%d", id);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, VFIO_GROUP_GET_STATUS, &status)) {
		ret = -errno;
		goto err;
	}
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		ret = -EBUSY;
		goto err;
	}
	if (ioctl(fd, VFIO_GROUP_SET_CONTAINER, &container)) {
		ret = -errno;
		goto err;
	}
	return fd;
err:
	close(fd);
	return ret;
}

int vid_ctx_open(struct vid_ctx *ctx, int type)
{
	int ret;

	vid_ctx_init(ctx);
	ret = vid_open_container();
	if (ret < 0)
		return ret;
	ctx->container = ret;
	ret = vid_open_group(ctx->container);
	if (ret < 0)
		goto err;
	ctx->group = ret;
	if (type && ioctl(ctx->container, VFIO_SET_IOMMU, type)) {
		ret = -errno;
		goto err;
	}
	return 0;
err:
	vid_ctx_close(ctx);
	return ret;
}

int vid_device_group(const char *bus, const char *name)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *base;
	ssize_t n;
	char *end;
	long v;

	snprintf(path, sizeof(path), "/sys/bus/%s/devices/%s/iommu_group",
		 bus, name);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	errno = 0;
	v = strtol(base, &end, 10);
	if (errno || *end || end == base || v < 0 || v > INT_MAX)
		return -EINVAL;
	return (int)v;
}

int vid_set_iommu(int container, int type, const char *mod, bool *served)
{
	long before, after;

	*served = false;
	before = vid_module_refcnt(mod);
	if (ioctl(container, VFIO_SET_IOMMU, type))
		return -errno;
	after = vid_module_refcnt(mod);
	*served = before >= 0 && after == before + 1;
	return 0;
}

void vid_ctx_close(struct vid_ctx *ctx)
{
	if (ctx->device >= 0)
		close(ctx->device);
	if (ctx->group >= 0)
		close(ctx->group);
	if (ctx->container >= 0)
		close(ctx->container);
	vid_ctx_init(ctx);
}

/* ---------------------------------------------------------------------- */
/* DMA mapping                                                            */
/* ---------------------------------------------------------------------- */

int vid_map_raw(int container, uint32_t argsz, uint32_t flags,
		uint64_t vaddr, uint64_t iova, uint64_t size)
{
	/* Room for an argsz larger than the structure. */
	union {
		struct vfio_iommu_type1_dma_map map;
		char room[256];
	} u;

	memset(&u, 0, sizeof(u));
	u.map.argsz = argsz;
	u.map.flags = flags;
	u.map.vaddr = vaddr;
	u.map.iova = iova;
	u.map.size = size;
	return ioctl(container, VFIO_IOMMU_MAP_DMA, &u.map) ? -errno : 0;
}

int vid_map(int container, uint64_t iova, const void *vaddr, uint64_t size,
	    uint32_t flags)
{
	return vid_map_raw(container, sizeof(struct vfio_iommu_type1_dma_map),
			   flags, (uintptr_t)vaddr, iova, size);
}

int vid_unmap_raw(int container, uint32_t argsz, uint32_t flags,
		  uint64_t iova, uint64_t size, uint64_t *unmapped)
{
	union {
		struct vfio_iommu_type1_dma_unmap unmap;
		char room[256];
	} u;

	memset(&u, 0, sizeof(u));
	u.unmap.argsz = argsz;
	u.unmap.flags = flags;
	u.unmap.iova = iova;
	u.unmap.size = size;
	if (unmapped)
		*unmapped = UINT64_MAX;
	if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &u.unmap))
		return -errno;
	if (unmapped)
		*unmapped = u.unmap.size;
	return 0;
}

int vid_unmap(int container, uint64_t iova, uint64_t size,
	      uint64_t *unmapped)
{
	return vid_unmap_raw(container,
			     sizeof(struct vfio_iommu_type1_dma_unmap), 0,
			     iova, size, unmapped);
}

void *vid_alloc(size_t size, int fill)
{
	void *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* One pin per 4 KiB page keeps the counters easy to predict. */
	madvise(p, size, MADV_NOHUGEPAGE);
	/* Touch every page so that no page is the shared zero page. */
	memset(p, fill, size);
	return p;
}

void vid_free(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}

void vid_fill_pattern(uint8_t *p, size_t len, unsigned int seed)
{
	uint32_t x = 0x9e3779b9u * (seed + 1);
	size_t i;

	/* xorshift32 from a start that depends on @seed. */
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

long vid_first_diff(const uint8_t *x, const uint8_t *y, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}

long vid_first_not(const uint8_t *p, size_t len, uint8_t v)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != v)
			return (long)i;
	return -1;
}

/* ---------------------------------------------------------------------- */
/* accounting                                                             */
/* ---------------------------------------------------------------------- */

long vid_vmlck_kb(void)
{
	char line[256];
	long v = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/status", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmLck: %ld kB", &v) == 1)
			break;
	}
	fclose(f);
	return v;
}

/*
 * The pin counters are node statistics kept per CPU and folded into the
 * global values only now and then, so /proc/vmstat can lag by a few pages
 * per CPU. Writing vm.stat_refresh (root only) folds them right away.
 */
static int vmstat_refresh(void)
{
	ssize_t n;
	int fd;

	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, "1\n", 2);
	close(fd);
	return n == 2 ? 0 : -EIO;
}

long vid_pinned_pages(int *err)
{
	long acquired = -1, released = -1, v;
	char name[64];
	FILE *f;

	*err = 0;
	/* Best effort: without it the values are only less precise. */
	vmstat_refresh();
	f = fopen("/proc/vmstat", "re");
	if (!f) {
		*err = -errno;
		return 0;
	}
	while (fscanf(f, "%63s %ld", name, &v) == 2) {
		if (!strcmp(name, "nr_foll_pin_acquired"))
			acquired = v;
		else if (!strcmp(name, "nr_foll_pin_released"))
			released = v;
	}
	fclose(f);
	if (acquired < 0 || released < 0) {
		*err = -ENOENT;
		return 0;
	}
	return acquired - released;
}

int vid_acct_read(struct vid_acct *a)
{
	int err;

	a->vmlck_kb = vid_vmlck_kb();
	if (a->vmlck_kb < 0)
		return (int)a->vmlck_kb;
	a->pinned = vid_pinned_pages(&err);
	return err;
}

/* ---------------------------------------------------------------------- */
/* kernel log                                                             */
/* ---------------------------------------------------------------------- */

int vid_kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (lseek(fd, 0, SEEK_END) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

int vid_kmsg_write(const char *line)
{
	char buf[256];
	ssize_t n;
	int fd, len;

	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%s\n", line);
	n = write(fd, buf, len);
	close(fd);
	if (n < 0)
		return -errno;
	return n == len ? 0 : -EIO;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

bool vid_kmsg_wait(int fd, const char *needle, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	char rec[8192];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left;
		ssize_t n;

		n = read(fd, rec, sizeof(rec) - 1);
		if (n > 0) {
			rec[n] = '\0';
			if (strstr(rec, needle))
				return true;
			continue;
		}
		/* EPIPE: records were overwritten; just keep reading. */
		if (n < 0 && errno == EPIPE)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		left = deadline - now_ms();
		if (left <= 0)
			return false;
		poll(&pfd, 1, (int)left);
	}
}

/* ---------------------------------------------------------------------- */
/* the QEMU edu device                                                    */
/* ---------------------------------------------------------------------- */

static int region_info(int dev, uint32_t index,
		       struct vfio_region_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	info->index = index;
	return ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, info) ? -errno : 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n = pread(fd, buf, len, (off_t)off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = pwrite(fd, buf, len, (off_t)off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int vid_edu_read64(struct vid_edu *edu, uint64_t reg, uint64_t *val)
{
	return pread_all(edu->fd, val, sizeof(*val), edu->bar0 + reg);
}

int vid_edu_write64(struct vid_edu *edu, uint64_t reg, uint64_t val)
{
	return pwrite_all(edu->fd, &val, sizeof(val), edu->bar0 + reg);
}

#define PCI_CMD_OFF	0x04
#define PCI_CMD_MEMORY	0x2
#define PCI_CMD_MASTER	0x4

int vid_edu_open(struct vid_ctx *ctx, struct vid_edu *edu)
{
	if (!vid_edu_bdf())
		return -ENODEV;
	return vid_edu_open_bdf(ctx, vid_edu_bdf(), edu);
}

int vid_edu_open_bdf(struct vid_ctx *ctx, const char *bdf,
		     struct vid_edu *edu)
{
	struct vfio_region_info info;
	uint32_t id;
	uint16_t cmd;
	int fd, ret;

	fd = ioctl(ctx->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (fd < 0)
		return -errno;
	ctx->device = fd;
	edu->fd = fd;

	ret = region_info(fd, VFIO_PCI_BAR0_REGION_INDEX, &info);
	if (ret)
		return ret;
	if (!(info.flags & VFIO_REGION_INFO_FLAG_READ) ||
	    !(info.flags & VFIO_REGION_INFO_FLAG_WRITE) ||
	    info.size < EDU_BUF + EDU_BUF_SIZE)
		return -ENXIO;
	edu->bar0 = info.offset;
	edu->bar0_size = info.size;

	ret = region_info(fd, VFIO_PCI_CONFIG_REGION_INDEX, &info);
	if (ret)
		return ret;
	edu->cfg = info.offset;

	ret = pread_all(fd, &cmd, sizeof(cmd), edu->cfg + PCI_CMD_OFF);
	if (ret)
		return ret;
	cmd |= PCI_CMD_MEMORY | PCI_CMD_MASTER;
	ret = pwrite_all(fd, &cmd, sizeof(cmd), edu->cfg + PCI_CMD_OFF);
	if (ret)
		return ret;
	ret = pread_all(fd, &cmd, sizeof(cmd), edu->cfg + PCI_CMD_OFF);
	if (ret)
		return ret;
	if ((cmd & (PCI_CMD_MEMORY | PCI_CMD_MASTER)) !=
	    (PCI_CMD_MEMORY | PCI_CMD_MASTER))
		return -EIO;

	/* The identification register reads 0xRRrr00ed on edu. */
	ret = pread_all(fd, &id, sizeof(id), edu->bar0 + EDU_REG_ID);
	if (ret)
		return ret;
	if ((id & 0xff) != 0xed)
		return -ENODEV;
	return 0;
}

#define EDU_DMA_TIMEOUT_MS	5000

static int edu_wait_idle(struct vid_edu *edu)
{
	long long deadline = now_ms() + EDU_DMA_TIMEOUT_MS;
	uint64_t cmd;
	int ret;

	for (;;) {
		ret = vid_edu_read64(edu, EDU_REG_DMA_CMD, &cmd);
		if (ret)
			return ret;
		if (!(cmd & EDU_DMA_START))
			return 0;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(5000);
	}
}

int vid_edu_dma(struct vid_edu *edu, uint64_t iova, uint64_t buf_off,
		uint64_t count, bool to_ram)
{
	uint64_t src, dst;
	int ret;

	/* edu's bounds check is off by one at the buffer's last byte. */
	if (!count || buf_off + count >= EDU_BUF_SIZE)
		return -EINVAL;
	/* edu ignores register writes while a transfer is running. */
	ret = edu_wait_idle(edu);
	if (ret)
		return ret;
	if (to_ram) {
		src = EDU_BUF + buf_off;
		dst = iova;
	} else {
		src = iova;
		dst = EDU_BUF + buf_off;
	}
	ret = vid_edu_write64(edu, EDU_REG_DMA_SRC, src);
	if (!ret)
		ret = vid_edu_write64(edu, EDU_REG_DMA_DST, dst);
	if (!ret)
		ret = vid_edu_write64(edu, EDU_REG_DMA_CNT, count);
	if (!ret)
		ret = vid_edu_write64(edu, EDU_REG_DMA_CMD, EDU_DMA_START |
				      (to_ram ? EDU_DMA_TO_RAM : 0));
	if (ret)
		return ret;
	return edu_wait_idle(edu);
}

/* ---------------------------------------------------------------------- */
/* the emulated test device                                               */
/* ---------------------------------------------------------------------- */

/* Insert the test module with parameters @opts (or none). */
static int emu_insert(const char *opts)
{
	const char *path = getenv("VID_EMU_MODULE");
	char exe[PATH_MAX], def[PATH_MAX + sizeof(VID_EMU_KO)];
	char *slash;
	ssize_t n;

	if (!path || !*path) {
		/* The build puts the module next to the test programs. */
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0)
			return -errno;
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (!slash)
			return -ENOENT;
		*slash = '\0';
		snprintf(def, sizeof(def), "%s/%s", exe, VID_EMU_KO);
		path = def;
	}
	return load_from_path(path, opts);
}

int vid_emu_load(void)
{
	if (vid_module_live(VID_EMU_MOD))
		return 0;
	return emu_insert(NULL);
}

int vid_emu_load_mig(unsigned int count)
{
	char path[128], opts[32];
	int ret;

	snprintf(path, sizeof(path), "/sys/bus/platform/devices/%s.%u",
		 VID_EMU_MIG, count - 1);
	if (vid_module_live(VID_EMU_MOD)) {
		if (!access(path, F_OK))
			return 0;
		ret = vid_module_remove(VID_EMU_MOD, false);
		if (ret)
			return ret;
	}
	snprintf(opts, sizeof(opts), "mig_count=%u", count);
	ret = emu_insert(opts);
	if (ret)
		return ret;
	return access(path, F_OK) ? -ENODEV : 0;
}

int vid_emu_ctx_open(struct vid_ctx *ctx, const char *name, int type,
		     bool *served)
{
	int group, ret;

	*served = false;
	vid_ctx_init(ctx);
	group = vid_device_group("platform", name);
	if (group < 0)
		return group;
	ret = vid_open_container();
	if (ret < 0)
		return ret;
	ctx->container = ret;
	ret = vid_open_group_id(ctx->container, group);
	if (ret < 0)
		goto err;
	ctx->group = ret;
	ret = vid_set_iommu(ctx->container, type, vid_backend_module(),
			    served);
	if (ret)
		goto err;
	ret = ioctl(ctx->group, VFIO_GROUP_GET_DEVICE_FD, name);
	if (ret < 0) {
		ret = -errno;
		goto err;
	}
	ctx->device = ret;
	return 0;
err:
	vid_ctx_close(ctx);
	return ret;
}

int vid_emu_pin(int dev, uint64_t iova, uint32_t npages, uint32_t flags,
		uint64_t *pfns)
{
	struct vid_emu_pin pin = {
		.argsz = sizeof(pin),
		.flags = flags,
		.iova = iova,
		.npages = npages,
		.pfns = (uintptr_t)pfns,
	};

	return ioctl(dev, VID_EMU_PIN, &pin) ? -errno : 0;
}

static int emu_unpin(int dev, uint32_t flags, uint64_t iova,
		     uint32_t npages)
{
	struct vid_emu_unpin unpin = {
		.argsz = sizeof(unpin),
		.flags = flags,
		.iova = iova,
		.npages = npages,
	};

	return ioctl(dev, VID_EMU_UNPIN, &unpin) ? -errno : 0;
}

int vid_emu_unpin(int dev, uint64_t iova, uint32_t npages)
{
	return emu_unpin(dev, 0, iova, npages);
}

int vid_emu_unpin_all(int dev)
{
	return emu_unpin(dev, VID_EMU_UNPIN_ALL, 0, 0);
}

int vid_emu_rw(int dev, uint64_t iova, void *buf, uint64_t len,
	       uint32_t flags)
{
	struct vid_emu_rw rw = {
		.argsz = sizeof(rw),
		.flags = flags,
		.iova = iova,
		.data = (uintptr_t)buf,
		.length = len,
	};

	return ioctl(dev, VID_EMU_RW, &rw) ? -errno : 0;
}

int vid_emu_status(int dev, struct vid_emu_status *st, bool reset)
{
	memset(st, 0, sizeof(*st));
	st->argsz = sizeof(*st);
	st->flags = reset ? VID_EMU_STATUS_RESET : 0;
	return ioctl(dev, VID_EMU_STATUS, st) ? -errno : 0;
}

int vid_emu_gate(int dev, uint32_t flags, uint32_t timeout_ms)
{
	struct vid_emu_gate gate = {
		.argsz = sizeof(gate),
		.flags = flags,
		.timeout_ms = timeout_ms,
	};

	return ioctl(dev, VID_EMU_GATE, &gate) ? -errno : 0;
}

static void *unmap_job_run(void *arg)
{
	struct vid_unmap_job *job = arg;

	if (job->bits)
		job->ret = vid_unmap_bitmap(job->container, 0, job->iova,
					    job->size, job->pgsize, job->bits,
					    job->bytes, &job->unmapped);
	else
		job->ret = vid_unmap(job->container, job->iova, job->size,
				     &job->unmapped);
	return NULL;
}

int vid_unmap_job_start(struct vid_unmap_job *job)
{
	return -pthread_create(&job->thread, NULL, unmap_job_run, job);
}

int vid_unmap_job_join(struct vid_unmap_job *job)
{
	return -pthread_join(job->thread, NULL);
}

/* ---------------------------------------------------------------------- */
/* other processes                                                        */
/* ---------------------------------------------------------------------- */

int vid_file_key(const char *path, const char *key, long long *val)
{
	size_t klen = strlen(key);
	char line[256];
	int ret = -ENOENT;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		ret = sscanf(line + klen + 1, "%lli", val) == 1 ? 0 : -EINVAL;
		break;
	}
	fclose(f);
	return ret;
}

long vid_proc_status_kb(int pid, const char *field)
{
	char path[64];
	long long v;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	ret = vid_file_key(path, field, &v);
	return ret ? ret : (long)v;
}

/* ---------------------------------------------------------------------- */
/* dirty page tracking                                                    */
/* ---------------------------------------------------------------------- */

int vid_dirty_op(int container, uint32_t argsz, uint32_t flags)
{
	struct vfio_iommu_type1_dirty_bitmap d = {
		.argsz = argsz, .flags = flags,
	};

	return ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &d) ? -errno : 0;
}

int vid_get_bitmap(int container, uint32_t flags, uint64_t iova,
		   uint64_t size, uint64_t pgsize, uint64_t *bits,
		   uint64_t bytes)
{
	struct {
		struct vfio_iommu_type1_dirty_bitmap d;
		struct vfio_iommu_type1_dirty_bitmap_get r;
	} a = {
		.d.argsz = sizeof(a),
		.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP | flags,
		.r.iova = iova, .r.size = size,
		.r.bitmap.pgsize = pgsize, .r.bitmap.size = bytes,
		.r.bitmap.data = (__u64 *)bits,
	};

	return ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &a) ? -errno : 0;
}

int vid_unmap_bitmap(int container, uint32_t flags, uint64_t iova,
		     uint64_t size, uint64_t pgsize, uint64_t *bits,
		     uint64_t bytes, uint64_t *unmapped)
{
	struct {
		struct vfio_iommu_type1_dma_unmap u;
		struct vfio_bitmap b;
	} a = {
		.u.argsz = sizeof(a),
		.u.flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | flags,
		.u.iova = iova, .u.size = size,
		.b.pgsize = pgsize, .b.size = bytes, .b.data = (__u64 *)bits,
	};

	*unmapped = UINT64_MAX;
	if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &a))
		return -errno;
	*unmapped = a.u.size;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* seeds, randomness, time                                                */
/* ---------------------------------------------------------------------- */

uint64_t vid_seed(uint64_t def)
{
	const char *s = getenv("VID_SEED");
	unsigned long long v;
	char *end;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return def;
	return v;
}

void vid_rng_init(struct vid_rng *rng, uint64_t seed)
{
	rng->state = seed;
}

uint64_t vid_rng_next(struct vid_rng *rng)
{
	uint64_t z;

	rng->state += 0x9e3779b97f4a7c15ULL;
	z = rng->state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t vid_rng_below(struct vid_rng *rng, uint64_t n)
{
	return n ? vid_rng_next(rng) % n : 0;
}

bool vid_rng_chance(struct vid_rng *rng, unsigned int num, unsigned int den)
{
	return vid_rng_below(rng, den) < num;
}

long long vid_now_ms(void)
{
	return now_ms();
}

/* ---------------------------------------------------------------------- */
/* debugfs view of this backend                                           */
/* ---------------------------------------------------------------------- */

#include <ctype.h>
#include <dirent.h>

/* Is @name a container directory name (decimal digits only)? */
static bool debugfs_numeric(const char *name)
{
	if (!*name)
		return false;
	for (; *name; name++)
		if (!isdigit((unsigned char)*name))
			return false;
	return true;
}

int vid_debugfs_containers(void)
{
	struct dirent *de;
	int n = 0;
	DIR *dir;

	dir = opendir(VID_DEBUGFS_ROOT);
	if (!dir)
		return -errno;
	while ((de = readdir(dir)))
		if (debugfs_numeric(de->d_name))
			n++;
	closedir(dir);
	return n;
}

/* Path of file @file in the only container directory; 0 or -errno. */
static int debugfs_only_file(const char *file, char *path, size_t len)
{
	char name[256] = "";
	struct dirent *de;
	int n = 0;
	DIR *dir;

	dir = opendir(VID_DEBUGFS_ROOT);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (!debugfs_numeric(de->d_name))
			continue;
		n++;
		snprintf(name, sizeof(name), "%s", de->d_name);
	}
	closedir(dir);
	if (n != 1)
		return -EBUSY;
	snprintf(path, len, "%s/%s/%s", VID_DEBUGFS_ROOT, name, file);
	return 0;
}

long vid_debugfs_read(const char *name)
{
	char path[PATH_MAX], buf[4096];
	long total = 0;
	ssize_t n;
	int fd, ret;

	ret = debugfs_only_file(name, path, sizeof(path));
	if (ret)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	if (n < 0)
		total = -errno;
	close(fd);
	return total;
}

long long vid_debugfs_state(const char *key)
{
	char path[PATH_MAX];
	long long v;
	int ret;

	ret = debugfs_only_file("state", path, sizeof(path));
	if (!ret)
		ret = vid_file_key(path, key, &v);
	return ret ? ret : v;
}

/* ---------------------------------------------------------------------- */
/* kernel log problems                                                    */
/* ---------------------------------------------------------------------- */

/* What the guest runner also treats as a kernel problem, and a bit more. */
static const char *const kmsg_problem_words[] = {
	"BUG:", "WARNING:", "Oops", "general protection fault",
	"Call Trace", "Kernel panic", "kernel panic", "hung_task",
	"blocked for more than", "soft lockup", "KASAN", "UBSAN",
	"possible circular locking", "possible recursive locking",
	"inconsistent lock state", "bad unlock balance",
	"list_add corruption", "list_del corruption",
	"unreferenced object", "DMAR: DRHD", "ault addr", "arm-smmu-v3",
};

int vid_kmsg_problems(int fd, char *first, size_t len)
{
	char rec[8192];
	int found = 0;
	size_t i;
	ssize_t n;

	if (first && len)
		first[0] = '\0';
	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: go on */
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return found;
		if (n < 0)
			return -errno;
		if (n == 0)
			return found;
		rec[n] = '\0';
		for (i = 0; i < sizeof(kmsg_problem_words) /
				sizeof(kmsg_problem_words[0]); i++) {
			if (!strstr(rec, kmsg_problem_words[i]))
				continue;
			if (!found && first && len)
				snprintf(first, len, "%s", rec);
			found++;
			break;
		}
	}
}

/* ---------------------------------------------------------------------- */
/* passing file descriptors                                               */
/* ---------------------------------------------------------------------- */

#include <sys/socket.h>

int vid_send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte = 'F';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

int vid_recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	ssize_t n;
	int fd;

	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	if (n != 1)
		return -EPROTO;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}
