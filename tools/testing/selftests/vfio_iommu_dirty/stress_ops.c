// SPDX-License-Identifier: GPL-2.0
/*
 * The operations of stress_test's workers: each draws its arguments,
 * makes its call between looks at the shared state, checks the result
 * against what that state allows and logs what the final check needs. A
 * report's bits are also checked as it returns: those no mapping covered
 * are the caller's, and outside pinned-page scope every page is dirty.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "stress.h"

const char *const op_name[NOPS] = {
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

/*
 * A report of slots [@first, @first + @n) returned, called at clock value
 * @t0 and back at @t1: check its bits and log it. @gen holds the
 * generation of each slot that stayed the same and odd (mapped) for the
 * whole call, else 0; @hole the slots known free for the whole call;
 * @sess the session if it stayed the same and odd (tracking on), else 0.
 */
void stress_report(struct worker *w, enum opkind op, const uint64_t *bits,
		   unsigned int first, unsigned int n, const uint32_t *gen,
		   uint32_t hole, uint32_t sess, uint64_t t0, uint64_t t1)
{
	if (w->run->with_edu && sess)
		check_all_dirty(w, op, bits, first, n, gen);
	check_untouched(w, op, bits, first, n, hole, WIN_PAGES);
	log_report(w->run, op, bits, first, n, gen, sess, t0, t1);
}

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
		stress_report(w, op, bits, first, n, gen, hole,
			      s1 == s2 && (s1 & 1) ? s1 : 0, t0, t1);
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
	/* Even a report we cannot attribute may have cleared bits: logged. */
	if (!ret)
		stress_report(w, op, bits, first, n, gen, hole,
			      s1 == s2 && (s1 & 1) ? s1 : 0, t0, t1);
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
 * it gave back no longer excuse a dirty page; see "Precision" in
 * stress_test.c).
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

/* Draw the next operation (counted as tried) and make it. */
void stress_op(struct worker *w)
{
	enum opkind op = pick_op(w);

	__atomic_add_fetch(&w->run->sh->tried[op], 1, __ATOMIC_RELAXED);
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
