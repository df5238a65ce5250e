/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Assertion helpers shared by the vfio_iommu_dirty test programs. Include
 * after kselftest_harness.h: these helpers use its SKIP/ASSERT/EXPECT.
 */
#ifndef VID_TEST_H
#define VID_TEST_H

#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "vid_util.h"

/*
 * Skip when not in the test guest, otherwise put the kernel modules in the
 * state the selected backend needs (see vid_modules_setup()). Returns
 * false when the test is skipped: the caller then returns at once.
 */
static inline bool vid_prepare(struct __test_metadata *_metadata)
{
	const char *why = vid_skip_reason();
	int ret;

	if (why)
		SKIP(return false, "%s", why);
	ret = vid_modules_setup(&why);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", why, strerror(-ret));
	return true;
}

/* Assert that an int-returning helper gave 0, printing the errno name. */
#define VID_ASSERT_OK(_expr) do {					\
	int __r = (_expr);						\
	ASSERT_EQ(0, __r) TH_LOG("%s: %s", #_expr, strerror(-__r));	\
} while (0)

/* Assert that an int-returning helper failed with -@_err. */
#define VID_ASSERT_ERR(_err, _expr) do {				\
	int __e = (_err);						\
	int __r = (_expr);						\
	ASSERT_EQ(-__e, __r)						\
		TH_LOG("%s: got %s, want %s", #_expr,			\
		       __r ? strerror(-__r) : "success",		\
		       strerror(__e));					\
} while (0)

/*
 * Unmap [@_iova, @_iova + @_size) and assert that it succeeds with
 * exactly @_want bytes reported as unmapped.
 */
#define VID_ASSERT_UNMAP(_fd, _iova, _size, _want) do {		\
	uint64_t __iova = (_iova), __size = (_size), __got;		\
	VID_ASSERT_OK(vid_unmap((_fd), __iova, __size, &__got));	\
	ASSERT_EQ((uint64_t)(_want), __got)				\
		TH_LOG("unmap 0x%llx+0x%llx reported 0x%llx",		\
		       (unsigned long long)__iova,			\
		       (unsigned long long)__size,			\
		       (unsigned long long)__got);			\
} while (0)

/*
 * Compare the locked-memory and pinned-page counters with @base: EXPECT
 * (the test goes on) or ASSERT (the test stops).
 */
static inline void vid_check_acct(struct __test_metadata *_metadata,
				  const struct vid_acct *base, bool hard)
{
	struct vid_acct now;
	int ret = vid_acct_read(&now);
	bool same = !ret && now.vmlck_kb == base->vmlck_kb &&
		    now.pinned == base->pinned;

	EXPECT_EQ(0, ret) TH_LOG("reading counters: %s", strerror(-ret));
	EXPECT_EQ(base->vmlck_kb, now.vmlck_kb)
		TH_LOG("VmLck is %ld kB, was %ld kB", now.vmlck_kb,
		       base->vmlck_kb);
	EXPECT_EQ(base->pinned, now.pinned)
		TH_LOG("pinned pages: %ld, was %ld", now.pinned,
		       base->pinned);
	if (hard)
		ASSERT_TRUE(same);
}

#define VID_EXPECT_ACCT(_base)	vid_check_acct(_metadata, (_base), false)
#define VID_ASSERT_ACCT(_base)	vid_check_acct(_metadata, (_base), true)

/* Skip outside the test guest; otherwise load the modules the tests need. */
static inline bool vid_emu_prepare(struct __test_metadata *_metadata)
{
	const char *why = NULL;
	int ret;

	if (access(VID_CONTAINER_PATH, R_OK | W_OK))
		SKIP(return false, "%s is not available", VID_CONTAINER_PATH);
	ret = vid_modules_setup(&why);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", why, strerror(-ret));
	ret = vid_emu_load();
	ASSERT_EQ(0, ret)
		TH_LOG("loading the test module (%s next to this program, or $VID_EMU_MODULE): %s",
		       VID_EMU_KO, strerror(-ret));
	return true;
}

/*
 * A container holding an emulated group must be served by the backend
 * under test. In-tree type1 always takes it; vfio_iommu_dirty may still
 * refuse emulated groups, and the VFIO core then gives the container to
 * type1: skip what would otherwise test type1 instead of our module.
 * Returns false when the test is skipped: the caller then returns at once.
 */
static inline bool vid_emu_served(struct __test_metadata *_metadata, bool served)
{
	if (served)
		return true;
	ASSERT_FALSE(vid_backend_intree())
		TH_LOG("%s did not take the container", VID_MOD_TYPE1);
	SKIP(return false,
	     "%s does not serve containers with an emulated group (the VFIO core gave it to %s)",
	     VID_MOD_OURS, VID_MOD_TYPE1);
}

/*
 * A container of @type with the test device vid-emu.0 in it, served
 * by the backend under test: true, or false after SKIP when
 * the VFIO core gave the container to another driver. Asserts the open.
 */
static inline bool vid_emu_open(struct __test_metadata *_metadata,
				struct vid_ctx *ctx, int type)
{
	bool served;

	VID_ASSERT_OK(vid_emu_ctx_open(ctx, VID_EMU_DEV0, type, &served));
	return vid_emu_served(_metadata, served);
}

/*
 * Drop CAP_IPC_LOCK from the effective set, so that RLIMIT_MEMLOCK limits
 * what the test pins (each test runs in its own process). 0 or -errno.
 */
static inline int vid_drop_cap_ipc_lock(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	data[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &=
		~CAP_TO_MASK(CAP_IPC_LOCK);
	if (syscall(SYS_capset, &hdr, data))
		return -errno;
	return 0;
}

#endif /* VID_TEST_H */
