// SPDX-License-Identifier: GPL-2.0
/*
 * The final check of stress_test's log ("The dirty check" and "Precision"
 * in stress_test.c): every counted write and pin was reported by a report
 * that could see it, and in pinned-page scope every page a report had
 * dirty is explained by a write or pin. What it finds goes into a struct
 * verdict: the counts, and notes on what failed for the test to log.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

/* A line for the test to log; the ones past MAX_NOTES are dropped. */
static void note(struct verdict *v, const char *fmt, ...)
{
	va_list ap;

	if (v->nnotes >= MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(v->note[v->nnotes++], BAD_LEN, fmt, ap);
	va_end(ap);
}

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

void stress_check_log(struct run *run, struct verdict *v)
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
				note(v, "MISSED 0x%llx (%s by %s, %llu-%llu, g%u s%u) by %llu",
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
 * a write or pin of @p (see "Precision" in stress_test.c)? @m is the latest
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

/* Note the logged calls that wrote or pinned page @p (the last 8). */
static void dump_calls(struct verdict *v, const struct shared *sh,
		       unsigned int p, const uint32_t *att, unsigned int natt)
{
	unsigned int i, shown = 0;

	for (i = natt; i-- && shown < 8;) {
		const struct event *a = &sh->ev[att[i]];

		if (p < a->page || p >= a->page + a->npages)
			continue;
		shown++;
		note(v, "  %s %llu-%llu g%u-%u s%u-%u", op_name[a->op],
		     (unsigned long long)a->t0, (unsigned long long)a->t1,
		     a->wgen, a->wgen2, a->sess, a->sess2);
	}
}

/*
 * Precision in pinned-page scope: every page a report (with a stable
 * generation for its slot) has dirty must be justified(). Outside it
 * (edu) check_all_dirty() already made each such slot exact.
 */
int stress_check_extra(struct run *run, struct verdict *v)
{
	struct shared *sh = run->sh;
	uint64_t n = sh->nev < run->ev_cap ? sh->nev : run->ev_cap;
	uint32_t *att, *ua, start[NSLOTS + 1] = { 0 }, fill[NSLOTS];
	unsigned int s, k, p, nua = 0;
	uint64_t i, j, m;

	/* Writes and pins by slot (one may span a failed unmap's slots). */
	att = calloc(3 * n + 1, sizeof(*att));
	ua = calloc(n + 1, sizeof(*ua));
	if (!att || !ua) {
		free(att);
		free(ua);
		return -ENOMEM;
	}
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
					note(v, "EXTRA 0x%llx by %s (%llu-%llu g%u s%u) m %llu",
					     (unsigned long long)(WIN_IOVA + p * P),
					     op_name[r->op],
					     (unsigned long long)r->t0,
					     (unsigned long long)r->t1,
					     r->gen[s], r->sess,
					     (unsigned long long)m);
				if (v->extra == 1)
					dump_calls(v, sh, p,
						   att + start[s],
						   start[s + 1] - start[s]);
			}
		}
	}
	free(att);
	free(ua);
	return 0;
}
