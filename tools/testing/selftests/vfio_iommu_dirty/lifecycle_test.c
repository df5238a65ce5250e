// SPDX-License-Identifier: GPL-2.0
/*
 * Who owns a container's memory when processes come and go: a process
 * exiting with mappings in place, a container fd handed to another process
 * (SCM_RIGHTS) that maps its own memory and exits before the container is
 * released, and fork with an open container. Whatever happens, every
 * pinned page is released once the container closes, and locked memory is
 * charged to the process whose memory is pinned.
 */
#include <errno.h>
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

TEST_HARNESS_MAIN
