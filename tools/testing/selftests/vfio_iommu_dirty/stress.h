/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the files of stress_test share: its constants, the slots and the
 * shared state every worker of every process sees, the log of calls, one
 * run's and one worker's state, and the functions each file offers the
 * others. stress_test.c says what the program checks and how (the
 * protocol, "The dirty check" and "Precision"). Its files, one concern
 * each:
 *
 *   stress_test.c     the tests: the fixture, a run (its set-up, the
 *                     final report, the checks and the teardown), and
 *                     the focused race of an UNMAP with a bitmap
 *                     against STOP
 *   stress_ops.c      the operations a worker draws, each with what the
 *                     bookkeeping allows of its result, and the checks of
 *                     a report's bits as it returns
 *   stress_log.c      the log of calls: writes, pins, reports
 *   stress_workers.c  a process's worker threads, and the child processes
 *   stress_check.c    the final check of the log: every counted write and
 *                     pin reported, every reported page justified
 *
 * Only stress_test.c includes the kselftest harness: the others record
 * what went wrong in the shared state, notes in a struct verdict, or
 * return errnos.
 */
#ifndef STRESS_H
#define STRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vid_util.h"

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
	uint32_t gen;		/* odd while mapped: stress_test.c */
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
	uint16_t counted;		/* write/pin: "The dirty check" */
};

enum opkind {
	OP_MAP, OP_UNMAP, OP_UNMAP_BITMAP, OP_UNMAP_ALL, OP_TRACK,
	OP_GET_BITMAP, OP_PEEK, OP_PIN, OP_UNPIN, OP_WRITE, OP_WRITE_PINNED,
	OP_READ, OP_STATUS, OP_INFO, OP_DEBUGFS, OP_EDU, NOPS
};

extern const char *const op_name[NOPS];

/* Everything the workers of all processes share (MAP_SHARED). */
struct shared {
	uint64_t clock;
	uint32_t sess;
	uint32_t tseq;			/* odd while a START/STOP runs */
	uint32_t edu_left;		/* edu transfers still allowed */
	pthread_mutex_t track_lock;	/* START/STOP and the session */
	pthread_mutex_t intree_lock;	/* in-tree only: op_track() */
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

/* What the final check found; see stress_check.c. */
#define MAX_NOTES	32

struct verdict {
	uint64_t writes, pins, pages, verified, excused, open, missed;
	uint64_t reports;
	uint64_t dirty, justified, extra;	/* precision */
	unsigned int nnotes;		/* lines for the test to log */
	char note[MAX_NOTES][BAD_LEN];
};

/* Shared-state primitives (sequentially consistent, across processes). */
static inline uint64_t tick(struct shared *sh)
{
	return __atomic_add_fetch(&sh->clock, 1, __ATOMIC_SEQ_CST);
}

static inline uint32_t load32(uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline void store32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static inline uint32_t inc32(uint32_t *p)
{
	return __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}

static inline bool cas32(uint32_t *p, uint32_t old, uint32_t new)
{
	return __atomic_compare_exchange_n(p, &old, new, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static inline void count_done(struct shared *sh, enum opkind op)
{
	__atomic_add_fetch(&sh->done[op], 1, __ATOMIC_RELAXED);
}

static inline uint64_t slot_iova(unsigned int s)
{
	return WIN_IOVA + (uint64_t)s * SLOT_SIZE;
}

/*
 * What a report's buffer holds before the call: see check_untouched() in
 * stress_ops.c.
 */
static inline uint64_t report_fill(const struct run *run)
{
	return run->ours ? POISON : 0;
}

/* stress_ops.c */
void stress_op(struct worker *w);
void stress_report(struct worker *w, enum opkind op, const uint64_t *bits,
		   unsigned int first, unsigned int n, const uint32_t *gen,
		   uint32_t hole, uint32_t sess, uint64_t t0, uint64_t t1);

/* stress_log.c */
struct event *ev_new(struct run *run, enum ev_kind kind, enum opkind op);
void log_write(struct worker *w, enum opkind op, unsigned int page,
	       unsigned int n, uint32_t gen, uint32_t gen2, uint32_t sess,
	       uint32_t sess2, bool counted, uint64_t t0, uint64_t t1);
void log_report(struct run *run, enum opkind op, const uint64_t *bits,
		unsigned int first, unsigned int n, const uint32_t *gen,
		uint32_t sess, uint64_t t0, uint64_t t1);

/* stress_workers.c */
int stress_run_workers(struct run *run, struct worker *ws);
void stress_child_main(struct run *run, pid_t parent);

/* stress_check.c */
void stress_check_log(struct run *run, struct verdict *v);
int stress_check_extra(struct run *run, struct verdict *v);

#endif /* STRESS_H */
