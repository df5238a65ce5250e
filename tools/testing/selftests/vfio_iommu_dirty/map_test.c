// SPDX-License-Identifier: GPL-2.0
/*
 * VFIO_IOMMU_MAP_DMA / VFIO_IOMMU_UNMAP_DMA semantics and the memory
 * accounting behind them.
 *
 * Every rejected call is checked twice: by its errno, and by the state it
 * leaves behind (a failed call changes nothing). The errnos are those of
 * Linux 6.12 drivers/vfio/vfio_iommu_type1.c. Every test ends with the
 * process's VmLck and the system's pinned-page count back at their
 * starting values (checked in the fixture teardown, after the container
 * and group are closed).
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

#define P		VID_PAGE
#define BASE		0x400000ULL	/* 4 MiB: an ordinary, usable IOVA */
#define MAP_MINSZ	VID_MAP_MINSZ
#define UNMAP_MINSZ	VID_UNMAP_MINSZ

FIXTURE(map) {
	struct vid_ctx ctx;
	struct vid_acct base;
	void *buf;
	size_t buf_size;
	int c;
};

FIXTURE_SETUP(map)
{
	vid_ctx_init(&self->ctx);
	self->buf = NULL;
	if (!vid_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_acct_read(&self->base));
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	self->c = self->ctx.container;
	/* A 16-page buffer most tests map pieces of. */
	self->buf_size = 16 * P;
	self->buf = vid_alloc(self->buf_size, 0x3c);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(map)
{
	vid_ctx_close(&self->ctx);
	vid_free(self->buf, self->buf_size);
	VID_EXPECT_ACCT(&self->base);
}

/* Nothing at all is mapped in [iova, iova + size). */
#define ASSERT_NOTHING_MAPPED(_iova, _size) \
	VID_ASSERT_UNMAP(self->c, (_iova), (_size), 0)

/* Map and unmap; unmap reports the unmapped size, a second unmap 0. */
TEST_F(map, map_unmap_basic)
{
	struct vid_acct mapped;

	VID_ASSERT_OK(vid_map(self->c, BASE, self->buf, 4 * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_acct_read(&mapped));
	/* Read-only and write-only mappings are both accepted. */
	VID_ASSERT_OK(vid_map(self->c, BASE + 8 * P, self->buf, P,
			      VFIO_DMA_MAP_FLAG_READ));
	VID_ASSERT_OK(vid_map(self->c, BASE + 9 * P, self->buf, P,
			      VFIO_DMA_MAP_FLAG_WRITE));

	VID_ASSERT_UNMAP(self->c, BASE + 8 * P, 2 * P, 2 * P);
	VID_ASSERT_ACCT(&mapped);
	VID_ASSERT_UNMAP(self->c, BASE, 4 * P, 4 * P);
	VID_ASSERT_ACCT(&self->base);
	ASSERT_NOTHING_MAPPED(BASE, 16 * P);

	/* The same range can be mapped again. */
	VID_ASSERT_OK(vid_map(self->c, BASE, self->buf, 4 * P, VID_MAP_RW));
	VID_ASSERT_UNMAP(self->c, BASE, 4 * P, 4 * P);
}

/* Any overlap with an existing mapping is EEXIST and changes nothing. */
TEST_F(map, map_overlap)
{
	const uint64_t m = BASE + 4 * P;	/* mapping [m, m + 4P) */
	struct vid_acct mapped;
	char *b = self->buf;
	/* Not static: P is the CPU page size, known at run time. */
	const struct {
		const char *what;
		int64_t off;
		uint64_t size;
	} cases[] = {
		{ "exact",		0,		4 * P },
		{ "front",		-2 * (int64_t)P, 4 * P },
		{ "back",		2 * P,		4 * P },
		{ "containing",		-(int64_t)P,	6 * P },
		{ "inside",		P,		2 * P },
		{ "first page",		0,		P },
		{ "last page",		3 * P,		P },
	};
	size_t i;

	VID_ASSERT_OK(vid_map(self->c, m, b, 4 * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_acct_read(&mapped));

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = vid_map(self->c, m + cases[i].off, b + 8 * P,
				cases[i].size, VID_MAP_RW);

		EXPECT_EQ(-EEXIST, r)
			TH_LOG("%s overlap: %s", cases[i].what, strerror(-r));
		VID_ASSERT_ACCT(&mapped);
	}

	/* Adjacent ranges do not overlap. */
	VID_ASSERT_OK(vid_map(self->c, m - P, b + 8 * P, P, VID_MAP_RW));
	VID_ASSERT_OK(vid_map(self->c, m + 4 * P, b + 9 * P, P, VID_MAP_RW));

	/* The original mapping is intact and exactly as large as before. */
	VID_ASSERT_UNMAP(self->c, m, 4 * P, 4 * P);
	VID_ASSERT_UNMAP(self->c, m - P, P, P);
	VID_ASSERT_UNMAP(self->c, m + 4 * P, P, P);
	ASSERT_NOTHING_MAPPED(BASE, 16 * P);
}

TEST_F(map, map_zero_size)
{
	VID_ASSERT_ERR(EINVAL, vid_map(self->c, BASE, self->buf, 0,
				       VID_MAP_RW));
	VID_ASSERT_ACCT(&self->base);
	ASSERT_NOTHING_MAPPED(BASE, 16 * P);
	VID_ASSERT_OK(vid_map(self->c, BASE, self->buf, P, VID_MAP_RW));
	VID_ASSERT_UNMAP(self->c, BASE, P, P);
}

/* iova, vaddr and size must all be multiples of the IOMMU page size. */
TEST_F(map, map_unaligned)
{
	char *b = self->buf;

	VID_ASSERT_ERR(EINVAL, vid_map(self->c, BASE + 0x800, b, P,
				       VID_MAP_RW));
	VID_ASSERT_ERR(EINVAL, vid_map(self->c, BASE + 1, b, P,
				       VID_MAP_RW));
	VID_ASSERT_ERR(EINVAL, vid_map(self->c, BASE, b + 0x200, P,
				       VID_MAP_RW));
	VID_ASSERT_ERR(EINVAL, vid_map(self->c, BASE, b, P + 1,
				       VID_MAP_RW));
	VID_ASSERT_ERR(EINVAL, vid_map(self->c, BASE, b, 2 * P - 0x800,
				       VID_MAP_RW));
	VID_ASSERT_ERR(EINVAL, vid_map(self->c, BASE, b, 0x800,
				       VID_MAP_RW));
	VID_ASSERT_ACCT(&self->base);
	ASSERT_NOTHING_MAPPED(BASE, 16 * P);

	VID_ASSERT_OK(vid_map(self->c, BASE, b, 2 * P, VID_MAP_RW));
	VID_ASSERT_UNMAP(self->c, BASE, 2 * P, 2 * P);
}

/* iova + size and vaddr + size must not wrap past the top of 64 bits. */
TEST_F(map, map_wraparound)
{
	const uint64_t top = ~0ULL & ~(uint64_t)(P - 1);

	VID_ASSERT_ERR(EINVAL, vid_map_raw(self->c, MAP_MINSZ, VID_MAP_RW,
					   (uintptr_t)self->buf, top, 2 * P));
	VID_ASSERT_ERR(EINVAL, vid_map_raw(self->c, MAP_MINSZ, VID_MAP_RW,
					   (uintptr_t)self->buf, BASE,
					   ~0ULL & ~(uint64_t)(P - 1)));
	VID_ASSERT_ERR(EINVAL, vid_map_raw(self->c, MAP_MINSZ, VID_MAP_RW,
					   top, BASE, 2 * P));
	VID_ASSERT_ACCT(&self->base);
	ASSERT_NOTHING_MAPPED(top, P);
	ASSERT_NOTHING_MAPPED(BASE, 16 * P);

	VID_ASSERT_OK(vid_map(self->c, BASE, self->buf, 2 * P, VID_MAP_RW));
	VID_ASSERT_UNMAP(self->c, BASE, 2 * P, 2 * P);
}

/* argsz must cover the structure up to size; larger is fine. */
TEST_F(map, map_argsz)
{
	uintptr_t va = (uintptr_t)self->buf;

	VID_ASSERT_ERR(EINVAL, vid_map_raw(self->c, MAP_MINSZ - 1, VID_MAP_RW,
					   va, BASE, P));
	VID_ASSERT_ERR(EINVAL, vid_map_raw(self->c, 0, VID_MAP_RW,
					   va, BASE, P));
	VID_ASSERT_ACCT(&self->base);
	ASSERT_NOTHING_MAPPED(BASE, 16 * P);

	VID_ASSERT_OK(vid_map_raw(self->c, MAP_MINSZ, VID_MAP_RW,
				  va, BASE, P));
	VID_ASSERT_OK(vid_map_raw(self->c, MAP_MINSZ + 64, VID_MAP_RW,
				  va, BASE + P, P));
	VID_ASSERT_UNMAP(self->c, BASE, 2 * P, 2 * P);
}

/* Unknown flag bits are EINVAL, and so is a mapping with no access. */
TEST_F(map, map_flags)
{
	uintptr_t va = (uintptr_t)self->buf;
	int bit;

	for (bit = 3; bit < 32; bit++) {
		int r = vid_map_raw(self->c, MAP_MINSZ,
				    VID_MAP_RW | (1U << bit), va, BASE, P);

		EXPECT_EQ(-EINVAL, r) TH_LOG("flag bit %d", bit);
	}
	VID_ASSERT_ERR(EINVAL, vid_map_raw(self->c, MAP_MINSZ, 0,
					   va, BASE, P));
	VID_ASSERT_ACCT(&self->base);
	ASSERT_NOTHING_MAPPED(BASE, 16 * P);
}

/* Rejected unmaps (EINVAL) leave the mapping in place. */
TEST_F(map, unmap_bad_args)
{
	uint64_t got;

	VID_ASSERT_OK(vid_map(self->c, BASE, self->buf, 4 * P, VID_MAP_RW));

	VID_ASSERT_ERR(EINVAL, vid_unmap_raw(self->c, UNMAP_MINSZ - 1, 0,
					     BASE, 4 * P, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap_raw(self->c, UNMAP_MINSZ, 1U << 7,
					     BASE, 4 * P, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap(self->c, BASE + 0x800, 4 * P, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap(self->c, BASE, 4 * P - 0x800, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap(self->c, BASE, 0, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap(self->c, BASE,
					 ~0ULL & ~(uint64_t)(P - 1), &got));

	VID_ASSERT_UNMAP(self->c, BASE, 4 * P, 4 * P);
}

/* Unmapping where nothing is mapped succeeds and reports 0 bytes. */
TEST_F(map, unmap_nothing_mapped)
{
	ASSERT_NOTHING_MAPPED(BASE, P);
	ASSERT_NOTHING_MAPPED(0, 1ULL << 30);

	/* Also right next to an existing mapping, which stays. */
	VID_ASSERT_OK(vid_map(self->c, BASE, self->buf, 2 * P, VID_MAP_RW));
	ASSERT_NOTHING_MAPPED(BASE - 4 * P, 4 * P);
	ASSERT_NOTHING_MAPPED(BASE + 2 * P, 4 * P);
	VID_ASSERT_UNMAP(self->c, BASE, 2 * P, 2 * P);
}

/* A v2 unmap may not cut a mapping in two: EINVAL, nothing removed. */
TEST_F(map, unmap_bisect_v2)
{
	const uint64_t m = BASE + 4 * P;	/* mapping [m, m + 4P) */
	uint64_t got;

	VID_ASSERT_OK(vid_map(self->c, m, self->buf, 4 * P, VID_MAP_RW));

	VID_ASSERT_ERR(EINVAL, vid_unmap(self->c, m, 2 * P, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap(self->c, m + P, 3 * P, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap(self->c, m + P, P, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap(self->c, m - P, 2 * P, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap(self->c, m + 3 * P, 2 * P, &got));
	VID_ASSERT_ERR(EINVAL, vid_unmap(self->c, m + 2 * P, 8 * P, &got));

	VID_ASSERT_UNMAP(self->c, m, 4 * P, 4 * P);
}

/*
 * One unmap over several mappings (and the gaps between them) removes
 * them all and reports the sum of their sizes.
 */
TEST_F(map, unmap_multiple)
{
	char *b = self->buf;

	VID_ASSERT_OK(vid_map(self->c, BASE, b, 2 * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_map(self->c, BASE + 3 * P, b + 2 * P, P,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_map(self->c, BASE + 5 * P, b + 3 * P, 3 * P,
			      VFIO_DMA_MAP_FLAG_READ));
	/* A fourth mapping outside the range must survive. */
	VID_ASSERT_OK(vid_map(self->c, BASE + 12 * P, b + 8 * P, P,
			      VID_MAP_RW));

	VID_ASSERT_UNMAP(self->c, BASE - P, 10 * P, 6 * P);
	ASSERT_NOTHING_MAPPED(BASE - P, 10 * P);
	VID_ASSERT_UNMAP(self->c, BASE + 12 * P, P, P);
}

/*
 * A vaddr that is not mapped in the process cannot be pinned: EFAULT.
 * The same when only the last page is missing: the pages pinned before
 * the hole are released again and nothing stays accounted or mapped.
 */
TEST_F(map, map_unmapped_vaddr)
{
	char *hole, *part;

	hole = mmap(NULL, 4 * P, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, 4 * P));
	VID_ASSERT_ERR(EFAULT, vid_map(self->c, BASE, hole, 4 * P,
				       VID_MAP_RW));
	VID_ASSERT_ACCT(&self->base);
	ASSERT_NOTHING_MAPPED(BASE, 4 * P);

	part = vid_alloc(4 * P, 0x77);
	ASSERT_NE(NULL, part);
	ASSERT_EQ(0, munmap(part + 3 * P, P));
	VID_ASSERT_ERR(EFAULT, vid_map(self->c, BASE, part, 4 * P,
				       VID_MAP_RW));
	VID_ASSERT_ACCT(&self->base);
	ASSERT_NOTHING_MAPPED(BASE, 4 * P);

	/* The IOVA range is free: a valid mapping there works. */
	VID_ASSERT_OK(vid_map(self->c, BASE, part, 3 * P, VID_MAP_RW));
	VID_ASSERT_UNMAP(self->c, BASE, 3 * P, 3 * P);
	vid_free(part, 3 * P);
}

/*
 * Mapping N pages locks N pages: VmLck rises by N pages and the system
 * pinned-page count by N; unmapping gives both back.
 */
TEST_F(map, accounting_exact)
{
	const long n = 16;
	struct vid_acct now;

	VID_ASSERT_OK(vid_map(self->c, BASE, self->buf, n * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_acct_read(&now));
	EXPECT_EQ(self->base.vmlck_kb + n * VID_PAGE_KB, now.vmlck_kb);
	EXPECT_EQ(self->base.pinned + n, now.pinned);

	/* A read-only mapping of the same pages is accounted on its own. */
	VID_ASSERT_OK(vid_map(self->c, BASE + 64 * P, self->buf, 4 * P,
			      VFIO_DMA_MAP_FLAG_READ));
	VID_ASSERT_OK(vid_acct_read(&now));
	EXPECT_EQ(self->base.vmlck_kb + (n + 4) * VID_PAGE_KB, now.vmlck_kb);
	EXPECT_EQ(self->base.pinned + n + 4, now.pinned);

	VID_ASSERT_UNMAP(self->c, BASE + 64 * P, 4 * P, 4 * P);
	VID_ASSERT_UNMAP(self->c, BASE, n * P, n * P);
	VID_ASSERT_ACCT(&self->base);
}

/*
 * Closing the container with mappings still in place releases all of
 * them (checked by the teardown, which closes the container).
 */
TEST_F(map, close_releases_mappings)
{
	struct vid_acct now;

	VID_ASSERT_OK(vid_map(self->c, BASE, self->buf, 8 * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_map(self->c, BASE + 32 * P, self->buf + 8 * P,
			      8 * P, VFIO_DMA_MAP_FLAG_READ));
	VID_ASSERT_OK(vid_acct_read(&now));
	EXPECT_EQ(self->base.vmlck_kb + 16 * VID_PAGE_KB, now.vmlck_kb);
	EXPECT_EQ(self->base.pinned + 16, now.pinned);
	vid_ctx_close(&self->ctx);
	VID_ASSERT_ACCT(&self->base);
}

/*
 * IOVAs outside the domain's usable ranges are EINVAL: the MSI window
 * edu's group reserves (VT-d's at 0xfee00000, an Arm SMMU's software one
 * at 0x8000000), and addresses beyond the IOMMU's address width.
 */
/* The start of the MSI window edu's group reserves (sysfs), or 0. */
static uint64_t edu_msi_window(void)
{
	uint64_t start, last;

	return vid_msi_window(vid_edu_group(), &start, &last) ? 0 : start;
}

TEST_F(map, map_outside_iova_ranges)
{
	const uint64_t msi = edu_msi_window();
	/* Not static: the window and P are known at run time. */
	const struct {
		const char *what;
		uint64_t iova;
		uint64_t size;
	} cases[] = {
		{ "MSI window",		msi,		P },
		{ "into MSI window",	msi - P,	2 * P },
		{ "beyond aperture",	1ULL << 60,	P },
	};
	size_t i;

	ASSERT_NE(0, msi) TH_LOG("no MSI window for edu's group in sysfs");

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = vid_map(self->c, cases[i].iova, self->buf,
				cases[i].size, VID_MAP_RW);
		const char *got = r ? strerror(-r) : "mapped";

		EXPECT_EQ(-EINVAL, r)
			TH_LOG("%s at 0x%llx: %s", cases[i].what,
			       (unsigned long long)cases[i].iova, got);
		/* Clean up a wrongly accepted mapping before going on. */
		if (!r)
			vid_unmap(self->c, cases[i].iova, cases[i].size, NULL);
	}
	VID_ASSERT_ACCT(&self->base);
	ASSERT_NOTHING_MAPPED(msi - P, 2 * P);
	ASSERT_NOTHING_MAPPED(1ULL << 60, P);
}

/*
 * Without CAP_IPC_LOCK, pinning is limited by RLIMIT_MEMLOCK: going over
 * is ENOMEM and leaves nothing pinned, accounted or mapped.
 */
TEST_F(map, map_memlock_limit)
{
	const struct rlimit lim = { 8 * P, 8 * P };
	struct vid_acct now;

	VID_ASSERT_OK(vid_drop_cap_ipc_lock());
	ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &lim));

	VID_ASSERT_ERR(ENOMEM, vid_map(self->c, BASE, self->buf, 16 * P,
				       VID_MAP_RW));
	VID_ASSERT_ACCT(&self->base);
	ASSERT_NOTHING_MAPPED(BASE, 16 * P);

	VID_ASSERT_OK(vid_map(self->c, BASE, self->buf, 6 * P, VID_MAP_RW));
	VID_ASSERT_ERR(ENOMEM, vid_map(self->c, BASE + 8 * P,
				       self->buf + 8 * P, 4 * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_acct_read(&now));
	EXPECT_EQ(self->base.vmlck_kb + 6 * VID_PAGE_KB, now.vmlck_kb);
	EXPECT_EQ(self->base.pinned + 6, now.pinned);
	ASSERT_NOTHING_MAPPED(BASE + 8 * P, 4 * P);
	VID_ASSERT_OK(vid_map(self->c, BASE + 8 * P, self->buf + 8 * P,
			      2 * P, VID_MAP_RW));
	VID_ASSERT_UNMAP(self->c, BASE, 16 * P, 8 * P);
}

/*
 * The v1 interface keeps its historical unmap rules: an unmap starting
 * inside a mapping succeeds and removes nothing; an unmap covering a
 * mapping's first IOVA removes the whole mapping and reports its size.
 */
FIXTURE(map_v1) {
	struct vid_ctx ctx;
	struct vid_acct base;
	void *buf;
};

FIXTURE_SETUP(map_v1)
{
	vid_ctx_init(&self->ctx);
	self->buf = NULL;
	if (!vid_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_acct_read(&self->base));
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1_IOMMU));
	self->buf = vid_alloc(8 * P, 0x42);
	ASSERT_NE(NULL, self->buf);
}

FIXTURE_TEARDOWN(map_v1)
{
	vid_ctx_close(&self->ctx);
	vid_free(self->buf, 8 * P);
	VID_EXPECT_ACCT(&self->base);
}

TEST_F(map_v1, unmap_v1_semantics)
{
	const int c = self->ctx.container;

	VID_ASSERT_OK(vid_map(c, BASE, self->buf, 4 * P, VID_MAP_RW));
	/* Starts inside the mapping: success, nothing unmapped. */
	VID_ASSERT_UNMAP(c, BASE + P, P, 0);
	VID_ASSERT_UNMAP(c, BASE + 2 * P, 4 * P, 0);
	/* Covers the first page only: the whole mapping goes. */
	VID_ASSERT_UNMAP(c, BASE, P, 4 * P);
	VID_ASSERT_UNMAP(c, BASE, 4 * P, 0);
	VID_ASSERT_ACCT(&self->base);

	/* Errors are still errors on v1. */
	VID_ASSERT_OK(vid_map(c, BASE, self->buf, 4 * P, VID_MAP_RW));
	VID_ASSERT_ERR(EEXIST, vid_map(c, BASE + P, self->buf, P,
				       VID_MAP_RW));
	VID_ASSERT_ERR(EINVAL, vid_map(c, BASE + 8 * P, self->buf, 0,
				       VID_MAP_RW));
	VID_ASSERT_UNMAP(c, BASE - P, 8 * P, 4 * P);
}

TEST_HARNESS_MAIN
