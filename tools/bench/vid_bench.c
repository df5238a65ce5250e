// SPDX-License-Identifier: GPL-2.0
/*
 * vid_bench - the same workloads on in-tree vfio_iommu_type1 and on
 * vfio_iommu_dirty, in one boot of the test guest.
 *
 * Each workload runs in rounds; a round runs it on in-tree type1 (this
 * module unloaded) and on this module (loaded after type1, so that the
 * VFIO core prefers it), in-tree first in even rounds and this module
 * first in odd ones, so that a load drifting in one direction favours
 * neither. Keeping the two backends of a round close in time keeps the
 * host's changing load (the guest is a TCG process sharing the machine)
 * out of their ratio as far as it can be: where set-up is cheap, every
 * repetition is a round of its own (struct bench_workload.per_rep);
 * elsewhere a round's sample of a quick operation is the best of a few
 * repetitions (see bench_best()).
 *
 * Per row the table gives, for each backend, the median and the spread
 * (min..max) over the rounds, and three ratios in-tree / this module
 * (above 1: this module is faster, or holds less): of the two minima,
 * of the two medians, and the range of the ratios within one round. A
 * shared host only ever adds time, and it does so in modes (a sample
 * lands in a fast or in a slow one), so the median of a few rounds can
 * flip with the mode the rounds happened to catch while each backend's
 * fastest sample is what it costs when nothing else interferes: targets
 * are judged on the ratio of the minima, with the median ratio and the
 * per-round range next to it. A backend with many samples far above its
 * minimum is flagged as measured on a host with two modes.
 *
 * Besides the table, every row is printed as one line "BENCH {json}" for
 * scripts/bench.sh, which writes the results and the picture on the host.
 *
 * usage: vid_bench [--quick] [--rounds N] [--reps N] [--size-mb N]
 *                  [--large-iommu-gb N] [--large-pinned-gb N]
 *                  [--counts N,N,N] [--calls N] [--pin-stride N] [--only 1,2,..]
 *                  [--backend intree|ours] [--profile ID --profile-fifo PATH]
 *
 * --only and --backend narrow a run down, for profiling one workload on
 * one backend; such a run has no ratios. With --profile, the timed part
 * of each row whose id matches the glob ID is bracketed by "enable" and
 * "disable" written to the control fifo of a "perf record -D -1
 * --control fifo:PATH" running around vid_bench, so that the profile
 * holds that operation and nothing of the setup around it (PATH is
 * "CTL,ACK", the control and acknowledgment fifos).
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "vid_bench.h"

struct bench_cfg bench_cfg = {
	.rounds = 6,
	.size = BENCH_SZ_1G,
	.large_iommu = 16 * BENCH_SZ_1G,
	.large_pinned = 256 * BENCH_SZ_1G,
	.counts = { 1000, 10000, 60000 },
	.nr_counts = 3,
	.bitmap_calls = 9,
	.reps = 3,
	.pin_stride = 100,
	.backends = (1 << BENCH_NR_BACKENDS) - 1,
};

enum bench_backend bench_cur;

static struct bench_metric metrics[BENCH_MAX_METRICS];
static unsigned int nr_metrics;
static unsigned int cur_round;

static const char *const backend_name[BENCH_NR_BACKENDS] = {
	[BENCH_INTREE] = "intree",
	[BENCH_OURS] = "ours",
};

double bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

void bench_note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

bool bench_want(int workload)
{
	const char *p = bench_cfg.only;
	char *end;
	long v;

	if (!p)
		return true;
	while (*p) {
		v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v == workload)
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

/**
 * bench_prof() - switch the profiler on or off around a timed operation
 * @m: the row being timed
 * @on: true before the operation, false after it
 *
 * Does nothing unless --profile names @m's id. --profile-fifo is
 * "CTL,ACK", the two fifos of perf record --control: each command waits
 * for perf's acknowledgment, so that the profile starts and stops right
 * at the operation. The fifos are opened on first use.
 */
void bench_prof(const struct bench_metric *m, bool on)
{
	static int ctl = -1, ack = -1;
	const char *cmd = on ? "enable\n" : "disable\n";
	char path[256], *comma, reply[16];
	ssize_t n;

	if (!bench_cfg.profile || fnmatch(bench_cfg.profile, m->id, 0))
		return;
	if (ctl < 0) {
		snprintf(path, sizeof(path), "%s", bench_cfg.profile_fifo);
		comma = strchr(path, ',');
		if (comma)
			*comma++ = '\0';
		ctl = open(path, O_WRONLY | O_CLOEXEC);
		if (comma)
			ack = open(comma, O_RDONLY | O_CLOEXEC);
	}
	if (ctl < 0 || write(ctl, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) {
		bench_note("profile control %s: %s", bench_cfg.profile_fifo,
			   strerror(errno));
		return;
	}
	/* perf answers "ack\n" once the command is done. */
	n = ack < 0 ? 0 : read(ack, reply, sizeof(reply));
	if (ack >= 0 && n <= 0)
		bench_note("no acknowledgment from perf");
}

/**
 * bench_metric() - the row @id, created on first use
 * @id: short unique name (also the JSON key)
 * @workload: number of the workload (1..5)
 * @label: what the row measures, for the table
 * @unit: unit of the values
 * @target: ratio in-tree/ours the row should reach, or 0
 *
 * Return: the row. The table has room for BENCH_MAX_METRICS rows; past
 * that the last one is reused, which the run reports.
 */
struct bench_metric *bench_metric(const char *id, int workload,
				  const char *label, const char *unit,
				  double target)
{
	struct bench_metric *m;
	unsigned int i;

	for (i = 0; i < nr_metrics; i++)
		if (!strcmp(metrics[i].id, id))
			return &metrics[i];
	if (nr_metrics == BENCH_MAX_METRICS) {
		bench_note("too many rows: %s shares the last one", id);
		return &metrics[nr_metrics - 1];
	}
	m = &metrics[nr_metrics++];
	snprintf(m->id, sizeof(m->id), "%s", id);
	snprintf(m->label, sizeof(m->label), "%s", label);
	m->workload = workload;
	m->unit = unit;
	m->target = target;
	m->memset_us[BENCH_INTREE] = NAN;
	m->memset_us[BENCH_OURS] = NAN;
	return m;
}

void bench_record(struct bench_metric *m, double value)
{
	unsigned int *n = &m->n[bench_cur];

	if (*n < BENCH_MAX_ROUNDS)
		m->v[bench_cur][(*n)++] = value;
}

/**
 * bench_record_memset() - note how long a memset() of a row's bitmap took
 * @m: a GET_BITMAP row
 * @us: the time of one memset() of as many bytes as its bitmap has
 *
 * The row keeps the fastest per backend: the distance to the limit is
 * the row's fastest sample as a multiple of it.
 */
void bench_record_memset(struct bench_metric *m, double us)
{
	double *best = &m->memset_us[bench_cur];

	if (isnan(*best) || us < *best)
		*best = us;
}

void bench_missing(struct bench_metric *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->why, sizeof(m->why), fmt, ap);
	va_end(ap);
	bench_note("%s on %s, round %u: no value: %s", m->id,
		   backend_name[bench_cur], cur_round + 1, m->why);
}

/* ---------------------------------------------------------------------- */
/* statistics                                                             */
/* ---------------------------------------------------------------------- */

struct stats {
	double median, min, max;
	unsigned int n;
	unsigned int slow;	/* samples above BENCH_SLOW_MODE x min */
};

/*
 * A sample this much above its backend's fastest was taken in the host's
 * slow mode (a second process on the core, a TCG translation flush...).
 */
#define BENCH_SLOW_MODE		1.25

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/**
 * bench_median() - median of @n values
 * @v: the values; sorted in place
 * @n: how many (NaN when 0)
 *
 * Return: the middle value, or the mean of the two middle values.
 */
double bench_median(double *v, unsigned int n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/**
 * bench_best() - the smallest of @n values (NaN when @n is 0)
 * @v: the values
 * @n: how many
 *
 * A round's sample is the best of its repetitions: the host's other load
 * only ever adds time to a run of the guest, never removes any.
 *
 * Return: the minimum.
 */
double bench_best(const double *v, unsigned int n)
{
	double best = NAN;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (isnan(best) || v[i] < best)
			best = v[i];
	return best;
}

bool bench_first_round(void)
{
	return cur_round == 0;
}

/* The round being run, from 0. */
unsigned int bench_round(void)
{
	return cur_round;
}

static void stats_of(const double *v, unsigned int n, struct stats *s)
{
	double sorted[BENCH_MAX_ROUNDS];

	unsigned int i;

	s->n = n;
	memcpy(sorted, v, n * sizeof(*v));
	s->median = bench_median(sorted, n);
	s->min = n ? sorted[0] : NAN;
	s->max = n ? sorted[n - 1] : NAN;
	s->slow = 0;
	for (i = 0; i < n; i++)
		if (sorted[i] > s->min * BENCH_SLOW_MODE)
			s->slow++;
}

/*
 * Two modes: at least one sample in five (and two in all) far above the
 * fastest. Counts of things (syncs, pages) and memory are not timings.
 */
static bool two_modes(const struct bench_metric *m, const struct stats *s)
{
	if (strcmp(m->unit, "ms") && strcmp(m->unit, "us"))
		return false;
	return s->slow >= 2 && s->slow * 5 >= s->n;
}

/*
 * Ratio of the minima (what targets are judged on), of the medians, and
 * the range of the ratios of the rounds in which both backends have a
 * value. NaN where there is no valid ratio (a missing value, or memory
 * too small to tell from zero).
 */
struct ratio {
	double best, mid, lo, hi;
};

/* Memory deltas below this are within the counters' granularity. */
#define BENCH_MEM_FLOOR_KIB	16.0

static double safe_div(const struct bench_metric *m, double a, double b)
{
	if (!strcmp(m->unit, "KiB")) {
		if (a < BENCH_MEM_FLOOR_KIB && b < BENCH_MEM_FLOOR_KIB)
			return 1.0;
		if (a < BENCH_MEM_FLOOR_KIB || b < BENCH_MEM_FLOOR_KIB)
			return NAN;
	}
	return b > 0 && a >= 0 ? a / b : NAN;
}

static void ratio_of(const struct bench_metric *m, const struct stats *in,
		     const struct stats *ours, struct ratio *r)
{
	unsigned int i, n = m->n[BENCH_INTREE];
	double x;

	r->best = safe_div(m, in->min, ours->min);
	r->mid = safe_div(m, in->median, ours->median);
	r->lo = NAN;
	r->hi = NAN;
	if (m->n[BENCH_OURS] < n)
		n = m->n[BENCH_OURS];
	for (i = 0; i < n; i++) {
		x = safe_div(m, m->v[BENCH_INTREE][i], m->v[BENCH_OURS][i]);
		if (isnan(x))
			continue;
		if (isnan(r->lo) || x < r->lo)
			r->lo = x;
		if (isnan(r->hi) || x > r->hi)
			r->hi = x;
	}
}

/* ---------------------------------------------------------------------- */
/* output                                                                 */
/* ---------------------------------------------------------------------- */

/* A number for JSON: null when not finite. */
static void json_num(const char *key, double v, bool comma)
{
	if (isfinite(v))
		printf("\"%s\":%.6g%s", key, v, comma ? "," : "");
	else
		printf("\"%s\":null%s", key, comma ? "," : "");
}

/* A string for JSON; the texts here never hold quotes or backslashes. */
static void json_str(const char *key, const char *v, bool comma)
{
	printf("\"%s\":\"%s\"%s", key, v, comma ? "," : "");
}

static void json_samples(const char *key, const double *v, unsigned int n)
{
	unsigned int i;

	printf("\"%s\":[", key);
	for (i = 0; i < n; i++)
		printf("%s%.6g", i ? "," : "", v[i]);
	printf("],");
}

/* A GET_BITMAP row's time as a multiple of a memset() of its bitmap. */
static double x_memset(const struct bench_metric *m, const struct stats *s,
		       int b)
{
	double floor_us = m->memset_us[b];

	return floor_us > 0 && s[b].n ? s[b].min / floor_us : NAN;
}

static void json_backend(const struct bench_metric *m,
			 const struct stats *s, int b)
{
	char key[32];

#define KEY(suffix) (snprintf(key, sizeof(key), "%s_" suffix, \
			      backend_name[b]), key)
	json_num(KEY("median"), s[b].median, true);
	json_num(KEY("min"), s[b].min, true);
	json_num(KEY("max"), s[b].max, true);
	json_samples(KEY("samples"), m->v[b], m->n[b]);
	printf("\"%s\":%s,", KEY("two_modes"),
	       two_modes(m, &s[b]) ? "true" : "false");
	if (!isnan(m->memset_us[b])) {
		json_num(KEY("memset"), m->memset_us[b], true);
		json_num(KEY("x_memset"), x_memset(m, s, b), true);
	}
#undef KEY
}

static void json_row(const struct bench_metric *m, const struct stats *s,
		     const struct ratio *r)
{
	bool met = isfinite(r->best) && r->best >= m->target;

	printf("BENCH {\"type\":\"row\",");
	json_str("id", m->id, true);
	printf("\"workload\":%d,", m->workload);
	json_str("label", m->label, true);
	json_str("unit", m->unit, true);
	if (m->count) {
		printf("\"count\":%u,", m->count);
		json_str("op", m->op, true);
	}
	json_backend(m, s, BENCH_INTREE);
	json_backend(m, s, BENCH_OURS);
	/* "ratio" is the judged one: of the minima. */
	json_num("ratio", r->best, true);
	json_num("ratio_median", r->mid, true);
	json_num("ratio_min", r->lo, true);
	json_num("ratio_max", r->hi, true);
	json_num("target", m->target, true);
	if (m->target > 0)
		printf("\"met\":%s,", met ? "true" : "false");
	else
		printf("\"met\":null,");
	json_str("note", m->why, false);
	printf("}\n");
}

/* Four significant digits, but never an exponent. */
static const char *fmt_num(char *buf, size_t len, double v)
{
	snprintf(buf, len, v >= 1000 ? "%.0f" : "%.4g", v);
	return buf;
}

/* "median [min..max]", and a '~' when the samples fell in two modes. */
static void fmt_cell(char *buf, size_t len, const struct bench_metric *m,
		     const struct stats *s)
{
	char a[24], b[24], c[24];

	if (!s->n)
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%s [%s..%s]%s",
			 fmt_num(a, sizeof(a), s->median),
			 fmt_num(b, sizeof(b), s->min),
			 fmt_num(c, sizeof(c), s->max),
			 two_modes(m, s) ? "~" : "");
}

/* "best (median) [round range]" */
static void fmt_ratio(char *buf, size_t len, const struct ratio *r)
{
	if (isnan(r->best))
		snprintf(buf, len, "n/a");
	else if (isnan(r->lo))
		snprintf(buf, len, "%.2f (%.2f)", r->best, r->mid);
	else
		snprintf(buf, len, "%.2f (%.2f) [%.2f..%.2f]", r->best,
			 r->mid, r->lo, r->hi);
}

/*
 * The distance to the limit of each GET_BITMAP row: its fastest call as a
 * multiple of the fastest memset() of as many bytes in the same guest,
 * per backend. 1.0 would be a report that costs no more than writing its
 * bitmap once.
 */
static void report_memset(void)
{
	struct stats s[BENCH_NR_BACKENDS];
	const struct bench_metric *m;
	bool head = false;
	unsigned int i;
	int b;

	for (i = 0; i < nr_metrics; i++) {
		m = &metrics[i];
		if (isnan(m->memset_us[BENCH_INTREE]) &&
		    isnan(m->memset_us[BENCH_OURS]))
			continue;
		if (!head) {
			printf("\nGET_BITMAP against a memset() of its bitmap\n");
			printf("(fastest call / fastest memset):\n");
			head = true;
		}
		for (b = 0; b < BENCH_NR_BACKENDS; b++)
			stats_of(m->v[b], m->n[b], &s[b]);
		printf("  %-19s memset %8.2f us  in-tree x%-8.2f ours x%.2f\n",
		       m->id, m->memset_us[BENCH_OURS],
		       x_memset(m, s, BENCH_INTREE),
		       x_memset(m, s, BENCH_OURS));
	}
}

/*
 * Growth of the per-call cost of workload 2 from the smallest to the
 * largest count, against log(largest)/log(smallest): a cost growing as
 * log(n) stays within that bound. 10% is allowed for timing noise.
 */
static void report_scaling(void)
{
	static const char *const ops[] = { "map", "unmap", "unmap_rand" };
	unsigned int lo = bench_cfg.counts[0], hi = lo, i, j, b;
	const struct bench_metric *mlo, *mhi;
	struct stats slo, shi;
	double growth, bound;
	bool met;

	for (i = 0; i < bench_cfg.nr_counts; i++) {
		if (bench_cfg.counts[i] < lo)
			lo = bench_cfg.counts[i];
		if (bench_cfg.counts[i] > hi)
			hi = bench_cfg.counts[i];
	}
	if (lo == hi || lo < 2)
		return;
	bound = log((double)hi) / log((double)lo);
	printf("\nCost per call of workload 2 from %u to %u mappings\n", lo, hi);
	printf("(bound log(%u)/log(%u) = %.2f, +10%% for noise):\n", hi, lo,
	       bound);
	for (i = 0; i < 3; i++) {
		mlo = NULL;
		mhi = NULL;
		for (j = 0; j < nr_metrics; j++) {
			if (strcmp(metrics[j].op, ops[i]))
				continue;
			if (metrics[j].count == lo)
				mlo = &metrics[j];
			if (metrics[j].count == hi)
				mhi = &metrics[j];
		}
		if (!mlo || !mhi)
			continue;
		for (b = 0; b < BENCH_NR_BACKENDS; b++) {
			stats_of(mlo->v[b], mlo->n[b], &slo);
			stats_of(mhi->v[b], mhi->n[b], &shi);
			growth = slo.median > 0 ? shi.median / slo.median : NAN;
			met = isfinite(growth) && growth <= bound * 1.1;
			printf("  %-10s %-7s x%.2f %s\n", ops[i],
			       backend_name[b], growth,
			       isfinite(growth) ? (met ? "(met)" : "(missed)") :
			       "(n/a)");
			printf("BENCH {\"type\":\"scaling\",");
			json_str("op", ops[i], true);
			json_str("backend", backend_name[b], true);
			printf("\"from\":%u,\"to\":%u,", lo, hi);
			json_num("growth", growth, true);
			json_num("bound", bound, true);
			printf("\"met\":%s}\n", met ? "true" : "false");
		}
	}
}

static void report(void)
{
	struct stats s[BENCH_NR_BACKENDS];
	char in[96], ours[96], rat[80];
	const struct bench_metric *m;
	struct ratio r;
	unsigned int i;
	int b;

	printf("\n%-19s %-58s %-5s %-29s %-29s %-29s %s\n", "id", "workload",
	       "unit", "in-tree median [min..max]", "ours median [min..max]",
	       "in-tree/ours best (median)", "target");
	for (i = 0; i < nr_metrics; i++) {
		m = &metrics[i];
		for (b = 0; b < BENCH_NR_BACKENDS; b++)
			stats_of(m->v[b], m->n[b], &s[b]);
		ratio_of(m, &s[BENCH_INTREE], &s[BENCH_OURS], &r);
		fmt_cell(in, sizeof(in), m, &s[BENCH_INTREE]);
		fmt_cell(ours, sizeof(ours), m, &s[BENCH_OURS]);
		fmt_ratio(rat, sizeof(rat), &r);
		printf("%-19s %-58s %-5s %-29s %-29s %-29s ", m->id, m->label,
		       m->unit, in, ours, rat);
		if (m->target <= 0)
			printf("-\n");
		else
			printf(">= %.1f %s\n", m->target,
			       isnan(r.best) ? "n/a" :
			       r.best >= m->target ? "met" : "MISSED");
	}
	printf("(~: one sample in five or more over %.2f x the fastest: a host in two modes)\n",
	       BENCH_SLOW_MODE);
	report_memset();
	report_scaling();
	printf("\n");
	for (i = 0; i < nr_metrics; i++) {
		m = &metrics[i];
		for (b = 0; b < BENCH_NR_BACKENDS; b++)
			stats_of(m->v[b], m->n[b], &s[b]);
		ratio_of(m, &s[BENCH_INTREE], &s[BENCH_OURS], &r);
		json_row(m, s, &r);
	}
	fflush(stdout);
}

static void print_meta(const struct bench_mem *mem)
{
	struct utsname u;
	long pages = sysconf(_SC_PHYS_PAGES);

	uname(&u);
	printf("BENCH {\"type\":\"meta\",");
	json_str("kernel", u.release, true);
	printf("\"cpus\":%ld,", sysconf(_SC_NPROCESSORS_ONLN));
	printf("\"mem_mib\":%ld,", pages > 0 ? pages / 256 : -1L);
	printf("\"rounds\":%u,\"quick\":%s,", bench_cfg.rounds,
	       bench_cfg.quick ? "true" : "false");
	printf("\"size\":%llu,\"large_iommu\":%llu,\"large_pinned\":%llu,",
	       (unsigned long long)bench_cfg.size,
	       (unsigned long long)bench_cfg.large_iommu,
	       (unsigned long long)bench_cfg.large_pinned);
	printf("\"reps\":%u,", bench_cfg.reps);
	printf("\"thp_bytes\":%llu,\"hugetlb\":%s,",
	       (unsigned long long)mem->thp_bytes,
	       mem->huge ? "true" : "false");
	printf("\"pin_stride\":%u,\"bitmap_calls\":%u}\n",
	       bench_cfg.pin_stride, bench_cfg.bitmap_calls);
	fflush(stdout);
}

/* ---------------------------------------------------------------------- */
/* backends                                                               */
/* ---------------------------------------------------------------------- */

/* Make @b the driver of new type1 containers. 0 or -errno. */
static int switch_backend(enum bench_backend b)
{
	const char *why = NULL;
	int ret;

	if (b == BENCH_INTREE)
		setenv("VID_BACKEND", "intree", 1);
	else
		unsetenv("VID_BACKEND");
	ret = vid_modules_setup(&why);
	if (ret) {
		fprintf(stderr, "vid_bench: %s: %s\n", why, strerror(-ret));
		return ret;
	}
	bench_cur = b;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* options                                                                */
/* ---------------------------------------------------------------------- */

static void bad_usage(void)
{
	fprintf(stderr,
		"usage: vid_bench [--quick] [--rounds N] [--reps N] [--size-mb N]\n"
		"                 [--large-iommu-gb N] [--large-pinned-gb N]\n"
		"                 [--counts N,N,N] [--calls N] [--pin-stride N] [--only 1,2,..]\n"
		"                 [--backend intree|ours] [--profile ID --profile-fifo PATH]\n");
	exit(2);
}

static unsigned long num_arg(const char *s, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || !v || v > max)
		bad_usage();
	return v;
}

static void parse_counts(const char *s)
{
	char *copy = strdup(s), *tok, *save = NULL;

	bench_cfg.nr_counts = 0;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (bench_cfg.nr_counts == 3)
			bad_usage();
		bench_cfg.counts[bench_cfg.nr_counts++] = num_arg(tok, 65535);
	}
	free(copy);
	if (!bench_cfg.nr_counts)
		bad_usage();
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "size-mb", required_argument, NULL, 's' },
		{ "large-iommu-gb", required_argument, NULL, 'L' },
		{ "large-pinned-gb", required_argument, NULL, 'l' },
		{ "reps", required_argument, NULL, 'R' },
		{ "counts", required_argument, NULL, 'c' },
		{ "calls", required_argument, NULL, 'k' },
		{ "pin-stride", required_argument, NULL, 'p' },
		{ "only", required_argument, NULL, 'o' },
		{ "backend", required_argument, NULL, 'b' },
		{ "profile", required_argument, NULL, 'P' },
		{ "profile-fifo", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	/* --quick first: the other options override what it sets. */
	for (c = 1; c < argc; c++) {
		if (strcmp(argv[c], "--quick"))
			continue;
		bench_cfg.quick = true;
		bench_cfg.rounds = 1;
		bench_cfg.size = 16ULL << 20;
		bench_cfg.large_iommu = 64ULL << 20;
		bench_cfg.large_pinned = 256ULL << 20;
		bench_cfg.reps = 1;
		bench_cfg.counts[0] = 100;
		bench_cfg.counts[1] = 1000;
		bench_cfg.nr_counts = 2;
		bench_cfg.bitmap_calls = 3;
	}
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			break;
		case 'r':
			bench_cfg.rounds = num_arg(optarg, BENCH_MAX_ROUNDS);
			break;
		case 's':
			bench_cfg.size = (uint64_t)num_arg(optarg, 65536) << 20;
			break;
		case 'L':
			bench_cfg.large_iommu =
				(uint64_t)num_arg(optarg, 4096) << 30;
			break;
		case 'l':
			bench_cfg.large_pinned =
				(uint64_t)num_arg(optarg, 8192) << 30;
			break;
		case 'R':
			bench_cfg.reps = num_arg(optarg, BENCH_MAX_REPS);
			break;
		case 'c':
			parse_counts(optarg);
			break;
		case 'k':
			bench_cfg.bitmap_calls = num_arg(optarg, 64);
			break;
		case 'p':
			bench_cfg.pin_stride = num_arg(optarg, 1 << 20);
			break;
		case 'o':
			bench_cfg.only = optarg;
			break;
		case 'b':
			if (!strcmp(optarg, "intree"))
				bench_cfg.backends = 1 << BENCH_INTREE;
			else if (!strcmp(optarg, "ours"))
				bench_cfg.backends = 1 << BENCH_OURS;
			else
				bad_usage();
			break;
		case 'P':
			bench_cfg.profile = optarg;
			break;
		case 'F':
			bench_cfg.profile_fifo = optarg;
			break;
		default:
			bad_usage();
		}
	}
	if (optind != argc || bench_cfg.size % BENCH_SZ_2M ||
	    !bench_cfg.profile != !bench_cfg.profile_fifo)
		bad_usage();
	if (bench_cfg.large_pinned < bench_cfg.size)
		bench_cfg.large_pinned = bench_cfg.size;
	if (bench_cfg.large_iommu < bench_cfg.size)
		bench_cfg.large_iommu = bench_cfg.size;
}

/*
 * One round of workload @w: each selected backend in turn, in-tree first
 * in even rounds and this module first in odd ones. 0 or -errno.
 */
static int run_round(const struct bench_workload *w, struct bench_mem *mem,
		     unsigned int rounds)
{
	double t[BENCH_NR_BACKENDS] = { NAN, NAN };
	int i, b, ret;

	for (i = 0; i < BENCH_NR_BACKENDS; i++) {
		b = cur_round % 2 ? BENCH_NR_BACKENDS - 1 - i : i;
		if (!(bench_cfg.backends & (1 << b)))
			continue;
		ret = switch_backend(b);
		if (ret)
			return ret;
		t[b] = bench_now_us();
		w->fn(mem);
		t[b] = (bench_now_us() - t[b]) / 1e6;
	}
	bench_note("workload %d (%s), round %u/%u: in-tree %.1f s, ours %.1f s",
		   w->nr, w->name, cur_round + 1, rounds,
		   t[BENCH_INTREE], t[BENCH_OURS]);
	return 0;
}

/*
 * All rounds of workload @w. A per_rep workload runs reps times as many
 * rounds (as many as fit) of one repetition each. 0 or -errno.
 */
static int run_workload(const struct bench_workload *w,
			struct bench_mem *mem)
{
	unsigned int reps = bench_cfg.reps, rounds = bench_cfg.rounds;
	int ret = 0;

	if (w->per_rep) {
		rounds *= reps;
		if (rounds > BENCH_MAX_ROUNDS)
			rounds = BENCH_MAX_ROUNDS;
		bench_cfg.reps = 1;
	}
	for (cur_round = 0; !ret && cur_round < rounds; cur_round++)
		ret = run_round(w, mem, rounds);
	bench_cfg.reps = reps;
	return ret;
}

int main(int argc, char **argv)
{
	const struct bench_workload *w;
	struct bench_mem mem;
	const char *why;
	double t0;
	int ret;

	parse_args(argc, argv);
	why = vid_skip_reason();
	if (why) {
		fprintf(stderr, "vid_bench: %s\n", why);
		return 4;
	}
	/* Modules in place before the test device needs vfio. */
	ret = switch_backend(BENCH_INTREE);
	if (ret)
		return 1;
	/* With the two migratable devices workload 6 needs. */
	ret = vid_emu_load_mig(2);
	if (ret)
		ret = vid_emu_load();
	if (ret)
		bench_note("emulated test device not loaded (%s): pinned-page scope rows are n/a",
			   strerror(-ret));

	t0 = bench_now_us();
	ret = bench_mem_setup(&mem);
	if (ret) {
		fprintf(stderr, "vid_bench: memory setup: %s\n", strerror(-ret));
		return 1;
	}
	bench_note("memory: %llu MiB x 3 buffers, THP-backed %llu MiB, hugetlbfs %s (%.1f s)",
		   (unsigned long long)(mem.size >> 20),
		   (unsigned long long)(mem.thp_bytes >> 20),
		   mem.huge ? "yes" : mem.huge_why,
		   (bench_now_us() - t0) / 1e6);
	print_meta(&mem);

	for (w = bench_workloads; w->fn; w++) {
		if (!bench_want(w->nr))
			continue;
		if (run_workload(w, &mem))
			return 1;
	}
	report();
	return 0;
}
