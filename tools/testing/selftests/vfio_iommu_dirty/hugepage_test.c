// SPDX-License-Identifier: GPL-2.0
/*
 * Large pages: memory backed by transparent huge pages and by hugetlbfs is
 * mapped with block-sized IOMMU pages (as this module's debugfs view counts
 * them), a device DMA across a block boundary lands byte for byte, and
 * disable_hugepages=1 forces page-sized IOMMU pages. Accounting stays
 * exact.
 *
 * Layouts the pinning and unmapping code of vid_pin.c must get exactly
 * right (check_layout(): this module's counts against a model of the IOMMU
 * core's page split over the frames pagemap shows, locked_vm, the pins):
 * a 1 GiB hugetlb page (a 1 GiB IOMMU page; skipped unless one was
 * reserved at boot), THP cut at both ends of the mapping, THP at an IOVA
 * off a block, THP with one page replaced, a shared hugetlb block mapped
 * twice in a row (the folio's next pages sit in the pinning batch right
 * after its end), and pages no two of which are physically contiguous
 * (every page a run: the unmap's batches of runs fill exactly).
 *
 * A block is what a page table entry one level above the page maps: 2 MiB
 * with 4 KiB pages (x86-64, arm64), 32 MiB with arm64's 16 KiB pages; the
 * transparent huge page, the default hugetlbfs page and the IOMMU's block
 * (VT-d, an SMMU with the CPU's granule) all have that size.
 *
 * The page counts are this module's own view, so these tests skip against
 * the in-tree backend.
 *
 * The *_in_iommu_table tests run the same cases and also read what the
 * IOMMU driver wrote: VT-d's page table of edu as the Intel driver's
 * debugfs walks it (CONFIG_INTEL_IOMMU_DEBUGFS, the debug lane's kernel).
 * Each leaf there must be the one the memory layout asks for (a 2 MiB
 * leaf for a block-aligned run of 512 physically contiguous pages, unless
 * disable_hugepages is set, else 4 KiB leaves), at the page frame
 * /proc/self/pagemap gives, readable and writable, and their numbers must
 * be this module's counts. Where that debugfs is absent (Debian's kernels,
 * arm64's SMMUv3) they skip, and expected-skips says so per lane.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define BLOCK		block_size()
#define BUF_SZ		(4 * BLOCK)
#define EDU_DMA_LIMIT	(256ULL << 20)	/* edu masks DMA addresses to 28 bits */
#define DEBUGFS		"/sys/kernel/debug/vfio_iommu_dirty"
#define HUGEPAGES	"/proc/sys/vm/nr_hugepages"
#define NO_HUGE_PARAM	"/sys/module/vfio_iommu_dirty/parameters/disable_hugepages"
#define VTD_DEBUGFS	"/sys/kernel/debug/iommu/intel"

/* VT-d second-level entry bits (drivers/iommu/intel/iommu.h). */
#define VTD_PTE_READ	0x1ULL
#define VTD_PTE_WRITE	0x2ULL
#define VTD_PTE_LARGE	0x80ULL
#define VTD_PTE_ADDR	0x000ffffffffff000ULL
#define VTD_4K		0x1000ULL
#define VTD_2M		0x200000ULL

/*
 * Read @key from the state file of the only container open (the test
 * holds one container at a time). -errno if absent.
 */
static long state_value(const char *key)
{
	char path[300], line[128];
	struct dirent *de;
	long val = -ENOENT;
	size_t klen = strlen(key);
	DIR *dir = opendir(DEBUGFS);
	FILE *f = NULL;

	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), DEBUGFS "/%s/state", de->d_name);
		f = fopen(path, "r");
		break;
	}
	closedir(dir);
	if (!f)
		return -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			val = strtol(line + klen + 1, NULL, 0);
			break;
		}
	}
	fclose(f);
	return val;
}

/* A table of the CPU's page size holds page size / 8 entries. */
static unsigned long block_size(void)
{
	return VID_PAGE * (VID_PAGE / 8);
}

/* The debugfs key of IOMMU pages of @size: "iommu_pages_2M" and so on. */
static const char *pages_key(unsigned long size, char *buf, size_t len)
{
	static const char units[] = "KMGTP";
	int u = 0;

	size >>= 10;
	while (size >= 1024 && !(size & 1023) && units[u + 1]) {
		size >>= 10;
		u++;
	}
	snprintf(buf, len, "iommu_pages_%lu%c", size, units[u]);
	return buf;
}

/*
 * A block-aligned IOVA for @size bytes below edu's DMA limit: 64 MiB
 * where that fits (x86-64, arm64 with 4 KiB pages), else the lowest that
 * does (32 MiB blocks fit only below Arm's MSI window at 128 MiB). 0 and
 * a failed ASSERT when none does.
 */
static uint64_t huge_iova(int container, uint64_t size)
{
	uint64_t iova = 0x4000000;

	if (!vid_iova_fit(container, &iova, size, BLOCK) &&
	    iova + size <= EDU_DMA_LIMIT)
		return iova;
	iova = 0;
	if (!vid_iova_fit(container, &iova, size, BLOCK) &&
	    iova + size <= EDU_DMA_LIMIT)
		return iova;
	return UINT64_MAX;
}

static int write_str(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");
	int ret = 0;

	if (!f)
		return -errno;
	if (fputs(val, f) < 0)
		ret = -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (!f)
		return -errno;
	if (fscanf(f, "%ld", &v) != 1)
		v = -EIO;
	fclose(f);
	return v;
}

/* A boolean module parameter: 1 (Y) or 0 (N), or -errno. */
static long read_bool(const char *path)
{
	FILE *f = fopen(path, "r");
	int c;

	if (!f)
		return -errno;
	c = fgetc(f);
	fclose(f);
	return c == 'Y' ? 1 : c == 'N' ? 0 : -EIO;
}

/* Block-aligned anonymous memory, THP requested, touched. */
static char *thp_alloc(size_t size)
{
	size_t span = size + BLOCK;
	char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;

	if (raw == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)raw + BLOCK - 1) & ~(BLOCK - 1));
	if (p > raw)
		munmap(raw, p - raw);
	munmap(p + size, raw + span - (p + size));
	madvise(p, size, MADV_HUGEPAGE);
	memset(p, 0x11, size);
	return p;
}

/* kB of AnonHugePages in this process (THP actually used). */
static long anon_huge_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[128];
	long kb = -1;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* The default hugetlbfs page size in kB (/proc/meminfo), or -errno. */
static long hugetlb_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	long kb = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * The page frame of each of the @n pages at @va, from /proc/self/pagemap
 * (root sees frame numbers): 0, -ENODATA if a page is not present, or
 * -errno.
 */
static int page_frames(const void *va, size_t n, uint64_t *pfn)
{
	off_t off = (off_t)((uintptr_t)va / VID_PAGE * sizeof(*pfn));
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t got;
	size_t i;

	if (fd < 0)
		return -errno;
	got = pread(fd, pfn, n * sizeof(*pfn), off);
	close(fd);
	if (got < 0)
		return -errno;
	if ((size_t)got != n * sizeof(*pfn))
		return -EIO;
	for (i = 0; i < n; i++) {
		/* Bit 63: present; bits 0-54: the frame (0 if hidden). */
		if (!(pfn[i] >> 63))
			return -ENODATA;
		pfn[i] &= (1ULL << 55) - 1;
		if (!pfn[i])
			return -EPERM;
	}
	return 0;
}

/* One present leaf of a VT-d page table. */
struct vtd_leaf {
	uint64_t iova;
	uint64_t size;		/* 4 KiB, 2 MiB or 1 GiB */
	uint64_t pte;		/* the leaf entry itself */
};

/* What domain_translation_struct showed. */
struct vtd_table {
	char dev[32];		/* from "Device SSSS:BB:DD.F ..." */
	bool scalable;		/* "with pasid N": scalable mode */
	unsigned int pasid;
	int nr;
	struct vtd_leaf *leaf;	/* in IOVA order, as the walk goes */
};

/*
 * edu's domain_translation_struct file, in @path: true, or false after
 * SKIP when the kernel has no VT-d debugfs at all. A VT-d debugfs without
 * edu's file fails the test.
 */
static bool vtd_table_path(struct __test_metadata *_metadata, char *path,
			   size_t len)
{
	if (access(VTD_DEBUGFS, F_OK))
		SKIP(return false,
		     "no IOMMU page table in debugfs (%s): not VT-d, or no CONFIG_INTEL_IOMMU_DEBUGFS",
		     VTD_DEBUGFS);
	snprintf(path, len, VTD_DEBUGFS "/%s/domain_translation_struct",
		 vid_edu_bdf());
	EXPECT_EQ(0, access(path, R_OK)) TH_LOG("%s: %s", path,
						strerror(errno));
	ASSERT_EQ(4096, VID_PAGE);
	return !access(path, R_OK);
}

/* One leaf line: "0x<IOVA PFN, 13 digits> |" and its path of entries. */
static int vtd_parse_leaf(const char *line, struct vtd_leaf *leaf)
{
	const char *p = line;
	uint64_t e[6];
	char *end;
	int n = 0;

	leaf->iova = strtoull(p, &end, 16) << 12;
	if (end != p + 15 || strncmp(end, " |", 2))
		return -EPROTO;
	p = end + 2;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || !*p)
			break;
		if (n == 6 || strncmp(p, "0x", 2))
			return -EPROTO;
		e[n++] = strtoull(p, &end, 16);
		if (end != p + 18)
			return -EPROTO;
		p = end;
	}
	/* PML5E, PML4E, PDPE: a 1 GiB leaf; with PDE 2 MiB; with PTE 4 KiB. */
	if (n < 3 || n > 5)
		return -EPROTO;
	leaf->size = VTD_4K << (9 * (5 - n));
	leaf->pte = e[n - 1];
	return 0;
}

/*
 * Read edu's VT-d page table as the Intel driver's debugfs shows it
 * (domain_translation_struct_show() in drivers/iommu/intel/debugfs.c): a
 * "Device ..." line, a column header, then one line per present leaf. 0
 * or -errno; -EPROTO for any line not in that format. Free t->leaf.
 */
static int vtd_read_table(const char *path, struct vtd_table *t)
{
	unsigned int seg, bus, slot, fn;
	unsigned long long pgd;
	FILE *f = fopen(path, "r");
	size_t cap = 0, len = 0;
	char *line = NULL;
	bool header = false;
	int ret = 0;

	memset(t, 0, sizeof(*t));
	if (!f)
		return -errno;
	while (!ret && getline(&line, &len, f) > 0) {
		if (!header) {
			char mode[8] = "";

			if (sscanf(line, "Device %x:%x:%x.%x %7s", &seg, &bus,
				   &slot, &fn, mode) != 5) {
				ret = -EPROTO;
				break;
			}
			snprintf(t->dev, sizeof(t->dev), "%04x:%02x:%02x.%x",
				 seg, bus, slot, fn);
			t->scalable = !strcmp(mode, "with");
			if (t->scalable)
				ret = sscanf(line, "%*s %*s with pasid %x @0x%llx",
					     &t->pasid, &pgd) == 2 ? 0 : -EPROTO;
			else
				ret = sscanf(line, "%*s %*s @0x%llx",
					     &pgd) == 1 ? 0 : -EPROTO;
			header = true;
			continue;
		}
		if (!strncmp(line, "IOVA_PFN", 8))
			continue;
		if ((size_t)t->nr == cap) {
			struct vtd_leaf *more;

			cap = cap ? 2 * cap : 1024;
			more = realloc(t->leaf, cap * sizeof(*more));
			if (!more) {
				ret = -ENOMEM;
				break;
			}
			t->leaf = more;
		}
		ret = vtd_parse_leaf(line, &t->leaf[t->nr]);
		if (!ret)
			t->nr++;
	}
	free(line);
	fclose(f);
	/* No "Device" line: the device has no paging domain to show. */
	if (!ret && !header)
		ret = -ENODATA;
	return ret;
}

/*
 * Read edu's table into @t and check what is always true of it here:
 * the device is edu, in legacy mode (QEMU's intel-iommu without
 * x-scalable-mode; scalable mode would show its PASID 0 table, with
 * other entry bits).
 */
static void vtd_table(struct __test_metadata *_metadata, const char *path,
		      struct vtd_table *t)
{
	int ret = vtd_read_table(path, t);

	ASSERT_EQ(0, ret) TH_LOG("%s: %s", path, strerror(-ret));
	ASSERT_STREQ(vid_edu_bdf(), t->dev);
	ASSERT_FALSE(t->scalable)
		TH_LOG("scalable mode (pasid %u): the leaves are not second-level entries",
		       t->pasid);
}

/*
 * @l is a leaf of @size bytes at @iova that maps page frame @pfn,
 * readable and writable.
 */
static void check_leaf(struct __test_metadata *_metadata,
		       const struct vtd_leaf *l, uint64_t iova, uint64_t size,
		       uint64_t pfn)
{
	const unsigned long long pte = l->pte;

	ASSERT_EQ(iova, l->iova)
		TH_LOG("leaf at IOVA 0x%llx, want 0x%llx",
		       (unsigned long long)l->iova, (unsigned long long)iova);
	ASSERT_EQ(size, l->size)
		TH_LOG("IOVA 0x%llx: a leaf of 0x%llx bytes, want 0x%llx",
		       (unsigned long long)iova, (unsigned long long)l->size,
		       (unsigned long long)size);
	ASSERT_EQ(pfn << 12, pte & VTD_PTE_ADDR)
		TH_LOG("IOVA 0x%llx: entry 0x%llx, page frame 0x%llx",
		       (unsigned long long)iova, pte, (unsigned long long)pfn);
	ASSERT_EQ(VTD_PTE_READ | VTD_PTE_WRITE,
		  pte & (VTD_PTE_READ | VTD_PTE_WRITE))
		TH_LOG("IOVA 0x%llx: entry 0x%llx", (unsigned long long)iova,
		       pte);
	ASSERT_EQ(size > VTD_4K ? VTD_PTE_LARGE : 0, pte & VTD_PTE_LARGE)
		TH_LOG("IOVA 0x%llx: entry 0x%llx", (unsigned long long)iova,
		       pte);
}

/*
 * The IOMMU driver's table holds exactly the mapping of @size bytes of
 * @buf at @iova, in the leaves the memory layout asks for: for each
 * block-aligned IOVA block whose pages are one physically contiguous,
 * block-aligned run, a 2 MiB leaf (4 KiB leaves when disable_hugepages
 * is set); for any other block, a 4 KiB leaf per page. Each leaf maps the
 * page frame pagemap gives, readable and writable; nothing else is
 * present. The numbers of 2 MiB and 4 KiB leaves are this module's counts
 * (@kblk, @kpage) and @want_blocks blocks are 2 MiB leaves.
 */
static void check_vtd_table(struct __test_metadata *_metadata,
			    const char *path, uint64_t iova, const char *buf,
			    size_t size, long want_blocks, const char *kblk,
			    const char *kpage)
{
	const size_t npages = size / VTD_4K, per_blk = VTD_2M / VTD_4K;
	uint64_t *pfn = calloc(npages, sizeof(*pfn));
	long nohuge = read_bool(NO_HUGE_PARAM);
	long leaves_2m = 0, leaves_4k = 0, blocks = 0;
	struct vtd_table t;
	size_t b, k;
	int i, ret;

	ASSERT_NE(NULL, pfn);
	ASSERT_LE(0, nohuge);
	ret = page_frames(buf, npages, pfn);
	ASSERT_EQ(0, ret) TH_LOG("pagemap: %s", strerror(-ret));
	vtd_table(_metadata, path, &t);

	for (i = 0; i < t.nr; i++) {
		if (t.leaf[i].size == VTD_2M)
			leaves_2m++;
		else if (t.leaf[i].size == VTD_4K)
			leaves_4k++;
	}
	EXPECT_EQ(state_value(kblk), leaves_2m)
		TH_LOG("2 MiB leaves in the IOMMU driver's table, against this module's %s",
		       kblk);
	EXPECT_EQ(state_value(kpage), leaves_4k)
		TH_LOG("4 KiB leaves in the IOMMU driver's table, against this module's %s",
		       kpage);

	i = 0;
	for (b = 0; b < size / VTD_2M; b++) {
		const uint64_t *bp = pfn + b * per_blk;
		const uint64_t biova = iova + b * VTD_2M;
		bool contig = !(bp[0] % per_blk);

		for (k = 1; contig && k < per_blk; k++)
			contig = bp[k] == bp[0] + k;
		for (k = 0; k < per_blk; k++) {
			const uint64_t want_sz = contig && !nohuge ?
						 VTD_2M : VTD_4K;
			const uint64_t want_iova = biova + k * VTD_4K;

			if (want_sz == VTD_2M && k)
				break;
			ASSERT_LT(i, t.nr)
				TH_LOG("no leaf for IOVA 0x%llx",
				       (unsigned long long)want_iova);
			check_leaf(_metadata, &t.leaf[i], want_iova, want_sz,
				   bp[k]);
			i++;
		}
		if (contig && !nohuge)
			blocks++;
		/*
		 * disable_hugepages is set only on hugetlbfs memory here:
		 * each block would have been a 2 MiB leaf without it.
		 */
		ASSERT_TRUE(contig || !nohuge)
			TH_LOG("hugetlbfs block at IOVA 0x%llx not contiguous",
			       (unsigned long long)biova);
	}
	ASSERT_EQ(i, t.nr) TH_LOG("leaves beyond the mapping, first at IOVA 0x%llx",
				  (unsigned long long)t.leaf[i].iova);
	ASSERT_EQ(want_blocks, blocks)
		TH_LOG("blocks the memory layout maps with 2 MiB leaves");
	free(t.leaf);
	free(pfn);
}

/* The IOMMU driver's table of edu holds no leaf at all. */
static void check_vtd_empty(struct __test_metadata *_metadata,
			    const char *path)
{
	struct vtd_table t;

	vtd_table(_metadata, path, &t);
	ASSERT_EQ(0, t.nr) TH_LOG("first leaf at IOVA 0x%llx",
				  (unsigned long long)t.leaf[0].iova);
	free(t.leaf);
}

/* The IOMMU page sizes counted: the CPU's page, its block, the next level. */
static uint64_t level_size(int level)
{
	uint64_t size = VID_PAGE;

	while (level--)
		size *= VID_PAGE / 8;
	return size;
}

/* The pool of hugetlb pages of the next level's size (1 GiB on x86-64). */
static const char *gig_pool(char *buf, size_t len)
{
	snprintf(buf, len, "/sys/kernel/mm/hugepages/hugepages-%llukB/nr_hugepages",
		 (unsigned long long)(level_size(2) >> 10));
	return buf;
}

/* IOMMU pages of each size (level_size()) a layout asks for. */
struct layout {
	long pages[3];
};

/*
 * The leaves the IOMMU core hands the driver for the @n pages at @iova
 * whose page frames are @pfn: each run of physically contiguous pages
 * (each page alone with disable_hugepages) is mapped with one iommu_map(),
 * which takes, page after page, the largest size that the IOVA and the
 * address are both aligned to and that still fits (iommu_pgsize()). Every
 * size of level_size() is offered (VT-d and an SMMU with the CPU's
 * granule). Counts them by size in @l and, if @leaf is not NULL, stores
 * them there in IOVA order (at most @n). Returns how many.
 */
static size_t model_leaves(uint64_t iova, const uint64_t *pfn, size_t n,
			   bool nohuge, struct layout *l, struct vtd_leaf *leaf)
{
	size_t i = 0, j, nr = 0;
	int lvl;

	memset(l, 0, sizeof(*l));
	while (i < n) {
		uint64_t va = iova + i * VID_PAGE, pa = pfn[i] * VID_PAGE;
		uint64_t left;

		for (j = i + 1; !nohuge && j < n && pfn[j] == pfn[j - 1] + 1;)
			j++;
		left = (j - i) * VID_PAGE;
		while (left) {
			for (lvl = 2; lvl > 0; lvl--)
				if (left >= level_size(lvl) &&
				    !((va | pa) & (level_size(lvl) - 1)))
					break;
			if (leaf) {
				leaf[nr].iova = va;
				leaf[nr].size = level_size(lvl);
				leaf[nr].pte = pa / VID_PAGE;
			}
			nr++;
			l->pages[lvl]++;
			va += level_size(lvl);
			pa += level_size(lvl);
			left -= level_size(lvl);
		}
		i = j;
	}
	return nr;
}

/*
 * edu reads 2 KiB at offset @src of the mapping at @iova and writes them
 * back at offset @dst: both must then hold the bytes the CPU sees at @src.
 */
static void edu_copy(struct __test_metadata *_metadata, struct vid_ctx *ctx,
		     char *buf, uint64_t iova, long src, long dst)
{
	struct vid_edu edu;
	int i;

	ASSERT_GE(EDU_DMA_LIMIT, iova + src + 2048);
	ASSERT_GE(EDU_DMA_LIMIT, iova + dst + 2048);
	memset(buf + dst, 0, 2048);
	VID_ASSERT_OK(vid_edu_open(ctx, &edu));
	VID_ASSERT_OK(vid_edu_dma(&edu, iova + src, 0, 2048, false));
	VID_ASSERT_OK(vid_edu_dma(&edu, iova + dst, 0, 2048, true));
	for (i = 0; i < 2048; i++) {
		ASSERT_EQ(buf[src + i], buf[dst + i])
			TH_LOG("byte %d of the copy of offset 0x%lx", i, src);
	}
}

/*
 * Map @size bytes of @buf at @iova and check the IOMMU pages exactly: the
 * layout pagemap shows must be @want (what the test built), this module's
 * counts must be that layout's, and with @table (edu's VT-d table) the
 * IOMMU driver's leaves must be the model's one by one, each at its page
 * frame, readable and writable. With @dirty, tracking runs during the
 * mapping and both GET_BITMAP and the unmap's bitmap must have exactly the
 * mapping's pages set. With @dma, edu copies 2 KiB from offset dma[0] of
 * the mapping to offset dma[1] (edu_copy()). After the unmap, locked_vm,
 * the pins and the counts are back and the IOMMU table is empty again.
 */
static void check_layout(struct __test_metadata *_metadata,
			 struct vid_ctx *ctx, char *buf, size_t size,
			 uint64_t iova, const struct layout *want,
			 const char *table, bool dirty, const long dma[2])
{
	const size_t npages = size / VID_PAGE;
	const size_t nwords = (npages + 63) / 64;
	uint64_t *pfn = calloc(npages, sizeof(*pfn));
	uint64_t *bits = calloc(nwords + 1, sizeof(*bits));
	struct vtd_leaf *leaf = calloc(npages, sizeof(*leaf));
	long nohuge = read_bool(NO_HUGE_PARAM);
	struct vid_acct before, after;
	uint64_t got;
	struct layout l;
	char key[32];
	size_t nr, k;
	int lvl, ret;

	ASSERT_NE(NULL, pfn);
	ASSERT_NE(NULL, bits);
	ASSERT_NE(NULL, leaf);
	ASSERT_LE(0, nohuge);
	VID_ASSERT_OK(vid_acct_read(&before));
	if (table)
		check_vtd_empty(_metadata, table);
	VID_ASSERT_OK(vid_map(ctx->container, iova, buf, size, VID_MAP_RW));
	ASSERT_EQ(before.vmlck_kb + (long)(size >> 10), vid_vmlck_kb());

	ret = page_frames(buf, npages, pfn);
	ASSERT_EQ(0, ret) TH_LOG("pagemap: %s", strerror(-ret));
	nr = model_leaves(iova, pfn, npages, nohuge, &l, leaf);
	for (lvl = 0; lvl < 3; lvl++) {
		pages_key(level_size(lvl), key, sizeof(key));
		ASSERT_EQ(want->pages[lvl], l.pages[lvl])
			TH_LOG("the layout asks for %ld IOMMU pages of %s, not %ld",
			       l.pages[lvl], key + 12, want->pages[lvl]);
		ASSERT_EQ(l.pages[lvl], state_value(key)) TH_LOG("%s", key);
	}
	if (table) {
		struct vtd_table t;

		vtd_table(_metadata, table, &t);
		ASSERT_EQ(nr, (size_t)t.nr)
			TH_LOG("leaves in the IOMMU driver's table");
		for (k = 0; k < nr; k++)
			check_leaf(_metadata, &t.leaf[k], leaf[k].iova,
				   leaf[k].size, leaf[k].pte);
		free(t.leaf);
	}
	if (dma)
		edu_copy(_metadata, ctx, buf, iova, dma[0], dma[1]);

	if (dirty) {
		VID_ASSERT_OK(vid_dirty_op(ctx->container, 8,
					   VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
		VID_ASSERT_OK(vid_get_bitmap(ctx->container, 0, iova, size,
					     VID_PAGE, bits, nwords * 8));
		for (k = 0; k < nwords * 64; k++) {
			ASSERT_EQ(k < npages, bits[k / 64] >> (k % 64) & 1)
				TH_LOG("GET_BITMAP: bit %zu of %zu pages", k,
				       npages);
		}
		memset(bits, 0, (nwords + 1) * sizeof(*bits));
		VID_ASSERT_OK(vid_unmap_bitmap(ctx->container, 0, iova, size,
					       VID_PAGE, bits, nwords * 8, &got));
		ASSERT_EQ(size, got);
		for (k = 0; k < (nwords + 1) * 64; k++) {
			ASSERT_EQ(k < npages, bits[k / 64] >> (k % 64) & 1)
				TH_LOG("unmap's bitmap: bit %zu of %zu pages",
				       k, npages);
		}
		VID_ASSERT_OK(vid_dirty_op(ctx->container, 8,
					   VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
	} else {
		VID_ASSERT_UNMAP(ctx->container, iova, size, size);
	}
	VID_ASSERT_OK(vid_acct_read(&after));
	ASSERT_EQ(before.vmlck_kb, after.vmlck_kb);
	ASSERT_EQ(before.pinned, after.pinned) TH_LOG("pinned pages");
	for (lvl = 0; lvl < 3; lvl++) {
		pages_key(level_size(lvl), key, sizeof(key));
		ASSERT_EQ(0, state_value(key)) TH_LOG("%s", key);
	}
	if (table)
		check_vtd_empty(_metadata, table);
	free(leaf);
	free(bits);
	free(pfn);
}

/* A block-aligned IOVA for @size bytes (huge_iova()), asserted. */
static uint64_t layout_iova(struct __test_metadata *_metadata, int container,
			    uint64_t size)
{
	uint64_t iova = huge_iova(container, size);

	ASSERT_NE(UINT64_MAX, iova) TH_LOG("no IOVA below 256 MiB");
	return iova;
}

FIXTURE(huge) {
	struct vid_ctx ctx;
	struct vid_acct base;
	long nr_huge_saved;
};

FIXTURE_SETUP(huge)
{
	vid_ctx_init(&self->ctx);
	self->nr_huge_saved = -1;
	if (!vid_prepare(_metadata))
		return;
	if (vid_backend_intree())
		SKIP(return, "IOMMU page counts come from this module's debugfs");
	VID_ASSERT_OK(vid_acct_read(&self->base));
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(0, state_value("mappings"));
}

FIXTURE_TEARDOWN(huge)
{
	vid_ctx_close(&self->ctx);
	write_str(NO_HUGE_PARAM, "N");
	if (self->nr_huge_saved >= 0) {
		char buf[32];

		snprintf(buf, sizeof(buf), "%ld", self->nr_huge_saved);
		write_str(HUGEPAGES, buf);
	}
	VID_EXPECT_ACCT(&self->base);
}

/*
 * Map @buf, check the page split and the charge, DMA across a block. With
 * @table (edu's VT-d table in debugfs), also check the IOMMU driver's
 * table: empty before, exactly the mapping after, empty after the unmap.
 */
static void map_and_check(struct __test_metadata *_metadata,
			  struct vid_ctx *ctx, char *buf, long want_blocks,
			  const char *table)
{
	const unsigned long blk = BLOCK, huge = blk * (VID_PAGE / 8);
	const uint64_t iova = huge_iova(ctx->container, BUF_SZ);
	long vmlck0 = vid_vmlck_kb();
	char kpage[32], kblk[32], khuge[32];
	struct vid_edu edu;
	int i;

	ASSERT_NE(UINT64_MAX, iova) TH_LOG("no IOVA for 4 blocks below 256 MiB");
	pages_key(VID_PAGE, kpage, sizeof(kpage));
	pages_key(blk, kblk, sizeof(kblk));
	pages_key(huge, khuge, sizeof(khuge));
	if (table)
		check_vtd_empty(_metadata, table);
	VID_ASSERT_OK(vid_map(ctx->container, iova, buf, BUF_SZ, VID_MAP_RW));
	ASSERT_EQ(vmlck0 + (long)(BUF_SZ >> 10), vid_vmlck_kb());
	if (table)
		check_vtd_table(_metadata, table, iova, buf, BUF_SZ,
				want_blocks, kblk, kpage);
	ASSERT_EQ(want_blocks, state_value(kblk)) TH_LOG("%s", kblk);
	ASSERT_EQ((long)((BUF_SZ - want_blocks * blk) / VID_PAGE),
		  state_value(kpage)) TH_LOG("%s", kpage);
	ASSERT_EQ(0, state_value(khuge)) TH_LOG("%s", khuge);

	/* 2 KiB read across the first block boundary, written back past it. */
	for (i = 0; i < 2048; i++)
		buf[blk - 1024 + i] = (char)(i ^ 0x5a);
	memset(buf + 3 * blk - 1024, 0, 2048);
	VID_ASSERT_OK(vid_edu_open(ctx, &edu));
	VID_ASSERT_OK(vid_edu_dma(&edu, iova + blk - 1024, 0, 2048, false));
	VID_ASSERT_OK(vid_edu_dma(&edu, iova + 3 * blk - 1024, 0, 2048,
				  true));
	ASSERT_EQ(0, memcmp(buf + blk - 1024, buf + 3 * blk - 1024, 2048));

	VID_ASSERT_UNMAP(ctx->container, iova, BUF_SZ, BUF_SZ);
	ASSERT_EQ(vmlck0, vid_vmlck_kb());
	ASSERT_EQ(0, state_value(kblk));
	if (table)
		check_vtd_empty(_metadata, table);
}

/*
 * The IOMMU driver offers the block size: the module's GET_INFO says so
 * (with QEMU's intel-iommu: 4 KiB, 2 MiB and 1 GiB, 0x40201000).
 */
static void assert_block_offered(struct __test_metadata *_metadata,
				 int container)
{
	struct vfio_iommu_type1_info info = { .argsz = VID_INFO_MINSZ };

	ASSERT_EQ(0, ioctl(container, VFIO_IOMMU_GET_INFO, &info))
		TH_LOG("GET_INFO: %s", strerror(errno));
	ASSERT_TRUE(info.flags & VFIO_IOMMU_INFO_PGSIZES);
	ASSERT_EQ(0x40201000ULL, info.iova_pgsizes)
		TH_LOG("iova_pgsizes 0x%llx",
		       (unsigned long long)info.iova_pgsizes);
}

/*
 * The cases, each run twice: on this module's counts alone and, as
 * *_in_iommu_table, also on the IOMMU driver's table (@table: find it,
 * or skip where the kernel has none).
 */
static void thp_case(struct __test_metadata *_metadata,
		     struct vid_ctx *ctx, bool table)
{
	char path[256], *buf;

	if (table && !vtd_table_path(_metadata, path, sizeof(path)))
		return;
	buf = thp_alloc(BUF_SZ);
	ASSERT_NE(NULL, buf);
	if (anon_huge_kb() < (long)(BUF_SZ >> 10)) {
		munmap(buf, BUF_SZ);
		SKIP(return, "the kernel gave no transparent huge pages");
	}
	if (table)
		assert_block_offered(_metadata, ctx->container);
	map_and_check(_metadata, ctx, buf, BUF_SZ / BLOCK,
		      table ? path : NULL);
	munmap(buf, BUF_SZ);
}

static void hugetlbfs_case(struct __test_metadata *_metadata,
			   struct vid_ctx *ctx, long *nr_huge_saved, bool table)
{
	char path[256], *buf;

	if (table && !vtd_table_path(_metadata, path, sizeof(path)))
		return;
	ASSERT_EQ((long)(BLOCK >> 10), hugetlb_kb())
		TH_LOG("the default hugetlbfs page is not the block size");
	*nr_huge_saved = read_long(HUGEPAGES);
	ASSERT_LE(0, *nr_huge_saved);
	VID_ASSERT_OK(write_str(HUGEPAGES, "8"));
	ASSERT_LE(4, read_long(HUGEPAGES));
	buf = mmap(NULL, BUF_SZ, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0x22, BUF_SZ);
	if (table)
		assert_block_offered(_metadata, ctx->container);
	map_and_check(_metadata, ctx, buf, BUF_SZ / BLOCK,
		      table ? path : NULL);
	munmap(buf, BUF_SZ);
}

/*
 * hugetlbfs memory, whose blocks would be 2 MiB leaves (the table check
 * sees them contiguous), mapped page by page.
 */
static void disable_hugepages_case(struct __test_metadata *_metadata,
				   struct vid_ctx *ctx, long *nr_huge_saved,
				   bool table)
{
	char path[256], *buf;

	if (table && !vtd_table_path(_metadata, path, sizeof(path)))
		return;
	*nr_huge_saved = read_long(HUGEPAGES);
	VID_ASSERT_OK(write_str(HUGEPAGES, "8"));
	buf = mmap(NULL, BUF_SZ, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0x33, BUF_SZ);
	VID_ASSERT_OK(write_str(NO_HUGE_PARAM, "Y"));
	map_and_check(_metadata, ctx, buf, 0, table ? path : NULL);
	munmap(buf, BUF_SZ);
}

/* Plain memory: no accidental block pages. */
static void small_pages_case(struct __test_metadata *_metadata,
			     struct vid_ctx *ctx, bool table)
{
	char path[256], *buf;

	if (table && !vtd_table_path(_metadata, path, sizeof(path)))
		return;
	buf = mmap(NULL, BUF_SZ, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	madvise(buf, BUF_SZ, MADV_NOHUGEPAGE);
	memset(buf, 0x44, BUF_SZ);
	map_and_check(_metadata, ctx, buf, 0, table ? path : NULL);
	munmap(buf, BUF_SZ);
}

/*
 * A hugetlb page of the next level's size (1 GiB with 4 KiB pages, a PUD)
 * at an IOVA aligned to it: one IOMMU page of that size. Only a page
 * reserved at boot is taken (hugepagesz=1G hugepages=1: make check's x86
 * lanes boot so): one allocated at run time exists on some boots and not
 * on others.
 */
static void gig_case(struct __test_metadata *_metadata, struct vid_ctx *ctx,
		     bool table)
{
	const uint64_t gig = level_size(2);
	const struct layout want = { .pages = { 0, 0, 1 } };
	const long dma[2] = { BLOCK - 1024, 3 * BLOCK - 1024 };
	char path[256], pool[128], *buf;
	uint64_t iova = 0;
	long i;

	if (table && !vtd_table_path(_metadata, path, sizeof(path)))
		return;
	gig_pool(pool, sizeof(pool));
	if (read_long(pool) < 1)
		SKIP(return, "no %llu MiB hugetlb page reserved at boot (%s)",
		     (unsigned long long)(gig >> 20), pool);
	VID_ASSERT_OK(vid_iova_fit(ctx->container, &iova, gig, gig));
	buf = mmap(NULL, gig, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
		   __builtin_ctzll(gig) << MAP_HUGE_SHIFT, -1, 0);
	ASSERT_NE(MAP_FAILED, buf) TH_LOG("mmap: %s", strerror(errno));
	for (i = 0; i < 4 * (long)BLOCK; i++)
		buf[i] = (char)(i * 7 + (i >> 12));
	check_layout(_metadata, ctx, buf, gig, iova, &want,
		     table ? path : NULL, false, dma);
	munmap(buf, gig);
}

/* 4 blocks of THP, block-aligned; NULL (after SKIP) if there are none. */
static char *thp_blocks(struct __test_metadata *_metadata)
{
	char *buf = thp_alloc(BUF_SZ);
	long i;

	if (!buf)
		return NULL;
	if (anon_huge_kb() < (long)(BUF_SZ >> 10)) {
		munmap(buf, BUF_SZ);
		SKIP(return NULL, "the kernel gave no transparent huge pages");
	}
	for (i = 0; i < (long)BUF_SZ; i += 64)
		buf[i] = (char)(i >> 6);
	return buf;
}

/*
 * THP mapped from its second page to its next-to-last, at an IOVA with
 * the same offset into a block: the first and last folios are cut, so
 * their pages are page-sized IOMMU pages and only the two whole blocks
 * are block-sized. Pinning starts in a folio's middle and its batches
 * end one page into a folio; the unmap's walk starts off a block. The
 * dirty bitmaps are exactly the mapping's pages.
 */
static void thp_mid_folio_case(struct __test_metadata *_metadata,
			       struct vid_ctx *ctx, bool table)
{
	const long per_blk = BLOCK / VID_PAGE;
	const struct layout want = { .pages = { 2 * (per_blk - 1), 2, 0 } };
	const long dma[2] = { BLOCK - VID_PAGE - 1024,
			      3 * BLOCK - VID_PAGE - 1024 };
	uint64_t iova;
	char path[256], *buf;

	if (table && !vtd_table_path(_metadata, path, sizeof(path)))
		return;
	buf = thp_blocks(_metadata);
	if (!buf)
		return;
	iova = layout_iova(_metadata, ctx->container, BUF_SZ) + VID_PAGE;
	check_layout(_metadata, ctx, buf + VID_PAGE, BUF_SZ - 2 * VID_PAGE,
		     iova, &want, table ? path : NULL, true, dma);
	munmap(buf, BUF_SZ);
}

/*
 * Three whole blocks of THP at an IOVA one page off a block: the IOVA and
 * the address are never aligned together, so every IOMMU page is
 * page-sized. (Three: with 32 MiB blocks, four and the page off do not
 * fit below Arm's MSI window.)
 */
static void thp_iova_off_case(struct __test_metadata *_metadata,
			      struct vid_ctx *ctx, bool table)
{
	const size_t size = BUF_SZ - BLOCK;
	const struct layout want = { .pages = { size / VID_PAGE, 0, 0 } };
	const long dma[2] = { BLOCK - 1024, 2 * BLOCK + 1024 };
	uint64_t iova;
	char path[256], *buf;

	if (table && !vtd_table_path(_metadata, path, sizeof(path)))
		return;
	buf = thp_blocks(_metadata);
	if (!buf)
		return;
	iova = layout_iova(_metadata, ctx->container, BUF_SZ) + VID_PAGE;
	check_layout(_metadata, ctx, buf, size, iova, &want,
		     table ? path : NULL, true, dma);
	munmap(buf, BUF_SZ);
}

/*
 * THP whose second block has one page in its middle replaced by a page
 * of its own (MAP_FIXED splits the PMD; the folio stays whole): the
 * folio's next page is not the next page of the mapping there, so that
 * block is page-sized IOMMU pages and the device reads the new page's
 * bytes, not the folio's.
 */
static void thp_replaced_case(struct __test_metadata *_metadata,
			      struct vid_ctx *ctx, bool table)
{
	const long per_blk = BLOCK / VID_PAGE;
	const long hole = BLOCK + per_blk / 2 * VID_PAGE;
	const struct layout want = { .pages = { per_blk, 3, 0 } };
	const long dma[2] = { hole + 1024, 3 * BLOCK + 1024 };
	uint64_t iova;
	char path[256], *buf, *page;
	long i;

	if (table && !vtd_table_path(_metadata, path, sizeof(path)))
		return;
	buf = thp_blocks(_metadata);
	if (!buf)
		return;
	page = mmap(buf + hole, VID_PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	ASSERT_EQ(buf + hole, page) TH_LOG("mmap: %s", strerror(errno));
	for (i = 0; i < (long)VID_PAGE; i++)
		page[i] = (char)(i ^ 0xa5);
	iova = layout_iova(_metadata, ctx->container, BUF_SZ);
	check_layout(_metadata, ctx, buf, BUF_SZ, iova, &want,
		     table ? path : NULL, false, dma);
	munmap(buf, BUF_SZ);
}

/*
 * One shared hugetlb block mapped twice, back to back, mapped from its
 * second page to the next-to-last page of its second view, at an IOVA
 * with the same offset into a block. Each view is cut, so every IOMMU page
 * is page-sized. The last pinning batch ends one page before the folio
 * does, and the batch before it left the folio's next page at the very
 * entry that follows: only the batch's end stops the folio there.
 */
static void hugetlb_twice_case(struct __test_metadata *_metadata,
			       struct vid_ctx *ctx, long *nr_huge_saved,
			       bool table)
{
	const long per_blk = BLOCK / VID_PAGE;
	const struct layout want = { .pages = { 2 * (per_blk - 1), 0, 0 } };
	const long dma[2] = { BLOCK - VID_PAGE - 1024, VID_PAGE };
	char path[256], *raw, *view;
	uint64_t iova;
	long i;
	int fd;

	if (table && !vtd_table_path(_metadata, path, sizeof(path)))
		return;
	ASSERT_EQ((long)(BLOCK >> 10), hugetlb_kb())
		TH_LOG("the default hugetlbfs page is not the block size");
	*nr_huge_saved = read_long(HUGEPAGES);
	ASSERT_LE(0, *nr_huge_saved);
	VID_ASSERT_OK(write_str(HUGEPAGES, "8"));
	fd = memfd_create("vid-twice", MFD_HUGETLB);
	ASSERT_LE(0, fd) TH_LOG("memfd_create: %s", strerror(errno));
	ASSERT_EQ(0, ftruncate(fd, BLOCK));
	raw = mmap(NULL, 3 * BLOCK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	ASSERT_NE(MAP_FAILED, raw);
	view = (char *)(((uintptr_t)raw + BLOCK - 1) & ~(BLOCK - 1));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(view + i * BLOCK,
			  mmap(view + i * BLOCK, BLOCK, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_FIXED, fd, 0))
			TH_LOG("mmap: %s", strerror(errno));
	}
	close(fd);
	for (i = 0; i < (long)BLOCK; i++)
		view[i] = (char)(i * 3 + (i >> 12));
	ASSERT_EQ(view[5], view[BLOCK + 5]);
	iova = layout_iova(_metadata, ctx->container, 2 * BLOCK) + VID_PAGE;
	check_layout(_metadata, ctx, view + VID_PAGE,
		     2 * BLOCK - 2 * VID_PAGE, iova, &want,
		     table ? path : NULL, true, dma);
	munmap(raw, 3 * BLOCK);
}

/* Runs the unmap queues under one IOTLB flush (VID_UNPIN_BATCH, vid_pin.c). */
#define UNPIN_BATCH	256

static const uint64_t *sort_frames;

static int by_frame(const void *a, const void *b)
{
	uint64_t x = sort_frames[*(const long *)a];
	uint64_t y = sort_frames[*(const long *)b];

	return x < y ? -1 : x > y;
}

/*
 * 2 * UNPIN_BATCH small pages no two of which are physically next to each
 * other where they are next to each other in memory: each is a run of
 * its own, so the unmap fills its batch of runs exactly twice and its
 * last flush finds the batch empty. Every pin and the charge go back.
 */
static void scattered_case(struct __test_metadata *_metadata,
			   struct vid_ctx *ctx, bool table)
{
	const long n = 2 * UNPIN_BATCH, sz = n * VID_PAGE;
	const struct layout want = { .pages = { n, 0, 0 } };
	uint64_t pfn[2 * UNPIN_BATCH], iova;
	long order[2 * UNPIN_BATCH], i, pos;
	char path[256], *src, *dst;
	int ret;

	if (table && !vtd_table_path(_metadata, path, sizeof(path)))
		return;
	src = mmap(NULL, sz, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, src);
	madvise(src, sz, MADV_NOHUGEPAGE);
	for (i = 0; i < n; i++)
		memset(src + i * VID_PAGE, (int)i, VID_PAGE);
	ret = page_frames(src, n, pfn);
	ASSERT_EQ(0, ret) TH_LOG("pagemap: %s", strerror(-ret));
	for (i = 0; i < n; i++)
		order[i] = i;
	sort_frames = pfn;
	qsort(order, n, sizeof(*order), by_frame);
	/* Every other frame, then the ones between: never two in a row. */
	dst = mmap(NULL, sz, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	for (i = 0; i < n; i++) {
		pos = i < n / 2 ? 2 * i : 2 * (i - n / 2) + 1;
		ASSERT_EQ(dst + i * VID_PAGE,
			  mremap(src + order[pos] * VID_PAGE, VID_PAGE,
				 VID_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
				 dst + i * VID_PAGE))
			TH_LOG("mremap: %s", strerror(errno));
	}
	ret = page_frames(dst, n, pfn);
	ASSERT_EQ(0, ret) TH_LOG("pagemap: %s", strerror(-ret));
	for (i = 1; i < n; i++) {
		ASSERT_NE(pfn[i - 1] + 1, pfn[i])
			TH_LOG("pages %ld and %ld physically contiguous",
			       i - 1, i);
	}
	iova = layout_iova(_metadata, ctx->container, sz);
	check_layout(_metadata, ctx, dst, sz, iova, &want,
		     table ? path : NULL, false, NULL);
	munmap(dst, sz);
	munmap(src, sz);
}

TEST_F(huge, thp_uses_block_pages)
{
	thp_case(_metadata, &self->ctx, false);
}

TEST_F(huge, hugetlbfs_uses_block_pages)
{
	hugetlbfs_case(_metadata, &self->ctx, &self->nr_huge_saved, false);
}

TEST_F(huge, disable_hugepages_forces_small_pages)
{
	disable_hugepages_case(_metadata, &self->ctx,
			       &self->nr_huge_saved, false);
}

TEST_F(huge, small_pages_stay_small)
{
	small_pages_case(_metadata, &self->ctx, false);
}

TEST_F(huge, thp_blocks_in_iommu_table)
{
	thp_case(_metadata, &self->ctx, true);
}

TEST_F(huge, hugetlbfs_blocks_in_iommu_table)
{
	hugetlbfs_case(_metadata, &self->ctx, &self->nr_huge_saved, true);
}

TEST_F(huge, disable_hugepages_pages_in_iommu_table)
{
	disable_hugepages_case(_metadata, &self->ctx,
			       &self->nr_huge_saved, true);
}

TEST_F(huge, small_pages_in_iommu_table)
{
	small_pages_case(_metadata, &self->ctx, true);
}

TEST_F(huge, gig_page_uses_top_level_page)
{
	gig_case(_metadata, &self->ctx, false);
}

TEST_F(huge, thp_range_in_mid_folio)
{
	thp_mid_folio_case(_metadata, &self->ctx, false);
}

TEST_F(huge, thp_iova_off_block)
{
	thp_iova_off_case(_metadata, &self->ctx, false);
}

TEST_F(huge, thp_page_replaced)
{
	thp_replaced_case(_metadata, &self->ctx, false);
}

TEST_F(huge, hugetlb_mapped_twice)
{
	hugetlb_twice_case(_metadata, &self->ctx, &self->nr_huge_saved,
			   false);
}

TEST_F(huge, scattered_pages_fill_unpin_batches)
{
	scattered_case(_metadata, &self->ctx, false);
}

TEST_F(huge, gig_page_in_iommu_table)
{
	gig_case(_metadata, &self->ctx, true);
}

TEST_F(huge, thp_range_in_mid_folio_in_iommu_table)
{
	thp_mid_folio_case(_metadata, &self->ctx, true);
}

TEST_F(huge, thp_iova_off_block_in_iommu_table)
{
	thp_iova_off_case(_metadata, &self->ctx, true);
}

TEST_F(huge, thp_page_replaced_in_iommu_table)
{
	thp_replaced_case(_metadata, &self->ctx, true);
}

TEST_F(huge, hugetlb_mapped_twice_in_iommu_table)
{
	hugetlb_twice_case(_metadata, &self->ctx, &self->nr_huge_saved, true);
}

TEST_F(huge, scattered_pages_in_iommu_table)
{
	scattered_case(_metadata, &self->ctx, true);
}

TEST_HARNESS_MAIN
