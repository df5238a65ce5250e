// SPDX-License-Identifier: GPL-2.0
/*
 * vid_demo - live migration of a VM whose assigned device writes its
 * memory, through vfio_iommu_dirty, narrated for a person watching.
 *
 * Runs in the test guest (make demo) with the host root shared: the
 * host's QEMU 7.2 migrates a 128 MiB VM from a source to a destination
 * QEMU while the test device vid-mig (vid_emu) writes the VM's memory.
 * The VM's vCPUs stay paused, so every page QEMU sends again after the
 * first pass is there because this module reported it dirty. The
 * narration draws, per dirty sync, a map of guest memory with the pages
 * this module reported, says how many pages QEMU then sent again, and
 * ends with the comparison of both sides' memory.
 *
 * Lines starting with "@" are data for scripts/demo.sh (the picture
 * under results/); the terminal output hides them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vid_util.h"
#include "vid_migrate.h"

#define RAM_MB		128
#define MIB		0x100000ULL
/*
 * Bytes/s: with the 1 ms downtime limit, QEMU converges once what is
 * dirty takes less than 1 ms to send; at 1 MiB/s the held page does not.
 */
#define BANDWIDTH	MIB
#define WAIT_MS		120000
#define QUIET_MAX	1		/* pages of a sync with nothing new */

/* One thing the device does while pre-copy iterates. */
struct burst {
	const char *what;
	const char *mode;
	uint64_t gpa;
	uint64_t len;
	unsigned int count;	/* times, each @step further */
	uint64_t step;
};

static const struct burst before[] = {
	{ "1 MiB at 4 MiB (vfio_dma_rw)", "rw", 4 * MIB, MIB, 1, 0 },
	{ "64 KiB at 20 MiB (pinned, written, unpinned)", "pin", 20 * MIB,
	  0x10000, 1, 0 },
};

static const struct burst precopy[] = {
	{ "1 MiB at 24 MiB", "rw", 24 * MIB, MIB, 1, 0 },
	/* A page of the x86 VM: 4 KiB (VID_PAGE is known at run time). */
	{ "one page every 2 MiB from 32 MiB up", "rw", 32 * MIB, 0x1000,
	  48, 2 * MIB },
	{ "512 KiB over the first buffer at 4 MiB, 64 KiB pinned at 100 MiB",
	  "rw", 4 * MIB, 0x80000, 1, 0 },
};

static const struct burst last = {
	"256 KiB at 120 MiB", "rw", 120 * MIB, 0x40000, 1, 0,
};

#define HELD_GPA	(3 * MIB)

static int step_fail(struct vmig *vm)
{
	fprintf(stderr, "demo: %s\n", vm->err);
	return 1;
}

static int do_burst(struct vmig *vm, const struct burst *b, uint64_t seed)
{
	unsigned int i;
	int ret;

	for (i = 0; i < b->count; i++) {
		ret = vmig_write(vm, b->mode, b->gpa + i * b->step, b->len,
				 seed + i);
		if (ret)
			return ret;
	}
	return 0;
}

/* The map character for @n dirty pages in a cell. */
static char shade(unsigned int n)
{
	if (!n)
		return '.';
	if (n == 1)
		return ':';
	if (n < 16)
		return '+';
	if (n < 128)
		return '*';
	return '#';
}

static void map_of(const unsigned int *cells, char *out)
{
	unsigned int i;

	for (i = 0; i < VMIG_COLS; i++)
		out[i] = shade(cells[i]);
	out[VMIG_COLS] = '\0';
}

static bool quiet(const struct vmig_sync *s)
{
	return s->reported <= QUIET_MAX && s->sent <= QUIET_MAX;
}

/* One row per sync; a stretch of quiet syncs in one row. */
static void show_syncs(const struct vmig *vm)
{
	char map[VMIG_COLS + 1];
	unsigned int i, j;

	printf("   sync  reported  sent again  guest memory, 0 .. %u MiB, %llu KiB per cell\n",
	       vm->ram_mb, ((unsigned long long)vm->ram_mb << 10) / VMIG_COLS);
	for (i = 0; i < vm->nsyncs; i = j) {
		const struct vmig_sync *s = &vm->syncs[i];

		j = i + 1;
		if (i && quiet(s)) {
			while (j < vm->nsyncs && quiet(&vm->syncs[j]))
				j++;
			if (j - i > 1) {
				printf("   %4u-%-4u ... %u syncs, each the held page alone\n",
				       i + 1, j, j - i);
				continue;
			}
		}
		map_of(s->rep_cells, map);
		if (i == 0)
			printf("   %4u %9lld  %9s   %s  <- first pass: all RAM,\n"
			       "   %*s%lld pages of it not zero\n",
			       1, s->reported, "-", map, 30 + VMIG_COLS, "",
			       s->sent);
		else
			printf("   %4u %9lld  %9lld   %s%s\n", i + 1,
			       s->reported, s->sent, map,
			       memcmp(s->rep_cells, s->sent_cells,
				      sizeof(s->rep_cells)) ?
			       "  ~" : "");
	}
	printf("   map: . clean  : 1 page  + 2-15  * 16-127  # 128 or more dirty pages\n"
	       "   ~: the pages QEMU sent after this sync are not the ones it\n"
	       "      reported: at 1 MiB/s QEMU was still sending an earlier\n"
	       "      sync's pages when the next sync began.\n");
}

/* Data lines for the picture: the runs and the syncs' times. */
static void emit_data(const struct vmig *vm)
{
	unsigned int i;

	printf("@ram %u\n", vm->ram_mb);
	for (i = 0; i < vm->nruns; i++)
		printf("@run %u %llu %llu\n", vm->runs[i].sync + 1,
		       (unsigned long long)vm->runs[i].iova,
		       (unsigned long long)vm->runs[i].npages);
}

static int narrate_before(struct vmig *vm)
{
	unsigned int i;
	int ret;

	printf("3. Before the migration the device writes:\n");
	for (i = 0; i < ARRAY_SIZE(before); i++) {
		ret = do_burst(vm, &before[i], 0x100 + i);
		if (ret)
			return ret;
		printf("   - %s\n", before[i].what);
	}
	ret = vmig_write(vm, "hold", HELD_GPA, VID_PAGE, 0x1ff);
	if (ret)
		return ret;
	printf("   - one page at 3 MiB, which it keeps pinned (a descriptor ring,\n"
	       "     say): a pinned page is reported dirty at every sync, and so\n"
	       "     the migration keeps iterating until we let it converge.\n\n");
	return 0;
}

static int run_migration(struct vmig *vm, struct vmig_status *st)
{
	long long t0 = vid_now_ms();
	unsigned int i;
	int ret;

	ret = vmig_trace_on(vm);
	if (!ret)
		ret = vmig_migrate(vm, true, BANDWIDTH, 1);
	if (!ret)
		ret = vmig_wait(vm, "pre-switchover", 2, WAIT_MS, st);
	if (ret)
		return ret;
	printf("4. migrate (max-bandwidth 1 MiB/s, downtime-limit 1 ms): the first\n"
	       "   pass sent every page once; %llu dirty syncs after %lld ms.\n",
	       (unsigned long long)st->syncs, vid_now_ms() - t0);
	printf("   While pre-copy iterates, the device writes (each time we wait for\n"
	       "   two more syncs):\n");
	for (i = 0; i < ARRAY_SIZE(precopy); i++) {
		ret = do_burst(vm, &precopy[i], 0x200 + 0x40 * i);
		if (!ret && i == 2)
			ret = vmig_write(vm, "pin", 100 * MIB, 0x10000, 0x2ff);
		if (!ret)
			ret = vmig_wait(vm, "pre-switchover", st->syncs + 2,
					WAIT_MS, st);
		if (ret)
			return ret;
		printf("   - %s (sync %llu by now)\n", precopy[i].what,
		       (unsigned long long)st->syncs);
	}
	ret = vmig_qmp(vm, "migrate-set-parameters",
		       "{\"downtime-limit\": 60000}");
	if (!ret)
		ret = vmig_wait(vm, "pre-switchover", 0, WAIT_MS, st);
	if (!ret)
		ret = do_burst(vm, &last, 0x300);
	if (ret)
		return ret;
	printf("5. downtime-limit 60 s: it converges and pauses before switchover;\n"
	       "   the device writes once more: %s. Continue.\n", last.what);
	ret = vmig_qmp(vm, "migrate-continue", "{\"state\": \"pre-switchover\"}");
	if (!ret)
		ret = vmig_wait(vm, "completed", 0, WAIT_MS, st);
	if (ret)
		return ret;
	printf("   completed: %llu ms in all, %llu ms of downtime, %llu dirty syncs.\n\n",
	       (unsigned long long)st->total_ms,
	       (unsigned long long)st->downtime_ms,
	       (unsigned long long)st->syncs);
	return 0;
}

static void summary(const struct vmig *vm)
{
	long long rep = 0, sent = 0;
	double sync_ms = 0;
	unsigned int i;

	for (i = 1; i < vm->nsyncs; i++) {
		rep += vm->syncs[i].reported;
		sent += vm->syncs[i].sent;
	}
	for (i = 0; i < vm->nsyncs; i++)
		sync_ms += (vm->syncs[i].t_end - vm->syncs[i].t_start) * 1e3;
	printf("   After the first pass this module reported %lld dirty pages over\n"
	       "   %u syncs (%llu GET_BITMAP calls; QEMU counted %u syncs), and QEMU\n"
	       "   sent %lld pages again: the vCPUs never ran, so those are the\n"
	       "   device's writes and the held page, once per sync.\n"
	       "   QEMU spent %.1f ms in its %u dirty syncs (migration_bitmap_sync).\n\n",
	       rep, vm->nmod ? vm->nmod - 1 : 0, vm->gets, vm->nsyncs,
	       sent, sync_ms, vm->nsyncs);
}

static int run(struct vmig *vm)
{
	struct vmig_verdict v;
	struct vmig_status st;
	int ret;

	ret = vmig_init(vm, RAM_MB, true);
	if (ret)
		return ret;
	printf("1. vfio_iommu_type1 is loaded, then vfio_iommu_dirty: the VFIO core\n"
	       "   gives new type1 containers to the backend loaded last. The device\n"
	       "   is vid-mig (test module vid_emu): PCI-like, with the VFIO v1\n"
	       "   migration region; its DMA goes through the container.\n\n");
	ret = vmig_start(vm);
	if (ret)
		return ret;
	printf("2. The host's QEMU 7.2, unmodified, twice: the source with %u MiB of\n"
	       "   RAM and vid-mig.0 (vCPUs paused: only the device writes memory),\n"
	       "   the destination with vid-mig.1, waiting on a unix socket.\n"
	       "   Containers in debugfs: source %s, destination %s;\n"
	       "   /sys/module/vfio_iommu_dirty/refcnt = %ld.\n\n",
	       vm->ram_mb, vm->src_cid, vm->dst_cid,
	       vid_module_refcnt(VID_MOD_OURS));
	ret = narrate_before(vm);
	if (!ret)
		ret = run_migration(vm, &st);
	if (!ret) {
		ret = vmig_compare(vm, &v);
		if (!ret)
			ret = vmig_finish(vm);
	}
	if (ret)
		return ret;
	printf("6. The dirty pages this module reported, sync by sync (tracepoint\n"
	       "   vid_dirty_run), and the pages QEMU sent again after each\n"
	       "   (QEMU's ram_save_page trace):\n");
	show_syncs(vm);
	printf("\n");
	summary(vm);
	printf("7. Guest memory of both sides (pmemsave, VGA hole excepted):\n"
	       "   %lu pages compared in %lld ms: %lu differ. Of the %lu pages the\n"
	       "   device wrote, %lu hold its last write on the destination.\n\n",
	       v.pages, v.ms, v.differ, v.written, v.arrived);
	emit_data(vm);
	if (v.differ || v.arrived != v.written || !v.pages) {
		fprintf(stderr, "demo: the destination's memory is not the source's\n");
		return -EIO;
	}
	if (vm->nmod != vm->nsyncs)
		printf("   (note: this module saw %u syncs, QEMU %u)\n", vm->nmod,
		       vm->nsyncs);
	return 0;
}

int main(void)
{
	const char *why = NULL;
	struct vmig vm;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (vid_skip_reason()) {
		fprintf(stderr, "demo: %s\n", vid_skip_reason());
		return 1;
	}
	ret = vid_modules_setup(&why);
	if (ret) {
		fprintf(stderr, "demo: %s: %s\n", why ? why : "modules",
			strerror(-ret));
		return 1;
	}
	ret = run(&vm);
	if (ret && vm.err[0])
		step_fail(&vm);
	vmig_cleanup(&vm);
	if (ret)
		return 1;
	printf("Demo complete: the VM migrated while its device wrote, and the\n"
	       "destination holds every byte.\n");
	return 0;
}
