// SPDX-License-Identifier: GPL-2.0
/*
 * stress_test's workers: NTHREADS threads in each of NPROCS processes
 * (the test itself and its children), each making its share of the
 * operations, and the life of a child process.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "stress.h"

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;
	unsigned int i;

	for (i = 0; i < run->iters; i++) {
		if (vid_now_ms() > run->deadline) {
			store32(&run->sh->deadline_hit, 1);
			break;
		}
		stress_op(w);
	}
	inc32(&run->sh->workers_done);
	return NULL;
}

/*
 * Run this process's workers to the end. Returns the number of threads
 * that could not be started (their work is then simply not done).
 */
int stress_run_workers(struct run *run, struct worker *ws)
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
void stress_child_main(struct run *run, pid_t parent)
{
	struct worker ws[NTHREADS];
	long long until;

	run->buf = vid_alloc(NSLOTS * SLOT_SIZE, 0x30 + run->proc);
	if (!run->buf) {
		__atomic_add_fetch(&run->sh->workers_done, NTHREADS,
				   __ATOMIC_SEQ_CST);
		_exit(2);
	}
	if (stress_run_workers(run, ws))
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
