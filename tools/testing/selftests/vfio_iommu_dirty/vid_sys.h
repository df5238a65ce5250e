/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the machine under test is, for tests that once took x86's answers
 * for granted: the CPU page size, which IOMMU there is and how it reports
 * a blocked access, where its MSI window lies, and which IOVAs a
 * container can map. The x86-64 guest (VT-d) and the arm64 guests (SMMUv3
 * with 4 KiB or 16 KiB pages) give different answers; the tests ask.
 *
 * Like vid_util, nothing here depends on the kselftest harness.
 */
#ifndef VID_SYS_H
#define VID_SYS_H

#include <stdint.h>
#include <unistd.h>

/* The largest CPU page size Linux has (arm64, powerpc: 64 KiB). */
#define VID_PAGE_MAX		65536UL

/*
 * The CPU's page size: the unit of every mapping and of pinning. Inline,
 * so that the tools built from vid_util.c alone (tools/bench,
 * tools/vid-demo) need nothing more; glibc answers from memory.
 */
static inline unsigned long vid_page_size(void)
{
	return (unsigned long)sysconf(_SC_PAGESIZE);
}

enum vid_iommu_kind {
	VID_IOMMU_OTHER,
	VID_IOMMU_VTD,		/* Intel VT-d: /sys/class/iommu/dmar* */
	VID_IOMMU_SMMUV3,	/* Arm SMMUv3: /sys/class/iommu/smmu3.* */
};

/* The IOMMU of this machine, by its name under /sys/class/iommu. */
enum vid_iommu_kind vid_iommu_kind(void);
/* Part of the kernel log line the IOMMU prints for a blocked access. */
const char *vid_iommu_fault_word(void);
/*
 * Wait until a blocked access the IOMMU reports from now on reaches the
 * kernel log: the SMMUv3 driver prints at most 10 events per 5 s, and a
 * test's fault within 5 s of an earlier test's could go unreported.
 */
void vid_iommu_fault_settle(void);
/*
 * What VFIO_SET_IOMMU(VFIO_TYPE1_NESTING_IOMMU) fails with for a group
 * behind this IOMMU (both backends ask the IOMMU driver to nest).
 */
int vid_iommu_nesting_errno(void);

/*
 * The MSI window of IOMMU group @group (its reserved region of type
 * "msi" in sysfs): [*@start, *@last]. 0, -ENOENT without one, or -errno.
 */
int vid_msi_window(int group, uint64_t *start, uint64_t *last);

/*
 * The first address at or above *@iova, aligned to @align (a power of
 * two), where @size bytes lie inside one usable IOVA range of @container
 * (GET_INFO's IOVA_RANGE capability), into *@iova: 0, -ENOSPC when there
 * is none, or -errno.
 */
int vid_iova_fit(int container, uint64_t *iova, uint64_t size,
		 uint64_t align);

/*
 * The container's block page size: the smallest IOMMU page size above
 * its smallest (GET_INFO's iova_pgsizes), 0 when it has none, or -errno.
 */
int64_t vid_block_pgsize(int container);

#endif /* VID_SYS_H */
