// SPDX-License-Identifier: GPL-2.0
/*
 * Lifecycle, beyond lifecycle_test (which covers plain mappings): a
 * process that exits, or is killed, holding mappings, pins of the test
 * device (vid_emu/) and dirty tracking at once; the module unloaded after
 * all of that and loaded again; the module loaded and unloaded 100 times
 * with containers in use in between; a container, its groups and the
 * device handed to another process that works with the owner's mappings
 * while the owner lives and after it died; fork while tracking and
 * pinning.
 *
 * After each: the system's pinned pages and this process's locked memory
 * are back where they were, the serving module's reference count is back,
 * no debugfs container directory is left (this module), and the kernel
 * logged no problem. With VID_BACKEND=intree the process tests run
 * against in-tree type1 (checking their expectations); the module tests
 * are about vfio_iommu_dirty only and skip. The test device's module
 * depends on vfio, not on this module, so it stays loaded throughout.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define P		VID_PAGE
#define NPAGES		16		/* pages per mapping */
#define NMAPS		4		/* mappings per container */
#define IOVA		0x200000ULL	/* first mapping; then 1 MiB apart */
#define IOVA_STEP	0x100000ULL
#define OWN_IOVA	0x2000000ULL	/* the receiver's own mapping */
#define RELOADS		100
#define USE_EVERY	10
#define WAIT_MS		20000
#define PIN_RW		(VID_EMU_PIN_READ | VID_EMU_PIN_WRITE)
#define POISON		0xa5a5a5a5a5a5a5a5ULL
#define MAP_BITS	(~0ULL >> (64 - NPAGES))	/* a mapping's bits */
#define SPAN_WORDS	((3 * IOVA_STEP + NPAGES * P) / P / 64 + 1)

/*
 * In-tree type1 (6.12) calls the test device's dma_unmap holding a lock
 * the device's pins wait for: lockdep reports the cycle (see
 * stress_test.c), so on a lockdep kernel these tests run against this
 * module only.
 */
static bool intree_under_lockdep(void)
{
	return vid_backend_intree() && !access("/proc/lockdep", F_OK);
}

/*
 * What a fixture notes before its test, for the test and the teardown to
 * compare with: the kernel log's end, the locked memory counts and the
 * backend module's reference count.
 */
struct watch {
	int kmsg;
	struct vid_acct base;
	long refcnt;
};

static void watch_start(struct __test_metadata *_metadata, struct watch *w)
{
	w->kmsg = vid_kmsg_open();
	ASSERT_LE(0, w->kmsg);
	VID_ASSERT_OK(vid_acct_read(&w->base));
	w->refcnt = vid_module_refcnt(vid_backend_module());
	ASSERT_LE(0, w->refcnt);
}

/* No kernel problem since watch_start(). False if it never started. */
static bool watch_end(struct __test_metadata *_metadata, struct watch *w)
{
	char problem[512];

	if (w->kmsg < 0)
		return false;
	EXPECT_EQ(0, vid_kmsg_problems(w->kmsg, problem, sizeof(problem)))
		TH_LOG("kernel log: %s", problem);
	close(w->kmsg);
	return true;
}

static uint64_t map_iova(int i)
{
	return IOVA + i * IOVA_STEP;
}

/* A container with edu (if @edu) and the test device, and its fd. */
struct both {
	int container, group, egroup, dev;
};

static void both_close(struct both *b)
{
	if (b->dev >= 0)
		close(b->dev);
	if (b->egroup >= 0)
		close(b->egroup);
	if (b->group >= 0)
		close(b->group);
	if (b->container >= 0)
		close(b->container);
	b->dev = -1;
	b->egroup = -1;
	b->group = -1;
	b->container = -1;
}

/* 0 or -errno; -ESRCH when the backend under test did not take it. */
static int both_open(struct both *b, bool edu)
{
	bool served;
	int id, ret;

	b->group = -1;
	b->egroup = -1;
	b->dev = -1;
	b->container = vid_open_container();
	if (b->container < 0)
		return b->container;
	if (edu) {
		ret = vid_open_group(b->container);
		if (ret < 0)
			goto err;
		b->group = ret;
	}
	id = vid_device_group("platform", VID_EMU_DEV0);
	ret = id < 0 ? id : vid_open_group_id(b->container, id);
	if (ret < 0)
		goto err;
	b->egroup = ret;
	ret = vid_set_iommu(b->container, VFIO_TYPE1v2_IOMMU,
			    vid_backend_module(), &served);
	if (!ret && !served)
		ret = -ESRCH;
	if (ret)
		goto err;
	ret = ioctl(b->egroup, VFIO_GROUP_GET_DEVICE_FD, VID_EMU_DEV0);
	if (ret < 0) {
		ret = -errno;
		goto err;
	}
	b->dev = ret;
	return 0;
err:
	both_close(b);
	return ret;
}

/* Wait for @pid to end; its exit status, 128 + signal, or -1. */
static int reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* Read exactly @len bytes from @fd within WAIT_MS; 0 or -errno. */
static int read_full(int fd, void *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		if (poll(&pfd, 1, WAIT_MS) != 1)
			return -ETIMEDOUT;
		n = read(fd, (char *)buf + got, len - got);
		if (n <= 0)
			return n ? -errno : -EPIPE;
		got += n;
	}
	return 0;
}

/* The pin count the device reports, or -errno. */
static long dev_pins(int dev)
{
	struct vid_emu_status st;
	int ret = vid_emu_status(dev, &st, false);

	if (ret)
		return ret;
	return st.anomalies ? -EIO : (long)st.pinned_pages;
}

/*
 * What a dirty bitmap holds before a report: poison, which this backend
 * must leave alone outside the mappings. In-tree zeroes the bits of the
 * word a mapping ends in (README, differences), so it gets a clean buffer;
 * every mapping here starts a 64-bit word, so nothing else differs.
 */
static uint64_t bits_fill(void)
{
	return vid_backend_intree() ? 0 : POISON;
}

/*
 * Compare a report of @n words with @want, all of it: 0, or -1 after
 * printing the first word that differs (also from a child process).
 */
static int bits_differ(const char *what, const uint64_t *bits,
		       const uint64_t *want, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (bits[i] == want[i])
			continue;
		fprintf(stderr, "# %s: word %u is 0x%016llx, want 0x%016llx\n",
			what, i, (unsigned long long)bits[i],
			(unsigned long long)want[i]);
		return -1;
	}
	return 0;
}

/*
 * The one word of a report of one whole mapping: @dirty in its NPAGES
 * bits, the caller's fill in the others.
 */
static uint64_t map_word(uint64_t dirty)
{
	return (bits_fill() & ~MAP_BITS) | dirty;
}

/* ---------------------------------------------------------------------- */
/* a process exits (or is killed) with everything in place                 */
/* ---------------------------------------------------------------------- */

/* What a child set up, as it reports it. */
struct report {
	int err;		/* 0, or the step that failed (negative) */
	long vmlck_kb;		/* its VmLck with everything in place */
	long dev_pins;		/* pages the device holds pinned */
	long pinned;		/* the system's pinned pages then */
};

/*
 * Build a container with mappings (one read-only), device pins (some
 * taken twice), device writes and reads, tracking on and a bitmap read,
 * checked bit by bit. Returns 0 or a negative step number.
 */
static int build_everything(struct both *b, bool edu, uint8_t *mem)
{
	uint64_t span = map_iova(NMAPS - 1) + NPAGES * P - map_iova(0);
	uint64_t bits[SPAN_WORDS], want[SPAN_WORDS];
	const unsigned int step = IOVA_STEP / P / 64;	/* words */
	uint8_t data[64];
	int i;

	if (both_open(b, edu))
		return -1;
	for (i = 0; i < NMAPS; i++) {
		/* The last one read-only. */
		uint32_t prot = i < NMAPS - 1 ? VID_MAP_RW :
				VFIO_DMA_MAP_FLAG_READ;

		if (vid_map(b->container, map_iova(i), mem + i * NPAGES * P,
			    NPAGES * P, prot))
			return -2;
	}
	if (vid_dirty_op(b->container, 8, VFIO_IOMMU_DIRTY_PAGES_FLAG_START))
		return -3;
	if (vid_emu_pin(b->dev, map_iova(0), 8, PIN_RW, NULL) ||
	    vid_emu_pin(b->dev, map_iova(0), 4, PIN_RW, NULL) ||
	    vid_emu_pin(b->dev, map_iova(NMAPS - 1), 4, VID_EMU_PIN_READ,
			NULL))
		return -4;
	memset(data, 0x6b, sizeof(data));
	if (vid_emu_rw(b->dev, map_iova(1) + 100, data, sizeof(data),
		       VID_EMU_RW_WRITE) ||
	    vid_emu_rw(b->dev, map_iova(NMAPS - 1), data, sizeof(data), 0) ||
	    vid_emu_rw(b->dev, map_iova(0) + 8, data, sizeof(data),
		       VID_EMU_RW_WRITE | VID_EMU_RW_PINNED))
		return -5;
	/* One report over all of them and the holes between. */
	for (i = 0; i < (int)SPAN_WORDS; i++)
		bits[i] = bits_fill();
	memcpy(want, bits, sizeof(want));
	if (vid_get_bitmap(b->container, 0, map_iova(0), span, P, bits,
			   sizeof(bits)))
		return -6;
	if (edu) {
		/* edu never pins: every page of every mapping is dirty. */
		for (i = 0; i < NMAPS; i++)
			want[i * step] = map_word(MAP_BITS);
	} else {
		/*
		 * Pinned-page scope: the pinned pages (0-7 of the first
		 * mapping, 0-3 of the last, read-only pins too) and the page
		 * dma_rw wrote (the second mapping's first); not the page
		 * written through the pins (that is no dma_rw), nor the reads.
		 */
		want[0] = map_word(0xffULL);
		want[step] = map_word(1ULL);
		want[2 * step] = map_word(0);
		want[3 * step] = map_word(0xfULL);
	}
	if (bits_differ("first report", bits, want, SPAN_WORDS))
		return -7;
	return 0;
}

/*
 * The child: build everything, report on @wfd, then wait for a byte on
 * @rfd and exit without cleaning up (or be killed meanwhile).
 */
static void child_everything(bool edu, int wfd, int rfd)
{
	struct report r = { 0 };
	struct both b = { -1, -1, -1, -1 };
	uint8_t *mem = vid_alloc(NMAPS * NPAGES * P, 0x3a);
	char byte;
	int err;

	r.err = mem ? build_everything(&b, edu, mem) : -8;
	r.vmlck_kb = vid_vmlck_kb();
	r.dev_pins = b.dev >= 0 ? dev_pins(b.dev) : -1;
	r.pinned = vid_pinned_pages(&err);
	if (write(wfd, &r, sizeof(r)) != sizeof(r))
		_exit(2);
	if (read(rfd, &byte, 1) != 1)
		_exit(3);
	_exit(0);	/* no unmap, no unpin, no STOP, no close */
}

/*
 * Run a child that exits or is killed with everything in place, and
 * check what it had while it lived. The caller checks what is left.
 */
static void exit_with_everything(struct __test_metadata *_metadata,
				 bool edu, bool kill_it)
{
	struct vid_acct base;
	int pfd[2], go[2], st;
	struct report r;
	pid_t pid;

	VID_ASSERT_OK(vid_acct_read(&base));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(pfd[0]);
		close(go[1]);
		child_everything(edu, pfd[1], go[0]);
	}
	close(pfd[1]);
	close(go[0]);
	st = read_full(pfd[0], &r, sizeof(r));
	close(pfd[0]);
	if (st) {
		kill(pid, SIGKILL);
		reap(pid);
	}
	ASSERT_EQ(0, st) TH_LOG("no report from the child: %s", strerror(-st));
	EXPECT_EQ(0, r.err) TH_LOG("child failed at step %d", -r.err);
	/* Device pins: 8 + 4 pages (4 of them twice, counted once). */
	EXPECT_EQ(12, r.dev_pins);
	/*
	 * Locked memory: with edu every mapping is pinned and charged;
	 * without a domain only the device's pins are.
	 */
	EXPECT_EQ(edu ? NMAPS * NPAGES * P / 1024 : 12 * P / 1024,
		  r.vmlck_kb);
	EXPECT_EQ(base.pinned + (edu ? NMAPS * NPAGES : 0) + 12, r.pinned);
	if (!vid_backend_intree())
		EXPECT_EQ(1, vid_debugfs_containers());
	if (kill_it) {
		ASSERT_EQ(0, kill(pid, SIGKILL));
		EXPECT_EQ(128 + SIGKILL, reap(pid));
	} else {
		ASSERT_EQ(1, write(go[1], "x", 1));
		EXPECT_EQ(0, reap(pid));
	}
	close(go[1]);
}

/* Nothing of a dead child's container is left; the device starts clean. */
static void check_released(struct __test_metadata *_metadata,
			   const struct vid_acct *base, long refcnt)
{
	struct both b;

	VID_EXPECT_ACCT(base);
	EXPECT_EQ(refcnt, vid_module_refcnt(vid_backend_module()));
	if (!vid_backend_intree())
		EXPECT_EQ(0, vid_debugfs_containers());
	VID_ASSERT_OK(both_open(&b, false));
	EXPECT_EQ(0, dev_pins(b.dev));
	VID_ASSERT_OK(vid_dirty_op(b.container, 8,
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
	both_close(&b);
	EXPECT_EQ(refcnt, vid_module_refcnt(vid_backend_module()));
}

FIXTURE(life2) {
	struct watch w;
};

FIXTURE_VARIANT(life2) {
	bool edu;
	bool kill_it;
};

FIXTURE_VARIANT_ADD(life2, edu_exit) {
	.edu = true, .kill_it = false,
};

FIXTURE_VARIANT_ADD(life2, edu_killed) {
	.edu = true, .kill_it = true,
};

FIXTURE_VARIANT_ADD(life2, device_only_exit) {
	.edu = false, .kill_it = false,
};

FIXTURE_VARIANT_ADD(life2, device_only_killed) {
	.edu = false, .kill_it = true,
};

FIXTURE_SETUP(life2)
{
	self->w.kmsg = -1;
	if (!vid_emu_prepare(_metadata))
		return;
	if (variant->edu && vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	if (intree_under_lockdep())
		SKIP(return, "in-tree type1 with the test device under lockdep");
	watch_start(_metadata, &self->w);
}

FIXTURE_TEARDOWN(life2)
{
	if (watch_end(_metadata, &self->w))
		EXPECT_EQ(0, vid_modules_setup(NULL));
}

/*
 * A process exits, or is killed, with mappings, device pins and tracking
 * in place: everything is released with it.
 */
TEST_F(life2, exit_with_everything)
{
	exit_with_everything(_metadata, variant->edu, variant->kill_it);
	check_released(_metadata, &self->w.base, self->w.refcnt);
}

/* ---------------------------------------------------------------------- */
/* the module: unloaded after all that, loaded and unloaded 100 times       */
/* ---------------------------------------------------------------------- */

static bool debugfs_root_exists(void)
{
	struct stat st;

	return !stat(VID_DEBUGFS_ROOT, &st);
}

/* Map, start tracking, pin, and close it all; served by our module. */
static void use_container(struct __test_metadata *_metadata, int how,
			  uint8_t *mem)
{
	struct vid_ctx ctx;
	struct both b;
	int fd;

	if (how == 0) {
		/* edu alone: pinned into the IOMMU. */
		VID_ASSERT_OK(vid_ctx_open(&ctx, VFIO_TYPE1v2_IOMMU));
		fd = ctx.container;
	} else {
		/* the test device, with or without edu */
		VID_ASSERT_OK(both_open(&b, how == 2));
		fd = b.container;
	}
	EXPECT_EQ(1, vid_module_refcnt(VID_MOD_OURS));
	EXPECT_EQ(1, vid_debugfs_containers());
	VID_ASSERT_OK(vid_map(fd, IOVA, mem, NPAGES * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	if (how)
		VID_ASSERT_OK(vid_emu_pin(b.dev, IOVA, 2, PIN_RW, NULL));
	/* In use: the module cannot go. */
	EXPECT_EQ(-EWOULDBLOCK, vid_module_remove(VID_MOD_OURS, true));
	if (how)
		both_close(&b);
	else
		vid_ctx_close(&ctx);
	EXPECT_EQ(0, vid_module_refcnt(VID_MOD_OURS));
	EXPECT_EQ(0, vid_debugfs_containers());
}

FIXTURE(module2) {
	struct watch w;
	uint8_t *mem;
};

FIXTURE_SETUP(module2)
{
	self->w.kmsg = -1;
	self->mem = NULL;
	if (!vid_emu_prepare(_metadata))
		return;
	if (vid_backend_intree())
		SKIP(return, "about %s only", VID_MOD_OURS);
	if (vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	watch_start(_metadata, &self->w);
	self->mem = vid_alloc(NPAGES * P, 0x4d);
	ASSERT_NE(NULL, self->mem);
	ASSERT_EQ(0, self->w.refcnt)
		TH_LOG("someone else uses %s", VID_MOD_OURS);
}

FIXTURE_TEARDOWN(module2)
{
	vid_free(self->mem, NPAGES * P);
	if (self->w.kmsg < 0)
		return;
	VID_EXPECT_ACCT(&self->w.base);
	/* Leave the modules as the next test expects them. */
	if (watch_end(_metadata, &self->w))
		EXPECT_EQ(0, vid_modules_setup(NULL));
}

/*
 * After processes died with everything in place (one exited, one was
 * killed), nothing holds the module: it unloads, its debugfs goes, the
 * test device's module stays, and loading it again gives a working
 * backend.
 */
TEST_F(module2, unload_after_exits)
{
	exit_with_everything(_metadata, true, false);
	exit_with_everything(_metadata, true, true);
	exit_with_everything(_metadata, false, true);
	VID_EXPECT_ACCT(&self->w.base);
	ASSERT_EQ(0, vid_module_refcnt(VID_MOD_OURS));

	VID_ASSERT_OK(vid_module_remove(VID_MOD_OURS, false));
	EXPECT_FALSE(vid_module_live(VID_MOD_OURS));
	EXPECT_FALSE(debugfs_root_exists());
	EXPECT_TRUE(vid_module_live(VID_EMU_MOD));

	VID_ASSERT_OK(vid_module_load_ours());
	ASSERT_TRUE(vid_module_live(VID_MOD_OURS));
	EXPECT_TRUE(debugfs_root_exists());
	EXPECT_EQ(0, vid_module_refcnt(VID_MOD_OURS));
	use_container(_metadata, 2, self->mem);
}

/*
 * Unload and load the module RELOADS times; every USE_EVERY-th time a
 * container is opened, mapped, tracked, pinned and closed in between
 * (edu, the test device, both, in turn).
 */
TEST_F_TIMEOUT(module2, reload_100, 120)
{
	long long start = vid_now_ms();
	int i, ret;

	for (i = 1; i <= RELOADS; i++) {
		ret = vid_module_remove(VID_MOD_OURS, false);
		ASSERT_EQ(0, ret) TH_LOG("unload %d: %s", i, strerror(-ret));
		ASSERT_FALSE(vid_module_live(VID_MOD_OURS));
		ASSERT_FALSE(debugfs_root_exists());
		ret = vid_module_load_ours();
		ASSERT_EQ(0, ret) TH_LOG("load %d: %s", i, strerror(-ret));
		ASSERT_TRUE(vid_module_live(VID_MOD_OURS));
		ASSERT_EQ(0, vid_module_refcnt(VID_MOD_OURS));
		ASSERT_EQ(0, vid_debugfs_containers());
		if (i % USE_EVERY == 0)
			use_container(_metadata, (i / USE_EVERY) % 3,
				      self->mem);
	}
	TH_LOG("%d unloads and loads, %d containers, in %lld ms", RELOADS,
	       RELOADS / USE_EVERY, vid_now_ms() - start);
}

/* ---------------------------------------------------------------------- */
/* a container handed to another process                                  */
/* ---------------------------------------------------------------------- */

FIXTURE(proc) {
	struct watch w;
};

FIXTURE_SETUP(proc)
{
	self->w.kmsg = -1;
	if (!vid_emu_prepare(_metadata))
		return;
	if (intree_under_lockdep())
		SKIP(return, "in-tree type1 with the test device under lockdep");
	watch_start(_metadata, &self->w);
}

FIXTURE_TEARDOWN(proc)
{
	watch_end(_metadata, &self->w);
}

/*
 * The owner: build everything, hand the container, both groups and the
 * device to @sock, then wait until told to exit (a byte on @sock).
 */
static void owner_main(int sock)
{
	struct both b = { -1, -1, -1, -1 };
	uint8_t *mem = vid_alloc(NMAPS * NPAGES * P, 0x21);
	char byte;

	if (!mem || build_everything(&b, true, mem))
		_exit(2);
	if (vid_send_fd(sock, b.container) || vid_send_fd(sock, b.group) ||
	    vid_send_fd(sock, b.egroup) || vid_send_fd(sock, b.dev))
		_exit(3);
	/* Ours are closed: the receiver holds the only references. */
	both_close(&b);
	if (read(sock, &byte, 1) != 1)
		_exit(4);
	_exit(0);
}

/*
 * An unmap with a dirty bitmap of one whole mapping: its result, and 0 or
 * -EBADMSG (printed) when the report is not exactly @dirty in the
 * mapping's bits and the caller's fill in the rest of the word.
 */
static int unmap_one(int container, int i, uint64_t dirty, uint64_t *got)
{
	uint64_t bits = bits_fill(), want = map_word(dirty);
	char what[40];
	int ret;

	ret = vid_unmap_bitmap(container, 0, map_iova(i), NPAGES * P, P,
			       &bits, sizeof(bits), got);
	snprintf(what, sizeof(what), "unmap of mapping %d", i);
	if (!ret && bits_differ(what, &bits, &want, 1))
		ret = -EBADMSG;
	return ret;
}

/*
 * A report of one whole mapping: 0, -EBADMSG (printed) as unmap_one(), or
 * the query's error.
 */
static int report_one(int container, int i, uint64_t dirty)
{
	uint64_t bits = bits_fill(), want = map_word(dirty);
	char what[40];
	int ret;

	ret = vid_get_bitmap(container, 0, map_iova(i), NPAGES * P, P, &bits,
			     sizeof(bits));
	snprintf(what, sizeof(what), "report of mapping %d", i);
	if (!ret && bits_differ(what, &bits, &want, 1))
		ret = -EBADMSG;
	return ret;
}

/*
 * A container, its groups and the device handed over by a process that
 * built everything (mappings of its memory, pins, tracking). The
 * receiver works with the owner's mappings while the owner lives (pins
 * through its memory, dirty reports, unmaps that give its charge back,
 * but no dma_rw: that needs the owner's memory map), maps its own memory,
 * then the owner exits: new pins and dma_rw of the owner's memory fail,
 * what is pinned already stays usable, and everything can still be
 * unmapped and closed.
 */
TEST_F(proc, container_passed)
{
	uint8_t *own = vid_alloc(NPAGES * P, 0x55), data[32];
	uint64_t got;
	struct both b;
	int sv[2], n;
	long lck;
	pid_t pid;

	ASSERT_NE(NULL, own);
	if (vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(sv[0]);
		owner_main(sv[1]);
	}
	close(sv[1]);
	b.container = vid_recv_fd(sv[0]);
	b.group = vid_recv_fd(sv[0]);
	b.egroup = vid_recv_fd(sv[0]);
	b.dev = vid_recv_fd(sv[0]);
	ASSERT_LE(0, b.container);
	ASSERT_LE(0, b.group);
	ASSERT_LE(0, b.egroup);
	ASSERT_LE(0, b.dev);

	/* The owner alive: its memory is charged to it, not to us. */
	EXPECT_EQ(NMAPS * NPAGES * P / 1024, vid_proc_status_kb(pid, "VmLck"));
	EXPECT_EQ(self->w.base.vmlck_kb, vid_vmlck_kb());
	/*
	 * edu never pins: every mapped page is dirty, in this report and
	 * in every one that follows, whatever the device does.
	 */
	VID_ASSERT_OK(report_one(b.container, 1, MAP_BITS));
	/* Pins through the owner's memory work from here ... */
	VID_ASSERT_OK(vid_emu_pin(b.dev, map_iova(1), 2, PIN_RW, NULL));
	EXPECT_EQ(14, dev_pins(b.dev));
	EXPECT_EQ(self->w.base.vmlck_kb, vid_vmlck_kb());
	/* ... and so do the device's accesses through its pins ... */
	memset(data, 0x77, sizeof(data));
	VID_ASSERT_OK(vid_emu_rw(b.dev, map_iova(1) + 40, data, sizeof(data),
				 VID_EMU_RW_WRITE | VID_EMU_RW_PINNED));
	/* ... but dma_rw needs the owner's memory map. */
	VID_ASSERT_ERR(EFAULT, vid_emu_rw(b.dev, map_iova(2), data,
					  sizeof(data), VID_EMU_RW_WRITE));
	/* Our own memory is charged to us. */
	VID_ASSERT_OK(vid_map(b.container, OWN_IOVA, own, NPAGES * P,
			      VID_MAP_RW));
	EXPECT_EQ(self->w.base.vmlck_kb + NPAGES * P / 1024, vid_vmlck_kb());
	VID_ASSERT_OK(vid_emu_pin(b.dev, OWN_IOVA, 1, PIN_RW, NULL));
	VID_ASSERT_OK(vid_emu_rw(b.dev, OWN_IOVA + 8, data, sizeof(data),
				 VID_EMU_RW_WRITE));
	/* Unmapping one of the owner's mappings gives it its charge back. */
	VID_ASSERT_OK(unmap_one(b.container, 2, MAP_BITS, &got));
	EXPECT_EQ(NPAGES * P, got);
	EXPECT_EQ((NMAPS - 1) * NPAGES * P / 1024,
		  vid_proc_status_kb(pid, "VmLck"));

	/* The owner goes. */
	ASSERT_EQ(1, write(sv[0], "x", 1));
	EXPECT_EQ(0, reap(pid));
	close(sv[0]);
	EXPECT_EQ(self->w.base.vmlck_kb + NPAGES * P / 1024, vid_vmlck_kb());

	/* New pins of the dead owner's memory, and dma_rw, fail ... */
	VID_ASSERT_ERR(ENODEV, vid_emu_pin(b.dev, map_iova(1) + 8 * P, 1,
					   PIN_RW, NULL));
	VID_ASSERT_ERR(EPERM, vid_emu_rw(b.dev, map_iova(1), data,
					 sizeof(data), 0));
	/* ... a page pinned already can be pinned again, and used ... */
	VID_ASSERT_OK(vid_emu_pin(b.dev, map_iova(1), 1, PIN_RW, NULL));
	VID_ASSERT_OK(vid_emu_rw(b.dev, map_iova(1) + 40, data, sizeof(data),
				 VID_EMU_RW_PINNED));
	EXPECT_EQ(0x77, data[0]);
	/* ... reports and our own mapping go on as before ... */
	VID_ASSERT_OK(report_one(b.container, 0, MAP_BITS));
	VID_ASSERT_OK(vid_emu_rw(b.dev, OWN_IOVA, data, sizeof(data),
				 VID_EMU_RW_WRITE));
	/* ... and the dead owner's mappings can still be unmapped. */
	for (n = 0; n < NMAPS; n++) {
		if (n == 2)
			continue;
		VID_ASSERT_OK(unmap_one(b.container, n, MAP_BITS, &got));
		EXPECT_EQ(NPAGES * P, got);
	}
	lck = vid_vmlck_kb();
	EXPECT_EQ(self->w.base.vmlck_kb + NPAGES * P / 1024, lck);
	EXPECT_EQ(1, dev_pins(b.dev));	/* our own page */
	both_close(&b);
	vid_free(own, NPAGES * P);
	check_released(_metadata, &self->w.base, self->w.refcnt);
}

/* ---------------------------------------------------------------------- */
/* fork while tracking and pinning                                        */
/* ---------------------------------------------------------------------- */

/*
 * The child of a fork shares the container and the device: it reports,
 * pins the parent's memory and unmaps a parent's mapping, cannot dma_rw
 * into the parent's memory (the backend copies through the mapping
 * owner's memory map only), maps memory of its own and exits without
 * unmapping it. Returns 0 or a failed step.
 *
 * Its reports follow the parent's first one (build_everything()): in
 * pinned-page scope the first mapping's pages 0-7 are still pinned and
 * nothing touched the third; with edu every page is dirty.
 */
static int forked_child(struct both *b, bool edu)
{
	uint8_t *mine = vid_alloc(4 * P, 0x99), data[16] = { 0 };
	uint64_t got;

	if (!mine)
		return 1;
	if (report_one(b->container, 0, edu ? MAP_BITS : 0xffULL))
		return 2;
	if (vid_emu_rw(b->dev, map_iova(1), data, sizeof(data),
		       VID_EMU_RW_WRITE) != -EFAULT)
		return 3;
	if (vid_emu_pin(b->dev, map_iova(1) + 4 * P, 1, PIN_RW, NULL))
		return 4;
	if (vid_map(b->container, OWN_IOVA, mine, 4 * P, VID_MAP_RW))
		return 5;
	/* Pinned, and charged to us, only with an IOMMU domain. */
	if (vid_vmlck_kb() != (edu ? (long)(4 * P / 1024) : 0))
		return 6;
	if (unmap_one(b->container, 2, edu ? MAP_BITS : 0, &got) ||
	    got != NPAGES * P)
		return 7;
	return 0;
}

static void fork_while_tracking(struct __test_metadata *_metadata,
				struct _test_data_proc *self, bool edu)
{
	static const uint64_t want[NMAPS] = { 0xffULL, 0x11ULL, 0, 0xfULL };
	uint8_t *mem = vid_alloc(NMAPS * NPAGES * P, 0x12), data[16];
	struct vid_acct before;
	struct both b;
	uint64_t got;
	long pinned;
	pid_t pid;
	int i, err;

	ASSERT_NE(NULL, mem);
	ASSERT_EQ(0, build_everything(&b, edu, mem));
	VID_ASSERT_OK(vid_acct_read(&before));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(forked_child(&b, edu));
	EXPECT_EQ(0, reap(pid));

	/*
	 * The child's own mapping was charged to it. Its unmap of one of
	 * our mappings gave us that charge back (with edu), its pin of our
	 * memory is charged to us (without: no IOMMU mapping holds it).
	 */
	EXPECT_EQ(before.vmlck_kb + (edu ? -(long)(NPAGES * P / 1024) :
				     (long)(P / 1024)), vid_vmlck_kb());
	EXPECT_EQ(13, dev_pins(b.dev));
	VID_ASSERT_OK(vid_emu_rw(b.dev, map_iova(1), data, sizeof(data),
				 VID_EMU_RW_WRITE));
	/* Its mapping outlives it; unmapping it releases its pages. */
	pinned = vid_pinned_pages(&err);
	VID_ASSERT_UNMAP(b.container, OWN_IOVA, 4 * P, 4 * P);
	EXPECT_EQ(pinned - (edu ? 4 : 0), vid_pinned_pages(&err));
	/*
	 * Since the child's report, in pinned-page scope: the first
	 * mapping's pages 0-7 still pinned (the unmap has them unpinned,
	 * so they stay dirty), the page the child pinned in the second
	 * (4) and the one we wrote there (0), the last one's read pins
	 * (0-3). With edu every page.
	 */
	for (i = 0; i < NMAPS; i++) {
		if (i == 2)
			continue;
		VID_ASSERT_OK(unmap_one(b.container, i,
					edu ? MAP_BITS : want[i], &got));
		EXPECT_EQ(NPAGES * P, got);
	}
	EXPECT_EQ(0, dev_pins(b.dev));
	both_close(&b);
	vid_free(mem, NMAPS * NPAGES * P);
	check_released(_metadata, &self->w.base, self->w.refcnt);
}

TEST_F(proc, fork_while_tracking_edu)
{
	if (vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	fork_while_tracking(_metadata, self, true);
}

TEST_F(proc, fork_while_tracking_device_only)
{
	fork_while_tracking(_metadata, self, false);
}

TEST_HARNESS_MAIN
