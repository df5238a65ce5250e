// SPDX-License-Identifier: GPL-2.0
/*
 * The machine under test, asked rather than assumed: see vid_sys.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/vfio.h>

#include "vid_sys.h"

enum vid_iommu_kind vid_iommu_kind(void)
{
	enum vid_iommu_kind kind = VID_IOMMU_OTHER;
	struct dirent *d;
	DIR *dir;

	dir = opendir("/sys/class/iommu");
	if (!dir)
		return kind;
	while ((d = readdir(dir))) {
		if (!strncmp(d->d_name, "dmar", 4))
			kind = VID_IOMMU_VTD;
		else if (!strncmp(d->d_name, "smmu3.", 6))
			kind = VID_IOMMU_SMMUV3;
	}
	closedir(dir);
	return kind;
}

const char *vid_iommu_fault_word(void)
{
	/*
	 * VT-d: "DMAR: [DMA Write NO_PASID] Request device [..] fault addr
	 * ...". SMMUv3: "arm-smmu-v3 ...: event 0x10 received:" (0x13 for a
	 * write to a read-only page).
	 */
	return vid_iommu_kind() == VID_IOMMU_SMMUV3 ? " event 0x" :
						      "fault addr";
}

void vid_iommu_fault_settle(void)
{
	/* The driver's ratelimit: a burst of 10 per 5 s interval. */
	struct timespec ts = { .tv_sec = 5, .tv_nsec = 500 * 1000000L };

	if (vid_iommu_kind() == VID_IOMMU_SMMUV3)
		nanosleep(&ts, NULL);
}

int vid_iommu_nesting_errno(void)
{
	/*
	 * VT-d has no way to nest through this call: EINVAL. Linux 6.12's
	 * arm-smmu-v3 makes a paging domain for the device it is allocated
	 * for, and refuses nesting on such a finalised domain: EPERM.
	 */
	return vid_iommu_kind() == VID_IOMMU_SMMUV3 ? -EPERM : -EINVAL;
}

int vid_msi_window(int group, uint64_t *start, uint64_t *last)
{
	unsigned long long s, l;
	char path[128], type[32];
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/kernel/iommu_groups/%d/reserved_regions", group);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fscanf(f, "%llx %llx %31s", &s, &l, type) == 3) {
		if (strcmp(type, "msi"))
			continue;
		*start = s;
		*last = l;
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* GET_INFO with its capabilities, in a buffer the caller frees. */
static struct vfio_iommu_type1_info *get_info_caps(int container)
{
	struct vfio_iommu_type1_info head = { .argsz = sizeof(head) };
	struct vfio_iommu_type1_info *info;

	if (ioctl(container, VFIO_IOMMU_GET_INFO, &head))
		return NULL;
	info = calloc(1, head.argsz);
	if (!info)
		return NULL;
	info->argsz = head.argsz;
	if (ioctl(container, VFIO_IOMMU_GET_INFO, info)) {
		free(info);
		return NULL;
	}
	return info;
}

static struct vfio_iommu_type1_info_cap_iova_range *
iova_cap(struct vfio_iommu_type1_info *info)
{
	uint32_t off = info->flags & VFIO_IOMMU_INFO_CAPS ?
		       info->cap_offset : 0;

	while (off && off + sizeof(struct vfio_info_cap_header) <= info->argsz) {
		struct vfio_info_cap_header *h = (void *)((char *)info + off);

		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)
			return (void *)h;
		off = h->next;
	}
	return NULL;
}

/* The lowest fit in range @r at or above @from into *@at; false if none. */
static bool fit_in(const struct vfio_iova_range *r, uint64_t from,
		   uint64_t size, uint64_t align, uint64_t *at)
{
	uint64_t a = from > r->start ? from : r->start;

	a = (a + align - 1) & ~(align - 1);
	/* Rounding up may wrap past the top of the IOVA space. */
	if (a < r->start || a > r->end || r->end - a < size - 1)
		return false;
	*at = a;
	return true;
}

int vid_iova_fit(int container, uint64_t *iova, uint64_t size,
		 uint64_t align)
{
	struct vfio_iommu_type1_info_cap_iova_range *cap;
	struct vfio_iommu_type1_info *info;
	uint64_t best = 0, a;
	bool found = false;
	uint32_t i;

	if (!size || !align || (align & (align - 1)))
		return -EINVAL;
	info = get_info_caps(container);
	if (!info)
		return -errno;
	cap = iova_cap(info);
	for (i = 0; cap && i < cap->nr_iovas; i++) {
		if (!fit_in(&cap->iova_ranges[i], *iova, size, align, &a))
			continue;
		if (!found || a < best)
			best = a;
		found = true;
	}
	free(info);
	if (!cap)
		return -ENOENT;
	if (!found)
		return -ENOSPC;
	*iova = best;
	return 0;
}

int64_t vid_block_pgsize(int container)
{
	struct vfio_iommu_type1_info info = { .argsz = sizeof(info) };
	uint64_t sizes;

	if (ioctl(container, VFIO_IOMMU_GET_INFO, &info))
		return -errno;
	sizes = info.iova_pgsizes & (info.iova_pgsizes - 1);
	return sizes & -sizes;
}
