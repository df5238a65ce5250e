// SPDX-License-Identifier: GPL-2.0
/*
 * Type1 extensions beyond plain MAP/UNMAP: what CHECK_EXTENSION announces
 * once a backend serves the container, VFIO_DMA_UNMAP_FLAG_ALL, and the
 * vaddr update pair (VFIO_DMA_UNMAP_FLAG_VADDR / VFIO_DMA_MAP_FLAG_VADDR)
 * that lets a new process take over pinned mappings.
 *
 * Expected values follow vfio_iommu_type1.c of Linux 6.12.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define UNMAP_SZ	sizeof(struct vfio_iommu_type1_dma_unmap)
#define MAP_SZ		sizeof(struct vfio_iommu_type1_dma_map)
#define NPAGES		8

static int check_ext(int fd, unsigned long ext)
{
	int ret = ioctl(fd, VFIO_CHECK_EXTENSION, ext);

	return ret < 0 ? -errno : ret;
}

FIXTURE(ext) {
	struct vid_ctx ctx;
	struct vid_acct base;
	char *mem;
};

FIXTURE_SETUP(ext)
{
	vid_ctx_init(&self->ctx);
	self->mem = NULL;
	if (!vid_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_acct_read(&self->base));
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	self->mem = vid_alloc(NPAGES * VID_PAGE, 0x3c);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(ext)
{
	vid_ctx_close(&self->ctx);
	if (self->mem)
		vid_free(self->mem, NPAGES * VID_PAGE);
	VID_EXPECT_ACCT(&self->base);
}

/* Map pages [first, first + n) of the buffer at IOVA 1 MiB + first pages. */
static int map_pages(struct vid_ctx *ctx, char *mem, int first, int n)
{
	return vid_map(ctx->container, 0x100000 + first * VID_PAGE,
		       mem + first * VID_PAGE, n * VID_PAGE, VID_MAP_RW);
}

/*
 * An IOVA far from the others: 128 MiB, or the first usable one above it
 * (Arm's software MSI window starts there). 0 when there is none.
 */
static uint64_t far_iova(int container, uint64_t size)
{
	uint64_t iova = 0x8000000;

	return vid_iova_fit(container, &iova, size, VID_PAGE) ? 0 : iova;
}

TEST_F(ext, extensions_announced)
{
	int fd = self->ctx.container;
	int cc;

	ASSERT_EQ(1, check_ext(fd, VFIO_TYPE1_IOMMU));
	ASSERT_EQ(1, check_ext(fd, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(1, check_ext(fd, VFIO_TYPE1_NESTING_IOMMU));
	ASSERT_EQ(1, check_ext(fd, VFIO_UNMAP_ALL));
	/* Only a vfio-pci device in the container: vaddr update allowed. */
	ASSERT_EQ(1, check_ext(fd, VFIO_UPDATE_VADDR));
	cc = check_ext(fd, VFIO_DMA_CC_IOMMU);
	ASSERT_TRUE(cc == 0 || cc == 1);
	/* Unknown extensions answer 0, not an error. */
	ASSERT_EQ(0, check_ext(fd, 0x7fff));
	ASSERT_EQ(0, check_ext(fd, VFIO_SPAPR_TCE_IOMMU));
	ASSERT_EQ(0, check_ext(fd, VFIO_NOIOMMU_IOMMU));
}

/* UNMAP_ALL removes every mapping; iova and size must both be 0. */
TEST_F(ext, unmap_all)
{
	uint64_t far = far_iova(self->ctx.container, VID_PAGE), got;

	ASSERT_NE(0, far);
	VID_ASSERT_OK(map_pages(&self->ctx, self->mem, 0, 2));
	VID_ASSERT_OK(map_pages(&self->ctx, self->mem, 4, 1));
	VID_ASSERT_OK(vid_map(self->ctx.container, far,
			      self->mem + 6 * VID_PAGE, VID_PAGE,
			      VID_MAP_RW));

	VID_ASSERT_ERR(EINVAL, vid_unmap_raw(self->ctx.container, UNMAP_SZ,
					     VFIO_DMA_UNMAP_FLAG_ALL,
					     0x100000, 0, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap_raw(self->ctx.container, UNMAP_SZ,
					     VFIO_DMA_UNMAP_FLAG_ALL,
					     0, VID_PAGE, &got));
	/* Nothing went: each mapping is still there. */
	VID_ASSERT_ERR(EEXIST, map_pages(&self->ctx, self->mem, 4, 1));

	VID_ASSERT_OK(vid_unmap_raw(self->ctx.container, UNMAP_SZ,
				    VFIO_DMA_UNMAP_FLAG_ALL, 0, 0, &got));
	ASSERT_EQ(4 * VID_PAGE, got);
	VID_ASSERT_UNMAP(self->ctx.container, 0, 1ULL << 40, 0);
	VID_EXPECT_ACCT(&self->base);
	/* An empty container unmaps nothing, successfully. */
	VID_ASSERT_OK(vid_unmap_raw(self->ctx.container, UNMAP_SZ,
				    VFIO_DMA_UNMAP_FLAG_ALL, 0, 0, &got));
	ASSERT_EQ(0, got);
}

/*
 * Invalidating a vaddr keeps the mapping (and its pins); setting a new one
 * must name exactly that mapping, without protection flags.
 */
TEST_F(ext, vaddr_update)
{
	int fd = self->ctx.container;
	uint64_t got;
	char *vaddr2 = self->mem + 4 * VID_PAGE;
	struct vid_acct mapped;

	VID_ASSERT_OK(map_pages(&self->ctx, self->mem, 0, 2));
	VID_ASSERT_OK(vid_acct_read(&mapped));

	VID_ASSERT_OK(vid_unmap_raw(fd, UNMAP_SZ, VFIO_DMA_UNMAP_FLAG_VADDR,
				    0x100000, 2 * VID_PAGE, &got));
	ASSERT_EQ(2 * VID_PAGE, got);
	/* Still mapped, still pinned and charged. */
	VID_ASSERT_ERR(EEXIST, map_pages(&self->ctx, self->mem, 0, 1));
	vid_check_acct(_metadata, &mapped, false);
	/* Invalidating twice is refused. */
	VID_ASSERT_ERR(EINVAL, vid_unmap_raw(fd, UNMAP_SZ,
					     VFIO_DMA_UNMAP_FLAG_VADDR,
					     0x100000, 2 * VID_PAGE, &got));

	/* MAP_FLAG_VADDR: no protection, exact iova and size, existing. */
	VID_ASSERT_ERR(EINVAL, vid_map_raw(fd, MAP_SZ,
					   VFIO_DMA_MAP_FLAG_VADDR |
					   VFIO_DMA_MAP_FLAG_READ,
					   (uintptr_t)vaddr2, 0x100000,
					   2 * VID_PAGE));
	VID_ASSERT_ERR(EINVAL, vid_map_raw(fd, MAP_SZ,
					   VFIO_DMA_MAP_FLAG_VADDR,
					   (uintptr_t)vaddr2, 0x100000,
					   VID_PAGE));
	VID_ASSERT_ERR(ENOENT, vid_map_raw(fd, MAP_SZ,
					   VFIO_DMA_MAP_FLAG_VADDR,
					   (uintptr_t)vaddr2, 0x4000000,
					   2 * VID_PAGE));
	VID_ASSERT_OK(vid_map_raw(fd, MAP_SZ, VFIO_DMA_MAP_FLAG_VADDR,
				  (uintptr_t)vaddr2, 0x100000, 2 * VID_PAGE));
	/* Valid again: a second MAP_FLAG_VADDR is refused. */
	VID_ASSERT_ERR(EINVAL, vid_map_raw(fd, MAP_SZ,
					   VFIO_DMA_MAP_FLAG_VADDR,
					   (uintptr_t)vaddr2, 0x100000,
					   2 * VID_PAGE));
	vid_check_acct(_metadata, &mapped, false);
	VID_ASSERT_UNMAP(fd, 0x100000, 2 * VID_PAGE, 2 * VID_PAGE);
}

/*
 * An invalidation that meets an already invalid mapping fails and leaves
 * every mapping of the range as it was.
 */
TEST_F(ext, vaddr_invalidate_rolls_back)
{
	int fd = self->ctx.container;
	uint64_t got;

	VID_ASSERT_OK(map_pages(&self->ctx, self->mem, 0, 1));
	VID_ASSERT_OK(map_pages(&self->ctx, self->mem, 2, 1));
	VID_ASSERT_OK(vid_unmap_raw(fd, UNMAP_SZ, VFIO_DMA_UNMAP_FLAG_VADDR,
				    0x100000 + 2 * VID_PAGE, VID_PAGE, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap_raw(fd, UNMAP_SZ,
					     VFIO_DMA_UNMAP_FLAG_VADDR,
					     0x100000, 4 * VID_PAGE, &got));
	/* The first mapping was left valid: setting its vaddr is refused. */
	VID_ASSERT_ERR(EINVAL, vid_map_raw(fd, MAP_SZ,
					   VFIO_DMA_MAP_FLAG_VADDR,
					   (uintptr_t)self->mem, 0x100000,
					   VID_PAGE));
	/* The second one is still invalid and can be set. */
	VID_ASSERT_OK(vid_map_raw(fd, MAP_SZ, VFIO_DMA_MAP_FLAG_VADDR,
				  (uintptr_t)(self->mem + 2 * VID_PAGE),
				  0x100000 + 2 * VID_PAGE, VID_PAGE));
	/* VADDR with ALL covers everything at once. */
	VID_ASSERT_OK(vid_unmap_raw(fd, UNMAP_SZ,
				    VFIO_DMA_UNMAP_FLAG_VADDR |
				    VFIO_DMA_UNMAP_FLAG_ALL, 0, 0, &got));
	ASSERT_EQ(2 * VID_PAGE, got);
	/* Unmapping invalid mappings works and frees everything. */
	VID_ASSERT_UNMAP(fd, 0x100000, 4 * VID_PAGE, 2 * VID_PAGE);
}

/* A device keeps reaching a mapping whose vaddr is invalid. */
TEST_F(ext, dma_while_vaddr_invalid)
{
	int fd = self->ctx.container;
	struct vid_edu edu;
	uint64_t got;
	char *src = self->mem, *dst = self->mem + VID_PAGE;
	int i;

	for (i = 0; i < 2048; i++)
		src[i] = (char)(i * 7 + 1);
	memset(dst, 0, VID_PAGE);
	VID_ASSERT_OK(map_pages(&self->ctx, self->mem, 0, 2));
	VID_ASSERT_OK(vid_edu_open(&self->ctx, &edu));
	VID_ASSERT_OK(vid_unmap_raw(fd, UNMAP_SZ, VFIO_DMA_UNMAP_FLAG_VADDR,
				    0x100000, 2 * VID_PAGE, &got));
	VID_ASSERT_OK(vid_edu_dma(&edu, 0x100000, 0, 2048, false));
	VID_ASSERT_OK(vid_edu_dma(&edu, 0x100000 + VID_PAGE, 0, 2048, true));
	ASSERT_EQ(0, memcmp(src, dst, 2048));

	/* After the update (same memory, new address), DMA goes on. */
	VID_ASSERT_OK(vid_map_raw(fd, MAP_SZ, VFIO_DMA_MAP_FLAG_VADDR,
				  (uintptr_t)self->mem, 0x100000,
				  2 * VID_PAGE));
	memset(dst, 0, VID_PAGE);
	VID_ASSERT_OK(vid_edu_dma(&edu, 0x100000 + VID_PAGE, 0, 2048, true));
	ASSERT_EQ(0, memcmp(src, dst, 2048));
	VID_ASSERT_UNMAP(fd, 0x100000, 2 * VID_PAGE, 2 * VID_PAGE);
}

/*
 * Peer-to-peer: a device BAR mapped into the process has no struct pages.
 * It maps without pinning or charging anything, and unmaps cleanly.
 */
TEST_F(ext, map_device_bar)
{
	int fd = self->ctx.container;
	struct vfio_region_info info = { .argsz = sizeof(info) };
	struct vid_acct before, after;
	struct vid_edu edu;
	uint64_t far;
	void *bar;

	VID_ASSERT_OK(vid_edu_open(&self->ctx, &edu));
	info.index = VFIO_PCI_BAR0_REGION_INDEX;
	ASSERT_EQ(0, ioctl(self->ctx.device, VFIO_DEVICE_GET_REGION_INFO,
			   &info));
	ASSERT_TRUE(info.flags & VFIO_REGION_INFO_FLAG_MMAP);
	bar = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   self->ctx.device, info.offset);
	ASSERT_NE(MAP_FAILED, bar);
	/*
	 * Read the ID register once, as the 32-bit access edu requires (an
	 * atomic load cannot be split into byte loads).
	 */
	ASSERT_EQ(0xed, __atomic_load_n((uint32_t *)bar, __ATOMIC_RELAXED) &
		  0xff);

	VID_ASSERT_OK(vid_acct_read(&before));
	far = far_iova(fd, info.size);
	ASSERT_NE(0, far);
	VID_ASSERT_OK(vid_map(fd, far, bar, info.size, VID_MAP_RW));
	VID_ASSERT_OK(vid_acct_read(&after));
	ASSERT_EQ(before.vmlck_kb, after.vmlck_kb);
	ASSERT_EQ(before.pinned, after.pinned);
	VID_ASSERT_UNMAP(fd, far, info.size, info.size);
	vid_check_acct(_metadata, &before, true);
	munmap(bar, info.size);
}

/*
 * A BAR is never pinned, so it needs no RLIMIT_MEMLOCK headroom: with a
 * limit 8 pages above what the process has locked, the 1 MiB BAR maps
 * (in-tree too), while 16 pages of RAM still fail with ENOMEM and 8 map.
 */
TEST_F(ext, map_device_bar_under_memlock)
{
	int fd = self->ctx.container;
	struct vfio_region_info info = { .argsz = sizeof(info) };
	struct vid_acct before, after;
	struct rlimit lim;
	struct vid_edu edu;
	void *bar, *ram;
	uint64_t got, far;

	ram = vid_alloc(16 * VID_PAGE, 0x5a);
	ASSERT_NE(NULL, ram);
	VID_ASSERT_OK(vid_edu_open(&self->ctx, &edu));
	info.index = VFIO_PCI_BAR0_REGION_INDEX;
	ASSERT_EQ(0, ioctl(self->ctx.device, VFIO_DEVICE_GET_REGION_INFO,
			   &info));
	ASSERT_LT(8 * VID_PAGE, info.size);
	bar = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   self->ctx.device, info.offset);
	ASSERT_NE(MAP_FAILED, bar);

	VID_ASSERT_OK(vid_acct_read(&before));
	lim.rlim_cur = before.vmlck_kb * 1024 + 8 * VID_PAGE;
	lim.rlim_max = lim.rlim_cur;
	VID_ASSERT_OK(vid_drop_cap_ipc_lock());
	ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &lim));

	far = far_iova(fd, info.size);
	ASSERT_NE(0, far);
	VID_ASSERT_OK(vid_map(fd, far, bar, info.size, VID_MAP_RW));
	VID_ASSERT_OK(vid_acct_read(&after));
	ASSERT_EQ(before.vmlck_kb, after.vmlck_kb);
	ASSERT_EQ(before.pinned, after.pinned);
	VID_ASSERT_ERR(ENOMEM, vid_map(fd, 0x100000, ram, 16 * VID_PAGE,
				       VID_MAP_RW));
	vid_check_acct(_metadata, &before, true);
	VID_ASSERT_OK(vid_map(fd, 0x100000, ram, 8 * VID_PAGE, VID_MAP_RW));
	VID_ASSERT_OK(vid_unmap(fd, 0x100000, 8 * VID_PAGE, &got));
	EXPECT_EQ(8 * VID_PAGE, got);
	VID_ASSERT_UNMAP(fd, far, info.size, info.size);
	vid_check_acct(_metadata, &before, true);
	munmap(bar, info.size);
	vid_free(ram, 16 * VID_PAGE);
}

TEST_HARNESS_MAIN
