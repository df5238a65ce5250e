// SPDX-License-Identifier: GPL-2.0
/*
 * A container with two IOMMU domains, each with an edu device doing real
 * DMA. The test guest has one VT-d unit, under which every group would
 * share one domain; this module is loaded with test_domain_per_group=1 so
 * that each edu group gets its own. Unmapping then has a further domain to
 * clear (vid_unmap_secondary(): once per mapping, not once per run), and a
 * group attached to a container that already has mappings gets them
 * replayed into its new domain.
 *
 * After each unmap both devices write to the IOVAs that are gone, at the
 * mapping's first and last page: the bytes must not change and the IOMMU
 * must report each blocked write, by device and address on VT-d
 * (bracketed by VID_FAULT_BEGIN/END so that the runner accepts the
 * faults). A second domain left mapped would let its
 * device write into pages the module has already unpinned.
 *
 * The "joined" fixture checks the opposite, with the module as the suite
 * loads it: the second group joins the first's domain (vid_try_join()),
 * reaches what was mapped before it came, loses it on unmap, and keeps
 * the domain when the first group leaves.
 *
 * In-tree type1 cannot be made to use two domains here, and its domains
 * are not in this module's debugfs: with VID_BACKEND=intree the program
 * skips.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define P		VID_PAGE
/* edu masks DMA addresses to 28 bits: stay below 256 MiB. */
#define IOVA		0x4000000ULL
/* Not a multiple of 64: the bitmap's last word is partly outside. */
#define NPAGES		300UL
#define SIZE		(NPAGES * P)
/* Below 4096: edu aborts QEMU on a transfer touching its last byte. */
#define XFER		2048UL
#define NDEV		2
#define PARAM		"/sys/module/" VID_MOD_OURS "/parameters/test_domain_per_group"

/*
 * The IOMMU drivers print their fault reports rate limited: VT-d at most
 * 10 lines in 5 s, two per fault. A quiet 5 s ends the current window, so
 * a test waits that long before its first fault and after its last: its
 * three faults, and those of the next program with faults (dma_test), are
 * then all reported.
 */
static void fault_window_end(void)
{
	usleep(5200 * 1000);
}

FIXTURE(two) {
	struct vid_ctx ctx[NDEV];	/* ctx[1] uses ctx[0]'s container */
	struct vid_edu edu[NDEV];
	char bdf[NDEV][32];
	struct vid_acct base;
	uint8_t *buf, *src, *want;
	unsigned int faults;	/* blocked writes so far */
	bool reloaded;
};

/* The harness's FIXTURE_DATA(two), named so that helpers can take it. */
#define two_data _test_data_two

FIXTURE_VARIANT(two) {
	bool late;	/* the second group joins after the mapping */
};

/* Both groups in the container before anything is mapped. */
FIXTURE_VARIANT_ADD(two, together) {
	.late = false,
};

/* The second group's new domain gets the mapping by replay. */
FIXTURE_VARIANT_ADD(two, late) {
	.late = true,
};

/* Add device @i's group to the container and open the device. */
static int add_dev(struct two_data *self, int i)
{
	int id = vid_device_group("pci", self->bdf[i]);
	int fd;

	if (id < 0)
		return id;
	fd = vid_open_group_id(self->ctx[0].container, id);
	if (fd < 0)
		return fd;
	self->ctx[i].group = fd;
	return vid_edu_open_bdf(&self->ctx[i], self->bdf[i], &self->edu[i]);
}

FIXTURE_SETUP(two)
{
	char val[8] = "";
	bool served;
	FILE *f;
	int i;

	for (i = 0; i < NDEV; i++)
		vid_ctx_init(&self->ctx[i]);
	self->buf = NULL;
	self->src = NULL;
	self->want = NULL;
	self->faults = 0;
	self->reloaded = false;
	if (!vid_prepare(_metadata))
		return;
	if (vid_backend_intree())
		SKIP(return, "in-tree type1 cannot be given a domain per group");
	for (i = 0; i < NDEV; i++)
		if (vid_edu_bdf_nth(i, self->bdf[i], sizeof(self->bdf[i])))
			SKIP(return, "fewer than %d edu devices in VID_EDU_BDFS",
			     NDEV);

	self->reloaded = true;
	VID_ASSERT_OK(vid_module_reload_ours("test_domain_per_group=1"));
	f = fopen(PARAM, "r");
	ASSERT_NE(NULL, f) TH_LOG("%s: %s", PARAM, strerror(errno));
	ASSERT_NE(NULL, fgets(val, sizeof(val), f));
	fclose(f);
	ASSERT_EQ('Y', val[0]);

	VID_ASSERT_OK(vid_acct_read(&self->base));
	self->buf = vid_alloc(SIZE, 0);
	self->want = vid_alloc(SIZE, 0);
	self->src = vid_alloc(P, 0);
	ASSERT_NE(NULL, self->buf);
	ASSERT_NE(NULL, self->want);
	ASSERT_NE(NULL, self->src);

	self->ctx[0].container = vid_open_container();
	ASSERT_LE(0, self->ctx[0].container);
	i = vid_device_group("pci", self->bdf[0]);
	ASSERT_LE(0, i);
	self->ctx[0].group = vid_open_group_id(self->ctx[0].container, i);
	ASSERT_LE(0, self->ctx[0].group);
	VID_ASSERT_OK(vid_set_iommu(self->ctx[0].container,
				    VFIO_TYPE1v2_IOMMU, VID_MOD_OURS,
				    &served));
	ASSERT_TRUE(served) TH_LOG("%s did not take the container",
				   VID_MOD_OURS);
	VID_ASSERT_OK(vid_edu_open_bdf(&self->ctx[0], self->bdf[0],
				       &self->edu[0]));
	if (!variant->late)
		VID_ASSERT_OK(add_dev(self, 1));
}

FIXTURE_TEARDOWN(two)
{
	int i;

	for (i = NDEV - 1; i >= 0; i--)
		vid_ctx_close(&self->ctx[i]);
	vid_free(self->buf, SIZE);
	vid_free(self->want, SIZE);
	vid_free(self->src, P);
	if (self->faults)
		fault_window_end();
	if (!self->reloaded)
		return;
	VID_EXPECT_ACCT(&self->base);
	/* Later programs expect the module as the suite loaded it. */
	EXPECT_EQ(0, vid_module_remove(VID_MOD_OURS, false));
	EXPECT_EQ(0, vid_module_load_ours());
}

/*
 * Map the buffer (with @late the second group joins now) and check
 * that the container has two domains, one group each, and that both
 * devices reach every part of the mapping: each copies a page of its own
 * pattern into the first, a middle and the last page, at offsets of its
 * own, and the buffer must then hold exactly that.
 */
static void map_and_dma(struct __test_metadata *_metadata,
			struct two_data *self,
			bool late)
{
	const uint64_t pages[] = { 0, NPAGES / 2, NPAGES - 1 };
	unsigned int i, k;
	long bad;

	memset(self->buf, 0x5a, SIZE);
	memset(self->want, 0x5a, SIZE);
	VID_ASSERT_OK(vid_map(self->ctx[0].container, IOVA, self->buf, SIZE,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_map(self->ctx[0].container, IOVA + SIZE + P,
			      self->src, P, VFIO_DMA_MAP_FLAG_READ));
	if (late)
		VID_ASSERT_OK(add_dev(self, 1));

	ASSERT_EQ(2, vid_debugfs_state("domains"));
	ASSERT_EQ(2, vid_debugfs_state("iommu_groups"));

	for (i = 0; i < NDEV; i++) {
		uint64_t off = i ? 0x600 : 0x100;

		vid_fill_pattern(self->src, P, 10 + i);
		VID_ASSERT_OK(vid_edu_dma(&self->edu[i], IOVA + SIZE + P, 0,
					  XFER, false));
		for (k = 0; k < ARRAY_SIZE(pages); k++) {
			uint64_t at = pages[k] * P + off;

			VID_ASSERT_OK(vid_edu_dma(&self->edu[i], IOVA + at, 0,
						  XFER, true));
			memcpy(self->want + at, self->src, XFER);
		}
	}
	bad = vid_first_diff(self->buf, self->want, SIZE);
	ASSERT_EQ(-1, bad) TH_LOG("byte %ld (page %ld): got 0x%02x want 0x%02x",
				  bad, bad / (long)P, self->buf[bad],
				  self->want[bad]);
}

/*
 * Device @i writes to IOVA @iova, which is no longer mapped, inside the
 * kernel log markers; the IOMMU must report it. On VT-d the report names
 * the device and the page, and the test waits for exactly that line.
 */
static void blocked_write(struct __test_metadata *_metadata,
			  struct two_data *self, int i, uint64_t iova)
{
	const char *bdf = self->bdf[i];
	char needle[96];
	bool seen;
	int kmsg;

	if (!self->faults++)
		fault_window_end();
	vid_iommu_fault_settle();
	/* "DMAR: [DMA Write NO_PASID] Request device [00:02.0] fault addr 0x..." */
	if (!strncmp(bdf, "0000:", 5))
		bdf += 5;
	if (vid_iommu_kind() == VID_IOMMU_VTD)
		snprintf(needle, sizeof(needle), "[%s] fault addr 0x%llx", bdf,
			 (unsigned long long)iova);
	else
		snprintf(needle, sizeof(needle), "%s", vid_iommu_fault_word());
	kmsg = vid_kmsg_open();
	ASSERT_LE(0, kmsg);
	VID_ASSERT_OK(vid_kmsg_write(VID_FAULT_BEGIN));
	/* The transfer itself completes: the IOMMU drops the write. */
	EXPECT_EQ(0, vid_edu_dma(&self->edu[i], iova, 0, XFER, true));
	seen = vid_kmsg_wait(kmsg, needle, 3000);
	usleep(300 * 1000);
	vid_kmsg_write(VID_FAULT_END);
	close(kmsg);
	EXPECT_TRUE(seen) TH_LOG("%s: no IOMMU fault report \"%s\"",
				 self->bdf[i], needle);
}

/*
 * After the unmap neither device reaches the buffer: the first device
 * (first domain) writes to the last page, the second (the further domain,
 * unmapped separately) to the first and the last page. The buffer must
 * keep the bytes written after the unmap.
 */
static void check_unreachable(struct __test_metadata *_metadata,
			      struct two_data *self)
{
	long bad;

	memset(self->buf, 0xc3, SIZE);
	vid_fill_pattern(self->src, P, 20);
	VID_ASSERT_OK(vid_edu_dma(&self->edu[0], IOVA + SIZE + P, 0, XFER,
				  false));
	VID_ASSERT_OK(vid_edu_dma(&self->edu[1], IOVA + SIZE + P, 0, XFER,
				  false));
	blocked_write(_metadata, self, 0, IOVA + SIZE - P);
	blocked_write(_metadata, self, 1, IOVA);
	blocked_write(_metadata, self, 1, IOVA + SIZE - P);
	bad = vid_first_not(self->buf, SIZE, 0xc3);
	ASSERT_EQ(-1, bad) TH_LOG("byte %ld (page %ld) changed after the unmap",
				  bad, bad / (long)P);
	ASSERT_EQ(2, vid_debugfs_state("domains"));
}

TEST_F(two, unmap_blocks_both_devices)
{
	map_and_dma(_metadata, self, variant->late);
	VID_ASSERT_UNMAP(self->ctx[0].container, IOVA, SIZE, SIZE);
	check_unreachable(_metadata, self);
	VID_ASSERT_UNMAP(self->ctx[0].container, IOVA + SIZE + P, P, P);
	ASSERT_EQ(0, vid_debugfs_state("mappings"));
}

/*
 * The same with tracking on and the unmap asking for its bitmap: in
 * IOMMU-backed scope every page is dirty, so bits 0 to NPAGES - 1 are set
 * and nothing past them, in the last word or the guard word after it.
 */
TEST_F(two, unmap_with_bitmap_blocks_both_devices)
{
	const uint64_t words = (NPAGES + 63) / 64;
	uint64_t bits[(NPAGES + 63) / 64 + 1], unmapped, n;

	VID_ASSERT_OK(vid_dirty_op(self->ctx[0].container,
				   sizeof(struct vfio_iommu_type1_dirty_bitmap),
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	map_and_dma(_metadata, self, variant->late);

	memset(bits, 0, sizeof(bits));
	bits[words] = 0x0123456789abcdefULL;
	VID_ASSERT_OK(vid_unmap_bitmap(self->ctx[0].container, 0, IOVA, SIZE,
				       P, bits, words * 8, &unmapped));
	ASSERT_EQ(SIZE, unmapped);
	for (n = 0; n < words * 64; n++) {
		ASSERT_EQ(n < NPAGES, !!(bits[n / 64] & (1ULL << (n % 64))))
			TH_LOG("bit %llu", (unsigned long long)n);
	}
	ASSERT_EQ(0x0123456789abcdefULL, bits[words]);

	check_unreachable(_metadata, self);
	VID_ASSERT_UNMAP(self->ctx[0].container, IOVA + SIZE + P, P, P);
	VID_ASSERT_OK(vid_dirty_op(self->ctx[0].container,
				   sizeof(struct vfio_iommu_type1_dirty_bitmap),
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
}

/*
 * The module as the suite loads it (test_domain_per_group off): a group
 * whose IOMMU can share the container's domain joins it, and the domain
 * made for it alone is freed. The second edu group joins after the
 * mappings exist, so it reaches them only through the shared domain.
 * The helpers of "two" work on the "two" data inside.
 */
FIXTURE(joined) {
	struct two_data t;
	bool counted;	/* t.base was read */
	bool reloaded;
};

FIXTURE_SETUP(joined)
{
	struct two_data *t = &self->t;
	char val[8] = "";
	bool served;
	FILE *f;
	int i;

	for (i = 0; i < NDEV; i++)
		vid_ctx_init(&t->ctx[i]);
	t->buf = NULL;
	t->src = NULL;
	t->want = NULL;
	t->faults = 0;
	self->counted = false;
	self->reloaded = false;
	if (!vid_prepare(_metadata))
		return;
	if (vid_backend_intree())
		SKIP(return, "the domains are counted in this module's debugfs");
	for (i = 0; i < NDEV; i++)
		if (vid_edu_bdf_nth(i, t->bdf[i], sizeof(t->bdf[i])))
			SKIP(return, "fewer than %d edu devices in VID_EDU_BDFS",
			     NDEV);

	f = fopen(PARAM, "r");
	ASSERT_NE(NULL, f) TH_LOG("%s: %s", PARAM, strerror(errno));
	ASSERT_NE(NULL, fgets(val, sizeof(val), f));
	fclose(f);
	if (val[0] != 'N') {
		/* A "two" teardown did not restore it: load it as the suite does. */
		self->reloaded = true;
		VID_ASSERT_OK(vid_module_reload_ours("test_domain_per_group=0"));
	}

	VID_ASSERT_OK(vid_acct_read(&t->base));
	self->counted = true;
	t->buf = vid_alloc(SIZE, 0);
	t->want = vid_alloc(SIZE, 0);
	t->src = vid_alloc(P, 0);
	ASSERT_NE(NULL, t->buf);
	ASSERT_NE(NULL, t->want);
	ASSERT_NE(NULL, t->src);

	t->ctx[0].container = vid_open_container();
	ASSERT_LE(0, t->ctx[0].container);
	i = vid_device_group("pci", t->bdf[0]);
	ASSERT_LE(0, i);
	t->ctx[0].group = vid_open_group_id(t->ctx[0].container, i);
	ASSERT_LE(0, t->ctx[0].group);
	VID_ASSERT_OK(vid_set_iommu(t->ctx[0].container, VFIO_TYPE1v2_IOMMU,
				    VID_MOD_OURS, &served));
	ASSERT_TRUE(served) TH_LOG("%s did not take the container",
				   VID_MOD_OURS);
	VID_ASSERT_OK(vid_edu_open_bdf(&t->ctx[0], t->bdf[0], &t->edu[0]));
}

FIXTURE_TEARDOWN(joined)
{
	struct two_data *t = &self->t;
	int i;

	for (i = NDEV - 1; i >= 0; i--)
		vid_ctx_close(&t->ctx[i]);
	vid_free(t->buf, SIZE);
	vid_free(t->want, SIZE);
	vid_free(t->src, P);
	if (t->faults)
		fault_window_end();
	if (!self->counted)
		return;
	VID_EXPECT_ACCT(&t->base);
	if (!self->reloaded)
		return;
	EXPECT_EQ(0, vid_module_remove(VID_MOD_OURS, false));
	EXPECT_EQ(0, vid_module_load_ours());
}

/*
 * Device @i copies the page at IOVA_SRC (which the test filled with
 * pattern @seed) to IOVA + @at; the buffer must then differ from what
 * it held only there, by exactly those bytes.
 */
#define IOVA_SRC	(IOVA + SIZE + P)

static void copy_through(struct __test_metadata *_metadata,
			 struct two_data *t, int i, unsigned int seed,
			 uint64_t at)
{
	long bad;

	vid_fill_pattern(t->src, P, seed);
	VID_ASSERT_OK(vid_edu_dma(&t->edu[i], IOVA_SRC, 0, XFER, false));
	VID_ASSERT_OK(vid_edu_dma(&t->edu[i], IOVA + at, 0, XFER, true));
	memcpy(t->want + at, t->src, XFER);
	bad = vid_first_diff(t->buf, t->want, SIZE);
	ASSERT_EQ(-1, bad) TH_LOG("%s: byte %ld (page %ld): got 0x%02x want 0x%02x",
				  t->bdf[i], bad, bad / (long)P, t->buf[bad],
				  t->want[bad]);
}

/*
 * One domain, two groups: the second edu reaches what was mapped before
 * it came, an unmap takes the buffer from both devices, and when the
 * first group leaves, the domain stays for the second, with its mappings.
 */
TEST_F(joined, second_group_joins_existing_domain)
{
	struct two_data *t = &self->t;
	const uint64_t pages[] = { 0, NPAGES / 2, NPAGES - 1 };
	unsigned int k;
	long bad;

	memset(t->buf, 0x5a, SIZE);
	memset(t->want, 0x5a, SIZE);
	VID_ASSERT_OK(vid_map(t->ctx[0].container, IOVA, t->buf, SIZE,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_map(t->ctx[0].container, IOVA_SRC, t->src, P,
			      VFIO_DMA_MAP_FLAG_READ));
	ASSERT_EQ(1, vid_debugfs_state("domains"));
	ASSERT_EQ(1, vid_debugfs_state("iommu_groups"));

	VID_ASSERT_OK(add_dev(t, 1));
	ASSERT_EQ(1, vid_debugfs_state("domains"));
	ASSERT_EQ(2, vid_debugfs_state("iommu_groups"));
	ASSERT_EQ(2, vid_debugfs_state("mappings"));

	for (k = 0; k < ARRAY_SIZE(pages); k++) {
		copy_through(_metadata, t, 1, 30 + k, pages[k] * P + 0x800);
		copy_through(_metadata, t, 0, 40 + k, pages[k] * P);
	}

	VID_ASSERT_UNMAP(t->ctx[0].container, IOVA, SIZE, SIZE);
	memset(t->buf, 0xc3, SIZE);
	vid_fill_pattern(t->src, P, 50);
	VID_ASSERT_OK(vid_edu_dma(&t->edu[0], IOVA_SRC, 0, XFER, false));
	VID_ASSERT_OK(vid_edu_dma(&t->edu[1], IOVA_SRC, 0, XFER, false));
	blocked_write(_metadata, t, 0, IOVA);
	blocked_write(_metadata, t, 1, IOVA + SIZE - P);
	bad = vid_first_not(t->buf, SIZE, 0xc3);
	ASSERT_EQ(-1, bad) TH_LOG("byte %ld (page %ld) changed after the unmap",
				  bad, bad / (long)P);

	/* The first group, whose domain it was, leaves; edu 1 keeps it. */
	close(t->ctx[0].device);
	t->ctx[0].device = -1;
	close(t->ctx[0].group);
	t->ctx[0].group = -1;
	ASSERT_EQ(1, vid_debugfs_state("domains"));
	ASSERT_EQ(1, vid_debugfs_state("iommu_groups"));
	ASSERT_EQ(1, vid_debugfs_state("mappings"));

	memset(t->buf, 0x96, SIZE);
	memset(t->want, 0x96, SIZE);
	VID_ASSERT_OK(vid_map(t->ctx[0].container, IOVA, t->buf, SIZE,
			      VID_MAP_RW));
	for (k = 0; k < ARRAY_SIZE(pages); k++)
		copy_through(_metadata, t, 1, 60 + k, pages[k] * P + 0x300);

	VID_ASSERT_UNMAP(t->ctx[0].container, IOVA, SIZE, SIZE);
	VID_ASSERT_UNMAP(t->ctx[0].container, IOVA_SRC, P, P);
	ASSERT_EQ(0, vid_debugfs_state("mappings"));
}

TEST_HARNESS_MAIN
