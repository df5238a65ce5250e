/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vid_migrate - one live migration of a VM whose assigned device writes
 * its memory, driven step by step, for the demo (tools/vid-demo) and the
 * benchmark (tools/bench). Runs in the test guest, with the host's QEMU
 * (vid_qemu.h) and the migratable test device vid-mig.N of vid_emu
 * (vid_emu/vid_mig_uapi.h): vid-mig.0 is assigned to the source QEMU,
 * vid-mig.1 to the destination.
 *
 * What a migration leaves for the caller, per dirty sync:
 *  - from QEMU's own trace (log backend, -msg timestamp=on): when each
 *    migration_bitmap_sync started and ended, and with @page_trace which
 *    pages of "pc.ram" QEMU sent after it (ram_save_page);
 *  - from this module's tracepoints, when it serves the source container:
 *    the runs of dirty pages each sync's GET_BITMAP calls reported
 *    (vid_dirty_run). QEMU asks for the RAM sections in ascending IOVA
 *    order at every sync, so a call whose IOVA is not above the last
 *    one's starts the next sync; the n-th sync seen here is QEMU's n-th.
 *
 * Functions return 0 or a negative errno; on failure vm->err says what.
 */
#ifndef VID_MIGRATE_H
#define VID_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "vid_qemu.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#endif

#define VMIG_COLS		64	/* cells of a map of guest memory */
#define VMIG_MAX_SYNCS		4096
#define VMIG_MAX_WRITES		8192

/* One dirty sync. Counts are pages of 4 KiB; -1: not known. */
struct vmig_sync {
	double t_start;		/* QEMU's clock, seconds */
	double t_end;
	long long reported;	/* this module reported dirty */
	long long sent;		/* pc.ram pages QEMU sent after the sync */
	unsigned int rep_cells[VMIG_COLS];
	unsigned int sent_cells[VMIG_COLS];
};

/* One run of dirty pages this module reported. */
struct vmig_run {
	unsigned int sync;	/* index into syncs */
	uint64_t iova;
	uint64_t npages;
};

/* query-migrate, the parts used here. */
struct vmig_status {
	char status[32];
	uint64_t syncs;		/* ram dirty-sync-count */
	uint64_t normal;	/* pages sent whole */
	uint64_t duplicate;	/* zero pages sent as such */
	uint64_t total;		/* bytes of migratable RAM */
	uint64_t total_ms;	/* total-time, once completed */
	uint64_t downtime_ms;
};

/* What comparing both sides' memory found. */
struct vmig_verdict {
	unsigned long pages;	/* compared */
	unsigned long differ;	/* destination differs from source */
	unsigned long written;	/* pages the device wrote last */
	unsigned long arrived;	/* of those, the destination holds the write */
	long long ms;
};

struct vmig_write {
	uint64_t gpa;
	uint64_t len;
	uint64_t seed;
};

struct vmig {
	unsigned int ram_mb;
	bool page_trace;	/* QEMU traces every page it sends */
	bool ours;		/* this module serves the containers */
	bool traced;		/* its tracepoints are on */
	struct vid_qemu src;
	struct vid_qemu dst;
	struct vid_names before;
	char src_cid[VID_NAME_LEN];
	char dst_cid[VID_NAME_LEN];
	char sock[108];		/* migration socket */
	char qlog[64];		/* the source QEMU's trace */
	char old_kb[32];	/* tracefs buffer size before */
	char err[512];
	/* the device's writes, and per page the last one (-1: none) */
	struct vmig_write *w;
	unsigned int nw;
	int *owner;
	/* dirty syncs: this module's view (nmod), QEMU's (nsyncs) */
	struct vmig_sync *syncs;
	unsigned int nsyncs;
	unsigned int nmod;
	struct vmig_run *runs;
	unsigned int nruns;
	unsigned int maxruns;
	unsigned long long gets;	/* GET_BITMAP calls */
	/* reading trace_pipe */
	int pipe;
	bool have_iova;
	uint64_t last_iova;
	size_t tlen;
	char tbuf[8192];
};

/*
 * Set @vm up for a VM of @ram_mb MiB: the test device loaded with two
 * migratable instances, no QEMU left over. -ENOENT: no host QEMU (the
 * guest was not started with the host root).
 */
int vmig_init(struct vmig *vm, unsigned int ram_mb, bool page_trace);
/* Start both QEMUs; the source paused (-S), the destination incoming. */
int vmig_start(struct vmig *vm);
/* This module's tracepoints on (when it serves the source). */
int vmig_trace_on(struct vmig *vm);
/* The source device writes @len bytes at @gpa ("rw", "pin" or "hold"). */
int vmig_write(struct vmig *vm, const char *mode, uint64_t gpa,
	       uint64_t len, uint64_t seed);
/* A QMP command to the source that must succeed. */
int vmig_qmp(struct vmig *vm, const char *cmd, const char *args);
/*
 * Start the migration: @pause stops it before switchover; @bandwidth in
 * bytes/s, @downtime_ms the limit (1: never converge).
 */
int vmig_migrate(struct vmig *vm, bool pause, uint64_t bandwidth,
		 unsigned int downtime_ms);
int vmig_query(struct vmig *vm, struct vmig_status *st);
/*
 * Poll until the status is @until, or with @syncs, until it is "active"
 * with at least @syncs dirty syncs done; reads this module's trace on the
 * way. -EIO on "failed"/"cancelled", -ETIMEDOUT after @ms.
 */
int vmig_wait(struct vmig *vm, const char *until, uint64_t syncs,
	      long ms, struct vmig_status *st);
/* Guest memory of both sides, page by page (the VGA hole excepted). */
int vmig_compare(struct vmig *vm, struct vmig_verdict *v);
/*
 * Let the source run (QEMU 7.2 ends dirty tracking only then), quit both
 * QEMUs, read what was traced: vm->syncs afterwards.
 */
int vmig_finish(struct vmig *vm);
/* Whatever is left: QEMUs killed, files removed, tracepoints off. */
void vmig_cleanup(struct vmig *vm);

/* Cell of the map that guest-physical address @gpa falls in. */
static inline unsigned int vmig_cell(const struct vmig *vm, uint64_t gpa)
{
	uint64_t c = gpa * VMIG_COLS / ((uint64_t)vm->ram_mb << 20);

	return c < VMIG_COLS ? c : VMIG_COLS - 1;
}

#endif /* VID_MIGRATE_H */
