// SPDX-License-Identifier: GPL-2.0
/*
 * vid_demo - one DMA round trip through a vfio_iommu_dirty container,
 * narrated for a person watching.
 *
 * Runs in the test guest (make demo): the QEMU edu device is bound to
 * vfio-pci and sits behind the emulated VT-d IOMMU. The program maps two
 * buffers of its own memory through this module, has the device read one
 * and write the other, and shows what arrived.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vid_util.h"

#define SRC_IOVA	0x100000ULL
#define DST_IOVA	0x200000ULL
#define XFER		2048ULL		/* edu aborts on its buffer's last byte */

static int fail(const char *what, int err)
{
	fprintf(stderr, "demo: %s failed: %s\n", what, strerror(-err));
	return 1;
}

static void show_backend(void)
{
	printf("   /sys/module/%s/refcnt = %ld (one per container it serves)\n",
	       VID_MOD_OURS, vid_module_refcnt(VID_MOD_OURS));
	printf("   /sys/module/%s/refcnt = %ld\n", VID_MOD_TYPE1,
	       vid_module_refcnt(VID_MOD_TYPE1));
}

static int run(struct vid_ctx *ctx, char *src, char *dst)
{
	struct vfio_iommu_type1_info info = { .argsz = sizeof(info) };
	struct vid_edu edu;
	uint64_t size;
	int ret;

	printf("2. Container on /dev/vfio/vfio, IOMMU group %d (edu at %s),\n"
	       "   VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU):\n",
	       vid_edu_group(), vid_edu_bdf());
	show_backend();
	if (ioctl(ctx->container, VFIO_IOMMU_GET_INFO, &info))
		return fail("VFIO_IOMMU_GET_INFO", -errno);
	printf("   IOMMU page sizes: 0x%llx\n\n",
	       (unsigned long long)info.iova_pgsizes);

	snprintf(src, VID_PAGE, "%s",
		 "Hello from process memory, carried by the edu device through vfio_iommu_dirty's IOMMU mappings.");
	printf("3. Mapping (VmLck before: %ld kB)\n", vid_vmlck_kb());
	ret = vid_map(ctx->container, SRC_IOVA, src, VID_PAGE,
		      VFIO_DMA_MAP_FLAG_READ);
	if (ret)
		return fail("MAP_DMA of the source buffer", ret);
	printf("   source      vaddr %p -> IOVA 0x%llx, 4 KiB, device may read\n",
	       (void *)src, SRC_IOVA);
	ret = vid_map(ctx->container, DST_IOVA, dst, VID_PAGE,
		      VFIO_DMA_MAP_FLAG_WRITE);
	if (ret)
		return fail("MAP_DMA of the destination buffer", ret);
	printf("   destination vaddr %p -> IOVA 0x%llx, 4 KiB, device may write\n",
	       (void *)dst, DST_IOVA);
	printf("   VmLck now: %ld kB (both pages pinned and charged)\n\n",
	       vid_vmlck_kb());

	ret = vid_edu_open(ctx, &edu);
	if (ret)
		return fail("opening the edu device", ret);
	printf("4. Device DMA (bus mastering on)\n");
	ret = vid_edu_dma(&edu, SRC_IOVA, 0, XFER, false);
	if (ret)
		return fail("edu DMA IOVA -> device", ret);
	printf("   edu read  %llu bytes at IOVA 0x%llx into its buffer\n",
	       XFER, SRC_IOVA);
	ret = vid_edu_dma(&edu, DST_IOVA, 0, XFER, true);
	if (ret)
		return fail("edu DMA device -> IOVA", ret);
	printf("   edu wrote %llu bytes from its buffer to IOVA 0x%llx\n\n",
	       XFER, DST_IOVA);

	printf("5. What landed in the destination buffer:\n   \"%s\"\n", dst);
	if (memcmp(src, dst, XFER)) {
		fprintf(stderr, "demo: the buffers differ\n");
		return 1;
	}
	printf("   %llu of %llu bytes identical to the source.\n\n", XFER,
	       XFER);

	ret = vid_unmap(ctx->container, SRC_IOVA, VID_PAGE, &size);
	if (!ret)
		ret = vid_unmap(ctx->container, DST_IOVA, VID_PAGE, &size);
	if (ret)
		return fail("UNMAP_DMA", ret);
	printf("6. Unmapped both; VmLck back to %ld kB.\n", vid_vmlck_kb());
	return 0;
}

int main(void)
{
	const char *why = NULL;
	struct vid_ctx ctx;
	char *src, *dst;
	int ret;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (vid_skip_reason()) {
		fprintf(stderr, "demo: %s\n", vid_skip_reason());
		return 1;
	}
	ret = vid_modules_setup(&why);
	if (ret)
		return fail(why ? why : "loading the modules", ret);
	printf("1. vfio_iommu_type1 is loaded, then vfio_iommu_dirty: the VFIO\n"
	       "   core offers new containers to the backend loaded last.\n\n");

	src = vid_alloc(VID_PAGE, 0);
	dst = vid_alloc(VID_PAGE, 0);
	if (!src || !dst)
		return fail("allocating buffers", -ENOMEM);

	vid_ctx_init(&ctx);
	ret = vid_ctx_open(&ctx, VFIO_TYPE1v2_IOMMU);
	if (ret)
		return fail("opening the container", ret);
	ret = run(&ctx, src, dst);
	vid_ctx_close(&ctx);
	if (!ret) {
		printf("7. Container closed:\n");
		show_backend();
		printf("\nDemo complete: the round trip went through vfio_iommu_dirty.\n");
	}
	return ret;
}
