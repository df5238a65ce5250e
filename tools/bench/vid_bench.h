/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vid_bench - vfio_iommu_dirty against in-tree vfio_iommu_type1, in one
 * guest boot. Shared declarations of the driver (vid_bench.c: options,
 * backend switching, statistics, output) and the workloads (bench_work.c).
 */
#ifndef VID_BENCH_H
#define VID_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vid_util.h"

#define BENCH_MAX_ROUNDS	48
#define BENCH_MAX_METRICS	64
#define BENCH_MAX_REPS		16
#define BENCH_MAX_BUFS		64
#define BENCH_SZ_2M		0x200000ULL
#define BENCH_SZ_1G		0x40000000ULL

/* Backends, in the order each round runs them. */
enum bench_backend {
	BENCH_INTREE,
	BENCH_OURS,
	BENCH_NR_BACKENDS,
};

/* What the run was asked to do (vid_bench.c fills it from the options). */
struct bench_cfg {
	unsigned int rounds;
	bool quick;
	uint64_t size;		/* bytes of workloads 1, 3, 4 and 5 */
	uint64_t large_iommu;	/* bytes of the large IOMMU-scope query */
	uint64_t large_pinned;	/* bytes of the large pinned-scope query */
	unsigned int counts[3];	/* mapping counts of workload 2 */
	unsigned int nr_counts;
	unsigned int bitmap_calls;	/* GET_BITMAP calls per sample */
	unsigned int reps;	/* MAP/UNMAP repeats per sample (best of) */
	unsigned int pin_stride;	/* one page pinned per this many */
	const char *only;	/* comma-separated workload numbers, or NULL */
	unsigned int backends;	/* bit per enum bench_backend to run */
	const char *profile;	/* row id (a glob) to profile, or NULL */
	const char *profile_fifo;	/* perf record --control fifo */
};

/*
 * One row of the result table: a quantity measured once per round and
 * backend. Rows are created on first use, in the order they are used.
 */
struct bench_metric {
	char id[48];
	int workload;
	char label[96];
	const char *unit;
	double target;		/* ratio in-tree/ours to reach, 0: none */
	unsigned int count;	/* workload 2: number of mappings, else 0 */
	char op[16];		/* workload 2: map, unmap, unmap_rand */
	double v[BENCH_NR_BACKENDS][BENCH_MAX_ROUNDS];
	unsigned int n[BENCH_NR_BACKENDS];
	/*
	 * GET_BITMAP rows: the fastest user-space memset() of as many bytes
	 * as the bitmap has, timed next to the calls (NAN: not measured).
	 * No report can be faster than writing its bitmap once.
	 */
	double memset_us[BENCH_NR_BACKENDS];
	char why[128];		/* why a value is missing, if one is */
};

/* Memory the workloads share for the whole run (same pages every round). */
struct bench_mem {
	uint8_t *anon;		/* 4 KiB pages, pre-faulted */
	uint8_t *thp;		/* 2 MiB aligned, MADV_HUGEPAGE, pre-faulted */
	uint8_t *huge;		/* hugetlbfs 2 MiB pages, or NULL */
	uint64_t size;
	uint64_t thp_bytes;	/* of @thp actually backed by huge pages */
	const char *huge_why;	/* why @huge is NULL */
	uint8_t *virt;		/* reserved, never touched (pinned scope) */
	uint64_t virt_size;
};

/*
 * One workload: its number, what measures it, its name for the notes.
 * @per_rep: each repetition is a round of its own (bench_cfg.reps times
 * as many rounds of one repetition each), so that the two backends
 * alternate sample by sample; for workloads whose set-up is cheap next
 * to what they time.
 */
struct bench_workload {
	int nr;
	void (*fn)(struct bench_mem *mem);
	const char *name;
	bool per_rep;
};

/* vid_bench.c */
extern struct bench_cfg bench_cfg;
extern enum bench_backend bench_cur;

double bench_now_us(void);
double bench_median(double *v, unsigned int n);
double bench_best(const double *v, unsigned int n);
bool bench_first_round(void);
unsigned int bench_round(void);
struct bench_metric *bench_metric(const char *id, int workload,
				  const char *label, const char *unit,
				  double target);
void bench_record(struct bench_metric *m, double value);
void bench_record_memset(struct bench_metric *m, double us);
void bench_missing(struct bench_metric *m, const char *fmt, ...);
void bench_note(const char *fmt, ...);
bool bench_want(int workload);
void bench_prof(const struct bench_metric *m, bool on);

/* bench_work.c */
extern const struct bench_workload bench_workloads[];
int bench_mem_setup(struct bench_mem *mem);

/* bench_mig.c */
void bench_migration(struct bench_mem *mem);

#endif /* VID_BENCH_H */
