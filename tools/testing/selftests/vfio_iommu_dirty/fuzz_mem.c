// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_test: the arena, the memory every run uses at a fixed address
 * (fuzz.h lays it out). What each page of it is, and so what the kernel
 * can pin, read or write there; and where the argument of an ioctl is
 * put, which says how much of it the kernel can read and whether it can
 * write it back.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "fuzz.h"

/* What the page holding @addr is. */
enum mem fuzz_mem_class(uint64_t addr)
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
bool fuzz_mem_ok(uint64_t addr, bool write)
{
	enum mem m = fuzz_mem_class(addr);

	return m == M_RW || m == M_ZERO || (m == M_RO && !write);
}

/*
 * Every page of [@addr, @addr + @len) usable; @len may be huge (the
 * walk stops at the first page outside the arena), the range may not
 * wrap around the top of the 64-bit space.
 */
bool fuzz_mem_range_ok(uint64_t addr, uint64_t len, bool write)
{
	uint64_t a = addr & ~(P - 1), last = addr + len - 1;

	if (!len)
		return true;
	if (last < addr)
		return false;
	for (;; a += P) {
		if (!fuzz_mem_ok(a, write))
			return false;
		if (a >= (last & ~(P - 1)))
			return true;
	}
}

int fuzz_arena_create(struct fz *f)
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

void fuzz_arena_destroy(struct fz *f)
{
	if (f->arena)
		munmap(f->arena, (size_t)A_END * P);
	f->arena = NULL;
}

/*
 * Put the @len bytes of an ioctl argument where class @pc says; @room
 * bytes from the returned address are poisoned first (readable classes).
 */
void *fz_place(struct fz *f, enum where pc, const void *arg, size_t len,
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
