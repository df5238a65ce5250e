// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_test: the model of the container. The mappings it holds (sorted
 * by IOVA, at most FZ_LIMIT), which the unmap of a range takes, the
 * usable IOVA ranges, and the pages the test device holds pinned; and the
 * module's own view (debugfs) against it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* Index of the mapping holding @iova, or -1. */
int fuzz_model_at(struct fz *f, uint64_t iova)
{
	unsigned int i;

	for (i = 0; i < f->nmap; i++)
		if (iova >= f->map[i].iova && iova <= map_last(&f->map[i]))
			return i;
	return -1;
}

/* Does [@iova, @last] meet any mapping? The count of those it meets. */
unsigned int fuzz_model_meets(struct fz *f, uint64_t iova, uint64_t last)
{
	unsigned int i, n = 0;

	for (i = 0; i < f->nmap; i++)
		if (f->map[i].iova <= last && map_last(&f->map[i]) >= iova)
			n++;
	return n;
}

void fuzz_model_add(struct fz *f, uint64_t iova, uint64_t size,
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

struct fz_pin *fuzz_pin_find(struct fz *f, uint64_t iova)
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

void fuzz_pins_add(struct fz *f, uint64_t iova, uint32_t n, uint32_t flags)
{
	struct fz_pin *p;
	uint32_t k;

	for (k = 0; k < n; k++) {
		p = fuzz_pin_find(f, iova + (uint64_t)k * P);
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

uint64_t fuzz_pins_refs(struct fz *f)
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
int fuzz_model_unmap_set(struct fz *f, uint64_t iova, uint64_t size,
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
		k = fuzz_model_at(f, iova);
		if (k >= 0 && f->map[k].iova != iova)
			return -EINVAL;
		k = fuzz_model_at(f, last);
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

void fuzz_model_remove_set(struct fz *f, const bool *sel)
{
	int i;

	for (i = f->nmap - 1; i >= 0; i--)
		if (sel[i])
			model_remove(f, i);
}

bool fuzz_iova_usable(struct fz *f, uint64_t iova, uint64_t last)
{
	unsigned int i;

	if (!f->niova)
		return true;	/* no IOMMU domain: anything goes */
	for (i = 0; i < f->niova; i++)
		if (iova >= f->iova[i].start && last <= f->iova[i].end)
			return true;
	return false;
}

/* The module's own view (debugfs) against the model. */
void fuzz_check_debugfs(struct fz *f)
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
