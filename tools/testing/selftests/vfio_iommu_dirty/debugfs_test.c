// SPDX-License-Identifier: GPL-2.0
/*
 * The debugfs view of a container: one root-only directory per container,
 * gone with it; its state file follows groups, mappings, tracking, scope
 * and the operation counters exactly. This module's own, so the test skips
 * against in-tree.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define P	VID_PAGE
#define POISON	0xa5a5a5a5a5a5a5a5ULL

/* The string after "@key: " in the state file, into @out. */
static int state_word(const char *key, char *out, size_t len)
{
	char path[300], line[160];
	struct dirent *de;
	DIR *dir = opendir(VID_DEBUGFS_ROOT);
	FILE *f = NULL;
	int ret = -ENOENT;

	if (!dir)
		return -errno;
	while (!f && (de = readdir(dir)))
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9') {
			snprintf(path, sizeof(path), VID_DEBUGFS_ROOT "/%s/state",
				 de->d_name);
			f = fopen(path, "r");
		}
	closedir(dir);
	if (!f)
		return -ENOENT;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) &&
		    line[strlen(key)] == ':') {
			snprintf(out, len, "%s", line + strlen(key) + 2);
			out[strcspn(out, "\n")] = 0;
			ret = 0;
			break;
		}
	fclose(f);
	return ret;
}

FIXTURE(dbg) {
	struct vid_ctx ctx;
	struct vid_acct base;
	char *mem;
};

FIXTURE_SETUP(dbg)
{
	vid_ctx_init(&self->ctx);
	self->mem = NULL;
	if (!vid_prepare(_metadata))
		return;
	if (vid_backend_intree())
		SKIP(return, "the debugfs view is this module's own");
	VID_ASSERT_OK(vid_acct_read(&self->base));
	ASSERT_EQ(0, vid_debugfs_containers());
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	self->mem = vid_alloc(8 * P, 0x66);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(dbg)
{
	vid_ctx_close(&self->ctx);
	if (self->mem)
		vid_free(self->mem, 8 * P);
	if (!vid_backend_intree())
		EXPECT_EQ(0, vid_debugfs_containers());
	VID_EXPECT_ACCT(&self->base);
}

/* One directory, files readable by root only. */
TEST_F(dbg, layout_and_permissions)
{
	char path[300];
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int n = 0;

	ASSERT_EQ(1, vid_debugfs_containers());
	dir = opendir(VID_DEBUGFS_ROOT);
	ASSERT_NE(NULL, dir);
	while ((de = readdir(dir))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), VID_DEBUGFS_ROOT "/%s/state",
			 de->d_name);
		ASSERT_EQ(0, stat(path, &st));
		ASSERT_EQ(0400, st.st_mode & 0777);
		snprintf(path, sizeof(path), VID_DEBUGFS_ROOT "/%s/mappings",
			 de->d_name);
		ASSERT_EQ(0, stat(path, &st));
		ASSERT_EQ(0400, st.st_mode & 0777);
		n++;
	}
	closedir(dir);
	ASSERT_EQ(1, n);
}

/* The state follows every operation, counters included. */
TEST_F(dbg, state_follows_operations)
{
	int fd = self->ctx.container;
	char word[64];
	uint64_t bits, got;

	ASSERT_EQ(0, state_word("type", word, sizeof(word)));
	ASSERT_STREQ("v2", word);
	ASSERT_EQ(1, vid_debugfs_state("iommu_groups"));
	ASSERT_EQ(1, vid_debugfs_state("domains"));
	ASSERT_EQ(0, vid_debugfs_state("mappings"));

	VID_ASSERT_OK(vid_map(fd, 0x100000, self->mem, 4 * P, VID_MAP_RW));
	VID_ASSERT_OK(vid_map(fd, 0x200000, self->mem + 4 * P, 2 * P,
			      VID_MAP_RW));
	VID_ASSERT_ERR(EEXIST, vid_map(fd, 0x100000, self->mem, P,
				       VID_MAP_RW));
	ASSERT_EQ(2, vid_debugfs_state("mappings"));
	ASSERT_EQ(6 * P, vid_debugfs_state("mapping_bytes"));
	ASSERT_EQ(6 * P, vid_debugfs_state("iommu_mapped_bytes"));
	ASSERT_EQ(6, vid_debugfs_state("locked_vm_pages"));
	ASSERT_EQ(2, vid_debugfs_state("stat_maps"));
	ASSERT_EQ(0, state_word("dirty_tracking", word, sizeof(word)));
	ASSERT_STREQ("off", word);
	/* edu never pins: not in pinned-page scope. */
	ASSERT_EQ(0, state_word("pinned_scope", word, sizeof(word)));
	ASSERT_STREQ("no", word);

	VID_ASSERT_OK(vid_dirty_op(fd, 8, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	ASSERT_EQ(0, state_word("dirty_tracking", word, sizeof(word)));
	ASSERT_STREQ("on", word);
	/*
	 * Outside pinned-page scope every page of the mapping is dirty, and
	 * the bits of the word past it are the caller's, left alone.
	 */
	bits = POISON;
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, 0x100000, 4 * P, P, &bits,
				     sizeof(bits)));
	ASSERT_EQ((POISON & ~0xfULL) | 0xfULL, bits);
	ASSERT_EQ(1, vid_debugfs_state("stat_bitmap_queries"));
	ASSERT_EQ(4, vid_debugfs_state("stat_dirty_bits"));
	ASSERT_EQ(8, vid_debugfs_state("stat_bitmap_bytes"));
	bits = POISON;
	VID_ASSERT_OK(vid_unmap_bitmap(fd, 0, 0x200000, 2 * P, P, &bits,
				       sizeof(bits), &got));
	ASSERT_EQ(2 * P, got);
	ASSERT_EQ(POISON | 0x3ULL, bits);
	ASSERT_EQ(2, vid_debugfs_state("stat_bitmap_queries"));
	ASSERT_EQ(6, vid_debugfs_state("stat_dirty_bits"));
	ASSERT_EQ(1, vid_debugfs_state("stat_unmaps"));
	ASSERT_EQ(1, vid_debugfs_state("mappings"));
	ASSERT_EQ(4, vid_debugfs_state("locked_vm_pages"));
	VID_ASSERT_OK(vid_unmap(fd, 0x100000, 4 * P, &got));
	ASSERT_EQ(2, vid_debugfs_state("stat_unmaps"));
	ASSERT_EQ(0, vid_debugfs_state("mappings"));
	ASSERT_EQ(0, vid_debugfs_state("locked_vm_pages"));
}

/*
 * A mapping entering pinned-page scope is made dirty by whole bitmap
 * words, bits past its last page included. The report writes and counts
 * the mapping's pages only: 100 pages at page 27 of the range end at bit
 * 62 of the second user word, and stat_dirty_bits, counted before the
 * edge words are merged with the caller's bits, sees the 101st bit that
 * the merge would hide.
 */
TEST_F(dbg, scope_entry_counts_mapped_pages_only)
{
	const uint64_t iova = 0x1000000, npages = 100, lead = 27;
	int fd = self->ctx.container, egroup, efd;
	uint64_t bits[2], got;
	char word[64];
	char *mem;

	if (!vid_emu_prepare(_metadata))
		return;
	egroup = vid_device_group("platform", VID_EMU_DEV0);
	ASSERT_LE(0, egroup);
	efd = vid_open_group_id(fd, egroup);
	ASSERT_LE(0, efd);
	mem = vid_alloc(npages * P, 0x3c);
	ASSERT_NE(NULL, mem);
	VID_ASSERT_OK(vid_map(fd, iova + lead * P, mem, npages * P,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_dirty_op(fd, 8, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));

	/* edu leaves: only the emulated group is left. */
	ASSERT_EQ(0, ioctl(self->ctx.group, VFIO_GROUP_UNSET_CONTAINER));
	ASSERT_EQ(0, state_word("pinned_scope", word, sizeof(word)));
	ASSERT_STREQ("yes", word);
	ASSERT_EQ(0, vid_debugfs_state("stat_dirty_bits"));

	bits[0] = POISON;
	bits[1] = POISON;
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, iova, 2 * 64 * P, P, bits,
				     sizeof(bits)));
	ASSERT_EQ((POISON & ((1ULL << lead) - 1)) | ~0ULL << lead, bits[0]);
	ASSERT_EQ((POISON & 1ULL << 63) | ~0ULL >> 1, bits[1]);
	ASSERT_EQ(npages, vid_debugfs_state("stat_dirty_bits"));
	ASSERT_EQ(2 * 8, vid_debugfs_state("stat_bitmap_bytes"));

	/* Reported once: clean now, the caller's bits still untouched. */
	bits[0] = POISON;
	bits[1] = POISON;
	VID_ASSERT_OK(vid_get_bitmap(fd, 0, iova, 2 * 64 * P, P, bits,
				     sizeof(bits)));
	ASSERT_EQ(POISON & ((1ULL << lead) - 1), bits[0]);
	ASSERT_EQ(POISON & 1ULL << 63, bits[1]);
	ASSERT_EQ(npages, vid_debugfs_state("stat_dirty_bits"));

	VID_ASSERT_OK(vid_unmap(fd, iova + lead * P, npages * P, &got));
	ASSERT_EQ(npages * P, got);
	close(efd);
	vid_free(mem, npages * P);
}

/*
 * The type line of the containers with only vid-emu.0 in them: a nesting
 * one (VT-d cannot nest, so edu cannot join it; emulated groups join as
 * in-tree lets them), where the device pins a page, and a v1 one, which
 * refuses pins with EACCES, as in-tree, charging nothing.
 */
TEST(type_of_emulated_containers)
{
	static const struct {
		int type;
		const char *name;
		int pin_err;
	} types[] = {
		{ VFIO_TYPE1_NESTING_IOMMU, "nesting", 0 },
		{ VFIO_TYPE1_IOMMU, "v1", EACCES },
	};
	struct vid_acct base;
	struct vid_ctx ctx;
	unsigned int i;
	long pinned;
	char word[64];
	uint64_t got;
	bool served;
	char *mem;

	if (!vid_emu_prepare(_metadata))
		return;
	if (vid_backend_intree())
		SKIP(return, "the debugfs view is this module's own");
	VID_ASSERT_OK(vid_acct_read(&base));
	mem = vid_alloc(2 * P, 0x5a);
	ASSERT_NE(NULL, mem);
	for (i = 0; i < ARRAY_SIZE(types); i++) {
		VID_ASSERT_OK(vid_emu_ctx_open(&ctx, VID_EMU_DEV0, types[i].type,
					       &served));
		if (!vid_emu_served(_metadata, served))
			return;
		ASSERT_EQ(0, state_word("type", word, sizeof(word)));
		ASSERT_STREQ(types[i].name, word);
		ASSERT_EQ(0, vid_debugfs_state("domains"));
		ASSERT_EQ(1, vid_debugfs_state("emulated_groups"));
		VID_ASSERT_OK(vid_map(ctx.container, 0x100000, mem, 2 * P,
				      VID_MAP_RW));
		ASSERT_EQ(-types[i].pin_err,
			  vid_emu_pin(ctx.device, 0x100000 + P, 1,
				      VID_EMU_PIN_READ | VID_EMU_PIN_WRITE,
				      NULL));
		pinned = types[i].pin_err ? 0 : 1;
		ASSERT_EQ(pinned, vid_debugfs_state("device_pinned_pages"));
		ASSERT_EQ(pinned, vid_debugfs_state("locked_vm_pages"));
		ASSERT_EQ(base.vmlck_kb + pinned * VID_PAGE_KB, vid_vmlck_kb());
		VID_ASSERT_OK(vid_emu_unpin_all(ctx.device));
		VID_ASSERT_OK(vid_unmap(ctx.container, 0x100000, 2 * P, &got));
		ASSERT_EQ(2 * P, got);
		vid_ctx_close(&ctx);
		ASSERT_EQ(0, vid_debugfs_containers());
	}
	vid_free(mem, 2 * P);
	VID_ASSERT_ACCT(&base);
}

TEST_HARNESS_MAIN
