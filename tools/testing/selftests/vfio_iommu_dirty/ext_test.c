// SPDX-License-Identifier: GPL-2.0
/*
 * Type1 extensions beyond plain MAP/UNMAP: what CHECK_EXTENSION announces
 * once a backend serves the container, VFIO_DMA_UNMAP_FLAG_ALL, and the
 * vaddr update pair (VFIO_DMA_UNMAP_FLAG_VADDR / VFIO_DMA_MAP_FLAG_VADDR)
 * that lets a new process take over pinned mappings, with the locked
 * memory charge moving to it.
 *
 * Expected values follow vfio_iommu_type1.c of Linux 6.12.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
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

/* Process B of the vaddr_update_* tests with another owner, below. */
struct owner {
	pid_t pid;
	int cmd;		/* A writes commands here */
	int reply;		/* and reads B's answers here */
	int memfd;
	char *mem;		/* A's mapping of the memfd */
};

static void owner_init(struct owner *o)
{
	o->pid = 0;
	o->cmd = -1;
	o->reply = -1;
	o->memfd = -1;
	o->mem = MAP_FAILED;
}

static void owner_cleanup(struct owner *o);

FIXTURE(ext) {
	struct vid_ctx ctx;
	struct vid_acct base;
	char *mem;
	struct owner owner;
};

FIXTURE_SETUP(ext)
{
	vid_ctx_init(&self->ctx);
	self->mem = NULL;
	owner_init(&self->owner);
	if (!vid_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_acct_read(&self->base));
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	self->mem = vid_alloc(NPAGES * VID_PAGE, 0x3c);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(ext)
{
	/* B holds the container too: it must be gone before the count. */
	owner_cleanup(&self->owner);
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

/* debugfs "state" @key of the only container, unless in-tree serves it. */
static void expect_state(struct __test_metadata *_metadata, const char *key,
			 long long want)
{
	if (vid_backend_intree())
		return;
	EXPECT_EQ(want, vid_debugfs_state(key)) TH_LOG("debugfs %s", key);
}

/*
 * Attaching a group while a vaddr is invalid is refused with EBUSY, as
 * in-tree (vfio_iommu_type1_attach_group() checks vaddr_invalid_count
 * first, whatever the group's type: attaching may have to pin), and it
 * changes nothing: the counters, the module's view, the mapping that edu
 * still reaches. Once the vaddr is set again the same group attaches.
 * The group is vid_emu's emulated one (kills a backend that forgets the
 * check in vid_attach_group()).
 */
TEST_F(ext, attach_while_vaddr_invalid)
{
	int fd = self->ctx.container, egroup, efd;
	char *src = self->mem, *dst = self->mem + VID_PAGE;
	struct vid_acct mapped;
	struct vid_edu edu;
	uint8_t want[2048];
	uint64_t got;

	if (!vid_emu_prepare(_metadata))
		return;
	egroup = vid_device_group("platform", VID_EMU_DEV0);
	ASSERT_LE(0, egroup);
	VID_ASSERT_OK(map_pages(&self->ctx, self->mem, 0, 2));
	VID_ASSERT_OK(vid_edu_open(&self->ctx, &edu));
	VID_ASSERT_OK(vid_acct_read(&mapped));
	VID_ASSERT_OK(vid_unmap_raw(fd, UNMAP_SZ, VFIO_DMA_UNMAP_FLAG_VADDR,
				    0x100000, 2 * VID_PAGE, &got));
	ASSERT_EQ(2 * VID_PAGE, got);

	VID_ASSERT_ERR(EBUSY, vid_open_group_id(fd, egroup));
	vid_check_acct(_metadata, &mapped, true);
	expect_state(_metadata, "emulated_groups", 0);
	expect_state(_metadata, "iommu_groups", 1);
	expect_state(_metadata, "vaddr_invalid", 1);
	expect_state(_metadata, "locked_vm_pages", 2);
	expect_state(_metadata, "iommu_mapped_bytes", 2 * VID_PAGE);
	/* The mapping is whole: edu copies page 0 to page 1 exactly. */
	vid_fill_pattern(want, sizeof(want), 41);
	memcpy(src, want, sizeof(want));
	memset(dst, 0, VID_PAGE);
	VID_ASSERT_OK(vid_edu_dma(&edu, 0x100000, 0, sizeof(want), false));
	VID_ASSERT_OK(vid_edu_dma(&edu, 0x100000 + VID_PAGE, 0, sizeof(want),
				  true));
	ASSERT_EQ(-1, vid_first_diff((uint8_t *)dst, want, sizeof(want)));
	ASSERT_EQ(-1, vid_first_not((uint8_t *)dst + sizeof(want),
				    VID_PAGE - sizeof(want), 0));
	/* Still invalid: the failed attach did not end the update. */
	VID_ASSERT_ERR(EEXIST, map_pages(&self->ctx, self->mem, 0, 1));

	VID_ASSERT_OK(vid_map_raw(fd, MAP_SZ, VFIO_DMA_MAP_FLAG_VADDR,
				  (uintptr_t)self->mem, 0x100000,
				  2 * VID_PAGE));
	efd = vid_open_group_id(fd, egroup);
	ASSERT_LE(0, efd) TH_LOG("emulated group: %s", strerror(-efd));
	expect_state(_metadata, "emulated_groups", 1);
	expect_state(_metadata, "vaddr_invalid", 0);
	vid_check_acct(_metadata, &mapped, true);
	close(efd);
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

/*
 * A vaddr update from another process. The test (process A) maps NPAGES
 * of a memfd, invalidates the vaddr and forks B, which maps the same memfd
 * at an address of its own and then does what A asks over a pipe: one
 * struct owner_cmd in, one long (0, -errno or a value) back. B exits when
 * A's end of the pipe closes. An update pins nothing anew (the device
 * keeps the pages pinned at MAP time), so B's new address must reach the
 * same pages, as QEMU's shared guest RAM does across exec: hence a memfd.
 */
enum owner_op {
	OWNER_SET_VADDR,	/* MAP_FLAG_VADDR with B's address */
	OWNER_LIMIT,		/* RLIMIT_MEMLOCK: VmLck + arg pages */
	OWNER_FILL,		/* fill page 0 with pattern arg */
	OWNER_CMP,		/* first byte of page 1 not pattern arg */
};

struct owner_cmd {
	int op;
	long arg;
};

#define OWNER_IOVA	0x100000ULL
#define OWNER_SIZE	(NPAGES * VID_PAGE)
/* Bytes edu copies (vid_edu_dma() takes less than its 4 KiB buffer). */
#define OWNER_DMA	2048

static long owner_do(int container, char *mem, const struct owner_cmd *c)
{
	uint8_t want[OWNER_DMA];
	struct rlimit lim;
	long kb;

	switch (c->op) {
	case OWNER_SET_VADDR:
		return vid_map_raw(container, MAP_SZ, VFIO_DMA_MAP_FLAG_VADDR,
				   (uintptr_t)mem, OWNER_IOVA, OWNER_SIZE);
	case OWNER_LIMIT:
		kb = vid_vmlck_kb();
		if (kb < 0)
			return kb;
		if (getrlimit(RLIMIT_MEMLOCK, &lim))
			return -errno;
		lim.rlim_cur = kb * 1024 + c->arg * VID_PAGE;
		return setrlimit(RLIMIT_MEMLOCK, &lim) ? -errno : 0;
	case OWNER_FILL:
		vid_fill_pattern((uint8_t *)mem, OWNER_DMA, c->arg);
		return 0;
	case OWNER_CMP:
		vid_fill_pattern(want, sizeof(want), c->arg);
		return vid_first_diff((uint8_t *)mem + VID_PAGE, want,
				      sizeof(want));
	}
	return -EINVAL;
}

/* B: its own mapping of the memfd, then A's commands until EOF. */
static void owner_child(int container, struct owner *o, int cmd, int reply,
			bool drop_cap)
{
	struct owner_cmd c;
	long ret;
	char *mem;

	if (drop_cap && vid_drop_cap_ipc_lock())
		_exit(2);
	mem = mmap(NULL, OWNER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		   o->memfd, 0);
	/* B reaches the memory only through an address A never used. */
	if (mem == MAP_FAILED || mem == o->mem ||
	    munmap(o->mem, OWNER_SIZE))
		_exit(3);
	while (read(cmd, &c, sizeof(c)) == sizeof(c)) {
		ret = owner_do(container, mem, &c);
		if (write(reply, &ret, sizeof(ret)) != sizeof(ret))
			_exit(4);
	}
	_exit(0);
}

/* Start B; 0 or -errno. */
static int owner_start(int container, struct owner *o, bool drop_cap)
{
	int cmd[2], reply[2];

	if (pipe(cmd))
		return -errno;
	if (pipe(reply)) {
		close(cmd[0]);
		close(cmd[1]);
		return -errno;
	}
	o->pid = fork();
	if (!o->pid) {
		close(cmd[1]);
		close(reply[0]);
		owner_child(container, o, cmd[0], reply[1], drop_cap);
	}
	close(cmd[0]);
	close(reply[1]);
	o->cmd = cmd[1];
	o->reply = reply[0];
	if (o->pid < 0) {
		close(o->cmd);
		close(o->reply);
		o->cmd = -1;
		o->reply = -1;
		return -EAGAIN;
	}
	return 0;
}

/* Have B run @op with @arg: its answer, or -EPIPE if B is gone. */
static long owner_run(struct owner *o, int op, long arg)
{
	struct owner_cmd c = { .op = op, .arg = arg };
	long ret;

	if (write(o->cmd, &c, sizeof(c)) != sizeof(c) ||
	    read(o->reply, &ret, sizeof(ret)) != sizeof(ret))
		return -EPIPE;
	return ret;
}

/* Close the pipe, so that B exits, and reap it: its exit status or -1. */
static int owner_stop(struct owner *o)
{
	int st;

	if (o->cmd >= 0)
		close(o->cmd);
	if (o->reply >= 0)
		close(o->reply);
	o->cmd = -1;
	o->reply = -1;
	if (o->pid <= 0 || waitpid(o->pid, &st, 0) != o->pid ||
	    !WIFEXITED(st))
		return -1;
	o->pid = 0;
	return WEXITSTATUS(st);
}

/*
 * A maps NPAGES of a memfd at OWNER_IOVA (charged to A: VmLck rises by
 * NPAGES pages), invalidates the vaddr and starts B.
 */
static int owner_setup(struct vid_ctx *ctx, struct owner *o, bool drop_cap)
{
	uint64_t got;
	int ret;

	o->memfd = memfd_create("vid-owner", MFD_CLOEXEC);
	if (o->memfd < 0)
		return -errno;
	if (ftruncate(o->memfd, OWNER_SIZE))
		return -errno;
	o->mem = mmap(NULL, OWNER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      o->memfd, 0);
	if (o->mem == MAP_FAILED)
		return -errno;
	memset(o->mem, 0x6b, OWNER_SIZE);
	ret = vid_map(ctx->container, OWNER_IOVA, o->mem, OWNER_SIZE,
		      VID_MAP_RW);
	if (ret)
		return ret;
	ret = vid_unmap_raw(ctx->container, UNMAP_SZ,
			    VFIO_DMA_UNMAP_FLAG_VADDR, OWNER_IOVA,
			    OWNER_SIZE, &got);
	if (ret)
		return ret;
	if (got != OWNER_SIZE)
		return -EIO;
	return owner_start(ctx->container, o, drop_cap);
}

static void owner_cleanup(struct owner *o)
{
	owner_stop(o);
	if (o->mem != MAP_FAILED)
		munmap(o->mem, OWNER_SIZE);
	if (o->memfd >= 0)
		close(o->memfd);
	owner_init(o);
}

/* B's VmLck in kB, from /proc/B/status. */
static long owner_vmlck_kb(struct owner *o)
{
	return vid_proc_status_kb(o->pid, "VmLck");
}

/*
 * edu copies page 0 of the mapping to page 1 (through its buffer): 0 or
 * -errno.
 */
static int owner_edu_copy(struct vid_edu *edu)
{
	int ret = vid_edu_dma(edu, OWNER_IOVA, 0, OWNER_DMA, false);

	return ret ?: vid_edu_dma(edu, OWNER_IOVA + VID_PAGE, 0,
				  OWNER_DMA, true);
}

/*
 * Another process (B, say a new QEMU) sets the vaddr: the whole charge
 * of the mapping moves from A's locked_vm to B's, the device goes on
 * reaching the same pages (now B's memory), and unmapping the mapping,
 * even from A, gives the charge back to B.
 */
TEST_F(ext, vaddr_update_moves_charge)
{
	long kb = NPAGES * VID_PAGE_KB, b0;
	struct vid_acct mapped, now;
	struct owner *o = &self->owner;
	struct vid_edu edu;

	VID_ASSERT_OK(owner_setup(&self->ctx, o, false));
	VID_ASSERT_OK(vid_acct_read(&mapped));
	ASSERT_EQ(self->base.vmlck_kb + kb, mapped.vmlck_kb);
	/* A fork starts with nothing locked. */
	b0 = owner_vmlck_kb(o);
	ASSERT_EQ(0, b0);

	ASSERT_EQ(0, owner_run(o, OWNER_SET_VADDR, 0));
	EXPECT_EQ(b0 + kb, owner_vmlck_kb(o));
	VID_ASSERT_OK(vid_acct_read(&now));
	EXPECT_EQ(self->base.vmlck_kb, now.vmlck_kb);
	/* Nothing was pinned or unpinned: the pages stay as they were. */
	EXPECT_EQ(mapped.pinned, now.pinned);
	/* Valid now: setting it again is refused, and moves nothing. */
	VID_ASSERT_ERR(EINVAL, vid_map_raw(self->ctx.container, MAP_SZ,
					   VFIO_DMA_MAP_FLAG_VADDR,
					   (uintptr_t)o->mem, OWNER_IOVA,
					   OWNER_SIZE));
	EXPECT_EQ(b0 + kb, owner_vmlck_kb(o));

	/* The device reads what B wrote and writes where B reads. */
	VID_ASSERT_OK(vid_edu_open(&self->ctx, &edu));
	ASSERT_EQ(0, owner_run(o, OWNER_FILL, 12));
	VID_ASSERT_OK(owner_edu_copy(&edu));
	ASSERT_EQ(-1, owner_run(o, OWNER_CMP, 12));

	/* Unmapped by A while B lives: B's locked_vm goes down, not A's. */
	VID_ASSERT_UNMAP(self->ctx.container, OWNER_IOVA, OWNER_SIZE,
			 OWNER_SIZE);
	EXPECT_EQ(b0, owner_vmlck_kb(o));
	EXPECT_EQ(self->base.vmlck_kb, vid_vmlck_kb());
	EXPECT_EQ(0, owner_stop(o));
}

/*
 * B without CAP_IPC_LOCK and one page short of RLIMIT_MEMLOCK: the update
 * fails with ENOMEM and changes nothing (A still charged, B not, the
 * mapping still invalid and reaching the same pages). With exactly enough
 * room, B's next attempt succeeds.
 */
TEST_F(ext, vaddr_update_over_memlock)
{
	long kb = NPAGES * VID_PAGE_KB, b0;
	struct owner *o = &self->owner;
	uint8_t want[OWNER_DMA];
	struct vid_acct mapped;
	struct vid_edu edu;

	VID_ASSERT_OK(owner_setup(&self->ctx, o, true));
	VID_ASSERT_OK(vid_acct_read(&mapped));
	b0 = owner_vmlck_kb(o);
	ASSERT_LE(0, b0);

	ASSERT_EQ(0, owner_run(o, OWNER_LIMIT, NPAGES - 1));
	ASSERT_EQ(-ENOMEM, owner_run(o, OWNER_SET_VADDR, 0));
	EXPECT_EQ(b0, owner_vmlck_kb(o));
	vid_check_acct(_metadata, &mapped, true);

	/* The mapping still reaches its pages. */
	VID_ASSERT_OK(vid_edu_open(&self->ctx, &edu));
	vid_fill_pattern((uint8_t *)o->mem, OWNER_DMA, 21);
	VID_ASSERT_OK(owner_edu_copy(&edu));
	vid_fill_pattern(want, sizeof(want), 21);
	ASSERT_EQ(-1, vid_first_diff((uint8_t *)o->mem + VID_PAGE, want,
				     sizeof(want)));

	/* Still invalid: B may set it, with room for exactly the charge. */
	ASSERT_EQ(0, owner_run(o, OWNER_LIMIT, NPAGES));
	ASSERT_EQ(0, owner_run(o, OWNER_SET_VADDR, 0));
	EXPECT_EQ(b0 + kb, owner_vmlck_kb(o));
	EXPECT_EQ(self->base.vmlck_kb, vid_vmlck_kb());
	ASSERT_EQ(0, owner_run(o, OWNER_FILL, 22));
	VID_ASSERT_OK(owner_edu_copy(&edu));
	ASSERT_EQ(-1, owner_run(o, OWNER_CMP, 22));

	VID_ASSERT_UNMAP(self->ctx.container, OWNER_IOVA, OWNER_SIZE,
			 OWNER_SIZE);
	EXPECT_EQ(b0, owner_vmlck_kb(o));
	EXPECT_EQ(0, owner_stop(o));
}

/*
 * CAP_IPC_LOCK lifts the limit, not the charge: B with it and with no room
 * at all under RLIMIT_MEMLOCK takes the mapping, and its locked_vm rises
 * by the whole charge.
 */
TEST_F(ext, vaddr_update_cap_ipc_lock)
{
	long kb = NPAGES * VID_PAGE_KB, b0;
	struct owner *o = &self->owner;

	VID_ASSERT_OK(owner_setup(&self->ctx, o, false));
	b0 = owner_vmlck_kb(o);
	ASSERT_LE(0, b0);
	ASSERT_EQ(0, owner_run(o, OWNER_LIMIT, 0));
	ASSERT_EQ(0, owner_run(o, OWNER_SET_VADDR, 0));
	EXPECT_EQ(b0 + kb, owner_vmlck_kb(o));
	EXPECT_EQ(self->base.vmlck_kb, vid_vmlck_kb());
	VID_ASSERT_UNMAP(self->ctx.container, OWNER_IOVA, OWNER_SIZE,
			 OWNER_SIZE);
	EXPECT_EQ(b0, owner_vmlck_kb(o));
	EXPECT_EQ(0, owner_stop(o));
}

/*
 * The vaddr update on a v1 (VFIO_TYPE1_IOMMU) container. v1 keeps its
 * historical unmap rules for the invalidation too (6.12
 * vfio_dma_do_unmap(): no bisection check, and the walk stops at once
 * when the first mapping of the range starts before it): a range covering
 * a mapping's first IOVA takes the whole mapping, a range starting inside
 * a mapping takes nothing at all, successfully.
 */
FIXTURE(ext_v1) {
	struct vid_ctx ctx;
	struct vid_acct base;
	char *mem;
};

FIXTURE_SETUP(ext_v1)
{
	vid_ctx_init(&self->ctx);
	self->mem = NULL;
	if (!vid_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_acct_read(&self->base));
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1_IOMMU));
	self->mem = vid_alloc(NPAGES * VID_PAGE, 0x3d);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(ext_v1)
{
	vid_ctx_close(&self->ctx);
	if (self->mem)
		vid_free(self->mem, NPAGES * VID_PAGE);
	VID_EXPECT_ACCT(&self->base);
}

/*
 * UNMAP_FLAG_VADDR of pages [first, first + n) of map_pages()' layout;
 * *got gets the bytes reported.
 */
static int invalidate_pages(struct vid_ctx *ctx, int first, int n,
			    uint64_t *got)
{
	return vid_unmap_raw(ctx->container, UNMAP_SZ,
			     VFIO_DMA_UNMAP_FLAG_VADDR,
			     0x100000 + first * VID_PAGE, n * VID_PAGE, got);
}

/*
 * MAP_FLAG_VADDR of the mapping of pages [first, first + n), at the same
 * memory: 0 only if that mapping's vaddr was invalid, and then it is
 * valid again.
 */
static int set_vaddr_pages(struct vid_ctx *ctx, char *mem, int first, int n)
{
	return vid_map_raw(ctx->container, MAP_SZ, VFIO_DMA_MAP_FLAG_VADDR,
			   (uintptr_t)(mem + first * VID_PAGE),
			   0x100000 + first * VID_PAGE, n * VID_PAGE);
}

/*
 * Ranges covering whole mappings invalidate them, a range covering only
 * a mapping's first page invalidates all of it and reports its size (v2
 * would refuse the cut), nothing is unpinned or uncharged, and setting
 * the vaddrs makes every mapping valid again.
 */
TEST_F(ext_v1, vaddr_invalidate_whole_mappings)
{
	struct vid_ctx *ctx = &self->ctx;
	struct vid_acct mapped;
	uint64_t got;

	VID_ASSERT_OK(map_pages(ctx, self->mem, 0, 2));
	VID_ASSERT_OK(map_pages(ctx, self->mem, 2, 1));
	VID_ASSERT_OK(map_pages(ctx, self->mem, 4, 2));
	VID_ASSERT_OK(vid_acct_read(&mapped));

	VID_ASSERT_OK(invalidate_pages(ctx, 0, 3, &got));
	ASSERT_EQ(3 * VID_PAGE, got);
	expect_state(_metadata, "vaddr_invalid", 2);
	/* The third mapping is outside the range: still valid. */
	VID_ASSERT_ERR(EINVAL, set_vaddr_pages(ctx, self->mem, 4, 2));

	VID_ASSERT_OK(invalidate_pages(ctx, 4, 1, &got));
	ASSERT_EQ(2 * VID_PAGE, got);
	expect_state(_metadata, "vaddr_invalid", 3);
	vid_check_acct(_metadata, &mapped, true);
	/* Still mapped. */
	VID_ASSERT_ERR(EEXIST, map_pages(ctx, self->mem, 5, 1));

	VID_ASSERT_OK(set_vaddr_pages(ctx, self->mem, 0, 2));
	VID_ASSERT_OK(set_vaddr_pages(ctx, self->mem, 2, 1));
	VID_ASSERT_OK(set_vaddr_pages(ctx, self->mem, 4, 2));
	expect_state(_metadata, "vaddr_invalid", 0);
	vid_check_acct(_metadata, &mapped, true);
	VID_ASSERT_UNMAP(ctx->container, 0x100000, NPAGES * VID_PAGE,
			 5 * VID_PAGE);
}

/*
 * A range starting inside a mapping: success with 0 bytes, and no
 * mapping is invalidated, not even one lying wholly inside the range
 * after the first; nor is an invalid one there an error.
 */
TEST_F(ext_v1, vaddr_range_starting_inside)
{
	struct vid_ctx *ctx = &self->ctx;
	struct vid_acct mapped;
	uint64_t got;

	VID_ASSERT_OK(map_pages(ctx, self->mem, 0, 2));
	VID_ASSERT_OK(map_pages(ctx, self->mem, 2, 1));
	VID_ASSERT_OK(vid_acct_read(&mapped));

	VID_ASSERT_OK(invalidate_pages(ctx, 1, 2, &got));
	ASSERT_EQ(0, got);
	VID_ASSERT_OK(invalidate_pages(ctx, 1, 1, &got));
	ASSERT_EQ(0, got);
	expect_state(_metadata, "vaddr_invalid", 0);
	/* Both are valid: setting a vaddr is refused. */
	VID_ASSERT_ERR(EINVAL, set_vaddr_pages(ctx, self->mem, 0, 2));
	VID_ASSERT_ERR(EINVAL, set_vaddr_pages(ctx, self->mem, 2, 1));
	vid_check_acct(_metadata, &mapped, true);

	/* The walk stops before it meets the invalid second mapping. */
	VID_ASSERT_OK(invalidate_pages(ctx, 2, 1, &got));
	ASSERT_EQ(VID_PAGE, got);
	VID_ASSERT_OK(invalidate_pages(ctx, 1, 2, &got));
	ASSERT_EQ(0, got);
	expect_state(_metadata, "vaddr_invalid", 1);
	VID_ASSERT_ERR(EINVAL, set_vaddr_pages(ctx, self->mem, 0, 2));
	VID_ASSERT_OK(set_vaddr_pages(ctx, self->mem, 2, 1));
	expect_state(_metadata, "vaddr_invalid", 0);
	VID_ASSERT_UNMAP(ctx->container, 0x100000, 3 * VID_PAGE,
			 3 * VID_PAGE);
}

/*
 * An invalid mapping inside the range: EINVAL, and the mappings this call
 * had invalidated before it are valid again (the first), those after it
 * were never touched (the third), the invalid one stays invalid. The
 * same range then invalidates all three.
 */
TEST_F(ext_v1, vaddr_invalid_in_range)
{
	struct vid_ctx *ctx = &self->ctx;
	struct vid_acct mapped;
	uint64_t got;

	VID_ASSERT_OK(map_pages(ctx, self->mem, 0, 1));
	VID_ASSERT_OK(map_pages(ctx, self->mem, 2, 1));
	VID_ASSERT_OK(map_pages(ctx, self->mem, 4, 1));
	VID_ASSERT_OK(vid_acct_read(&mapped));
	VID_ASSERT_OK(invalidate_pages(ctx, 2, 1, &got));
	ASSERT_EQ(VID_PAGE, got);

	VID_ASSERT_ERR(EINVAL, invalidate_pages(ctx, 0, 6, &got));
	expect_state(_metadata, "vaddr_invalid", 1);
	VID_ASSERT_ERR(EINVAL, set_vaddr_pages(ctx, self->mem, 0, 1));
	VID_ASSERT_ERR(EINVAL, set_vaddr_pages(ctx, self->mem, 4, 1));
	VID_ASSERT_OK(set_vaddr_pages(ctx, self->mem, 2, 1));
	expect_state(_metadata, "vaddr_invalid", 0);
	vid_check_acct(_metadata, &mapped, true);

	VID_ASSERT_OK(invalidate_pages(ctx, 0, 6, &got));
	ASSERT_EQ(3 * VID_PAGE, got);
	expect_state(_metadata, "vaddr_invalid", 3);
	VID_ASSERT_OK(set_vaddr_pages(ctx, self->mem, 0, 1));
	VID_ASSERT_OK(set_vaddr_pages(ctx, self->mem, 2, 1));
	VID_ASSERT_OK(set_vaddr_pages(ctx, self->mem, 4, 1));
	VID_ASSERT_UNMAP(ctx->container, 0x100000, 6 * VID_PAGE,
			 3 * VID_PAGE);
}

TEST_HARNESS_MAIN
