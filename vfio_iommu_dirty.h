/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vfio_iommu_dirty - private objects of the VFIO type1 backend.
 *
 * Objects
 * -------
 * A &struct vid_container is created by the VFIO core's open() when user
 * space calls VFIO_SET_IOMMU on a /dev/vfio/vfio file, and destroyed by
 * release() when the last group leaves that file. It owns:
 *
 *  - a list of &struct vid_domain, one IOMMU domain per set of groups that
 *    can share page tables, each with the list of &struct vid_group attached
 *    to it;
 *  - an rb-tree of &struct vid_dma, one per successful VFIO_IOMMU_MAP_DMA,
 *    keyed by IOVA. Mappings never overlap;
 *  - the sorted list of IOVA ranges user space may map (&struct
 *    vid_iova_range): the domains' apertures minus the groups' reserved
 *    regions.
 *
 * Every page of a mapping is pinned (FOLL_LONGTERM) and mapped at the same
 * IOVA into every domain of the container. The pages are found again at
 * unmap time by asking the first domain for the physical address of each
 * IOVA, so no per-page array is kept.
 *
 * Locking
 * -------
 * One mutex per container, &vid_container.lock, protects everything the
 * container owns: the domain and group lists, the mapping tree, every field
 * of every &struct vid_dma, the IOVA ranges, @dma_avail and @pgsize_bitmap. It is held for
 * the whole of each ioctl and each attach/detach, across pinning and IOMMU
 * page-table updates, so an ioctl sees the container as one consistent
 * state and a failed ioctl can roll back without racing anyone.
 *
 * Nesting, outermost first:
 *
 *   VFIO core container->group_lock (held by the core around attach/detach)
 *     -> vid_container.lock
 *       -> mm->mmap_lock (locked_vm accounting, GUP faults, copy_*_user)
 *
 * Nothing in this module takes vid_container.lock while holding an mmap
 * lock. Every path may sleep: there are no spinlocks and no atomic context.
 *
 * Lifetimes
 * ---------
 * A &struct vid_dma holds a reference on the task group leader that mapped
 * it (for RLIMIT_MEMLOCK) and an mmgrab() reference on its mm (for
 * locked_vm), so both stay valid after the process exits; locked_vm is only
 * given back while the mm still has users.
 */
#ifndef VFIO_IOMMU_DIRTY_H
#define VFIO_IOMMU_DIRTY_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/types.h>

#include "vid_compat.h"

struct iommu_domain;
struct iommu_group;
struct mm_struct;
struct task_struct;

/* Module parameters, defined in vfio_iommu_dirty.c. */
extern bool vid_allow_unsafe_interrupts;
extern bool vid_disable_hugepages;
extern unsigned int vid_dma_entry_limit;

/**
 * struct vid_container - one VFIO container served by this backend
 * @lock: protects every other field and every object reachable from here
 * @domains: list of &struct vid_domain, linked by &vid_domain.node
 * @dma_tree: mappings, &struct vid_dma keyed by IOVA
 * @iova_ranges: usable IOVA space, sorted &struct vid_iova_range; empty
 *	while no domain constrains it
 * @dma_avail: how many more mappings may be created (dma_entry_limit)
 * @pgsize_bitmap: IOMMU page sizes every domain supports; PAGE_MASK while
 *	the container has no domain
 * @v2: opened as VFIO_TYPE1v2_IOMMU (unmap may not split a mapping)
 */
struct vid_container {
	struct mutex lock;	/* see "Locking" above */
	struct list_head domains;
	struct rb_root dma_tree;
	struct list_head iova_ranges;
	unsigned int dma_avail;
	u64 pgsize_bitmap;
	bool v2;
};

/**
 * struct vid_domain - an IOMMU domain shared by compatible groups
 * @node: entry in &vid_container.domains
 * @domain: the paging domain every mapping of the container is mapped into
 * @groups: list of &struct vid_group attached to @domain
 * @prot: IOMMU_CACHE when the domain enforces cache coherency, else 0;
 *	added to the protection of every mapping in this domain
 */
struct vid_domain {
	struct list_head node;
	struct iommu_domain *domain;
	struct list_head groups;
	int prot;
};

/**
 * struct vid_group - an IOMMU group attached to the container
 * @node: entry in &vid_domain.groups
 * @iommu_group: the group, referenced by the VFIO core while attached
 */
struct vid_group {
	struct list_head node;
	struct iommu_group *iommu_group;
};

/**
 * struct vid_iova_range - a usable range of IOVA space
 * @node: entry in &vid_container.iova_ranges, or in a list being built
 * @start: first usable IOVA
 * @last: last usable IOVA (inclusive, so the top of the space fits)
 */
struct vid_iova_range {
	struct list_head node;
	dma_addr_t start;
	dma_addr_t last;
};

/**
 * struct vid_dma - one user DMA mapping
 * @node: entry in &vid_container.dma_tree
 * @iova: first device address
 * @vaddr: first user virtual address in @mm
 * @size: bytes currently pinned and mapped, from @iova. Grows while
 *	MAP_DMA pins and maps; equals the requested size once it succeeds.
 * @prot: IOMMU_READ and/or IOMMU_WRITE, from the device's point of view
 * @lock_cap: @task had CAP_IPC_LOCK at map time (RLIMIT_MEMLOCK bypassed)
 * @task: group leader of the task that mapped, referenced
 * @mm: its mm, mmgrab()ed
 * @locked_vm: pages this mapping has added to @mm's locked_vm
 */
struct vid_dma {
	struct rb_node node;
	dma_addr_t iova;
	unsigned long vaddr;
	size_t size;
	int prot;
	bool lock_cap;
	struct task_struct *task;
	struct mm_struct *mm;
	unsigned long locked_vm;
};

/* vid_dma.c: the mapping tree and the MAP/UNMAP operations */
struct vid_dma *vid_dma_find(struct vid_container *c, dma_addr_t start,
			     u64 size);
struct vid_dma *vid_dma_first_in(struct vid_container *c, dma_addr_t start,
				 u64 size);
int vid_dma_map(struct vid_container *c, dma_addr_t iova,
		unsigned long vaddr, u64 size, int prot);
int vid_dma_unmap(struct vid_container *c, dma_addr_t iova, u64 size,
		  u64 *unmapped);
void vid_dma_remove(struct vid_container *c, struct vid_dma *dma);
void vid_dma_remove_all(struct vid_container *c);

/* vid_pin.c: pinning, accounting and IOMMU page tables of one mapping */
int vid_pin_map(struct vid_container *c, struct vid_dma *dma, size_t size);
void vid_unmap_unpin(struct vid_container *c, struct vid_dma *dma);
int vid_replay(struct vid_container *c, struct vid_domain *to);
int vid_acct_add(struct vid_dma *dma, unsigned long npages);
void vid_acct_sub(struct vid_dma *dma, unsigned long npages);

/* vid_info.c: VFIO_IOMMU_GET_INFO */
long vid_get_info(struct vid_container *c, void __user *arg);

/* vid_iova.c: the usable IOVA space */
int vid_iova_build(struct vid_container *c, struct vid_domain *extra_domain,
		   struct iommu_group *extra_group, struct list_head *out,
		   phys_addr_t *sw_msi);
bool vid_iova_allows(struct list_head *ranges, dma_addr_t start,
		     dma_addr_t last);
bool vid_iova_fits_mappings(struct vid_container *c,
			    struct list_head *ranges);
void vid_iova_replace(struct vid_container *c, struct list_head *ranges);
void vid_iova_free(struct list_head *ranges);

/* vid_domain.c: groups and IOMMU domains */
int vid_attach_group(void *iommu_data, struct iommu_group *iommu_group,
		     enum vfio_group_type type);
void vid_detach_group(void *iommu_data, struct iommu_group *iommu_group);
void vid_release_domains(struct vid_container *c);

#endif /* VFIO_IOMMU_DIRTY_H */
