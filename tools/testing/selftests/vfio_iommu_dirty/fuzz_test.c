// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile input: a seeded random driver of every ioctl of a type1
 * container and of the emulated test device (vid_emu/), with random
 * argsz, flags, ranges, page sizes and pointers (NULL, unmapped,
 * PROT_NONE, read-only, kernel and non-canonical addresses, misaligned,
 * structures and buffers cut short by an unmapped page).
 *
 * Each fuzz test opens one kind of container (a variant: edu and the
 * test device, edu alone, the test device alone, a v1 container), reads
 * GET_INFO at every argsz from 0 to 512, then makes a fixed number of
 * calls (VID_FUZZ_OPS, default below) drawn from a generator seeded by
 * VID_SEED; this module's tracepoints are on meanwhile and the trace is
 * read back. Every call must succeed or fail with an errno from a small
 * set per ioctl. A model of the container (mappings, invalidated host
 * addresses, tracking, the device's pins, what memory the kernel can
 * read or write) predicts the result of every call, errno included, and
 * the call must give it; whatever a call returns must agree with the
 * model (a success never overlaps, an unmap reports exactly the bytes the
 * model holds, the device's pin counts and this module's debugfs match,
 * GET_INFO's DMA_AVAIL counts the model's mappings, nothing is written
 * past argsz, an IOMMU-backed mapping reads as all dirty).
 *
 * The same calls then run again against in-tree vfio_iommu_type1 (this
 * module unloaded meanwhile and loaded again afterwards), and the two
 * traces must agree call by call: same errno, same unmapped sizes, same
 * CHECK_EXTENSION answers. This backend's extensions (the PEEK flag,
 * bitmap page sizes above the base page) are the only calls where the
 * two may differ: in-tree then answers EINVAL. Mappings that end at the
 * top of the 64-bit IOVA space, which in-tree mishandles, are left to
 * mapping_at_the_top. With VID_BACKEND=intree both runs use in-tree
 * type1, which checks that the calls and the model are deterministic.
 * VID_FUZZ_COMPARE=0 skips the second run; on a lockdep kernel it is
 * skipped where the test device is involved (see lockdep_kernel()).
 *
 * The life test does the same with the life of containers: fresh
 * containers, groups added and removed in any order, VFIO_SET_IOMMU with
 * every type value and garbage, the device opened and closed, mappings,
 * pins and tracking left behind on every close.
 *
 * At the end of each run: the unmap of everything returns exactly the
 * bytes the model holds, the device holds no pins, and once every fd is
 * closed the locked memory, the system's pinned pages and the module's
 * reference count are back, no debugfs container directory is left, and
 * the kernel logged no problem. A failure prints the calls that led to
 * it; the seed and the per-ioctl counts of results are always printed.
 *
 * This file holds the tests and what reports through the harness; the
 * model, the calls and their arguments are in the other fuzz_*.c files
 * of the program (fuzz.h says which holds what).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"
#include "fuzz.h"

#define DEFAULT_SEED	0x5eed0004ULL
#define DEFAULT_OPS	10000		/* per variant and run */
#define CHECK_EVERY	128		/* ops between full state checks */

/* ---------------------------------------------------------------------- */
/* the fuzz runs                                                          */
/* ---------------------------------------------------------------------- */

static unsigned int fz_ops(void)
{
	const char *s = getenv("VID_FUZZ_OPS");
	long v;

	if (!s || !*s)
		return DEFAULT_OPS;
	v = strtol(s, NULL, 0);
	return v > 0 && v <= 10000000 ? (unsigned int)v : DEFAULT_OPS;
}

static bool fz_compare_enabled(void)
{
	const char *s = getenv("VID_FUZZ_COMPARE");

	return !s || strcmp(s, "0");
}

/*
 * In-tree type1 (6.12) calls a device's dma_unmap holding its device
 * list lock, which it takes under its container lock, while the test
 * device pins and unpins under its own lock: lockdep reports that cycle
 * (a real one, see stress_test.c) as soon as in-tree serves the device.
 * On a kernel with lockdep the comparison runs where the device is not
 * involved; this module takes no lock around dma_unmap.
 */
static bool lockdep_kernel(void)
{
	return !access("/proc/lockdep", F_OK);
}

/* The counts of results, per kind of call. */
static void print_counts(struct __test_metadata *_metadata, struct fz *f)
{
	char line[512];
	unsigned int op;

	for (op = 0; op < NOPS; op++)
		if (fuzz_count_line(f, op, line, sizeof(line)))
			TH_LOG("%s", line);
}

/* The calls up to the first one that went wrong, to reproduce it. */
static void print_history(struct __test_metadata *_metadata, struct fz *f)
{
	uint32_t i = f->first_bad > 16 ? f->first_bad - 16 : 0;
	char what[300];

	if (!f->nbad)
		return;
	TH_LOG("the calls before the first unexpected result:");
	for (; i <= f->first_bad && i < f->ntr; i++) {
		fuzz_ent_str(&f->tr[i], what, sizeof(what));
		TH_LOG("  #%u %s: %s (0x%llx)%s", i, what,
		       fuzz_res_name(f->tr[i].ret),
		       (unsigned long long)f->tr[i].aux,
		       f->tr[i].fixup ? ", unmap after it" : "");
	}
}

/* One call of @op: to the container or to the test device. */
static void do_op(struct fz *f, enum op op)
{
	if (op_on_device(op))
		fuzz_device_op(f, op);
	else
		fuzz_container_op(f, op);
}

/*
 * One run: open the container, sweep GET_INFO over every argsz, make
 * @nops random calls, then check that everything the model holds is
 * there and goes away. The trace stays in @f.
 */
static void fz_run(struct __test_metadata *_metadata, struct fz *f,
		   const struct fz_cfg *cfg, uint64_t seed, unsigned int nops)
{
	struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u) };
	const char *why = "";
	long long start = vid_now_ms();
	unsigned int i;
	uint64_t bytes = 0;
	int ret;

	vid_rng_init(&f->rng, seed * 0x100 + cfg->salt);
	f->edu = cfg->edu;
	f->emu = cfg->emu;
	f->v2 = cfg->type != VFIO_TYPE1_IOMMU;
	ret = fuzz_arena_create(f);
	ASSERT_EQ(0, ret) TH_LOG("arena at 0x%llx: %s",
				 (unsigned long long)ARENA_ADDR,
				 strerror(-ret));
	ret = fz_open(f, cfg, &why);
	ASSERT_EQ(0, ret) TH_LOG("%s (%s): %s", why, f->mod, strerror(-ret));
	ASSERT_EQ(0, fz_learn(f));

	for (i = 0; i <= INFO_SWEEP; i++)
		fuzz_get_info(f, i, PC_NORMAL);
	for (i = 0; i < nops; i++) {
		do_op(f, fuzz_pick_op(f));
		if (i % CHECK_EVERY == CHECK_EVERY - 1) {
			if (f->emu)
				fuzz_device_status(f, true);
			fuzz_check_debugfs(f);
		}
	}

	/* Everything the model holds is there, and goes. */
	if (f->emu)
		fuzz_device_status(f, true);
	fuzz_check_debugfs(f);
	fuzz_get_info(f, INFO_ROOM - 64, PC_NORMAL);
	for (i = 0; i < f->nmap; i++)
		bytes += f->map[i].size;
	u.flags = VFIO_DMA_UNMAP_FLAG_ALL;
	ret = fz_ioctl(f->container, VFIO_IOMMU_UNMAP_DMA, &u);
	EXPECT_EQ(0, ret) TH_LOG("unmap everything: %s", fuzz_res_name(ret));
	EXPECT_EQ(bytes, u.size)
		TH_LOG("unmap everything: 0x%llx bytes, the model holds 0x%llx in %u mappings",
		       (unsigned long long)u.size, (unsigned long long)bytes,
		       f->nmap);
	f->nmap = 0;
	f->npin = 0;
	if (f->emu)
		fuzz_device_status(f, true);
	fuzz_check_debugfs(f);
	fz_close(f);
	fuzz_arena_destroy(f);
	TH_LOG("%s: %u calls in %lld ms, %u mappings at most %d",
	       f->mod, f->ntr, vid_now_ms() - start, FZ_LIMIT, FZ_LIMIT);
	print_counts(_metadata, f);
	for (i = 0; i < f->nbad && i < MAX_BAD; i++)
		TH_LOG("UNEXPECTED (%s): %s", f->mod, f->bad[i]);
	print_history(_metadata, f);
	EXPECT_EQ(0, f->nbad);
}

/*
 * Call by call, the second run (@b) must have done what the first (@a)
 * did. Returns the number of differences (reporting stops at the first,
 * after which the runs may go apart).
 */
static int fz_compare(struct __test_metadata *_metadata,
		      const struct fz *a, const struct fz *b)
{
	char what[300];
	uint32_t i;

	for (i = 0; i < a->ntr && i < b->ntr; i++) {
		const struct fz_ent *x = &a->tr[i], *y = &b->tr[i];
		bool same;

		if (x->op != y->op || x->argsz != y->argsz ||
		    x->flags != y->flags || memcmp(x->a, y->a, sizeof(x->a))) {
			fuzz_ent_str(x, what, sizeof(what));
			TH_LOG("the runs went apart at op #%u (%s)", i, what);
			return 1;
		}
		same = x->ret == y->ret &&
		       (x->ret || x->aux == y->aux || x->fixup);
		if (!same && x->lax)
			same = y->ret == -EINVAL ||
			       (x->op == OP_INFO && (!y->ret || y->ret == -EFAULT));
		if (same)
			continue;
		fuzz_ent_str(x, what, sizeof(what));
		TH_LOG("op #%u %s: %s %s (0x%llx), %s %s (0x%llx)", i, what,
		       a->mod, fuzz_res_name(x->ret),
		       (unsigned long long)x->aux, b->mod,
		       fuzz_res_name(y->ret), (unsigned long long)y->aux);
		return 1;
	}
	if (a->ntr != b->ntr) {
		TH_LOG("%s made %u calls, %s %u", a->mod, a->ntr, b->mod,
		       b->ntr);
		return 1;
	}
	return 0;
}

FIXTURE(fuzz) {
	struct fz a, b;
	int kmsg;
	struct vid_acct base;
	long refcnt;
};

FIXTURE_VARIANT(fuzz) {
	struct fz_cfg cfg;
};

FIXTURE_VARIANT_ADD(fuzz, edu_and_device) {
	.cfg = { .edu = true, .emu = true, .type = VFIO_TYPE1v2_IOMMU,
		 .salt = 1 },
};

FIXTURE_VARIANT_ADD(fuzz, edu_only) {
	.cfg = { .edu = true, .emu = false, .type = VFIO_TYPE1v2_IOMMU,
		 .salt = 2 },
};

FIXTURE_VARIANT_ADD(fuzz, device_only) {
	.cfg = { .edu = false, .emu = true, .type = VFIO_TYPE1v2_IOMMU,
		 .salt = 3 },
};

FIXTURE_VARIANT_ADD(fuzz, v1_edu_and_device) {
	.cfg = { .edu = true, .emu = true, .type = VFIO_TYPE1_IOMMU,
		 .salt = 4 },
};

FIXTURE_SETUP(fuzz)
{
	memset(&self->a, 0, sizeof(self->a));
	memset(&self->b, 0, sizeof(self->b));
	fz_free(&self->a);
	fz_free(&self->b);
	self->kmsg = -1;
}

FIXTURE_TEARDOWN(fuzz)
{
	fz_free(&self->a);
	fz_free(&self->b);
	if (self->kmsg >= 0)
		close(self->kmsg);
	/* Leave the modules as the next test expects them. */
	EXPECT_EQ(0, vid_modules_setup(NULL));
}

/*
 * The time limits of this file guard against a hang, they are no speed
 * target: on the debug kernel under TCG, with gcov and another guest on
 * a 2-core host, one run of ops took over 60 s.
 */
TEST_F_TIMEOUT(fuzz, ops, 300)
{
	const struct fz_cfg *cfg = &variant->cfg;
	uint64_t seed = vid_seed(DEFAULT_SEED);
	unsigned int nops = fz_ops();
	bool intree = vid_backend_intree(), tracing;
	char problem[512];
	long t1ref;

	if (!vid_emu_prepare(_metadata))
		return;
	if (cfg->edu && vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	if (intree && cfg->emu && lockdep_kernel())
		SKIP(return, "in-tree type1 with the test device under lockdep");
	self->kmsg = vid_kmsg_open();
	ASSERT_LE(0, self->kmsg);
	VID_ASSERT_OK(vid_acct_read(&self->base));
	self->refcnt = vid_module_refcnt(vid_backend_module());
	ASSERT_LE(0, self->refcnt);
	if (!intree)
		ASSERT_EQ(0, vid_debugfs_containers());
	TH_LOG("seed 0x%llx (VID_SEED), %u calls per run (VID_FUZZ_OPS) after %u GET_INFO",
	       (unsigned long long)seed, nops, INFO_SWEEP + 1);

	self->a.mod = vid_backend_module();
	self->a.ours = !intree;
	tracing = !intree && fuzz_trace_on();
	fz_run(_metadata, &self->a, cfg, seed, nops);
	if (tracing)
		TH_LOG("%ld bytes of trace read back", fuzz_trace_off());
	VID_EXPECT_ACCT(&self->base);
	EXPECT_EQ(self->refcnt, vid_module_refcnt(vid_backend_module()));
	if (!intree)
		EXPECT_EQ(0, vid_debugfs_containers());

	if (fz_compare_enabled() && cfg->emu && lockdep_kernel()) {
		TH_LOG("no comparison with in-tree type1 and the test device under lockdep");
	} else if (fz_compare_enabled()) {
		/* The same calls against in-tree type1. */
		if (!intree) {
			ASSERT_EQ(0, vid_module_remove(VID_MOD_OURS, false));
			ASSERT_FALSE(vid_module_live(VID_MOD_OURS));
		}
		t1ref = vid_module_refcnt(VID_MOD_TYPE1);
		self->b.mod = VID_MOD_TYPE1;
		self->b.ref = self->a.tr;
		self->b.nref = self->a.ntr;
		fz_run(_metadata, &self->b, cfg, seed, nops);
		EXPECT_EQ(t1ref, vid_module_refcnt(VID_MOD_TYPE1));
		EXPECT_EQ(0, fz_compare(_metadata, &self->a, &self->b));
		if (!intree)
			ASSERT_EQ(0, vid_module_load_ours());
	}

	VID_EXPECT_ACCT(&self->base);
	EXPECT_EQ(0, vid_kmsg_problems(self->kmsg, problem, sizeof(problem)))
		TH_LOG("kernel log: %s", problem);
}

/* ---------------------------------------------------------------------- */
/* the life of containers                                                 */
/* ---------------------------------------------------------------------- */

#define LIFE_OPS	3000

/* One run of the life test against f->mod. */
static void life_run(struct __test_metadata *_metadata, struct fz *f,
		     uint64_t seed, unsigned int nops)
{
	long long start = vid_now_ms();
	char path[64];
	struct life l;
	unsigned int i;
	int id, ret;

	vid_rng_init(&f->rng, seed * 0x100 + 0x11fe);
	f->v2 = true;
	ret = fuzz_arena_create(f);
	ASSERT_EQ(0, ret) TH_LOG("arena: %s", strerror(-ret));
	memset(&l, 0, sizeof(l));
	for (i = 0; i < LIFE_N; i++)
		l.c[i].fd = -1;
	l.dev = -1;
	l.gin[G_EDU] = -1;
	l.gin[G_EMU] = -1;
	snprintf(path, sizeof(path), "/dev/vfio/%d", vid_edu_group());
	l.gfd[G_EDU] = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, l.gfd[G_EDU]);
	id = vid_device_group("platform", VID_EMU_DEV0);
	ASSERT_LE(0, id);
	snprintf(path, sizeof(path), "/dev/vfio/%d", id);
	l.gfd[G_EMU] = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, l.gfd[G_EMU]);

	for (i = 0; i < nops; i++)
		fuzz_life_step(f, &l);

	/* Leave with everything in place: the closes clean up. */
	if (l.dev >= 0)
		close(l.dev);
	for (i = 0; i < LIFE_N; i++)
		if (l.c[i].fd >= 0)
			close(l.c[i].fd);
	close(l.gfd[G_EDU]);
	close(l.gfd[G_EMU]);
	fuzz_arena_destroy(f);
	TH_LOG("%s: %u calls in %lld ms", f->mod, f->ntr,
	       vid_now_ms() - start);
	print_counts(_metadata, f);
	for (i = 0; i < f->nbad && i < MAX_BAD; i++)
		TH_LOG("UNEXPECTED (%s): %s", f->mod, f->bad[i]);
	print_history(_metadata, f);
	EXPECT_EQ(0, f->nbad);
}

FIXTURE(life) {
	struct fz a, b;
	int kmsg;
	struct vid_acct base;
};

FIXTURE_SETUP(life)
{
	memset(&self->a, 0, sizeof(self->a));
	memset(&self->b, 0, sizeof(self->b));
	fz_free(&self->a);
	fz_free(&self->b);
	self->kmsg = -1;
}

FIXTURE_TEARDOWN(life)
{
	fz_free(&self->a);
	fz_free(&self->b);
	if (self->kmsg >= 0)
		close(self->kmsg);
	EXPECT_EQ(0, vid_modules_setup(NULL));
}

/*
 * Containers come and go: groups added and removed in any order,
 * SET_IOMMU with every type and garbage, the test device opened and
 * closed, mappings, pins and tracking left behind on every close.
 */
TEST_F_TIMEOUT(life, containers, 300)
{
	uint64_t seed = vid_seed(DEFAULT_SEED);
	bool intree = vid_backend_intree();
	char problem[512];
	long ref, t1ref;

	if (!vid_emu_prepare(_metadata))
		return;
	if (vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	if (intree && lockdep_kernel())
		SKIP(return, "in-tree type1 with the test device under lockdep");
	self->kmsg = vid_kmsg_open();
	ASSERT_LE(0, self->kmsg);
	VID_ASSERT_OK(vid_acct_read(&self->base));
	ref = vid_module_refcnt(vid_backend_module());
	ASSERT_LE(0, ref);
	TH_LOG("seed 0x%llx (VID_SEED), %u calls per run",
	       (unsigned long long)seed, LIFE_OPS);

	self->a.mod = vid_backend_module();
	self->a.ours = !intree;
	life_run(_metadata, &self->a, seed, LIFE_OPS);
	VID_EXPECT_ACCT(&self->base);
	EXPECT_EQ(ref, vid_module_refcnt(vid_backend_module()));
	if (!intree)
		EXPECT_EQ(0, vid_debugfs_containers());

	if (fz_compare_enabled() && lockdep_kernel()) {
		TH_LOG("no comparison with in-tree type1 and the test device under lockdep");
	} else if (fz_compare_enabled()) {
		if (!intree)
			ASSERT_EQ(0, vid_module_remove(VID_MOD_OURS, false));
		t1ref = vid_module_refcnt(VID_MOD_TYPE1);
		self->b.mod = VID_MOD_TYPE1;
		self->b.ref = self->a.tr;
		self->b.nref = self->a.ntr;
		life_run(_metadata, &self->b, seed, LIFE_OPS);
		EXPECT_EQ(t1ref, vid_module_refcnt(VID_MOD_TYPE1));
		EXPECT_EQ(0, fz_compare(_metadata, &self->a, &self->b));
		if (!intree)
			ASSERT_EQ(0, vid_module_load_ours());
	}
	VID_EXPECT_ACCT(&self->base);
	EXPECT_EQ(0, vid_kmsg_problems(self->kmsg, problem, sizeof(problem)))
		TH_LOG("kernel log: %s", problem);
}

/* ---------------------------------------------------------------------- */
/* the edges of the 64-bit spaces                                         */
/* ---------------------------------------------------------------------- */

/*
 * Host addresses in the last pages of the 64-bit space cannot be pinned:
 * MAP_DMA fails with EFAULT, as in-tree type1 says for any host range it
 * cannot pin, and so does the replay of such a mapping (made while no
 * IOMMU domain needed it pinned) when a group with a domain joins.
 */
TEST(vaddr_at_the_top)
{
	struct vid_acct base;
	struct vid_ctx ctx;
	int group;

	if (!vid_emu_prepare(_metadata))
		return;
	if (vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	VID_ASSERT_OK(vid_acct_read(&base));

	VID_ASSERT_OK(vid_ctx_open(&ctx, VFIO_TYPE1v2_IOMMU));
	VID_ASSERT_ERR(EFAULT, vid_map(ctx.container, WIN,
				       (void *)(uintptr_t)(0 - P), P,
				       VID_MAP_RW));
	VID_ASSERT_ERR(EFAULT, vid_map(ctx.container, WIN,
				       (void *)(uintptr_t)(0 - 4 * P), 4 * P,
				       VID_MAP_RW));
	VID_ASSERT_ERR(EFAULT, vid_map(ctx.container, WIN,
				       (void *)(uintptr_t)(0 - 8 * P), 4 * P,
				       VID_MAP_RW));
	VID_ASSERT_UNMAP(ctx.container, WIN, 8 * P, 0);
	vid_ctx_close(&ctx);

	/* No domain yet: nothing is pinned, the mapping is taken. */
	if (!vid_emu_open(_metadata, &ctx, VFIO_TYPE1v2_IOMMU))
		return;
	VID_ASSERT_OK(vid_map(ctx.container, WIN, (void *)(uintptr_t)(0 - P),
			      P, VID_MAP_RW));
	group = vid_open_group(ctx.container);
	EXPECT_EQ(-EFAULT, group) {
		if (group >= 0)
			close(group);
	}
	VID_ASSERT_UNMAP(ctx.container, WIN, P, P);
	vid_ctx_close(&ctx);
	VID_EXPECT_ACCT(&base);
}

/*
 * A mapping that ends at the very top of the 64-bit IOVA space (where no
 * IOMMU domain limits the space): pinned, written, reported by its unmap
 * and unmapped like any other. A report through GET_BITMAP cannot end
 * there (its end wraps to 0): EINVAL, as in-tree. In-tree type1 (6.12)
 * computes the end of such a mapping as 0 and loses it in its lookups,
 * so this is about this module only.
 */
TEST(mapping_at_the_top)
{
	const uint64_t size = 16 * P, top = 0 - size;
	uint8_t data[8] = "topmost", *mem;
	struct vid_emu_status st;
	struct vid_acct base;
	struct vid_ctx ctx;
	uint64_t bits, got;
	char problem[512];
	int kmsg;

	if (!vid_emu_prepare(_metadata))
		return;
	if (vid_backend_intree())
		SKIP(return, "in-tree type1 loses mappings that end at the top");
	kmsg = vid_kmsg_open();
	ASSERT_LE(0, kmsg);
	VID_ASSERT_OK(vid_acct_read(&base));
	if (!vid_emu_open(_metadata, &ctx, VFIO_TYPE1v2_IOMMU))
		return;
	mem = vid_alloc(size, 0x7a);
	ASSERT_NE(NULL, mem);

	VID_ASSERT_OK(vid_map(ctx.container, top, mem, size, VID_MAP_RW));
	VID_ASSERT_ERR(EEXIST, vid_map(ctx.container, top - P, mem, 2 * P,
				       VID_MAP_RW));
	VID_ASSERT_ERR(EEXIST, vid_map(ctx.container, 0 - P, mem, P,
				       VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(ctx.container, 8,
				   VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	VID_ASSERT_OK(vid_emu_pin(ctx.device, 0 - P, 1,
				  VID_EMU_PIN_READ | VID_EMU_PIN_WRITE, NULL));
	VID_ASSERT_OK(vid_emu_rw(ctx.device, 0 - sizeof(data), data,
				 sizeof(data), VID_EMU_RW_WRITE));
	EXPECT_EQ(0, memcmp(mem + size - sizeof(data), data, sizeof(data)));
	VID_ASSERT_OK(vid_emu_rw(ctx.device, top + 3 * P, data, sizeof(data),
				 VID_EMU_RW_WRITE));
	EXPECT_EQ(1, vid_debugfs_state("mappings"));
	EXPECT_EQ(1, vid_debugfs_state("device_pinned_pages"));
	VID_ASSERT_ERR(EINVAL, vid_get_bitmap(ctx.container, 0, top, size, P,
					      &bits, sizeof(bits)));
	/* Written pages 3 and 15; 15 is also pinned until the unmap. */
	bits = 0;
	VID_ASSERT_OK(vid_unmap_bitmap(ctx.container, 0, top, size, P, &bits,
				       sizeof(bits), &got));
	EXPECT_EQ(size, got);
	EXPECT_EQ(1ULL << 3 | 1ULL << 15, bits);
	VID_ASSERT_OK(vid_emu_status(ctx.device, &st, false));
	EXPECT_EQ(0, st.pinned_pages);
	EXPECT_EQ(0, vid_debugfs_state("mappings"));
	EXPECT_EQ(0, vid_debugfs_state("device_pinned_pages"));

	/* Again, with two pins, and away with everything at once. */
	VID_ASSERT_OK(vid_map(ctx.container, top, mem, size, VID_MAP_RW));
	VID_ASSERT_OK(vid_emu_pin(ctx.device, 0 - 2 * P, 2,
				  VID_EMU_PIN_READ | VID_EMU_PIN_WRITE, NULL));
	VID_ASSERT_OK(vid_unmap_raw(ctx.container,
				    sizeof(struct vfio_iommu_type1_dma_unmap),
				    VFIO_DMA_UNMAP_FLAG_ALL, 0, 0, &got));
	EXPECT_EQ(size, got);
	VID_ASSERT_OK(vid_emu_status(ctx.device, &st, false));
	EXPECT_EQ(0, st.pinned_pages);
	EXPECT_EQ(0, st.anomalies);
	vid_ctx_close(&ctx);
	vid_free(mem, size);
	VID_EXPECT_ACCT(&base);
	EXPECT_EQ(0, vid_debugfs_containers());
	EXPECT_EQ(0, vid_kmsg_problems(kmsg, problem, sizeof(problem)))
		TH_LOG("kernel log: %s", problem);
	close(kmsg);
}

TEST_HARNESS_MAIN
