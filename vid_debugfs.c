// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - a read-only view of each container in debugfs.
 *
 *   /sys/kernel/debug/vfio_iommu_dirty/<id>/state     totals, one per line
 *   /sys/kernel/debug/vfio_iommu_dirty/<id>/mappings  one line per mapping
 *
 * Root only (0400). Each read takes the container lock, so what it shows is
 * one consistent state. debugfs makes removal wait for readers in flight,
 * so a file never outlives the container it shows.
 */
#include <linux/debugfs.h>
#include <linux/idr.h>
#include <linux/iommu.h>
#include <linux/seq_file.h>

#include "vfio_iommu_dirty.h"

static struct dentry *vid_debugfs_root;
static DEFINE_IDA(vid_container_ida);

/* "4K", "2M", "1G" (x86-64), "16K", "32M", "64G" (arm64, 16 KiB pages). */
static void vid_pgsize_name(int i, char *buf, size_t len)
{
	static const char units[] = "KMGTP";
	unsigned long size = vid_pgsize_of(i) >> 10;
	int u = 0;

	while (size >= 1024 && !(size & 1023) && units[u + 1]) {
		size >>= 10;
		u++;
	}
	snprintf(buf, len, "%lu%c", size, units[u]);
}

static int vid_state_show(struct seq_file *s, void *unused)
{
	struct vid_container *c = s->private;
	unsigned long pages[VID_NR_PGSIZES] = { };
	unsigned long nmaps = 0, npins = 0, locked = 0;
	unsigned int ndomains = 0, ngroups = 0, nemu = 0;
	u64 bytes = 0, mapped = 0;
	struct vid_domain *d;
	struct vid_group *g;
	struct rb_node *n;
	char name[24];
	int i;

	mutex_lock(&c->lock);
	list_for_each_entry(d, &c->domains, node) {
		ndomains++;
		list_for_each_entry(g, &d->groups, node)
			ngroups++;
	}
	list_for_each_entry(g, &c->emulated, node)
		nemu++;
	for (n = rb_first(&c->dma_tree); n; n = rb_next(n)) {
		struct vid_dma *dma = rb_entry(n, struct vid_dma, node);

		nmaps++;
		bytes += dma->size;
		mapped += dma->mapped;
		npins += dma->npins;
		locked += dma->locked_vm;
		for (i = 0; i < VID_NR_PGSIZES; i++)
			pages[i] += dma->iommu_pages[i];
	}

	seq_printf(s, "type: %s\n", c->nesting ? "nesting" :
		   c->v2 ? "v2" : "v1");
	seq_printf(s, "domains: %u\n", ndomains);
	seq_printf(s, "iommu_groups: %u\n", ngroups);
	seq_printf(s, "emulated_groups: %u\n", nemu);
	seq_printf(s, "devices: %u\n", c->ndevices);
	seq_printf(s, "pgsize_bitmap: 0x%llx\n", c->pgsize_bitmap);
	seq_printf(s, "mappings: %lu\n", nmaps);
	seq_printf(s, "mapping_bytes: %llu\n", bytes);
	seq_printf(s, "iommu_mapped_bytes: %llu\n", mapped);
	seq_printf(s, "device_pinned_pages: %lu\n", npins);
	seq_printf(s, "locked_vm_pages: %lu\n", locked);
	for (i = 0; i < VID_NR_PGSIZES; i++) {
		vid_pgsize_name(i, name, sizeof(name));
		seq_printf(s, "iommu_pages_%s: %lu\n", name, pages[i]);
	}
	seq_printf(s, "vaddr_invalid: %u\n", c->vaddr_invalid);
	seq_printf(s, "dirty_tracking: %s\n", c->dirty_tracking ? "on" : "off");
	seq_printf(s, "pinned_scope: %s\n", vid_pinned_scope(c) ? "yes" : "no");
	seq_printf(s, "stat_maps: %llu\n", c->stats.maps);
	seq_printf(s, "stat_unmaps: %llu\n", c->stats.unmaps);
	seq_printf(s, "stat_bitmap_queries: %llu\n", c->stats.bitmap_queries);
	seq_printf(s, "stat_dirty_bits: %llu\n", c->stats.dirty_bits);
	seq_printf(s, "stat_bitmap_bytes: %llu\n", c->stats.bitmap_bytes);
	mutex_unlock(&c->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vid_state);

static int vid_mappings_show(struct seq_file *s, void *unused)
{
	struct vid_container *c = s->private;
	struct rb_node *n;
	char name[24];
	int i;

	seq_puts(s, "# iova size mapped prot device_pins locked_vm");
	for (i = 0; i < VID_NR_PGSIZES; i++) {
		vid_pgsize_name(i, name, sizeof(name));
		seq_printf(s, " %s", name);
	}
	seq_puts(s, " dirty_bitmap\n");
	mutex_lock(&c->lock);
	for (n = rb_first(&c->dma_tree); n; n = rb_next(n)) {
		struct vid_dma *dma = rb_entry(n, struct vid_dma, node);

		seq_printf(s, "0x%llx 0x%zx 0x%zx %c%c%s %lu %lu %lu %lu %lu %s\n",
			   (unsigned long long)dma->iova, dma->size,
			   dma->mapped, dma->prot & IOMMU_READ ? 'r' : '-',
			   dma->prot & IOMMU_WRITE ? 'w' : '-',
			   dma->vaddr_invalid ? " vaddr-invalid" : "",
			   dma->npins, dma->locked_vm, dma->iommu_pages[0],
			   dma->iommu_pages[1], dma->iommu_pages[2],
			   dma->dirty ? "yes" : "no");
	}
	mutex_unlock(&c->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(vid_mappings);

/**
 * vid_debugfs_add() - give a new container its debugfs directory
 * @c: container, not yet visible to anyone else
 *
 * debugfs is a debugging aid: failing to create it never fails the
 * container.
 */
void vid_debugfs_add(struct vid_container *c)
{
	char name[16];
	int id;

	c->debugfs = NULL;
	id = ida_alloc(&vid_container_ida, GFP_KERNEL);
	c->id = id;
	if (id < 0 || IS_ERR_OR_NULL(vid_debugfs_root))
		return;
	snprintf(name, sizeof(name), "%d", id);
	c->debugfs = debugfs_create_dir(name, vid_debugfs_root);
	debugfs_create_file("state", 0400, c->debugfs, c, &vid_state_fops);
	debugfs_create_file("mappings", 0400, c->debugfs, c,
			    &vid_mappings_fops);
}

/**
 * vid_debugfs_remove() - remove a container's directory
 * @c: container being released; waits for readers still in its files
 */
void vid_debugfs_remove(struct vid_container *c)
{
	debugfs_remove_recursive(c->debugfs);
	if (c->id >= 0)
		ida_free(&vid_container_ida, c->id);
}

/**
 * vid_debugfs_init() - create the module's debugfs root
 */
void vid_debugfs_init(void)
{
	vid_debugfs_root = debugfs_create_dir("vfio_iommu_dirty", NULL);
}

/**
 * vid_debugfs_exit() - remove the module's debugfs root
 */
void vid_debugfs_exit(void)
{
	debugfs_remove_recursive(vid_debugfs_root);
	ida_destroy(&vid_container_ida);
}
