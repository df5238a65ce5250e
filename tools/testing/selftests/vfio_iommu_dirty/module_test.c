// SPDX-License-Identifier: GPL-2.0
/*
 * Which module serves a type1 container, and the module's lifecycle while
 * containers use it.
 *
 * The VFIO core takes a reference on the serving driver's module at
 * SET_IOMMU and drops it when the last group leaves the container
 * (drivers/vfio/container.c), so /sys/module/NAME/refcnt tells which
 * module serves a container. With VID_BACKEND=intree the same checks are
 * made against vfio_iommu_type1, which validates the method itself.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

static const char *other_module(void)
{
	return vid_backend_intree() ? VID_MOD_OURS : VID_MOD_TYPE1;
}

/* refcnt of @name, or -1 when it is not loaded at all. */
static long refcnt_or_absent(const char *name)
{
	long r = vid_module_refcnt(name);

	return r == -ENOENT ? -1 : r;
}

FIXTURE(module) {
	struct vid_ctx ctx;
	struct vid_acct base;
};

FIXTURE_SETUP(module)
{
	vid_ctx_init(&self->ctx);
	if (!vid_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_acct_read(&self->base));
}

FIXTURE_TEARDOWN(module)
{
	vid_ctx_close(&self->ctx);
	VID_EXPECT_ACCT(&self->base);
	/* Leave the modules as the next test expects them. */
	EXPECT_EQ(0, vid_modules_setup(NULL));
}

/*
 * The serving module's refcount rises by one at SET_IOMMU, stays up while
 * a group still holds the container (even with the container fd closed)
 * and falls back once the group fd is closed. The other module is not
 * involved at any point.
 */
TEST_F(module, serves_container)
{
	const char *mine = vid_backend_module();
	const char *other = other_module();
	long ref0, other0;

	/* The harness's ASSERT macros are not single statements. */
	ASSERT_EQ(!vid_backend_intree(), vid_module_live(VID_MOD_OURS));

	ref0 = vid_module_refcnt(mine);
	other0 = refcnt_or_absent(other);
	ASSERT_LE(0, ref0);

	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	EXPECT_EQ(ref0 + 1, vid_module_refcnt(mine));
	EXPECT_EQ(other0, refcnt_or_absent(other));

	close(self->ctx.container);
	self->ctx.container = -1;
	EXPECT_EQ(ref0 + 1, vid_module_refcnt(mine))
		TH_LOG("the group still holds the container");

	close(self->ctx.group);
	self->ctx.group = -1;
	EXPECT_EQ(ref0, vid_module_refcnt(mine));
	EXPECT_EQ(other0, refcnt_or_absent(other));
}

/* v2 and v1 containers each take one reference and drop it on close. */
TEST_F(module, refcnt_v2_and_v1)
{
	const char *mine = vid_backend_module();
	long ref0 = vid_module_refcnt(mine);

	ASSERT_LE(0, ref0);
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(ref0 + 1, vid_module_refcnt(mine));
	vid_ctx_close(&self->ctx);
	ASSERT_EQ(ref0, vid_module_refcnt(mine));

	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1_IOMMU));
	EXPECT_EQ(ref0 + 1, vid_module_refcnt(mine));
	vid_ctx_close(&self->ctx);
	EXPECT_EQ(ref0, vid_module_refcnt(mine));
}

/*
 * Unloading the serving module while a container uses it is refused by
 * the module loader with EWOULDBLOCK (== EAGAIN), and the container keeps
 * working afterwards.
 */
TEST_F(module, rmmod_refused_while_in_use)
{
	const char *mine = vid_backend_module();
	const size_t sz = 4 * VID_PAGE;
	const uint64_t iova = 0x100000;
	long ref0 = vid_module_refcnt(mine);
	void *buf;

	ASSERT_LE(0, ref0);
	buf = vid_alloc(sz, 0x11);
	ASSERT_NE(NULL, buf);
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	VID_ASSERT_OK(vid_map(self->ctx.container, iova, buf, sz,
			      VID_MAP_RW));

	EXPECT_EQ(-EWOULDBLOCK, vid_module_remove(mine, true));
	ASSERT_TRUE(vid_module_live(mine));
	EXPECT_EQ(ref0 + 1, vid_module_refcnt(mine));

	VID_ASSERT_UNMAP(self->ctx.container, iova, sz, sz);
	VID_ASSERT_OK(vid_map(self->ctx.container, iova, buf, sz,
			      VID_MAP_RW));
	VID_ASSERT_UNMAP(self->ctx.container, iova, sz, sz);
	vid_ctx_close(&self->ctx);
	vid_free(buf, sz);
}

/*
 * Once the last container is closed the module unloads; new containers
 * then go to vfio_iommu_type1, and after reloading ours they come back.
 */
TEST_F(module, rmmod_after_close_and_reload)
{
	long t1_ref, ours_ref;

	if (vid_backend_intree())
		SKIP(return, "about vfio_iommu_dirty only");

	ASSERT_EQ(0, vid_module_refcnt(VID_MOD_OURS))
		TH_LOG("someone else holds %s", VID_MOD_OURS);
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	vid_ctx_close(&self->ctx);

	VID_ASSERT_OK(vid_module_remove(VID_MOD_OURS, false));
	ASSERT_FALSE(vid_module_live(VID_MOD_OURS));
	ASSERT_NE(0, access("/sys/module/" VID_MOD_OURS, F_OK));

	/* With ours gone, in-tree type1 serves the next container. */
	t1_ref = vid_module_refcnt(VID_MOD_TYPE1);
	ASSERT_LE(0, t1_ref);
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	EXPECT_EQ(t1_ref + 1, vid_module_refcnt(VID_MOD_TYPE1));
	vid_ctx_close(&self->ctx);
	EXPECT_EQ(t1_ref, vid_module_refcnt(VID_MOD_TYPE1));

	/* Reload: ours is registered last, so it serves again. */
	VID_ASSERT_OK(vid_module_load_ours());
	ASSERT_TRUE(vid_module_live(VID_MOD_OURS));
	ours_ref = vid_module_refcnt(VID_MOD_OURS);
	ASSERT_EQ(0, ours_ref);
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	EXPECT_EQ(1, vid_module_refcnt(VID_MOD_OURS));
	EXPECT_EQ(t1_ref, vid_module_refcnt(VID_MOD_TYPE1));
	vid_ctx_close(&self->ctx);
	EXPECT_EQ(0, vid_module_refcnt(VID_MOD_OURS));
}

TEST_HARNESS_MAIN
