// SPDX-License-Identifier: GPL-2.0
/*
 * Tracepoints: every user-visible operation leaves one event in tracefs
 * with the container's id, the IOVA range, what it did and its errno.
 * The events are this module's own, so the test skips against in-tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define TRACEFS		"/sys/kernel/tracing"
#define EVENTS		TRACEFS "/events/vfio_iommu_dirty/enable"
#define IOVA		0x3000000ULL

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -EIO;
}

/* The whole trace buffer as one string (caller frees), or NULL. */
static char *read_trace(void)
{
	FILE *f = fopen(TRACEFS "/trace", "r");
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	size_t n;

	if (!f || !buf) {
		if (f)
			fclose(f);
		free(buf);
		return NULL;
	}
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 == cap) {
			char *more = realloc(buf, cap * 2);

			if (!more)
				break;
			buf = more;
			cap *= 2;
		}
	}
	buf[len] = 0;
	fclose(f);
	return buf;
}

/*
 * Find, at or after *@pos, a line with event @event containing every
 * string of @parts (NULL-terminated); advance *@pos past it.
 */
static bool find_event(const char *trace, const char **pos,
		       const char *event, const char *const *parts)
{
	const char *p = *pos ? *pos : trace;

	while ((p = strstr(p, event))) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		bool all = true;
		int i;

		for (i = 0; parts[i] && all; i++) {
			const char *hit = strstr(p, parts[i]);

			all = hit && (size_t)(hit - p) < len;
		}
		if (all) {
			*pos = p + len;
			return true;
		}
		p += len;
	}
	return false;
}

/* "@key=0x@val" into @buf: a field whose value depends on the page size. */
static const char *field(char *buf, size_t len, const char *key,
			 unsigned long long val)
{
	snprintf(buf, len, "%s=0x%llx", key, val);
	return buf;
}

/* "pgshift=12" for 4 KiB pages, "pgshift=14" for 16 KiB. */
static const char *shift_field(char *buf, size_t len)
{
	snprintf(buf, len, "pgshift=%d", __builtin_ctzl(VID_PAGE));
	return buf;
}

static const char *const start[] = { "start", "mappings=1", "ret=0", NULL };

static const char *const stop[] = { "stop", "mappings=0", NULL };

FIXTURE(trace) {
	struct vid_ctx ctx;
	struct vid_acct base;
	char *mem;
};

FIXTURE_SETUP(trace)
{
	vid_ctx_init(&self->ctx);
	self->mem = NULL;
	if (!vid_prepare(_metadata))
		return;
	if (vid_backend_intree())
		SKIP(return, "tracepoints are this module's own");
	if (access(EVENTS, W_OK))
		SKIP(return, "no tracefs at %s", TRACEFS);
	VID_ASSERT_OK(vid_acct_read(&self->base));
	VID_ASSERT_OK(write_file(TRACEFS "/trace", ""));
	VID_ASSERT_OK(write_file(EVENTS, "1"));
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	self->mem = vid_alloc(4 * VID_PAGE, 0x12);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(trace)
{
	write_file(EVENTS, "0");
	vid_ctx_close(&self->ctx);
	if (self->mem)
		vid_free(self->mem, 4 * VID_PAGE);
	VID_EXPECT_ACCT(&self->base);
}

TEST_F(trace, operations_leave_events)
{
	int fd = self->ctx.container;
	const char *pos = NULL;
	uint64_t bits, got;
	char f[5][40], *trace;
	/* The fields each event must carry, in the order of the test. */
	const char *const map_ok[] = {
		"iova=0x3000000", field(f[0], 40, "size", 4 * VID_PAGE),
		field(f[4], 40, "done", 4 * VID_PAGE), "ret=0", NULL,
	};
	const char *const map_eexist[] = {
		field(f[1], 40, "size", VID_PAGE), "ret=-17", NULL,
	};
	/* GET_BITMAP's done is its page size. */
	const char *const get[] = {
		"iova=0x3000000", f[0], field(f[2], 40, "done", VID_PAGE),
		"ret=0", NULL,
	};
	const char *const unmap_bm[] = { f[0], f[4], "ret=0", NULL };
	const char *const run_all[] = {
		"iova=0x3000000", "npages=4", shift_field(f[3], 40), NULL,
	};
	const char *const unmap[] = { f[1], "done=0x0", "ret=0", NULL };

	VID_ASSERT_OK(vid_map(fd, IOVA, self->mem, 4 * VID_PAGE, VID_MAP_RW));
	VID_ASSERT_ERR(EEXIST, vid_map(fd, IOVA, self->mem, VID_PAGE,
				       VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, IOVA, 4 * VID_PAGE, VID_PAGE,
				     &bits, sizeof(bits)));
	VID_ASSERT_OK(vid_unmap_bitmap(fd, 0, IOVA, 4 * VID_PAGE, VID_PAGE,
				       &bits, sizeof(bits), &got));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
	VID_ASSERT_OK(vid_unmap(fd, IOVA, VID_PAGE, &got));

	trace = read_trace();
	ASSERT_NE(NULL, trace);
	EXPECT_TRUE(find_event(trace, &pos, "vid_map:", map_ok));
	EXPECT_TRUE(find_event(trace, &pos, "vid_map:", map_eexist));
	EXPECT_TRUE(find_event(trace, &pos, "vid_dirty_tracking:", start));
	/* edu is IOMMU-backed: every page of the mapping, one run. */
	EXPECT_TRUE(find_event(trace, &pos, "vid_dirty_run:", run_all));
	EXPECT_TRUE(find_event(trace, &pos, "vid_get_bitmap:", get));
	EXPECT_TRUE(find_event(trace, &pos, "vid_unmap_bitmap:", unmap_bm));
	EXPECT_TRUE(find_event(trace, &pos, "vid_dirty_tracking:", stop));
	EXPECT_TRUE(find_event(trace, &pos, "vid_unmap:", unmap));
	if (_metadata->exit_code)
		TH_LOG("trace:\n%s", trace);
	free(trace);
}

/*
 * In pinned-page scope a report's runs are exactly the pages the device
 * wrote: the device writes pages 1-2 and 5 of 8, and the report emits
 * two runs and nothing else; the next report, with nothing written,
 * emits none.
 */
TEST_F(trace, dirty_runs_are_the_written_pages)
{
	char f[3][40];
	const char *const run12[] = {
		field(f[0], 40, "iova", IOVA + VID_PAGE), "npages=2",
		shift_field(f[2], 40), NULL,
	};
	const char *const run5[] = {
		field(f[1], 40, "iova", IOVA + 5 * VID_PAGE), "npages=1", f[2],
		NULL,
	};
	struct vid_ctx emu;
	const char *pos = NULL;
	uint64_t bits = 0;
	char *trace, *mem;
	int fd;

	vid_ctx_init(&emu);
	if (!vid_emu_prepare(_metadata) ||
	    !vid_emu_open(_metadata, &emu, VFIO_TYPE1v2_IOMMU))
		return;
	fd = emu.container;
	mem = vid_alloc(8 * VID_PAGE, 0);
	ASSERT_NE(NULL, mem);
	VID_ASSERT_OK(vid_map(fd, IOVA, mem, 8 * VID_PAGE, VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	VID_ASSERT_OK(vid_emu_rw(emu.device, IOVA + VID_PAGE, mem, 2 * VID_PAGE,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(vid_emu_rw(emu.device, IOVA + 5 * VID_PAGE, mem, 8,
				 VID_EMU_RW_WRITE));
	VID_ASSERT_OK(write_file(TRACEFS "/trace", ""));
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, IOVA, 8 * VID_PAGE, VID_PAGE,
				     &bits, sizeof(bits)));
	EXPECT_EQ(0x26ULL, bits);
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, IOVA, 8 * VID_PAGE, VID_PAGE,
				     &bits, sizeof(bits)));
	EXPECT_EQ(0ULL, bits);

	trace = read_trace();
	ASSERT_NE(NULL, trace);
	EXPECT_TRUE(find_event(trace, &pos, "vid_dirty_run:", run12));
	EXPECT_TRUE(find_event(trace, &pos, "vid_dirty_run:", run5));
	/* Nothing else: not in the first report, nothing in the second. */
	EXPECT_EQ(NULL, strstr(pos ? pos : trace, "vid_dirty_run:"));
	if (_metadata->exit_code)
		TH_LOG("trace:\n%s", trace);
	free(trace);
	VID_ASSERT_OK(vid_dirty_op(fd, 8, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
	vid_ctx_close(&emu);
	vid_free(mem, 8 * VID_PAGE);
}

/* A container released while tracking says that tracking stopped. */
TEST_F(trace, release_while_tracking_stops)
{
	static const char *const start1[] = { "start", "mappings=1", NULL };
	/* The last group's detach removed the mapping before the release. */
	static const char *const stop1[] = { "stop", "mappings=0", "ret=0",
					     NULL };
	const char *pos = NULL;
	struct vid_ctx emu;
	char *trace;

	vid_ctx_init(&emu);
	if (!vid_emu_prepare(_metadata) ||
	    !vid_emu_open(_metadata, &emu, VFIO_TYPE1v2_IOMMU))
		return;
	VID_ASSERT_OK(vid_map(emu.container, IOVA, self->mem, VID_PAGE,
			      VID_MAP_RW));
	VID_ASSERT_OK(write_file(TRACEFS "/trace", ""));
	VID_ASSERT_OK(vid_dirty_op(emu.container, 8,
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	vid_ctx_close(&emu);

	trace = read_trace();
	ASSERT_NE(NULL, trace);
	EXPECT_TRUE(find_event(trace, &pos, "vid_dirty_tracking:", start1));
	EXPECT_TRUE(find_event(trace, &pos, "vid_dirty_tracking:", stop1));
	if (_metadata->exit_code)
		TH_LOG("trace:\n%s", trace);
	free(trace);
}

TEST_HARNESS_MAIN
