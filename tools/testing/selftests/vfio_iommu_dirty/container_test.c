// SPDX-License-Identifier: GPL-2.0
/*
 * Container level API of a type1 backend: API version, SET_IOMMU,
 * CHECK_EXTENSION, GET_INFO and unknown ioctls.
 *
 * Expected values follow Linux 6.12: drivers/vfio/container.c for what the
 * core answers itself, drivers/vfio/vfio_iommu_type1.c for what the
 * backend answers.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

/* An ioctl number in the VFIO range that no one implements. */
#define VID_BOGUS_IOCTL		_IO(VFIO_TYPE, VFIO_BASE + 60)
/* An IOMMU type no driver knows. */
#define VID_BOGUS_IOMMU		0x7fff

static int xioctl(int fd, unsigned long cmd, unsigned long arg)
{
	int ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

/* The edu group is in the container, no IOMMU type is set yet. */
FIXTURE(container) {
	struct vid_ctx ctx;
	struct vid_acct base;
};

FIXTURE_SETUP(container)
{
	vid_ctx_init(&self->ctx);
	if (!vid_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_acct_read(&self->base));
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, 0));
}

FIXTURE_TEARDOWN(container)
{
	vid_ctx_close(&self->ctx);
	VID_EXPECT_ACCT(&self->base);
}

TEST_F(container, api_version)
{
	ASSERT_EQ(VFIO_API_VERSION,
		  xioctl(self->ctx.container, VFIO_GET_API_VERSION, 0));
}

/* SET_IOMMU is refused by the core until a group is in the container. */
TEST_F(container, set_iommu_needs_group)
{
	int fd = vid_open_container();

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, xioctl(fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	close(fd);
}

/*
 * No driver accepts an unknown type: the core walks its driver list and
 * gives up with ENODEV (not EINVAL). The container is left unset, so a
 * valid SET_IOMMU afterwards succeeds, and the failed attempt left no
 * module reference behind.
 */
TEST_F(container, set_iommu_bogus_type)
{
	const char *mod = vid_backend_module();
	long ref0 = vid_module_refcnt(mod);

	ASSERT_LE(0, ref0);
	ASSERT_EQ(-ENODEV, xioctl(self->ctx.container, VFIO_SET_IOMMU,
				  VID_BOGUS_IOMMU));
	ASSERT_EQ(ref0, vid_module_refcnt(mod));
	ASSERT_EQ(0, xioctl(self->ctx.container, VFIO_SET_IOMMU,
			    VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(ref0 + 1, vid_module_refcnt(mod));
}

/*
 * VFIO_UNMAP_ALL is an extension every type1 driver announces but no
 * IOMMU type: the core (6.12 container.c, vfio_ioctl_set_iommu()) asks
 * each driver CHECK_EXTENSION(arg), gets 1, calls open(arg), which refuses
 * it, puts the module and tries the next driver. The last refusal's errno
 * reaches user space: EINVAL, from this backend and in-tree alike. The
 * container stays unset and usable: TYPE1v2 is set afterwards and maps.
 */
TEST_F(container, set_iommu_extension_not_a_type)
{
	const char *mod = vid_backend_module();
	long ref0 = vid_module_refcnt(mod);
	int c = self->ctx.container;
	void *buf;

	ASSERT_LE(0, ref0);
	ASSERT_EQ(1, xioctl(c, VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL));
	ASSERT_EQ(-EINVAL, xioctl(c, VFIO_SET_IOMMU, VFIO_UNMAP_ALL));
	ASSERT_EQ(ref0, vid_module_refcnt(mod));
	/* Still no driver: GET_INFO is the core's EINVAL, not a backend's. */
	ASSERT_EQ(-EINVAL, xioctl(c, VFIO_IOMMU_GET_INFO, 0));

	ASSERT_EQ(0, xioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(ref0 + 1, vid_module_refcnt(mod));
	buf = vid_alloc(2 * VID_PAGE, 0x5a);
	ASSERT_NE(NULL, buf);
	VID_ASSERT_OK(vid_map(c, 0x100000, buf, 2 * VID_PAGE, VID_MAP_RW));
	/* A v2 container: an unmap cutting the mapping is refused. */
	VID_ASSERT_ERR(EINVAL, vid_unmap(c, 0x100000, VID_PAGE, NULL));
	VID_ASSERT_UNMAP(c, 0x100000, 2 * VID_PAGE, 2 * VID_PAGE);
	vid_free(buf, 2 * VID_PAGE);
}

/* A container gets one IOMMU driver; a second SET_IOMMU is EINVAL. */
TEST_F(container, set_iommu_twice)
{
	ASSERT_EQ(0, xioctl(self->ctx.container, VFIO_SET_IOMMU,
			    VFIO_TYPE1v2_IOMMU));
	EXPECT_EQ(-EINVAL, xioctl(self->ctx.container, VFIO_SET_IOMMU,
				  VFIO_TYPE1v2_IOMMU));
	EXPECT_EQ(-EINVAL, xioctl(self->ctx.container, VFIO_SET_IOMMU,
				  VFIO_TYPE1_IOMMU));
}

TEST_F(container, check_extension_type1)
{
	int c = self->ctx.container;

	/* Before SET_IOMMU the core polls the registered drivers. */
	EXPECT_EQ(1, xioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU));
	ASSERT_EQ(0, xioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	/* Afterwards only the container's own driver answers. */
	EXPECT_EQ(1, xioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU));
	EXPECT_EQ(1, xioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU));
}

/*
 * Without a driver the core answers unknown ioctls (and GET_INFO) with
 * EINVAL; once the driver is set everything unknown reaches it and it
 * answers ENOTTY.
 */
TEST_F(container, unknown_ioctl)
{
	struct vfio_iommu_type1_info info = { .argsz = sizeof(info) };
	int c = self->ctx.container;

	EXPECT_EQ(-EINVAL, xioctl(c, VID_BOGUS_IOCTL, 0));
	EXPECT_EQ(-EINVAL, xioctl(c, VFIO_IOMMU_GET_INFO,
				  (unsigned long)&info));
	ASSERT_EQ(0, xioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	EXPECT_EQ(-ENOTTY, xioctl(c, VID_BOGUS_IOCTL, 0));
	EXPECT_EQ(-ENOTTY, xioctl(c, _IO(VFIO_TYPE, VFIO_BASE + 99), 0));
	/* The container still works after the rejected calls. */
	EXPECT_EQ(0, xioctl(c, VFIO_IOMMU_GET_INFO, (unsigned long)&info));
}

TEST_F(container, get_info_pgsizes)
{
	struct vfio_iommu_type1_info info;
	int c = self->ctx.container;

	ASSERT_EQ(0, xioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	memset(&info, 0, sizeof(info));
	info.argsz = sizeof(info);
	ASSERT_EQ(0, xioctl(c, VFIO_IOMMU_GET_INFO, (unsigned long)&info));
	EXPECT_TRUE(info.flags & VFIO_IOMMU_INFO_PGSIZES);
	EXPECT_TRUE(info.iova_pgsizes & VID_PAGE)
		TH_LOG("iova_pgsizes 0x%llx",
		       (unsigned long long)info.iova_pgsizes);
	/* Nothing smaller than the CPU page size can be offered. */
	EXPECT_EQ(0, info.iova_pgsizes & (VID_PAGE - 1));
}

/*
 * argsz below offsetofend(iova_pgsizes) is EINVAL; exactly that much is
 * served and nothing beyond it is written; more is fine.
 */
TEST_F(container, get_info_argsz)
{
	const size_t minsz = VID_INFO_MINSZ;
	struct vfio_iommu_type1_info *info;
	uint64_t pgsizes;
	uint8_t buf[1024];
	int c = self->ctx.container;
	size_t i;

	info = (struct vfio_iommu_type1_info *)buf;
	ASSERT_EQ(0, xioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));

	memset(buf, 0xa5, sizeof(buf));
	info->argsz = minsz - 1;
	EXPECT_EQ(-EINVAL, xioctl(c, VFIO_IOMMU_GET_INFO,
				  (unsigned long)info));
	info->argsz = 0;
	EXPECT_EQ(-EINVAL, xioctl(c, VFIO_IOMMU_GET_INFO,
				  (unsigned long)info));

	memset(buf, 0xa5, sizeof(buf));
	info->argsz = minsz;
	ASSERT_EQ(0, xioctl(c, VFIO_IOMMU_GET_INFO, (unsigned long)info));
	EXPECT_TRUE(info->flags & VFIO_IOMMU_INFO_PGSIZES);
	EXPECT_TRUE(info->iova_pgsizes & VID_PAGE);
	pgsizes = info->iova_pgsizes;
	for (i = minsz; i < sizeof(buf); i++) {
		ASSERT_EQ(0xa5, buf[i])
			TH_LOG("byte %zu written", i);
	}

	memset(buf, 0, sizeof(buf));
	info->argsz = sizeof(buf);
	ASSERT_EQ(0, xioctl(c, VFIO_IOMMU_GET_INFO, (unsigned long)info));
	EXPECT_TRUE(info->flags & VFIO_IOMMU_INFO_PGSIZES);
	EXPECT_EQ(pgsizes, info->iova_pgsizes);
	EXPECT_LE(minsz, info->argsz);
}

/* The original (v1) type1 interface is served too. */
TEST_F(container, type1_v1_container)
{
	struct vfio_iommu_type1_info info = { .argsz = sizeof(info) };
	int c = self->ctx.container;

	ASSERT_EQ(0, xioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU));
	EXPECT_EQ(1, xioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU));
	ASSERT_EQ(0, xioctl(c, VFIO_IOMMU_GET_INFO, (unsigned long)&info));
	EXPECT_TRUE(info.flags & VFIO_IOMMU_INFO_PGSIZES);
	EXPECT_TRUE(info.iova_pgsizes & VID_PAGE);
}

TEST_HARNESS_MAIN
