// SPDX-License-Identifier: GPL-2.0
/*
 * stress_test's log of calls, in the shared memory every process sees:
 * the writes and pins that may have dirtied pages, the reports and the
 * unpin-alls. The final check (stress_check.c) reads it.
 */
#include <string.h>

#include "stress.h"

/* A new log entry, or NULL when the log is full (then nothing is checked). */
struct event *ev_new(struct run *run, enum ev_kind kind, enum opkind op)
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
void log_write(struct worker *w, enum opkind op, unsigned int page,
	       unsigned int n, uint32_t gen, uint32_t gen2, uint32_t sess,
	       uint32_t sess2, bool counted, uint64_t t0, uint64_t t1)
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

/*
 * Log a report of slots [@first, @first + @n) made between the clock
 * values @t0 and @t1: its bits (@bits, bit 0 = the first page of slot
 * @first) for the slots with a stable generation in @gen, and its
 * session @sess (0 when it changed during the call). Logged even when
 * the report cannot be attributed: it may have cleared bits.
 */
void log_report(struct run *run, enum opkind op, const uint64_t *bits,
		unsigned int first, unsigned int n, const uint32_t *gen,
		uint32_t sess, uint64_t t0, uint64_t t1)
{
	struct event *ev = ev_new(run, EV_REPORT, op);

	if (!ev)
		return;
	ev->t0 = t0;
	ev->t1 = t1;
	ev->sess = sess;
	ev->cover = ((1U << n) - 1) << first;
	memcpy(ev->gen, gen, sizeof(ev->gen));
	ev_set_bits(ev, bits, first, n, gen);
}
