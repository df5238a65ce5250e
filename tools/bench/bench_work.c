// SPDX-License-Identifier: GPL-2.0
/*
 * vid_bench workloads. Each one opens its own container on the backend
 * that currently serves type1 containers, measures, and closes it again,
 * so nothing is held when the driver swaps the modules between backends.
 *
 *  1  MAP_DMA then UNMAP_DMA of one large mapping: 4 KiB anonymous pages,
 *     transparent huge pages, hugetlbfs 2 MiB pages.
 *  2  many 4 KiB mappings: per MAP, per UNMAP in IOVA order and per UNMAP
 *     in random order, for several mapping counts.
 *  3  GET_BITMAP: IOMMU-backed scope (edu in the container, every page
 *     dirty) and pinned-page scope (the emulated test device holding one
 *     page in bench_cfg.pin_stride pinned), each at the base size and at
 *     the largest size the guest allows.
 *  4  UNMAP_DMA with GET_DIRTY_BITMAP in both scopes.
 *  5  kernel memory held per GiB mapped, tracking off and on.
 *  6  live migration with QEMU and the device writing (bench_mig.c).
 *  7  workload 1's 4 KiB MAP and UNMAP with both edu groups in the
 *     container: one domain in-tree (all it can do with one IOMMU), two
 *     in this module, loaded with test_domain_per_group=1 for it.
 *
 * A container whose backend is not the one under test (the VFIO core
 * fell back to another driver) is never measured: the row says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vid_bench.h"

/* IOVA of the first mapping: 4 GiB, clear of the MSI window. */
#define BENCH_IOVA		0x100000000ULL
#define BENCH_MAP_STRIDE	(2 * VID_PAGE)

#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB		(21 << 26)
#endif

static const char *const backend_mod[BENCH_NR_BACKENDS] = {
	[BENCH_INTREE] = VID_MOD_TYPE1,
	[BENCH_OURS] = VID_MOD_OURS,
};

/* ---------------------------------------------------------------------- */
/* memory shared by all rounds                                            */
/* ---------------------------------------------------------------------- */

static int write_sysctl(const char *path, const char *val)
{
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	if (n < 0)
		return -errno;
	return (size_t)n == strlen(val) ? 0 : -EIO;
}

/* Bytes of [@p, @p + @len) backed by transparent huge pages. */
static uint64_t thp_backed(const void *p, uint64_t len)
{
	unsigned long start, end, kb;
	uint64_t total = 0;
	char line[256];
	bool inside = false;
	FILE *f;

	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			inside = start < (uintptr_t)p + len &&
				 end > (uintptr_t)p;
			continue;
		}
		if (inside && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			total += (uint64_t)kb << 10;
	}
	fclose(f);
	return total;
}

static void *map_aligned(uint64_t size, uint64_t align, int flags)
{
	uint8_t *p, *a;

	p = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	a = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	if (a > p)
		munmap(p, a - p);
	munmap(a + size, p + align - a);
	return a;
}

static void *alloc_hugetlb(uint64_t size, const char **why)
{
	char val[32];
	void *p;
	int ret;

	/* A few spare pages: the pool may already hold some in use. */
	snprintf(val, sizeof(val), "%llu\n",
		 (unsigned long long)(size / BENCH_SZ_2M + 8));
	ret = write_sysctl("/proc/sys/vm/nr_hugepages", val);
	if (ret) {
		*why = "cannot set /proc/sys/vm/nr_hugepages";
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB,
		 -1, 0);
	if (p == MAP_FAILED) {
		*why = "not enough 2 MiB hugetlbfs pages (guest memory?)";
		return NULL;
	}
	/* Fault every page in now; SIGBUS here would mean a short pool. */
	memset(p, 0x5a, size);
	return p;
}

/**
 * bench_mem_setup() - allocate and fault in the memory every round maps
 * @mem: filled in
 *
 * hugetlbfs pages are taken first, while physical memory is still in one
 * piece. The same pages serve every round of both backends.
 *
 * Return: 0, or -ENOMEM when the anonymous buffers cannot be had.
 */
int bench_mem_setup(struct bench_mem *mem)
{
	uint64_t size = bench_cfg.size;

	memset(mem, 0, sizeof(*mem));
	mem->size = size;
	mem->huge = alloc_hugetlb(size, &mem->huge_why);

	mem->anon = map_aligned(size, BENCH_SZ_2M, 0);
	if (!mem->anon)
		return -ENOMEM;
	/* 4 KiB pages: THP is "always" on the test kernel. */
	madvise(mem->anon, size, MADV_NOHUGEPAGE);
	memset(mem->anon, 0x6b, size);

	mem->thp = map_aligned(size, BENCH_SZ_2M, 0);
	if (!mem->thp)
		return -ENOMEM;
	madvise(mem->thp, size, MADV_HUGEPAGE);
	memset(mem->thp, 0x3c, size);
	mem->thp_bytes = thp_backed(mem->thp, size);

	/*
	 * Pinned-page scope maps this without touching it: a container
	 * without an IOMMU domain pins only what the device pins. 4 KiB
	 * pages, so a pin faults in one page and not a whole 2 MiB.
	 */
	mem->virt_size = size;
	mem->virt = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem->virt == MAP_FAILED)
		return -ENOMEM;
	madvise(mem->virt, size, MADV_NOHUGEPAGE);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* containers                                                             */
/* ---------------------------------------------------------------------- */

/*
 * A v2 container with the edu group (IOMMU-backed scope), served by the
 * backend under test. 0 or -errno; -ESRCH when another driver took it.
 */
static int open_iommu(struct vid_ctx *ctx)
{
	bool served;
	int ret;

	ret = vid_ctx_open(ctx, 0);	/* no type yet: set and checked below */
	if (ret)
		return ret;
	ret = vid_set_iommu(ctx->container, VFIO_TYPE1v2_IOMMU,
			    backend_mod[bench_cur], &served);
	if (!ret && !served)
		ret = -ESRCH;
	if (ret)
		vid_ctx_close(ctx);
	return ret;
}

/* A v2 container with the emulated test device only (pinned-page scope). */
static int open_emu(struct vid_ctx *ctx)
{
	bool served;
	int ret;

	if (!vid_module_live(VID_EMU_MOD))
		return -ENODEV;
	ret = vid_emu_ctx_open(ctx, VID_EMU_DEV0, VFIO_TYPE1v2_IOMMU,
			       &served);
	if (ret)
		return ret;
	if (!served) {
		vid_ctx_close(ctx);
		return -ESRCH;
	}
	return 0;
}

static const char *ctx_error(int ret)
{
	static char buf[128];

	switch (ret) {
	case -ESRCH:
		snprintf(buf, sizeof(buf), "%s did not serve the container",
			 backend_mod[bench_cur]);
		return buf;
	case -ENODEV:
		return "the emulated test device (vid-emu.ko) is not loaded";
	default:
		snprintf(buf, sizeof(buf), "container setup: %s",
			 strerror(-ret));
		return buf;
	}
}

/* ---------------------------------------------------------------------- */
/* dirty page tracking calls                                              */
/* ---------------------------------------------------------------------- */

static int dirty_op(int fd, uint32_t flags)
{
	struct vfio_iommu_type1_dirty_bitmap d = {
		.argsz = sizeof(d),
		.flags = flags,
	};

	return ioctl(fd, VFIO_IOMMU_DIRTY_PAGES, &d) ? -errno : 0;
}

static int get_bitmap(int fd, uint64_t iova, uint64_t size, uint64_t *bits)
{
	struct {
		struct vfio_iommu_type1_dirty_bitmap d;
		struct vfio_iommu_type1_dirty_bitmap_get r;
	} a = {
		.d.argsz = sizeof(a),
		.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
		.r.iova = iova,
		.r.size = size,
		.r.bitmap.pgsize = VID_PAGE,
		.r.bitmap.size = size / VID_PAGE / 8,
		.r.bitmap.data = (__u64 *)bits,
	};

	return ioctl(fd, VFIO_IOMMU_DIRTY_PAGES, &a) ? -errno : 0;
}

static int unmap_bitmap(int fd, uint64_t iova, uint64_t size,
			uint64_t *bits, uint64_t *unmapped)
{
	struct {
		struct vfio_iommu_type1_dma_unmap u;
		struct vfio_bitmap b;
	} a = {
		.u.argsz = sizeof(a),
		.u.flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
		.u.iova = iova,
		.u.size = size,
		.b.pgsize = VID_PAGE,
		.b.size = size / VID_PAGE / 8,
		.b.data = (__u64 *)bits,
	};

	if (ioctl(fd, VFIO_IOMMU_UNMAP_DMA, &a))
		return -errno;
	*unmapped = a.u.size;
	return 0;
}

/* A user bitmap for @size bytes of IOVA space, one bit per 4 KiB. */
static uint64_t *bitmap_new(uint64_t size)
{
	uint64_t bytes = size / VID_PAGE / 8;
	void *p;

	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void bitmap_del(uint64_t *bits, uint64_t size)
{
	if (bits)
		munmap(bits, size / VID_PAGE / 8);
}

static uint64_t bitmap_weight(const uint64_t *bits, uint64_t size)
{
	uint64_t i, n = 0, words = size / VID_PAGE / 64;

	for (i = 0; i < words; i++)
		n += __builtin_popcountll(bits[i]);
	return n;
}

/*
 * Pin one page in every bench_cfg.pin_stride of [@iova, @iova + @size)
 * through the emulated device. Return: pages pinned, or -errno.
 */
static long pin_spread(int dev, uint64_t iova, uint64_t size)
{
	uint64_t off, step = (uint64_t)bench_cfg.pin_stride * VID_PAGE;
	long n = 0;
	int ret;

	for (off = 0; off < size; off += step) {
		ret = vid_emu_pin(dev, iova + off, 1,
				  VID_EMU_PIN_READ | VID_EMU_PIN_WRITE, NULL);
		if (ret)
			return ret;
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------------- */
/* workload 1: one large MAP, then UNMAP                                  */
/* ---------------------------------------------------------------------- */

struct w1_kind {
	const char *id;
	const char *what;
	double target;
};

/*
 * Are the pinned-page and locked-memory counters back at @before? If not,
 * say so on @m (whose last sample is then not recorded). Return: true when
 * they are.
 */
static bool pins_returned(struct bench_metric *m, const struct vid_acct *before)
{
	struct vid_acct now;
	int ret;

	ret = vid_acct_read(&now);
	if (ret) {
		bench_missing(m, "pin counters: %s", strerror(-ret));
		return false;
	}
	if (now.pinned == before->pinned && now.vmlck_kb == before->vmlck_kb)
		return true;
	bench_missing(m, "after UNMAP %ld pages still pinned, VmLck %+ld kB",
		      now.pinned - before->pinned,
		      now.vmlck_kb - before->vmlck_kb);
	return false;
}

/*
 * Add the second edu device's group to @ctx's container: its fd, or
 * -errno (-ENODEV: the guest has one edu device).
 */
static int add_second_group(struct vid_ctx *ctx)
{
	char bdf[32];
	int id, ret;

	ret = vid_edu_bdf_nth(1, bdf, sizeof(bdf));
	if (ret)
		return ret;
	id = vid_device_group("pci", bdf);
	if (id < 0)
		return id;
	return vid_open_group_id(ctx->container, id);
}

/*
 * The IOMMU domains of this module's only container: as many as groups
 * when it runs with test_domain_per_group. 0 or -errno.
 */
static int check_domains(long long want)
{
	long long n = vid_debugfs_state("domains");

	if (n < 0)
		return (int)n;
	return n == want ? 0 : -EXDEV;
}

/*
 * MAP then UNMAP @buf, reps times, on the backend under test, with one
 * group (workload 1) or, with @two, both edu groups (workload 7).
 */
static void w1_one(const struct w1_kind *k, void *buf, const char *why,
		   bool two)
{
	double tm[BENCH_MAX_REPS], tu[BENCH_MAX_REPS], t;
	uint64_t size = bench_cfg.size, got = 0;
	struct bench_metric *mm, *mu;
	struct vid_acct before;
	char id[48], label[96];
	int ret, group2 = -1;
	struct vid_ctx ctx;
	unsigned int rep;

	snprintf(id, sizeof(id), "map_%s", k->id);
	snprintf(label, sizeof(label), "MAP %llu MiB, %s",
		 (unsigned long long)(size >> 20), k->what);
	mm = bench_metric(id, two ? 7 : 1, label, "ms", k->target);
	snprintf(id, sizeof(id), "unmap_%s", k->id);
	snprintf(label, sizeof(label), "UNMAP %llu MiB, %s",
		 (unsigned long long)(size >> 20), k->what);
	mu = bench_metric(id, two ? 7 : 1, label, "ms", k->target);

	if (!buf) {
		bench_missing(mm, "%s", why);
		bench_missing(mu, "%s", why);
		return;
	}
	ret = open_iommu(&ctx);
	if (ret) {
		bench_missing(mm, "%s", ctx_error(ret));
		bench_missing(mu, "%s", ctx_error(ret));
		return;
	}
	if (two) {
		group2 = add_second_group(&ctx);
		ret = group2 < 0 ? group2 : 0;
		if (!ret && bench_cur == BENCH_OURS)
			ret = check_domains(2);
		if (ret) {
			bench_missing(mm, "second group: %s", strerror(-ret));
			bench_missing(mu, "second group: %s", strerror(-ret));
			goto out;
		}
	}
	for (rep = 0; rep < bench_cfg.reps; rep++) {
		ret = vid_acct_read(&before);
		if (ret) {
			bench_missing(mm, "pin counters: %s", strerror(-ret));
			goto out;
		}
		bench_prof(mm, true);
		t = bench_now_us();
		ret = vid_map(ctx.container, BENCH_IOVA, buf, size, VID_MAP_RW);
		tm[rep] = (bench_now_us() - t) / 1000;
		bench_prof(mm, false);
		if (ret) {
			bench_missing(mm, "MAP_DMA: %s", strerror(-ret));
			bench_missing(mu, "MAP_DMA: %s", strerror(-ret));
			goto out;
		}
		if (bench_cur == BENCH_OURS && bench_first_round() && !rep)
			bench_note("%s: ours maps it with %lld 4K + %lld 2M + %lld 1G IOMMU pages",
				   k->id, vid_debugfs_state("iommu_pages_4K"),
				   vid_debugfs_state("iommu_pages_2M"),
				   vid_debugfs_state("iommu_pages_1G"));
		bench_prof(mu, true);
		t = bench_now_us();
		ret = vid_unmap(ctx.container, BENCH_IOVA, size, &got);
		tu[rep] = (bench_now_us() - t) / 1000;
		bench_prof(mu, false);
		if (ret || got != size) {
			bench_missing(mu, "UNMAP_DMA: %s, %llu bytes",
				      strerror(-ret), (unsigned long long)got);
			goto out;
		}
		/* A fast unmap that leaves pages pinned is no result. */
		if (!pins_returned(mu, &before))
			goto out;
	}
	bench_record(mm, bench_best(tm, rep));
	bench_record(mu, bench_best(tu, rep));
out:
	if (group2 >= 0)
		close(group2);
	vid_ctx_close(&ctx);
}

static void w1_map_unmap(struct bench_mem *mem)
{
	static const struct w1_kind anon = {
		"anon4k", "anonymous 4 KiB pages", 1.0,
	};
	static const struct w1_kind thp = {
		"thp", "transparent huge pages", 2.0,
	};
	static const struct w1_kind huge = {
		"hugetlb", "hugetlbfs 2 MiB pages", 2.0,
	};

	w1_one(&anon, mem->anon, NULL, false);
	w1_one(&thp, mem->thp, NULL, false);
	w1_one(&huge, mem->huge, mem->huge_why, false);
}

/* ---------------------------------------------------------------------- */
/* workload 7: two groups, two domains in this module                     */
/* ---------------------------------------------------------------------- */

/*
 * With one IOMMU both backends would share one domain between the two
 * groups; this module is loaded again with test_domain_per_group=1 for
 * this workload, so that its UNMAP has a further domain to clear, and as
 * before afterwards. In-tree has no such switch: its row is one domain.
 */
static void w7_two_groups(struct bench_mem *mem)
{
	static const struct w1_kind anon = {
		"anon4k_2groups",
		"4 KiB pages, 2 groups (in-tree 1 domain, ours 2)", 0,
	};
	const char *why = NULL;
	int ret;

	if (bench_cur == BENCH_OURS) {
		ret = vid_module_reload_ours("test_domain_per_group=1");
		if (ret)
			why = "cannot load the module with test_domain_per_group=1";
	}
	w1_one(&anon, why ? NULL : mem->anon, why, true);
	if (bench_cur != BENCH_OURS)
		return;
	ret = vid_module_remove(VID_MOD_OURS, false);
	if (!ret)
		ret = vid_module_load_ours();
	if (ret)
		bench_note("reloading %s without test_domain_per_group: %s",
			   VID_MOD_OURS, strerror(-ret));
}

/* ---------------------------------------------------------------------- */
/* workload 2: many small mappings                                        */
/* ---------------------------------------------------------------------- */

/* Same order every round and backend: a fixed-seed shuffle. */
static void shuffle(unsigned int *v, unsigned int n)
{
	uint64_t x = 0x2545f4914f6cdd1dULL;
	unsigned int i, j, t;

	for (i = n - 1; i > 0; i--) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = (unsigned int)(x % (i + 1));
		t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

static int w2_map_all(struct vid_ctx *ctx, struct bench_mem *mem,
		      unsigned int count)
{
	uint64_t pages = mem->size / VID_PAGE;
	unsigned int i;
	int ret;

	for (i = 0; i < count; i++) {
		ret = vid_map(ctx->container, BENCH_IOVA + i * BENCH_MAP_STRIDE,
			      mem->anon + (i % pages) * VID_PAGE, VID_PAGE,
			      VID_MAP_RW);
		if (ret)
			return ret;
	}
	return 0;
}

static int w2_unmap_list(struct vid_ctx *ctx, const unsigned int *order,
			 unsigned int count)
{
	uint64_t got;
	unsigned int i;
	int ret;

	for (i = 0; i < count; i++) {
		ret = vid_unmap(ctx->container,
				BENCH_IOVA + order[i] * BENCH_MAP_STRIDE,
				VID_PAGE, &got);
		if (ret)
			return ret;
		if (got != VID_PAGE)
			return -EIO;
	}
	return 0;
}

/*
 * One repetition of workload 2 at @count mappings: MAP all (op 0), UNMAP
 * them in IOVA order (op 1), MAP all again (untimed), UNMAP them in the
 * order of @rnd (op 2). @t gets the µs per call of each op.
 */
static int w2_rep(struct vid_ctx *ctx, struct bench_mem *mem,
		  struct bench_metric **m, const unsigned int *seq,
		  const unsigned int *rnd, unsigned int count, double *t)
{
	double t0;
	int step, op, ret = 0;

	for (step = 0; step < 4 && !ret; step++) {
		op = step == 3 ? 2 : step;
		if (step != 2)
			bench_prof(m[op], true);
		t0 = bench_now_us();
		if (step == 0 || step == 2)
			ret = w2_map_all(ctx, mem, count);
		else
			ret = w2_unmap_list(ctx, step == 1 ? seq : rnd, count);
		if (step != 2) {
			t[op] = (bench_now_us() - t0) / count;
			bench_prof(m[op], false);
		}
	}
	return ret;
}

static void w2_count(struct bench_mem *mem, unsigned int count)
{
	static const char *const ops[3] = { "map", "unmap", "unmap_rand" };
	static const char *const what[3] = {
		"MAP", "UNMAP in IOVA order", "UNMAP in random order",
	};
	double t[3][BENCH_MAX_REPS], one[3];
	unsigned int *seq, *rnd, i, rep;
	struct bench_metric *m[3];
	char id[48], label[96];
	struct vid_ctx ctx;
	int ret;

	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "%s_%u", ops[i], count);
		snprintf(label, sizeof(label), "%s, %u x 4 KiB, per call",
			 what[i], count);
		m[i] = bench_metric(id, 2, label, "us", 1.0);
		m[i]->count = count;
		snprintf(m[i]->op, sizeof(m[i]->op), "%s", ops[i]);
	}
	seq = calloc(count, sizeof(*seq));
	rnd = calloc(count, sizeof(*rnd));
	if (!seq || !rnd) {
		for (i = 0; i < 3; i++)
			bench_missing(m[i], "out of memory");
		goto out_free;
	}
	for (i = 0; i < count; i++) {
		seq[i] = i;
		rnd[i] = i;
	}
	shuffle(rnd, count);

	ret = open_iommu(&ctx);
	if (ret) {
		for (i = 0; i < 3; i++)
			bench_missing(m[i], "%s", ctx_error(ret));
		goto out_free;
	}
	for (rep = 0; !ret && rep < bench_cfg.reps; rep++) {
		ret = w2_rep(&ctx, mem, m, seq, rnd, count, one);
		for (i = 0; i < 3; i++)
			t[i][rep] = one[i];
	}
	vid_ctx_close(&ctx);
	for (i = 0; i < 3; i++) {
		if (ret)
			bench_missing(m[i], "MAP/UNMAP_DMA: %s", strerror(-ret));
		else
			bench_record(m[i], bench_best(t[i], rep));
	}
out_free:
	free(seq);
	free(rnd);
}

static void w2_small(struct bench_mem *mem)
{
	unsigned int i;

	for (i = 0; i < bench_cfg.nr_counts; i++)
		w2_count(mem, bench_cfg.counts[i]);
}

/* ---------------------------------------------------------------------- */
/* workload 3: GET_BITMAP                                                 */
/* ---------------------------------------------------------------------- */

/*
 * The limit of a report: time @n memset() calls over the @bytes of @bits
 * (already faulted in: a report has just been written there) and record
 * the fastest on @m. Each call writes other bytes than the one before,
 * so that none of them can be skipped.
 */
static void time_memset(struct bench_metric *m, uint64_t *bits,
			uint64_t bytes, unsigned int n)
{
	double best = NAN, t;
	unsigned int i;

	for (i = 0; i < n; i++) {
		t = bench_now_us();
		memset(bits, i & 1 ? 0xff : 0x5a, bytes);
		t = bench_now_us() - t;
		/* Keep the compiler from dropping the stores. */
		__asm__ volatile("" : : "r"(bits) : "memory");
		if (isnan(best) || t < best)
			best = t;
	}
	bench_record_memset(m, best);
}

/*
 * Time bench_cfg.bitmap_calls GET_BITMAP calls over [@iova, @iova +
 * @size) after one untimed call; record the fastest in µs and check the
 * weight of the last bitmap against @want. Then time as many memset()s
 * of the bitmap: the distance to the limit.
 */
static void time_bitmaps(struct bench_metric *m, int fd, uint64_t iova,
			 uint64_t size, uint64_t want)
{
	unsigned int i, n = bench_cfg.bitmap_calls;
	uint64_t *bits, weight;
	double t[64];
	int ret;

	if (n > 64)
		n = 64;
	bits = bitmap_new(size);
	if (!bits) {
		bench_missing(m, "no memory for the user bitmap");
		return;
	}
	ret = get_bitmap(fd, iova, size, bits);
	bench_prof(m, true);
	for (i = 0; !ret && i < n; i++) {
		t[i] = bench_now_us();
		ret = get_bitmap(fd, iova, size, bits);
		t[i] = bench_now_us() - t[i];
	}
	bench_prof(m, false);
	if (ret) {
		bench_missing(m, "GET_BITMAP: %s", strerror(-ret));
	} else {
		weight = bitmap_weight(bits, size);
		if (weight != want) {
			bench_missing(m, "GET_BITMAP reported %llu dirty pages, expected %llu",
				      (unsigned long long)weight,
				      (unsigned long long)want);
		} else {
			bench_record(m, bench_best(t, n));
			time_memset(m, bits, size / VID_PAGE / 8, n);
		}
	}
	bitmap_del(bits, size);
}

/* IOMMU-backed scope over the mappings of @bufs, laid out back to back. */
static void w3_iommu(struct bench_metric *m, uint8_t *const *bufs,
		     unsigned int nbufs)
{
	uint64_t size = bench_cfg.size;
	struct vid_ctx ctx;
	unsigned int i;
	int ret;

	ret = open_iommu(&ctx);
	if (ret) {
		bench_missing(m, "%s", ctx_error(ret));
		return;
	}
	for (i = 0; i < nbufs; i++) {
		ret = vid_map(ctx.container, BENCH_IOVA + i * size, bufs[i],
			      size, VID_MAP_RW);
		if (ret) {
			bench_missing(m, "MAP_DMA: %s", strerror(-ret));
			goto out;
		}
	}
	ret = dirty_op(ctx.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	if (ret) {
		bench_missing(m, "DIRTY_PAGES START: %s", strerror(-ret));
		goto out;
	}
	/* No device pins here: everything is reported dirty. */
	time_bitmaps(m, ctx.container, BENCH_IOVA, nbufs * size,
		     nbufs * size / VID_PAGE);
out:
	vid_ctx_close(&ctx);
}

/*
 * Pinned-page scope: @copies mappings of the untouched buffer back to
 * back, one page in pin_stride of each pinned by the emulated device.
 */
static void w3_pinned(struct bench_metric *m, struct bench_mem *mem,
		      unsigned int copies)
{
	uint64_t size = mem->virt_size, i;
	struct vid_ctx ctx;
	long pinned = 0, n;
	int ret;

	ret = open_emu(&ctx);
	if (ret) {
		bench_missing(m, "%s", ctx_error(ret));
		return;
	}
	for (i = 0; i < copies; i++) {
		ret = vid_map(ctx.container, BENCH_IOVA + i * size, mem->virt,
			      size, VID_MAP_RW);
		if (ret) {
			bench_missing(m, "MAP_DMA: %s", strerror(-ret));
			goto out;
		}
	}
	ret = dirty_op(ctx.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	if (ret) {
		bench_missing(m, "DIRTY_PAGES START: %s", strerror(-ret));
		goto out;
	}
	for (i = 0; i < copies; i++) {
		n = pin_spread(ctx.device, BENCH_IOVA + i * size, size);
		if (n < 0) {
			bench_missing(m, "device pin: %s", strerror((int)-n));
			goto out;
		}
		pinned += n;
	}
	time_bitmaps(m, ctx.container, BENCH_IOVA, copies * size, pinned);
out:
	/* The device gives its pins back when its fd closes. */
	vid_ctx_close(&ctx);
}

static void w3_bitmap(struct bench_mem *mem)
{
	uint64_t size = bench_cfg.size;
	uint8_t *bufs[BENCH_MAX_BUFS];
	unsigned int nbufs, copies, i;
	struct bench_metric *m;
	char label[96];

	snprintf(label, sizeof(label),
		 "GET_BITMAP %llu MiB, IOMMU-backed scope, per call",
		 (unsigned long long)(size >> 20));
	m = bench_metric("bitmap_iommu", 3, label, "us", 2.0);
	w3_iommu(m, &mem->anon, 1);

	/*
	 * As much as the bitmap of one call covers here: every buffer, the
	 * hugetlbfs one (cheapest to pin) mapped again at further IOVAs up
	 * to large_iommu bytes. Pinning a page twice is allowed.
	 */
	nbufs = bench_cfg.large_iommu / size;
	if (nbufs > BENCH_MAX_BUFS)
		nbufs = BENCH_MAX_BUFS;
	for (i = 0; i < nbufs; i++)
		bufs[i] = i == 0 ? mem->anon : i == 1 || !mem->huge ?
			  mem->thp : mem->huge;
	snprintf(label, sizeof(label),
		 "GET_BITMAP %llu MiB, IOMMU-backed scope, per call",
		 (unsigned long long)(nbufs * size >> 20));
	m = bench_metric("bitmap_iommu_max", 3, label, "us", 2.0);
	w3_iommu(m, bufs, nbufs);

	snprintf(label, sizeof(label),
		 "GET_BITMAP %llu MiB, pinned-page scope, 1/%u pinned",
		 (unsigned long long)(size >> 20), bench_cfg.pin_stride);
	m = bench_metric("bitmap_pinned", 3, label, "us", 1.0);
	w3_pinned(m, mem, 1);

	copies = bench_cfg.large_pinned / mem->virt_size;
	snprintf(label, sizeof(label),
		 "GET_BITMAP %llu MiB, pinned-page scope, 1/%u pinned",
		 (unsigned long long)(copies * mem->virt_size >> 20),
		 bench_cfg.pin_stride);
	m = bench_metric("bitmap_pinned_max", 3, label, "us", 1.0);
	w3_pinned(m, mem, copies);
}

/* ---------------------------------------------------------------------- */
/* workload 4: UNMAP with GET_DIRTY_BITMAP                                */
/* ---------------------------------------------------------------------- */

/*
 * One timed UNMAP with GET_DIRTY_BITMAP of the mapping at BENCH_IOVA,
 * which must report @want dirty pages. Return: µs, or -1 on failure
 * (reported on @m).
 */
static double w4_unmap(struct bench_metric *m, struct vid_ctx *ctx,
		       uint64_t want)
{
	uint64_t size = bench_cfg.size, got = 0, *bits;
	double t = -1;
	int ret;

	bits = bitmap_new(size);
	if (!bits) {
		bench_missing(m, "no memory for the user bitmap");
		return -1;
	}
	bench_prof(m, true);
	t = bench_now_us();
	ret = unmap_bitmap(ctx->container, BENCH_IOVA, size, bits, &got);
	t = bench_now_us() - t;
	bench_prof(m, false);
	if (ret || got != size) {
		bench_missing(m, "UNMAP_DMA with bitmap: %s, %llu bytes",
			      strerror(-ret), (unsigned long long)got);
		t = -1;
	} else if (bitmap_weight(bits, size) != want) {
		bench_missing(m, "%llu dirty pages reported, expected %llu",
			      (unsigned long long)bitmap_weight(bits, size),
			      (unsigned long long)want);
		t = -1;
	}
	bitmap_del(bits, size);
	return t;
}

/* IOMMU-backed scope: map @buf, start tracking, unmap with the bitmap. */
static void w4_iommu(struct bench_metric *m, void *buf)
{
	uint64_t size = bench_cfg.size;
	double t[BENCH_MAX_REPS];
	struct vid_acct before;
	struct vid_ctx ctx;
	unsigned int rep;
	int ret;

	ret = open_iommu(&ctx);
	if (ret) {
		bench_missing(m, "%s", ctx_error(ret));
		return;
	}
	ret = dirty_op(ctx.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	for (rep = 0; !ret && rep < bench_cfg.reps; rep++) {
		ret = vid_acct_read(&before);
		if (!ret)
			ret = vid_map(ctx.container, BENCH_IOVA, buf, size,
				      VID_MAP_RW);
		if (ret)
			break;
		/* No device pins: every page is reported dirty. */
		t[rep] = w4_unmap(m, &ctx, size / VID_PAGE);
		if (t[rep] < 0 || !pins_returned(m, &before))
			goto out;
	}
	if (ret)
		bench_missing(m, "setup: %s", strerror(-ret));
	else
		bench_record(m, bench_best(t, rep) / 1000);
out:
	vid_ctx_close(&ctx);
}

/* Pinned-page scope: the device pins, is told to unpin by the unmap. */
static void w4_pinned(struct bench_metric *m, struct bench_mem *mem)
{
	uint64_t size = bench_cfg.size;
	double t[BENCH_MAX_REPS];
	struct vid_acct before;
	struct vid_ctx ctx;
	unsigned int rep;
	long n = 0;
	int ret;

	ret = open_emu(&ctx);
	if (ret) {
		bench_missing(m, "%s", ctx_error(ret));
		return;
	}
	ret = dirty_op(ctx.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	for (rep = 0; !ret && rep < bench_cfg.reps; rep++) {
		ret = vid_acct_read(&before);
		if (!ret)
			ret = vid_map(ctx.container, BENCH_IOVA, mem->virt,
				      size, VID_MAP_RW);
		n = ret ? ret : pin_spread(ctx.device, BENCH_IOVA, size);
		if (n < 0)
			break;
		/* The device unpins when told: each of its pins is dirty. */
		t[rep] = w4_unmap(m, &ctx, n);
		if (t[rep] < 0 || !pins_returned(m, &before))
			goto out;
	}
	if (ret || n < 0)
		bench_missing(m, "setup: %s", strerror(ret ? -ret : (int)-n));
	else
		bench_record(m, bench_best(t, rep) / 1000);
out:
	vid_ctx_close(&ctx);
}

static void w4_unmap_bitmap(struct bench_mem *mem)
{
	uint64_t mib = bench_cfg.size >> 20;
	struct bench_metric *m;
	char label[96];

	snprintf(label, sizeof(label),
		 "UNMAP+bitmap %llu MiB, 4 KiB pages, IOMMU-backed scope",
		 (unsigned long long)mib);
	m = bench_metric("unmap_bitmap_iommu", 4, label, "ms", 2.0);
	w4_iommu(m, mem->anon);

	snprintf(label, sizeof(label),
		 "UNMAP+bitmap %llu MiB, hugetlbfs, IOMMU-backed scope",
		 (unsigned long long)mib);
	m = bench_metric("unmap_bitmap_iommu_huge", 4, label, "ms", 2.0);
	if (mem->huge)
		w4_iommu(m, mem->huge);
	else
		bench_missing(m, "%s", mem->huge_why);

	snprintf(label, sizeof(label),
		 "UNMAP+bitmap %llu MiB, pinned-page scope, 1/%u pinned",
		 (unsigned long long)mib, bench_cfg.pin_stride);
	m = bench_metric("unmap_bitmap_pinned", 4, label, "ms", 1.0);
	w4_pinned(m, mem);
}

/* ---------------------------------------------------------------------- */
/* workload 5: memory held per GiB mapped                                 */
/* ---------------------------------------------------------------------- */

/* Kernel memory counters of /proc/meminfo, in KiB. */
struct meminfo {
	long slab;		/* SUnreclaim: slab and kmalloc */
	long vmalloc;		/* VmallocUsed: kvmalloc fallbacks */
	long pgtables;		/* SecPageTables: IOMMU page tables */
};

static int meminfo_read(struct meminfo *mi)
{
	char line[128];
	long v;
	FILE *f;

	/* Fold the per-CPU counter deltas in first. */
	write_sysctl("/proc/sys/vm/stat_refresh", "1\n");
	memset(mi, 0, sizeof(*mi));
	f = fopen("/proc/meminfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "SUnreclaim: %ld kB", &v) == 1)
			mi->slab = v;
		else if (sscanf(line, "VmallocUsed: %ld kB", &v) == 1)
			mi->vmalloc = v;
		else if (sscanf(line, "SecPageTables: %ld kB", &v) == 1)
			mi->pgtables = v;
	}
	fclose(f);
	return 0;
}

/* KiB per GiB of @size bytes mapped, held by the backend. */
static double held_per_gib(const struct meminfo *a, const struct meminfo *b,
			   uint64_t size)
{
	long kib = (b->slab - a->slab) + (b->vmalloc - a->vmalloc);

	return (double)kib * (double)BENCH_SZ_1G / (double)size;
}

/*
 * A baseline reading once the counters stopped moving: memory freed by
 * RCU or by the previous module's unload still drifts for a moment.
 */
static void meminfo_settle(struct meminfo *mi)
{
	struct meminfo prev;
	int same = 0, i;

	meminfo_read(mi);
	for (i = 0; i < 50 && same < 3; i++) {
		usleep(20000);
		prev = *mi;
		meminfo_read(mi);
		if (prev.slab == mi->slab && prev.vmalloc == mi->vmalloc)
			same++;
		else
			same = 0;
	}
}

/* KiB per GiB for the rows of one scope; v[0] off, v[1] on, v[2] tables. */
static int w5_iommu(struct bench_mem *mem, double *v)
{
	uint64_t size = bench_cfg.size;
	struct meminfo base, mapped, tracking;
	struct vid_ctx ctx;
	int ret;

	ret = open_iommu(&ctx);
	if (ret)
		return ret;
	meminfo_settle(&base);
	ret = vid_map(ctx.container, BENCH_IOVA, mem->anon, size, VID_MAP_RW);
	meminfo_read(&mapped);
	if (!ret)
		ret = dirty_op(ctx.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	meminfo_read(&tracking);
	vid_ctx_close(&ctx);
	v[0] = held_per_gib(&base, &mapped, size);
	v[1] = held_per_gib(&base, &tracking, size);
	v[2] = (double)(mapped.pgtables - base.pgtables) *
	       (double)BENCH_SZ_1G / (double)size;
	return ret;
}

/*
 * Pinned-page scope holds per pinned page (both backends: a small record
 * each, from a slab cache), so the slab pages a reading sees grow by less
 * than what was allocated when the cache had free room in partly used
 * pages before: up to some tens of KiB, by luck. Measured over this many
 * mappings of the untouched buffer, that error shrinks to a few KiB per
 * GiB, below the method's resolution.
 */
#define W5_PINNED_COPIES	8

static int w5_pinned(struct bench_mem *mem, double *v)
{
	uint64_t size = mem->virt_size, total = 0;
	struct meminfo base, mapped, tracking;
	struct vid_ctx ctx;
	unsigned int i;
	long n = 0;
	int ret;

	ret = open_emu(&ctx);
	if (ret)
		return ret;
	meminfo_settle(&base);
	for (i = 0; !ret && n >= 0 && i < W5_PINNED_COPIES; i++) {
		ret = vid_map(ctx.container, BENCH_IOVA + total, mem->virt,
			      size, VID_MAP_RW);
		n = ret ? ret : pin_spread(ctx.device, BENCH_IOVA + total, size);
		total += size;
	}
	size = total;
	meminfo_read(&mapped);
	ret = n < 0 ? (int)n :
	      dirty_op(ctx.container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
	meminfo_read(&tracking);
	vid_ctx_close(&ctx);
	v[0] = held_per_gib(&base, &mapped, size);
	v[1] = held_per_gib(&base, &tracking, size);
	return ret;
}

/*
 * Run @fn bench_cfg.reps times and record the median of each of its
 * @nrows values on @rows (memory is not timing: no best-of here).
 */
static void w5_scope(struct bench_mem *mem,
		     int (*fn)(struct bench_mem *mem, double *v),
		     struct bench_metric **rows, unsigned int nrows)
{
	double v[3][BENCH_MAX_REPS], one[3];
	unsigned int rep, i;
	int ret = 0;

	for (rep = 0; !ret && rep < bench_cfg.reps; rep++) {
		ret = fn(mem, one);
		for (i = 0; i < nrows; i++)
			v[i][rep] = one[i];
	}
	for (i = 0; i < nrows; i++) {
		if (ret)
			bench_missing(rows[i], "%s", ctx_error(ret));
		else
			bench_record(rows[i], bench_median(v[i], rep));
	}
}

static void w5_memory(struct bench_mem *mem)
{
	struct bench_metric *iommu[3], *pinned[2];

	iommu[0] = bench_metric("mem_iommu_off", 5,
				"kernel memory per GiB mapped, IOMMU scope, tracking off",
				"KiB", 1.0);
	iommu[1] = bench_metric("mem_iommu_on", 5,
				"kernel memory per GiB mapped, IOMMU scope, tracking on",
				"KiB", 1.0);
	iommu[2] = bench_metric("mem_iommu_pgtables", 5,
				"IOMMU page tables per GiB mapped (4 KiB pages)",
				"KiB", 0);
	pinned[0] = bench_metric("mem_pinned_off", 5,
				 "kernel memory per GiB, pinned scope (+test device), tracking off",
				 "KiB", 1.0);
	pinned[1] = bench_metric("mem_pinned_on", 5,
				 "kernel memory per GiB, pinned scope (+test device), tracking on",
				 "KiB", 1.0);
	w5_scope(mem, w5_iommu, iommu, 3);
	w5_scope(mem, w5_pinned, pinned, 2);
}

/* The workloads, in the order a run measures them; ends with a NULL fn. */
const struct bench_workload bench_workloads[] = {
	{ 1, w1_map_unmap, "MAP/UNMAP", true },
	{ 2, w2_small, "many small mappings", false },
	{ 3, w3_bitmap, "GET_BITMAP", false },
	{ 4, w4_unmap_bitmap, "UNMAP with bitmap", true },
	{ 5, w5_memory, "memory", false },
	{ 6, bench_migration, "live migration", false },
	{ 7, w7_two_groups, "two groups", true },
	{ 0, NULL, NULL, false },
};
