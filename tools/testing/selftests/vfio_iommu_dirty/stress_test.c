// SPDX-License-Identifier: GPL-2.0
/*
 * Concurrency stress of one container: three processes with three threads
 * each map, unmap (plain, with a dirty bitmap, everything at once), start
 * and stop dirty tracking, get bitmaps, pin, unpin and write through the
 * emulated test device, all at the same time, for a fixed number of
 * operations drawn from a seeded generator (VID_SEED overrides the
 * default seed, VID_STRESS_ITERS the operations per thread).
 *
 * Two containers: the test device's group alone (pinned-page scope: only
 * what the device pins or writes is dirty) and the test device with edu
 * (an IOMMU-backed group that never pins, so every mapped page is dirty;
 * edu also does real DMA into a mapping of its own meanwhile).
 *
 * Every call's result is checked against what the shared bookkeeping
 * allows (see the expectations at each operation). Afterwards: the dirty
 * reports are checked against every device write and pin (the protocol
 * below), the module's view (debugfs) matches the bookkeeping, and once
 * everything is closed the locked memory, the system's pinned pages, the
 * module's reference count and its debugfs are back where they were, and
 * the kernel logged no problem.
 *
 * The dirty check
 * ---------------
 * The IOVA window is cut into slots; a mapping always covers one slot
 * exactly, so any range of slots covers whole mappings. Shared memory
 * holds, per slot, a state (free, busy, mapped) changed only by
 * compare-and-swap, so that one worker at a time maps or unmaps it, and a
 * generation number that is odd exactly while the slot is mapped and
 * usable: a mapper increments it after MAP_DMA returned, an unmapper
 * before it calls UNMAP_DMA. A session number is odd while tracking is
 * on: START is called and then the number incremented, the number is
 * incremented and then STOP called (under one lock, so that these two
 * steps never interleave between trackers); a second counter, odd while
 * such a step runs, tells the others when the session number says exactly
 * whether tracking is on. A global clock is a counter
 * every worker increments atomically (sequentially consistent) around its
 * calls.
 *
 * A device write or pin "counts" when it succeeded and both the slot's
 * generation and the session were the same odd values before it started
 * and after it returned: then the mapping existed and tracking was on for
 * the whole call. It is logged with the clock values t0 (before) and t1
 * (after). A report (GET_BITMAP, PEEK, UNMAP with a bitmap, the final
 * GET_BITMAP) is logged with its clock values and, per slot, the
 * generation it saw unchanged before and after the call (the unmap's own
 * report uses the generation it ended), and the session if that stayed
 * the same. A report whose numbers changed during the call cannot be
 * placed in one mapping and session, but it may still have reported and
 * cleared a page in ours, so it is logged too, marked as such.
 *
 * Claim: if a counted write W of page p (generation g, session s) and a
 * logged report R* covering p with the same g and s has t0(R*) > t1(W),
 * then some logged report R with the same g and s, with t1(R) > t0(W) and
 * t0(R) < t1(R*), reported p. Why it holds for a correct backend: W
 * returned before R* was called (its clock step is earlier), so W marked p
 * before R* ran; the same generation and session at both ends mean no
 * unmap and no STOP started in between (each changes its number before
 * its call), so the mark was only ever cleared by a report; the first
 * report to run after the mark (in the container lock's order) reported
 * p, ran no later than R* (so it was called before R* returned) and after
 * W started. If that first report is one of the marked ones (numbers
 * changed meanwhile), the page is excused instead of verified: a page is
 * blamed only when no report of either kind could have taken it. Writes
 * racing a STOP or an unmap (numbers changed) and writes no report
 * followed are not counted, so the check never blames the backend for
 * them. A write whose generation the unmapper changed
 * after the write's second look is covered by the unmap's own report: the
 * unmapper takes its clock value after the change, so later than t1(W).
 *
 * Precision: no page is reported that nobody made dirty. In pinned-page
 * scope a page is dirty when dma_rw wrote it since the last report, when it
 * is pinned, or when it was unpinned since the last report. Which of the
 * concurrent calls ran before a report is not known exactly, so the check
 * bounds the set instead: every call that may dirty a page is logged, also
 * when it failed or raced an unmap or a STOP (a dma_rw write, a pin, an
 * UNMAP with a bitmap that failed after it had the device unpin), with
 * the generations of its slot before and after; so is every successful
 * unpin-all. A page p reported by R (a report of p's slot in generation g)
 * is justified by such a call A of p whose generations allow g (the mapping
 * of g may still exist one step before and after its number says so; a
 * failed unmap counts as a pin of its slots in the old and new generation)
 * and that started before R returned, unless A's mark is known to be gone
 * before R began:
 *  - a write (or an unmap's unpins) is gone after a clearing report R' of
 *    generation g that was called after A returned and returned before R
 *    was called, or after a STOP called after A returned (R's session is
 *    at least two past the one A saw when it returned);
 *  - a pin is gone only once an unpin-all called after the pin returned has
 *    returned and then such a report or STOP ran: pins are counted, so an
 *    unpin of a range may leave the page pinned.
 * A page reported without such a call is an extra dirty page, and fails
 * the test. Outside pinned-page scope (edu) every page of a mapping is
 * dirty, so the set is exact there: all of a stable slot's pages. In both
 * scopes a report's bits that no mapping covered (slots known to have
 * been free for the whole call, and past the range) must still hold what
 * the caller put there (this backend; in-tree writes stale bits of its own
 * there, see README, differences).
 *
 * A pin bounded race: pinners pin only in a slot that is mapped and not
 * being unmapped, so at most one pin per worker lands in a mapping after
 * its unmap began; an unmap therefore needs at most a few dma_unmap
 * rounds (in-tree type1 BUG()s after 10).
 *
 * The program's code is in stress_*.c by concern; stress.h lists them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"
#include "stress.h"

/* ---------------------------------------------------------------------- */
/* the test                                                               */
/* ---------------------------------------------------------------------- */

FIXTURE(stress) {
	struct vid_ctx ctx;	/* container, edu group or none, edu device */
	int egroup;		/* the test device's group */
	struct run run;
	uint8_t *edu_buf;
};

FIXTURE_VARIANT(stress) {
	bool edu;
};

FIXTURE_VARIANT_ADD(stress, emu_only) {
	.edu = false,
};

FIXTURE_VARIANT_ADD(stress, emu_and_edu) {
	.edu = true,
};

FIXTURE_SETUP(stress)
{
	vid_ctx_init(&self->ctx);
	self->egroup = -1;
	self->edu_buf = NULL;
	memset(&self->run, 0, sizeof(self->run));
	self->run.device = -1;
}

FIXTURE_TEARDOWN(stress)
{
	if (self->run.device >= 0)
		close(self->run.device);
	if (self->egroup >= 0)
		close(self->egroup);
	vid_ctx_close(&self->ctx);
	if (self->run.buf)
		vid_free(self->run.buf, NSLOTS * SLOT_SIZE);
	if (self->edu_buf)
		vid_free(self->edu_buf, EDU_MAP_SIZE);
	if (self->run.sh) {
		/* Children still waiting (after a failure) may go now. */
		store32(&self->run.sh->release, 1);
		munmap(self->run.sh, self->run.sh_size);
	}
}

/* Open the container of the variant; false when the test was skipped. */
static bool stress_open(struct __test_metadata *_metadata,
			struct _test_data_stress *self, bool edu)
{
	struct run *run = &self->run;
	int egroup, dev;
	bool served;

	egroup = vid_device_group("platform", VID_EMU_DEV0);
	ASSERT_LE(0, egroup);
	if (edu) {
		VID_ASSERT_OK(vid_ctx_open(&self->ctx, 0));
		self->egroup = vid_open_group_id(self->ctx.container, egroup);
		ASSERT_LE(0, self->egroup);
		VID_ASSERT_OK(vid_set_iommu(self->ctx.container,
					    VFIO_TYPE1v2_IOMMU,
					    vid_backend_module(), &served));
		if (!vid_emu_served(_metadata, served))
			return false;
		dev = ioctl(self->egroup, VFIO_GROUP_GET_DEVICE_FD,
			    VID_EMU_DEV0);
		ASSERT_LE(0, dev);
		run->device = dev;
		VID_ASSERT_OK(vid_edu_open(&self->ctx, &run->edu));
	} else {
		VID_ASSERT_OK(vid_emu_ctx_open(&self->ctx, VID_EMU_DEV0,
					       VFIO_TYPE1v2_IOMMU, &served));
		if (!vid_emu_served(_metadata, served))
			return false;
		/* The device fd is the run's from now on. */
		run->device = self->ctx.device;
		self->ctx.device = -1;
	}
	run->container = self->ctx.container;
	run->with_edu = edu;
	return true;
}

static void stress_shared(struct __test_metadata *_metadata,
			  struct run *run)
{
	pthread_mutexattr_t attr;

	/* One entry per operation, three for a failed unmap: room for half. */
	run->ev_cap = (uint64_t)NWORKERS * run->iters * 3 / 2 + 16;
	run->sh_size = sizeof(struct shared) +
		       run->ev_cap * sizeof(struct event);
	run->sh = mmap(NULL, run->sh_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, run->sh) {
		run->sh = NULL;
	}
	ASSERT_EQ(0, pthread_mutexattr_init(&attr));
	ASSERT_EQ(0, pthread_mutexattr_setpshared(&attr,
						  PTHREAD_PROCESS_SHARED));
	ASSERT_EQ(0, pthread_mutex_init(&run->sh->track_lock, &attr));
	ASSERT_EQ(0, pthread_mutex_init(&run->sh->edu_lock, &attr));
	ASSERT_EQ(0, pthread_mutex_init(&run->sh->intree_lock, &attr));
	pthread_mutexattr_destroy(&attr);
	run->sh->edu_left = EDU_TRANSFERS;
}

/* Log (and forget) the notes of the final check. */
static void log_notes(struct __test_metadata *_metadata, struct verdict *v)
{
	unsigned int i;

	for (i = 0; i < v->nnotes; i++)
		TH_LOG("%s", v->note[i]);
	v->nnotes = 0;
}

static unsigned int stress_iters(void)
{
	const char *s = getenv("VID_STRESS_ITERS");
	long v;

	if (!s || !*s)
		return DEFAULT_ITERS;
	v = strtol(s, NULL, 0);
	return v > 0 && v <= 1000000 ? (unsigned int)v : DEFAULT_ITERS;
}

TEST_F_TIMEOUT(stress, run, 120)
{
	struct run *run = &self->run;
	struct shared *sh;
	struct worker ws[NTHREADS];
	pid_t pids[NPROCS] = { 0 };
	struct vid_emu_status st;
	struct vid_acct base;
	long refcnt_base = 0;
	uint64_t bits[WIN_WORDS], got, t0, t1;
	unsigned int i, nmapped = 0;
	char problem[512];
	struct verdict v;
	long long start;
	int kmsg, status;

	if (!vid_emu_prepare(_metadata))
		return;
	if (variant->edu && vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	kmsg = vid_kmsg_open();
	ASSERT_LE(0, kmsg);
	VID_ASSERT_OK(vid_acct_read(&base));
	refcnt_base = vid_module_refcnt(vid_backend_module());
	ASSERT_LE(0, refcnt_base);
	if (!vid_backend_intree())
		ASSERT_EQ(0, vid_debugfs_containers());

	if (!stress_open(_metadata, self, variant->edu))
		return;
	run->ours = !vid_backend_intree();
	run->seed = vid_seed(DEFAULT_SEED);
	run->iters = stress_iters();
	stress_shared(_metadata, run);
	sh = run->sh;
	TH_LOG("seed 0x%llx (VID_SEED), %d processes x %d threads x %u ops (VID_STRESS_ITERS)",
	       (unsigned long long)run->seed, NPROCS, NTHREADS, run->iters);

	if (variant->edu) {
		self->edu_buf = vid_alloc(EDU_MAP_SIZE, 0x11);
		ASSERT_NE(NULL, self->edu_buf);
		VID_ASSERT_OK(vid_map(run->container, EDU_IOVA, self->edu_buf,
				      EDU_MAP_SIZE, VID_MAP_RW));
	}

	start = vid_now_ms();
	run->deadline = start + DEADLINE_MS;
	for (i = 1; i < NPROCS; i++) {
		pid_t parent = getpid();

		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (!pids[i]) {
			run->proc = i;
			stress_child_main(run, parent);
		}
	}
	/* Our own memory only now: the children need not share it. */
	run->proc = 0;
	run->buf = vid_alloc(NSLOTS * SLOT_SIZE, 0x30);
	ASSERT_NE(NULL, run->buf);
	EXPECT_EQ(0, stress_run_workers(run, ws));
	while (load32(&sh->workers_done) < NWORKERS &&
	       vid_now_ms() < run->deadline + 30000)
		usleep(5000);
	EXPECT_EQ(NWORKERS, load32(&sh->workers_done));
	store32(&sh->release, 1);
	for (i = 1; i < NPROCS; i++) {
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("child %u: status 0x%x", i, status);
	}
	TH_LOG("concurrent phase: %lld ms%s", vid_now_ms() - start,
	       sh->deadline_hit ? " (stopped at the deadline)" : "");
	for (i = 0; i < NOPS; i++)
		if (sh->tried[i])
			TH_LOG("  %-13s %6llu drawn, %6llu called", op_name[i],
			       (unsigned long long)sh->tried[i],
			       (unsigned long long)sh->done[i]);

	/* One last report of everything, then tracking off. */
	for (i = 0; i < NSLOTS; i++)
		if (sh->slots[i].state == SLOT_MAPPED)
			nmapped++;
	if (sh->sess & 1) {
		uint32_t gen[NSLOTS] = { 0 }, hole = 0;

		for (i = 0; i < WIN_WORDS; i++)
			bits[i] = report_fill(run);
		for (i = 0; i < NSLOTS; i++) {
			if (sh->slots[i].state == SLOT_MAPPED)
				gen[i] = sh->slots[i].gen;
			else
				hole |= 1U << i;
		}
		t0 = tick(sh);
		VID_ASSERT_OK(vid_get_bitmap(run->container, 0, WIN_IOVA,
					     NSLOTS * SLOT_SIZE, P, bits,
					     sizeof(bits)));
		t1 = tick(sh);
		ws[0].id = 0;
		stress_report(&ws[0], OP_GET_BITMAP, bits, 0, NSLOTS, gen, hole,
			      sh->sess, t0, t1);
		inc32(&sh->sess);
	}
	VID_ASSERT_OK(vid_dirty_op(run->container, 8,
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));

	stress_check_log(run, &v);
	log_notes(_metadata, &v);
	TH_LOG("dirty check: %llu writes, %llu pins (%llu pages), %llu reports",
	       (unsigned long long)v.writes, (unsigned long long)v.pins,
	       (unsigned long long)v.pages, (unsigned long long)v.reports);
	TH_LOG("  %llu verified, %llu excused, %llu with no later report, %llu missed",
	       (unsigned long long)v.verified, (unsigned long long)v.excused,
	       (unsigned long long)v.open, (unsigned long long)v.missed);
	EXPECT_EQ(0, v.missed);
	/* The run must have checked something to mean anything. */
	EXPECT_LT(50, v.verified);
	if (!variant->edu) {
		VID_ASSERT_OK(stress_check_extra(run, &v));
		log_notes(_metadata, &v);
		TH_LOG("precision: %llu dirty pages reported, %llu justified, %llu extra",
		       (unsigned long long)v.dirty,
		       (unsigned long long)v.justified,
		       (unsigned long long)v.extra);
		EXPECT_EQ(0, v.extra);
		EXPECT_LT(50, v.dirty);
	}
	for (i = 0; i < sh->nbad && i < MAX_BAD; i++)
		TH_LOG("UNEXPECTED: %s", sh->bad[i]);
	EXPECT_EQ(0, sh->nbad);
	EXPECT_EQ(0, sh->log_full);

	/* The backend's view matches the bookkeeping. */
	VID_ASSERT_OK(vid_emu_status(run->device, &st, false));
	EXPECT_EQ(0, st.anomalies);
	if (run->ours) {
		EXPECT_EQ(nmapped + (variant->edu ? 1 : 0),
			  vid_debugfs_state("mappings"));
		EXPECT_EQ((long long)st.pinned_pages,
			  vid_debugfs_state("device_pinned_pages"));
	}

	/* Tear down: every pin, every mapping, every fd. */
	VID_ASSERT_OK(vid_emu_unpin_all(run->device));
	VID_ASSERT_OK(vid_emu_status(run->device, &st, false));
	EXPECT_EQ(0, st.pinned_pages);
	EXPECT_EQ(0, st.pinned_refs);
	VID_ASSERT_OK(vid_unmap(run->container, WIN_IOVA, NSLOTS * SLOT_SIZE,
				&got));
	EXPECT_EQ((uint64_t)nmapped * SLOT_SIZE, got);
	if (variant->edu) {
		VID_ASSERT_OK(vid_unmap(run->container, EDU_IOVA, EDU_MAP_SIZE,
					&got));
		EXPECT_EQ(EDU_MAP_SIZE, got);
	}
	if (run->ours)
		EXPECT_EQ(0, vid_debugfs_state("mappings"));
	close(run->device);
	run->device = -1;
	close(self->egroup);
	self->egroup = -1;
	vid_ctx_close(&self->ctx);
	vid_free(run->buf, NSLOTS * SLOT_SIZE);
	run->buf = NULL;
	vid_free(self->edu_buf, EDU_MAP_SIZE);
	self->edu_buf = NULL;

	VID_EXPECT_ACCT(&base);
	EXPECT_EQ(refcnt_base, vid_module_refcnt(vid_backend_module()));
	if (run->ours)
		EXPECT_EQ(0, vid_debugfs_containers());
	EXPECT_EQ(0, vid_kmsg_problems(kmsg, problem, sizeof(problem)))
		TH_LOG("kernel log: %s", problem);
	close(kmsg);
	TH_LOG("total %lld ms", vid_now_ms() - start);
}

/* ---------------------------------------------------------------------- */
/* a focused race: UNMAP with a bitmap against STOP                        */
/* ---------------------------------------------------------------------- */

#define RACE_PAGES	VID_EMU_PIN_MAX
#define RACE_IOVA	0x4000000ULL
#define RACE_ROUNDS	200
#define RACE_MAX_MS	15000

struct stop_race {
	int container;
	uint32_t stop;
	uint64_t toggles;
	int err;
};

/* STOP and START as fast as possible until told to stop. */
static void *stop_start_loop(void *arg)
{
	struct stop_race *r = arg;
	int ret;

	while (!load32(&r->stop)) {
		ret = vid_dirty_op(r->container, 8,
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
		if (!ret)
			ret = vid_dirty_op(r->container, 8,
					   VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
		if (ret) {
			r->err = ret;
			break;
		}
		r->toggles++;
	}
	return NULL;
}

/*
 * An UNMAP with a dirty bitmap of a mapping whose pages the test device
 * holds pinned must first have the device unpin (dma_unmap), which the
 * backend does with its lock dropped; STOP and START run meanwhile from
 * another thread. Whatever tracking did in between, the unmap must either
 * report and remove the mapping or fail cleanly (EINVAL: tracking off),
 * never use bitmaps STOP freed.
 */
TEST(unmap_bitmap_vs_stop)
{
	long long deadline;
	struct stop_race r = { 0 };
	uint64_t bits[RACE_PAGES / 64], got;
	unsigned int round, ok = 0, einval = 0;
	struct vid_acct base;
	struct vid_ctx ctx;
	pthread_t th;
	bool served;
	uint8_t *mem;
	int ret;

	if (!vid_emu_prepare(_metadata))
		return;
	if (vid_backend_intree())
		SKIP(return, "in-tree type1 (6.12) copies from bitmaps STOP freed");
	VID_ASSERT_OK(vid_acct_read(&base));
	VID_ASSERT_OK(vid_emu_ctx_open(&ctx, VID_EMU_DEV0, VFIO_TYPE1v2_IOMMU,
				       &served));
	if (!vid_emu_served(_metadata, served))
		return;
	mem = vid_alloc(RACE_PAGES * P, 0x44);
	ASSERT_NE(NULL, mem);
	r.container = ctx.container;
	VID_ASSERT_OK(vid_dirty_op(ctx.container, 8,
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	ASSERT_EQ(0, pthread_create(&th, NULL, stop_start_loop, &r));
	/*
	 * Rounds are also bounded in time, well inside the harness's 30 s:
	 * a debug kernel runs them many times slower.
	 */
	deadline = vid_now_ms() + RACE_MAX_MS;
	for (round = 0; round < RACE_ROUNDS && !r.err &&
	     vid_now_ms() < deadline; round++) {
		VID_ASSERT_OK(vid_map(ctx.container, RACE_IOVA, mem,
				      RACE_PAGES * P, VID_MAP_RW));
		/* Pins make the unmap call dma_unmap, lock dropped. */
		VID_ASSERT_OK(vid_emu_pin(ctx.device, RACE_IOVA, RACE_PAGES,
					  VID_EMU_PIN_READ | VID_EMU_PIN_WRITE,
					  NULL));
		memset(bits, 0, sizeof(bits));
		ret = vid_unmap_bitmap(ctx.container, 0, RACE_IOVA,
				       RACE_PAGES * P, P, bits, sizeof(bits),
				       &got);
		if (!ret) {
			ASSERT_EQ(RACE_PAGES * P, got);
			ok++;
			continue;
		}
		ASSERT_EQ(-EINVAL, ret)
			TH_LOG("round %u: %s", round, strerror(-ret));
		einval++;
		/* Tracking was off: the mapping must still be there. */
		VID_ASSERT_OK(vid_unmap(ctx.container, RACE_IOVA,
					RACE_PAGES * P, &got));
		ASSERT_EQ(RACE_PAGES * P, got);
	}
	store32(&r.stop, 1);
	pthread_join(th, NULL);
	TH_LOG("%u rounds: %u reported, %u refused (tracking off), %llu STOP/START",
	       round, ok, einval, (unsigned long long)r.toggles);
	ASSERT_EQ(0, r.err) TH_LOG("STOP/START: %s", strerror(-r.err));
	vid_ctx_close(&ctx);
	vid_free(mem, RACE_PAGES * P);
	VID_ASSERT_ACCT(&base);
}

TEST_HARNESS_MAIN
