// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_test: random choices shared by the calls. Which call comes next,
 * where its argument goes, and the values most arguments are made of:
 * argsz, IOVAs, sizes, host addresses, user buffers, command numbers.
 * Each is mostly a good value, sometimes a strange one or a bad one.
 */
#include <stdint.h>

#include "fuzz.h"

/* How often each kind of call comes (device calls only with the device). */
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
	if (op_on_device(op))
		return f->emu;
	return op < OP_FIXUP;
}

/* The kind of the next call. */
enum op fuzz_pick_op(struct fz *f)
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

/* How often an argument goes where (enum where). */
static const unsigned int pc_weight[NPC] = {
	[PC_NORMAL] = 80, [PC_ODD] = 5, [PC_CUT] = 5, [PC_RO] = 3,
	[PC_NULL] = 2, [PC_KERNEL] = 2, [PC_HOLE] = 1, [PC_NONCANON] = 1,
	[PC_NONE] = 1,
};

/* Where the next argument goes. */
enum where fuzz_pick_pc(struct fz *f)
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
 * A user buffer of @need bytes the kernel will read or write (bitmap,
 * pfn array, device data), inside the region of @pages pages at arena page
 * @first that a hole follows; *@good tells whether it is the plain good
 * kind.
 */
uint64_t fuzz_gen_buf(struct fz *f, unsigned int first, unsigned int pages,
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

/* An argsz: mostly @full or a little more, sometimes anything. */
uint32_t fuzz_gen_argsz(struct fz *f, uint32_t minsz, uint32_t full,
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
uint64_t fuzz_win_iova(struct fz *f)
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
uint64_t fuzz_gen_iova(struct fz *f, bool *good)
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
		return fuzz_win_iova(f);
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
uint64_t fuzz_gen_size(struct fz *f, bool *good)
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
uint64_t fuzz_gen_vaddr(struct fz *f, uint64_t size, bool *good)
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
uint64_t fuzz_not_top(uint64_t iova, uint64_t size)
{
	return size && iova + size == 0 ? size - P : size;
}

/*
 * A command number nobody handles: VFIO's, the test device's, or of
 * types that neither the VFS nor any common layer looks at.
 */
unsigned long fuzz_gen_cmd(struct fz *f)
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
