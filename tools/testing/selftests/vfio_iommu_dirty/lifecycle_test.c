// SPDX-License-Identifier: GPL-2.0
/*
 * Who owns a container's memory when processes come and go: a process
 * exiting with mappings in place, a container fd handed to another process
 * (SCM_RIGHTS) that maps its own memory and exits before the container is
 * released, and fork with an open container. Whatever happens, every
 * pinned page is released once the container closes, and locked memory is
 * charged to the process whose memory is pinned. And the device's access
 * to a page ends with the unmap of its mapping.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define NPAGES	16

/* Wait for @pid; its exit status, or -1 if it did not exit normally. */
static int reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

FIXTURE(life) {
	struct vid_acct base;
	char *mem;
};

FIXTURE_SETUP(life)
{
	self->mem = NULL;
	if (!vid_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_acct_read(&self->base));
	self->mem = vid_alloc(NPAGES * VID_PAGE, 0x7e);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(life)
{
	if (self->mem)
		vid_free(self->mem, NPAGES * VID_PAGE);
	VID_EXPECT_ACCT(&self->base);
}

/* A process that exits with its mappings releases every pin. */
TEST_F(life, owner_exits_with_mappings)
{
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		struct vid_ctx ctx;
		char *mem = vid_alloc(NPAGES * VID_PAGE, 1);

		vid_ctx_init(&ctx);
		if (!mem || vid_ctx_open(&ctx, VFIO_TYPE1v2_IOMMU))
			_exit(2);
		if (vid_map(ctx.container, 0x100000, mem, NPAGES * VID_PAGE,
			    VID_MAP_RW))
			_exit(3);
		if (vid_vmlck_kb() != NPAGES * VID_PAGE_KB)
			_exit(4);
		_exit(0);	/* no unmap, no close */
	}
	ASSERT_EQ(0, reap(pid));
	vid_check_acct(_metadata, &self->base, true);
}

/*
 * A container handed to another process: the receiver maps its own
 * memory and is charged for it; it exits with the mapping in place; the
 * sender can still unmap it, and closing releases everything.
 */
TEST_F(life, container_fd_passed)
{
	struct vid_ctx ctx;
	int sv[2], status;
	uint64_t got;
	pid_t pid;

	vid_ctx_init(&ctx);
	VID_ASSERT_OK(vid_ctx_open(&ctx, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char *mem = vid_alloc(NPAGES * VID_PAGE, 2);
		int fd;

		close(sv[0]);
		/* Forget the inherited fds: use only what arrives. */
		vid_ctx_close(&ctx);
		fd = vid_recv_fd(sv[1]);
		if (fd < 0 || !mem)
			_exit(2);
		if (vid_map(fd, 0x200000, mem, NPAGES * VID_PAGE, VID_MAP_RW))
			_exit(3);
		_exit(vid_vmlck_kb() == NPAGES * VID_PAGE_KB ? 0 : 4);
	}
	close(sv[1]);
	VID_ASSERT_OK(vid_send_fd(sv[0], ctx.container));
	status = reap(pid);
	close(sv[0]);
	ASSERT_EQ(0, status);
	/* Not charged here: the memory was the child's. */
	ASSERT_EQ(self->base.vmlck_kb, vid_vmlck_kb());
	VID_ASSERT_OK(vid_unmap(ctx.container, 0x200000, NPAGES * VID_PAGE,
				&got));
	ASSERT_EQ(NPAGES * VID_PAGE, got);
	vid_ctx_close(&ctx);
	vid_check_acct(_metadata, &self->base, true);
}

/*
 * The original owner builds the container, maps its own memory, hands the
 * container and its group to another process and exits. The receiver
 * still reaches the mapping (unmaps it), maps its own memory, and closing
 * releases everything; the dead owner's memory was never charged here.
 */
TEST_F(life, owner_exits_after_passing)
{
	int sv[2], container, group;
	uint64_t got;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char *mem = vid_alloc(NPAGES * VID_PAGE, 4);
		struct vid_ctx ctx;

		close(sv[0]);
		vid_ctx_init(&ctx);
		if (!mem || vid_ctx_open(&ctx, VFIO_TYPE1v2_IOMMU))
			_exit(2);
		if (vid_map(ctx.container, 0x300000, mem, NPAGES * VID_PAGE,
			    VID_MAP_RW))
			_exit(3);
		if (vid_send_fd(sv[1], ctx.container) || vid_send_fd(sv[1], ctx.group))
			_exit(4);
		_exit(0);
	}
	close(sv[1]);
	container = vid_recv_fd(sv[0]);
	group = vid_recv_fd(sv[0]);
	ASSERT_EQ(0, reap(pid));
	close(sv[0]);
	ASSERT_LE(0, container);
	ASSERT_LE(0, group);
	ASSERT_EQ(self->base.vmlck_kb, vid_vmlck_kb());

	/* The dead owner's mapping is still there, and ours can join it. */
	VID_ASSERT_ERR(EEXIST, vid_map(container, 0x300000, self->mem,
				       VID_PAGE, VID_MAP_RW));
	VID_ASSERT_OK(vid_map(container, 0x500000, self->mem,
			      NPAGES * VID_PAGE, VID_MAP_RW));
	ASSERT_EQ(self->base.vmlck_kb + NPAGES * VID_PAGE_KB, vid_vmlck_kb());
	VID_ASSERT_OK(vid_unmap(container, 0x300000, NPAGES * VID_PAGE, &got));
	ASSERT_EQ(NPAGES * VID_PAGE, got);
	close(group);
	close(container);
	vid_check_acct(_metadata, &self->base, true);
}

/*
 * fork with an open container: the child maps through the inherited fd,
 * exits; the parent's own mapping keeps working and is charged to it.
 */
TEST_F(life, fork_with_open_container)
{
	struct vid_ctx ctx;
	uint64_t got;
	pid_t pid;

	vid_ctx_init(&ctx);
	VID_ASSERT_OK(vid_ctx_open(&ctx, VFIO_TYPE1v2_IOMMU));
	VID_ASSERT_OK(vid_map(ctx.container, 0x100000, self->mem,
			      NPAGES * VID_PAGE, VID_MAP_RW));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char *mem = vid_alloc(4 * VID_PAGE, 3);

		if (!mem || vid_map(ctx.container, 0x400000, mem,
				    4 * VID_PAGE, VID_MAP_RW))
			_exit(3);
		_exit(vid_vmlck_kb() == 4 * VID_PAGE_KB ? 0 : 4);
	}
	ASSERT_EQ(0, reap(pid));
	ASSERT_EQ(self->base.vmlck_kb + NPAGES * VID_PAGE_KB, vid_vmlck_kb());
	VID_ASSERT_OK(vid_unmap(ctx.container, 0, 1ULL << 32, &got));
	ASSERT_EQ((NPAGES + 4) * VID_PAGE, got);
	vid_ctx_close(&ctx);
	vid_check_acct(_metadata, &self->base, true);
}

/*
 * An unmap ends the device's access to the page before it returns: edu
 * has just written the page (the IOMMU caches its translation), the page
 * is unmapped alone (one run, one IOTLB flush, which nothing else of the
 * IOMMU driver's does), and edu's next write to it is blocked. The page
 * stays the process's, so a write that got through would show there.
 */
TEST_F(life, unmap_ends_device_access)
{
	const uint64_t src_iova = 0x1000000, dst_iova = 0x2000000;
	const size_t xfer = 2048;	/* below 4096: see vid_edu_dma() */
	uint8_t *src = (uint8_t *)self->mem;
	uint8_t *dst = (uint8_t *)self->mem + VID_PAGE;
	struct vid_edu edu;
	struct vid_ctx ctx;
	bool seen;
	long bad;
	int kmsg;

	VID_ASSERT_OK(vid_ctx_open(&ctx, VFIO_TYPE1v2_IOMMU));
	VID_ASSERT_OK(vid_edu_open(&ctx, &edu));
	vid_fill_pattern(src, VID_PAGE, 11);
	memset(dst, 0, VID_PAGE);
	VID_ASSERT_OK(vid_map(ctx.container, src_iova, src, VID_PAGE,
			      VFIO_DMA_MAP_FLAG_READ));
	VID_ASSERT_OK(vid_map(ctx.container, dst_iova, dst, VID_PAGE,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_edu_dma(&edu, src_iova, 0, xfer, false));
	VID_ASSERT_OK(vid_edu_dma(&edu, dst_iova, 0, xfer, true));
	ASSERT_EQ(-1, vid_first_diff(dst, src, xfer));

	VID_ASSERT_UNMAP(ctx.container, dst_iova, VID_PAGE, VID_PAGE);
	memset(dst, 0xc3, VID_PAGE);
	vid_fill_pattern(src, VID_PAGE, 12);
	VID_ASSERT_OK(vid_edu_dma(&edu, src_iova, 0, xfer, false));

	/* The blocked write's fault report, between the runner's markers. */
	vid_iommu_fault_settle();
	kmsg = vid_kmsg_open();
	ASSERT_LE(0, kmsg);
	VID_ASSERT_OK(vid_kmsg_write(VID_FAULT_BEGIN));
	VID_ASSERT_OK(vid_edu_dma(&edu, dst_iova, 0, xfer, true));
	seen = vid_kmsg_wait(kmsg, vid_iommu_fault_word(), 3000);
	usleep(300 * 1000);
	VID_ASSERT_OK(vid_kmsg_write(VID_FAULT_END));
	close(kmsg);
	bad = vid_first_not(dst, VID_PAGE, 0xc3);
	ASSERT_EQ(-1, bad) TH_LOG("byte %ld written after the unmap", bad);
	EXPECT_TRUE(seen) TH_LOG("no IOMMU fault reported for the write");

	VID_ASSERT_UNMAP(ctx.container, src_iova, VID_PAGE, VID_PAGE);
	vid_ctx_close(&ctx);
}

TEST_HARNESS_MAIN
