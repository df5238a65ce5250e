// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty page tracking in pinned-page scope, driven exactly through the
 * emulated test device (vid_emu): pages it pins are dirty for as long as
 * they are pinned, pages it writes through dma_rw are dirty until
 * reported, an unpinned page stays dirty until reported, and nothing else
 * is ever reported. Adding an IOMMU-backed group (edu) leaves the scope;
 * removing it enters the scope again without losing what edu may have
 * written. A device in an IOMMU-backed group that pins enters the scope
 * too (the test module bound to edu). Every bitmap is checked bit by bit.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define P		VID_PAGE
#define NPAGES		64
#define IOVA		0x1000000ULL	/* 16 MiB, below edu's 256 MiB */
#define PIN_RW		(VID_EMU_PIN_READ | VID_EMU_PIN_WRITE)
#define POISON		0xa5a5a5a5a5a5a5a5ULL
#define START		VFIO_IOMMU_DIRTY_PAGES_FLAG_START
#define STOP		VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP

FIXTURE(demu) {
	struct vid_ctx ctx;
	struct vid_acct base;
	char *mem;
	int dev;
	uint64_t bits;
};

FIXTURE_SETUP(demu)
{
	vid_ctx_init(&self->ctx);
	self->mem = NULL;
	if (!vid_emu_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_acct_read(&self->base));
	if (!vid_emu_open(_metadata, &self->ctx, VFIO_TYPE1v2_IOMMU))
		return;
	self->dev = self->ctx.device;
	self->mem = vid_alloc(NPAGES * P, 0x5c);
	ASSERT_NE(NULL, self->mem);
	VID_ASSERT_OK(vid_map(self->ctx.container, IOVA, self->mem,
			      NPAGES * P, VID_MAP_RW));
}

FIXTURE_TEARDOWN(demu)
{
	vid_ctx_close(&self->ctx);
	if (self->mem)
		vid_free(self->mem, NPAGES * P);
	VID_EXPECT_ACCT(&self->base);
}

/* One query of the whole mapping: the 64 bits of its 64 pages. */
static uint64_t query(struct __test_metadata *_metadata, int fd,
		      uint32_t flags)
{
	uint64_t bits = POISON;

	EXPECT_EQ(0, vid_get_bitmap(fd, flags, IOVA, NPAGES * P, P, &bits,
				    sizeof(bits)));
	return bits;
}

#define QUERY(_self)	query(_metadata, (_self)->ctx.container, 0)

/*
 * Have the device write one byte at each of the @n pages @pages of the
 * mapping at @iova, and set their bits in @want, where the mapping's page
 * 0 is bit @lead.
 */
static void write_pages(struct __test_metadata *_metadata, int dev,
			uint64_t iova, const uint64_t *pages, unsigned int n,
			uint64_t lead, uint64_t *want)
{
	unsigned int i;
	char byte = 0x3c;

	for (i = 0; i < n; i++) {
		VID_ASSERT_OK(vid_emu_rw(dev, iova + pages[i] * P, &byte, 1,
					 VID_EMU_RW_WRITE));
		want[(lead + pages[i]) / 64] |= 1ULL << ((lead + pages[i]) % 64);
	}
}

/* Every word of @bits against @want. */
static void check_words(struct __test_metadata *_metadata,
			const uint64_t *bits, const uint64_t *want,
			uint64_t nwords)
{
	uint64_t i;

	for (i = 0; i < nwords; i++) {
		EXPECT_EQ(want[i], bits[i])
			TH_LOG("word %llu of %llu", (unsigned long long)i,
			       (unsigned long long)nwords);
	}
}

TEST_F(demu, start_reports_pinned_pages)
{
	int fd = self->ctx.container;

	VID_ASSERT_OK(vid_emu_pin(self->dev, IOVA + 3 * P, 1, PIN_RW, NULL));
	VID_ASSERT_OK(vid_emu_pin(self->dev, IOVA + 10 * P, 2, PIN_RW, NULL));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	/* Pinned pages stay dirty, query after query. */
	ASSERT_EQ(1ULL << 3 | 3ULL << 10, QUERY(self));
	ASSERT_EQ(1ULL << 3 | 3ULL << 10, QUERY(self));
	VID_ASSERT_OK(vid_emu_unpin_all(self->dev));
	/* Unpinned, still dirty until reported once. */
	ASSERT_EQ(1ULL << 3 | 3ULL << 10, QUERY(self));
	ASSERT_EQ(0ULL, QUERY(self));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, STOP));
}

TEST_F(demu, dma_rw_writes_are_dirty)
{
	int fd = self->ctx.container;
	char buf[200], in[200];

	memset(buf, 0x42, sizeof(buf));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	ASSERT_EQ(0ULL, QUERY(self));
	/* 200 bytes from 100 before the end of page 5: pages 5 and 6. */
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 6 * P - 100, buf,
				 sizeof(buf), VID_EMU_RW_WRITE));
	/* Reads dirty nothing. */
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 20 * P, in, sizeof(in), 0));
	ASSERT_EQ(0, memcmp(self->mem + 6 * P - 100, buf, sizeof(buf)));
	ASSERT_EQ(3ULL << 5, QUERY(self));
	ASSERT_EQ(0ULL, QUERY(self));
	/* The last page of the mapping. */
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + NPAGES * P - 1, buf, 1,
				 VID_EMU_RW_WRITE));
	ASSERT_EQ(1ULL << 63, QUERY(self));
}

/* Writes before START are not reported; STOP forgets everything. */
TEST_F(demu, only_while_tracking)
{
	int fd = self->ctx.container;
	char byte = 1;

	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 2 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	ASSERT_EQ(0ULL, QUERY(self));
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 4 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, STOP));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	ASSERT_EQ(0ULL, QUERY(self));
}

TEST_F(demu, peek_does_not_clear)
{
	int fd = self->ctx.container;
	char byte = 1;

	if (vid_backend_intree())
		SKIP(return, "PEEK is an extension of this backend");
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 9 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	ASSERT_EQ(1ULL << 9, query(_metadata, fd,
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK));
	ASSERT_EQ(1ULL << 9, query(_metadata, fd,
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK));
	ASSERT_EQ(1ULL << 9, QUERY(self));
	ASSERT_EQ(0ULL, QUERY(self));
}

/*
 * UNMAP with a bitmap: the device is told to unpin first, and the pages it
 * held or wrote are reported in the same call, at the bitmap's bit 0.
 */
TEST_F(demu, unmap_reports_pins_and_writes)
{
	int fd = self->ctx.container;
	struct vid_emu_status st;
	uint64_t bits = 0, got;
	char byte = 7;

	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	VID_ASSERT_OK(vid_emu_pin(self->dev, IOVA + 4 * P, 1, PIN_RW, NULL));
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 2 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_unmap_bitmap(fd, 0, IOVA, NPAGES * P, P, &bits,
				       sizeof(bits), &got));
	ASSERT_EQ(NPAGES * P, got);
	ASSERT_EQ(1ULL << 2 | 1ULL << 4, bits);
	VID_ASSERT_OK(vid_emu_status(self->dev, &st, false));
	ASSERT_EQ(1, st.unmap_calls);
	ASSERT_EQ(0, st.pinned_refs);
	/* Map it again for the teardown's sake. */
	VID_ASSERT_OK(vid_map(fd, IOVA, self->mem, NPAGES * P, VID_MAP_RW));
}

/*
 * Two mappings at odd bit offsets of one user word: their bits are exact,
 * and (this backend) the bits of the word outside them are untouched.
 */
TEST_F(demu, odd_offsets_keep_neighbours)
{
	int fd = self->ctx.container;
	uint64_t bits, want, mask;
	char byte = 3;

	/*
	 * In-tree ORs the caller's whole first word into a mapping that
	 * starts inside it, so it gets a clean buffer; this backend must
	 * cope with any.
	 */
	bits = vid_backend_intree() ? 0 : POISON;
	VID_ASSERT_OK(vid_unmap(fd, IOVA, NPAGES * P, &want));
	/* Pages 3-7 and 9-10 of the buffer, mapped at the same offsets. */
	VID_ASSERT_OK(vid_map(fd, IOVA + 3 * P, self->mem + 3 * P, 5 * P,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_map(fd, IOVA + 9 * P, self->mem + 9 * P, 2 * P,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 4 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_emu_pin(self->dev, IOVA + 10 * P, 1, PIN_RW, NULL));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, IOVA, NPAGES * P, P, &bits,
				     sizeof(bits)));
	mask = 0x1fULL << 3 | 3ULL << 9;
	want = 1ULL << 4 | 1ULL << 10;
	ASSERT_EQ(want, bits & mask);
	if (!vid_backend_intree())
		ASSERT_EQ(POISON & ~mask, bits & ~mask);
	VID_ASSERT_OK(vid_emu_unpin_all(self->dev));
	VID_ASSERT_OK(vid_unmap(fd, IOVA, NPAGES * P, &want));
	VID_ASSERT_OK(vid_map(fd, IOVA, self->mem, NPAGES * P, VID_MAP_RW));
}

/* A mapping created while tracking starts clean; its writes count. */
TEST_F(demu, mapping_created_while_tracking)
{
	int fd = self->ctx.container;
	uint64_t bits = POISON;
	char byte = 5;

	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	VID_ASSERT_OK(vid_map(fd, IOVA + NPAGES * P, self->mem, P,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, IOVA + NPAGES * P, P, P, &bits,
				     sizeof(bits)));
	ASSERT_EQ(0ULL, bits & 1);
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + NPAGES * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, IOVA + NPAGES * P, P, P, &bits,
				     sizeof(bits)));
	ASSERT_EQ(1ULL, bits & 1);
	VID_ASSERT_OK(vid_unmap(fd, IOVA + NPAGES * P, P, &bits));
}

/* Blocks of 2 MiB (this backend): a bit per block holding a dirty page. */
TEST_F(demu, block_pgsize)
{
	int fd = self->ctx.container;
	const uint64_t sz = 8ULL << 20;
	uint64_t bits = POISON;
	char byte = 9, *big;

	if (vid_backend_intree())
		SKIP(return, "block page sizes are an extension of this backend");
	big = vid_alloc(sz, 0);
	ASSERT_NE(NULL, big);
	VID_ASSERT_OK(vid_map(fd, 0x4000000, big, sz, VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	VID_ASSERT_OK(vid_emu_rw(self->dev, 0x4000000 + P, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_emu_pin(self->dev, 0x4000000 + (6ULL << 20), 1,
				  PIN_RW, NULL));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, 0x4000000, sz, 2ULL << 20, &bits,
				     sizeof(bits)));
	ASSERT_EQ(1ULL << 0 | 1ULL << 3, bits & 0xf);
	ASSERT_EQ(POISON & ~0xfULL, bits & ~0xfULL);
	VID_ASSERT_OK(vid_emu_unpin_all(self->dev));
	VID_ASSERT_OK(vid_unmap(fd, 0x4000000, sz, &bits));
	vid_free(big, sz);
}

/*
 * Scope: with edu (an IOMMU group that never pins) in the container every
 * page is dirty; once edu leaves, everything is reported dirty one more
 * time (edu may have written it), and from then on only what the test
 * device pins or writes.
 */
TEST(demu_scope_with_edu)
{
	struct vid_acct base;
	struct vid_ctx ctx;
	int egroup, efd, dev;
	uint64_t got;
	bool served;
	char *mem, byte = 1;

	if (!vid_emu_prepare(_metadata))
		return;
	if (vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	VID_ASSERT_OK(vid_acct_read(&base));
	mem = vid_alloc(NPAGES * P, 0x21);
	ASSERT_NE(NULL, mem);

	VID_ASSERT_OK(vid_ctx_open(&ctx, 0));
	egroup = vid_device_group("platform", VID_EMU_DEV0);
	ASSERT_LE(0, egroup);
	efd = vid_open_group_id(ctx.container, egroup);
	ASSERT_LE(0, efd);
	VID_ASSERT_OK(vid_set_iommu(ctx.container, VFIO_TYPE1v2_IOMMU,
				    vid_backend_module(), &served));
	if (!vid_emu_served(_metadata, served))
		return;
	dev = ioctl(efd, VFIO_GROUP_GET_DEVICE_FD, VID_EMU_DEV0);
	ASSERT_LE(0, dev);
	VID_ASSERT_OK(vid_map(ctx.container, IOVA, mem, NPAGES * P,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(ctx.container, 8, START));
	ASSERT_EQ(~0ULL, query(_metadata, ctx.container, 0));
	ASSERT_EQ(~0ULL, query(_metadata, ctx.container, 0));

	/* edu leaves the container. */
	ASSERT_EQ(0, ioctl(ctx.group, VFIO_GROUP_UNSET_CONTAINER));
	ASSERT_EQ(~0ULL, query(_metadata, ctx.container, 0));
	ASSERT_EQ(0ULL, query(_metadata, ctx.container, 0));
	VID_ASSERT_OK(vid_emu_rw(dev, IOVA + 33 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	ASSERT_EQ(1ULL << 33, query(_metadata, ctx.container, 0));

	VID_ASSERT_OK(vid_unmap(ctx.container, IOVA, NPAGES * P, &got));
	close(dev);
	close(efd);
	vid_ctx_close(&ctx);
	vid_free(mem, NPAGES * P);
	VID_ASSERT_ACCT(&base);
}

/*
 * An IOMMU-backed group joining while tracking runs takes the container
 * out of pinned-page scope: from then on every page is dirty.
 */
TEST_F(demu, iommu_group_attach_demotes)
{
	int fd = self->ctx.container, group;
	char byte = 1;

	if (vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 5 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	ASSERT_EQ(1ULL << 5, QUERY(self));
	group = vid_open_group(fd);
	ASSERT_LE(0, group);
	ASSERT_EQ(~0ULL, QUERY(self));
	ASSERT_EQ(~0ULL, QUERY(self));
	/* Leaving again: all dirty once more, then exact. */
	ASSERT_EQ(0, ioctl(group, VFIO_GROUP_UNSET_CONTAINER));
	close(group);
	ASSERT_EQ(~0ULL, QUERY(self));
	ASSERT_EQ(0ULL, QUERY(self));
}

/*
 * Pins are counted: a page pinned twice stays pinned, and dirty in every
 * report, until its last pin goes; then it is dirty once more.
 */
TEST_F(demu, refcounted_pins)
{
	int fd = self->ctx.container;

	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	VID_ASSERT_OK(vid_emu_pin(self->dev, IOVA + 3 * P, 1, PIN_RW, NULL));
	VID_ASSERT_OK(vid_emu_pin(self->dev, IOVA + 3 * P, 2, PIN_RW, NULL));
	ASSERT_EQ(3ULL << 3, QUERY(self));
	VID_ASSERT_OK(vid_emu_unpin(self->dev, IOVA + 3 * P, 1));
	/* Page 3 still has a pin; page 4 is still pinned once. */
	ASSERT_EQ(3ULL << 3, QUERY(self));
	ASSERT_EQ(3ULL << 3, QUERY(self));
	VID_ASSERT_OK(vid_emu_unpin(self->dev, IOVA + 3 * P, 2));
	/* Both let go: dirty once more, then clean. */
	ASSERT_EQ(3ULL << 3, QUERY(self));
	ASSERT_EQ(0ULL, QUERY(self));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, STOP));
}

/*
 * A report that cannot be written (the user bitmap is read-only) fails
 * with EFAULT and changes nothing: the next report still has every bit.
 * An unmap with such a bitmap removes nothing either; it did tell the
 * device first, which gave its pin back (in-tree does the same), so the
 * page it held is dirty once more, and no page is lost.
 */
TEST_F(demu, failed_report_changes_nothing)
{
	int fd = self->ctx.container;
	uint64_t *ro, bits = 0, got;
	struct vid_emu_status st;
	char byte = 9;

	ro = mmap(NULL, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 2 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 63 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_emu_pin(self->dev, IOVA + 7 * P, 1, PIN_RW, NULL));
	VID_ASSERT_ERR(EFAULT, vid_get_bitmap(fd, 0, IOVA, NPAGES * P, P, ro,
					      sizeof(*ro)));
	EXPECT_EQ(1ULL << 2 | 1ULL << 7 | 1ULL << 63, QUERY(self));
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 5 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_ERR(EFAULT, vid_unmap_bitmap(fd, 0, IOVA, NPAGES * P, P,
						ro, sizeof(*ro), &got));
	/* Still mapped; the pin was given back when the device was told. */
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 2 * P, &byte, 1, 0));
	VID_ASSERT_OK(vid_emu_status(self->dev, &st, false));
	EXPECT_EQ(0, st.pinned_refs);
	VID_ASSERT_OK(vid_unmap_bitmap(fd, 0, IOVA, NPAGES * P, P, &bits,
				       sizeof(bits), &got));
	EXPECT_EQ(NPAGES * P, got);
	EXPECT_EQ(1ULL << 5 | 1ULL << 7, bits);
	munmap(ro, P);
	/* Map it again for the teardown's sake. */
	VID_ASSERT_OK(vid_map(fd, IOVA, self->mem, NPAGES * P, VID_MAP_RW));
}

/*
 * One report over three mappings and the holes between them, 150 pages in
 * three user words: the fixture's 64 pages (bits 0-63), a hole (64-79), 40
 * pages starting in the middle of the second word (80-119) and 30 pages
 * across the second and third words (120-149). Every bit is checked, the
 * next report must be empty for all three mappings (each one cleared),
 * and an unmap with a bitmap of the last two starts mid-word again.
 */
TEST_F(demu, report_spans_words_and_mappings)
{
	const uint64_t b_iova = IOVA + 80 * P, c_iova = IOVA + 120 * P;
	int fd = self->ctx.container;
	uint64_t bits[3], want[3] = { 0 }, got;
	static const uint64_t pages[] = {
		0, 63, 80, 81, 100, 119, 120, 127, 128, 149,
	};
	char *more, byte = 3;

	more = vid_alloc(70 * P, 0);
	ASSERT_NE(NULL, more);
	VID_ASSERT_OK(vid_map(fd, b_iova, more, 40 * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_map(fd, c_iova, more + 40 * P, 30 * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));

	write_pages(_metadata, self->dev, IOVA, pages, ARRAY_SIZE(pages), 0,
		    want);
	memset(bits, 0, sizeof(bits));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, IOVA, 150 * P, P, bits,
				     sizeof(bits)));
	check_words(_metadata, bits, want, ARRAY_SIZE(bits));
	/*
	 * This backend keeps the caller's bits in the hole (64-79) and past
	 * the end: poison shows it. In-tree would OR the poison into its own
	 * bitmaps (README, differences), so it gets a clean buffer.
	 */
	memset(bits, vid_backend_intree() ? 0 : 0xff, sizeof(bits));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, IOVA, 150 * P, P, bits,
				     sizeof(bits)));
	EXPECT_EQ(0ULL, bits[0]);
	EXPECT_EQ(vid_backend_intree() ? 0ULL : 0xffffULL, bits[1]);
	/* In-tree may leave stale bits past the range's last page (149). */
	EXPECT_EQ(vid_backend_intree() ? 0ULL : ~0x3fffffULL,
		  bits[2] & (vid_backend_intree() ? 0x3fffffULL : ~0ULL));

	/* B and C again: pages 80 and 149, i.e. bits 0 and 69 from 80. */
	VID_ASSERT_OK(vid_emu_rw(self->dev, b_iova, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 149 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	memset(bits, 0, sizeof(bits));
	VID_ASSERT_OK(vid_unmap_bitmap(fd, 0, b_iova, 70 * P, P, bits,
				       2 * sizeof(*bits), &got));
	EXPECT_EQ(70 * P, got);
	EXPECT_EQ(1ULL, bits[0]);
	EXPECT_EQ(1ULL << 5, bits[1]);
	VID_ASSERT_OK(vid_dirty_op(fd, 8, STOP));
	vid_free(more, 70 * P);
}

/*
 * A mapping that starts in the middle of a user word and runs over three
 * more: pages 80-208, 129 pages, so each user word from the second on
 * takes bits from two words of the mapping's own bitmap (word 2, pages
 * 128-191, is bits 48-111 of the mapping), and the mapping's last page is
 * alone in the last word of its bitmap. A page in each part of each word,
 * the last page among them, and the next report empty.
 */
TEST_F(demu, mid_word_mapping_over_words)
{
	const uint64_t b_iova = IOVA + 80 * P;
	int fd = self->ctx.container;
	uint64_t bits[4], want[4] = { 0 }, got;
	static const uint64_t pages[] = {
		80, 100, 127, 128, 143, 144, 160, 191, 192, 207, 208,
	};
	char *more;

	more = vid_alloc(129 * P, 0);
	ASSERT_NE(NULL, more);
	VID_ASSERT_OK(vid_map(fd, b_iova, more, 129 * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	write_pages(_metadata, self->dev, IOVA, pages, ARRAY_SIZE(pages), 0,
		    want);
	memset(bits, 0, sizeof(bits));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, IOVA, 209 * P, P, bits,
				     sizeof(bits)));
	check_words(_metadata, bits, want, ARRAY_SIZE(bits));
	memset(want, 0, sizeof(want));
	memset(bits, 0, sizeof(bits));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, IOVA, 209 * P, P, bits,
				     sizeof(bits)));
	/*
	 * Everything was reported. In-tree's in-place shift of the first
	 * report spills bits into this one (README, differences).
	 */
	if (!vid_backend_intree())
		check_words(_metadata, bits, want, ARRAY_SIZE(bits));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, STOP));
	VID_ASSERT_OK(vid_unmap(fd, b_iova, 129 * P, &got));
	EXPECT_EQ(129 * P, got);
	vid_free(more, 129 * P);
}

/*
 * 2 MiB blocks (this backend) of mappings that start mid-block and share
 * one: X at 1-3 MiB, Y at 3-5 MiB, so block 1 (2-4 MiB) is X's last and
 * Y's first. X writes in blocks 0 and 1, Y in block 2 only: block 1 must
 * keep X's bit (the OR of both), each page must land in the block of its
 * address, not of its offset in the mapping, and the caller's bits past
 * the range stay.
 */
TEST_F(demu, blocks_mid_block_and_shared)
{
	const uint64_t base = 0x4000000, mib = 1ULL << 20;
	int fd = self->ctx.container;
	uint64_t bits = POISON, got;
	char byte = 4, *mem;

	if (vid_backend_intree())
		SKIP(return, "block page sizes are an extension of this backend");
	mem = vid_alloc(4 * mib, 0);
	ASSERT_NE(NULL, mem);
	VID_ASSERT_OK(vid_map(fd, base + mib, mem, 2 * mib, VID_MAP_RW));
	VID_ASSERT_OK(vid_map(fd, base + 3 * mib, mem + 2 * mib, 2 * mib,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	VID_ASSERT_OK(vid_emu_rw(self->dev, base + mib + P, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_emu_rw(self->dev, base + 5 * mib / 2, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_emu_rw(self->dev, base + 9 * mib / 2, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, base, 6 * mib, 2 * mib, &bits,
				     sizeof(bits)));
	EXPECT_EQ(0x7ULL, bits & 0x7);
	EXPECT_EQ(POISON & ~0x7ULL, bits & ~0x7ULL);
	VID_ASSERT_OK(vid_unmap(fd, base + mib, 4 * mib, &got));
	EXPECT_EQ(4 * mib, got);
	vid_free(mem, 4 * mib);
}

/*
 * The device writes while an unmap with a bitmap waits for it to unpin
 * (its dma_unmap callback is held by VID_EMU_GATE, the container lock
 * dropped): the write happens before the mapping is reported and
 * removed, so the unmap's bitmap must have it, next to the pinned page,
 * and nothing else.
 */
TEST_F(demu, write_during_unmap_notification)
{
	int fd = self->ctx.container;
	uint64_t bits = 0;
	struct vid_unmap_job job = {
		.container = fd,
		.iova = IOVA,
		.size = NPAGES * P,
		.pgsize = P,
		.bits = &bits,
		.bytes = sizeof(bits),
	};
	char byte = 5;

	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	VID_ASSERT_OK(vid_emu_pin(self->dev, IOVA + 4 * P, 1, PIN_RW, NULL));
	ASSERT_EQ(1ULL << 4, QUERY(self));
	VID_ASSERT_OK(vid_emu_gate(self->dev, VID_EMU_GATE_ARM, 0));
	VID_ASSERT_OK(vid_unmap_job_start(&job));
	VID_ASSERT_OK(vid_emu_gate(self->dev, VID_EMU_GATE_WAIT, 10000));
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 9 * P, &byte, 1,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_emu_gate(self->dev, VID_EMU_GATE_OPEN, 0));
	VID_ASSERT_OK(vid_unmap_job_join(&job));
	ASSERT_EQ(0, job.ret);
	EXPECT_EQ(NPAGES * P, job.unmapped);
	EXPECT_EQ(1ULL << 4 | 1ULL << 9, bits);
	/* Map it again for the teardown's sake. */
	VID_ASSERT_OK(vid_map(fd, IOVA, self->mem, NPAGES * P, VID_MAP_RW));
}

/*
 * Tracking stopped while an unmap with a bitmap waits for the device to
 * unpin (the container lock dropped): the bitmaps it was to report from
 * are gone, so the unmap fails with EINVAL and the mapping stays.
 */
TEST_F(demu, stop_during_unmap_notification)
{
	int fd = self->ctx.container;
	uint64_t bits = 0;
	struct vid_unmap_job job = {
		.container = fd,
		.iova = IOVA,
		.size = NPAGES * P,
		.pgsize = P,
		.bits = &bits,
		.bytes = sizeof(bits),
	};
	char byte;

	/* In-tree checks tracking only before it notifies devices. */
	if (vid_backend_intree())
		SKIP(return, "in-tree would report from freed bitmaps");
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	VID_ASSERT_OK(vid_emu_pin(self->dev, IOVA + 4 * P, 1, PIN_RW, NULL));
	VID_ASSERT_OK(vid_emu_gate(self->dev, VID_EMU_GATE_ARM, 0));
	VID_ASSERT_OK(vid_unmap_job_start(&job));
	VID_ASSERT_OK(vid_emu_gate(self->dev, VID_EMU_GATE_WAIT, 10000));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, STOP));
	VID_ASSERT_OK(vid_emu_gate(self->dev, VID_EMU_GATE_OPEN, 0));
	VID_ASSERT_OK(vid_unmap_job_join(&job));
	EXPECT_EQ(-EINVAL, job.ret);
	/* Still mapped. */
	VID_ASSERT_OK(vid_emu_rw(self->dev, IOVA + 2 * P, &byte, 1, 0));
}

/*
 * The module assembles a report in a bounce page of P / 8 words and writes
 * it out page by page. A mapping that runs past one such page makes the
 * second chunk start inside the mapping: at a source bit that is not a
 * multiple of 64 when the mapping starts mid-word (the shifting path must
 * then carry bits from two source words), and, when it starts on a word,
 * before the source's partial last word (which must not be masked yet).
 * Mappings of (P / 8 + 1) * 64 pages and more, not touched but for the
 * pages the device writes or pins (128 MiB of address space with 4 KiB
 * pages; 2 GiB with 16 KiB ones).
 */
#define LONG_BASE	0x100000000ULL	/* 4 GiB: no IOMMU, any IOVA */

/* A long mapping under test, and the user bitmap its reports go to. */
struct long_map {
	uint64_t iova, npages, nwords;
	char *mem;
	uint64_t *bits, *want;
};

/*
 * Map @npages pages of untouched memory at @iova (reports of @nwords
 * words) and start tracking.
 */
static void long_begin(struct __test_metadata *_metadata, int fd,
		       struct long_map *m, uint64_t iova, uint64_t npages,
		       uint64_t nwords)
{
	m->iova = iova;
	m->npages = npages;
	m->nwords = nwords;
	m->mem = mmap(NULL, npages * P, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, m->mem);
	m->bits = calloc(nwords, sizeof(*m->bits));
	m->want = calloc(nwords, sizeof(*m->want));
	ASSERT_NE(NULL, m->bits);
	ASSERT_NE(NULL, m->want);
	VID_ASSERT_OK(vid_map(fd, iova, m->mem, npages * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
}

/* Stop tracking, unmap exactly the whole mapping, free everything. */
static void long_end(struct __test_metadata *_metadata, int fd,
		     struct long_map *m)
{
	uint64_t got;

	VID_ASSERT_OK(vid_dirty_op(fd, 8, STOP));
	VID_ASSERT_OK(vid_unmap(fd, m->iova, m->npages * P, &got));
	EXPECT_EQ(m->npages * P, got);
	free(m->bits);
	free(m->want);
	munmap(m->mem, m->npages * P);
}

/*
 * A mapping starting at bit 5 of the user bitmap, (W + 1) * 64 pages long
 * (W words to a bounce page): the user words are 0 to W + 1; the second
 * chunk, words W and W + 1, starts at the mapping's bit 64 * W - 5. Pages
 * at both sides of every word and chunk boundary, the last page, and one
 * pinned page in the second chunk; the next report has the pinned page
 * alone.
 */
TEST_F(demu, long_mapping_mid_word)
{
	const uint64_t w = P / 8, npages = (w + 1) * 64, lead = 5;
	const uint64_t iova = LONG_BASE + lead * P, nwords = w + 2;
	const uint64_t pages[] = {
		0, 58, 59, 64 * w - 6, 64 * w - 5, 64 * w + 10, 64 * w + 59,
		64 * w + 60, npages - 1,
	};
	const uint64_t pinned = 64 * w + 30;
	const uint64_t pinned_word = (lead + pinned) / 64;
	const uint64_t pinned_bit = 1ULL << ((lead + pinned) % 64);
	int fd = self->ctx.container;
	struct long_map m;

	long_begin(_metadata, fd, &m, iova, npages, nwords);
	write_pages(_metadata, self->dev, iova, pages, ARRAY_SIZE(pages), lead,
		    m.want);
	VID_ASSERT_OK(vid_emu_pin(self->dev, iova + pinned * P, 1, PIN_RW,
				  NULL));
	m.want[pinned_word] |= pinned_bit;
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, LONG_BASE, (lead + npages) * P, P,
				     m.bits, nwords * sizeof(*m.bits)));
	check_words(_metadata, m.bits, m.want, nwords);

	memset(m.want, 0, nwords * sizeof(*m.want));
	m.want[pinned_word] = pinned_bit;
	memset(m.bits, 0, nwords * sizeof(*m.bits));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, LONG_BASE, (lead + npages) * P, P,
				     m.bits, nwords * sizeof(*m.bits)));
	/*
	 * In-tree's in-place shift of the first report spills bits into
	 * this one (README, differences): only the pinned page is its.
	 */
	if (!vid_backend_intree())
		check_words(_metadata, m.bits, m.want, nwords);
	else
		EXPECT_EQ(pinned_bit, m.bits[pinned_word] & pinned_bit);

	VID_ASSERT_OK(vid_emu_unpin_all(self->dev));
	long_end(_metadata, fd, &m);
}

/*
 * A mapping starting on a user word, W * 64 + 70 pages long: its bitmap
 * has W + 2 words, the last with 6 bits; the first chunk ends before it.
 * Pages on both sides of the chunk boundary and the last page. This
 * backend keeps the caller's bits past the range (poison shows it);
 * in-tree gets a clean buffer.
 */
TEST_F(demu, long_mapping_aligned_partial_word)
{
	const uint64_t w = P / 8, npages = 64 * w + 70, nwords = w + 2;
	const uint64_t pages[] = {
		0, 63, 64 * w - 1, 64 * w, 64 * w + 64, npages - 1,
	};
	const uint64_t past = ~0ULL << 6;	/* bits past page npages - 1 */
	int fd = self->ctx.container;
	struct long_map m;

	long_begin(_metadata, fd, &m, LONG_BASE, npages, nwords);
	write_pages(_metadata, self->dev, LONG_BASE, pages, ARRAY_SIZE(pages),
		    0, m.want);
	if (!vid_backend_intree()) {
		m.bits[nwords - 1] = POISON & past;
		m.want[nwords - 1] |= POISON & past;
	}
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, LONG_BASE, npages * P, P, m.bits,
				     nwords * sizeof(*m.bits)));
	check_words(_metadata, m.bits, m.want, nwords);

	/* Everything was reported: the next report is empty. */
	memset(m.want, 0, nwords * sizeof(*m.want));
	memset(m.bits, 0, nwords * sizeof(*m.bits));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, LONG_BASE, npages * P, P, m.bits,
				     nwords * sizeof(*m.bits)));
	check_words(_metadata, m.bits, m.want, nwords);
	long_end(_metadata, fd, &m);
}

/*
 * The test device in an IOMMU-backed group: edu's, with edu handed from
 * vfio-pci to the test module's PCI driver (VID_EMU_IOMMU_NAME) for the
 * test and back to vfio-pci in the teardown. That is done in the test
 * body, not in the setup: the harness tears down only after a setup that
 * completed, and edu must go back whatever failed.
 */
FIXTURE(demu_iommu) {
	struct vid_ctx ctx;
	struct vid_acct base;
	char *mem;
	bool moved;
};

/* Write @val to the sysfs file @path; 0 or -errno. */
static int sysfs_put(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	if (n < 0)
		n = -errno;
	close(fd);
	return n < 0 ? (int)n : 0;
}

/* The driver edu is bound to, "" for none, into @out. */
static void edu_driver(char *out, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver",
		 vid_edu_bdf());
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		n = 0;
	link[n] = '\0';
	base = strrchr(link, '/');
	snprintf(out, len, "%s", base ? base + 1 : link);
}

/* Bind edu to the driver @drv only: 0 once it is, or -errno. */
static int edu_rebind(const char *drv)
{
	const char *bdf = vid_edu_bdf();
	char path[PATH_MAX], cur[64];
	int ret;

	edu_driver(cur, sizeof(cur));
	if (!strcmp(cur, drv))
		return 0;
	if (*cur) {
		snprintf(path, sizeof(path),
			 "/sys/bus/pci/devices/%s/driver/unbind", bdf);
		ret = sysfs_put(path, bdf);
		if (ret)
			return ret;
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override",
		 bdf);
	ret = sysfs_put(path, drv);
	if (ret)
		return ret;
	ret = sysfs_put("/sys/bus/pci/drivers_probe", bdf);
	if (ret)
		return ret;
	edu_driver(cur, sizeof(cur));
	return strcmp(cur, drv) ? -ENODEV : 0;
}

FIXTURE_SETUP(demu_iommu)
{
	vid_ctx_init(&self->ctx);
	self->mem = NULL;
	self->moved = false;
	if (!vid_emu_prepare(_metadata))
		return;
	if (vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	VID_ASSERT_OK(vid_acct_read(&self->base));
	self->mem = vid_alloc(NPAGES * P, 0x77);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(demu_iommu)
{
	vid_ctx_close(&self->ctx);
	if (self->moved)
		EXPECT_EQ(0, edu_rebind("vfio-pci"));
	if (self->mem)
		vid_free(self->mem, NPAGES * P);
	VID_EXPECT_ACCT(&self->base);
}

/*
 * edu to the test module (*@moved set first, for the teardown), its
 * group in a container, the device fd and the mapping of @mem, in @ctx.
 */
static void iommu_open(struct __test_metadata *_metadata,
		       struct vid_ctx *ctx, char *mem, bool *moved)
{
	bool served;
	int ret;

	*moved = true;
	VID_ASSERT_OK(edu_rebind(VID_EMU_IOMMU_NAME));
	ret = vid_open_container();
	ASSERT_LE(0, ret);
	ctx->container = ret;
	ret = vid_open_group_id(ctx->container, vid_edu_group());
	ASSERT_LE(0, ret);
	ctx->group = ret;
	VID_ASSERT_OK(vid_set_iommu(ctx->container, VFIO_TYPE1v2_IOMMU,
				    vid_backend_module(), &served));
	ASSERT_TRUE(served);
	ret = ioctl(ctx->group, VFIO_GROUP_GET_DEVICE_FD, vid_edu_bdf());
	ASSERT_LE(0, ret);
	ctx->device = ret;
	VID_ASSERT_OK(vid_map(ctx->container, IOVA, mem, NPAGES * P,
			      VID_MAP_RW));
}

/*
 * A device in an IOMMU-backed group that pins declares that it writes
 * only what it pins: its group joins pinned-page scope for good. Before
 * its first pin every page is dirty; at that pin, every page once more
 * (what it wrote before is unknown; in-tree forgets that, see README),
 * then only the pages it holds pinned or gave back since the last report.
 */
TEST_F(demu_iommu, first_pin_enters_pinned_scope)
{
	int fd, dev;

	iommu_open(_metadata, &self->ctx, self->mem, &self->moved);
	fd = self->ctx.container;
	dev = self->ctx.device;
	VID_ASSERT_OK(vid_dirty_op(fd, 8, START));
	ASSERT_EQ(~0ULL, QUERY(self));
	ASSERT_EQ(~0ULL, QUERY(self));
	VID_ASSERT_OK(vid_emu_pin(dev, IOVA + 6 * P, 2, PIN_RW, NULL));
	ASSERT_EQ(vid_backend_intree() ? 3ULL << 6 : ~0ULL, QUERY(self));
	ASSERT_EQ(3ULL << 6, QUERY(self));
	ASSERT_EQ(3ULL << 6, QUERY(self));
	/* Page 6 given back: dirty once more; page 7 while pinned. */
	VID_ASSERT_OK(vid_emu_unpin(dev, IOVA + 6 * P, 1));
	ASSERT_EQ(3ULL << 6, QUERY(self));
	ASSERT_EQ(1ULL << 7, QUERY(self));
	/* Nothing pinned, still in the scope. */
	VID_ASSERT_OK(vid_emu_unpin_all(dev));
	ASSERT_EQ(1ULL << 7, QUERY(self));
	ASSERT_EQ(0ULL, QUERY(self));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, STOP));
}

TEST_HARNESS_MAIN
