// SPDX-License-Identifier: GPL-2.0
/*
 * VFIO_IOMMU_GET_INFO capabilities of a type1 backend: the chain itself,
 * the argsz protocol (too small: argsz says what is needed and nothing is
 * written past the caller's argsz), DMA_AVAIL against dma_entry_limit, and
 * IOVA_RANGE against what MAP_DMA accepts.
 *
 * Expected values follow vfio_iommu_type1_get_info() of Linux 6.12.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define INFO_MINSZ	(offsetof(struct vfio_iommu_type1_info, iova_pgsizes) + \
			 sizeof(uint64_t))
#define INFO_BUF	4096
#define POISON		0xa5

/* GET_INFO into @buf with the given argsz; 0 or -errno. */
static int get_info(int fd, void *buf, uint32_t argsz)
{
	struct vfio_iommu_type1_info *info = buf;

	info->argsz = argsz;
	return ioctl(fd, VFIO_IOMMU_GET_INFO, buf) ? -errno : 0;
}

/* Find capability @id in a reply buffer of @len bytes, or NULL. */
static struct vfio_info_cap_header *find_cap(void *buf, size_t len,
					     uint16_t id)
{
	struct vfio_iommu_type1_info *info = buf;
	uint32_t off = info->cap_offset;
	int hops = 0;

	while (off && off + sizeof(struct vfio_info_cap_header) <= len &&
	       hops++ < 64) {
		struct vfio_info_cap_header *h = (void *)((char *)buf + off);

		if (h->id == id)
			return h;
		off = h->next;
	}
	return NULL;
}

static const char *module_param_path(const char *param)
{
	static char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s/parameters/%s",
		 vid_backend_module(), param);
	return path;
}

static int read_uint(const char *path, unsigned int *val)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%u", val) == 1;
	fclose(f);
	return ok ? 0 : -EIO;
}

static int write_uint(const char *path, unsigned int val)
{
	FILE *f = fopen(path, "w");
	int ret = 0;

	if (!f)
		return -errno;
	if (fprintf(f, "%u\n", val) < 0)
		ret = -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

FIXTURE(info) {
	struct vid_ctx ctx;
	struct vid_acct base;
	unsigned char *buf;
	void *mem;
};

FIXTURE_SETUP(info)
{
	vid_ctx_init(&self->ctx);
	self->buf = NULL;
	self->mem = NULL;
	if (!vid_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_acct_read(&self->base));
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	self->buf = malloc(INFO_BUF);
	ASSERT_NE(NULL, self->buf);
	self->mem = vid_alloc(4 * VID_PAGE, 0x5a);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(info)
{
	vid_ctx_close(&self->ctx);
	if (self->mem)
		vid_free(self->mem, 4 * VID_PAGE);
	free(self->buf);
	VID_EXPECT_ACCT(&self->base);
}

/* Size of the full reply, as a call with no room for the chain tells. */
static uint32_t full_size(struct __test_metadata *_metadata, int fd,
			  void *buf)
{
	struct vfio_iommu_type1_info *info = buf;

	EXPECT_EQ(0, get_info(fd, buf, sizeof(*info)));
	return info->argsz;
}

/*
 * A big enough argsz gets the whole chain right after the fixed part;
 * argsz is left as the caller set it.
 */
TEST_F(info, caps_chain)
{
	struct vfio_iommu_type1_info *info = (void *)self->buf;
	uint32_t full = full_size(_metadata, self->ctx.container, self->buf);
	uint32_t i;

	ASSERT_LT(sizeof(*info), full);
	memset(self->buf, POISON, INFO_BUF);
	VID_ASSERT_OK(get_info(self->ctx.container, self->buf, INFO_BUF));
	ASSERT_EQ(INFO_BUF, info->argsz);
	ASSERT_TRUE(info->flags & VFIO_IOMMU_INFO_PGSIZES);
	ASSERT_TRUE(info->flags & VFIO_IOMMU_INFO_CAPS);
	ASSERT_EQ(sizeof(*info), info->cap_offset);
	ASSERT_NE(NULL, find_cap(self->buf, full,
				 VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL));
	ASSERT_NE(NULL, find_cap(self->buf, full,
				 VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE));
	/* Nothing is written past the chain. */
	for (i = full; i < INFO_BUF; i++)
		ASSERT_EQ(POISON, self->buf[i]);
}

/*
 * For every argsz from the minimum to past the full reply: the call works,
 * nothing at or beyond argsz is touched, and when the chain does not fit,
 * argsz reports the full size and cap_offset stays 0.
 */
TEST_F(info, argsz_every_size)
{
	struct vfio_iommu_type1_info *info = (void *)self->buf;
	uint32_t full = full_size(_metadata, self->ctx.container, self->buf);
	uint32_t sz;

	ASSERT_LT(sizeof(*info), full);

	for (sz = INFO_MINSZ; sz <= full + 16; sz++) {
		uint32_t i;

		memset(self->buf, POISON, INFO_BUF);
		VID_ASSERT_OK(get_info(self->ctx.container, self->buf, sz));
		for (i = sz; i < full + 64; i++) {
			ASSERT_EQ(POISON, self->buf[i])
				TH_LOG("argsz %u: byte %u written", sz, i);
		}
		ASSERT_TRUE(info->flags & VFIO_IOMMU_INFO_CAPS);
		/* Too small: argsz tells what is needed; else it is kept. */
		ASSERT_EQ(sz < full ? full : sz, info->argsz);
		if (sz < full && sz >= sizeof(*info))
			ASSERT_EQ(0, info->cap_offset);
		if (sz >= full)
			ASSERT_EQ(sizeof(*info), info->cap_offset);
	}
}

/* DMA_AVAIL counts down with each mapping and back up with each unmap. */
TEST_F(info, dma_avail_tracks_mappings)
{
	struct vfio_iommu_type1_info_dma_avail *cap;
	uint32_t avail0;
	int i;

	VID_ASSERT_OK(get_info(self->ctx.container, self->buf, INFO_BUF));
	cap = (void *)find_cap(self->buf, INFO_BUF,
			       VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
	ASSERT_NE(NULL, cap);
	avail0 = cap->avail;

	for (i = 0; i < 3; i++)
		VID_ASSERT_OK(vid_map(self->ctx.container, 0x100000 + i * 0x10000,
				      (char *)self->mem + i * VID_PAGE, VID_PAGE,
				      VID_MAP_RW));
	VID_ASSERT_OK(get_info(self->ctx.container, self->buf, INFO_BUF));
	cap = (void *)find_cap(self->buf, INFO_BUF,
			       VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
	ASSERT_NE(NULL, cap);
	ASSERT_EQ(avail0 - 3, cap->avail);

	VID_ASSERT_UNMAP(self->ctx.container, 0x100000, 0x30000, 3 * VID_PAGE);
	VID_ASSERT_OK(get_info(self->ctx.container, self->buf, INFO_BUF));
	cap = (void *)find_cap(self->buf, INFO_BUF,
			       VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
	ASSERT_EQ(avail0, cap->avail);
}

/*
 * dma_entry_limit bounds the mappings of containers opened after it is
 * set: past it MAP_DMA fails with ENOSPC and changes nothing.
 */
TEST_F(info, dma_entry_limit)
{
	const char *path = module_param_path("dma_entry_limit");
	struct vfio_iommu_type1_info_dma_avail *cap;
	struct vid_ctx ctx;
	unsigned int saved;
	int ret;

	VID_ASSERT_OK(read_uint(path, &saved));
	vid_ctx_close(&self->ctx);
	VID_ASSERT_OK(write_uint(path, 2));
	vid_ctx_init(&ctx);
	ret = vid_ctx_open(&ctx, VFIO_TYPE1v2_IOMMU);
	write_uint(path, saved);
	VID_ASSERT_OK(ret);

	VID_ASSERT_OK(vid_map(ctx.container, 0x100000, self->mem, VID_PAGE,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_map(ctx.container, 0x200000,
			      (char *)self->mem + VID_PAGE, VID_PAGE,
			      VID_MAP_RW));
	VID_ASSERT_ERR(ENOSPC, vid_map(ctx.container, 0x300000,
				       (char *)self->mem + 2 * VID_PAGE,
				       VID_PAGE, VID_MAP_RW));
	VID_ASSERT_OK(get_info(ctx.container, self->buf, INFO_BUF));
	cap = (void *)find_cap(self->buf, INFO_BUF,
			       VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
	ASSERT_NE(NULL, cap);
	ASSERT_EQ(0, cap->avail);
	/* The refused IOVA is still free; freeing one slot allows a map. */
	VID_ASSERT_UNMAP(ctx.container, 0x300000, VID_PAGE, 0);
	VID_ASSERT_UNMAP(ctx.container, 0x100000, VID_PAGE, VID_PAGE);
	VID_ASSERT_OK(vid_map(ctx.container, 0x300000,
			      (char *)self->mem + 2 * VID_PAGE, VID_PAGE,
			      VID_MAP_RW));
	vid_ctx_close(&ctx);
}

/*
 * IOVA_RANGE lists sorted, disjoint ranges that leave out the MSI window;
 * MAP_DMA accepts the first and last page of a range and refuses the page
 * just outside it.
 */
TEST_F(info, iova_ranges_match_map)
{
	struct vfio_iommu_type1_info_cap_iova_range *cap;
	uint64_t msi_start, msi_last;
	struct vfio_iova_range *r;
	uint32_t i;

	/* The group's MSI window: VT-d's, or an Arm SMMU's software one. */
	VID_ASSERT_OK(vid_msi_window(vid_edu_group(), &msi_start, &msi_last));
	VID_ASSERT_OK(get_info(self->ctx.container, self->buf, INFO_BUF));
	cap = (void *)find_cap(self->buf, INFO_BUF,
			       VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
	ASSERT_NE(NULL, cap);
	ASSERT_LE(2, cap->nr_iovas);
	r = cap->iova_ranges;
	for (i = 0; i < cap->nr_iovas; i++) {
		ASSERT_LT(r[i].start, r[i].end);
		if (i)
			ASSERT_LT(r[i - 1].end + 1, r[i].start);
		/* The MSI window lies wholly outside every range. */
		ASSERT_TRUE(r[i].end < msi_start || r[i].start > msi_last);
	}

	/* First range: its first page maps (page 0 is fine for an IOMMU). */
	VID_ASSERT_OK(vid_map(self->ctx.container, r[0].start, self->mem,
			      VID_PAGE, VID_MAP_RW));
	VID_ASSERT_UNMAP(self->ctx.container, r[0].start, VID_PAGE, VID_PAGE);
	/* Its last page maps, the next one does not. */
	VID_ASSERT_OK(vid_map(self->ctx.container, r[0].end + 1 - VID_PAGE,
			      self->mem, VID_PAGE, VID_MAP_RW));
	VID_ASSERT_ERR(EINVAL, vid_map(self->ctx.container, r[0].end + 1,
				       (char *)self->mem + VID_PAGE, VID_PAGE,
				       VID_MAP_RW));
	VID_ASSERT_UNMAP(self->ctx.container, r[0].end + 1 - VID_PAGE,
			 VID_PAGE, VID_PAGE);
	/* A mapping straddling the end of the range is refused too. */
	VID_ASSERT_ERR(EINVAL, vid_map(self->ctx.container,
				       r[0].end + 1 - VID_PAGE, self->mem,
				       2 * VID_PAGE, VID_MAP_RW));
	VID_ASSERT_UNMAP(self->ctx.container, r[0].end + 1 - VID_PAGE,
			 2 * VID_PAGE, 0);
}

TEST_HARNESS_MAIN
