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
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define P		VID_PAGE
#define DEFAULT_SEED	0x5eed0004ULL
#define DEFAULT_OPS	10000		/* per variant and run */
#define FZ_LIMIT	10		/* dma_entry_limit of the containers */
#define WIN		0x1000000ULL	/* 16 MiB: the usual IOVA window */
#define WIN_PAGES	2048ULL		/* 8 MiB of it */
#define HUGE_IOVA	0x4000000ULL	/* 64 MiB: 2 MiB mappings */
#define SZ_2M		0x200000ULL
#define KADDR		0xffff888000000000ULL
#define NONCANON	0x8000000000000000ULL
#define POISON		0xa5
#define INFO_SWEEP	512		/* GET_INFO with argsz 0..this */
#define INFO_ROOM	(INFO_SWEEP + 96)
#define CHECK_EVERY	128		/* ops between full state checks */
#define MAX_BAD		8
#define BAD_LEN		400
#define PAGES_MAX_TRACK	0x7fffffffULL	/* INT_MAX: largest trackable */
#define USER_TOP	0x7ffffffff000ULL	/* TASK_SIZE_MAX, 4-level */
#define UNK		INT_MIN		/* no prediction */
#define BITMAP_MAX	(256ULL << 20)	/* both backends' bitmap limit */

/*
 * The memory every run uses, at a fixed address so that both runs see the
 * same pointers. Offsets in pages.
 */
#define ARENA_ADDR	0x7e5000000000ULL	/* 2 MiB aligned */
enum {
	A_HUGE = 0,			/* 4 MiB, transparent huge pages */
	A_RW = A_HUGE + 1024,		/* 1 MiB of ordinary memory */
	A_RO = A_RW + 256,		/* read-only, populated */
	A_ZERO = A_RO + 16,		/* never written by the test */
	A_NONE = A_ZERO + 16,		/* PROT_NONE */
	A_HOLE = A_NONE + 4,		/* not mapped */
	A_ARGS = A_HOLE + 4,		/* ioctl arguments ... */
	A_GUARD = A_ARGS + 4,		/* ... followed by a hole */
	A_ARGRO = A_GUARD + 1,		/* a read-only argument page */
	A_GAP = A_ARGRO + 1,		/* not mapped */
	A_BITS = A_GAP + 1,		/* dirty bitmaps ... */
	A_GUARD2 = A_BITS + 16,		/* ... followed by a hole */
	A_DATA = A_GUARD2 + 1,		/* device data, pfn arrays ... */
	A_GUARD3 = A_DATA + 257,	/* ... followed by a hole */
	A_END = A_GUARD3 + 1,
};

#define N_RO		16
#define N_ZERO		16
#define N_ARGS		4
#define N_BITS		16
#define N_DATA		257

/* How an ioctl's argument (or a buffer it names) is passed. */
enum where {
	PC_NORMAL, PC_ODD, PC_CUT, PC_RO, PC_NULL, PC_KERNEL, PC_HOLE,
	PC_NONCANON, PC_NONE, NPC
};

static const char *const pc_name[NPC] = {
	"normal", "misaligned", "cut-by-hole", "read-only", "NULL", "kernel",
	"unmapped", "non-canonical", "PROT_NONE",
};

static const unsigned int pc_weight[NPC] = {
	[PC_NORMAL] = 80, [PC_ODD] = 5, [PC_CUT] = 5, [PC_RO] = 3,
	[PC_NULL] = 2, [PC_KERNEL] = 2, [PC_HOLE] = 1, [PC_NONCANON] = 1,
	[PC_NONE] = 1,
};

enum op {
	OP_INFO, OP_MAP, OP_MAP_VADDR, OP_UNMAP, OP_UNMAP_ALL, OP_UNMAP_VADDR,
	OP_UNMAP_BITMAP, OP_DIRTY, OP_GET_BITMAP, OP_CHECK_EXT, OP_UNKNOWN,
	OP_PIN, OP_UNPIN, OP_RW, OP_STATUS, OP_DEV_INFO, OP_DEV_FEATURE,
	OP_DEV_UNKNOWN, OP_FIXUP,
	/* the container life test */
	OP_OPEN, OP_ADD_GROUP, OP_DEL_GROUP, OP_SET_IOMMU, OP_GET_DEVICE,
	OP_CLOSE_DEVICE, OP_CLOSE, NOPS
};

static const char *const op_name[NOPS] = {
	"GET_INFO", "MAP_DMA", "MAP_DMA vaddr", "UNMAP_DMA", "UNMAP_DMA all",
	"UNMAP_DMA vaddr", "UNMAP_DMA bitmap", "DIRTY start/stop",
	"DIRTY get-bitmap", "CHECK_EXTENSION", "unknown ioctl", "dev PIN",
	"dev UNPIN", "dev RW", "dev STATUS", "dev GET_INFO", "dev FEATURE",
	"dev unknown", "(fixup unmap)",
	"open container", "GROUP_SET_CONTAINER", "GROUP_UNSET_CONTAINER",
	"SET_IOMMU", "GET_DEVICE_FD", "close device", "close container",
};

/* Per operation: the errnos it may fail with (bits of enum eb). */
enum eb {
	EB_OK, EB_EINVAL, EB_EFAULT, EB_EEXIST, EB_ENOENT, EB_ENOSPC,
	EB_ENOMEM, EB_EBUSY, EB_EPERM, EB_EACCES, EB_ENOTTY, EB_E2BIG,
	EB_ENODEV, EB_EBADF, EB_EBADFD, EB_OTHER, NEB
};

static const char *const eb_name[NEB] = {
	"ok", "EINVAL", "EFAULT", "EEXIST", "ENOENT", "ENOSPC", "ENOMEM",
	"EBUSY", "EPERM", "EACCES", "ENOTTY", "E2BIG", "ENODEV", "EBADF",
	"EBADFD", "other",
};

#define B(x)	(1U << EB_##x)
static const unsigned int op_allowed[NOPS] = {
	[OP_INFO] = B(EINVAL) | B(EFAULT) | B(ENOMEM),
	[OP_MAP] = B(EINVAL) | B(EFAULT) | B(EEXIST) | B(ENOSPC) | B(ENOMEM),
	[OP_MAP_VADDR] = B(EINVAL) | B(EFAULT) | B(ENOENT) | B(ENOMEM),
	[OP_UNMAP] = B(EINVAL) | B(EFAULT) | B(EBUSY) | B(ENOMEM),
	[OP_UNMAP_ALL] = B(EINVAL) | B(EFAULT) | B(EBUSY),
	[OP_UNMAP_VADDR] = B(EINVAL) | B(EFAULT) | B(EBUSY),
	[OP_UNMAP_BITMAP] = B(EINVAL) | B(EFAULT) | B(ENOMEM),
	[OP_DIRTY] = B(EINVAL) | B(EFAULT) | B(EACCES) | B(ENOMEM),
	[OP_GET_BITMAP] = B(EINVAL) | B(EFAULT) | B(EACCES) | B(ENOMEM),
	[OP_CHECK_EXT] = 0,
	[OP_UNKNOWN] = B(ENOTTY) | B(EINVAL),
	[OP_PIN] = B(EINVAL) | B(EFAULT) | B(EPERM) | B(EACCES) | B(E2BIG) |
		   B(ENOMEM),
	[OP_UNPIN] = B(EINVAL) | B(EFAULT) | B(ENOENT) | B(E2BIG),
	[OP_RW] = B(EINVAL) | B(EFAULT) | B(ENOENT) | B(EPERM) | B(E2BIG) |
		  B(ENOMEM),
	[OP_STATUS] = B(EINVAL) | B(EFAULT),
	[OP_DEV_INFO] = B(EINVAL) | B(EFAULT),
	[OP_DEV_FEATURE] = B(EINVAL) | B(EFAULT) | B(ENOTTY),
	[OP_DEV_UNKNOWN] = B(ENOTTY) | B(EINVAL),
	[OP_FIXUP] = B(EINVAL),
	[OP_OPEN] = 0,
	/* EPERM: an Arm SMMUv3 refuses nesting (vid_iommu_nesting_errno()). */
	[OP_ADD_GROUP] = B(EINVAL) | B(EFAULT) | B(EBUSY) | B(EBADF) |
			 B(EBADFD) | B(ENOMEM) | B(EPERM),
	[OP_DEL_GROUP] = B(EINVAL) | B(EBUSY),
	[OP_SET_IOMMU] = B(EINVAL) | B(ENODEV) | B(EPERM),
	[OP_GET_DEVICE] = B(EINVAL) | B(EFAULT) | B(ENODEV),
	[OP_CLOSE_DEVICE] = 0,
	[OP_CLOSE] = 0,
};

/* One call as both runs must see it. */
struct fz_ent {
	uint64_t a[4];		/* main arguments, for the report */
	uint64_t aux;		/* unmapped bytes and the like */
	uint32_t argsz;
	uint32_t flags;
	int32_t ret;		/* 0, -errno, or a positive ioctl value */
	uint8_t op;
	uint8_t pc;		/* enum where of the argument */
	uint8_t lax;		/* an extension: in-tree may say EINVAL */
	uint8_t fixup;		/* a plain unmap of the range followed */
};

struct fz_map {
	uint64_t iova, size, vaddr;
	uint32_t prot;		/* VFIO_DMA_MAP_FLAG_READ / _WRITE */
	bool invalid;		/* host address invalidated (VADDR) */
};

struct fz_pin {
	uint64_t iova;
	uint32_t refs;
	uint32_t flags;		/* VID_EMU_PIN_* asked for, ORed */
};

struct fz_range {
	uint64_t start, end;	/* inclusive */
};

/* Everything one run needs. */
struct fz {
	struct vid_rng rng;
	uint8_t *arena;
	int container, group, egroup, dev;
	bool edu, emu, v2;
	bool ours;		/* this run's backend is vfio_iommu_dirty */
	const char *mod;	/* module serving this run */
	/* the model */
	struct fz_map map[FZ_LIMIT];
	unsigned int nmap;
	struct fz_pin *pin;
	unsigned int npin, pincap;
	bool tracking;
	struct fz_range iova[16];	/* usable IOVA ranges (GET_INFO) */
	unsigned int niova;
	uint64_t pgsizes;
	uint32_t info_full;		/* bytes of a complete GET_INFO */
	/* the argument of the call being made */
	size_t rd;		/* bytes of it the kernel can read */
	bool wr;		/* ... and write */
	/* the trace, and the first run's while this is the second */
	struct fz_ent *tr;
	uint32_t ntr, cap;
	const struct fz_ent *ref;
	uint32_t nref;
	uint32_t cur;		/* index of the call being made */
	uint64_t count[NOPS][NEB];
	uint32_t nbad;
	uint32_t first_bad;	/* index of the first call that went wrong */
	char bad[MAX_BAD][BAD_LEN];
};

/* ---------------------------------------------------------------------- */
/* small helpers                                                          */
/* ---------------------------------------------------------------------- */

static enum eb err_bucket(int ret)
{
	switch (-ret) {
	case 0: return EB_OK;
	case EINVAL: return EB_EINVAL;
	case EFAULT: return EB_EFAULT;
	case EEXIST: return EB_EEXIST;
	case ENOENT: return EB_ENOENT;
	case ENOSPC: return EB_ENOSPC;
	case ENOMEM: return EB_ENOMEM;
	case EBUSY: return EB_EBUSY;
	case EPERM: return EB_EPERM;
	case EACCES: return EB_EACCES;
	case ENOTTY: return EB_ENOTTY;
	case E2BIG: return EB_E2BIG;
	case ENODEV: return EB_ENODEV;
	case EBADF: return EB_EBADF;
	case EBADFD: return EB_EBADFD;
	default: return EB_OTHER;
	}
}

static const char *res_name(int ret)
{
	static char buf[4][32];
	static unsigned int k;
	char *b = buf[k++ % 4];

	if (ret > 0)
		snprintf(b, 32, "returned %d", ret);
	else if (!ret)
		snprintf(b, 32, "success");
	else
		snprintf(b, 32, "%s", strerror(-ret));
	return b;
}

static uint64_t rnd(struct fz *f, uint64_t n)
{
	return vid_rng_below(&f->rng, n);
}

static bool chance(struct fz *f, unsigned int num, unsigned int den)
{
	return vid_rng_chance(&f->rng, num, den);
}

/* One of @n values. */
static uint64_t pick(struct fz *f, const uint64_t *v, size_t n)
{
	return v[rnd(f, n)];
}

#define PICK(f, ...) ({							\
	const uint64_t __v[] = { __VA_ARGS__ };				\
	pick((f), __v, ARRAY_SIZE(__v));				\
})

static void fz_bad(struct fz *f, const char *fmt, ...)
{
	const struct fz_ent *e = f->ntr > f->cur ? &f->tr[f->cur] : NULL;
	va_list ap;
	int n;

	if (!f->nbad)
		f->first_bad = f->cur;
	if (f->nbad++ >= MAX_BAD)
		return;
	n = snprintf(f->bad[f->nbad - 1], BAD_LEN, "op #%u %s: ", f->cur,
		     e ? op_name[e->op] : "?");
	va_start(ap, fmt);
	vsnprintf(f->bad[f->nbad - 1] + n, BAD_LEN - n, fmt, ap);
	va_end(ap);
}

static uint64_t arena_addr(unsigned int page)
{
	return ARENA_ADDR + (uint64_t)page * P;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---------------------------------------------------------------------- */
/* the arena                                                              */
/* ---------------------------------------------------------------------- */

enum mem { M_RW, M_RO, M_ZERO, M_BAD };

/* What the page holding @addr is. */
static enum mem mem_class(uint64_t addr)
{
	uint64_t pg;

	if (addr < ARENA_ADDR || addr >= arena_addr(A_END))
		return M_BAD;
	pg = (addr - ARENA_ADDR) / P;
	if ((pg >= A_RO && pg < A_RO + N_RO) || pg == A_ARGRO)
		return M_RO;
	if (pg >= A_ZERO && pg < A_ZERO + N_ZERO)
		return M_ZERO;
	if ((pg >= A_NONE && pg < A_ARGS) || pg == A_GUARD || pg == A_GAP ||
	    pg == A_GUARD2 || pg == A_GUARD3)
		return M_BAD;
	return M_RW;
}

/* Can the page at @addr be pinned (or copied) for writing or reading? */
static bool mem_ok(uint64_t addr, bool write)
{
	enum mem m = mem_class(addr);

	return m == M_RW || m == M_ZERO || (m == M_RO && !write);
}

/*
 * Every page of [@addr, @addr + @len) usable; @len may be huge (the
 * walk stops at the first page outside the arena), the range may not
 * wrap around the top of the 64-bit space.
 */
static bool mem_range_ok(uint64_t addr, uint64_t len, bool write)
{
	uint64_t a = addr & ~(P - 1), last = addr + len - 1;

	if (!len)
		return true;
	if (last < addr)
		return false;
	for (;; a += P) {
		if (!mem_ok(a, write))
			return false;
		if (a >= (last & ~(P - 1)))
			return true;
	}
}

static int arena_create(struct fz *f)
{
	uint8_t *a;

	a = mmap((void *)(uintptr_t)ARENA_ADDR, (size_t)A_END * P,
		 PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (a == MAP_FAILED)
		return -errno;
	if ((uintptr_t)a != ARENA_ADDR) {
		munmap(a, (size_t)A_END * P);
		return -EEXIST;
	}
	f->arena = a;
	madvise(a, 1024 * P, MADV_HUGEPAGE);
	madvise(a + A_RW * P, (size_t)(A_END - A_RW) * P, MADV_NOHUGEPAGE);
	memset(a, 0x11, 1024 * P);
	memset(a + A_RW * P, 0x22, 256 * P);
	memset(a + A_RO * P, 0x33, N_RO * P);
	memset(a + A_ARGS * P, 0, N_ARGS * P);
	memset(a + A_ARGRO * P, 0, P);
	memset(a + A_BITS * P, 0, N_BITS * P);
	memset(a + A_DATA * P, 0x44, N_DATA * P);
	if (mprotect(a + A_RO * P, N_RO * P, PROT_READ) ||
	    mprotect(a + A_ARGRO * P, P, PROT_READ) ||
	    mprotect(a + A_NONE * P, 4 * P, PROT_NONE) ||
	    munmap(a + A_HOLE * P, 4 * P) || munmap(a + A_GUARD * P, P) ||
	    munmap(a + A_GAP * P, P) || munmap(a + A_GUARD2 * P, P) ||
	    munmap(a + A_GUARD3 * P, P))
		return -errno;
	return 0;
}

static void arena_destroy(struct fz *f)
{
	if (f->arena)
		munmap(f->arena, (size_t)A_END * P);
	f->arena = NULL;
}

static enum where pick_pc(struct fz *f)
{
	unsigned int total = 0, r, i;

	for (i = 0; i < NPC; i++)
		total += pc_weight[i];
	r = rnd(f, total);
	for (i = 0; i < NPC; i++) {
		if (r < pc_weight[i])
			return i;
		r -= pc_weight[i];
	}
	return PC_NORMAL;
}

/*
 * Put the @len bytes of an ioctl argument where class @pc says; @room
 * bytes from the returned address are poisoned first (readable classes).
 */
static void *fz_place(struct fz *f, enum where pc, const void *arg, size_t len,
		      size_t room)
{
	uint8_t *args = f->arena + A_ARGS * P;
	uint8_t *end = args + N_ARGS * P;
	uint8_t *ro = f->arena + A_ARGRO * P;
	uint8_t *p;
	size_t cut;

	if (room < len)
		room = len;
	f->rd = room;
	f->wr = true;
	switch (pc) {
	case PC_NORMAL:
	case PC_ODD:
		p = args + (pc == PC_ODD ? 1 + rnd(f, 7) : 8 * rnd(f, 8));
		memset(p, POISON, room);
		memcpy(p, arg, len);
		return p;
	case PC_CUT:
		cut = 1 + rnd(f, len);
		p = end - (len - cut);
		memcpy(p, arg, len - cut);
		f->rd = len - cut;
		return p;
	case PC_RO:
		p = ro + 8 * rnd(f, 4);
		mprotect(ro, P, PROT_READ | PROT_WRITE);
		memset(p, POISON, room);
		memcpy(p, arg, len);
		mprotect(ro, P, PROT_READ);
		f->wr = false;
		return p;
	default:
		break;
	}
	f->rd = 0;
	f->wr = false;
	switch (pc) {
	case PC_NULL:
		return NULL;
	case PC_KERNEL:
		return (void *)(uintptr_t)(KADDR + 8 * rnd(f, 512));
	case PC_HOLE:
		return f->arena + A_HOLE * P + 8 * rnd(f, 16);
	case PC_NONCANON:
		return (void *)(uintptr_t)NONCANON;
	default:
		break;
	}
	return f->arena + A_NONE * P;
}

static bool pc_readable(enum where pc)
{
	return pc == PC_NORMAL || pc == PC_ODD || pc == PC_RO;
}

static bool pc_writable(enum where pc)
{
	return pc == PC_NORMAL || pc == PC_ODD;
}

/* Pointers the kernel cannot read at all: the first copy fails. */
static bool pc_unreadable(enum where pc)
{
	return pc == PC_NULL || pc == PC_KERNEL || pc == PC_HOLE ||
	       pc == PC_NONCANON || pc == PC_NONE;
}

/*
 * A user buffer of @need bytes the kernel will read or write (bitmap,
 * pfn array, device data), inside the region of @pages pages at arena page
 * @first that a hole follows; *@good tells whether it is the plain good
 * kind.
 */
static uint64_t gen_buf(struct fz *f, unsigned int first, unsigned int pages,
			uint64_t need, bool *good)
{
	uint64_t start = arena_addr(first), end = arena_addr(first + pages);
	unsigned int r = rnd(f, 100);

	*good = false;
	if (r < 84 && need + 64 <= end - start) {
		*good = true;
		return start + 8 * rnd(f, 8);
	}
	if (r < 87 && need + 64 <= end - start) {
		*good = true;
		return start + 1 + rnd(f, 7);
	}
	if (r < 90 && need && need <= end - start)
		return end - need + 1 + rnd(f, need);	/* runs into the hole */
	return PICK(f, 0, KADDR, NONCANON, arena_addr(A_RO),
		    arena_addr(A_HOLE), arena_addr(A_NONE), arena_addr(A_ZERO),
		    arena_addr(A_RO) + 3, 0x7ffffffff000ULL);
}

/* ---------------------------------------------------------------------- */
/* the model                                                              */
/* ---------------------------------------------------------------------- */

static uint64_t map_last(const struct fz_map *m)
{
	return m->iova + m->size - 1;
}

/* Index of the mapping holding @iova, or -1. */
static int model_at(struct fz *f, uint64_t iova)
{
	unsigned int i;

	for (i = 0; i < f->nmap; i++)
		if (iova >= f->map[i].iova && iova <= map_last(&f->map[i]))
			return i;
	return -1;
}

/* Does [@iova, @last] meet any mapping? The count of those it meets. */
static unsigned int model_meets(struct fz *f, uint64_t iova, uint64_t last)
{
	unsigned int i, n = 0;

	for (i = 0; i < f->nmap; i++)
		if (f->map[i].iova <= last && map_last(&f->map[i]) >= iova)
			n++;
	return n;
}

static void model_add(struct fz *f, uint64_t iova, uint64_t size,
		      uint64_t vaddr, uint32_t prot)
{
	unsigned int i = f->nmap;

	if (f->nmap >= FZ_LIMIT) {
		fz_bad(f, "more mappings than dma_entry_limit (%d)", FZ_LIMIT);
		return;
	}
	/* Sorted by IOVA. */
	while (i && f->map[i - 1].iova > iova) {
		f->map[i] = f->map[i - 1];
		i--;
	}
	f->map[i] = (struct fz_map){ .iova = iova, .size = size,
				     .vaddr = vaddr, .prot = prot };
	f->nmap++;
}

static struct fz_pin *pin_find(struct fz *f, uint64_t iova)
{
	unsigned int i;

	for (i = 0; i < f->npin; i++)
		if (f->pin[i].iova == iova)
			return &f->pin[i];
	return NULL;
}

/* The device is told about the unmap of [@iova, @last] and drops its pins. */
static void pins_drop(struct fz *f, uint64_t iova, uint64_t last)
{
	unsigned int i = 0;

	while (i < f->npin) {
		if (f->pin[i].iova >= iova && f->pin[i].iova <= last)
			f->pin[i] = f->pin[--f->npin];
		else
			i++;
	}
}

static void pins_add(struct fz *f, uint64_t iova, uint32_t n, uint32_t flags)
{
	struct fz_pin *p;
	uint32_t k;

	for (k = 0; k < n; k++) {
		p = pin_find(f, iova + (uint64_t)k * P);
		if (p) {
			p->refs++;
			p->flags |= flags;
			continue;
		}
		if (f->npin == f->pincap) {
			f->pincap = f->pincap ? 2 * f->pincap : 1024;
			f->pin = realloc(f->pin, f->pincap * sizeof(*f->pin));
			if (!f->pin) {
				f->npin = 0;
				f->pincap = 0;
				fz_bad(f, "out of memory");
				return;
			}
		}
		f->pin[f->npin++] = (struct fz_pin){
			.iova = iova + (uint64_t)k * P, .refs = 1,
			.flags = flags };
	}
}

static uint64_t pins_refs(struct fz *f)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < f->npin; i++)
		n += f->pin[i].refs;
	return n;
}

static void model_remove(struct fz *f, unsigned int i)
{
	pins_drop(f, f->map[i].iova, map_last(&f->map[i]));
	memmove(&f->map[i], &f->map[i + 1],
		(f->nmap - i - 1) * sizeof(f->map[0]));
	f->nmap--;
}

/*
 * The mappings an unmap of [@iova, @iova + @size) (or of everything)
 * takes, by the rules of the container, into @sel; their bytes into
 * *@bytes. -EINVAL for a v2 range that cuts a mapping.
 */
static int model_unmap_set(struct fz *f, uint64_t iova, uint64_t size,
			   bool all, bool *sel, uint64_t *bytes)
{
	uint64_t last = all ? UINT64_MAX : iova + size - 1;
	unsigned int i;
	int k;

	*bytes = 0;
	memset(sel, 0, FZ_LIMIT * sizeof(*sel));
	if (all)
		iova = 0;
	if (f->v2 && !all) {
		k = model_at(f, iova);
		if (k >= 0 && f->map[k].iova != iova)
			return -EINVAL;
		k = model_at(f, last);
		if (k >= 0 && map_last(&f->map[k]) != last)
			return -EINVAL;
	}
	for (i = 0; i < f->nmap; i++) {
		if (map_last(&f->map[i]) < iova || f->map[i].iova > last)
			continue;
		/* v1: a range starting inside a mapping removes nothing. */
		if (!f->v2 && f->map[i].iova < iova)
			break;
		sel[i] = true;
		*bytes += f->map[i].size;
	}
	return 0;
}

static void model_remove_set(struct fz *f, const bool *sel)
{
	int i;

	for (i = f->nmap - 1; i >= 0; i--)
		if (sel[i])
			model_remove(f, i);
}

static bool iova_usable(struct fz *f, uint64_t iova, uint64_t last)
{
	unsigned int i;

	if (!f->niova)
		return true;	/* no IOMMU domain: anything goes */
	for (i = 0; i < f->niova; i++)
		if (iova >= f->iova[i].start && last <= f->iova[i].end)
			return true;
	return false;
}

/* ---------------------------------------------------------------------- */
/* making a call                                                          */
/* ---------------------------------------------------------------------- */

/* Start an entry for the call about to be made. */
static struct fz_ent *fz_begin(struct fz *f, enum op op)
{
	struct fz_ent *e;

	if (f->ntr == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 4096;
		f->tr = realloc(f->tr, f->cap * sizeof(*f->tr));
		if (!f->tr) {
			fprintf(stderr, "fuzz: out of memory\n");
			exit(1);
		}
	}
	f->cur = f->ntr;
	e = &f->tr[f->ntr++];
	memset(e, 0, sizeof(*e));
	e->op = op;
	return e;
}

/* The first run's entry for this call, when this is the second run. */
static const struct fz_ent *fz_ref(struct fz *f)
{
	return f->ref && f->cur < f->nref ? &f->ref[f->cur] : NULL;
}

static int fz_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

/* Count the result and check it against the allowed errnos. */
static void fz_end(struct fz *f, struct fz_ent *e, int ret)
{
	enum eb b = err_bucket(ret < 0 ? ret : 0);

	e->ret = ret;
	f->count[e->op][b]++;
	if (ret < 0 && !(op_allowed[e->op] & (1U << b)))
		fz_bad(f, "%s not allowed (argsz %u flags 0x%x %s, 0x%llx 0x%llx 0x%llx 0x%llx)",
		       res_name(ret), e->argsz, e->flags, pc_name[e->pc],
		       (unsigned long long)e->a[0],
		       (unsigned long long)e->a[1],
		       (unsigned long long)e->a[2],
		       (unsigned long long)e->a[3]);
	if (ret < 0 && pc_unreadable(e->pc) && e->op != OP_UNKNOWN &&
	    e->op != OP_DEV_UNKNOWN && ret != -EFAULT &&
	    !(ret == -EACCES && !f->v2))
		fz_bad(f, "unreadable argument (%s): %s, want EFAULT",
		       pc_name[e->pc], res_name(ret));
	if (!ret && pc_unreadable(e->pc) && e->op != OP_CHECK_EXT)
		fz_bad(f, "unreadable argument (%s) accepted",
		       pc_name[e->pc]);
}

/* Compare a predicted result (or UNK) with what the call gave. */
static void fz_expect(struct fz *f, int want, int got, const char *what)
{
	if (want != UNK && want != got)
		fz_bad(f, "%s: %s, the model says %s", what, res_name(got),
		       res_name(want));
}

/* ---------------------------------------------------------------------- */
/* argument generators                                                    */
/* ---------------------------------------------------------------------- */

/* An argsz: mostly @full or a little more, sometimes anything. */
static uint32_t gen_argsz(struct fz *f, uint32_t minsz, uint32_t full,
			  bool *good)
{
	unsigned int r = rnd(f, 100);

	*good = true;
	if (r < 80)
		return full;
	if (r < 88)
		return full + 8 * (1 + rnd(f, 8));
	*good = false;
	return PICK(f, 0, 1, minsz - 1, minsz - 4, full - 1, 0xffffffffULL,
		    0x80000000ULL, rnd(f, minsz), minsz + rnd(f, full - minsz + 1));
}

/* A page-aligned IOVA in the usual window. */
static uint64_t win_iova(struct fz *f)
{
	return WIN + rnd(f, WIN_PAGES) * P;
}

/*
 * Where the first hole in the usable IOVA space begins: the MSI window,
 * VT-d's at 0xfee00000 or an Arm SMMU's at 0x8000000. Without a hole (no
 * IOMMU-backed group), VT-d's place all the same.
 */
static uint64_t first_hole(const struct fz *f)
{
	return f->niova > 1 ? f->iova[0].end + 1 : 0xfee00000ULL;
}

/* An IOVA: near the model's mappings, in the window, or strange. */
static uint64_t gen_iova(struct fz *f, bool *good)
{
	unsigned int r = rnd(f, 100);
	struct fz_map *m;

	*good = true;
	if (r < 50 && f->nmap) {
		m = &f->map[rnd(f, f->nmap)];
		switch (rnd(f, 5)) {
		case 0:
		case 1:
			return m->iova;
		case 2:
			return m->iova + m->size;	/* just after */
		case 3:
			return m->iova - P;		/* just before */
		default:
			return m->iova + P * rnd(f, m->size / P);
		}
	}
	if (r < 85)
		return win_iova(f);
	if (r < 90 && f->edu)
		return HUGE_IOVA + SZ_2M * rnd(f, 4);
	if (r < 95)
		return PICK(f, 0, P, first_hole(f), first_hole(f) - P,
			    1ULL << 32, 1ULL << 39, 1ULL << 47, 1ULL << 48,
			    1ULL << 57, 1ULL << 62, 1ULL << 63,
			    0xfffffffffff00000ULL);
	*good = false;
	return PICK(f, WIN + 1, WIN + 0x800, WIN + 8, UINT64_MAX,
		    UINT64_MAX & ~(P - 1), vid_rng_next(&f->rng));
}

/* A size: mostly a few pages. */
static uint64_t gen_size(struct fz *f, bool *good)
{
	unsigned int r = rnd(f, 100);

	*good = true;
	if (r < 15 && f->nmap)
		return f->map[rnd(f, f->nmap)].size;
	if (r < 75)
		return P * (1 + rnd(f, 16));
	if (r < 85)
		return P * (1 + rnd(f, 256));
	if (r < 90)
		return SZ_2M * (1 + rnd(f, 2));
	if (r < 94)
		/*
		 * Large: trackable (2^34), untrackable (2^44: more than
		 * INT_MAX pages), and sizes that cannot be pinned here.
		 */
		return PICK(f, 1ULL << 30, 1ULL << 34, 1ULL << 44,
			    1ULL << 62);
	*good = false;
	return PICK(f, 0, 1, P - 1, P + 1, 0x800, UINT64_MAX,
		    UINT64_MAX & ~(P - 1), 1ULL << 63, vid_rng_next(&f->rng));
}

/* A host address for a mapping of @size bytes. */
static uint64_t gen_vaddr(struct fz *f, uint64_t size, bool *good)
{
	unsigned int r = rnd(f, 100);

	*good = true;
	if (size == SZ_2M && r < 50)
		return arena_addr(A_HUGE) + SZ_2M * rnd(f, 2);
	if (r < 55)
		return arena_addr(A_RW + rnd(f, 256));
	if (r < 65)
		return arena_addr(A_HUGE + rnd(f, 1024));
	if (r < 73)
		return arena_addr(A_RO + rnd(f, N_RO));
	if (r < 81)
		return arena_addr(A_ZERO + rnd(f, N_ZERO));
	if (r < 86)
		return arena_addr(A_NONE + rnd(f, 8));	/* NONE and hole */
	if (r < 94)
		return PICK(f, 0, P, KADDR, 0xffffffff81000000ULL, NONCANON,
			    0x7ffffffff000ULL, arena_addr(A_BITS),
			    arena_addr(A_ARGRO));
	*good = false;
	return PICK(f, arena_addr(A_RW) + 1, arena_addr(A_RW) + 0x800,
		    UINT64_MAX & ~(P - 1), vid_rng_next(&f->rng) | 1);
}

/* Never a range that ends exactly at the top of the 64-bit space. */
static uint64_t not_top(uint64_t iova, uint64_t size)
{
	return size && iova + size == 0 ? size - P : size;
}

/* ---------------------------------------------------------------------- */
/* what the kernel can do with memory                                     */
/* ---------------------------------------------------------------------- */

/*
 * Linux 6.1's VFIO core and in-tree type1 give a few answers of their
 * own (noted where they matter); this module answers as 6.12 on both.
 */
static bool kernel_6_1(void)
{
	static int v = -1;
	struct utsname u;

	if (v < 0)
		v = !uname(&u) && !strncmp(u.release, "6.1.", 4);
	return v;
}

/* Can the kernel read @n bytes of the argument? Read and write them? */
static bool rd(struct fz *f, size_t n)
{
	return f->rd >= n;
}

static bool wr(struct fz *f, size_t n)
{
	return f->wr && f->rd >= n;
}

/*
 * access_ok() of [@addr, @addr + @len): 1 or 0, or UNK where the answer
 * depends on the paging mode (4 or 5 levels).
 */
static int user_ok(uint64_t addr, uint64_t len)
{
	if (addr + len < addr)
		return 0;
	if (addr + len <= USER_TOP)
		return 1;
	if (addr + len > (1ULL << 56) - P)
		return 0;
	return UNK;
}

/*
 * The bytes a report writes for the mappings in @sel: whole 64-bit words
 * of the user bitmap at @data that cover each mapping's bits (both
 * backends write those, and only those). 0, -EFAULT, or UNK.
 */
static int bitmap_writes(struct fz *f, uint64_t data, uint64_t base,
			 uint64_t pgsize, const bool *sel)
{
	uint64_t w0, w1;
	unsigned int i;

	for (i = 0; i < f->nmap; i++) {
		if (!sel[i])
			continue;
		w0 = (f->map[i].iova - base) / pgsize / 64;
		w1 = (map_last(&f->map[i]) - base) / pgsize / 64;
		if (!mem_range_ok(data + 8 * w0, 8 * (w1 - w0 + 1), true))
			return -EFAULT;
	}
	return 0;
}

/* Does the report page size @pgsize suit this backend's extension? */
static bool ext_pgsize_ok(struct fz *f, uint64_t pgsize)
{
	return pgsize >= P && !(pgsize & (pgsize - 1)) &&
	       (pgsize & f->pgsizes);
}

/*
 * The checks both backends make of a bitmap before taking the lock, for
 * a report of @size bytes: 0, -EINVAL, or UNK.
 */
static int bitmap_precheck(const struct vfio_bitmap *bm, uint64_t size)
{
	uint64_t npages;
	int ok;

	if (!bm->pgsize || (bm->pgsize & (bm->pgsize - 1)))
		return -EINVAL;	/* in-tree too, only later */
	ok = user_ok((uintptr_t)bm->data, bm->size);
	if (!ok)
		return -EINVAL;
	npages = size >> __builtin_ctzll(bm->pgsize);
	if (!npages || !bm->size || bm->size > BITMAP_MAX ||
	    bm->size < (npages + 63) / 64 * 8)
		return -EINVAL;
	return ok == UNK ? UNK : 0;
}

/* The page size a report may use here; in-tree: only the base page. */
static bool pgsize_accepted(struct fz *f, uint64_t pgsize)
{
	return pgsize == P || (f->ours && ext_pgsize_ok(f, pgsize));
}

/* ---------------------------------------------------------------------- */
/* container ioctls                                                       */
/* ---------------------------------------------------------------------- */

static struct vfio_info_cap_header *info_cap(uint8_t *buf, uint32_t len,
					     uint16_t id)
{
	struct vfio_iommu_type1_info *info = (void *)buf;
	uint32_t off = info->cap_offset;
	unsigned int hops = 0;

	while (off && off + sizeof(struct vfio_info_cap_header) <= len &&
	       hops++ < 16) {
		struct vfio_info_cap_header *h = (void *)(buf + off);

		if (h->id == id)
			return h;
		off = h->next;
	}
	return NULL;
}

/* Check a complete GET_INFO reply of @len bytes against the model. */
static void info_check_chain(struct fz *f, uint8_t *buf, uint32_t len)
{
	struct vfio_iommu_type1_info *info = (void *)buf;
	struct vfio_iommu_type1_info_dma_avail *avail;
	struct vfio_iommu_type1_info_cap_migration *mig;
	struct vfio_iommu_type1_info_cap_dirty_ext *ext;
	uint32_t off = info->cap_offset, prev = 0;
	unsigned int hops = 0;

	if (!(info->flags & VFIO_IOMMU_INFO_CAPS) ||
	    info->cap_offset != sizeof(*info)) {
		fz_bad(f, "flags 0x%x cap_offset %u", info->flags,
		       info->cap_offset);
		return;
	}
	while (off) {
		struct vfio_info_cap_header *h = (void *)(buf + off);

		if (off <= prev || off + sizeof(*h) > len || hops++ > 8) {
			fz_bad(f, "capability chain broken at offset %u", off);
			return;
		}
		prev = off;
		off = h->next;
	}
	avail = (void *)info_cap(buf, len, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL);
	if (!avail || avail->avail != FZ_LIMIT - f->nmap)
		fz_bad(f, "DMA_AVAIL %d with %u of %d mappings",
		       avail ? (int)avail->avail : -1, f->nmap, FZ_LIMIT);
	mig = (void *)info_cap(buf, len, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION);
	if (!mig || !(mig->pgsize_bitmap & P) ||
	    mig->max_dirty_bitmap_size != BITMAP_MAX)
		fz_bad(f, "migration capability missing or wrong");
	ext = (void *)info_cap(buf, len, VFIO_IOMMU_TYPE1_INFO_CAP_DIRTY_EXT);
	if (f->ours && (!ext || ext->pgsize_bitmap != f->pgsizes))
		fz_bad(f, "extension capability missing or wrong");
	if (!f->ours && ext)
		fz_bad(f, "in-tree reports this backend's extension");
	if (f->edu && !info_cap(buf, len,
				VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE))
		fz_bad(f, "no IOVA_RANGE capability");
}

/* Bytes of the fixed part GET_INFO writes back. */
static uint32_t info_fixed_bytes(struct fz *f, uint32_t argsz)
{
	/* In-tree 6.1: up to cap_offset when argsz covers it, not pad. */
	if (kernel_6_1() && !f->ours)
		return argsz >= 20 ? 20 : 16;
	return min64(argsz, sizeof(struct vfio_iommu_type1_info));
}

/*
 * GET_INFO with @argsz (any value): the fixed part and, when argsz leaves
 * room, the chain; nothing at or past argsz is written.
 */
static void do_info(struct fz *f, uint32_t argsz, enum where pc)
{
	struct fz_ent *e = fz_begin(f, OP_INFO);
	uint8_t arg[INFO_ROOM] = { 0 };
	struct vfio_iommu_type1_info *info = (void *)arg;
	uint32_t len = argsz < 16 ? 16 : min64(argsz, INFO_ROOM - 64);
	uint32_t i, full = f->info_full;
	uint8_t *p;
	int ret, want;

	info->argsz = argsz;
	e->argsz = argsz;
	e->pc = pc;
	/* The chain differs (our extension): a cut may fall in either. */
	e->lax = pc == PC_CUT;
	p = fz_place(f, pc, arg, len, INFO_ROOM - 64);
	ret = fz_ioctl(f->container, VFIO_IOMMU_GET_INFO, p);
	fz_end(f, e, ret);

	if (!rd(f, VID_INFO_MINSZ))
		want = -EFAULT;
	else if (argsz < VID_INFO_MINSZ)
		want = -EINVAL;
	else if (argsz >= full && !wr(f, full))
		want = -EFAULT;
	else if (!wr(f, info_fixed_bytes(f, argsz)))
		want = -EFAULT;
	else
		want = 0;
	fz_expect(f, want, ret, "get info");
	if (ret || !pc_writable(pc))
		return;
	memcpy(arg, p, INFO_ROOM - 64);
	for (i = argsz; i < INFO_ROOM - 64; i++) {
		if (arg[i] != POISON) {
			fz_bad(f, "argsz %u: byte %u written", argsz, i);
			return;
		}
	}
	if (!(info->flags & VFIO_IOMMU_INFO_PGSIZES) ||
	    info->iova_pgsizes != f->pgsizes)
		fz_bad(f, "flags 0x%x pgsizes 0x%llx, want 0x%llx",
		       info->flags, (unsigned long long)info->iova_pgsizes,
		       (unsigned long long)f->pgsizes);
	if (argsz < sizeof(*info))
		return;
	if (argsz < full) {
		if (info->argsz != full || info->cap_offset)
			fz_bad(f, "argsz %u of %u: argsz %u cap_offset %u",
			       argsz, full, info->argsz, info->cap_offset);
		return;
	}
	if (info->argsz != argsz)
		fz_bad(f, "argsz %u came back as %u", argsz, info->argsz);
	info_check_chain(f, arg, full);
}

/* MAP_DMA of arguments that passed the lock-free checks. */
static int predict_map(struct fz *f, uint64_t iova, uint64_t size,
		       uint64_t vaddr, uint32_t prot)
{
	uint64_t last = iova + size - 1;

	if (!size || (iova | size | vaddr) & (P - 1) || last < iova ||
	    vaddr + size - 1 < vaddr)
		return -EINVAL;
	if (model_meets(f, iova, last))
		return -EEXIST;
	if (f->nmap >= FZ_LIMIT)
		return -ENOSPC;
	if (!iova_usable(f, iova, last))
		return -EINVAL;
	/* Pinned only where an IOMMU domain exists. */
	if (f->edu && !mem_range_ok(vaddr, size,
				    prot & VFIO_DMA_MAP_FLAG_WRITE))
		return -EFAULT;
	if (f->tracking && size / P > PAGES_MAX_TRACK)
		return -EINVAL;
	return 0;
}

/* MAP_DMA with VFIO_DMA_MAP_FLAG_VADDR: the mapping it names, or -errno. */
static int predict_vaddr(struct fz *f, uint64_t iova, uint64_t size,
			 uint64_t vaddr)
{
	int k;

	if (!size || (iova | size | vaddr) & (P - 1) ||
	    iova + size - 1 < iova || vaddr + size - 1 < vaddr)
		return -EINVAL;
	if (!model_meets(f, iova, iova + size - 1))
		return -ENOENT;
	k = model_at(f, iova);
	if (k < 0 || f->map[k].iova != iova || f->map[k].size != size ||
	    !f->map[k].invalid)
		return -EINVAL;
	return k;
}

/* MAP_DMA: a new mapping, or (@vaddr) a new host address for one. */
static void op_map(struct fz *f, bool vaddr)
{
	struct fz_ent *e = fz_begin(f, vaddr ? OP_MAP_VADDR : OP_MAP);
	struct vfio_iommu_type1_dma_map map = { 0 };
	uint32_t known = VID_MAP_RW | VFIO_DMA_MAP_FLAG_VADDR;
	int inv = -1, ret, want;
	unsigned int i;
	enum where pc;
	bool g;
	void *p;

	if (!vaddr)
		map.flags = rnd(f, 100) < 80 ? VID_MAP_RW :
			PICK(f, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE,
			     0, VID_MAP_RW | VFIO_DMA_MAP_FLAG_VADDR,
			     VID_MAP_RW | 8, 1U << 31, 0xffffffffU);
	else
		map.flags = rnd(f, 100) < 85 ? VFIO_DMA_MAP_FLAG_VADDR :
			PICK(f, VFIO_DMA_MAP_FLAG_VADDR |
			     VFIO_DMA_MAP_FLAG_READ,
			     VFIO_DMA_MAP_FLAG_VADDR | VID_MAP_RW,
			     VFIO_DMA_MAP_FLAG_VADDR | 8, 0);
	for (i = 0; vaddr && i < f->nmap; i++)
		if (f->map[i].invalid && (inv < 0 || chance(f, 1, 2)))
			inv = i;
	if (inv >= 0 && chance(f, 3, 4)) {
		map.iova = f->map[inv].iova;
		map.size = f->map[inv].size + (chance(f, 1, 10) ? P : 0);
	} else if (!vaddr && f->edu && chance(f, 1, 10)) {
		/* Huge pages: 2 MiB IOMMU pages where memory allows. */
		map.iova = HUGE_IOVA + SZ_2M * rnd(f, 4);
		map.size = SZ_2M * (1 + rnd(f, 2));
	} else {
		map.iova = gen_iova(f, &g);
		map.size = not_top(map.iova, gen_size(f, &g));
	}
	if (vaddr && chance(f, 3, 4))
		map.vaddr = arena_addr(A_RW + rnd(f, 128));
	else if (!(map.iova & (SZ_2M - 1)) && !(map.size & (SZ_2M - 1)) &&
		 map.size <= 2 * SZ_2M && chance(f, 3, 4))
		map.vaddr = arena_addr(A_HUGE) + SZ_2M * rnd(f, 2);
	else
		map.vaddr = gen_vaddr(f, map.size, &g);
	map.argsz = gen_argsz(f, VID_MAP_MINSZ, sizeof(map), &g);
	pc = pick_pc(f);
	e->argsz = map.argsz;
	e->flags = map.flags;
	e->pc = pc;
	e->a[0] = map.iova;
	e->a[1] = map.size;
	e->a[2] = map.vaddr;
	p = fz_place(f, pc, &map, sizeof(map), sizeof(map) + 16);
	ret = fz_ioctl(f->container, VFIO_IOMMU_MAP_DMA, p);
	fz_end(f, e, ret);

	if (!rd(f, VID_MAP_MINSZ))
		want = -EFAULT;
	else if (map.argsz < VID_MAP_MINSZ || map.flags & ~known)
		want = -EINVAL;
	else if (!(map.flags & VID_MAP_RW) ==
		 !(map.flags & VFIO_DMA_MAP_FLAG_VADDR))
		want = -EINVAL;
	else if (map.flags & VFIO_DMA_MAP_FLAG_VADDR)
		want = predict_vaddr(f, map.iova, map.size, map.vaddr);
	else
		want = predict_map(f, map.iova, map.size, map.vaddr,
				   map.flags);
	/* predict_vaddr() gives the mapping's index on success. */
	fz_expect(f, want < 0 ? want : 0, ret, vaddr ? "vaddr update" : "map");
	if (ret == -EEXIST && !model_meets(f, map.iova,
					   map.iova + map.size - 1))
		fz_bad(f, "EEXIST where nothing is mapped");
	if (ret || want < 0)
		return;
	if (map.flags & VFIO_DMA_MAP_FLAG_VADDR) {
		f->map[want].invalid = false;
		f->map[want].vaddr = map.vaddr;
		return;
	}
	model_add(f, map.iova, map.size, map.vaddr, map.flags & VID_MAP_RW);
}

/* A range to unmap or report: from the model's mappings or anywhere. */
static void gen_range(struct fz *f, __u64 *iova, __u64 *size)
{
	unsigned int r = rnd(f, 100), i, j;

	if (r < 55 && f->nmap) {
		i = rnd(f, f->nmap);
		j = i + rnd(f, min64(3, f->nmap - i));
		*iova = f->map[i].iova;
		*size = map_last(&f->map[j]) + 1 - *iova;
		switch (rnd(f, 10)) {
		case 0:		/* cut the first mapping */
			*iova += P;
			*size -= P;
			break;
		case 1:		/* cut the last one */
			*size -= P;
			break;
		case 2:		/* with room around */
			*iova -= P;
			*size += 2 * P;
			break;
		}
		if (!*size)
			*size = P;
	} else if (r < 75) {
		*iova = win_iova(f);
		*size = P * (1 + rnd(f, 64));
	} else if (r < 85) {
		*iova = WIN;
		*size = WIN_PAGES * P;
	} else if (r < 92) {
		*iova = PICK(f, 0, 1ULL << 32, 1ULL << 48, HUGE_IOVA);
		*size = PICK(f, 1ULL << 32, 1ULL << 40, 1ULL << 47, SZ_2M);
	} else {
		*iova = PICK(f, WIN + 1, 0, UINT64_MAX & ~(P - 1), 1ULL << 63,
			     WIN);
		*size = PICK(f, 0, 1, P - 1, UINT64_MAX, 1ULL << 63,
			     UINT64_MAX & ~(P - 1), 0x800);
	}
	*size = not_top(*iova, *size);
}

static const uint64_t pgsize_choices[] = {
	0, 1, 0x800, 0x2000, 0x3000, SZ_2M, 1ULL << 30, 1ULL << 63,
	0x10000,
};

/* Bytes of bitmap needed for @size bytes at @pgsize (0: none). */
static uint64_t bitmap_bytes(uint64_t size, uint64_t pgsize)
{
	if (!pgsize || (pgsize & (pgsize - 1)))
		return 0;
	return (size / pgsize + 63) / 64 * 8;
}

/*
 * The bitmap of a report of [@iova, @iova + @size): page size, size,
 * address.
 */
static void gen_bitmap(struct fz *f, uint64_t iova, uint64_t size,
		       struct vfio_bitmap *bm)
{
	uint64_t need, room = N_BITS * P - 64;
	bool g;

	bm->pgsize = rnd(f, 100) < 85 ? P :
		     pick(f, pgsize_choices, ARRAY_SIZE(pgsize_choices));
	/* Blocks of 2 MiB (an extension) where the range allows them. */
	if (!((iova | size) & (SZ_2M - 1)) && chance(f, 1, 3))
		bm->pgsize = SZ_2M;
	need = bitmap_bytes(size, bm->pgsize);
	if (rnd(f, 100) < 85 && need)
		bm->size = need + (chance(f, 1, 5) ? 8 * rnd(f, 4) : 0);
	else
		bm->size = PICK(f, 0, need - 8, need - 1, BITMAP_MAX + 8,
				1ULL << 40, UINT64_MAX, 8);
	bm->data = (__u64 *)(uintptr_t)gen_buf(f, A_BITS, N_BITS,
					       min64(bm->size, room), &g);
	if (g)
		memset((void *)bm->data, 0, min64(bm->size, room));
}

/*
 * Outside pinned-page scope every page of a mapping reads as dirty: so
 * does every block of @pgsize bytes (bit) that holds one.
 */
static void check_all_dirty(struct fz *f, const uint64_t *bits,
			    uint64_t iova, uint64_t pgsize, const bool *sel)
{
	uint64_t b, first, last;
	unsigned int i;

	for (i = 0; i < f->nmap; i++) {
		if (!sel[i])
			continue;
		first = (f->map[i].iova - iova) / pgsize;
		last = (map_last(&f->map[i]) - iova) / pgsize;
		for (b = first; b <= last; b++) {
			if (bits[b / 64] >> (b % 64) & 1)
				continue;
			fz_bad(f, "IOVA 0x%llx of an IOMMU mapping not dirty (page size 0x%llx)",
			       (unsigned long long)(iova + b * pgsize),
			       (unsigned long long)pgsize);
			return;
		}
	}
}

/*
 * The plain unmap that follows a failed unmap whose effect the model
 * cannot know (EFAULT after the unmap was done, in-tree's partial unmap
 * when a bitmap copy fails): whatever of the range is still mapped goes.
 */
static void fz_fixup(struct fz *f, struct fz_ent *orig, uint64_t iova,
		     uint64_t size, bool all)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.flags = all ? VFIO_DMA_UNMAP_FLAG_ALL : 0,
		.iova = all ? 0 : iova, .size = all ? 0 : size,
	};
	bool sel[FZ_LIMIT];
	uint64_t bytes;
	int ret, want;

	orig->fixup = 1;
	want = model_unmap_set(f, iova, size, all, sel, &bytes);
	if (!all && (!size || (iova | size) & (P - 1) ||
		     iova + size - 1 < iova))
		want = -EINVAL;
	ret = fz_ioctl(f->container, VFIO_IOMMU_UNMAP_DMA, &u);
	f->count[OP_FIXUP][err_bucket(ret)]++;
	if (ret != want)
		fz_bad(f, "the unmap after it: %s, the model says %s",
		       res_name(ret), res_name(want));
	if (!ret && u.size > bytes)
		fz_bad(f, "the unmap after it: 0x%llx bytes, at most 0x%llx",
		       (unsigned long long)u.size,
		       (unsigned long long)bytes);
	if (!ret && !want)
		model_remove_set(f, sel);
}

/* The result of UNMAP_DMA @a as the model sees it (UNK: cannot say). */
static int predict_unmap(struct fz *f, const struct vfio_iommu_type1_dma_unmap *u,
			 const struct vfio_bitmap *bm, bool *sel,
			 uint64_t *bytes)
{
	uint32_t known = VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR |
			 VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	bool all = u->flags & VFIO_DMA_UNMAP_FLAG_ALL;
	bool vaddr = u->flags & VFIO_DMA_UNMAP_FLAG_VADDR;
	bool bitmap = u->flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	unsigned int i;
	int ret, pre = 0;

	memset(sel, 0, FZ_LIMIT * sizeof(*sel));
	*bytes = 0;
	if (!rd(f, VID_UNMAP_MINSZ))
		return -EFAULT;
	if (u->argsz < VID_UNMAP_MINSZ || u->flags & ~known)
		return -EINVAL;
	if (bitmap) {
		if (all || vaddr || u->argsz < VID_UNMAP_MINSZ + sizeof(*bm))
			return -EINVAL;
		if (!rd(f, VID_UNMAP_MINSZ + sizeof(*bm)))
			return -EFAULT;
		pre = bitmap_precheck(bm, u->size);
		if (pre && pre != UNK)
			return pre;
	}
	if (vaddr && f->emu)
		return -EBUSY;
	if (u->iova & (P - 1))
		return -EINVAL;
	if (all ? u->iova || u->size : !u->size || u->size & (P - 1) ||
	    u->iova + u->size - 1 < u->iova)
		return -EINVAL;
	if (bitmap && (!f->tracking || !pgsize_accepted(f, bm->pgsize) ||
		       (u->iova | u->size) & (bm->pgsize - 1)))
		return -EINVAL;
	ret = model_unmap_set(f, u->iova, u->size, all, sel, bytes);
	if (ret)
		return ret;
	if (pre == UNK)
		return UNK;
	for (i = 0; vaddr && i < f->nmap; i++)
		if (sel[i] && f->map[i].invalid)
			return -EINVAL;
	if (bitmap) {
		ret = bitmap_writes(f, (uintptr_t)bm->data, u->iova,
				    bm->pgsize, sel);
		if (ret)
			return ret;
	}
	/* The unmapped size goes back into the argument. */
	return wr(f, VID_UNMAP_MINSZ) ? 0 : -EFAULT;
}

/*
 * UNMAP_DMA: plain, everything, vaddr invalidation or with a bitmap,
 * sometimes with flags that do not go together.
 */
static void op_unmap(struct fz *f, enum op op)
{
	struct fz_ent *e = fz_begin(f, op);
	struct {
		struct vfio_iommu_type1_dma_unmap u;
		struct vfio_bitmap b;
	} a = { 0 };
	const struct fz_ent *ref;
	bool sel[FZ_LIMIT], all, bitmap, vaddr, g;
	uint32_t full, flags;
	uint64_t bytes;
	int ret, want;
	enum where pc;
	void *p;

	switch (op) {
	case OP_UNMAP_ALL:
		flags = VFIO_DMA_UNMAP_FLAG_ALL;
		break;
	case OP_UNMAP_VADDR:
		flags = VFIO_DMA_UNMAP_FLAG_VADDR |
			(chance(f, 1, 5) ? VFIO_DMA_UNMAP_FLAG_ALL : 0);
		break;
	case OP_UNMAP_BITMAP:
		flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
		break;
	default:
		flags = 0;
		break;
	}
	if (chance(f, 1, 12))
		flags |= PICK(f, VFIO_DMA_UNMAP_FLAG_ALL,
			      VFIO_DMA_UNMAP_FLAG_VADDR,
			      VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, 1U << 3,
			      1U << 31);
	all = flags & VFIO_DMA_UNMAP_FLAG_ALL;
	bitmap = flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
	vaddr = flags & VFIO_DMA_UNMAP_FLAG_VADDR;
	if (all && chance(f, 9, 10)) {
		a.u.iova = 0;
		a.u.size = 0;
	} else {
		gen_range(f, &a.u.iova, &a.u.size);
	}
	full = bitmap ? sizeof(a) : sizeof(a.u);
	a.u.argsz = gen_argsz(f, VID_UNMAP_MINSZ, full, &g);
	a.u.flags = flags;
	if (bitmap || chance(f, 1, 10))
		gen_bitmap(f, a.u.iova, a.u.size, &a.b);
	pc = pick_pc(f);
	/* An invalidation cannot be undone: no read-only argument for it. */
	if (vaddr && pc == PC_RO)
		pc = PC_NORMAL;
	e->argsz = a.u.argsz;
	e->flags = flags;
	e->pc = pc;
	e->a[0] = a.u.iova;
	e->a[1] = a.u.size;
	e->a[2] = a.b.pgsize;
	e->a[3] = a.b.size;
	e->lax = bitmap && a.b.pgsize != P;
	p = fz_place(f, pc, &a, sizeof(a), sizeof(a) + 16);
	ret = fz_ioctl(f->container, VFIO_IOMMU_UNMAP_DMA, p);
	fz_end(f, e, ret);
	want = predict_unmap(f, &a.u, &a.b, sel, &bytes);
	if (!ret && pc_readable(pc))
		memcpy(&a.u, p, sizeof(a.u));
	e->aux = ret ? 0 : a.u.size;
	fz_expect(f, want, ret, "unmap");

	/*
	 * In the second run an extension call ends as in the first: if the
	 * first run's backend took it, so does a plain unmap here.
	 */
	ref = fz_ref(f);
	if (e->lax && ref && (ref->fixup || (!ref->ret && ret))) {
		fz_fixup(f, e, a.u.iova, a.u.size, all);
		return;
	}
	if (ret == -EFAULT && !vaddr && (pc == PC_RO || bitmap)) {
		fz_fixup(f, e, a.u.iova, a.u.size, all);
		return;
	}
	if (ret)
		return;
	if (want) {
		if (want != UNK)
			return;	/* reported by fz_expect() */
		/* The kernel took it: what the model says it takes. */
		want = model_unmap_set(f, e->a[0], e->a[1], all, sel, &bytes);
		if (want) {
			fz_bad(f, "a range that cuts a mapping was unmapped");
			return;
		}
	}
	if (pc_readable(pc) && a.u.size != bytes)
		fz_bad(f, "0x%llx+0x%llx: 0x%llx bytes, the model holds 0x%llx",
		       (unsigned long long)e->a[0],
		       (unsigned long long)e->a[1],
		       (unsigned long long)a.u.size,
		       (unsigned long long)bytes);
	if (vaddr) {
		unsigned int i;

		for (i = 0; i < f->nmap; i++)
			if (sel[i])
				f->map[i].invalid = true;
		return;
	}
	if (bitmap && f->edu && mem_class((uintptr_t)a.b.data) == M_RW)
		check_all_dirty(f, (void *)a.b.data, e->a[0], a.b.pgsize, sel);
	model_remove_set(f, sel);
}

/* START, STOP, or flags that mean nothing. */
static void op_dirty(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_DIRTY);
	struct vfio_iommu_type1_dirty_bitmap d = { 0 };
	unsigned int r = rnd(f, 100), i;
	bool g, huge = false;
	int ret, want;
	enum where pc;
	void *p;

	if (r < 45)
		d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START;
	else if (r < 75)
		d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
	else
		d.flags = PICK(f, 0, VFIO_IOMMU_DIRTY_PAGES_FLAG_START |
			       VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
			       VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP |
			       VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
			       VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK,
			       VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK |
			       VFIO_IOMMU_DIRTY_PAGES_FLAG_START, 1U << 3,
			       1U << 30, 0xffffffffU);
	d.argsz = gen_argsz(f, 8, 8, &g);
	pc = pick_pc(f);
	e->argsz = d.argsz;
	e->flags = d.flags;
	e->pc = pc;
	p = fz_place(f, pc, &d, sizeof(d), 32);
	ret = fz_ioctl(f->container, VFIO_IOMMU_DIRTY_PAGES, p);
	fz_end(f, e, ret);

	for (i = 0; i < f->nmap; i++)
		if (f->map[i].size / P > PAGES_MAX_TRACK)
			huge = true;
	if (!f->v2)
		want = -EACCES;
	else if (!rd(f, 8))
		want = -EFAULT;
	else if (d.argsz < 8)
		want = -EINVAL;
	else if (d.flags == VFIO_IOMMU_DIRTY_PAGES_FLAG_START)
		want = huge && !f->tracking ? -EINVAL : 0;
	else if (d.flags == VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP)
		want = 0;
	else
		want = -EINVAL;
	fz_expect(f, want, ret, "dirty");
	if (ret)
		return;
	if (d.flags == VFIO_IOMMU_DIRTY_PAGES_FLAG_START)
		f->tracking = true;
	else if (d.flags == VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP)
		f->tracking = false;
}

static int predict_get_bitmap(struct fz *f,
			      const struct vfio_iommu_type1_dirty_bitmap *d,
			      const struct vfio_iommu_type1_dirty_bitmap_get *r,
			      bool *sel)
{
	uint32_t op = d->flags;
	uint64_t bytes;
	int ret, pre;

	memset(sel, 0, FZ_LIMIT * sizeof(*sel));
	if (!f->v2)
		return -EACCES;
	if (!rd(f, 8))
		return -EFAULT;
	if (f->ours)
		op &= ~VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK;
	if (d->argsz < 8 || op != VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP)
		return -EINVAL;
	if (d->argsz - 8 < sizeof(*r))
		return -EINVAL;
	if (!rd(f, 8 + sizeof(*r)))
		return -EFAULT;
	if (r->iova + r->size < r->iova)
		return -EINVAL;
	pre = bitmap_precheck(&r->bitmap, r->size);
	if (pre && pre != UNK)
		return pre;
	if (!pgsize_accepted(f, r->bitmap.pgsize) || !r->size ||
	    (r->iova | r->size) & (r->bitmap.pgsize - 1))
		return -EINVAL;
	if (!f->tracking)
		return -EINVAL;
	ret = model_unmap_set(f, r->iova, r->size, false, sel, &bytes);
	if (ret)
		return ret;
	if (pre == UNK)
		return UNK;
	return bitmap_writes(f, (uintptr_t)r->bitmap.data, r->iova,
			     r->bitmap.pgsize, sel);
}

static void op_get_bitmap(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_GET_BITMAP);
	struct {
		struct vfio_iommu_type1_dirty_bitmap d;
		struct vfio_iommu_type1_dirty_bitmap_get r;
	} a = { 0 };
	bool sel[FZ_LIMIT], peek, g;
	int ret, want;
	enum where pc;
	void *p;

	peek = chance(f, 1, 6);
	a.d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP |
		    (peek ? VFIO_IOMMU_DIRTY_PAGES_FLAG_PEEK : 0);
	if (chance(f, 1, 20))
		a.d.flags |= PICK(f, VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
				  VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP, 1U << 5);
	gen_range(f, &a.r.iova, &a.r.size);
	gen_bitmap(f, a.r.iova, a.r.size, &a.r.bitmap);
	a.d.argsz = gen_argsz(f, 8, sizeof(a), &g);
	pc = pick_pc(f);
	e->argsz = a.d.argsz;
	e->flags = a.d.flags;
	e->pc = pc;
	e->a[0] = a.r.iova;
	e->a[1] = a.r.size;
	e->a[2] = a.r.bitmap.pgsize;
	e->a[3] = a.r.bitmap.size;
	e->lax = peek || a.r.bitmap.pgsize != P;
	p = fz_place(f, pc, &a, sizeof(a), sizeof(a) + 16);
	ret = fz_ioctl(f->container, VFIO_IOMMU_DIRTY_PAGES, p);
	fz_end(f, e, ret);
	want = predict_get_bitmap(f, &a.d, &a.r, sel);
	fz_expect(f, want, ret, "get bitmap");
	if (!ret && f->edu && mem_class((uintptr_t)a.r.bitmap.data) == M_RW)
		check_all_dirty(f, (void *)a.r.bitmap.data, a.r.iova,
				a.r.bitmap.pgsize, sel);
}

static void op_check_ext(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_CHECK_EXT);
	uint64_t ext = rnd(f, 100) < 80 ? rnd(f, 16) :
		       PICK(f, 0x7fff, 0xffffffffULL, UINT64_MAX, 1ULL << 32,
			    vid_rng_next(&f->rng));
	int ret, want;

	e->a[0] = ext;
	ret = fz_ioctl(f->container, VFIO_CHECK_EXTENSION,
		       (void *)(uintptr_t)ext);
	fz_end(f, e, ret);
	switch (ext) {
	case VFIO_TYPE1_IOMMU:
	case VFIO_TYPE1v2_IOMMU:
	case VFIO_TYPE1_NESTING_IOMMU:
	case VFIO_UNMAP_ALL:
		want = 1;
		break;
	case VFIO_UPDATE_VADDR:
		want = !f->emu;
		break;
	case VFIO_DMA_CC_IOMMU:
		want = ret == 1 ? 1 : 0;
		break;
	default:
		want = 0;
		break;
	}
	fz_expect(f, want, ret, "check extension");
}

/* VFIO command numbers every container handles itself: never random. */
static bool known_container_cmd(unsigned long cmd)
{
	return cmd == VFIO_GET_API_VERSION || cmd == VFIO_CHECK_EXTENSION ||
	       cmd == VFIO_SET_IOMMU || cmd == VFIO_IOMMU_GET_INFO ||
	       cmd == VFIO_IOMMU_MAP_DMA || cmd == VFIO_IOMMU_UNMAP_DMA ||
	       cmd == VFIO_IOMMU_DIRTY_PAGES;
}

/*
 * A command number nobody handles: VFIO's, the test device's, or of
 * types that neither the VFS nor any common layer looks at.
 */
static unsigned long gen_cmd(struct fz *f)
{
	unsigned int r = rnd(f, 100);

	if (r < 50)
		return _IO(VFIO_TYPE, VFIO_BASE + rnd(f, 40));
	if (r < 65)
		return _IOC(rnd(f, 4), VFIO_TYPE, VFIO_BASE + 12 + rnd(f, 6),
			    8 * rnd(f, 8));
	if (r < 80)
		return _IO(VID_EMU_TYPE, VID_EMU_BASE + rnd(f, 8));
	return _IOC(rnd(f, 4), 0xc0 + rnd(f, 0x20), rnd(f, 256),
		    rnd(f, 512));
}

static void op_unknown(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_UNKNOWN);
	unsigned long cmd;
	uint64_t arg;
	int ret;

	do
		cmd = gen_cmd(f);
	while (known_container_cmd(cmd));
	arg = PICK(f, 0, arena_addr(A_ARGS), KADDR, 1, UINT64_MAX);
	e->a[0] = cmd;
	e->a[1] = arg;
	ret = fz_ioctl(f->container, cmd, (void *)(uintptr_t)arg);
	fz_end(f, e, ret);
	fz_expect(f, -ENOTTY, ret, "unknown command");
}

/* ---------------------------------------------------------------------- */
/* device ioctls                                                          */
/* ---------------------------------------------------------------------- */

/* An IOVA for the device: a page of a mapping, a pinned page, anything. */
static uint64_t gen_dev_iova(struct fz *f)
{
	struct fz_map *m;
	bool g;

	if (f->nmap && rnd(f, 100) < 70) {
		m = &f->map[rnd(f, f->nmap)];
		return m->iova + P * rnd(f, min64(m->size / P, 1ULL << 20));
	}
	if (f->npin && chance(f, 1, 2))
		return f->pin[rnd(f, f->npin)].iova;
	if (chance(f, 4, 5))
		return gen_iova(f, &g);
	return PICK(f, WIN + 1, WIN + 0x800, UINT64_MAX - P + 1,
		    UINT64_MAX & ~(P - 1), vid_rng_next(&f->rng));
}

/* [@iova, @iova + @len) as the device module accepts a range. */
static bool dev_range_ok(uint64_t iova, uint64_t len)
{
	return len && len - 1 <= UINT64_MAX - iova;
}

static int predict_pin(struct fz *f, const struct vid_emu_pin *pin)
{
	uint32_t need = 0, k;
	uint64_t a, va;
	int i;

	if (!rd(f, sizeof(*pin)))
		return -EFAULT;
	if (pin->argsz < sizeof(*pin) || pin->pad || !pin->npages ||
	    pin->flags & ~(VID_EMU_PIN_READ | VID_EMU_PIN_WRITE))
		return -EINVAL;
	if (pin->npages > VID_EMU_PIN_MAX)
		return -E2BIG;
	if (pin->iova & (P - 1) ||
	    !dev_range_ok(pin->iova, (uint64_t)pin->npages * P))
		return -EINVAL;
	if (pin->pfns && !mem_range_ok(pin->pfns, pin->npages * 8ULL, true))
		return -EFAULT;
	if (!f->v2)
		return -EACCES;
	if (pin->flags & VID_EMU_PIN_READ)
		need |= VFIO_DMA_MAP_FLAG_READ;
	if (pin->flags & VID_EMU_PIN_WRITE)
		need |= VFIO_DMA_MAP_FLAG_WRITE;
	for (k = 0; k < pin->npages; k++) {
		a = pin->iova + (uint64_t)k * P;
		i = model_at(f, a);
		if (i < 0)
			return -EINVAL;
		if ((f->map[i].prot & need) != need)
			return -EPERM;
		if (pin_find(f, a))
			continue;	/* pinned already: no new lookup */
		va = f->map[i].vaddr + (a - f->map[i].iova);
		if (!mem_ok(va, f->map[i].prot & VFIO_DMA_MAP_FLAG_WRITE))
			return -EFAULT;
	}
	return 0;
}

static void op_pin(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_PIN);
	struct vid_emu_pin pin = { 0 };
	int ret, want;
	enum where pc;
	bool g;
	void *p;

	pin.iova = gen_dev_iova(f);
	pin.npages = rnd(f, 100) < 85 ? 1 + rnd(f, 8) :
		     PICK(f, 0, 64, VID_EMU_PIN_MAX, VID_EMU_PIN_MAX + 1,
			  0xffffffffU);
	pin.flags = rnd(f, 100) < 85 ?
		    PICK(f, VID_EMU_PIN_READ | VID_EMU_PIN_WRITE,
			 VID_EMU_PIN_READ, VID_EMU_PIN_WRITE, 0) :
		    PICK(f, 4, 1U << 31, 0xffffffffU);
	pin.pad = chance(f, 1, 30);
	if (chance(f, 1, 10))
		pin.pfns = gen_buf(f, A_DATA, N_DATA,
				   min64(pin.npages, VID_EMU_PIN_MAX) * 8, &g);
	pin.argsz = gen_argsz(f, sizeof(pin), sizeof(pin), &g);
	pc = pick_pc(f);
	e->argsz = pin.argsz;
	e->flags = pin.flags;
	e->pc = pc;
	e->a[0] = pin.iova;
	e->a[1] = pin.npages;
	e->a[2] = pin.pfns;
	e->a[3] = pin.pad;
	p = fz_place(f, pc, &pin, sizeof(pin), sizeof(pin) + 16);
	ret = fz_ioctl(f->dev, VID_EMU_PIN, p);
	fz_end(f, e, ret);
	want = predict_pin(f, &pin);
	fz_expect(f, want, ret, "pin");
	if (!ret && !want)
		pins_add(f, pin.iova, pin.npages, pin.flags);
}

static void op_unpin(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_UNPIN);
	struct vid_emu_unpin u = { 0 };
	int ret, want = 0;
	struct fz_pin *pn;
	enum where pc;
	uint32_t k;
	bool g;
	void *p;

	u.flags = chance(f, 1, 30) ? VID_EMU_UNPIN_ALL : 0;
	if (chance(f, 1, 30))
		u.flags |= PICK(f, 2, 1U << 31);
	if (f->npin && chance(f, 4, 5)) {
		u.iova = f->pin[rnd(f, f->npin)].iova;
		u.npages = 1 + rnd(f, 4);
	} else {
		u.iova = gen_dev_iova(f);
		u.npages = rnd(f, 100) < 90 ? 1 + rnd(f, 8) :
			   PICK(f, 0, VID_EMU_PIN_MAX + 1, 0xffffffffU);
	}
	if (u.flags & VID_EMU_UNPIN_ALL && chance(f, 9, 10)) {
		u.iova = 0;
		u.npages = 0;
	}
	u.pad = chance(f, 1, 30);
	u.argsz = gen_argsz(f, sizeof(u), sizeof(u), &g);
	pc = pick_pc(f);
	e->argsz = u.argsz;
	e->flags = u.flags;
	e->pc = pc;
	e->a[0] = u.iova;
	e->a[1] = u.npages;
	e->a[3] = u.pad;
	p = fz_place(f, pc, &u, sizeof(u), sizeof(u) + 16);
	ret = fz_ioctl(f->dev, VID_EMU_UNPIN, p);
	fz_end(f, e, ret);

	if (!rd(f, sizeof(u)))
		want = -EFAULT;
	else if (u.argsz < sizeof(u) || u.pad ||
		 u.flags & ~VID_EMU_UNPIN_ALL)
		want = -EINVAL;
	else if (u.flags & VID_EMU_UNPIN_ALL)
		want = u.iova || u.npages ? -EINVAL : 0;
	else if (!u.npages)
		want = -EINVAL;
	else if (u.npages > VID_EMU_PIN_MAX)
		want = -E2BIG;
	else if (u.iova & (P - 1) ||
		 !dev_range_ok(u.iova, (uint64_t)u.npages * P))
		want = -EINVAL;
	for (k = 0; !want && !(u.flags & VID_EMU_UNPIN_ALL) &&
	     k < u.npages; k++)
		if (!pin_find(f, u.iova + (uint64_t)k * P))
			want = -ENOENT;
	fz_expect(f, want, ret, "unpin");
	if (ret || want)
		return;
	if (u.flags & VID_EMU_UNPIN_ALL) {
		f->npin = 0;
		return;
	}
	for (k = 0; k < u.npages; k++) {
		pn = pin_find(f, u.iova + (uint64_t)k * P);
		if (pn && !--pn->refs)
			*pn = f->pin[--f->npin];
	}
}

/* A device access through the backend's dma_rw. */
static int predict_dma_rw(struct fz *f, uint64_t iova, uint64_t len,
			  bool write)
{
	uint64_t off, n, va;
	int i;

	while (len) {
		i = model_at(f, iova);
		if (i < 0)
			return -EINVAL;
		if ((write && !(f->map[i].prot & VFIO_DMA_MAP_FLAG_WRITE)) ||
		    !(f->map[i].prot & VFIO_DMA_MAP_FLAG_READ))
			return -EPERM;
		off = iova - f->map[i].iova;
		n = min64(len, f->map[i].size - off);
		va = f->map[i].vaddr + off;
		if (va + n - 1 < va || !mem_range_ok(va, n, write))
			return -EFAULT;
		iova += n;
		len -= n;
	}
	return 0;
}

/* A device access through the pages the device holds pinned. */
static int predict_pinned_rw(struct fz *f, uint64_t iova, uint64_t len,
			     bool write)
{
	uint64_t a, last = iova + len - 1;
	struct fz_pin *pn;

	for (a = iova & ~(P - 1); a <= last; a += P) {
		pn = pin_find(f, a);
		if (!pn)
			return -ENOENT;
		if (write && !(pn->flags & VID_EMU_PIN_WRITE))
			return -EPERM;
		if (a + P < a)
			break;
	}
	return 0;
}

static void op_rw(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_RW);
	struct vid_emu_rw rw = { 0 };
	unsigned int r = rnd(f, 100);
	bool write, pinned, g;
	int ret, want;
	enum where pc;
	void *p;

	rw.flags = rnd(f, 100) < 90 ? rnd(f, 4) : PICK(f, 4, 1U << 31);
	write = rw.flags & VID_EMU_RW_WRITE;
	pinned = rw.flags & VID_EMU_RW_PINNED;
	rw.iova = gen_dev_iova(f);
	if (chance(f, 1, 3))
		rw.iova += rnd(f, P);
	if (r < 80)
		rw.length = 1 + rnd(f, 2 * P);
	else if (r < 90)
		rw.length = 1 + rnd(f, VID_EMU_RW_MAX);
	else
		rw.length = PICK(f, 0, VID_EMU_RW_MAX, VID_EMU_RW_MAX + 1,
				 UINT64_MAX, 1ULL << 40);
	rw.data = gen_buf(f, A_DATA, N_DATA, min64(rw.length, N_DATA * P),
			  &g);
	rw.argsz = gen_argsz(f, sizeof(rw), sizeof(rw), &g);
	pc = pick_pc(f);
	e->argsz = rw.argsz;
	e->flags = rw.flags;
	e->pc = pc;
	e->a[0] = rw.iova;
	e->a[1] = rw.length;
	e->a[2] = rw.data;
	p = fz_place(f, pc, &rw, sizeof(rw), sizeof(rw) + 16);
	ret = fz_ioctl(f->dev, VID_EMU_RW, p);
	fz_end(f, e, ret);

	if (!rd(f, sizeof(rw)))
		want = -EFAULT;
	else if (rw.argsz < sizeof(rw) || !rw.length ||
		 rw.flags & ~(VID_EMU_RW_WRITE | VID_EMU_RW_PINNED))
		want = -EINVAL;
	else if (rw.length > VID_EMU_RW_MAX)
		want = -E2BIG;
	else if (!dev_range_ok(rw.iova, rw.length))
		want = -EINVAL;
	else if (!mem_range_ok(rw.data, rw.length, !write))
		want = -EFAULT;	/* the device's own buffer */
	else if (pinned)
		want = predict_pinned_rw(f, rw.iova, rw.length, write);
	else
		want = predict_dma_rw(f, rw.iova, rw.length, write);
	fz_expect(f, want, ret, pinned ? "access through pins" : "dma_rw");
}

/* STATUS: the device's pin counts against the model. */
static void op_status(struct fz *f, bool exact)
{
	struct fz_ent *e = fz_begin(f, OP_STATUS);
	struct vid_emu_status st = { 0 };
	enum where pc = PC_NORMAL;
	int ret, want;
	bool g;
	void *p;

	st.argsz = exact ? sizeof(st) :
		   gen_argsz(f, sizeof(st), sizeof(st), &g);
	if (!exact && chance(f, 1, 10))
		st.flags = PICK(f, VID_EMU_STATUS_RESET, 2, 1U << 31);
	if (!exact)
		pc = pick_pc(f);
	e->argsz = st.argsz;
	e->flags = st.flags;
	e->pc = pc;
	p = fz_place(f, pc, &st, sizeof(st), sizeof(st) + 16);
	ret = fz_ioctl(f->dev, VID_EMU_STATUS, p);
	fz_end(f, e, ret);
	if (!rd(f, 8))
		want = -EFAULT;
	else if (st.argsz < sizeof(st) || st.flags & ~VID_EMU_STATUS_RESET)
		want = -EINVAL;
	else
		want = wr(f, sizeof(st)) ? 0 : -EFAULT;
	fz_expect(f, want, ret, "status");
	if (ret || !pc_writable(pc))
		return;
	memcpy(&st, p, sizeof(st));
	if (st.pinned_pages != f->npin || st.pinned_refs != pins_refs(f) ||
	    st.anomalies)
		fz_bad(f, "device holds %llu pages, %llu pins, %llu anomalies; the model %u, %llu",
		       (unsigned long long)st.pinned_pages,
		       (unsigned long long)st.pinned_refs,
		       (unsigned long long)st.anomalies, f->npin,
		       (unsigned long long)pins_refs(f));
}

static void op_dev_info(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_DEV_INFO);
	struct vfio_device_info info = { 0 };
	const uint32_t minsz = 16;
	int ret, want;
	enum where pc;
	bool g;
	void *p;

	info.argsz = gen_argsz(f, minsz, sizeof(info), &g);
	pc = pick_pc(f);
	e->argsz = info.argsz;
	e->pc = pc;
	p = fz_place(f, pc, &info, sizeof(info), sizeof(info) + 16);
	ret = fz_ioctl(f->dev, VFIO_DEVICE_GET_INFO, p);
	fz_end(f, e, ret);
	if (!rd(f, minsz))
		want = -EFAULT;
	else if (info.argsz < minsz)
		want = -EINVAL;
	else
		want = wr(f, minsz) ? 0 : -EFAULT;
	fz_expect(f, want, ret, "device info");
}

static void op_dev_feature(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_DEV_FEATURE);
	struct {
		struct vfio_device_feature h;
		uint8_t data[64];
	} a = { 0 };
	const uint32_t known = VFIO_DEVICE_FEATURE_MASK |
			       VFIO_DEVICE_FEATURE_GET |
			       VFIO_DEVICE_FEATURE_SET |
			       VFIO_DEVICE_FEATURE_PROBE;
	uint32_t gs = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET;
	int ret, want;
	enum where pc;
	bool g;
	void *p;

	a.h.flags = rnd(f, 16) | (rnd(f, 8) << 16);
	if (chance(f, 1, 10))
		a.h.flags |= PICK(f, 1U << 19, 1U << 31);
	a.h.argsz = gen_argsz(f, 8, sizeof(a), &g);
	pc = pick_pc(f);
	e->argsz = a.h.argsz;
	e->flags = a.h.flags;
	e->pc = pc;
	p = fz_place(f, pc, &a, sizeof(a), sizeof(a) + 16);
	ret = fz_ioctl(f->dev, VFIO_DEVICE_FEATURE, p);
	fz_end(f, e, ret);
	if (!rd(f, 8))
		want = -EFAULT;
	else if (a.h.argsz < 8 || a.h.flags & ~known)
		want = -EINVAL;
	else if (!(a.h.flags & VFIO_DEVICE_FEATURE_PROBE) &&
		 (a.h.flags & gs) == gs)
		want = -EINVAL;
	else
		want = -ENOTTY;	/* the device has no feature at all */
	fz_expect(f, want, ret, "device feature");
}

static void op_dev_unknown(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_DEV_UNKNOWN);
	unsigned long cmd;
	uint64_t arg;
	int ret;

	/*
	 * Not the commands the device and the VFIO core handle. GATE is
	 * never fuzzed: an armed gate holds the next unmap for seconds.
	 */
	do
		cmd = gen_cmd(f);
	while (cmd == VFIO_DEVICE_GET_INFO || cmd == VFIO_DEVICE_FEATURE ||
	       cmd == VID_EMU_PIN || cmd == VID_EMU_UNPIN ||
	       cmd == VID_EMU_RW || cmd == VID_EMU_STATUS ||
	       cmd == VID_EMU_GATE);
	arg = PICK(f, 0, arena_addr(A_ARGS), KADDR, 1, UINT64_MAX);
	e->a[0] = cmd;
	e->a[1] = arg;
	ret = fz_ioctl(f->dev, cmd, (void *)(uintptr_t)arg);
	fz_end(f, e, ret);
	fz_expect(f, -ENOTTY, ret, "unknown device command");
}

/* ---------------------------------------------------------------------- */
/* a run                                                                  */
/* ---------------------------------------------------------------------- */

struct fz_cfg {
	bool edu, emu;
	int type;
	unsigned int salt;
};

static const unsigned int op_weight[NOPS] = {
	[OP_INFO] = 4, [OP_MAP] = 22, [OP_MAP_VADDR] = 3, [OP_UNMAP] = 9,
	[OP_UNMAP_ALL] = 1, [OP_UNMAP_VADDR] = 3, [OP_UNMAP_BITMAP] = 6,
	[OP_DIRTY] = 5, [OP_GET_BITMAP] = 8, [OP_CHECK_EXT] = 2,
	[OP_UNKNOWN] = 2, [OP_PIN] = 12, [OP_UNPIN] = 7, [OP_RW] = 10,
	[OP_STATUS] = 2, [OP_DEV_INFO] = 1, [OP_DEV_FEATURE] = 1,
	[OP_DEV_UNKNOWN] = 1,
};

static bool op_possible(struct fz *f, enum op op)
{
	if (op >= OP_PIN && op <= OP_DEV_UNKNOWN)
		return f->emu;
	return op < OP_FIXUP;
}

static enum op pick_op(struct fz *f)
{
	unsigned int total = 0, r;
	int op;

	for (op = 0; op < NOPS; op++)
		if (op_possible(f, op))
			total += op_weight[op];
	r = rnd(f, total);
	for (op = 0; op < NOPS; op++) {
		if (!op_possible(f, op))
			continue;
		if (r < op_weight[op])
			break;
		r -= op_weight[op];
	}
	return op;
}

static void do_op(struct fz *f, enum op op)
{
	switch (op) {
	case OP_INFO:
		do_info(f, rnd(f, 100) < 70 ? rnd(f, INFO_SWEEP + 1) :
			PICK(f, 0, 0xffffffffULL, 4096, 15, 16),
			pick_pc(f));
		break;
	case OP_MAP:
	case OP_MAP_VADDR:
		op_map(f, op == OP_MAP_VADDR);
		break;
	case OP_UNMAP:
	case OP_UNMAP_ALL:
	case OP_UNMAP_VADDR:
	case OP_UNMAP_BITMAP:
		op_unmap(f, op);
		break;
	case OP_DIRTY:
		op_dirty(f);
		break;
	case OP_GET_BITMAP:
		op_get_bitmap(f);
		break;
	case OP_CHECK_EXT:
		op_check_ext(f);
		break;
	case OP_UNKNOWN:
		op_unknown(f);
		break;
	case OP_PIN:
		op_pin(f);
		break;
	case OP_UNPIN:
		op_unpin(f);
		break;
	case OP_RW:
		op_rw(f);
		break;
	case OP_STATUS:
		op_status(f, false);
		break;
	case OP_DEV_INFO:
		op_dev_info(f);
		break;
	case OP_DEV_FEATURE:
		op_dev_feature(f);
		break;
	case OP_DEV_UNKNOWN:
		op_dev_unknown(f);
		break;
	default:
		break;
	}
}

/* The module's own view (debugfs) against the model. */
static void check_debugfs(struct fz *f)
{
	long long n;

	if (!f->ours)
		return;
	n = vid_debugfs_state("mappings");
	if (n != f->nmap)
		fz_bad(f, "debugfs: %lld mappings, the model %u", n, f->nmap);
	n = vid_debugfs_read("mappings");
	if (n < 0)
		fz_bad(f, "debugfs: reading mappings: %s", strerror(-n));
	if (!f->emu)
		return;
	n = vid_debugfs_state("device_pinned_pages");
	if (n != f->npin)
		fz_bad(f, "debugfs: %lld device pins, the model %u", n,
		       f->npin);
}

/* Read the usable IOVA ranges and page sizes from a full GET_INFO. */
static int fz_learn(struct fz *f)
{
	uint8_t buf[2048] = { 0 };
	struct vfio_iommu_type1_info *info = (void *)buf;
	struct vfio_iommu_type1_info_cap_iova_range *r;
	unsigned int i;

	info->argsz = sizeof(*info);
	if (ioctl(f->container, VFIO_IOMMU_GET_INFO, info))
		return -errno;
	f->info_full = info->argsz;
	if (f->info_full > INFO_SWEEP)
		return -E2BIG;
	memset(buf, 0, sizeof(buf));
	info->argsz = sizeof(buf);
	if (ioctl(f->container, VFIO_IOMMU_GET_INFO, info))
		return -errno;
	f->pgsizes = info->iova_pgsizes;
	r = (void *)info_cap(buf, sizeof(buf),
			     VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE);
	f->niova = 0;
	for (i = 0; r && i < r->nr_iovas && i < ARRAY_SIZE(f->iova); i++) {
		f->iova[i].start = r->iova_ranges[i].start;
		f->iova[i].end = r->iova_ranges[i].end;
		f->niova++;
	}
	return 0;
}

static void fz_forget_fds(struct fz *f)
{
	f->container = -1;
	f->group = -1;
	f->egroup = -1;
	f->dev = -1;
}

static void fz_close(struct fz *f)
{
	if (f->dev >= 0)
		close(f->dev);
	if (f->egroup >= 0)
		close(f->egroup);
	if (f->group >= 0)
		close(f->group);
	if (f->container >= 0)
		close(f->container);
	fz_forget_fds(f);
}

static const char *limit_path(const char *mod)
{
	static char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s/parameters/dma_entry_limit",
		 mod);
	return path;
}

static int write_param(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		ret = -EIO;
	close(fd);
	return ret;
}

static int read_param(const char *path, char *val, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, val, len - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	val[n] = '\0';
	return 0;
}

/*
 * Open the variant's container, served by @mod, with dma_entry_limit set
 * to FZ_LIMIT for it. 0, or -errno and *@why.
 */
static int fz_open(struct fz *f, const struct fz_cfg *cfg, const char **why)
{
	char saved[32], lim[16];
	bool served = false;
	int ret, id;

	fz_forget_fds(f);
	*why = "reading dma_entry_limit";
	ret = read_param(limit_path(f->mod), saved, sizeof(saved));
	if (ret)
		return ret;
	snprintf(lim, sizeof(lim), "%d", FZ_LIMIT);
	*why = "setting dma_entry_limit";
	ret = write_param(limit_path(f->mod), lim);
	if (ret)
		return ret;
	*why = "opening the container";
	ret = vid_open_container();
	if (ret < 0)
		goto out;
	f->container = ret;
	if (cfg->edu) {
		*why = "adding the edu group";
		ret = vid_open_group(f->container);
		if (ret < 0)
			goto out;
		f->group = ret;
	}
	if (cfg->emu) {
		*why = "adding the test device's group";
		id = vid_device_group("platform", VID_EMU_DEV0);
		ret = id < 0 ? id : vid_open_group_id(f->container, id);
		if (ret < 0)
			goto out;
		f->egroup = ret;
	}
	*why = "VFIO_SET_IOMMU";
	ret = vid_set_iommu(f->container, cfg->type, f->mod, &served);
	if (!ret && !served) {
		*why = "the expected module did not take the container";
		ret = -ESRCH;
	}
	if (!ret && cfg->emu) {
		*why = "getting the test device";
		ret = ioctl(f->egroup, VFIO_GROUP_GET_DEVICE_FD, VID_EMU_DEV0);
		if (ret < 0)
			ret = -errno;
		else
			f->dev = ret;
	}
	if (ret > 0)
		ret = 0;
out:
	write_param(limit_path(f->mod), saved);
	if (ret)
		fz_close(f);
	return ret;
}

#define TRACE_EVENTS	"/sys/kernel/tracing/events/vfio_iommu_dirty/enable"
#define TRACE_BUF	"/sys/kernel/tracing/trace"

/*
 * Switch this module's tracepoints on (they then format every hostile
 * argument too); false when there is no tracefs here.
 */
static bool trace_on(void)
{
	return !write_param(TRACE_EVENTS, "1");
}

/* Read the whole trace (each event printed), switch off, clear; bytes. */
static long trace_off(void)
{
	char buf[4096];
	long total = 0;
	ssize_t n;
	int fd;

	write_param(TRACE_EVENTS, "0");
	fd = open(TRACE_BUF, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	close(fd);
	fd = open(TRACE_BUF, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return total;
}

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

static void print_counts(struct __test_metadata *_metadata, struct fz *f)
{
	char line[512];
	unsigned int op, b;
	uint64_t total;
	int n;

	for (op = 0; op < NOPS; op++) {
		total = 0;
		for (b = 0; b < NEB; b++)
			total += f->count[op][b];
		if (!total)
			continue;
		n = snprintf(line, sizeof(line), "  %-20s %6llu:", op_name[op],
			     (unsigned long long)total);
		for (b = 0; b < NEB && n < (int)sizeof(line); b++)
			if (f->count[op][b])
				n += snprintf(line + n, sizeof(line) - n,
					      " %s %llu", eb_name[b],
					      (unsigned long long)f->count[op][b]);
		TH_LOG("%s", line);
	}
}

static void ent_str(const struct fz_ent *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s argsz %u flags 0x%x %s pointer args 0x%llx 0x%llx 0x%llx 0x%llx",
		 op_name[e->op], e->argsz, e->flags, pc_name[e->pc],
		 (unsigned long long)e->a[0], (unsigned long long)e->a[1],
		 (unsigned long long)e->a[2], (unsigned long long)e->a[3]);
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
		ent_str(&f->tr[i], what, sizeof(what));
		TH_LOG("  #%u %s: %s (0x%llx)%s", i, what,
		       res_name(f->tr[i].ret),
		       (unsigned long long)f->tr[i].aux,
		       f->tr[i].fixup ? ", unmap after it" : "");
	}
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
	ret = arena_create(f);
	ASSERT_EQ(0, ret) TH_LOG("arena at 0x%llx: %s",
				 (unsigned long long)ARENA_ADDR,
				 strerror(-ret));
	ret = fz_open(f, cfg, &why);
	ASSERT_EQ(0, ret) TH_LOG("%s (%s): %s", why, f->mod, strerror(-ret));
	ASSERT_EQ(0, fz_learn(f));

	for (i = 0; i <= INFO_SWEEP; i++)
		do_info(f, i, PC_NORMAL);
	for (i = 0; i < nops; i++) {
		do_op(f, pick_op(f));
		if (i % CHECK_EVERY == CHECK_EVERY - 1) {
			if (f->emu)
				op_status(f, true);
			check_debugfs(f);
		}
	}

	/* Everything the model holds is there, and goes. */
	if (f->emu)
		op_status(f, true);
	check_debugfs(f);
	do_info(f, INFO_ROOM - 64, PC_NORMAL);
	for (i = 0; i < f->nmap; i++)
		bytes += f->map[i].size;
	u.flags = VFIO_DMA_UNMAP_FLAG_ALL;
	ret = fz_ioctl(f->container, VFIO_IOMMU_UNMAP_DMA, &u);
	EXPECT_EQ(0, ret) TH_LOG("unmap everything: %s", res_name(ret));
	EXPECT_EQ(bytes, u.size)
		TH_LOG("unmap everything: 0x%llx bytes, the model holds 0x%llx in %u mappings",
		       (unsigned long long)u.size, (unsigned long long)bytes,
		       f->nmap);
	f->nmap = 0;
	f->npin = 0;
	if (f->emu)
		op_status(f, true);
	check_debugfs(f);
	fz_close(f);
	arena_destroy(f);
	TH_LOG("%s: %u calls in %lld ms, %u mappings at most %d",
	       f->mod, f->ntr, vid_now_ms() - start, FZ_LIMIT, FZ_LIMIT);
	print_counts(_metadata, f);
	for (i = 0; i < f->nbad && i < MAX_BAD; i++)
		TH_LOG("UNEXPECTED (%s): %s", f->mod, f->bad[i]);
	print_history(_metadata, f);
	EXPECT_EQ(0, f->nbad);
}

static void fz_free(struct fz *f)
{
	free(f->tr);
	free(f->pin);
	arena_destroy(f);
	if (f->container >= 0)
		fz_close(f);
	memset(f, 0, sizeof(*f));
	fz_forget_fds(f);
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
			ent_str(x, what, sizeof(what));
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
		ent_str(x, what, sizeof(what));
		TH_LOG("op #%u %s: %s %s (0x%llx), %s %s (0x%llx)", i, what,
		       a->mod, res_name(x->ret), (unsigned long long)x->aux,
		       b->mod, res_name(y->ret), (unsigned long long)y->aux);
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
	tracing = !intree && trace_on();
	fz_run(_metadata, &self->a, cfg, seed, nops);
	if (tracing)
		TH_LOG("%ld bytes of trace read back", trace_off());
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
#define LIFE_N		3		/* containers at a time */
#define LIFE_IOVA	0x100000ULL

enum { G_EDU, G_EMU, NG };

struct life_c {
	int fd;			/* -1: closed, or never opened */
	bool exists;		/* the fd or a group keeps it */
	bool set;		/* an IOMMU driver serves it */
	int type;
	unsigned int ngroups;
	unsigned int nmap;	/* mappings made since it was set */
	uint64_t iova[8];	/* the last ones made */
};

struct life {
	struct life_c c[LIFE_N];
	int gfd[NG];
	int gin[NG];		/* container a group is in, or -1 */
	int dev;		/* the test device, or -1 */
};

static void life_detach(struct life *l, int g)
{
	struct life_c *c = &l->c[l->gin[g]];

	l->gin[g] = -1;
	if (--c->ngroups)
		return;
	/* The last group out takes the IOMMU driver with it. */
	c->set = false;
	c->nmap = 0;
	if (c->fd < 0)
		c->exists = false;
}

static void life_open(struct fz *f, struct life *l, int k)
{
	struct fz_ent *e = fz_begin(f, OP_OPEN);
	int ret = vid_open_container();

	e->a[0] = k;
	fz_end(f, e, ret < 0 ? ret : 0);
	if (ret < 0)
		return;
	l->c[k] = (struct life_c){ .fd = ret, .exists = true };
}

static void life_close(struct fz *f, struct life *l, int k)
{
	struct fz_ent *e = fz_begin(f, OP_CLOSE);

	e->a[0] = k;
	fz_end(f, e, close(l->c[k].fd) ? -errno : 0);
	l->c[k].fd = -1;
	if (!l->c[k].ngroups)
		l->c[k].exists = false;
}

/* GROUP_SET_CONTAINER of group @g with container @k or something else. */
static void life_add(struct fz *f, struct life *l, int g, int k)
{
	struct fz_ent *e = fz_begin(f, OP_ADD_GROUP);
	unsigned int r = rnd(f, 100);
	int fd, ret, want, *arg = &fd;

	e->a[0] = g;
	e->a[1] = k;
	if (r < 85 && l->c[k].fd >= 0) {
		fd = l->c[k].fd;
	} else if (r < 90) {
		fd = -1;
	} else if (r < 95) {
		fd = l->gfd[!g];	/* a VFIO fd, but no container */
		e->a[2] = 1;
	} else {
		arg = NULL;
		e->pc = PC_NULL;
	}
	ret = fz_ioctl(l->gfd[g], VFIO_GROUP_SET_CONTAINER, arg);
	fz_end(f, e, ret);
	if (!arg)
		want = -EFAULT;
	else if (fd < 0)
		want = -EBADF;
	else if (l->gin[g] >= 0)
		want = -EINVAL;
	else if (fd != l->c[k].fd)
		want = kernel_6_1() ? -EINVAL : -EBADFD;	/* no container */
	else if (l->c[k].set && l->c[k].nmap)
		want = UNK;	/* mappings are replayed into a new domain */
	else if (l->c[k].set && g == G_EDU &&
		 l->c[k].type == VFIO_TYPE1_NESTING_IOMMU)
		want = vid_iommu_nesting_errno();	/* the IOMMU's answer */
	else
		want = 0;
	fz_expect(f, want, ret, "group set container");
	if (ret)
		return;
	l->gin[g] = k;
	l->c[k].ngroups++;
}

static void life_del(struct fz *f, struct life *l, int g)
{
	struct fz_ent *e = fz_begin(f, OP_DEL_GROUP);
	int ret, want;

	e->a[0] = g;
	ret = fz_ioctl(l->gfd[g], VFIO_GROUP_UNSET_CONTAINER, NULL);
	fz_end(f, e, ret);
	if (l->gin[g] < 0)
		want = -EINVAL;
	else if (g == G_EMU && l->dev >= 0)
		want = -EBUSY;		/* the open device uses it */
	else
		want = 0;
	fz_expect(f, want, ret, "group unset container");
	if (!ret && l->gin[g] >= 0)
		life_detach(l, g);
}

static void life_set_iommu(struct fz *f, struct life *l, int k)
{
	struct fz_ent *e = fz_begin(f, OP_SET_IOMMU);
	uint64_t type = rnd(f, 100) < 80 ?
			PICK(f, VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU,
			     VFIO_TYPE1v2_IOMMU, VFIO_TYPE1_NESTING_IOMMU) :
			PICK(f, 0, 2, 4, 5, 7, 8, 9, 10, 11, 12, 0xffff,
			     0x100000001ULL, UINT64_MAX);
	long before = vid_module_refcnt(f->mod);
	bool edu = l->gin[G_EDU] == k;
	int ret, want;

	e->a[0] = k;
	e->a[1] = type;
	ret = fz_ioctl(l->c[k].fd, VFIO_SET_IOMMU, (void *)(uintptr_t)type);
	fz_end(f, e, ret);
	if (!l->c[k].ngroups || l->c[k].set)
		want = -EINVAL;
	else if (type == VFIO_TYPE1_IOMMU || type == VFIO_TYPE1v2_IOMMU)
		want = 0;
	else if (type == VFIO_TYPE1_NESTING_IOMMU)
		want = edu ? vid_iommu_nesting_errno() : 0;
	else if (type == VFIO_UNMAP_ALL)
		want = -EINVAL;	/* announced as an extension, refused by open */
	else
		want = -ENODEV;
	fz_expect(f, want, ret, "set iommu");
	if (ret)
		return;
	if (vid_module_refcnt(f->mod) != before + 1)
		fz_bad(f, "type %llu: not served by %s",
		       (unsigned long long)type, f->mod);
	l->c[k].set = true;
	l->c[k].type = type;
	l->c[k].nmap = 0;
}

static void life_get_device(struct fz *f, struct life *l)
{
	struct fz_ent *e = fz_begin(f, OP_GET_DEVICE);
	static const char *const names[] = {
		VID_EMU_DEV0, VID_EMU_DEV0, VID_EMU_DEV0, VID_EMU_DEV0,
		"vid-emu.7", "", "0000:00:00.0", NULL,
	};
	const char *name = names[rnd(f, ARRAY_SIZE(names))];
	int k = l->gin[G_EMU], ret, want;

	e->a[0] = k;
	e->pc = name ? PC_NORMAL : PC_NULL;
	ret = fz_ioctl(l->gfd[G_EMU], VFIO_GROUP_GET_DEVICE_FD, (void *)name);
	fz_end(f, e, ret < 0 ? ret : 0);
	if (!name)
		want = -EFAULT;
	else if (strcmp(name, VID_EMU_DEV0))
		want = -ENODEV;
	else if (k < 0 || !l->c[k].set)
		want = -EINVAL;
	else
		want = 0;
	fz_expect(f, want, ret < 0 ? ret : 0, "get device fd");
	if (ret >= 0)
		l->dev = ret;
}

static void life_close_device(struct fz *f, struct life *l)
{
	struct fz_ent *e = fz_begin(f, OP_CLOSE_DEVICE);

	fz_end(f, e, close(l->dev) ? -errno : 0);
	l->dev = -1;
}

/* A mapping, tracking, a pin: things a close has to clean up. */
static void life_use(struct fz *f, struct life *l, int k)
{
	struct life_c *c = &l->c[k];
	uint64_t iova = LIFE_IOVA * (1 + rnd(f, 32));
	unsigned int r = rnd(f, 100);
	struct fz_ent *e;
	int ret;

	if (r >= 50 && r < 70 && l->dev >= 0) {
		/* A pin of one of the mappings of the device's container. */
		c = &l->c[l->gin[G_EMU]];
		if (c->nmap)
			iova = c->iova[rnd(f, min64(c->nmap, 8))] +
			       P * rnd(f, 4);
		e = fz_begin(f, OP_PIN);
		e->a[0] = iova;
		ret = vid_emu_pin(l->dev, iova, 1,
				  VID_EMU_PIN_READ | VID_EMU_PIN_WRITE, NULL);
		fz_end(f, e, ret);
		return;
	}
	if (r < 50) {
		uint64_t size = P * (1 + rnd(f, 4));
		bool g;
		uint64_t va = chance(f, 3, 4) ?
			      arena_addr(A_RW + rnd(f, 200)) :
			      gen_vaddr(f, size, &g);

		e = fz_begin(f, OP_MAP);
		e->a[0] = iova;
		e->a[1] = size;
		e->a[2] = va;
		ret = vid_map(c->fd, iova, (void *)(uintptr_t)va, size,
			      VID_MAP_RW);
		fz_end(f, e, ret);
		if (!ret)
			c->iova[c->nmap++ % 8] = iova;
		if (!c->set)
			fz_expect(f, -EINVAL, ret, "map without a driver");
	} else if (r < 80) {
		e = fz_begin(f, OP_DIRTY);
		ret = vid_dirty_op(c->fd, 8, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
		fz_end(f, e, ret);
		fz_expect(f, !c->set ? -EINVAL :
			  c->type == VFIO_TYPE1_IOMMU ? -EACCES : 0, ret,
			  "start");
	} else if (r < 93) {
		uint64_t ext = rnd(f, 12);

		e = fz_begin(f, OP_CHECK_EXT);
		e->a[0] = ext;
		ret = fz_ioctl(c->fd, VFIO_CHECK_EXTENSION,
			       (void *)(uintptr_t)ext);
		fz_end(f, e, ret);
	} else {
		e = fz_begin(f, OP_UNKNOWN);
		ret = fz_ioctl(c->fd, _IO(VFIO_TYPE, VFIO_BASE + 30), NULL);
		fz_end(f, e, ret);
		fz_expect(f, c->set ? -ENOTTY : -EINVAL, ret, "unknown");
	}
}

/* A container to work with: mostly one that is set up, if any. */
static int life_pick(struct fz *f, struct life *l)
{
	int k = rnd(f, LIFE_N), i;

	if (chance(f, 1, 4))
		return k;
	for (i = 0; i < LIFE_N; i++) {
		k = (k + 1) % LIFE_N;
		if (l->c[k].fd >= 0 && l->c[k].set)
			return k;
	}
	return k;
}

static void life_step(struct fz *f, struct life *l)
{
	unsigned int r = rnd(f, 100);
	int k = rnd(f, LIFE_N), g = rnd(f, NG);
	struct life_c *c = &l->c[k];

	if (r < 4) {
		if (!c->exists)
			life_open(f, l, k);
		else if (c->fd >= 0)
			life_close(f, l, k);
	} else if (r < 6) {
		if (c->fd >= 0)
			life_close(f, l, k);
	} else if (r < 20) {
		if (c->fd < 0 && !c->exists)
			life_open(f, l, k);
		life_add(f, l, g, k);
	} else if (r < 25) {
		life_del(f, l, g);
	} else if (r < 37) {
		/* Mostly where a group waits for it. */
		if (l->gin[g] >= 0 && !l->c[l->gin[g]].set && chance(f, 3, 4))
			k = l->gin[g];
		if (l->c[k].fd >= 0)
			life_set_iommu(f, l, k);
	} else if (r < 45) {
		if (l->dev < 0)
			life_get_device(f, l);
		else if (chance(f, 1, 3))
			life_close_device(f, l);
	} else {
		k = life_pick(f, l);
		if (l->c[k].fd >= 0)
			life_use(f, l, k);
	}
}

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
	ret = arena_create(f);
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
		life_step(f, &l);

	/* Leave with everything in place: the closes clean up. */
	if (l.dev >= 0)
		close(l.dev);
	for (i = 0; i < LIFE_N; i++)
		if (l.c[i].fd >= 0)
			close(l.c[i].fd);
	close(l.gfd[G_EDU]);
	close(l.gfd[G_EMU]);
	arena_destroy(f);
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
