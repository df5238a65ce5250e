// SPDX-License-Identifier: GPL-2.0
/*
 * vid_bench workload 6: live migration of a VM whose assigned device
 * writes its memory, with the host's QEMU 7.2 in the guest (needs the
 * host root: guest-run.sh --hostroot) and the test device vid-mig
 * (tools/migrate/vid_migrate.h).
 *
 * The source VM (1 GiB, vCPUs paused) gets 64 MiB written by the device
 * before the migration and 64 pages held pinned (dirty at every sync);
 * once the first pass is
 * done, the device writes batches of random pages, each followed by two
 * dirty syncs; then the downtime limit is raised and the migration
 * completes. Every backend gets the same writes (a fixed seed).
 *
 * Measured, the same way on both backends:
 *  - total time: QEMU's "total-time" of the migration, from "migrate" to
 *    "completed" (it includes this program's pacing, the same work on
 *    both backends);
 *  - time in dirty syncs: the sum over the syncs of QEMU's
 *    migration_bitmap_sync, start to end (QEMU's log trace backend,
 *    gettimeofday() stamps): the backend's GET_BITMAP calls plus QEMU's
 *    own work on its bitmaps, which is the same for both backends;
 *  - the same per sync, since the number of syncs depends on timing;
 *  - pages re-sent: pages QEMU sent (ram normal + duplicate) beyond one
 *    per page of RAM; the held pages are sent again after every sync, so
 *    this follows the number of syncs. Less the held pages once per sync
 *    after the first, what is left is what the device wrote during
 *    pre-copy, the same on both backends when both report right.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vid_bench.h"
#include "vid_migrate.h"

#define MIG_MB		1024
#define MIG_MB_QUICK	128
#define MIG_ROUNDS	3	/* at most: a round takes a minute */
#define MIG_BATCHES	8
#define MIG_BATCHES_QUICK	2
#define MIG_BATCH_PAGES	256
#define MIG_BEFORE_MB	64
#define MIG_BEFORE_QUICK	8
/*
 * With the 1 ms downtime limit QEMU converges once what is dirty takes
 * less than 1 ms to send: the held pages keep it from that below 256 MiB/s.
 */
#define MIG_BANDWIDTH	(128ULL << 20)
#define MIG_HELD	64	/* pages */
#define MIG_WAIT_MS	300000
#define MIG_HELD_GPA	0x300000ULL

struct mig_rows {
	struct bench_metric *total;
	struct bench_metric *sync;
	struct bench_metric *per_sync;
	struct bench_metric *syncs;
	struct bench_metric *resent;
	struct bench_metric *written;
};

static void rows_missing(struct mig_rows *r, const char *why)
{
	bench_missing(r->total, "%s", why);
	bench_missing(r->sync, "%s", why);
	bench_missing(r->per_sync, "%s", why);
	bench_missing(r->syncs, "%s", why);
	bench_missing(r->resent, "%s", why);
	bench_missing(r->written, "%s", why);
}

/* The device's writes before the migration: 1 MiB every 16 MiB. */
static int write_before(struct vmig *vm, unsigned int mb)
{
	uint64_t stride = ((uint64_t)vm->ram_mb << 20) / mb;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < mb && !ret; i++)
		ret = vmig_write(vm, "rw", 0x800000ULL + i * stride,
				 1ULL << 20, 0x6000 + i);
	if (!ret)
		ret = vmig_write(vm, "hold", MIG_HELD_GPA, MIG_HELD * VID_PAGE,
				 0x6fff);
	return ret;
}

/* Pre-copy: batches of random pages, each followed by two syncs. */
static int write_during(struct vmig *vm, unsigned int batches,
			struct vmig_status *st)
{
	uint64_t npages = ((uint64_t)vm->ram_mb << 20) / VID_PAGE;
	struct vid_rng rng;
	unsigned int b, i;
	int ret;

	vid_rng_init(&rng, 0xbe4c6);
	for (b = 0; b < batches; b++) {
		for (i = 0; i < MIG_BATCH_PAGES; i++) {
			uint64_t gpa;

			/* Clear of the VGA hole and the low MiB. */
			gpa = (256 + vid_rng_below(&rng, npages - 256)) *
			      VID_PAGE;
			ret = vmig_write(vm, "rw", gpa, VID_PAGE,
					 0x7000 + b * MIG_BATCH_PAGES + i);
			if (ret)
				return ret;
		}
		ret = vmig_wait(vm, "completed", st->syncs + 2, MIG_WAIT_MS,
				st);
		if (ret)
			return ret;
	}
	return 0;
}

static int migrate_once(struct vmig *vm, struct vmig_status *st)
{
	bool quick = bench_cfg.quick;
	int ret;

	ret = vmig_init(vm, quick ? MIG_MB_QUICK : MIG_MB, false);
	if (!ret)
		ret = vmig_start(vm);
	if (!ret)
		ret = write_before(vm, quick ? MIG_BEFORE_QUICK : MIG_BEFORE_MB);
	if (!ret)
		ret = vmig_migrate(vm, false, MIG_BANDWIDTH, 1);
	if (!ret)
		ret = vmig_wait(vm, "completed", 2, MIG_WAIT_MS, st);
	if (!ret)
		ret = write_during(vm, quick ? MIG_BATCHES_QUICK : MIG_BATCHES,
				   st);
	if (!ret)
		ret = vmig_qmp(vm, "migrate-set-parameters",
			       "{\"downtime-limit\": 60000}");
	if (!ret)
		ret = vmig_wait(vm, "completed", 0, MIG_WAIT_MS, st);
	if (!ret)
		ret = vmig_finish(vm);
	return ret;
}

void bench_migration(struct bench_mem *mem)
{
	struct mig_rows r;
	struct vmig_status st;
	struct vmig vm;
	double sync_ms = 0, resent;
	unsigned int i;
	char label[96];
	int ret;

	(void)mem;
	snprintf(label, sizeof(label),
		 "live migration %u MiB VM, device writing: total time",
		 bench_cfg.quick ? MIG_MB_QUICK : MIG_MB);
	r.total = bench_metric("mig_total", 6, label, "ms", 0);
	r.sync = bench_metric("mig_sync", 6,
			      "  time in dirty syncs (QEMU's migration_bitmap_sync)",
			      "ms", 0);
	r.per_sync = bench_metric("mig_sync_each", 6,
				  "  time per dirty sync", "ms", 0);
	r.syncs = bench_metric("mig_syncs", 6, "  dirty syncs", "syncs", 0);
	r.resent = bench_metric("mig_resent", 6, "  pages sent again",
				"pages", 0);
	r.written = bench_metric("mig_resent_dev", 6,
				 "  of them not the held pages' once per sync",
				 "pages", 0);
	if (bench_round() >= MIG_ROUNDS)
		return;

	ret = migrate_once(&vm, &st);
	if (ret) {
		rows_missing(&r, vm.err);
		vmig_cleanup(&vm);
		return;
	}
	for (i = 0; i < vm.nsyncs; i++)
		sync_ms += (vm.syncs[i].t_end - vm.syncs[i].t_start) * 1e3;
	bench_record(r.total, st.total_ms);
	bench_record(r.sync, sync_ms);
	bench_record(r.per_sync, vm.nsyncs ? sync_ms / vm.nsyncs : 0);
	bench_record(r.syncs, vm.nsyncs);
	resent = st.normal + st.duplicate - st.total / VID_PAGE;
	bench_record(r.resent, resent);
	/* The first sync's held pages went out with the first pass. */
	bench_record(r.written, resent - (vm.nsyncs - 1.0) * MIG_HELD);
	bench_note("migration: %llu ms, %u syncs (%.1f ms in them), %.0f pages sent again",
		   (unsigned long long)st.total_ms, vm.nsyncs, sync_ms,
		   resent);
	vmig_cleanup(&vm);
}
