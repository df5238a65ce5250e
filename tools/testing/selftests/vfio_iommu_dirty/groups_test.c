// SPDX-License-Identifier: GPL-2.0
/*
 * Groups coming and going in one container: a container that starts with
 * only an emulated group (no IOMMU, nothing pinned for the IOMMU), gets an
 * IOMMU-backed group later (every mapping is then pinned and mapped into
 * the new domain: replay), and loses it again (the mappings stay for the
 * emulated device, unpinned). A group whose reserved regions would cover a
 * mapping is refused. Checked with real edu DMA and exact accounting.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define P		VID_PAGE
#define NPAGES		16
#define IOVA		0x1000000ULL

/* Container with the emulated device's group only; the device fd. */
FIXTURE(grp) {
	struct vid_acct base;
	int container, egroup, dev;
	uint8_t *mem;
};

FIXTURE_SETUP(grp)
{
	bool served;
	int id;

	self->container = -1;
	self->egroup = -1;
	self->dev = -1;
	self->mem = NULL;
	if (!vid_emu_prepare(_metadata))
		return;
	if (vid_skip_reason())
		SKIP(return, "%s", vid_skip_reason());
	VID_ASSERT_OK(vid_acct_read(&self->base));
	self->container = vid_open_container();
	ASSERT_LE(0, self->container);
	id = vid_device_group("platform", VID_EMU_DEV0);
	ASSERT_LE(0, id);
	self->egroup = vid_open_group_id(self->container, id);
	ASSERT_LE(0, self->egroup);
	VID_ASSERT_OK(vid_set_iommu(self->container, VFIO_TYPE1v2_IOMMU,
				    vid_backend_module(), &served));
	if (!vid_emu_served(_metadata, served))
		return;
	self->dev = ioctl(self->egroup, VFIO_GROUP_GET_DEVICE_FD,
			  VID_EMU_DEV0);
	ASSERT_LE(0, self->dev);
	self->mem = vid_alloc(NPAGES * P, 0x31);
	ASSERT_NE(NULL, self->mem);
}

FIXTURE_TEARDOWN(grp)
{
	if (self->dev >= 0)
		close(self->dev);
	if (self->egroup >= 0)
		close(self->egroup);
	if (self->container >= 0)
		close(self->container);
	if (self->mem)
		vid_free(self->mem, NPAGES * P);
	VID_EXPECT_ACCT(&self->base);
}

/*
 * Replay: mapped while only the emulated group was there (nothing pinned,
 * nothing charged), the mapping is pinned, charged and reachable by edu as
 * soon as edu's group joins, and released again when it leaves.
 */
TEST_F(grp, replay_on_iommu_attach)
{
	struct vid_ctx edu_ctx;
	struct vid_edu edu;
	uint8_t in[2048], out[2048];
	unsigned int i;
	uint64_t got;

	VID_ASSERT_OK(vid_map(self->container, IOVA, self->mem, NPAGES * P,
			      VID_MAP_RW));
	/* Emulated only: recorded, not pinned, not charged. */
	vid_check_acct(_metadata, &self->base, true);
	VID_ASSERT_OK(vid_emu_pin(self->dev, IOVA + P, 1,
				  VID_EMU_PIN_READ | VID_EMU_PIN_WRITE,
				  NULL));
	ASSERT_EQ(self->base.vmlck_kb + VID_PAGE_KB, vid_vmlck_kb());

	vid_ctx_init(&edu_ctx);
	edu_ctx.container = self->container;
	edu_ctx.group = vid_open_group(self->container);
	ASSERT_LE(0, edu_ctx.group) TH_LOG("%s", strerror(-edu_ctx.group));
	/* Every page pinned and charged once (the device's pin included). */
	ASSERT_EQ(self->base.vmlck_kb + NPAGES * VID_PAGE_KB, vid_vmlck_kb());

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 13 + 5);
	memcpy(self->mem + 2 * P, in, sizeof(in));
	memset(self->mem + 9 * P, 0, sizeof(out));
	VID_ASSERT_OK(vid_edu_open(&edu_ctx, &edu));
	VID_ASSERT_OK(vid_edu_dma(&edu, IOVA + 2 * P, 0, sizeof(in), false));
	VID_ASSERT_OK(vid_edu_dma(&edu, IOVA + 9 * P, 0, sizeof(in), true));
	memcpy(out, self->mem + 9 * P, sizeof(out));
	ASSERT_EQ(0, memcmp(in, out, sizeof(in)));

	/* edu leaves: the mapping stays, only the device's pin is charged. */
	close(edu_ctx.device);
	ASSERT_EQ(0, ioctl(edu_ctx.group, VFIO_GROUP_UNSET_CONTAINER));
	close(edu_ctx.group);
	ASSERT_EQ(self->base.vmlck_kb + VID_PAGE_KB, vid_vmlck_kb());
	VID_ASSERT_ERR(EEXIST, vid_map(self->container, IOVA, self->mem, P,
				       VID_MAP_RW));
	VID_ASSERT_OK(vid_emu_unpin_all(self->dev));
	VID_ASSERT_OK(vid_unmap(self->container, IOVA, NPAGES * P, &got));
	ASSERT_EQ(NPAGES * P, got);
}

/*
 * Without an IOMMU any IOVA can be mapped, even the MSI window edu's
 * group reserves (VT-d's at 0xfee00000, the software one of an Arm SMMU
 * at 0x8000000, as sysfs says); that group then cannot join, and nothing
 * changes.
 */
TEST_F(grp, reserved_region_collision)
{
	uint64_t msi, msi_last, got;
	int group;

	VID_ASSERT_OK(vid_msi_window(vid_edu_group(), &msi, &msi_last));
	VID_ASSERT_OK(vid_map(self->container, msi, self->mem, P,
			      VID_MAP_RW));
	group = vid_open_group(self->container);
	ASSERT_EQ(-EINVAL, group);
	vid_check_acct(_metadata, &self->base, true);
	VID_ASSERT_OK(vid_unmap(self->container, msi, P, &got));
	ASSERT_EQ(P, got);
	/* With the conflict gone, the group joins. */
	group = vid_open_group(self->container);
	ASSERT_LE(0, group);
	close(group);
}

/*
 * Replay of a mapping whose every page the device has pinned already:
 * they are charged once (the device's charge), not again for the IOMMU,
 * so the attach needs no RLIMIT_MEMLOCK headroom (the owner, without
 * CAP_IPC_LOCK, is at its limit; in-tree counts only pages no device has
 * pinned too), and edu reaches them. When edu leaves, the device's pins
 * keep their charge.
 */
TEST_F(grp, replay_of_device_pinned_mapping)
{
	const uint64_t iova2 = IOVA + NPAGES * P;
	struct vid_ctx edu_ctx;
	struct vid_edu edu;
	struct rlimit rl;
	uint8_t in[1024];
	unsigned int i;
	uint64_t got;

	VID_ASSERT_OK(vid_drop_cap_ipc_lock());
	VID_ASSERT_OK(vid_map(self->container, iova2, self->mem, 2 * P,
			      VID_MAP_RW));
	VID_ASSERT_OK(vid_emu_pin(self->dev, iova2, 2,
				  VID_EMU_PIN_READ | VID_EMU_PIN_WRITE,
				  NULL));
	ASSERT_EQ(self->base.vmlck_kb + 2 * VID_PAGE_KB, vid_vmlck_kb());
	ASSERT_EQ(0, getrlimit(RLIMIT_MEMLOCK, &rl));
	rl.rlim_cur = vid_vmlck_kb() * 1024;
	ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &rl));

	vid_ctx_init(&edu_ctx);
	edu_ctx.container = self->container;
	edu_ctx.group = vid_open_group(self->container);
	ASSERT_LE(0, edu_ctx.group) TH_LOG("%s", strerror(-edu_ctx.group));
	ASSERT_EQ(self->base.vmlck_kb + 2 * VID_PAGE_KB, vid_vmlck_kb());

	/* edu reads the second page through its new domain. */
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 1);
	memcpy(self->mem + P + 512, in, sizeof(in));
	VID_ASSERT_OK(vid_edu_open(&edu_ctx, &edu));
	VID_ASSERT_OK(vid_edu_dma(&edu, iova2 + P + 512, 0, sizeof(in),
				  false));
	memset(self->mem + 512, 0, sizeof(in));
	VID_ASSERT_OK(vid_edu_dma(&edu, iova2 + 512, 0, sizeof(in), true));
	ASSERT_EQ(0, memcmp(in, self->mem + 512, sizeof(in)));

	close(edu_ctx.device);
	ASSERT_EQ(0, ioctl(edu_ctx.group, VFIO_GROUP_UNSET_CONTAINER));
	close(edu_ctx.group);
	ASSERT_EQ(self->base.vmlck_kb + 2 * VID_PAGE_KB, vid_vmlck_kb());
	VID_ASSERT_OK(vid_emu_unpin_all(self->dev));
	ASSERT_EQ(self->base.vmlck_kb, vid_vmlck_kb());
	VID_ASSERT_OK(vid_unmap(self->container, iova2, 2 * P, &got));
	ASSERT_EQ(2 * P, got);
}

/*
 * Two emulated groups, vid-emu.0's and vid-mig.0's: when one leaves, the
 * other still needs the mappings, so they stay (only the last group of
 * any kind takes them with it, as in-tree): the device still reads and
 * writes through them, the IOVA is still taken, and the unmap finds the
 * whole mapping.
 */
TEST(emulated_group_leaves_another_stays)
{
	uint8_t in[64], out[64];
	int container, egroup, mgroup, dev;
	struct vid_acct base;
	uint64_t got;
	uint8_t *mem;
	bool served;
	int id;

	if (!vid_emu_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_emu_load_mig(1));
	VID_ASSERT_OK(vid_acct_read(&base));
	mem = vid_alloc(NPAGES * P, 0x47);
	ASSERT_NE(NULL, mem);
	container = vid_open_container();
	ASSERT_LE(0, container);
	id = vid_device_group("platform", VID_EMU_DEV0);
	ASSERT_LE(0, id);
	egroup = vid_open_group_id(container, id);
	ASSERT_LE(0, egroup);
	id = vid_device_group("platform", VID_EMU_MIG ".0");
	ASSERT_LE(0, id);
	mgroup = vid_open_group_id(container, id);
	ASSERT_LE(0, mgroup);
	VID_ASSERT_OK(vid_set_iommu(container, VFIO_TYPE1v2_IOMMU,
				    vid_backend_module(), &served));
	if (!vid_emu_served(_metadata, served))
		return;
	dev = ioctl(egroup, VFIO_GROUP_GET_DEVICE_FD, VID_EMU_DEV0);
	ASSERT_LE(0, dev);
	VID_ASSERT_OK(vid_map(container, IOVA, mem, NPAGES * P, VID_MAP_RW));
	if (!vid_backend_intree()) {
		ASSERT_EQ(2, vid_debugfs_state("emulated_groups"));
		ASSERT_EQ(1, vid_debugfs_state("mappings"));
	}

	ASSERT_EQ(0, ioctl(mgroup, VFIO_GROUP_UNSET_CONTAINER));
	close(mgroup);
	if (!vid_backend_intree()) {
		ASSERT_EQ(1, vid_debugfs_state("emulated_groups"));
		ASSERT_EQ(1, vid_debugfs_state("mappings"));
		ASSERT_EQ((long long)(NPAGES * P),
			  vid_debugfs_state("mapping_bytes"));
	}
	/* Still mapped: the device reaches the memory both ways. */
	VID_ASSERT_OK(vid_emu_rw(dev, IOVA + 3 * P + 8, out, sizeof(out), 0));
	memset(in, 0x47, sizeof(in));
	ASSERT_EQ(0, memcmp(in, out, sizeof(out)));
	memset(in, 0x9e, sizeof(in));
	VID_ASSERT_OK(vid_emu_rw(dev, IOVA + (NPAGES - 1) * P, in, sizeof(in),
				 VID_EMU_RW_WRITE));
	ASSERT_EQ(0, memcmp(in, mem + (NPAGES - 1) * P, sizeof(in)));
	VID_ASSERT_ERR(EEXIST, vid_map(container, IOVA + P, mem, P,
				       VID_MAP_RW));
	vid_check_acct(_metadata, &base, true);
	VID_ASSERT_OK(vid_unmap(container, IOVA, NPAGES * P, &got));
	ASSERT_EQ(NPAGES * P, got);

	close(dev);
	close(egroup);
	close(container);
	vid_free(mem, NPAGES * P);
	VID_ASSERT_ACCT(&base);
}

TEST_HARNESS_MAIN
