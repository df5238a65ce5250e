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
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define P		VID_PAGE
#define NSLOTS		16
#define SLOT_PAGES	16
#define SLOT_SIZE	(SLOT_PAGES * P)
#define WIN_PAGES	(NSLOTS * SLOT_PAGES)
#define WIN_WORDS	(WIN_PAGES / 64)
#define WIN_IOVA	0x1000000ULL	/* 16 MiB, below edu's 256 MiB */
#define EDU_IOVA	0x800000ULL	/* edu's own mapping (edu variant) */
#define EDU_MAP_SIZE	(2 * P)
#define NPROCS		3		/* this process and two children */
#define NTHREADS	3		/* workers per process */
#define NWORKERS	(NPROCS * NTHREADS)
#define DEFAULT_SEED	0x5eed0003ULL
#define DEFAULT_ITERS	1500		/* operations per worker */
#define EDU_TRANSFERS	48		/* edu is slow: a fixed budget */
#define DEADLINE_MS	35000		/* safety net; a run takes far less */
#define MAX_BAD		8
#define BAD_LEN		240
#define POISON		0xa5a5a5a5a5a5a5a5ULL

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_MAPPED };

struct slot {
	uint32_t state;		/* enum slot_state, changed by CAS only */
	uint32_t gen;		/* odd while mapped (see the protocol) */
	uint32_t owner;		/* process index of the mapping's owner */
};

enum ev_kind { EV_WRITE = 1, EV_PIN, EV_REPORT, EV_UNPIN_ALL };

/*
 * One entry of the shared log: a write or pin (counted, or only tried), a
 * report, or an unpin-all.
 */
struct event {
	uint64_t t0, t1;		/* clock before and after the call */
	uint64_t bits[WIN_WORDS];	/* report: pages reported dirty */
	uint32_t gen[NSLOTS];		/* report: stable generation, or 0 */
	uint32_t wgen;			/* write/pin: the slot's generation */
	uint32_t wgen2;			/* ... after the call */
	uint32_t sess;			/* 0 (report): it changed meanwhile */
	uint32_t sess2;			/* write/pin/unpin-all: after the call */
	uint32_t cover;			/* report: slots of its range */
	uint16_t kind;			/* enum ev_kind */
	uint16_t page;			/* write/pin: first page of the window */
	uint16_t npages;
	uint16_t op;			/* enum opkind that logged it */
	uint16_t counted;		/* write/pin: see "The dirty check" */
};

enum opkind {
	OP_MAP, OP_UNMAP, OP_UNMAP_BITMAP, OP_UNMAP_ALL, OP_TRACK,
	OP_GET_BITMAP, OP_PEEK, OP_PIN, OP_UNPIN, OP_WRITE, OP_WRITE_PINNED,
	OP_READ, OP_STATUS, OP_INFO, OP_DEBUGFS, OP_EDU, NOPS
};

static const char *const op_name[NOPS] = {
	"map", "unmap", "unmap+bitmap", "unmap-all", "start/stop",
	"get-bitmap", "peek", "pin", "unpin", "write", "write-pinned",
	"read", "status", "get-info", "debugfs", "edu-dma",
};

static const unsigned int op_weight[NOPS] = {
	[OP_MAP] = 14, [OP_UNMAP] = 4, [OP_UNMAP_BITMAP] = 5,
	[OP_UNMAP_ALL] = 1, [OP_TRACK] = 3, [OP_GET_BITMAP] = 10,
	[OP_PEEK] = 2, [OP_PIN] = 12, [OP_UNPIN] = 7, [OP_WRITE] = 16,
	[OP_WRITE_PINNED] = 8, [OP_READ] = 3, [OP_STATUS] = 1,
	[OP_INFO] = 1, [OP_DEBUGFS] = 1, [OP_EDU] = 1,
};

/* Everything the workers of all processes share (MAP_SHARED). */
struct shared {
	uint64_t clock;
	uint32_t sess;
	uint32_t tseq;			/* odd while a START/STOP runs */
	uint32_t edu_left;		/* edu transfers still allowed */
	pthread_mutex_t track_lock;	/* START/STOP and the session */
	pthread_mutex_t intree_lock;	/* in-tree only, see op_track() */
	pthread_mutex_t edu_lock;	/* edu's registers */
	struct slot slots[NSLOTS];
	uint32_t workers_done;
	uint32_t release;		/* children may exit */
	uint32_t deadline_hit;
	uint32_t log_full;
	uint64_t tried[NOPS];		/* operations attempted */
	uint64_t done[NOPS];		/* ... that did their call */
	uint64_t nev;
	uint32_t nbad;
	char bad[MAX_BAD][BAD_LEN];
	struct event ev[];
};

/* What every worker needs; copied into the children by fork. */
struct run {
	struct shared *sh;
	size_t sh_size;
	uint64_t ev_cap;
	int container;
	int device;		/* the test device */
	struct vid_edu edu;	/* valid in the edu variant */
	bool with_edu;
	bool ours;		/* our module: PEEK and debugfs too */
	uint64_t seed;
	unsigned int iters;
	long long deadline;
	unsigned int proc;	/* process index, 0 = the test itself */
	uint8_t *buf;		/* this process's memory for the slots */
};

struct worker {
	struct run *run;
	unsigned int id;
	struct vid_rng rng;
	uint8_t data[2 * VID_PAGE_MAX];
};

/* ---------------------------------------------------------------------- */
/* shared-state primitives                                                */
/* ---------------------------------------------------------------------- */

static uint64_t tick(struct shared *sh)
{
	return __atomic_add_fetch(&sh->clock, 1, __ATOMIC_SEQ_CST);
}

static uint32_t load32(uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void store32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static uint32_t inc32(uint32_t *p)
{
	return __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}

static bool cas32(uint32_t *p, uint32_t old, uint32_t new)
{
	return __atomic_compare_exchange_n(p, &old, new, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static void count_done(struct shared *sh, enum opkind op)
{
	__atomic_add_fetch(&sh->done[op], 1, __ATOMIC_RELAXED);
}

static uint64_t slot_iova(unsigned int s)
{
	return WIN_IOVA + (uint64_t)s * SLOT_SIZE;
}

/* Record an unexpected result; the test fails on any. */
static void bad(struct worker *w, enum opkind op, const char *fmt, ...)
{
	struct shared *sh = w->run->sh;
	uint32_t i = inc32(&sh->nbad) - 1;
	va_list ap;
	int n;

	if (i >= MAX_BAD)
		return;
	n = snprintf(sh->bad[i], BAD_LEN, "worker %u, %s: ", w->id,
		     op_name[op]);
	va_start(ap, fmt);
	vsnprintf(sh->bad[i] + n, BAD_LEN - n, fmt, ap);
	va_end(ap);
}

static const char *err_name(int ret)
{
	return ret ? strerror(-ret) : "success";
}

/* A new log entry, or NULL when the log is full (then nothing is checked). */
static struct event *ev_new(struct run *run, enum ev_kind kind, enum opkind op)
{
	struct shared *sh = run->sh;
	uint64_t i = __atomic_fetch_add(&sh->nev, 1, __ATOMIC_SEQ_CST);
	struct event *ev;

	if (i >= run->ev_cap) {
		store32(&sh->log_full, 1);
		return NULL;
	}
	ev = &sh->ev[i];
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->op = op;
	return ev;
}

/*
 * Log a write or pin of pages [@page, @page + @n) of the window that may
 * have dirtied them: its slot's generations @gen (before) and @gen2
 * (after), the sessions @sess and @sess2 likewise. @counted: it succeeded
 * with both numbers stable and odd, so a later report must have it.
 */
static void log_write(struct worker *w, enum opkind op, unsigned int page,
		      unsigned int n, uint32_t gen, uint32_t gen2,
		      uint32_t sess, uint32_t sess2, bool counted,
		      uint64_t t0, uint64_t t1)
{
	struct event *ev = ev_new(w->run, op == OP_PIN ? EV_PIN : EV_WRITE,
				  op);

	if (!ev)
		return;
	ev->page = page;
	ev->npages = n;
	ev->wgen = gen;
	ev->wgen2 = gen2;
	ev->sess = sess;
	ev->sess2 = sess2;
	ev->counted = counted;
	ev->t0 = t0;
	ev->t1 = t1;
}

/*
 * Copy the bits of a report of slots [@first, @first + @n) (bit 0 = the
 * first page of slot @first) into @ev, for the slots with a stable
 * generation in @gen only (the others hold what the caller put there).
 */
static void ev_set_bits(struct event *ev, const uint64_t *bits,
			unsigned int first, unsigned int n,
			const uint32_t *gen)
{
	unsigned int i, p;

	for (i = 0; i < n * SLOT_PAGES; i++) {
		if (!gen[first + i / SLOT_PAGES] ||
		    !(bits[i / 64] >> (i % 64) & 1))
			continue;
		p = first * SLOT_PAGES + i;
		ev->bits[p / 64] |= 1ULL << (p % 64);
	}
}

/* What a report's buffer holds before the call: see check_untouched(). */
static uint64_t report_fill(const struct run *run)
{
	return run->ours ? POISON : 0;
}

/*
 * The bits of a report of slots [@first, @first + @n) in a buffer of
 * @nbits bits that no mapping covered: those of the slots in @hole (known
 * free for the whole call) and those past the range. This backend leaves
 * the caller's bits there alone. In-tree zeroes the rest of a mapping's
 * last word and, after a report of a mapping that starts inside a word,
 * writes stale bits of its own past the mapping (README, differences):
 * they are not checked against in-tree (its buffer is clean).
 */
static void check_untouched(struct worker *w, enum opkind op,
			    const uint64_t *bits, unsigned int first,
			    unsigned int n, uint32_t hole, unsigned int nbits)
{
	uint64_t fill = report_fill(w->run);
	unsigned int b, i;

	if (!w->run->ours)
		return;
	for (b = 0; b < nbits; b++) {
		i = b / SLOT_PAGES;
		if (i < n && !(hole & 1U << (first + i)))
			continue;
		if ((bits[b / 64] ^ fill) >> (b % 64) & 1) {
			bad(w, op, "bit %u of a report of slots %u+%u changed, outside any mapping",
			    b, first, n);
			return;
		}
	}
}

/* Outside pinned-page scope every page of a stable mapped slot is dirty. */
static void check_all_dirty(struct worker *w, enum opkind op,
			    const uint64_t *bits, unsigned int first,
			    unsigned int n, const uint32_t *gen)
{
	unsigned int i, k, b;

	for (i = 0; i < n; i++) {
		if (!gen[first + i])
			continue;
		for (k = 0; k < SLOT_PAGES; k++) {
			b = i * SLOT_PAGES + k;
			if (bits[b / 64] >> (b % 64) & 1)
				continue;
			bad(w, op, "page 0x%llx of an IOMMU-mapped mapping not reported dirty",
			    (unsigned long long)(slot_iova(first + i) + k * P));
			return;
		}
	}
}

/* ---------------------------------------------------------------------- */
/* operations                                                             */
/* ---------------------------------------------------------------------- */

static void op_map(struct worker *w)
{
	struct run *run = w->run;
	unsigned int s = vid_rng_below(&w->rng, NSLOTS);
	struct slot *sl = &run->sh->slots[s];
	int ret;

	if (!cas32(&sl->state, SLOT_FREE, SLOT_BUSY))
		return;
	count_done(run->sh, OP_MAP);
	ret = vid_map(run->container, slot_iova(s), run->buf + s * SLOT_SIZE,
		      SLOT_SIZE, VID_MAP_RW);
	if (ret) {
		bad(w, OP_MAP, "slot %u: %s", s, err_name(ret));
		store32(&sl->state, SLOT_FREE);
		return;
	}
	store32(&sl->owner, run->proc);
	inc32(&sl->gen);
	store32(&sl->state, SLOT_MAPPED);
}

/*
 * Unmap slots [first, first + n): take every one of them (free or
 * mapped) so that nobody maps or unmaps them meanwhile, end the
 * generation of the mapped ones, unmap, and check the size (and, with a
 * bitmap, log the report).
 */
static void op_unmap(struct worker *w, enum opkind op)
{
	struct run *run = w->run;
	struct shared *sh = run->sh;
	unsigned int first, n, i, nmapped = 0;
	uint32_t was[NSLOTS], gen[NSLOTS] = { 0 }, hole = 0;
	uint64_t bits[WIN_WORDS], got, want, t0, t1;
	uint32_t s1, s2, q1, q2;
	bool exact;
	struct event *ev;
	int ret;

	if (op == OP_UNMAP_ALL) {
		first = 0;
		n = NSLOTS;
	} else {
		first = vid_rng_below(&w->rng, NSLOTS);
		n = 1 + vid_rng_below(&w->rng, 3);
		if (first + n > NSLOTS)
			n = NSLOTS - first;
	}
	for (i = 0; i < n; i++) {
		struct slot *sl = &sh->slots[first + i];

		was[i] = load32(&sl->state);
		if (was[i] == SLOT_BUSY ||
		    !cas32(&sl->state, was[i], SLOT_BUSY)) {
			while (i--)
				store32(&sh->slots[first + i].state, was[i]);
			return;
		}
	}
	count_done(sh, op);
	for (i = 0; i < WIN_WORDS; i++)
		bits[i] = report_fill(run);
	for (i = 0; i < n; i++) {
		if (was[i] != SLOT_MAPPED) {
			/* Ours, free: nobody maps it during the call. */
			hole |= 1U << (first + i);
			continue;
		}
		gen[first + i] = load32(&sh->slots[first + i].gen);
		inc32(&sh->slots[first + i].gen);
		nmapped++;
	}
	want = (uint64_t)nmapped * SLOT_SIZE;

	if (!run->ours)
		pthread_mutex_lock(&sh->intree_lock);
	t0 = tick(sh);
	q1 = load32(&sh->tseq);
	s1 = load32(&sh->sess);
	if (op == OP_UNMAP_BITMAP)
		ret = vid_unmap_bitmap(run->container, 0, slot_iova(first),
				       (uint64_t)n * SLOT_SIZE, P, bits,
				       sizeof(bits), &got);
	else if (op == OP_UNMAP_ALL && !run->with_edu)
		ret = vid_unmap_raw(run->container,
				    sizeof(struct vfio_iommu_type1_dma_unmap),
				    VFIO_DMA_UNMAP_FLAG_ALL, 0, 0, &got);
	else
		ret = vid_unmap(run->container, slot_iova(first),
				(uint64_t)n * SLOT_SIZE, &got);
	s2 = load32(&sh->sess);
	q2 = load32(&sh->tseq);
	t1 = tick(sh);
	if (!run->ours)
		pthread_mutex_unlock(&sh->intree_lock);
	/* Is tracking known to have been on (odd s1) or off throughout? */
	exact = q1 == q2 && !(q1 & 1);

	if (!ret && got != want)
		bad(w, op, "slots %u+%u: unmapped 0x%llx, want 0x%llx", first,
		    n, (unsigned long long)got, (unsigned long long)want);
	if (op == OP_UNMAP_BITMAP && exact) {
		/* Tracking was on, or off, for the whole call. */
		if ((s1 & 1) && ret)
			bad(w, op, "slots %u+%u while tracking: %s", first, n,
			    err_name(ret));
		if (!(s1 & 1) && ret != -EINVAL)
			bad(w, op, "slots %u+%u without tracking: %s", first,
			    n, err_name(ret));
	} else if (op == OP_UNMAP_BITMAP) {
		if (ret && ret != -EINVAL)
			bad(w, op, "slots %u+%u: %s", first, n, err_name(ret));
	} else if (ret) {
		bad(w, op, "slots %u+%u: %s", first, n, err_name(ret));
	}

	if (!ret && op == OP_UNMAP_BITMAP) {
		if (run->with_edu && s1 == s2 && (s1 & 1))
			check_all_dirty(w, op, bits, first, n, gen);
		check_untouched(w, op, bits, first, n, hole, WIN_PAGES);
		ev = ev_new(run, EV_REPORT, op);
		if (ev) {
			ev->t0 = t0;
			ev->t1 = t1;
			ev->sess = s1 == s2 && (s1 & 1) ? s1 : 0;
			ev->cover = ((1U << n) - 1) << first;
			memcpy(ev->gen, gen, sizeof(gen));
			ev_set_bits(ev, bits, first, n, gen);
		}
	} else if (op == OP_UNMAP_BITMAP) {
		/*
		 * A failed unmap leaves each mapping in place under a new
		 * generation, with the pins of the old one, or with pages the
		 * device unpinned when told: logged as a pin of every page,
		 * spanning both generations.
		 */
		for (i = 0; i < n; i++) {
			if (was[i] != SLOT_MAPPED)
				continue;
			ev = ev_new(run, EV_PIN, op);
			if (!ev)
				break;
			ev->page = (first + i) * SLOT_PAGES;
			ev->npages = SLOT_PAGES;
			ev->wgen = gen[first + i];
			ev->wgen2 = gen[first + i] + 2;
			ev->t0 = t0;
			ev->t1 = t1;
		}
	}

	for (i = 0; i < n; i++) {
		struct slot *sl = &sh->slots[first + i];

		if (ret && was[i] == SLOT_MAPPED) {
			/* Still mapped: a new generation begins. */
			inc32(&sl->gen);
			store32(&sl->state, SLOT_MAPPED);
		} else {
			store32(&sl->state, SLOT_FREE);
		}
	}
}

/*
 * START or STOP (or a repeated one, which changes nothing). @tseq is odd
 * while one runs, so that others know when the session number tells
 * exactly whether tracking is on: only when @tseq was the same even value
 * before and after their call.
 *
 * In-tree type1 (6.12) has two bugs this test would hit, both around the
 * dma_unmap call an unmap makes, with its lock dropped, to have devices
 * unpin: a STOP meanwhile frees the bitmaps an UNMAP with a bitmap then
 * copies from (hardened usercopy BUG()s), and a second unmap deadlocks
 * with the first (it takes the device-list lock under the container lock,
 * the first takes them the other way round through unpin_pages). Against
 * in-tree, unmaps and STOP therefore run one at a time.
 */
static void op_track(struct worker *w)
{
	struct run *run = w->run;
	struct shared *sh = run->sh;
	uint64_t r = vid_rng_below(&w->rng, 4);
	uint32_t s;
	int ret;

	count_done(sh, OP_TRACK);
	pthread_mutex_lock(&sh->track_lock);
	inc32(&sh->tseq);
	s = load32(&sh->sess);
	if ((s & 1) && r == 0) {
		/* Stop: the session ends before the call. */
		inc32(&sh->sess);
		if (!run->ours)
			pthread_mutex_lock(&sh->intree_lock);
		ret = vid_dirty_op(run->container, 8,
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
		if (!run->ours)
			pthread_mutex_unlock(&sh->intree_lock);
	} else if (!(s & 1) && r != 0) {
		/* Start: the session begins once the call returned. */
		ret = vid_dirty_op(run->container, 8,
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
		if (!ret)
			inc32(&sh->sess);
	} else {
		/* START while on or STOP while off: changes nothing. */
		ret = vid_dirty_op(run->container, 8, (s & 1) ?
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_START :
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP);
	}
	inc32(&sh->tseq);
	pthread_mutex_unlock(&sh->track_lock);
	if (ret)
		bad(w, OP_TRACK, "session %u: %s", s, err_name(ret));
}

static void op_get_bitmap(struct worker *w, enum opkind op)
{
	struct run *run = w->run;
	struct shared *sh = run->sh;
	unsigned int first = vid_rng_below(&w->rng, NSLOTS);
	unsigned int n = 1 + vid_rng_below(&w->rng, NSLOTS - first);
	uint32_t g1[NSLOTS], gen[NSLOTS] = { 0 }, s1, s2, g2, q1, q2;
	uint32_t free1[NSLOTS], hole = 0;
	uint64_t bits[WIN_WORDS], t0, t1;
	uint64_t bytes = (n * SLOT_PAGES + 63) / 64 * 8;
	struct event *ev;
	unsigned int i;
	int ret;

	count_done(sh, op);
	for (i = 0; i < WIN_WORDS; i++)
		bits[i] = report_fill(run);
	t0 = tick(sh);
	q1 = load32(&sh->tseq);
	s1 = load32(&sh->sess);
	for (i = 0; i < n; i++) {
		free1[i] = load32(&sh->slots[first + i].state) == SLOT_FREE;
		g1[i] = load32(&sh->slots[first + i].gen);
	}
	ret = vid_get_bitmap(run->container,
			     op == OP_PEEK ? VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK : 0,
			     slot_iova(first), (uint64_t)n * SLOT_SIZE, P, bits,
			     bytes);
	for (i = 0; i < n; i++) {
		g2 = load32(&sh->slots[first + i].gen);
		if (g2 == g1[i] && (g2 & 1))
			gen[first + i] = g2;
		/*
		 * Free before and after, same generation: no mapping there
		 * during the call (a mapper or an unmapper holds it busy
		 * until its number changed).
		 */
		if (g2 == g1[i] && free1[i] &&
		    load32(&sh->slots[first + i].state) == SLOT_FREE)
			hole |= 1U << (first + i);
	}
	s2 = load32(&sh->sess);
	q2 = load32(&sh->tseq);
	t1 = tick(sh);

	/* Only an unchanged even @tseq tells the state for sure. */
	if (q1 == q2 && !(q1 & 1) && (s1 & 1) && ret)
		bad(w, op, "slots %u+%u while tracking: %s", first, n,
		    err_name(ret));
	else if (q1 == q2 && !(q1 & 1) && !(s1 & 1) && ret != -EINVAL)
		bad(w, op, "slots %u+%u without tracking: %s", first, n,
		    err_name(ret));
	else if (ret && ret != -EINVAL)
		bad(w, op, "slots %u+%u: %s", first, n, err_name(ret));
	if (ret)
		return;
	if (run->with_edu && s1 == s2 && (s1 & 1))
		check_all_dirty(w, op, bits, first, n, gen);
	check_untouched(w, op, bits, first, n, hole, WIN_PAGES);
	/* Even a report we cannot attribute may have cleared bits: log it. */
	ev = ev_new(run, EV_REPORT, op);
	if (!ev)
		return;
	ev->t0 = t0;
	ev->t1 = t1;
	ev->sess = s1 == s2 && (s1 & 1) ? s1 : 0;
	ev->cover = ((1U << n) - 1) << first;
	memcpy(ev->gen, gen, sizeof(gen));
	ev_set_bits(ev, bits, first, n, gen);
}

/*
 * Pin 1-4 pages of a slot that is mapped and not being unmapped; a pin
 * that races the slot's unmap may fail with EINVAL (no mapping).
 */
static void op_pin(struct worker *w)
{
	struct run *run = w->run;
	struct shared *sh = run->sh;
	unsigned int s = vid_rng_below(&w->rng, NSLOTS);
	unsigned int n = 1 + vid_rng_below(&w->rng, 4);
	unsigned int k = vid_rng_below(&w->rng, SLOT_PAGES - n + 1);
	uint32_t flags = vid_rng_chance(&w->rng, 4, 5) ?
			 VID_EMU_PIN_READ | VID_EMU_PIN_WRITE :
			 VID_EMU_PIN_READ;
	struct slot *sl = &sh->slots[s];
	uint32_t g1, g2, s1, s2;
	uint64_t t0, t1;
	int ret;

	g1 = load32(&sl->gen);
	if (!(g1 & 1) || load32(&sl->state) != SLOT_MAPPED)
		return;
	count_done(sh, OP_PIN);
	s1 = load32(&sh->sess);
	t0 = tick(sh);
	ret = vid_emu_pin(run->device, slot_iova(s) + k * P, n, flags, NULL);
	t1 = tick(sh);
	g2 = load32(&sl->gen);
	s2 = load32(&sh->sess);
	if (g1 == g2 && ret)
		bad(w, OP_PIN, "slot %u page %u+%u of a stable mapping: %s", s,
		    k, n, err_name(ret));
	else if (ret && ret != -EINVAL)
		bad(w, OP_PIN, "slot %u page %u+%u: %s", s, k, n,
		    err_name(ret));
	log_write(w, OP_PIN, s * SLOT_PAGES + k, n, g1, g2, s1, s2,
		  !ret && g1 == g2 && s1 == s2 && (s1 & 1), t0, t1);
}

/*
 * Unpin a range, or everything (logged: after it, and a report, the pins
 * it gave back no longer excuse a dirty page; see "Precision").
 */
static void op_unpin(struct worker *w)
{
	struct run *run = w->run;
	unsigned int s = vid_rng_below(&w->rng, NSLOTS);
	unsigned int n = 1 + vid_rng_below(&w->rng, 4);
	unsigned int k = vid_rng_below(&w->rng, SLOT_PAGES - n + 1);
	struct event *ev;
	uint64_t t0, t1;
	int ret;

	count_done(run->sh, OP_UNPIN);
	if (vid_rng_chance(&w->rng, 1, 25)) {
		t0 = tick(run->sh);
		ret = vid_emu_unpin_all(run->device);
		t1 = tick(run->sh);
		ev = ret ? NULL : ev_new(run, EV_UNPIN_ALL, OP_UNPIN);
		if (ev) {
			ev->t0 = t0;
			ev->t1 = t1;
			ev->sess2 = load32(&run->sh->sess);
		}
	} else {
		ret = vid_emu_unpin(run->device, slot_iova(s) + k * P, n);
	}
	/* Pins come and go under us: ENOENT (not pinned) is fine. */
	if (ret && ret != -ENOENT)
		bad(w, OP_UNPIN, "slot %u page %u+%u: %s", s, k, n,
		    err_name(ret));
}

/*
 * A device write of 1-64 bytes (sometimes across a page boundary) into a
 * slot. Through dma_rw it needs a mapping of this process's memory (the
 * backend copies through the owner's mm, and refuses other processes with
 * EFAULT); through pinned pages it needs the pages pinned writable
 * (ENOENT, EPERM otherwise).
 */
static void op_write(struct worker *w, enum opkind op)
{
	struct run *run = w->run;
	struct shared *sh = run->sh;
	unsigned int s = vid_rng_below(&w->rng, NSLOTS);
	struct slot *sl = &sh->slots[s];
	uint64_t len = 1 + vid_rng_below(&w->rng, 64);
	uint64_t off, t0, t1;
	uint32_t g1, g2, s1, s2, owner, flags = VID_EMU_RW_WRITE;
	int ret;

	if (vid_rng_chance(&w->rng, 1, 8))
		off = (1 + vid_rng_below(&w->rng, SLOT_PAGES - 1)) * P -
		      vid_rng_below(&w->rng, len);	/* may cross a page */
	else
		off = vid_rng_below(&w->rng, SLOT_SIZE - len + 1);
	if (op == OP_WRITE_PINNED)
		flags |= VID_EMU_RW_PINNED;
	memset(w->data, (int)vid_rng_below(&w->rng, 256), len);

	count_done(sh, op);
	g1 = load32(&sl->gen);
	owner = load32(&sl->owner);
	s1 = load32(&sh->sess);
	t0 = tick(sh);
	ret = vid_emu_rw(run->device, slot_iova(s) + off, w->data, len,
			 flags);
	t1 = tick(sh);
	g2 = load32(&sl->gen);
	s2 = load32(&sh->sess);

	if (op == OP_WRITE_PINNED) {
		if (ret && ret != -ENOENT && ret != -EPERM)
			bad(w, op, "slot %u: %s", s, err_name(ret));
	} else if (g1 == g2 && (g1 & 1) && owner == run->proc) {
		if (ret)
			bad(w, op, "own stable mapping, slot %u: %s", s,
			    err_name(ret));
	} else if (g1 == g2 && (g1 & 1)) {
		if (ret != -EFAULT)
			bad(w, op, "another process's mapping, slot %u: %s",
			    s, err_name(ret));
	} else if (ret && ret != -EINVAL && ret != -EFAULT) {
		bad(w, op, "slot %u: %s", s, err_name(ret));
	}
	/*
	 * Through pinned pages nothing is marked (the page is dirty as
	 * pinned): only a counted one is logged, for completeness.
	 */
	if (op == OP_WRITE_PINNED && (ret || g1 != g2 || !(g1 & 1) ||
				      s1 != s2 || !(s1 & 1)))
		return;
	log_write(w, op, s * SLOT_PAGES + off / P,
		  (off + len - 1) / P - off / P + 1, g1, g2, s1, s2,
		  !ret && g1 == g2 && (g1 & 1) && s1 == s2 && (s1 & 1), t0, t1);
}

static void op_read(struct worker *w)
{
	struct run *run = w->run;
	unsigned int s = vid_rng_below(&w->rng, NSLOTS);
	uint64_t len = 1 + vid_rng_below(&w->rng, 2 * P);
	uint64_t off = vid_rng_below(&w->rng, SLOT_SIZE - len + 1);
	uint32_t flags = vid_rng_chance(&w->rng, 1, 3) ? VID_EMU_RW_PINNED : 0;
	int ret;

	count_done(run->sh, OP_READ);
	ret = vid_emu_rw(run->device, slot_iova(s) + off, w->data, len, flags);
	if (ret && ret != -EINVAL && ret != -EFAULT && ret != -ENOENT)
		bad(w, OP_READ, "slot %u: %s", s, err_name(ret));
}

static void op_status(struct worker *w)
{
	struct vid_emu_status st;
	int ret;

	count_done(w->run->sh, OP_STATUS);
	ret = vid_emu_status(w->run->device, &st, false);
	if (ret)
		bad(w, OP_STATUS, "%s", err_name(ret));
	else if (st.anomalies)
		bad(w, OP_STATUS, "%llu pin_pages contract violations",
		    (unsigned long long)st.anomalies);
}

static void op_info(struct worker *w)
{
	union {
		struct vfio_iommu_type1_info info;
		char room[1024];
	} u;

	memset(&u, 0, sizeof(u));
	u.info.argsz = sizeof(u);
	count_done(w->run->sh, OP_INFO);
	if (ioctl(w->run->container, VFIO_IOMMU_GET_INFO, &u))
		bad(w, OP_INFO, "%s", strerror(errno));
	else if (!(u.info.flags & VFIO_IOMMU_INFO_PGSIZES) ||
		 !(u.info.iova_pgsizes & P))
		bad(w, OP_INFO, "flags 0x%x pgsizes 0x%llx", u.info.flags,
		    (unsigned long long)u.info.iova_pgsizes);
}

/* Read both debugfs files of the container while everything else runs. */
static void op_debugfs(struct worker *w)
{
	long ret;

	count_done(w->run->sh, OP_DEBUGFS);
	ret = vid_debugfs_read("state");
	if (ret > 0)
		ret = vid_debugfs_read("mappings");
	if (ret <= 0)
		bad(w, OP_DEBUGFS, "%s", ret ? strerror((int)-ret) : "empty");
}

static void op_edu(struct worker *w)
{
	struct run *run = w->run;
	uint64_t count = 1 + vid_rng_below(&w->rng, 2048);
	uint64_t buf_off = vid_rng_below(&w->rng, EDU_BUF_SIZE - 2048);
	uint64_t iova = EDU_IOVA + vid_rng_below(&w->rng, EDU_MAP_SIZE - count);
	bool to_ram = vid_rng_chance(&w->rng, 1, 2);
	uint32_t left = load32(&run->sh->edu_left);
	int ret;

	if (!left || !cas32(&run->sh->edu_left, left, left - 1))
		return;
	count_done(run->sh, OP_EDU);
	pthread_mutex_lock(&run->sh->edu_lock);
	ret = vid_edu_dma(&run->edu, iova, buf_off, count, to_ram);
	pthread_mutex_unlock(&run->sh->edu_lock);
	if (ret)
		bad(w, OP_EDU, "0x%llx bytes at 0x%llx: %s",
		    (unsigned long long)count, (unsigned long long)iova,
		    err_name(ret));
}

static bool op_allowed(struct run *run, enum opkind op)
{
	switch (op) {
	case OP_PEEK:
	case OP_DEBUGFS:
		return run->ours;
	case OP_EDU:
		return run->with_edu;
	default:
		return true;
	}
}

static enum opkind pick_op(struct worker *w)
{
	unsigned int total = 0, r;
	int op;

	for (op = 0; op < NOPS; op++)
		if (op_allowed(w->run, op))
			total += op_weight[op];
	r = vid_rng_below(&w->rng, total);
	for (op = 0; op < NOPS; op++) {
		if (!op_allowed(w->run, op))
			continue;
		if (r < op_weight[op])
			break;
		r -= op_weight[op];
	}
	return op;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;
	unsigned int i;
	enum opkind op;

	for (i = 0; i < run->iters; i++) {
		if (vid_now_ms() > run->deadline) {
			store32(&run->sh->deadline_hit, 1);
			break;
		}
		op = pick_op(w);
		__atomic_add_fetch(&run->sh->tried[op], 1, __ATOMIC_RELAXED);
		switch (op) {
		case OP_MAP:
			op_map(w);
			break;
		case OP_UNMAP:
		case OP_UNMAP_BITMAP:
		case OP_UNMAP_ALL:
			op_unmap(w, op);
			break;
		case OP_TRACK:
			op_track(w);
			break;
		case OP_GET_BITMAP:
		case OP_PEEK:
			op_get_bitmap(w, op);
			break;
		case OP_PIN:
			op_pin(w);
			break;
		case OP_UNPIN:
			op_unpin(w);
			break;
		case OP_WRITE:
		case OP_WRITE_PINNED:
			op_write(w, op);
			break;
		case OP_READ:
			op_read(w);
			break;
		case OP_STATUS:
			op_status(w);
			break;
		case OP_INFO:
			op_info(w);
			break;
		case OP_DEBUGFS:
			op_debugfs(w);
			break;
		case OP_EDU:
			op_edu(w);
			break;
		case NOPS:
			break;
		}
	}
	inc32(&run->sh->workers_done);
	return NULL;
}

/*
 * Run this process's workers to the end. Returns the number of threads
 * that could not be started (their work is then simply not done).
 */
static int run_workers(struct run *run, struct worker *ws)
{
	pthread_t th[NTHREADS];
	bool started[NTHREADS];
	int i, failed = 0;

	for (i = 0; i < NTHREADS; i++) {
		ws[i].run = run;
		ws[i].id = run->proc * NTHREADS + i;
		vid_rng_init(&ws[i].rng, run->seed * 0x100 + ws[i].id);
		started[i] = !pthread_create(&th[i], NULL, worker_main, &ws[i]);
		if (!started[i]) {
			inc32(&run->sh->workers_done);
			failed++;
		}
	}
	for (i = 0; i < NTHREADS; i++)
		if (started[i])
			pthread_join(th[i], NULL);
	return failed;
}

/* A child process: its own memory, its own workers, then wait. */
static void child_main(struct run *run, pid_t parent)
{
	struct worker ws[NTHREADS];
	long long until;

	run->buf = vid_alloc(NSLOTS * SLOT_SIZE, 0x30 + run->proc);
	if (!run->buf) {
		__atomic_add_fetch(&run->sh->workers_done, NTHREADS,
				   __ATOMIC_SEQ_CST);
		_exit(2);
	}
	if (run_workers(run, ws))
		_exit(3);
	/*
	 * Stay alive (so does this mm) until every worker is done: a pin or
	 * a read of this process's mappings by the others must not meet a
	 * dead owner.
	 */
	until = vid_now_ms() + DEADLINE_MS + 30000;
	while (!load32(&run->sh->release) && getppid() == parent &&
	       vid_now_ms() < until)
		usleep(5000);
	_exit(0);
}

/* ---------------------------------------------------------------------- */
/* the final check of the log                                             */
/* ---------------------------------------------------------------------- */

struct verdict {
	uint64_t writes, pins, pages, verified, excused, open, missed;
	uint64_t reports;
	uint64_t dirty, justified, extra;	/* precision */
};

/* @r is a report of @w's mapping in @w's session (and covers @slot). */
static bool covers(const struct event *r, const struct event *w,
		   unsigned int slot)
{
	return r->kind == EV_REPORT && r->sess && r->sess == w->sess &&
	       r->gen[slot] == w->wgen;
}

/*
 * May report @r have taken page @p of @w's slot away without our being
 * able to tell? A clearing report whose session or generation changed
 * during the call ran at an unknown point: it may have reported @p in
 * @w's mapping and session, and cleared it.
 */
static bool unattributed(const struct event *r, const struct event *w,
			 unsigned int slot)
{
	return r->kind == EV_REPORT && (r->cover & 1U << slot) &&
	       r->op != OP_PEEK && !covers(r, w, slot);
}

static void check_log(struct __test_metadata *_metadata, struct run *run,
		      struct verdict *v)
{
	struct shared *sh = run->sh;
	uint64_t n = sh->nev < run->ev_cap ? sh->nev : run->ev_cap;
	uint64_t i, j, estar;
	unsigned int p, k, slot;
	bool found;

	memset(v, 0, sizeof(*v));
	for (i = 0; i < n; i++)
		if (sh->ev[i].kind == EV_REPORT)
			v->reports++;
	for (i = 0; i < n; i++) {
		const struct event *w = &sh->ev[i];

		/* Only counted writes and pins must be reported. */
		if (w->kind == EV_REPORT || w->kind == EV_UNPIN_ALL ||
		    !w->counted)
			continue;
		if (w->kind == EV_PIN)
			v->pins++;
		else
			v->writes++;
		for (k = 0; k < w->npages; k++) {
			p = w->page + k;
			slot = p / SLOT_PAGES;
			v->pages++;
			/* The earliest-ending report called after W returned. */
			estar = UINT64_MAX;
			for (j = 0; j < n; j++) {
				const struct event *r = &sh->ev[j];

				if (covers(r, w, slot) && r->t0 > w->t1 &&
				    r->t1 < estar)
					estar = r->t1;
			}
			if (estar == UINT64_MAX) {
				v->open++;
				continue;
			}
			found = false;
			for (j = 0; j < n && !found; j++) {
				const struct event *r = &sh->ev[j];

				found = covers(r, w, slot) && r->t1 > w->t0 &&
					r->t0 < estar &&
					(r->bits[p / 64] >> (p % 64) & 1);
			}
			if (found) {
				v->verified++;
				continue;
			}
			for (j = 0; j < n && !found; j++) {
				const struct event *r = &sh->ev[j];

				found = unattributed(r, w, slot) &&
					r->t1 > w->t0 && r->t0 < estar;
			}
			if (found) {
				v->excused++;
				continue;
			}
			if (v->missed++ < 10)
				TH_LOG("MISSED 0x%llx (%s by %s, %llu-%llu, g%u s%u) by %llu",
				       (unsigned long long)(WIN_IOVA + p * P),
				       w->kind == EV_PIN ? "pinned" : "written",
				       op_name[w->op],
				       (unsigned long long)w->t0,
				       (unsigned long long)w->t1, w->wgen,
				       w->sess, (unsigned long long)estar);
		}
	}
}

/*
 * Is the dirty bit of page @p in report @r, of generation @g, explained by
 * a write or pin of @p (see "Precision" at the top)? @m is the latest
 * start of a clearing report of the slot in generation @g that returned
 * before @r was called (0: none); @ua lists the @nua unpin-alls, @att the
 * @natt writes and pins of the slot.
 */
static bool justified(const struct shared *sh, const struct event *r,
		      unsigned int p, uint32_t g, uint64_t m,
		      const uint32_t *att, unsigned int natt,
		      const uint32_t *ua, unsigned int nua)
{
	unsigned int i, j;
	bool gone;

	for (i = 0; i < natt; i++) {
		const struct event *a = &sh->ev[att[i]];

		if (p < a->page || p >= a->page + a->npages)
			continue;
		/* The mapping it may have met; it started before @r ended. */
		if (g + 1 < a->wgen || g > a->wgen2 + 1 || a->t0 > r->t1)
			continue;
		if (a->kind == EV_WRITE) {
			gone = m > a->t1 ||
			       (r->sess && a->sess2 + 2 <= r->sess);
		} else {
			gone = false;
			for (j = 0; j < nua && !gone; j++) {
				const struct event *u = &sh->ev[ua[j]];

				gone = u->t0 > a->t1 &&
				       (m > u->t1 ||
					(r->sess && u->sess2 + 2 <= r->sess));
			}
		}
		if (!gone)
			return true;
	}
	return false;
}

/* Print the logged calls that wrote or pinned page @p (the last 8). */
static void dump_calls(struct __test_metadata *_metadata,
		       const struct shared *sh, unsigned int p,
		       const uint32_t *att, unsigned int natt)
{
	unsigned int i, shown = 0;

	for (i = natt; i-- && shown < 8;) {
		const struct event *a = &sh->ev[att[i]];

		if (p < a->page || p >= a->page + a->npages)
			continue;
		shown++;
		TH_LOG("  %s %llu-%llu g%u-%u s%u-%u", op_name[a->op],
		       (unsigned long long)a->t0, (unsigned long long)a->t1,
		       a->wgen, a->wgen2, a->sess, a->sess2);
	}
}

/*
 * Precision in pinned-page scope: every page a report (with a stable
 * generation for its slot) has dirty must be justified(). Outside it
 * (edu) check_all_dirty() already made each such slot exact.
 */
static void check_extra(struct __test_metadata *_metadata, struct run *run,
			struct verdict *v)
{
	struct shared *sh = run->sh;
	uint64_t n = sh->nev < run->ev_cap ? sh->nev : run->ev_cap;
	uint32_t *att, *ua, start[NSLOTS + 1] = { 0 }, fill[NSLOTS];
	unsigned int s, k, p, nua = 0;
	uint64_t i, j, m;

	/* Writes and pins by slot (one may span a failed unmap's slots). */
	att = calloc(3 * n + 1, sizeof(*att));
	ua = calloc(n + 1, sizeof(*ua));
	ASSERT_NE(NULL, att);
	ASSERT_NE(NULL, ua);
	for (i = 0; i < n; i++) {
		const struct event *a = &sh->ev[i];

		if (a->kind == EV_UNPIN_ALL)
			ua[nua++] = i;
		if (a->kind != EV_WRITE && a->kind != EV_PIN)
			continue;
		for (s = a->page / SLOT_PAGES;
		     s <= (a->page + a->npages - 1U) / SLOT_PAGES; s++)
			start[s + 1]++;
	}
	for (s = 0; s < NSLOTS; s++) {
		start[s + 1] += start[s];
		fill[s] = start[s];
	}
	for (i = 0; i < n; i++) {
		const struct event *a = &sh->ev[i];

		if (a->kind != EV_WRITE && a->kind != EV_PIN)
			continue;
		for (s = a->page / SLOT_PAGES;
		     s <= (a->page + a->npages - 1U) / SLOT_PAGES; s++)
			att[fill[s]++] = i;
	}

	for (i = 0; i < n; i++) {
		const struct event *r = &sh->ev[i];

		if (r->kind != EV_REPORT)
			continue;
		for (s = 0; s < NSLOTS; s++) {
			if (!(r->cover & 1U << s) || !r->gen[s])
				continue;
			/*
			 * In-tree ORs the whole user word a mapping starts
			 * inside into its bits, and the mapping before it may
			 * have left stale bits there (README, differences):
			 * against in-tree only slots that start a word of the
			 * report are held to this.
			 */
			if (!run->ours &&
			    (s - __builtin_ctz(r->cover)) % (64 / SLOT_PAGES))
				continue;
			m = 0;
			for (j = 0; j < n; j++) {
				const struct event *c = &sh->ev[j];

				if (c->kind == EV_REPORT && c->op != OP_PEEK &&
				    (c->cover & 1U << s) &&
				    c->gen[s] == r->gen[s] && c->t1 < r->t0 &&
				    c->t0 > m)
					m = c->t0;
			}
			for (k = 0; k < SLOT_PAGES; k++) {
				p = s * SLOT_PAGES + k;
				if (!(r->bits[p / 64] >> (p % 64) & 1))
					continue;
				v->dirty++;
				if (justified(sh, r, p, r->gen[s], m,
					      att + start[s],
					      start[s + 1] - start[s], ua,
					      nua)) {
					v->justified++;
					continue;
				}
				if (v->extra++ < 10)
					TH_LOG("EXTRA 0x%llx by %s (%llu-%llu g%u s%u) m %llu",
					       (unsigned long long)(WIN_IOVA + p * P),
					       op_name[r->op],
					       (unsigned long long)r->t0,
					       (unsigned long long)r->t1,
					       r->gen[s], r->sess,
					       (unsigned long long)m);
				if (v->extra == 1)
					dump_calls(_metadata, sh, p,
						   att + start[s],
						   start[s + 1] - start[s]);
			}
		}
	}
	free(att);
	free(ua);
}

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
	struct event *ev;

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
			child_main(run, parent);
		}
	}
	/* Our own memory only now: the children need not share it. */
	run->proc = 0;
	run->buf = vid_alloc(NSLOTS * SLOT_SIZE, 0x30);
	ASSERT_NE(NULL, run->buf);
	EXPECT_EQ(0, run_workers(run, ws));
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
		if (variant->edu)
			check_all_dirty(&ws[0], OP_GET_BITMAP, bits, 0, NSLOTS,
					gen);
		check_untouched(&ws[0], OP_GET_BITMAP, bits, 0, NSLOTS, hole,
				WIN_PAGES);
		ev = ev_new(run, EV_REPORT, OP_GET_BITMAP);
		if (ev) {
			ev->t0 = t0;
			ev->t1 = t1;
			ev->sess = sh->sess;
			ev->cover = (1U << NSLOTS) - 1;
			memcpy(ev->gen, gen, sizeof(gen));
			ev_set_bits(ev, bits, 0, NSLOTS, gen);
		}
		inc32(&sh->sess);
	}
	VID_ASSERT_OK(vid_dirty_op(run->container, 8,
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));

	check_log(_metadata, run, &v);
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
		check_extra(_metadata, run, &v);
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
