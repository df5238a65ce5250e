/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the files of fuzz_test share: its constants, the memory layout of
 * the arena, the kinds of call and of result, one run's state (struct fz:
 * the model of the container, the argument being passed, the trace of
 * calls) and the functions each file offers the others. fuzz_test.c says
 * what the program checks. Its files, one concern each:
 *
 *   fuzz_test.c       the tests: fixtures, a run of calls and its final
 *                     checks, two runs compared, the life test's run, the
 *                     mappings at the top of the 64-bit spaces
 *   fuzz_call.c       making a call: its trace entry, the result counted
 *                     and checked against the errnos the call may give
 *                     and against the model's prediction
 *   fuzz_mem.c        the arena: what each page of it is, where an
 *                     argument is put and what the kernel can do there
 *   fuzz_model.c      the model of the container's mappings and of the
 *                     test device's pins, and the module's debugfs
 *                     against it
 *   fuzz_gen.c        random choices: the next call, where its argument
 *                     goes, argsz, IOVAs, sizes, host addresses, buffers,
 *                     command numbers
 *   fuzz_container.c  the container's ioctls, each with its prediction
 *   fuzz_device.c     the test device's ioctls, each with its prediction
 *   fuzz_setup.c      a run's container opened (with the variant's groups
 *                     and device) and closed, the tracepoints, the kernel
 *   fuzz_life.c       the steps of the life test: containers, groups,
 *                     SET_IOMMU and the device, opened and closed
 *
 * Only fuzz_test.c includes the kselftest harness: the others report
 * through fz_bad() and return errnos.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vid_util.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

#define P		VID_PAGE
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
#define MAX_BAD		8
#define BAD_LEN		400
#define UNK		INT_MIN		/* no prediction */

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

/* The kinds of call; results are counted by kind and errno. */
enum op {
	OP_INFO, OP_MAP, OP_MAP_VADDR, OP_UNMAP, OP_UNMAP_ALL, OP_UNMAP_VADDR,
	OP_UNMAP_BITMAP, OP_DIRTY, OP_GET_BITMAP, OP_CHECK_EXT, OP_UNKNOWN,
	OP_PIN, OP_UNPIN, OP_RW, OP_STATUS, OP_DEV_INFO, OP_DEV_FEATURE,
	OP_DEV_UNKNOWN, OP_FIXUP,
	/* the container life test */
	OP_OPEN, OP_ADD_GROUP, OP_DEL_GROUP, OP_SET_IOMMU, OP_GET_DEVICE,
	OP_CLOSE_DEVICE, OP_CLOSE, NOPS
};

/* Is @op a call to the test device? */
static inline bool op_on_device(enum op op)
{
	return op >= OP_PIN && op <= OP_DEV_UNKNOWN;
}

/* The result of a call: success or its errno (index of fz->count). */
enum eb {
	EB_OK, EB_EINVAL, EB_EFAULT, EB_EEXIST, EB_ENOENT, EB_ENOSPC,
	EB_ENOMEM, EB_EBUSY, EB_EPERM, EB_EACCES, EB_ENOTTY, EB_E2BIG,
	EB_ENODEV, EB_EBADF, EB_EBADFD, EB_OTHER, NEB
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

/* A mapping the model holds. */
struct fz_map {
	uint64_t iova, size, vaddr;
	uint32_t prot;		/* VFIO_DMA_MAP_FLAG_READ / _WRITE */
	bool invalid;		/* host address invalidated (VADDR) */
};

/* A page the test device holds pinned. */
struct fz_pin {
	uint64_t iova;
	uint32_t refs;
	uint32_t flags;		/* VID_EMU_PIN_* asked for, ORed */
};

/* A usable IOVA range. */
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

/* A fuzz test's variant: the container it opens. */
struct fz_cfg {
	bool edu, emu;
	int type;
	unsigned int salt;
};

/* The smaller of @a and @b. */
static inline uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * fuzz_call.c, making a call: fz_begin() starts its trace entry, fz_ioctl()
 * makes it (0, -errno or the ioctl's value), fz_end() counts and checks
 * the result, fz_expect() compares it with the model's prediction (or
 * UNK); fz_ref() is the first run's entry for it in the second run.
 * fz_bad() records what went wrong (printf format); fuzz_res_name() and
 * fuzz_ent_str() put a result and an entry in words, fuzz_count_line()
 * the counts of one kind of call (false when there were none).
 */
struct fz_ent *fz_begin(struct fz *f, enum op op);
int fz_ioctl(int fd, unsigned long cmd, void *arg);
void fz_end(struct fz *f, struct fz_ent *e, int ret);
void fz_expect(struct fz *f, int want, int got, const char *what);
const struct fz_ent *fz_ref(struct fz *f);
void fz_bad(struct fz *f, const char *fmt, ...);
enum eb fuzz_err_bucket(int ret);
const char *fuzz_res_name(int ret);
void fuzz_ent_str(const struct fz_ent *e, char *buf, size_t len);
bool fuzz_count_line(struct fz *f, unsigned int op, char *line, size_t len);

/*
 * fuzz_mem.c, the arena: made and unmade; what the page at an address is
 * (fuzz_mem_class()), whether the kernel can pin it, for writing or not
 * (fuzz_mem_ok(), fuzz_mem_range_ok() for a range); fz_place() puts an
 * ioctl's argument where a class of enum where says and notes in f->rd
 * and f->wr what the kernel can do with it, which rd() and wr() ask.
 */
enum mem { M_RW, M_RO, M_ZERO, M_BAD };

/* The address of arena page @page. */
static inline uint64_t arena_addr(unsigned int page)
{
	return ARENA_ADDR + (uint64_t)page * P;
}

int fuzz_arena_create(struct fz *f);
void fuzz_arena_destroy(struct fz *f);
enum mem fuzz_mem_class(uint64_t addr);
bool fuzz_mem_ok(uint64_t addr, bool write);
bool fuzz_mem_range_ok(uint64_t addr, uint64_t len, bool write);
void *fz_place(struct fz *f, enum where pc, const void *arg, size_t len,
	       size_t room);

static inline bool pc_readable(enum where pc)
{
	return pc == PC_NORMAL || pc == PC_ODD || pc == PC_RO;
}

static inline bool pc_writable(enum where pc)
{
	return pc == PC_NORMAL || pc == PC_ODD;
}

/* Pointers the kernel cannot read at all: the first copy fails. */
static inline bool pc_unreadable(enum where pc)
{
	return pc == PC_NULL || pc == PC_KERNEL || pc == PC_HOLE ||
	       pc == PC_NONCANON || pc == PC_NONE;
}

/* Can the kernel read @n bytes of the argument? Read and write them? */
static inline bool rd(struct fz *f, size_t n)
{
	return f->rd >= n;
}

static inline bool wr(struct fz *f, size_t n)
{
	return f->wr && f->rd >= n;
}

/*
 * fuzz_model.c, the model: the mapping holding an IOVA (index, or -1),
 * how many a range meets, one added; which an unmap takes (into a set of
 * FZ_LIMIT flags, with their bytes; -EINVAL where v2 refuses the range)
 * and that set removed, with the pins in it; whether a range is usable;
 * the device's pins found, added and counted; debugfs against it all.
 */
static inline uint64_t map_last(const struct fz_map *m)
{
	return m->iova + m->size - 1;
}

int fuzz_model_at(struct fz *f, uint64_t iova);
unsigned int fuzz_model_meets(struct fz *f, uint64_t iova, uint64_t last);
void fuzz_model_add(struct fz *f, uint64_t iova, uint64_t size,
		    uint64_t vaddr, uint32_t prot);
int fuzz_model_unmap_set(struct fz *f, uint64_t iova, uint64_t size,
			 bool all, bool *sel, uint64_t *bytes);
void fuzz_model_remove_set(struct fz *f, const bool *sel);
bool fuzz_iova_usable(struct fz *f, uint64_t iova, uint64_t last);
struct fz_pin *fuzz_pin_find(struct fz *f, uint64_t iova);
void fuzz_pins_add(struct fz *f, uint64_t iova, uint32_t n, uint32_t flags);
uint64_t fuzz_pins_refs(struct fz *f);
void fuzz_check_debugfs(struct fz *f);

/*
 * fuzz_gen.c, random choices: below @n, @num in @den, one of a list
 * (PICK); the next kind of call, where an argument goes, an argsz
 * (mostly @full or a little more, sometimes anything), a page of the
 * usual IOVA window, an IOVA, a size, a host address for @size bytes,
 * @size cut short of the top of the 64-bit space, a user buffer of
 * @need bytes in the @pages at arena page @first, a command number
 * nobody handles. *@good tells whether a value is of the plain good kind.
 */
static inline uint64_t rnd(struct fz *f, uint64_t n)
{
	return vid_rng_below(&f->rng, n);
}

static inline bool chance(struct fz *f, unsigned int num, unsigned int den)
{
	return vid_rng_chance(&f->rng, num, den);
}

/* One of @n values. */
static inline uint64_t pick(struct fz *f, const uint64_t *v, size_t n)
{
	return v[rnd(f, n)];
}

#define PICK(f, ...) ({							\
	const uint64_t __v[] = { __VA_ARGS__ };				\
	pick((f), __v, ARRAY_SIZE(__v));				\
})

enum op fuzz_pick_op(struct fz *f);
enum where fuzz_pick_pc(struct fz *f);
uint32_t fuzz_gen_argsz(struct fz *f, uint32_t minsz, uint32_t full,
			bool *good);
uint64_t fuzz_win_iova(struct fz *f);
uint64_t fuzz_gen_iova(struct fz *f, bool *good);
uint64_t fuzz_gen_size(struct fz *f, bool *good);
uint64_t fuzz_gen_vaddr(struct fz *f, uint64_t size, bool *good);
uint64_t fuzz_not_top(uint64_t iova, uint64_t size);
uint64_t fuzz_gen_buf(struct fz *f, unsigned int first, unsigned int pages,
		      uint64_t need, bool *good);
unsigned long fuzz_gen_cmd(struct fz *f);

/*
 * fuzz_container.c, the container's ioctls: the usable IOVA ranges and
 * page sizes learnt from GET_INFO; GET_INFO with @argsz, its argument
 * placed as @pc says; one random call of a container @op.
 */
int fz_learn(struct fz *f);
void fuzz_get_info(struct fz *f, uint32_t argsz, enum where pc);
void fuzz_container_op(struct fz *f, enum op op);

/*
 * fuzz_device.c, the test device's ioctls: STATUS (@exact: a plain one,
 * for the checks) with its pin counts against the model; one random
 * call of a device @op.
 */
void fuzz_device_status(struct fz *f, bool exact);
void fuzz_device_op(struct fz *f, enum op op);

/*
 * fuzz_setup.c, what a run works in: a kernel of the 6.1 series; the
 * variant's container opened by f->mod (0, or -errno and *@why), closed,
 * the run's memory freed; this module's tracepoints on (false without
 * tracefs) and off (the bytes of trace read back).
 */
bool fuzz_kernel_6_1(void);
int fz_open(struct fz *f, const struct fz_cfg *cfg, const char **why);
void fz_close(struct fz *f);
void fz_free(struct fz *f);
bool fuzz_trace_on(void);
long fuzz_trace_off(void);

/*
 * fuzz_life.c, the life test: its model of the containers, groups and
 * device, and one random step of it.
 */
#define LIFE_N		3		/* containers at a time */

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

void fuzz_life_step(struct fz *f, struct life *l);

#endif /* FUZZ_H */
