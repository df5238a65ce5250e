// SPDX-License-Identifier: GPL-2.0
/*
 * Real DMA through the container's IOVAs, done by QEMU's edu device
 * (PCI 1234:11e8) bound to vfio-pci: data moves RAM -> device -> RAM and
 * is compared byte for byte; device writes to a read-only or to an
 * unmapped IOVA must not reach memory; edu's MSI reaches user space.
 *
 * The two blocked writes raise an IOMMU fault in the guest kernel (a DMAR
 * fault on VT-d, an SMMU event on Arm); they are bracketed with
 * VID_FAULT_BEGIN / VID_FAULT_END lines in the kernel log so that the
 * runner accepts exactly those faults.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define P		VID_PAGE
/* edu masks DMA addresses to 28 bits: stay below 256 MiB. */
#define IOVA_A		0x1000000ULL
#define IOVA_B		0x2000000ULL
#define IOVA_C		0x3000000ULL
#define BUF_PAGES	4
#define BUF_SIZE	(BUF_PAGES * P)
/* Below 4096: edu aborts QEMU on a transfer touching its last byte. */
#define XFER		2048UL

FIXTURE(edu) {
	struct vid_ctx ctx;
	struct vid_edu edu;
	struct vid_acct base;
	uint8_t *a, *b, *c;
};

FIXTURE_SETUP(edu)
{
	vid_ctx_init(&self->ctx);
	self->a = NULL;
	self->b = NULL;
	self->c = NULL;
	if (!vid_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_acct_read(&self->base));
	VID_ASSERT_OK(vid_ctx_open(&self->ctx, VFIO_TYPE1v2_IOMMU));
	VID_ASSERT_OK(vid_edu_open(&self->ctx, &self->edu));
	self->a = vid_alloc(BUF_SIZE, 0);
	self->b = vid_alloc(BUF_SIZE, 0);
	self->c = vid_alloc(BUF_SIZE, 0);
	ASSERT_NE(NULL, self->a);
	ASSERT_NE(NULL, self->b);
	ASSERT_NE(NULL, self->c);
}

FIXTURE_TEARDOWN(edu)
{
	vid_ctx_close(&self->ctx);
	vid_free(self->a, BUF_SIZE);
	vid_free(self->b, BUF_SIZE);
	vid_free(self->c, BUF_SIZE);
	VID_EXPECT_ACCT(&self->base);
}

/*
 * Start a device write that the IOMMU must block, inside the kernel log
 * markers, and wait (bounded) for the fault report so that it lands
 * between them. Returns 0 or -errno from the transfer; *seen tells whether
 * the fault was reported.
 */
static int blocked_write(struct vid_edu *edu, uint64_t iova, bool *seen)
{
	int kmsg, ret;

	*seen = false;
	vid_iommu_fault_settle();
	kmsg = vid_kmsg_open();
	if (kmsg < 0)
		return kmsg;
	ret = vid_kmsg_write(VID_FAULT_BEGIN);
	if (ret) {
		close(kmsg);
		return ret;
	}
	ret = vid_edu_dma(edu, iova, 0, XFER, true);
	*seen = vid_kmsg_wait(kmsg, vid_iommu_fault_word(), 3000);
	/* Let any further lines of the same report arrive. */
	usleep(300 * 1000);
	vid_kmsg_write(VID_FAULT_END);
	close(kmsg);
	return ret;
}

/*
 * RAM -> edu -> RAM: a pattern read by the device from one mapping comes
 * back, exactly, into another. Both transfers start mid-page and cross a
 * page boundary, so the IOVA-to-page translation is exercised beyond the
 * first page of each mapping.
 */
TEST_F(edu, dma_round_trip)
{
	const uint64_t a_off = 2 * P + 0xa00;	/* crosses into page 3 */
	const uint64_t b_off = P + 0xe00;	/* crosses into page 2 */
	long bad;

	vid_fill_pattern(self->a, BUF_SIZE, 1);
	memset(self->b, 0x5a, BUF_SIZE);
	VID_ASSERT_OK(vid_map(self->ctx.container, IOVA_A, self->a, BUF_SIZE,
			      VFIO_DMA_MAP_FLAG_READ));
	VID_ASSERT_OK(vid_map(self->ctx.container, IOVA_B, self->b, BUF_SIZE,
			      VID_MAP_RW));

	VID_ASSERT_OK(vid_edu_dma(&self->edu, IOVA_A + a_off, 0, XFER,
				  false));
	VID_ASSERT_OK(vid_edu_dma(&self->edu, IOVA_B + b_off, 0, XFER, true));

	bad = vid_first_diff(self->b + b_off, self->a + a_off, XFER);
	ASSERT_EQ(-1, bad) TH_LOG("byte %ld: got 0x%02x want 0x%02x", bad,
				  self->b[b_off + bad], self->a[a_off + bad]);
	/* Nothing outside the transfer was touched. */
	ASSERT_EQ(-1, vid_first_not(self->b, b_off, 0x5a));
	ASSERT_EQ(-1, vid_first_not(self->b + b_off + XFER,
				    BUF_SIZE - b_off - XFER, 0x5a));

	/* A second pattern, other offsets: the data really moves each time. */
	vid_fill_pattern(self->a, BUF_SIZE, 2);
	VID_ASSERT_OK(vid_edu_dma(&self->edu, IOVA_A, 1024, XFER, false));
	VID_ASSERT_OK(vid_edu_dma(&self->edu, IOVA_B + 3 * P, 1024, XFER,
				  true));
	ASSERT_EQ(-1, vid_first_diff(self->b + 3 * P, self->a, XFER));

	VID_ASSERT_UNMAP(self->ctx.container, IOVA_A, BUF_SIZE, BUF_SIZE);
	VID_ASSERT_UNMAP(self->ctx.container, IOVA_B, BUF_SIZE, BUF_SIZE);
}

/*
 * A device write into a mapping the device may only read does not land;
 * the same write into a writable mapping does (positive control).
 */
TEST_F(edu, dma_readonly_mapping_not_written)
{
	bool seen;
	long bad;

	vid_fill_pattern(self->a, BUF_SIZE, 3);
	memset(self->b, 0x5a, BUF_SIZE);
	VID_ASSERT_OK(vid_map(self->ctx.container, IOVA_A, self->a, BUF_SIZE,
			      VFIO_DMA_MAP_FLAG_READ));
	VID_ASSERT_OK(vid_map(self->ctx.container, IOVA_B, self->b, BUF_SIZE,
			      VFIO_DMA_MAP_FLAG_READ));
	VID_ASSERT_OK(vid_map(self->ctx.container, IOVA_C, self->c, BUF_SIZE,
			      VFIO_DMA_MAP_FLAG_WRITE));
	VID_ASSERT_OK(vid_edu_dma(&self->edu, IOVA_A, 0, XFER, false));

	VID_ASSERT_OK(vid_edu_dma(&self->edu, IOVA_C, 0, XFER, true));
	ASSERT_EQ(-1, vid_first_diff(self->c, self->a, XFER));

	VID_ASSERT_OK(blocked_write(&self->edu, IOVA_B, &seen));
	bad = vid_first_not(self->b, BUF_SIZE, 0x5a);
	ASSERT_EQ(-1, bad) TH_LOG("byte %ld of the read-only buffer changed",
				  bad);
	EXPECT_TRUE(seen) TH_LOG("no IOMMU fault reported for the write");

	/* One unmap over all three mappings. */
	VID_ASSERT_UNMAP(self->ctx.container, IOVA_A,
			 IOVA_C + BUF_SIZE - IOVA_A, 3 * BUF_SIZE);
}

/* After UNMAP, a device write to the old IOVA does not reach the buffer. */
TEST_F(edu, dma_after_unmap_not_written)
{
	bool seen;
	long bad;

	vid_fill_pattern(self->a, BUF_SIZE, 4);
	memset(self->b, 0, BUF_SIZE);
	VID_ASSERT_OK(vid_map(self->ctx.container, IOVA_A, self->a, BUF_SIZE,
			      VFIO_DMA_MAP_FLAG_READ));
	VID_ASSERT_OK(vid_map(self->ctx.container, IOVA_B, self->b, BUF_SIZE,
			      VID_MAP_RW));

	/* While mapped, the write lands. */
	VID_ASSERT_OK(vid_edu_dma(&self->edu, IOVA_A, 0, XFER, false));
	VID_ASSERT_OK(vid_edu_dma(&self->edu, IOVA_B, 0, XFER, true));
	ASSERT_EQ(-1, vid_first_diff(self->b, self->a, XFER));

	VID_ASSERT_UNMAP(self->ctx.container, IOVA_B, BUF_SIZE, BUF_SIZE);
	memset(self->b, 0xc3, BUF_SIZE);

	/* New data in the device, written to the IOVA that is gone. */
	vid_fill_pattern(self->a, BUF_SIZE, 5);
	VID_ASSERT_OK(vid_edu_dma(&self->edu, IOVA_A, 0, XFER, false));
	VID_ASSERT_OK(blocked_write(&self->edu, IOVA_B, &seen));
	bad = vid_first_not(self->b, BUF_SIZE, 0xc3);
	ASSERT_EQ(-1, bad) TH_LOG("byte %ld changed after unmap", bad);
	EXPECT_TRUE(seen) TH_LOG("no IOMMU fault reported for the write");

	VID_ASSERT_UNMAP(self->ctx.container, IOVA_A, BUF_SIZE, BUF_SIZE);
}

/* edu's registers below 0x80 take 32-bit accesses only. */
#define EDU_REG_IRQ_RAISE	0x60
#define EDU_REG_IRQ_ACK		0x64

static int edu_write32(struct vid_edu *edu, uint64_t reg, uint32_t val)
{
	ssize_t n = pwrite(edu->fd, &val, sizeof(val), edu->bar0 + reg);

	return n == sizeof(val) ? 0 : n < 0 ? -errno : -EIO;
}

/* Route edu's MSI to @efd, or (@efd < 0) tear it down; 0 or -errno. */
static int edu_msi(struct vid_edu *edu, int efd)
{
	char buf[sizeof(struct vfio_irq_set) + sizeof(int)];
	struct vfio_irq_set *set = (void *)buf;

	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_ACTION_TRIGGER |
		     (efd < 0 ? VFIO_IRQ_SET_DATA_NONE :
				VFIO_IRQ_SET_DATA_EVENTFD);
	set->index = VFIO_PCI_MSI_IRQ_INDEX;
	set->start = 0;
	set->count = efd < 0 ? 0 : 1;
	memcpy(set->data, &efd, sizeof(efd));
	return ioctl(edu->fd, VFIO_DEVICE_SET_IRQS, set) ? -errno : 0;
}

/* Interrupts signalled on @efd within @ms: the eventfd's count, or 0. */
static uint64_t irqs_within(int efd, int ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t n = 0;

	if (poll(&p, 1, ms) == 1 && read(efd, &n, sizeof(n)) != sizeof(n))
		n = 0;
	return n;
}

/*
 * edu's MSI, raised through its interrupt register, reaches user space
 * through vfio-pci's eventfd, once per raise. The MSI is a device write
 * like any DMA: behind an Arm SMMU it is translated by the container's
 * domain, and lands only if the backend gave that domain its software
 * MSI window (the MSI cookie at the window the group reserves,
 * 0x8000000 on QEMU's virt machine); without it the write faults and the
 * interrupt is lost. On VT-d interrupt remapping carries it instead.
 */
TEST_F(edu, msi_reaches_user_space)
{
	struct vfio_irq_info info = {
		.argsz = sizeof(info), .index = VFIO_PCI_MSI_IRQ_INDEX,
	};
	int efd, i;

	ASSERT_EQ(0, ioctl(self->edu.fd, VFIO_DEVICE_GET_IRQ_INFO, &info));
	ASSERT_LE(1, info.count) TH_LOG("edu offers no MSI");
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	VID_ASSERT_OK(edu_msi(&self->edu, efd));
	/* Nothing before edu raises one. */
	EXPECT_EQ(0, irqs_within(efd, 100));
	for (i = 0; i < 2; i++) {
		VID_ASSERT_OK(edu_write32(&self->edu, EDU_REG_IRQ_RAISE,
					  1U << i));
		EXPECT_EQ(1, irqs_within(efd, 3000))
			TH_LOG("MSI %d did not arrive", i + 1);
		VID_ASSERT_OK(edu_write32(&self->edu, EDU_REG_IRQ_ACK,
					  1U << i));
	}
	VID_ASSERT_OK(edu_msi(&self->edu, -1));
	close(efd);
}

TEST_HARNESS_MAIN
