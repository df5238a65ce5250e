// SPDX-License-Identifier: GPL-2.0
/*
 * Large pages: memory backed by transparent huge pages and by hugetlbfs is
 * mapped with block-sized IOMMU pages (as this module's debugfs view counts
 * them), a device DMA across a block boundary lands byte for byte, and
 * disable_hugepages=1 forces page-sized IOMMU pages. Accounting stays
 * exact.
 *
 * A block is what a page table entry one level above the page maps: 2 MiB
 * with 4 KiB pages (x86-64, arm64), 32 MiB with arm64's 16 KiB pages; the
 * transparent huge page, the default hugetlbfs page and the IOMMU's block
 * (VT-d, an SMMU with the CPU's granule) all have that size.
 *
 * The page counts are this module's own view, so these tests skip against
 * the in-tree backend.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define BLOCK		block_size()
#define BUF_SZ		(4 * BLOCK)
#define EDU_DMA_LIMIT	(256ULL << 20)	/* edu masks DMA addresses to 28 bits */
#define DEBUGFS		"/sys/kernel/debug/vfio_iommu_dirty"
#define HUGEPAGES	"/proc/sys/vm/nr_hugepages"
#define NO_HUGE_PARAM	"/sys/module/vfio_iommu_dirty/parameters/disable_hugepages"

/*
 * Read @key from the state file of the only container open (the test
 * holds one container at a time). -errno if absent.
 */
static long state_value(const char *key)
{
	char path[300], line[128];
	struct dirent *de;
	long val = -ENOENT;
	size_t klen = strlen(key);
	DIR *dir = opendir(DEBUGFS);
	FILE *f = NULL;

	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), DEBUGFS "/%s/state", de->d_name);
		f = fopen(path, "r");
		break;
	}
	closedir(dir);
	if (!f)
		return -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			val = strtol(line + klen + 1, NULL, 0);
			break;
		}
	}
	fclose(f);
	return val;
}

/* A table of the CPU's page size holds page size / 8 entries. */
static unsigned long block_size(void)
{
	return VID_PAGE * (VID_PAGE / 8);
}

/* The debugfs key of IOMMU pages of @size: "iommu_pages_2M" and so on. */
static const char *pages_key(unsigned long size, char *buf, size_t len)
{
	static const char units[] = "KMGTP";
	int u = 0;

	size >>= 10;
	while (size >= 1024 && !(size & 1023) && units[u + 1]) {
		size >>= 10;
		u++;
	}
	snprintf(buf, len, "iommu_pages_%lu%c", size, units[u]);
	return buf;
}

/*
 * A block-aligned IOVA for @size bytes below edu's DMA limit: 64 MiB
 * where that fits (x86-64, arm64 with 4 KiB pages), else the lowest that
 * does (32 MiB blocks fit only below Arm's MSI window at 128 MiB). 0 and
 * a failed ASSERT when none does.
 */
static uint64_t huge_iova(int container, uint64_t size)
{
	uint64_t iova = 0x4000000;

	if (!vid_iova_fit(container, &iova, size, BLOCK) &&
	    iova + size <= EDU_DMA_LIMIT)
		return iova;
	iova = 0;
	if (!vid_iova_fit(container, &iova, size, BLOCK) &&
	    iova + size <= EDU_DMA_LIMIT)
		return iova;
	return UINT64_MAX;
}

static int write_str(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");
	int ret = 0;

	if (!f)
		return -errno;
	if (fputs(val, f) < 0)
		ret = -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (!f)
		return -errno;
	if (fscanf(f, "%ld", &v) != 1)
		v = -EIO;
	fclose(f);
	return v;
}

/* Block-aligned anonymous memory, THP requested, touched. */
static char *thp_alloc(size_t size)
{
	size_t span = size + BLOCK;
	char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;

	if (raw == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)raw + BLOCK - 1) & ~(BLOCK - 1));
	if (p > raw)
		munmap(raw, p - raw);
	munmap(p + size, raw + span - (p + size));
	madvise(p, size, MADV_HUGEPAGE);
	memset(p, 0x11, size);
	return p;
}

/* kB of AnonHugePages in this process (THP actually used). */
static long anon_huge_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[128];
	long kb = -1;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* The default hugetlbfs page size in kB (/proc/meminfo), or -errno. */
static long hugetlb_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long kb = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

FIXTURE(huge) {
	struct vid_ctx ctx;
	struct vid_acct base;
	long nr_huge_saved;
};

FIXTURE_SETUP(huge)
{
	vid_ctx_init(&self->ctx);
	self->nr_huge_saved = -1;
	if (!vid_prepare(_metadata))
		return;
	if (vid_backend_intree())
		SKIP(return, "IOMMU page counts come from this module's debugfs");
	VID_ASSERT_OK(vid_acct_read(&self->base));
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(0, state_value("mappings"));
}

FIXTURE_TEARDOWN(huge)
{
	vid_ctx_close(&self->ctx);
	write_str(NO_HUGE_PARAM, "N");
	if (self->nr_huge_saved >= 0) {
		char buf[32];

		snprintf(buf, sizeof(buf), "%ld", self->nr_huge_saved);
		write_str(HUGEPAGES, buf);
	}
	VID_EXPECT_ACCT(&self->base);
}

/* Map @buf, check the page split and the charge, DMA across a block. */
static void map_and_check(struct __test_metadata *_metadata,
			  struct vid_ctx *ctx, char *buf, long want_blocks)
{
	const unsigned long blk = BLOCK, huge = blk * (VID_PAGE / 8);
	const uint64_t iova = huge_iova(ctx->container, BUF_SZ);
	long vmlck0 = vid_vmlck_kb();
	char kpage[32], kblk[32], khuge[32];
	struct vid_edu edu;
	int i;

	ASSERT_NE(UINT64_MAX, iova) TH_LOG("no IOVA for 4 blocks below 256 MiB");
	pages_key(VID_PAGE, kpage, sizeof(kpage));
	pages_key(blk, kblk, sizeof(kblk));
	pages_key(huge, khuge, sizeof(khuge));
	VID_ASSERT_OK(vid_map(ctx->container, iova, buf, BUF_SZ, VID_MAP_RW));
	ASSERT_EQ(vmlck0 + (long)(BUF_SZ >> 10), vid_vmlck_kb());
	ASSERT_EQ(want_blocks, state_value(kblk)) TH_LOG("%s", kblk);
	ASSERT_EQ((long)((BUF_SZ - want_blocks * blk) / VID_PAGE),
		  state_value(kpage)) TH_LOG("%s", kpage);
	ASSERT_EQ(0, state_value(khuge)) TH_LOG("%s", khuge);

	/* 2 KiB read across the first block boundary, written back past it. */
	for (i = 0; i < 2048; i++)
		buf[blk - 1024 + i] = (char)(i ^ 0x5a);
	memset(buf + 3 * blk - 1024, 0, 2048);
	VID_ASSERT_OK(vid_edu_open(ctx, &edu));
	VID_ASSERT_OK(vid_edu_dma(&edu, iova + blk - 1024, 0, 2048, false));
	VID_ASSERT_OK(vid_edu_dma(&edu, iova + 3 * blk - 1024, 0, 2048,
				  true));
	ASSERT_EQ(0, memcmp(buf + blk - 1024, buf + 3 * blk - 1024, 2048));

	VID_ASSERT_UNMAP(ctx->container, iova, BUF_SZ, BUF_SZ);
	ASSERT_EQ(vmlck0, vid_vmlck_kb());
	ASSERT_EQ(0, state_value(kblk));
}

TEST_F(huge, thp_uses_block_pages)
{
	char *buf = thp_alloc(BUF_SZ);

	ASSERT_NE(NULL, buf);
	if (anon_huge_kb() < (long)(BUF_SZ >> 10)) {
		munmap(buf, BUF_SZ);
		SKIP(return, "the kernel gave no transparent huge pages");
	}
	map_and_check(_metadata, &self->ctx, buf, BUF_SZ / BLOCK);
	munmap(buf, BUF_SZ);
}

TEST_F(huge, hugetlbfs_uses_block_pages)
{
	char *buf;

	ASSERT_EQ((long)(BLOCK >> 10), hugetlb_kb())
		TH_LOG("the default hugetlbfs page is not the block size");
	self->nr_huge_saved = read_long(HUGEPAGES);
	ASSERT_LE(0, self->nr_huge_saved);
	VID_ASSERT_OK(write_str(HUGEPAGES, "8"));
	ASSERT_LE(4, read_long(HUGEPAGES));
	buf = mmap(NULL, BUF_SZ, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0x22, BUF_SZ);
	map_and_check(_metadata, &self->ctx, buf, BUF_SZ / BLOCK);
	munmap(buf, BUF_SZ);
}

TEST_F(huge, disable_hugepages_forces_small_pages)
{
	char *buf;

	self->nr_huge_saved = read_long(HUGEPAGES);
	VID_ASSERT_OK(write_str(HUGEPAGES, "8"));
	buf = mmap(NULL, BUF_SZ, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0x33, BUF_SZ);
	VID_ASSERT_OK(write_str(NO_HUGE_PARAM, "Y"));
	map_and_check(_metadata, &self->ctx, buf, 0);
	munmap(buf, BUF_SZ);
}

/* Plain memory: no accidental block pages. */
TEST_F(huge, small_pages_stay_small)
{
	char *buf = mmap(NULL, BUF_SZ, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, buf);
	madvise(buf, BUF_SZ, MADV_NOHUGEPAGE);
	memset(buf, 0x44, BUF_SZ);
	map_and_check(_metadata, &self->ctx, buf, 0);
	munmap(buf, BUF_SZ);
}

TEST_HARNESS_MAIN
