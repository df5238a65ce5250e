// SPDX-License-Identifier: GPL-2.0
/*
 * Shared helpers for the vfio_iommu_dirty selftests, the core: the
 * environment, containers and groups, DMA mapping and the memory behind
 * it, dirty tracking, seeds and time, passing file descriptors. The rest
 * is in files of their own (vid_util.h says which).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------- */
/* passing file descriptors                                               */
/* ---------------------------------------------------------------------- */

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
