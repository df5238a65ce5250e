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
 *  - a list of emulated groups (mediated devices, no IOMMU) and the list of
 *    their registered devices, which are told when a range they pinned is
 *    unmapped;
 *  - an rb-tree of &struct vid_dma, one per successful VFIO_IOMMU_MAP_DMA,
 *    keyed by IOVA. Mappings never overlap;
 *  - the sorted list of IOVA ranges user space may map (&struct
 *    vid_iova_range): the domains' apertures minus the groups' reserved
 *    regions.
 *
 * While the container has a domain, every page of a mapping is pinned
 * (FOLL_LONGTERM) and mapped at the same IOVA into every domain. The pages
 * are found again at unmap time by asking the first domain for the physical
 * address of each IOVA, so no per-page array is kept. Without a domain (only
 * emulated groups) a mapping is only recorded; emulated devices pin the
 * pages they use one by one, into the mapping's tree of &struct vid_pin.
 *
 * Locking
 * -------
 * One mutex per container, &vid_container.lock, protects everything the
 * container owns: the domain and group lists, the mapping tree, every field
 * of every &struct vid_dma and its pins, the IOVA ranges, and the counters. It is held for
 * the whole of each ioctl and each attach/detach, across pinning and IOMMU
 * page-table updates, so an ioctl sees the container as one consistent
 * state and a failed ioctl can roll back without racing anyone.
 *
 * &vid_container.devices_rwsem protects the list of registered devices. It
 * is taken for reading around the dma_unmap() calls into device drivers,
 * which call back into unpin_pages() and so need the container lock; those
 * calls are therefore made with the container lock dropped, and the unmap
 * that made them starts its walk again afterwards.
 *
 * Nesting, outermost first:
 *
 *   VFIO core container->group_lock (held by the core around attach/detach)
 *     -> vid_container.devices_rwsem
 *       -> vid_container.lock
 *         -> mm->mmap_lock (locked_vm accounting, GUP, copy_*_user)
 *
 * Nothing takes devices_rwsem while holding the container lock, and nothing
 * takes the container lock while holding an mmap lock. @ndevices is written
 * with both held, so either one is enough to read it. Every path may sleep:
 * there are no spinlocks and no atomic context.
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

#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rbtree.h>
#include <linux/rwsem.h>
#include <linux/types.h>

#include "vid_compat.h"

struct dentry;
struct iommu_domain;
struct iommu_group;
struct mm_struct;
struct page;
struct task_struct;
struct vfio_device;
struct vid_unpin_batch;

/* The in-tree limits: INT_MAX pages per bitmap, 256 MiB of bitmap. */
#define VID_DIRTY_PAGES_MAX	((u64)INT_MAX)
#define VID_DIRTY_BITMAP_MAX	(DIV_ROUND_UP(VID_DIRTY_PAGES_MAX, 64) * 8)

/*
 * IOMMU page sizes counted per mapping: the CPU's page and its block
 * sizes, PMD_SIZE and PUD_SIZE (4 KiB, 2 MiB, 1 GiB on x86-64; 16 KiB,
 * 32 MiB, 64 GiB on a 16 KiB-page arm64 kernel, which an SMMU with the
 * same granule offers). vid_pgsize_of() gives each.
 */
#define VID_NR_PGSIZES	3

/* Module parameters, defined in vfio_iommu_dirty.c. */
extern bool vid_allow_unsafe_interrupts;
extern bool vid_disable_hugepages;
extern unsigned int vid_dma_entry_limit;
extern bool vid_test_domain_per_group;

/**
 * struct vid_stats - what a container has done, for debugfs
 * @maps: successful MAP_DMA calls
 * @unmaps: mappings removed by UNMAP_DMA
 * @bitmap_queries: dirty bitmaps reported (GET_BITMAP, unmap with bitmap)
 * @dirty_bits: bits set in those reports
 * @bitmap_bytes: bytes of bitmap written to user space
 */
struct vid_stats {
	u64 maps;
	u64 unmaps;
	u64 bitmap_queries;
	u64 dirty_bits;
	u64 bitmap_bytes;
};

/**
 * struct vid_container - one VFIO container served by this backend
 * @lock: protects every other field and every object reachable from here
 * @domains: list of &struct vid_domain, linked by &vid_domain.node
 * @emulated: emulated groups, &struct vid_group linked by &vid_group.node
 * @dma_tree: mappings, &struct vid_dma keyed by IOVA
 * @iova_ranges: usable IOVA space, sorted &struct vid_iova_range; empty
 *	while no domain constrains it
 * @dma_limit: dma_entry_limit when the container was opened
 * @dma_avail: how many more mappings may be created
 * @vaddr_invalid: mappings whose vaddr user space has invalidated
 * @pgsize_bitmap: IOMMU page sizes every domain supports; PAGE_MASK while
 *	the container has no domain
 * @v2: opened as VFIO_TYPE1v2_IOMMU or VFIO_TYPE1_NESTING_IOMMU (unmap
 *	may not split a mapping)
 * @nesting: opened as VFIO_TYPE1_NESTING_IOMMU: every domain must nest
 * @devices_rwsem: protects @devices (see "Locking")
 * @devices: registered emulated devices, linked by their iommu_entry
 * @ndevices: entries on @devices
 * @dirty_tracking: dirty page tracking is on: every mapping has bitmaps
 * @dirty_shift: log2 of the base page of the bitmaps, fixed at START
 * @unpin: runs unmapped but not yet unpinned, for vid_unmap_unpin()
 * @report_buf: bounce page of reports that merge bitmaps, taken by the
 *	first such report and kept until release (allocating and zeroing a
 *	page per report cost more than a small report itself)
 * @stats: operation counters, shown in debugfs
 * @id: number of the container's debugfs directory, or -errno
 * @debugfs: that directory (set once at open, removed at release)
 */
struct vid_container {
	struct mutex lock;	/* see "Locking" above */
	struct list_head domains;
	struct list_head emulated;
	struct rb_root dma_tree;
	struct list_head iova_ranges;
	unsigned int dma_limit;
	unsigned int dma_avail;
	unsigned int vaddr_invalid;
	u64 pgsize_bitmap;
	bool v2;
	bool nesting;
	struct rw_semaphore devices_rwsem;
	struct list_head devices;
	unsigned int ndevices;
	bool dirty_tracking;
	unsigned int dirty_shift;
	struct vid_unpin_batch *unpin;
	u64 *report_buf;
	struct vid_stats stats;
	int id;
	struct dentry *debugfs;
};

/**
 * struct vid_domain - an IOMMU domain shared by compatible groups
 * @node: entry in &vid_container.domains
 * @domain: the paging domain every mapping of the container is mapped into
 * @groups: list of &struct vid_group attached to @domain
 * @enforce_cc: the domain blocks no-snoop DMA; only domains that agree on
 *	this share groups, and VFIO_DMA_CC_IOMMU needs it of every domain
 */
struct vid_domain {
	struct list_head node;
	struct iommu_domain *domain;
	struct list_head groups;
	bool enforce_cc;
};

/**
 * struct vid_group - a group attached to the container
 * @node: entry in &vid_domain.groups, or in &vid_container.emulated
 * @iommu_group: the group, referenced by the VFIO core while attached
 * @pinned_scope: the group's devices write only through pin_pages() and
 *	dma_rw(), so only what they pin or write can be dirty. Always true
 *	for emulated groups; an IOMMU-backed group earns it by pinning.
 */
struct vid_group {
	struct list_head node;
	struct iommu_group *iommu_group;
	bool pinned_scope;
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
 * @size: bytes user space mapped
 * @mapped: bytes from @iova currently pinned and mapped into every domain:
 *	@size while the container has a domain, 0 while it has none, a
 *	prefix while pin_map is in progress or unwinding
 * @prot: IOMMU_READ and/or IOMMU_WRITE, from the device's point of view
 * @vaddr_invalid: user space invalidated @vaddr (VFIO_DMA_UNMAP_FLAG_VADDR)
 *	and has not set a new one yet
 * @pins: pages pinned by emulated devices, &struct vid_pin by IOVA
 * @npins: entries in @pins
 * @lock_cap: @task had CAP_IPC_LOCK at map time (RLIMIT_MEMLOCK bypassed)
 * @task: group leader of the task that mapped, referenced
 * @mm: its mm, mmgrab()ed
 * @locked_vm: pages this mapping has added to @mm's locked_vm
 * @acct_defer: devices are being told to unpin this mapping's pages: the
 *	charges of the pins they drop are given back once they are done
 *	(vid_acct_flush()), with one mmap_lock round trip instead of one per
 *	page
 * @acct_deferred: pages unpinned meanwhile, still counted in @locked_vm
 * @iommu_pages: IOMMU pages of each size (vid_pgsize_of()) used to map @mapped
 *	into the first domain, as the IOMMU core splits each run
 * @contig: 2 MiB blocks known to be physically contiguous (vid_pin.c), or
 *	NULL
 * @dirty: while tracking, one bit per base page written since the last
 *	report (vid_dirty.c)
 * @pinned_bits: while tracking, one bit per base page a device holds
 *	pinned; allocated with the first such pin
 */
struct vid_dma {
	struct rb_node node;
	dma_addr_t iova;
	unsigned long vaddr;
	size_t size;
	size_t mapped;
	int prot;
	bool vaddr_invalid;
	struct rb_root pins;
	unsigned long npins;
	bool lock_cap;
	struct task_struct *task;
	struct mm_struct *mm;
	unsigned long locked_vm;
	bool acct_defer;
	unsigned long acct_deferred;
	unsigned long iommu_pages[VID_NR_PGSIZES];
	unsigned long *contig;
	unsigned long *dirty;
	unsigned long *pinned_bits;
};

/**
 * struct vid_pin - a page pinned by emulated devices
 * @node: entry in &vid_dma.pins
 * @iova: IOVA of the page
 * @page: the pinned page
 * @refs: pin_pages() calls not yet matched by unpin_pages()
 */
struct vid_pin {
	struct rb_node node;
	dma_addr_t iova;
	struct page *page;
	unsigned int refs;
};

/**
 * struct vid_report - where a dirty bitmap request writes
 * @ubits: the caller's bitmap
 * @iova: IOVA of the page (or block) of bit 0
 * @shift: log2 of the caller's page size, at least the base page
 * @buf: the container's bounce page, &vid_container.report_buf
 * @have_last: @last_block is valid
 * @last_block: last bit written for the previous mapping, to OR a block
 *	two mappings share
 * @bits: dirty bits reported so far (the caller's own bits not counted)
 * @bytes: bytes written to @ubits so far
 */
struct vid_report {
	u64 __user *ubits;
	dma_addr_t iova;
	unsigned int shift;
	u64 **buf;
	bool have_last;
	u64 last_block;
	u64 bits;
	u64 bytes;
};

/* vid_dma.c: the mapping tree and the MAP/UNMAP operations */
struct vid_dma *vid_dma_find(struct vid_container *c, dma_addr_t start,
			     u64 size);
struct vid_dma *vid_dma_first_in(struct vid_container *c, dma_addr_t start,
				 u64 size);
int vid_dma_map(struct vid_container *c, dma_addr_t iova,
		unsigned long vaddr, u64 size, int prot);
int vid_dma_unmap(struct vid_container *c, dma_addr_t iova, u64 size,
		  bool all, struct vid_report *rep, u64 *unmapped);
int vid_dma_get_dirty(struct vid_container *c, dma_addr_t iova, u64 size,
		      struct vid_report *rep, bool clear);
int vid_dma_invalidate_vaddr(struct vid_container *c, dma_addr_t iova,
			     u64 size, bool all, u64 *invalidated);
int vid_dma_set_vaddr(struct vid_container *c, dma_addr_t iova,
		      unsigned long vaddr, u64 size);
void vid_dma_remove(struct vid_container *c, struct vid_dma *dma);
void vid_dma_remove_all(struct vid_container *c);

/* vid_pin.c: pinning a mapping into the IOMMU page tables */
int vid_pin_init(struct vid_container *c);
void vid_pin_fini(struct vid_container *c);
int vid_pin_map(struct vid_container *c, struct vid_dma *dma);
void vid_unmap_unpin(struct vid_container *c, struct vid_dma *dma);
int vid_replay(struct vid_container *c, struct vid_domain *to);
unsigned long vid_pgsize_of(int i);

/* vid_acct.c: locked_vm accounting */
bool vid_pfn_reserved(unsigned long pfn);
int vid_acct_add(struct vid_dma *dma, unsigned long npages);
void vid_acct_sub(struct vid_dma *dma, unsigned long npages);
void vid_acct_unpin(struct vid_dma *dma);
void vid_acct_flush(struct vid_dma *dma);
int vid_acct_change_owner(struct vid_dma *dma);

/* vid_emu.c: the emulated-device interface */
int vid_emu_init(void);
void vid_emu_exit(void);
struct vid_pin *vid_pin_find(struct vid_dma *dma, dma_addr_t iova);
void vid_pin_put(struct vid_container *c, struct vid_dma *dma,
		 struct vid_pin *pin);
int vid_pin_pages(void *iommu_data, struct iommu_group *iommu_group,
		  dma_addr_t iova, int npage, int prot, struct page **pages);
void vid_unpin_pages(void *iommu_data, dma_addr_t iova, int npage);
int vid_dma_rw(void *iommu_data, dma_addr_t iova, void *data, size_t count,
	       bool write);
void vid_register_device(void *iommu_data, struct vfio_device *vdev);
void vid_unregister_device(void *iommu_data, struct vfio_device *vdev);
int vid_notify_unmap(struct vid_container *c, struct vid_dma *dma,
		     unsigned int tries);

/* vid_info.c: VFIO_IOMMU_GET_INFO */
long vid_get_info(struct vid_container *c, void __user *arg);

/* vid_iova.c: the usable IOVA space */
int vid_iova_build(struct vid_container *c, struct vid_domain *extra_domain,
		   struct iommu_group *extra_group, struct list_head *out);
bool vid_group_sw_msi(struct iommu_group *iommu_group, phys_addr_t *base);
bool vid_iova_allows(struct list_head *ranges, dma_addr_t start,
		     dma_addr_t last);
bool vid_iova_fits_mappings(struct vid_container *c,
			    struct list_head *ranges);
void vid_iova_replace(struct vid_container *c, struct list_head *ranges);
void vid_iova_free(struct list_head *ranges);

/* vid_dirty.c: dirty page tracking */
bool vid_pinned_scope(struct vid_container *c);
int vid_dirty_alloc(struct vid_container *c, struct vid_dma *dma);
void vid_dirty_free(struct vid_dma *dma);
int vid_dirty_start(struct vid_container *c);
void vid_dirty_stop(struct vid_container *c);
void vid_dirty_mark(struct vid_container *c, struct vid_dma *dma, u64 off,
		    u64 len);
int vid_dirty_pin(struct vid_container *c, struct vid_dma *dma,
		  dma_addr_t iova);
void vid_dirty_unpin(struct vid_container *c, struct vid_dma *dma,
		     dma_addr_t iova);
void vid_dirty_scope_change(struct vid_container *c, bool was_pinned);
void vid_dirty_clear(struct vid_container *c, struct vid_dma *dma);
unsigned long vid_dirty_nbits(struct vid_container *c, struct vid_dma *dma);
unsigned long *vid_bitmap_alloc(unsigned long nbits);

/* vid_report.c: dirty bitmaps to user space */
struct vfio_bitmap;
int vid_dirty_report(struct vid_container *c, struct vid_report *rep,
		     struct vid_dma *dma);
u64 vid_dirty_report_pgsizes(struct vid_container *c);
int vid_report_check_user(const struct vfio_bitmap *bm, u64 size);
int vid_report_begin(struct vid_container *c, struct vid_report *rep,
		     const struct vfio_bitmap *bm, dma_addr_t iova, u64 size);
void vid_report_end(struct vid_container *c, struct vid_report *rep);
long vid_dirty_pages_ioctl(struct vid_container *c, void __user *arg);
int vid_report_init(void);
void vid_report_exit(void);

/* vid_debugfs.c: read-only view of the containers */
void vid_debugfs_add(struct vid_container *c);
void vid_debugfs_remove(struct vid_container *c);
void vid_debugfs_init(void);
void vid_debugfs_exit(void);

/* vid_domain.c: groups and IOMMU domains */
int vid_attach_group(void *iommu_data, struct iommu_group *iommu_group,
		     enum vfio_group_type type);
void vid_detach_group(void *iommu_data, struct iommu_group *iommu_group);
void vid_release_domains(struct vid_container *c);
void vid_update_pgsizes(struct vid_container *c);
void vid_group_pinned(struct vid_container *c,
		      struct iommu_group *iommu_group);
struct iommu_domain *vid_group_iommu_domain(void *iommu_data,
					    struct iommu_group *iommu_group);

#endif /* VFIO_IOMMU_DIRTY_H */
