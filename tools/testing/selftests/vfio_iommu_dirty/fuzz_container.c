// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_test: the container's ioctls. Each makes one call with random
 * arguments, predicts its result from the model (errno included, or UNK
 * where the model cannot know), checks what came back and updates the
 * model: GET_INFO, MAP_DMA (also the vaddr update), UNMAP_DMA (plain,
 * everything, vaddr invalidation, with a bitmap), DIRTY_PAGES (START,
 * STOP, GET_BITMAP), CHECK_EXTENSION and commands nobody handles.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

#include "fuzz.h"

#define PAGES_MAX_TRACK	0x7fffffffULL	/* INT_MAX: largest trackable */
#define USER_TOP	0x7ffffffff000ULL	/* TASK_SIZE_MAX, 4-level */
#define BITMAP_MAX	(256ULL << 20)	/* both backends' bitmap limit */

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
		if (!fuzz_mem_range_ok(data + 8 * w0, 8 * (w1 - w0 + 1), true))
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
	if (fuzz_kernel_6_1() && !f->ours)
		return argsz >= 20 ? 20 : 16;
	return min64(argsz, sizeof(struct vfio_iommu_type1_info));
}

/*
 * GET_INFO with @argsz (any value): the fixed part and, when argsz leaves
 * room, the chain; nothing at or past argsz is written.
 */
void fuzz_get_info(struct fz *f, uint32_t argsz, enum where pc)
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
	if (fuzz_model_meets(f, iova, last))
		return -EEXIST;
	if (f->nmap >= FZ_LIMIT)
		return -ENOSPC;
	if (!fuzz_iova_usable(f, iova, last))
		return -EINVAL;
	/* Pinned only where an IOMMU domain exists. */
	if (f->edu && !fuzz_mem_range_ok(vaddr, size,
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
	if (!fuzz_model_meets(f, iova, iova + size - 1))
		return -ENOENT;
	k = fuzz_model_at(f, iova);
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
		map.iova = fuzz_gen_iova(f, &g);
		map.size = fuzz_not_top(map.iova, fuzz_gen_size(f, &g));
	}
	if (vaddr && chance(f, 3, 4))
		map.vaddr = arena_addr(A_RW + rnd(f, 128));
	else if (!(map.iova & (SZ_2M - 1)) && !(map.size & (SZ_2M - 1)) &&
		 map.size <= 2 * SZ_2M && chance(f, 3, 4))
		map.vaddr = arena_addr(A_HUGE) + SZ_2M * rnd(f, 2);
	else
		map.vaddr = fuzz_gen_vaddr(f, map.size, &g);
	map.argsz = fuzz_gen_argsz(f, VID_MAP_MINSZ, sizeof(map), &g);
	pc = fuzz_pick_pc(f);
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
	if (ret == -EEXIST && !fuzz_model_meets(f, map.iova,
						map.iova + map.size - 1))
		fz_bad(f, "EEXIST where nothing is mapped");
	if (ret || want < 0)
		return;
	if (map.flags & VFIO_DMA_MAP_FLAG_VADDR) {
		f->map[want].invalid = false;
		f->map[want].vaddr = map.vaddr;
		return;
	}
	fuzz_model_add(f, map.iova, map.size, map.vaddr,
		       map.flags & VID_MAP_RW);
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
		*iova = fuzz_win_iova(f);
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
	*size = fuzz_not_top(*iova, *size);
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
	bm->data = (__u64 *)(uintptr_t)fuzz_gen_buf(f, A_BITS, N_BITS,
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
	want = fuzz_model_unmap_set(f, iova, size, all, sel, &bytes);
	if (!all && (!size || (iova | size) & (P - 1) ||
		     iova + size - 1 < iova))
		want = -EINVAL;
	ret = fz_ioctl(f->container, VFIO_IOMMU_UNMAP_DMA, &u);
	f->count[OP_FIXUP][fuzz_err_bucket(ret)]++;
	if (ret != want)
		fz_bad(f, "the unmap after it: %s, the model says %s",
		       fuzz_res_name(ret), fuzz_res_name(want));
	if (!ret && u.size > bytes)
		fz_bad(f, "the unmap after it: 0x%llx bytes, at most 0x%llx",
		       (unsigned long long)u.size,
		       (unsigned long long)bytes);
	if (!ret && !want)
		fuzz_model_remove_set(f, sel);
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
	ret = fuzz_model_unmap_set(f, u->iova, u->size, all, sel, bytes);
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
	a.u.argsz = fuzz_gen_argsz(f, VID_UNMAP_MINSZ, full, &g);
	a.u.flags = flags;
	if (bitmap || chance(f, 1, 10))
		gen_bitmap(f, a.u.iova, a.u.size, &a.b);
	pc = fuzz_pick_pc(f);
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
		want = fuzz_model_unmap_set(f, e->a[0], e->a[1], all, sel,
					    &bytes);
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
	if (bitmap && f->edu && fuzz_mem_class((uintptr_t)a.b.data) == M_RW)
		check_all_dirty(f, (void *)a.b.data, e->a[0], a.b.pgsize, sel);
	fuzz_model_remove_set(f, sel);
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
	d.argsz = fuzz_gen_argsz(f, 8, 8, &g);
	pc = fuzz_pick_pc(f);
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
	ret = fuzz_model_unmap_set(f, r->iova, r->size, false, sel, &bytes);
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
	a.d.argsz = fuzz_gen_argsz(f, 8, sizeof(a), &g);
	pc = fuzz_pick_pc(f);
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
	if (!ret && f->edu &&
	    fuzz_mem_class((uintptr_t)a.r.bitmap.data) == M_RW)
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

static void op_unknown(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_UNKNOWN);
	unsigned long cmd;
	uint64_t arg;
	int ret;

	do
		cmd = fuzz_gen_cmd(f);
	while (known_container_cmd(cmd));
	arg = PICK(f, 0, arena_addr(A_ARGS), KADDR, 1, UINT64_MAX);
	e->a[0] = cmd;
	e->a[1] = arg;
	ret = fz_ioctl(f->container, cmd, (void *)(uintptr_t)arg);
	fz_end(f, e, ret);
	fz_expect(f, -ENOTTY, ret, "unknown command");
}

/* Read the usable IOVA ranges and page sizes from a full GET_INFO. */
int fz_learn(struct fz *f)
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

/* One call of @op, a container ioctl, with random arguments. */
void fuzz_container_op(struct fz *f, enum op op)
{
	switch (op) {
	case OP_INFO:
		fuzz_get_info(f, rnd(f, 100) < 70 ? rnd(f, INFO_SWEEP + 1) :
			      PICK(f, 0, 0xffffffffULL, 4096, 15, 16),
			      fuzz_pick_pc(f));
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
	default:
		break;
	}
}
