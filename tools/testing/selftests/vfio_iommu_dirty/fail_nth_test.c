// SPDX-License-Identifier: GPL-2.0
/*
 * Every failure point of every operation.
 *
 * Each operation below is one system call on a container or on the test
 * device. It runs with this thread's fail-nth (/proc/self/task/TID/fail-nth,
 * see Documentation/fault-injection/fault-injection.rst) set to 1, then 2,
 * 3, ...: the kernel then fails the n-th slab allocation, page allocation
 * or user copy the call makes (failslab, fail_page_alloc, fail_usercopy)
 * with the backend module on the stack: its own, and those of the IOMMU
 * core and GUP working for it (see the knobs below for why only those).
 * The sweep ends at the first n the call does not reach; a call that fails
 * before that point with nothing injected is a test failure.
 *
 * After an attempt that was failed on purpose, the call either succeeded
 * anyway (a fallback took over: counted, not an error) or returned an
 * error, and then:
 *  - this module's view of the container (its debugfs files), the test
 *    device's pins, the process's VmLck and the system's pinned-page count
 *    are exactly what they were before the call: a failed call changes
 *    nothing;
 *  - the container still works (a map and an unmap of another page, and a
 *    pin on an emulated container).
 * After every attempt everything is torn down, and VmLck and the pinned
 * pages must be back at the values the test started with. On the debug
 * kernel (make check-debug) KASAN, lockdep and the kmemleak scan after
 * the suite watch all of it.
 *
 * fail-nth exists only with CONFIG_FAULT_INJECTION; on a kernel without
 * it (Debian's) the whole program skips.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define P		VID_PAGE
#define SZ_2M		(2UL << 20)
#define SMALL_PAGES	16
#define SMALL_SIZE	(SMALL_PAGES * P)
#define HUGE_SIZE	(2 * SZ_2M)
/* All below 256 MiB (edu's DMA mask), the huge one 2 MiB aligned. */
#define IOVA_SMALL	0x1000000ULL
#define IOVA_HUGE	0x4000000ULL
#define IOVA_PROBE	0x8000000ULL
#define PIN_PAGES	8
#define PIN_RW		(VID_EMU_PIN_READ | VID_EMU_PIN_WRITE)
/* A sweep longer than this is taken as a call that never ends well. */
#define MAX_POINTS	20000
#define DEBUGFS		"/sys/kernel/debug/vfio_iommu_dirty"
#define FAULT_DEBUGFS	"/sys/kernel/debug"
#define SNAP_MAX	16384
/* Why the sweeps skip on a kernel without the stack filter. */
#define NO_FILTER	"no fault-injection stack filter " \
			"(CONFIG_FAULT_INJECTION_STACKTRACE_FILTER): a sweep " \
			"would reach the IOMMU core's must-succeed paths"
/* Seconds per test: a sweep is slow on TCG with KASAN and lockdep. */
#define SWEEP_TIMEOUT	900

/* ---------------------------------------------------------------------- */
/* fail-nth and the fault attributes                                     */
/* ---------------------------------------------------------------------- */

static int nth_open(void)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/fail-nth",
		 (long)syscall(SYS_gettid));
	fd = open(path, O_RDWR | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int nth_arm(int fd, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	return pwrite(fd, buf, len, 0) == len ? 0 : -errno;
}

/*
 * Disarm and tell whether the armed failure was injected. The read itself
 * is a user copy and so a failure point too: when it fails (EFAULT) the
 * count ran out in the read, not in the operation. Writing 0 may also use
 * up a last count; either way fail-nth is 0 afterwards.
 */
static bool nth_disarm(int fd)
{
	char buf[16] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (pwrite(fd, "0", 1, 0) < 0 && errno != EFAULT)
		perror("resetting fail-nth");
	if (n <= 0)
		return false;
	return strtoul(buf, NULL, 10) == 0;
}

/*
 * The text of the backend module, as "0x..." strings for the stack filter
 * knobs below; filled by module_text_range() before knobs_set().
 */
static char text_start[24], text_end[24];

/*
 * Let fail-nth reach every allocation (by default failslab and
 * fail_page_alloc skip those that may sleep) and keep the forced failures
 * quiet: a stack dump per attempt would bury the kernel log.
 *
 * And count only the allocations and user copies made with the backend
 * module on the stack (require-start/require-end): those are the failures
 * the module must handle, whether it allocates itself or asks the IOMMU
 * core or GUP to. The VFIO core's own allocations are left out: some of
 * them reach IOMMU core paths that treat a failure as impossible (giving
 * a released group its default domain back), and an injected failure
 * there leaves the Intel driver inconsistent until the guest crashes.
 * Knobs marked "filter" need CONFIG_FAULT_INJECTION_STACKTRACE_FILTER.
 */
static struct knob {
	const char *path;
	const char *val;
	bool filter;
	char saved[32];
	bool have;
} knobs[] = {
	{ .path = "failslab/ignore-gfp-wait", .val = "N" },
	{ .path = "failslab/verbose", .val = "0" },
	{ .path = "fail_page_alloc/ignore-gfp-wait", .val = "N" },
	{ .path = "fail_page_alloc/ignore-gfp-highmem", .val = "N" },
	{ .path = "fail_page_alloc/min-order", .val = "0" },
	{ .path = "fail_page_alloc/verbose", .val = "0" },
	{ .path = "fail_usercopy/verbose", .val = "0" },
	{ .path = "failslab/stacktrace-depth", .val = "32", .filter = true },
	{ .path = "failslab/require-start", .val = text_start, .filter = true },
	{ .path = "failslab/require-end", .val = text_end, .filter = true },
	{ .path = "fail_page_alloc/stacktrace-depth", .val = "32", .filter = true },
	{ .path = "fail_page_alloc/require-start", .val = text_start, .filter = true },
	{ .path = "fail_page_alloc/require-end", .val = text_end, .filter = true },
	{ .path = "fail_usercopy/stacktrace-depth", .val = "32", .filter = true },
	{ .path = "fail_usercopy/require-start", .val = text_start, .filter = true },
	{ .path = "fail_usercopy/require-end", .val = text_end, .filter = true },
	/* None by default; see reject_silent_resv(). */
	{ .path = "failslab/reject-start", .val = "0", .filter = true },
	{ .path = "failslab/reject-end", .val = "0", .filter = true },
	{ .path = "fail_page_alloc/reject-start", .val = "0", .filter = true },
	{ .path = "fail_page_alloc/reject-end", .val = "0", .filter = true },
};

/*
 * [start, end) of the text of module @name, from /proc/kallsyms (root
 * sees real addresses): from its lowest text symbol up to the first text
 * symbol above its highest one that is not its own. 0 or -errno.
 */
static int module_text_range(const char *name, unsigned long *start,
			     unsigned long *end)
{
	unsigned long lo = ULONG_MAX, hi = 0, next = ULONG_MAX, addr;
	char line[512], tag[80], type;
	FILE *fp;

	snprintf(tag, sizeof(tag), "[%s]", name);
	fp = fopen("/proc/kallsyms", "re");
	if (!fp)
		return -errno;
	/* Two passes: the neighbour above can only be known after the first. */
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%lx %c", &addr, &type) != 2 ||
		    (type != 't' && type != 'T') || !strstr(line, tag))
			continue;
		if (addr < lo)
			lo = addr;
		if (addr > hi)
			hi = addr;
	}
	rewind(fp);
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%lx %c", &addr, &type) != 2 ||
		    (type != 't' && type != 'T') || strstr(line, tag))
			continue;
		if (addr > hi && addr < next)
			next = addr;
		if (addr > lo && addr < hi) {
			fclose(fp);
			return -ERANGE;	/* not one block of text */
		}
	}
	fclose(fp);
	if (!lo || lo == ULONG_MAX)
		return -ENOENT;	/* not loaded, or addresses hidden */
	*start = lo;
	/* The last function's size is unknown: up to the neighbour. */
	*end = next - hi > (1UL << 20) ? hi + (1UL << 20) : next;
	return 0;
}

/* Fill text_start/text_end for the backend module; 0 or -errno. */
static int filter_prepare(void)
{
	unsigned long start, end;
	int ret = module_text_range(vid_backend_module(), &start, &end);

	if (ret)
		return ret;
	snprintf(text_start, sizeof(text_start), "%#lx", start);
	snprintf(text_end, sizeof(text_end), "%#lx", end);
	return 0;
}

static int knob_rw(const char *rel, char *get, size_t getlen, const char *put)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), FAULT_DEBUGFS "/%s", rel);
	fd = open(path, (put ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (put)
		n = write(fd, put, strlen(put));
	else
		n = read(fd, get, getlen - 1);
	close(fd);
	if (n < 0)
		return -errno;
	if (!put) {
		get[n] = '\0';
		get[strcspn(get, "\n")] = '\0';
	}
	return 0;
}

/*
 * Set the knobs that exist (fail_usercopy may not); 0 or -errno, -ENOENT
 * when the stack filter is missing.
 */
static int knobs_set(void)
{
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		struct knob *k = &knobs[i];

		ret = knob_rw(k->path, k->saved, sizeof(k->saved), NULL);
		/* fail_usercopy may be missing, with its filter knobs. */
		if (ret == -ENOENT &&
		    (!k->filter || !strncmp(k->path, "fail_usercopy/", 14)))
			continue;
		if (ret)
			return ret;
		k->have = true;
		ret = knob_rw(k->path, NULL, 0, k->val);
		if (ret)
			return ret;
	}
	return 0;
}

static void knobs_restore(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		struct knob *k = &knobs[i];

		if (k->have)
			knob_rw(k->path, NULL, 0, k->saved);
		k->have = false;
	}
}

/* ---------------------------------------------------------------------- */
/* what a failed call must leave alone                                    */
/* ---------------------------------------------------------------------- */

struct snap {
	struct vid_acct acct;
	struct vid_emu_status emu;
	size_t len;
	char text[SNAP_MAX];	/* every container's debugfs state and mappings */
};

/*
 * Append the file at @path to the snapshot, less its statistics lines
 * ("stat_..."): they count calls, failed ones too, and are not state.
 */
static void snap_file(struct snap *s, const char *path)
{
	char buf[SNAP_MAX], *line, *next;
	size_t len = 0, n;
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	while (len < sizeof(buf) - 1 &&
	       (got = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += got;
	close(fd);
	buf[len] = '\0';
	for (line = buf; *line; line = next) {
		next = strchrnul(line, '\n');
		if (*next)
			next++;
		if (!strncmp(line, "stat_", 5))
			continue;
		n = next - line;
		if (s->len + n >= sizeof(s->text))
			break;
		memcpy(s->text + s->len, line, n);
		s->len += n;
	}
	s->text[s->len] = '\0';
}

static bool snap_same(const struct snap *a, const struct snap *b)
{
	return a->acct.vmlck_kb == b->acct.vmlck_kb &&
	       a->acct.pinned == b->acct.pinned &&
	       a->emu.pinned_refs == b->emu.pinned_refs &&
	       !strcmp(a->text, b->text);
}

/* Nothing of the armed window may happen here: called only disarmed. */
static int snap_take(struct snap *s, int emu_dev)
{
	char path[300];
	struct dirent *de;
	DIR *dir;
	int ret;

	memset(s, 0, offsetof(struct snap, text));
	s->text[0] = '\0';
	ret = vid_acct_read(&s->acct);
	if (ret)
		return ret;
	if (emu_dev >= 0) {
		ret = vid_emu_status(emu_dev, &s->emu, false);
		if (ret)
			return ret;
	}
	dir = opendir(DEBUGFS);
	if (!dir)
		return 0;	/* in-tree backend: no view of its own */
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		s->len += snprintf(s->text + s->len, sizeof(s->text) - s->len,
				   "== %s\n", de->d_name);
		if (s->len >= sizeof(s->text))
			break;
		snprintf(path, sizeof(path), DEBUGFS "/%s/state", de->d_name);
		snap_file(s, path);
		snprintf(path, sizeof(path), DEBUGFS "/%s/mappings", de->d_name);
		snap_file(s, path);
	}
	closedir(dir);
	if (s->len >= sizeof(s->text))
		s->len = sizeof(s->text) - 1;
	s->text[s->len] = '\0';
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the containers and the sweep                                           */
/* ---------------------------------------------------------------------- */

struct fn {
	struct vid_ctx edu;	/* IOMMU-backed: edu on vfio-pci */
	struct vid_ctx emu;	/* emulated: the vid_emu test device */
	int edu_group;		/* edu's group added to the emulated container */
	int nth_fd;
	long refcnt;		/* of the backend module, before an attach */
	struct vid_acct base;
	uint8_t *small, *huge, *probe;
	uint64_t bits[64];
	/* fail_nth2: the second edu device, its group in edu1.group */
	struct vid_ctx edu1;
	struct vid_edu edu1_dev;
	char bdf1[32];
	uint8_t *cross;		/* fail_nth2's M1 */
	size_t m1_size;		/* how much of it M1 maps */
	/* of the current sweep */
	unsigned int points, failed, absorbed, late;
	unsigned int errnos[9];
};

/* The container the operations of the current test use. */
static int fn_container(struct fn *f)
{
	return f->emu.container >= 0 ? f->emu.container : f->edu.container;
}

struct op {
	const char *name;
	/* Preconditions of one attempt, run with nothing armed. */
	int (*prepare)(struct fn *f);
	/* The operation: one system call; 0 or -errno. */
	int (*run)(struct fn *f);
	/* After a failed attempt, a check of its own that nothing changed. */
	int (*unchanged)(struct fn *f);
	/* After every attempt: back to the test's starting state. */
	int (*reset)(struct fn *f);
	/* The container check after a failure; default: fn_works(). */
	int (*works)(struct fn *f);
	/* Turns the call's result into the operation's (optional). */
	int (*outcome)(struct fn *f, int ret);
	/* After a call that succeeded, even with a failure injected. */
	int (*done)(struct fn *f);
	/* The errnos a failed call may return (0-terminated; all if none). */
	int errs[3];
};

/* The container still maps and unmaps (and, if emulated, pins). */
static int fn_works(struct fn *f)
{
	int fd = fn_container(f);
	uint64_t unmapped;
	int ret;

	ret = vid_map(fd, IOVA_PROBE, f->probe, P, VID_MAP_RW);
	if (ret)
		return ret;
	if (f->emu.device >= 0) {
		ret = vid_emu_pin(f->emu.device, IOVA_PROBE, 1, PIN_RW, NULL);
		if (!ret)
			ret = vid_emu_unpin(f->emu.device, IOVA_PROBE, 1);
	}
	if (!ret)
		ret = vid_unmap(fd, IOVA_PROBE, P, &unmapped);
	if (!ret && unmapped != P)
		ret = -EIO;
	return ret;
}

static const struct {
	int err;
	const char *name;
} errno_kinds[] = {
	{ ENOMEM, "ENOMEM" },
	{ EFAULT, "EFAULT" },
	/* see served_by_us() */
	{ EXDEV, "given to another driver" },
	{ EIO, "EIO" },
	{ ENOSPC, "ENOSPC" },
	{ EINVAL, "EINVAL" },
	{ EBUSY, "EBUSY" },
	{ EAGAIN, "EAGAIN" },
};

static void count_errno(struct fn *f, int err)
{
	size_t i, n = ARRAY_SIZE(errno_kinds);

	for (i = 0; i < n && errno_kinds[i].err != err; i++)
		;
	f->errnos[i]++;	/* errnos[n]: any other */
}

static bool errno_allowed(const struct op *op, int err)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(op->errs) && op->errs[i]; i++)
		if (op->errs[i] == err)
			return true;
	return !op->errs[0];
}

/* The sweep's figures, as a TAP comment line. */
static void report(const struct op *op, const struct fn *f)
{
	size_t i, n = ARRAY_SIZE(errno_kinds);
	char errs[160] = "";
	size_t len = 0;

	for (i = 0; i <= n; i++) {
		if (!f->errnos[i])
			continue;
		len += snprintf(errs + len, sizeof(errs) - len, " %s %u",
				i < n ? errno_kinds[i].name : "other",
				f->errnos[i]);
		if (len >= sizeof(errs))
			break;
	}
	printf("# %s: %u failure points: %u failed calls (%s), %u absorbed",
	       op->name, f->points, f->failed, len ? errs + 1 : "none",
	       f->absorbed);
	if (f->late)
		printf(", %u failed writing the reply after the work was done",
		       f->late);
	printf("\n");
}

/* Print where two snapshots of debugfs text first differ. */
static void snap_diff(struct __test_metadata *_metadata, const struct snap *a,
		      const struct snap *b)
{
	size_t i = 0;

	while (a->text[i] && a->text[i] == b->text[i])
		i++;
	while (i > 0 && a->text[i - 1] != '\n')
		i--;
	TH_LOG("debugfs before:\n%.300s", a->text + i);
	TH_LOG("debugfs after:\n%.300s", b->text + i);
}

static void sweep(struct __test_metadata *_metadata, struct fn *f,
		  const struct op *op)
{
	static struct snap before, after, done;
	unsigned int n;
	bool fired;
	int ret;

	f->points = 0;
	f->failed = 0;
	f->absorbed = 0;
	f->late = 0;
	memset(f->errnos, 0, sizeof(f->errnos));

	/* One clean run first, to know what a successful call leaves. */
	ret = op->prepare ? op->prepare(f) : 0;
	ASSERT_EQ(0, ret) TH_LOG("%s: preparing: %s", op->name, strerror(-ret));
	ret = op->run(f);
	if (op->outcome)
		ret = op->outcome(f, ret);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", op->name, strerror(-ret));
	if (op->done) {
		ret = op->done(f);
		ASSERT_EQ(0, ret) TH_LOG("%s: after the call: %s", op->name,
					 strerror(-ret));
	}
	ASSERT_EQ(0, snap_take(&done, f->emu.device));
	ret = op->reset(f);
	ASSERT_EQ(0, ret) TH_LOG("%s: reset: %s", op->name, strerror(-ret));
	VID_ASSERT_ACCT(&f->base);

	for (n = 1; n <= MAX_POINTS; n++) {
		ret = op->prepare ? op->prepare(f) : 0;
		ASSERT_EQ(0, ret) TH_LOG("%s: preparing attempt %u: %s",
					 op->name, n, strerror(-ret));
		ASSERT_EQ(0, snap_take(&before, f->emu.device));

		ASSERT_EQ(0, nth_arm(f->nth_fd, n));
		ret = op->run(f);
		fired = nth_disarm(f->nth_fd);
		if (op->outcome)
			ret = op->outcome(f, ret);
		if (ret)
			ASSERT_EQ(0, snap_take(&after, f->emu.device));

		if (!fired) {
			ASSERT_EQ(0, ret)
				TH_LOG("%s: failed (%s) with no failure injected (attempt %u)",
				       op->name, strerror(-ret), n);
			f->points = n - 1;
		} else if (!ret) {
			f->absorbed++;
			ret = op->done ? op->done(f) : 0;
			EXPECT_EQ(0, ret)
				TH_LOG("%s, failure point %u absorbed, but: %s (bits %#llx)",
				       op->name, n, strerror(-ret),
				       (unsigned long long)f->bits[0]);
		} else if (ret == -EFAULT && snap_same(&after, &done) &&
			   !snap_same(&after, &before)) {
			/*
			 * The call did all its work and then could not write
			 * its reply (UNMAP_DMA's size): the uAPI writes it
			 * last, in-tree type1 too. Its effect is complete.
			 */
			f->late++;
		} else {
			f->failed++;
			count_errno(f, -ret);
			EXPECT_TRUE(errno_allowed(op, -ret))
				TH_LOG("%s, failure point %u: %s",
				       op->name, n, strerror(-ret));
			EXPECT_EQ(before.acct.vmlck_kb, after.acct.vmlck_kb)
				TH_LOG("%s, failure point %u (%s): VmLck %ld kB, was %ld kB",
				       op->name, n, strerror(-ret),
				       after.acct.vmlck_kb, before.acct.vmlck_kb);
			EXPECT_EQ(before.acct.pinned, after.acct.pinned)
				TH_LOG("%s, failure point %u (%s): %ld pinned pages, was %ld",
				       op->name, n, strerror(-ret),
				       after.acct.pinned, before.acct.pinned);
			EXPECT_EQ(before.emu.pinned_refs, after.emu.pinned_refs)
				TH_LOG("%s, failure point %u (%s): device pins %llu, were %llu",
				       op->name, n, strerror(-ret),
				       (unsigned long long)after.emu.pinned_refs,
				       (unsigned long long)before.emu.pinned_refs);
			EXPECT_EQ(0, after.emu.anomalies);
			EXPECT_STREQ(before.text, after.text) {
				TH_LOG("%s, failure point %u (%s): this module's view changed",
				       op->name, n, strerror(-ret));
				snap_diff(_metadata, &before, &after);
			}
			if (op->unchanged) {
				ret = op->unchanged(f);
				EXPECT_EQ(0, ret)
					TH_LOG("%s, failure point %u: %s",
					       op->name, n, strerror(-ret));
			}
			ret = op->works ? op->works(f) : fn_works(f);
			EXPECT_EQ(0, ret)
				TH_LOG("%s, failure point %u: the container stopped working: %s",
				       op->name, n, strerror(-ret));
		}

		ret = op->reset(f);
		ASSERT_EQ(0, ret) TH_LOG("%s: reset after attempt %u: %s",
					 op->name, n, strerror(-ret));
		VID_ASSERT_ACCT(&f->base);
		if (_metadata->exit_code != KSFT_PASS)
			break;	/* one report per sweep is enough */
		if (!fired)
			break;
	}
	ASSERT_LE(n, MAX_POINTS)
		TH_LOG("%s: still failing after %u failure points",
		       op->name, MAX_POINTS);
	report(op, f);
}

/* 2 MiB aligned anonymous memory, THP asked for, touched. */
static uint8_t *thp_alloc(size_t size)
{
	size_t span = size + SZ_2M;
	uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *p;

	if (raw == MAP_FAILED)
		return NULL;
	p = (uint8_t *)(((uintptr_t)raw + SZ_2M - 1) & ~(SZ_2M - 1));
	if (p > raw)
		munmap(raw, p - raw);
	munmap(p + size, raw + span - (p + size));
	madvise(p, size, MADV_HUGEPAGE);
	memset(p, 0x5a, size);
	return p;
}

/* ---------------------------------------------------------------------- */
/* the operations                                                         */
/* ---------------------------------------------------------------------- */

static int unmap_all(struct fn *f)
{
	return vid_unmap_raw(fn_container(f),
			     sizeof(struct vfio_iommu_type1_dma_unmap),
			     VFIO_DMA_UNMAP_FLAG_ALL, 0, 0, NULL);
}

static int dirty(struct fn *f, uint32_t flag)
{
	return vid_dirty_op(fn_container(f),
			    sizeof(struct vfio_iommu_type1_dirty_bitmap), flag);
}

static int map_small(struct fn *f)
{
	return vid_map(fn_container(f), IOVA_SMALL, f->small, SMALL_SIZE,
		       VID_MAP_RW);
}

static int map_huge(struct fn *f)
{
	return vid_map(fn_container(f), IOVA_HUGE, f->huge, HUGE_SIZE,
		       VID_MAP_RW);
}

static int unmap_small(struct fn *f)
{
	uint64_t unmapped;
	int ret = vid_unmap(fn_container(f), IOVA_SMALL, SMALL_SIZE,
			    &unmapped);

	return ret ? ret : unmapped == SMALL_SIZE ? 0 : -EIO;
}

static int map_small_start(struct fn *f)
{
	int ret = map_small(f);

	return ret ? ret : dirty(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
}

static int map_both(struct fn *f)
{
	int ret = map_small(f);

	return ret ? ret : map_huge(f);
}

static int stop_unmap_all(struct fn *f)
{
	int ret = dirty(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);

	return ret ? ret : unmap_all(f);
}

static int unmap_bitmap_small(struct fn *f)
{
	uint64_t unmapped;
	int ret;

	memset(f->bits, 0, sizeof(f->bits));
	ret = vid_unmap_bitmap(fn_container(f), 0, IOVA_SMALL, SMALL_SIZE, P,
			       f->bits, sizeof(f->bits), &unmapped);
	return ret ? ret : unmapped == SMALL_SIZE ? 0 : -EIO;
}

static int get_bitmap_small(struct fn *f)
{
	memset(f->bits, 0, sizeof(f->bits));
	return vid_get_bitmap(fn_container(f), 0, IOVA_SMALL, SMALL_SIZE, P,
			      f->bits, sizeof(f->bits));
}

static int start(struct fn *f)
{
	return dirty(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
}

/* After a failed START tracking is off: GET_BITMAP is refused. */
static int tracking_off(struct fn *f)
{
	int ret = get_bitmap_small(f);

	return ret == -EINVAL ? 0 : ret ? ret : -EEXIST;
}

/* --- attaching and detaching groups --------------------------------- */

/* A container with edu's group in it and no IOMMU type yet. */
static int edu_open_unset(struct fn *f)
{
	int ret;

	vid_ctx_init(&f->edu);
	ret = vid_open_container();
	if (ret < 0)
		return ret;
	f->edu.container = ret;
	ret = vid_open_group(f->edu.container);
	if (ret < 0) {
		vid_ctx_close(&f->edu);
		return ret;
	}
	f->edu.group = ret;
	return 0;
}

static int set_iommu(struct fn *f)
{
	return ioctl(f->edu.container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) ?
	       -errno : 0;
}

/*
 * VFIO_SET_IOMMU succeeds even when this module's open or attach failed:
 * the VFIO core then gives the container to the next driver that takes
 * it (in-tree type1). Count that as this module's failure.
 */
static int served_by_us(struct fn *f, int ret)
{
	if (ret)
		return ret;
	return vid_module_refcnt(vid_backend_module()) == f->refcnt + 1 ?
	       0 : -EXDEV;
}

static int edu_open_unset_refcnt(struct fn *f)
{
	int ret = edu_open_unset(f);

	f->refcnt = vid_module_refcnt(vid_backend_module());
	if (!ret && f->refcnt < 0)
		ret = (int)f->refcnt;
	return ret;
}

/* After a failed attach: a fresh container is served and maps. */
static int attach_works(struct fn *f)
{
	int ret;

	vid_ctx_close(&f->edu);
	ret = edu_open_unset_refcnt(f);
	if (!ret)
		ret = served_by_us(f, set_iommu(f));
	return ret ? ret : fn_works(f);
}

static int edu_close(struct fn *f)
{
	vid_ctx_close(&f->edu);
	return 0;
}

/* Detaching cannot fail: there is no failed state to check. */
static int no_check(struct fn *f)
{
	(void)f;
	return 0;
}

/* The emulated container with a mapping; edu's group opened, not added. */
static int emu_map_open_edu(struct fn *f)
{
	char path[64];
	int ret = map_small(f);

	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/dev/vfio/%d", vid_edu_group());
	ret = open(path, O_RDWR | O_CLOEXEC);
	if (ret < 0)
		return -errno;
	f->edu_group = ret;
	return 0;
}

static int add_edu_group(struct fn *f)
{
	return ioctl(f->edu_group, VFIO_GROUP_SET_CONTAINER,
		     &f->emu.container) ? -errno : 0;
}

static int close_edu_unmap_all(struct fn *f)
{
	if (f->edu_group >= 0)
		close(f->edu_group);
	f->edu_group = -1;
	return unmap_all(f);
}

static int emu_map_add_edu(struct fn *f)
{
	int ret = emu_map_open_edu(f);

	return ret ? ret : add_edu_group(f);
}

static int remove_edu_group(struct fn *f)
{
	return ioctl(f->edu_group, VFIO_GROUP_UNSET_CONTAINER) ? -errno : 0;
}

/* The edu container with a mapping; the sweep takes its only group away. */
static int edu_open_map(struct fn *f)
{
	int ret = edu_open_unset(f);

	if (!ret)
		ret = set_iommu(f);
	if (!ret)
		ret = map_small(f);
	if (ret)
		vid_ctx_close(&f->edu);
	return ret;
}

static int edu_unset_container(struct fn *f)
{
	return ioctl(f->edu.group, VFIO_GROUP_UNSET_CONTAINER) ? -errno : 0;
}

/* --- the emulated device -------------------------------------------- */

static int pin(struct fn *f)
{
	return vid_emu_pin(f->emu.device, IOVA_SMALL, PIN_PAGES, PIN_RW, NULL);
}

static int map_pin(struct fn *f)
{
	int ret = map_small(f);

	return ret ? ret : pin(f);
}

static int unpin(struct fn *f)
{
	return vid_emu_unpin(f->emu.device, IOVA_SMALL, PIN_PAGES);
}

static int unpin_stop_unmap_all(struct fn *f)
{
	int ret = vid_emu_unpin_all(f->emu.device);

	return ret ? ret : stop_unmap_all(f);
}

/* One page's worth from the middle of page 2: pages 2 and 3. */
#define RW_OFF		(2 * P + P / 2)

static int rw_write(struct fn *f)
{
	return vid_emu_rw(f->emu.device, IOVA_SMALL + RW_OFF, f->probe, P,
			  VID_EMU_RW_WRITE);
}

static int rw_read(struct fn *f)
{
	return vid_emu_rw(f->emu.device, IOVA_SMALL + RW_OFF, f->probe, P, 0);
}

/* Dirty pages 2 and 3 through the device, tracking on. */
static int map_start_write(struct fn *f)
{
	int ret = map_small_start(f);

	return ret ? ret : rw_write(f);
}

/* The report of pages 2 and 3 was not lost by the failed query. */
static int bits_kept(struct fn *f)
{
	int ret = get_bitmap_small(f);

	if (ret)
		return ret;
	return f->bits[0] == 0xc ? 0 : -EIO;
}

/*
 * A failed pin with tracking on reports at most the pages it pinned before
 * it failed, and undid: a prefix of the range, as in-tree (which sets a
 * page's dirty bit as it pins it and leaves it on unwinding).
 */
static int unwound_bits(struct fn *f)
{
	int ret = get_bitmap_small(f);
	uint64_t b = f->bits[0];

	if (ret)
		return ret;
	return b < (1ULL << PIN_PAGES) - 1 && !(b & (b + 1)) ? 0 : -EILSEQ;
}

/* A pin with tracking on reports its PIN_PAGES pages, and only them. */
static int pins_reported(struct fn *f)
{
	int ret = get_bitmap_small(f);

	if (ret)
		return ret;
	return f->bits[0] == (1ULL << PIN_PAGES) - 1 ? 0 : -EILSEQ;
}

/* --- reports that merge bitmaps ------------------------------------ */

/*
 * A report in pinned-page scope, or at a page size above the tracked one,
 * goes through the container's bounce page (vid_container.report_buf),
 * which its first such report takes and keeps until release: a sweep that
 * kept one container would have it from the clean run on and never fail
 * it. These sweeps give each attempt a new emulated container.
 */
static int emu_new_written(struct fn *f)
{
	bool served;
	int ret;

	ret = vid_emu_ctx_open(&f->emu, VID_EMU_DEV0, VFIO_TYPE1v2_IOMMU,
			       &served);
	if (!ret && !served)
		ret = -EXDEV;
	if (!ret)
		ret = map_start_write(f);
	if (ret)
		vid_ctx_close(&f->emu);
	return ret;
}

static int emu_close(struct fn *f)
{
	vid_ctx_close(&f->emu);
	return 0;
}

/* Pages 2 and 3, as blocks of 2 MiB: the first block of the range. */
static int get_bitmap_2m(struct fn *f)
{
	memset(f->bits, 0, sizeof(f->bits));
	return vid_get_bitmap(fn_container(f), 0, IOVA_SMALL, SZ_2M, SZ_2M,
			      f->bits, sizeof(f->bits));
}

static int unmap_bitmap_2m(struct fn *f)
{
	uint64_t unmapped;
	int ret;

	memset(f->bits, 0, sizeof(f->bits));
	ret = vid_unmap_bitmap(fn_container(f), 0, IOVA_SMALL, SZ_2M, SZ_2M,
			       f->bits, sizeof(f->bits), &unmapped);
	return ret ? ret : unmapped == SMALL_SIZE ? 0 : -EIO;
}

/* The reply's bitmap is @want in its first word and nothing after it. */
static int reply_is(const struct fn *f, uint64_t want)
{
	size_t i;

	if (f->bits[0] != want)
		return -EILSEQ;
	for (i = 1; i < ARRAY_SIZE(f->bits); i++)
		if (f->bits[i])
			return -EILSEQ;
	return 0;
}

/* A query that succeeded reported @want and forgot it: the next is empty. */
static int reported_and_cleared(struct fn *f, uint64_t want)
{
	int ret = reply_is(f, want);

	if (!ret)
		ret = get_bitmap_small(f);
	return ret ? ret : reply_is(f, 0) ? -EEXIST : 0;
}

static int pages_reported(struct fn *f)
{
	return reported_and_cleared(f, 0xc);
}

static int block_reported(struct fn *f)
{
	return reported_and_cleared(f, 1);
}

static int block_reply(struct fn *f)
{
	return reply_is(f, 1);
}

/* ---------------------------------------------------------------------- */
/* the tests                                                              */
/* ---------------------------------------------------------------------- */

/* Nothing open or armed: what a teardown may meet after any set-up. */
static void fn_init(struct fn *f)
{
	memset(f, 0, sizeof(*f));
	vid_ctx_init(&f->edu);
	vid_ctx_init(&f->emu);
	vid_ctx_init(&f->edu1);
	f->edu_group = -1;
	f->nth_fd = -1;
}

/*
 * The set-up both fixtures share, once the backend is loaded as the test
 * wants it: the stack filter on its text, the knobs, this thread's
 * fail-nth, the accounting baseline and the buffers every test maps.
 * false after SKIP (no stack filter); asserts the rest.
 */
static bool fn_arm_setup(struct __test_metadata *_metadata, struct fn *f)
{
	int ret = filter_prepare();

	ASSERT_EQ(0, ret) TH_LOG("text of %s in /proc/kallsyms: %s",
				 vid_backend_module(), strerror(-ret));
	/* A setup that stops early has no teardown: undo the knobs here. */
	ret = knobs_set();
	if (ret)
		knobs_restore();
	if (ret == -ENOENT)
		SKIP(return false, "%s", NO_FILTER);
	ASSERT_EQ(0, ret) TH_LOG("fault-injection knobs: %s", strerror(-ret));
	f->nth_fd = nth_open();
	ASSERT_LE(0, f->nth_fd) TH_LOG("fail-nth: %s", strerror(-f->nth_fd));
	VID_ASSERT_OK(vid_acct_read(&f->base));
	f->small = vid_alloc(SMALL_SIZE, 0x3c);
	f->probe = vid_alloc(P, 0x77);
	ASSERT_NE(NULL, f->small);
	ASSERT_NE(NULL, f->probe);
	return true;
}

/*
 * The teardown both fixtures share: fail-nth off, every file closed, the
 * shared buffers freed, the knobs as they were. The fixture frees its own
 * memory, then checks the accounting against f->base.
 */
static void fn_disarm_teardown(struct fn *f)
{
	if (f->nth_fd >= 0) {
		nth_disarm(f->nth_fd);
		close(f->nth_fd);
	}
	if (f->edu_group >= 0)
		close(f->edu_group);
	/* edu1's group is in edu's container: only edu's closes it. */
	f->edu1.container = -1;
	vid_ctx_close(&f->edu1);
	vid_ctx_close(&f->emu);
	vid_ctx_close(&f->edu);
	vid_free(f->small, SMALL_SIZE);
	vid_free(f->probe, P);
	knobs_restore();
}

FIXTURE(fail_nth) {
	struct fn f;
};

FIXTURE_SETUP(fail_nth)
{
	struct fn *f = &self->f;
	int ret;

	fn_init(f);
	if (!vid_prepare(_metadata))
		return;
	/*
	 * vid_emu loaded now, not later by a test: its text may land right
	 * above the backend's, where filter_prepare() would otherwise take
	 * it for the backend's (and fail vid_emu's own user copies).
	 */
	ret = vid_emu_load();
	ASSERT_EQ(0, ret) TH_LOG("loading %s: %s", VID_EMU_KO, strerror(-ret));
	if (!fn_arm_setup(_metadata, f))
		return;
	f->huge = thp_alloc(HUGE_SIZE);
	ASSERT_NE(NULL, f->huge);
}

FIXTURE_TEARDOWN(fail_nth)
{
	struct fn *f = &self->f;

	fn_disarm_teardown(f);
	if (f->huge)
		munmap(f->huge, HUGE_SIZE);
	if (f->small)
		VID_EXPECT_ACCT(&f->base);
}

/* The IOMMU-backed container, type set: edu's group attached. */
static void open_edu(struct __test_metadata *_metadata, struct fn *f)
{
	VID_ASSERT_OK(vid_ctx_open(&f->edu, VFIO_TYPE1v2_IOMMU));
}

/* The emulated container, served by the backend under test. */
static bool open_emu(struct __test_metadata *_metadata, struct fn *f)
{
	int ret;

	ret = vid_emu_load();
	ASSERT_EQ(0, ret) TH_LOG("loading %s: %s", VID_EMU_KO, strerror(-ret));
	return vid_emu_open(_metadata, &f->emu, VFIO_TYPE1v2_IOMMU);
}

#define SWEEP(...) do {							\
	const struct op __op = { __VA_ARGS__ };				\
	sweep(_metadata, &self->f, &__op);				\
} while (0)

TEST_F_TIMEOUT(fail_nth, attach, SWEEP_TIMEOUT)
{
	SWEEP(.name = "attach (VFIO_SET_IOMMU, edu)",
	      .prepare = edu_open_unset_refcnt, .run = set_iommu,
	      .outcome = served_by_us, .works = attach_works,
	      .reset = edu_close);
}

TEST_F_TIMEOUT(fail_nth, map_small, SWEEP_TIMEOUT)
{
	open_edu(_metadata, &self->f);
	SWEEP(.name = "MAP_DMA 16 x 4 KiB", .run = map_small,
	      .reset = unmap_all);
}

TEST_F_TIMEOUT(fail_nth, map_huge, SWEEP_TIMEOUT)
{
	open_edu(_metadata, &self->f);
	SWEEP(.name = "MAP_DMA 2 x 2 MiB THP", .run = map_huge,
	      .reset = unmap_all);
}

TEST_F_TIMEOUT(fail_nth, unmap, SWEEP_TIMEOUT)
{
	open_edu(_metadata, &self->f);
	SWEEP(.name = "UNMAP_DMA", .prepare = map_small, .run = unmap_small,
	      .reset = unmap_all);
}

TEST_F_TIMEOUT(fail_nth, unmap_bitmap, SWEEP_TIMEOUT)
{
	open_edu(_metadata, &self->f);
	SWEEP(.name = "UNMAP_DMA with dirty bitmap",
	      .prepare = map_small_start, .run = unmap_bitmap_small,
	      .reset = stop_unmap_all);
}

TEST_F_TIMEOUT(fail_nth, dirty_start, SWEEP_TIMEOUT)
{
	open_edu(_metadata, &self->f);
	SWEEP(.name = "DIRTY_PAGES START", .prepare = map_both, .run = start,
	      .unchanged = tracking_off, .reset = stop_unmap_all);
}

TEST_F_TIMEOUT(fail_nth, get_bitmap, SWEEP_TIMEOUT)
{
	open_edu(_metadata, &self->f);
	SWEEP(.name = "DIRTY_PAGES GET_BITMAP", .prepare = map_small_start,
	      .run = get_bitmap_small, .reset = stop_unmap_all);
}

TEST_F_TIMEOUT(fail_nth, detach_last, SWEEP_TIMEOUT)
{
	SWEEP(.name = "detach the last group (UNSET_CONTAINER, edu)",
	      .prepare = edu_open_map, .run = edu_unset_container,
	      .works = no_check, .reset = edu_close);
}

TEST_F_TIMEOUT(fail_nth, emu_pin, SWEEP_TIMEOUT)
{
	if (!open_emu(_metadata, &self->f))
		return;
	SWEEP(.name = "pin_pages (vid_emu PIN)", .prepare = map_small,
	      .run = pin, .reset = unpin_stop_unmap_all);
}

TEST_F_TIMEOUT(fail_nth, emu_unpin, SWEEP_TIMEOUT)
{
	if (!open_emu(_metadata, &self->f))
		return;
	SWEEP(.name = "unpin_pages (vid_emu UNPIN)", .prepare = map_pin,
	      .run = unpin, .reset = unpin_stop_unmap_all);
}

TEST_F_TIMEOUT(fail_nth, emu_dma_rw, SWEEP_TIMEOUT)
{
	if (!open_emu(_metadata, &self->f))
		return;
	SWEEP(.name = "dma_rw write (vid_emu RW)", .prepare = map_small_start,
	      .run = rw_write, .reset = unpin_stop_unmap_all);
	SWEEP(.name = "dma_rw read (vid_emu RW)", .prepare = map_small,
	      .run = rw_read, .reset = unpin_stop_unmap_all);
}

TEST_F_TIMEOUT(fail_nth, emu_dirty_start_pinned, SWEEP_TIMEOUT)
{
	if (!open_emu(_metadata, &self->f))
		return;
	SWEEP(.name = "DIRTY_PAGES START with pins", .prepare = map_pin,
	      .run = start, .unchanged = tracking_off,
	      .reset = unpin_stop_unmap_all);
}

/*
 * A query in pinned-page scope, each attempt on a new container so that
 * the bounce page is taken in the call (vid_copy_bits()): a failed query
 * clears nothing, the next still reports pages 2 and 3; one that succeeds
 * reports exactly them and clears them.
 */
TEST_F_TIMEOUT(fail_nth, emu_get_bitmap, SWEEP_TIMEOUT)
{
	if (!open_emu(_metadata, &self->f))
		return;
	vid_ctx_close(&self->f.emu);
	SWEEP(.name = "GET_BITMAP in pinned-page scope, new container",
	      .prepare = emu_new_written, .run = get_bitmap_small,
	      .done = pages_reported, .unchanged = bits_kept,
	      .reset = emu_close, .errs = { ENOMEM, EFAULT });
}

/*
 * Reports at 2 MiB of pages tracked at 4 KiB fold the bits into blocks
 * first (vid_coarsen()), in a bitmap of their own taken per report: a
 * GET_BITMAP (on a new container per attempt, so that the bounce page is
 * taken too) and an UNMAP_DMA with a bitmap (one container). A failed
 * call clears and removes nothing; one that succeeds reports exactly the
 * first block. Here the slab and page allocations the kernel makes for
 * itself between the block bitmap and the bounce page (a new slab, its
 * memcg vector: failures it absorbs) come and go from one attempt to the
 * next and may shift the bounce page past the attempt that would fail it:
 * emu_get_bitmap is the sweep that always does.
 */
TEST_F_TIMEOUT(fail_nth, emu_report_2m, SWEEP_TIMEOUT)
{
	if (!open_emu(_metadata, &self->f))
		return;
	SWEEP(.name = "UNMAP_DMA with a 2 MiB bitmap in pinned-page scope",
	      .prepare = map_start_write, .run = unmap_bitmap_2m,
	      .done = block_reply, .unchanged = bits_kept,
	      .reset = unpin_stop_unmap_all, .errs = { ENOMEM, EFAULT });
	vid_ctx_close(&self->f.emu);
	SWEEP(.name = "GET_BITMAP at 2 MiB in pinned-page scope, new container",
	      .prepare = emu_new_written, .run = get_bitmap_2m,
	      .done = block_reported, .unchanged = bits_kept,
	      .reset = emu_close, .errs = { ENOMEM, EFAULT });
}

TEST_F_TIMEOUT(fail_nth, attach_with_mappings, SWEEP_TIMEOUT)
{
	if (!open_emu(_metadata, &self->f))
		return;
	SWEEP(.name = "attach edu to a container with mappings",
	      .prepare = emu_map_open_edu, .run = add_edu_group,
	      .reset = close_edu_unmap_all);
}

TEST_F_TIMEOUT(fail_nth, detach_with_mappings, SWEEP_TIMEOUT)
{
	if (!open_emu(_metadata, &self->f))
		return;
	SWEEP(.name = "detach edu from a container with mappings",
	      .prepare = emu_map_add_edu, .run = remove_edu_group,
	      .reset = close_edu_unmap_all);
}

/* --- GET_INFO: building and copying the capability chain ------------ */

static uint64_t info_buf[512];
/* Set when a GET_INFO that returned 0 gave a wrong reply. */
static const char *info_wrong;

static int get_info(struct fn *f)
{
	struct vfio_iommu_type1_info *info = (void *)info_buf;

	memset(info_buf, 0, sizeof(info_buf));
	info->argsz = sizeof(info_buf);
	return ioctl(fn_container(f), VFIO_IOMMU_GET_INFO, info) ? -errno : 0;
}

/*
 * A GET_INFO that succeeds, with or without a failure injected, must
 * give the whole reply: the page sizes and all four capabilities, in
 * the order the module builds them. A failure the module hid (a chain
 * with a capability missing) is noted in info_wrong.
 */
static int get_info_outcome(struct fn *f, int ret)
{
	static const uint16_t ids[] = {
		VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
		VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
		VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
		VFIO_IOMMU_TYPE1_INFO_CAP_DIRTY_EXT,
	};
	const struct vfio_iommu_type1_info *info = (void *)info_buf;
	const struct vfio_info_cap_header *hdr;
	uint32_t off = info->cap_offset;
	unsigned int i;

	(void)f;
	if (ret)
		return ret;
	if (info->flags != (VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS) ||
	    !(info->iova_pgsizes & P) || off != sizeof(*info)) {
		info_wrong = "flags, page sizes or cap_offset";
		return 0;
	}
	for (i = 0; i < ARRAY_SIZE(ids); i++) {
		if (!off || off + sizeof(*hdr) > sizeof(info_buf)) {
			info_wrong = "a capability missing";
			return 0;
		}
		hdr = (const void *)((const char *)info_buf + off);
		if (hdr->id != ids[i]) {
			info_wrong = "a capability out of place";
			return 0;
		}
		off = hdr->next;
	}
	if (off)
		info_wrong = "a capability too many";
	return 0;
}

/*
 * Every allocation (the IOVA range capability, each step of the chain)
 * and every user copy (the fixed part in, the chain and the fixed part
 * out) of GET_INFO, failed in turn: the call fails with ENOMEM or EFAULT,
 * or succeeds with the whole reply, never with a part of it.
 */
TEST_F_TIMEOUT(fail_nth, get_info, SWEEP_TIMEOUT)
{
	unsigned int i;

	open_edu(_metadata, &self->f);
	info_wrong = NULL;
	SWEEP(.name = "IOMMU_GET_INFO with its capability chain",
	      .prepare = map_small, .run = get_info,
	      .outcome = get_info_outcome, .reset = unmap_all);
	ASSERT_EQ(NULL, info_wrong) TH_LOG("a reply of 0 with %s", info_wrong);
	EXPECT_LT(0, self->f.errnos[0]) TH_LOG("no ENOMEM");
	EXPECT_LT(0, self->f.errnos[1]) TH_LOG("no EFAULT");
	for (i = 2; i < ARRAY_SIZE(self->f.errnos); i++) {
		EXPECT_EQ(0, self->f.errnos[i])
			TH_LOG("errno kind %u", i);
	}
}

/*
 * The first pin of a mapping while tracking is on allocates its pinned-page
 * bitmap (vid_dirty_pin()); when that fails the pin fails with ENOMEM
 * after its page was charged, and the charge must go back with the pin.
 * Pages a failed pin had pinned and gave back stay dirty until reported,
 * as in-tree; a pin that succeeds reports exactly its pages.
 */
TEST_F_TIMEOUT(fail_nth, emu_pin_tracking, SWEEP_TIMEOUT)
{
	if (!open_emu(_metadata, &self->f))
		return;
	SWEEP(.name = "pin_pages with tracking on (vid_emu PIN)",
	      .prepare = map_small_start, .run = pin, .done = pins_reported,
	      .unchanged = unwound_bits, .reset = unpin_stop_unmap_all,
	      .errs = { ENOMEM });
}

/* ---------------------------------------------------------------------- */
/* two IOMMU domains (this module loaded with test_domain_per_group=1)    */
/* ---------------------------------------------------------------------- */

/*
 * M1: from just below a 2 MiB boundary of IOVA to just past it (2 pages),
 * or past the next one too (514 pages), so that a new domain needs a
 * page-table page for its first page, its second and its last; the frames
 * at those boundaries are not consecutive, so each starts a run of its
 * own (an iommu_map() call of its own). M2, M3, M4: one page each in
 * other 2 MiB of IOVA, after M1, each needing a page-table page of its
 * own. Which failure points the IOMMU driver's allocations give the
 * replay depends on the layout, and allocations of the kernel's own
 * (KASAN's stack depot) shift them from one attempt to the next: the
 * test sweeps both layouts, with three mappings after M1.
 */
#define M1_PAGES	514UL
#define M1_SIZE		(M1_PAGES * P)
#define IOVA_M1		(0x1200000ULL - P)
#define IOVA_M2		0x2000000ULL
#define M_AFTER		3		/* M2, M3, M4: 2 MiB apart */
/* Bytes per edu transfer: below 4096 (edu aborts QEMU at its last byte). */
#define XFER		2048UL

/* Page frame number behind @addr, from /proc/self/pagemap (root only). */
static int pagemap_pfn(const void *addr, uint64_t *pfn)
{
	uint64_t e;
	ssize_t n;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, &e, sizeof(e), (off_t)((uintptr_t)addr / P * sizeof(e)));
	close(fd);
	if (n != sizeof(e))
		return n < 0 ? -errno : -EIO;
	if (!(e >> 63))
		return -ENODATA;
	*pfn = e & ((1ULL << 55) - 1);
	return *pfn ? 0 : -EPERM;
}

/* Does the page at @p start a run: its frame does not follow the last? */
static bool run_starts(const uint8_t *p)
{
	uint64_t a, b;

	return !pagemap_pfn(p - P, &a) && !pagemap_pfn(p, &b) && b != a + 1;
}

/*
 * M1's memory, with runs starting at both 2 MiB boundaries of IOVA, or
 * NULL. Pages touched in order tend to get consecutive frames: a page at a
 * boundary that continues the run before it gets a new frame, with the one
 * it gave up taken by a scratch page first.
 */
static uint8_t *m1_alloc(void)
{
	const size_t at[] = { P, M1_SIZE - P };
	uint8_t *p = vid_alloc(M1_SIZE, 0x11), *scratch[16];
	size_t i;
	int n = 0;

	for (i = 0; p && i < ARRAY_SIZE(at); i++) {
		while (!run_starts(p + at[i]) && n < 16) {
			madvise(p + at[i], P, MADV_DONTNEED);
			scratch[n] = vid_alloc(P, 0x22);
			if (!scratch[n])
				break;
			n++;
			memset(p + at[i], 0x11, P);
		}
		if (!run_starts(p + at[i])) {
			vid_free(p, M1_SIZE);
			p = NULL;
		}
	}
	while (n--)
		vid_free(scratch[n], P);
	return p;
}

/* Close edu1's device and group (the container is edu's). */
static void edu1_close(struct fn *f)
{
	f->edu1.container = -1;
	vid_ctx_close(&f->edu1);
}

static int two_close(struct fn *f)
{
	edu1_close(f);
	vid_ctx_close(&f->edu);
	return 0;
}

/* The container with both edu groups: two domains, no mapping. */
static int two_open(struct fn *f)
{
	int ret = edu_open_unset(f), id;

	if (!ret)
		ret = set_iommu(f);
	if (!ret) {
		id = vid_device_group("pci", f->bdf1);
		ret = id < 0 ? id : vid_open_group_id(f->edu.container, id);
		if (ret >= 0) {
			f->edu1.group = ret;
			ret = 0;
		}
	}
	if (!ret && vid_debugfs_state("domains") != 2)
		ret = -EXDEV;
	if (ret)
		two_close(f);
	return ret;
}

/* After a failed map: the same range maps and unmaps in both domains. */
static int remap_small(struct fn *f)
{
	int ret = map_small(f);

	return ret ? ret : unmap_small(f);
}

/* edu's container with M1 to M4; edu1's group opened, not added. */
static int one_domain_maps(struct fn *f)
{
	char path[64];
	int ret, id, i;

	vid_fill_pattern(f->cross, f->m1_size, 21);
	memset(f->small, 0, P);
	ret = edu_open_unset(f);
	if (!ret)
		ret = set_iommu(f);
	if (!ret)
		ret = vid_map(f->edu.container, IOVA_M1, f->cross,
			      f->m1_size, VID_MAP_RW);
	for (i = 0; !ret && i < M_AFTER; i++)
		ret = vid_map(f->edu.container, IOVA_M2 + i * SZ_2M,
			      f->small + i * P, P, VID_MAP_RW);
	if (!ret) {
		id = vid_device_group("pci", f->bdf1);
		snprintf(path, sizeof(path), "/dev/vfio/%d", id);
		ret = id < 0 ? id : open(path, O_RDWR | O_CLOEXEC);
		if (ret >= 0) {
			f->edu1.group = ret;
			ret = 0;
		} else if (id >= 0) {
			ret = -errno;
		}
	}
	if (ret)
		two_close(f);
	return ret;
}

static int add_edu1(struct fn *f)
{
	return ioctl(f->edu1.group, VFIO_GROUP_SET_CONTAINER,
		     &f->edu.container) ? -errno : 0;
}

/* Let edu1 copy @iova's first XFER bytes to @dst; 0 or -errno. */
static int edu1_copy(struct fn *f, uint64_t iova, uint64_t dst)
{
	int ret = vid_edu_dma(&f->edu1_dev, iova, 0, XFER, false);

	return ret ? ret : vid_edu_dma(&f->edu1_dev, dst, 0, XFER, true);
}

/*
 * The new domain of edu1 maps all of M1 and M2: edu1 copies the start of
 * M1's last page, then the end of its first page, into M2.
 */
static int replayed(struct fn *f)
{
	int ret;

	if (vid_debugfs_state("domains") != 2)
		return -EXDEV;
	ret = vid_edu_open_bdf(&f->edu1, f->bdf1, &f->edu1_dev);
	if (!ret)
		ret = edu1_copy(f, IOVA_M1 + f->m1_size - P, IOVA_M2);
	if (!ret)
		ret = edu1_copy(f, IOVA_M1 + P - XFER, IOVA_M2 + XFER);
	if (!ret && (vid_first_diff(f->small, f->cross + f->m1_size - P,
				    XFER) != -1 ||
		     vid_first_diff(f->small + XFER, f->cross + P - XFER,
				    XFER) != -1))
		ret = -EILSEQ;
	if (f->edu1.device >= 0)
		close(f->edu1.device);
	f->edu1.device = -1;
	memset(f->small, 0, P);
	return ret;
}

/* After a failed attach the same group attaches and gets everything. */
static int attach_again(struct fn *f)
{
	int ret = add_edu1(f);

	return ret ? ret : replayed(f);
}

FIXTURE(fail_nth2) {
	struct fn f;
	bool reloaded;
};

FIXTURE_SETUP(fail_nth2)
{
	struct fn *f = &self->f;
	char bdf0[32];
	int ret;

	fn_init(f);
	self->reloaded = false;
	if (!vid_prepare(_metadata))
		return;
	if (vid_backend_intree())
		SKIP(return, "in-tree type1 cannot be given a domain per group");
	if (vid_edu_bdf_nth(0, bdf0, sizeof(bdf0)) ||
	    vid_edu_bdf_nth(1, f->bdf1, sizeof(f->bdf1)))
		SKIP(return, "fewer than 2 edu devices in VID_EDU_BDFS");
	self->reloaded = true;
	ret = vid_emu_load();
	ASSERT_EQ(0, ret) TH_LOG("loading %s: %s", VID_EMU_KO, strerror(-ret));
	/* The module's text moves with the reload: filter after it. */
	VID_ASSERT_OK(vid_module_reload_ours("test_domain_per_group=1"));
	if (!fn_arm_setup(_metadata, f))
		return;
	f->cross = m1_alloc();
	ASSERT_NE(NULL, f->cross) TH_LOG("no runs at M1's 2 MiB boundaries");
}

FIXTURE_TEARDOWN(fail_nth2)
{
	struct fn *f = &self->f;

	fn_disarm_teardown(f);
	vid_free(f->cross, M1_SIZE);
	if (!self->reloaded)
		return;
	if (f->small)
		VID_EXPECT_ACCT(&f->base);
	/* Later programs expect the module as the suite loaded it. */
	EXPECT_EQ(0, vid_module_remove(VID_MOD_OURS, false));
	EXPECT_EQ(0, vid_module_load_ours());
}

/*
 * A run is mapped into one domain after the other (vid_map_run()); when
 * the second domain's page tables cannot be had, the first must lose the
 * run again: the same range then maps again cleanly (an IOVA left mapped
 * in the first domain makes the Intel driver warn "DMA PTE ... already
 * set") and nothing stays pinned or charged.
 */
TEST_F_TIMEOUT(fail_nth2, map_two_domains, SWEEP_TIMEOUT)
{
	SWEEP(.name = "MAP_DMA into two domains", .prepare = two_open,
	      .run = map_small, .unchanged = remap_small, .reset = two_close,
	      .errs = { ENOMEM, EFAULT });
}

/*
 * A group attached to a container that already has an IOMMU domain gets
 * the mappings copied into its new domain (vid_replay_copy()), run by run.
 * Failing at any point it leaves the container as it was, and the same
 * group attaches afterwards and reaches every page; an attach that
 * succeeds, with a failure absorbed or not, reaches them too.
 */
TEST_F_TIMEOUT(fail_nth2, attach_replays_copy, 2 * SWEEP_TIMEOUT)
{
	self->f.m1_size = 2 * P;
	SWEEP(.name = "attach edu1 to mappings of 2, 1, 1 and 1 pages",
	      .prepare = one_domain_maps, .run = add_edu1, .done = replayed,
	      .unchanged = attach_again, .reset = two_close);
	self->f.m1_size = M1_SIZE;
	SWEEP(.name = "attach edu1 to mappings of 514, 1, 1 and 1 pages",
	      .prepare = one_domain_maps, .run = add_edu1, .done = replayed,
	      .unchanged = attach_again, .reset = two_close);
}

/* The usable IOVA ranges of a container, as GET_INFO reports them. */
#define MAX_RANGES	16
struct ranges {
	uint32_t n;
	struct vfio_iova_range r[MAX_RANGES];
};

/* Before the detach of the current attempt, and after the clean one. */
static struct ranges ranges_before, ranges_clean;
static bool have_clean;

/* @out: the ranges of GET_INFO's IOVA range capability (n = 0 without). */
static int ranges_read(struct fn *f, struct ranges *out)
{
	const struct vfio_iommu_type1_info *info = (void *)info_buf;
	const struct vfio_iommu_type1_info_cap_iova_range *cap;
	const struct vfio_info_cap_header *hdr;
	uint32_t off;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = get_info(f);
	if (ret)
		return ret;
	for (off = info->cap_offset; off; off = hdr->next) {
		if (off + sizeof(*cap) > sizeof(info_buf))
			return -EOVERFLOW;
		hdr = (const void *)((const char *)info_buf + off);
		if (hdr->id != VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)
			continue;
		cap = (const void *)hdr;
		if (cap->nr_iovas > MAX_RANGES ||
		    off + sizeof(*cap) + cap->nr_iovas * sizeof(out->r[0]) >
		    sizeof(info_buf))
			return -E2BIG;
		out->n = cap->nr_iovas;
		memcpy(out->r, cap->iova_ranges, out->n * sizeof(out->r[0]));
	}
	return 0;
}

static bool ranges_same(const struct ranges *a, const struct ranges *b)
{
	return a->n == b->n && !memcmp(a->r, b->r, a->n * sizeof(a->r[0]));
}

static void ranges_print(const char *what, const struct ranges *r)
{
	uint32_t i;

	printf("# IOVA ranges %s:", what);
	for (i = 0; i < r->n; i++)
		printf(" %#llx-%#llx", (unsigned long long)r->r[i].start,
		       (unsigned long long)r->r[i].end);
	printf("%s\n", r->n ? "" : " none");
}

/*
 * [start, end) of the kernel's text symbol @name, from /proc/kallsyms: up
 * to the next text symbol above it. 0 or -errno.
 */
static int symbol_range(const char *name, unsigned long *start,
			unsigned long *end)
{
	unsigned long addr, at = 0, next = ULONG_MAX;
	char line[512], sym[256], type;
	FILE *fp = fopen("/proc/kallsyms", "re");

	if (!fp)
		return -errno;
	while (!at && fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%lx %c %255s", &addr, &type, sym) == 3 &&
		    (type == 't' || type == 'T') && !strcmp(sym, name))
			at = addr;
	}
	rewind(fp);
	while (at && fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%lx %c", &addr, &type) == 2 &&
		    (type == 't' || type == 'T') && addr > at && addr < next)
			next = addr;
	}
	fclose(fp);
	if (!at || next == ULONG_MAX)
		return -ENOENT;
	*start = at;
	*end = next;
	return 0;
}

/*
 * An IOMMU driver's get_resv_regions op returns nothing: when an
 * allocation fails there the region is left out of the list, unsaid
 * (VT-d's MSI window in intel_iommu_get_resv_regions(), SMMUv3's in
 * arm_smmu_get_resv_regions()), and iommu_get_group_resv_regions()
 * returns 0 with the list short. Neither this module nor in-tree type1
 * can tell. A sweep that checks the usable ranges leaves the allocations
 * of the first of these ops the kernel has alone (@on), or none again.
 * 0 or -errno.
 */
static int reject_silent_resv(bool on)
{
	static const char *const ops[] = {
		"intel_iommu_get_resv_regions",
		"arm_smmu_get_resv_regions",
	};
	static const char *const attrs[] = { "failslab", "fail_page_alloc" };
	char start[24] = "0", end[24] = "0", path[64];
	unsigned long lo, hi;
	size_t i;
	int ret = 0;

	for (i = 0; on && i < ARRAY_SIZE(ops); i++) {
		if (!symbol_range(ops[i], &lo, &hi)) {
			snprintf(start, sizeof(start), "%#lx", lo);
			snprintf(end, sizeof(end), "%#lx", hi);
			break;
		}
	}
	if (on && i == ARRAY_SIZE(ops))
		return -ENOENT;
	for (i = 0; !ret && i < ARRAY_SIZE(attrs); i++) {
		snprintf(path, sizeof(path), "%s/reject-start", attrs[i]);
		ret = knob_rw(path, NULL, 0, start);
		snprintf(path, sizeof(path), "%s/reject-end", attrs[i]);
		if (!ret)
			ret = knob_rw(path, NULL, 0, end);
	}
	return ret;
}

/* Both groups, a domain each, a mapping; the ranges noted. */
static int two_open_map(struct fn *f)
{
	int ret = two_open(f);

	if (!ret)
		ret = map_small(f);
	if (!ret)
		ret = ranges_read(f, &ranges_before);
	if (ret)
		two_close(f);
	return ret;
}

static int remove_edu1(struct fn *f)
{
	return ioctl(f->edu1.group, VFIO_GROUP_UNSET_CONTAINER) ? -errno : 0;
}

/*
 * After edu1 left: one domain, and the usable ranges either those the
 * clean detach gave (the first call, which notes them) or, when they could
 * not be computed again, the stricter ones of before; never fewer limits
 * than both (an empty list would allow every IOVA).
 */
static int ranges_kept(struct fn *f)
{
	struct ranges now;
	int ret;

	if (vid_debugfs_state("domains") != 1)
		return -EXDEV;
	ret = ranges_read(f, &now);
	if (ret)
		return ret;
	if (!have_clean) {
		ranges_clean = now;
		have_clean = true;
	}
	if (!ranges_same(&now, &ranges_clean) &&
	    !ranges_same(&now, &ranges_before)) {
		ranges_print("before the detach", &ranges_before);
		ranges_print("after the clean detach", &ranges_clean);
		ranges_print("now", &now);
		return -EILSEQ;
	}
	return now.n ? fn_works(f) : -ENOENT;
}

/*
 * A group leaving a container that keeps another domain: the usable IOVA
 * ranges are computed again without it (vid_iova_refresh(), with the
 * allocations of vid_iova_build() and the IOMMU core's reserved-region
 * lists, less the IOMMU driver's own: reject_silent_resv()). A detach
 * cannot fail; when that computation does, the container keeps the
 * ranges it had, which is safe, and still maps.
 */
TEST_F_TIMEOUT(fail_nth2, detach_keeps_ranges, SWEEP_TIMEOUT)
{
	int ret = reject_silent_resv(true);

	ASSERT_EQ(0, ret) TH_LOG("the IOMMU driver's get_resv_regions: %s",
				 strerror(-ret));
	have_clean = false;
	SWEEP(.name = "detach edu1, edu's domain stays",
	      .prepare = two_open_map, .run = remove_edu1, .done = ranges_kept,
	      .reset = two_close);
	EXPECT_LT(0, self->f.absorbed) TH_LOG("no failure point reached");
	EXPECT_EQ(0, reject_silent_resv(false));
}

int main(int argc, char **argv)
{
	int fd = nth_open();

	/* Without CONFIG_FAULT_INJECTION nothing here can run. */
	if (fd < 0) {
		ksft_print_header();
		ksft_exit_skip("no fail-nth in /proc (kernel without CONFIG_FAULT_INJECTION): %s\n",
			       strerror(-fd));
	}
	close(fd);
	return test_harness_run(argc, argv);
}
