// SPDX-License-Identifier: GPL-2.0
/*
 * The migratable test device itself (vid-mig, vid_emu/vid_mig_uapi.h),
 * driven the way QEMU drives it but without QEMU, so that every rule is
 * checked exactly: what vfio-pci reads (device, region and interrupt
 * info, the region type capability, config space, BAR0), the v1
 * migration protocol (a save on vid-mig.0 restored into vid-mig.1, byte
 * for byte), a clear EINVAL for every access the protocol forbids with
 * nothing changed, and the sysfs knobs' errors. A seeded random sequence
 * of accesses, legal and not, must leave the kernel log clean (the guest
 * runner checks it) and the device usable.
 *
 * migration_test shows that QEMU migrates the device; this shows that the
 * device is strict, so that a QEMU that got it wrong would be noticed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"
#include "vid_emu/vid_mig_uapi.h"

#define SYSFS		"/sys/bus/platform/devices/"
#define DEV0		VID_EMU_MIG ".0"
#define DEV1		VID_EMU_MIG ".1"
#define MIG_OFF(_f)	offsetof(struct vfio_device_migration_info, _f)

#define S_STOP		VFIO_DEVICE_STATE_V1_STOP
#define S_RUNNING	VFIO_DEVICE_STATE_V1_RUNNING
#define S_SAVING	VFIO_DEVICE_STATE_V1_SAVING
#define S_RESUMING	VFIO_DEVICE_STATE_V1_RESUMING
#define BLOB_SIZE	4176	/* magic, version, 8 registers, buffer, check */

/* A device with its region offsets. */
struct mdev {
	struct vid_ctx ctx;
	uint64_t mig, cfg, bar0;
};

static int region_offset(int fd, uint32_t index, uint64_t *off,
			 uint64_t *size)
{
	struct vfio_region_info info = {
		.argsz = sizeof(info),
		.index = index,
	};

	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &info))
		return -errno;
	*off = info.offset;
	*size = info.size;
	return 0;
}

static int mdev_open(struct mdev *m, const char *name)
{
	uint64_t size;
	bool served;
	int ret;

	ret = vid_emu_ctx_open(&m->ctx, name, VFIO_TYPE1v2_IOMMU, &served);
	if (ret)
		return ret;
	if (!served)
		return -ENODEV;
	ret = region_offset(m->ctx.device, VID_MIG_REGION_INDEX, &m->mig,
			    &size);
	if (!ret)
		ret = region_offset(m->ctx.device, VFIO_PCI_CONFIG_REGION_INDEX,
				    &m->cfg, &size);
	if (!ret)
		ret = region_offset(m->ctx.device, VFIO_PCI_BAR0_REGION_INDEX,
				    &m->bar0, &size);
	return ret;
}

/* pread/pwrite of @len bytes at @off of a region: 0 or -errno. */
static int rd(struct mdev *m, uint64_t base, uint64_t off, void *buf,
	      size_t len)
{
	ssize_t n = pread(m->ctx.device, buf, len, base + off);

	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static int wr(struct mdev *m, uint64_t base, uint64_t off, const void *buf,
	      size_t len)
{
	ssize_t n = pwrite(m->ctx.device, buf, len, base + off);

	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static int set_state(struct mdev *m, uint32_t state)
{
	return wr(m, m->mig, MIG_OFF(device_state), &state, sizeof(state));
}

static uint32_t get_state(struct mdev *m)
{
	uint32_t state = 0xdead;

	rd(m, m->mig, MIG_OFF(device_state), &state, sizeof(state));
	return state;
}

static int read_u64(struct mdev *m, uint64_t off, uint64_t *val)
{
	return rd(m, m->mig, off, val, sizeof(*val));
}

/* Write a sysfs attribute of @dev: 0 or -errno. */
static int sysfs_write(const char *dev, const char *attr, const char *text)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), SYSFS "%s/%s", dev, attr);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	n = n < 0 ? -errno : 0;
	close(fd);
	return n;
}

/* The value of line @key of @dev's "state" attribute, as text. */
static int state_line(const char *dev, const char *key, char *out,
		      size_t len)
{
	char path[128], line[512];
	size_t klen = strlen(key);
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), SYSFS "%s/state", dev);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ' ')
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(out, len, "%s", line + klen + 1);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

FIXTURE(mig) {
	struct mdev a, b;
};

FIXTURE_SETUP(mig)
{
	vid_ctx_init(&self->a.ctx);
	vid_ctx_init(&self->b.ctx);
	if (!vid_emu_prepare(_metadata))
		return;
	VID_ASSERT_OK(vid_emu_load_mig(2));
	VID_ASSERT_OK(mdev_open(&self->a, DEV0));
	VID_ASSERT_OK(mdev_open(&self->b, DEV1));
}

FIXTURE_TEARDOWN(mig)
{
	vid_ctx_close(&self->a.ctx);
	vid_ctx_close(&self->b.ctx);
}

/* What QEMU's vfio-pci reads before it accepts a device. */
TEST_F(mig, what_vfio_pci_reads)
{
	struct vfio_device_info dinfo = { .argsz = sizeof(dinfo) };
	struct vfio_irq_info irq = { .argsz = sizeof(irq) };
	char buf[sizeof(struct vfio_region_info) + 64];
	struct vfio_region_info *info = (void *)buf;
	struct vfio_region_info_cap_type *cap;
	int fd = self->a.ctx.device;
	uint16_t ids[2];
	uint32_t id;
	uint8_t pin;
	uint32_t i;

	ASSERT_EQ(0, ioctl(fd, VFIO_DEVICE_GET_INFO, &dinfo));
	EXPECT_EQ(VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
		  dinfo.flags);
	EXPECT_EQ(VID_MIG_NUM_REGIONS, dinfo.num_regions);
	EXPECT_EQ(VFIO_PCI_NUM_IRQS, dinfo.num_irqs);

	/* Too small for the capability: told the size it needs. */
	memset(buf, 0, sizeof(buf));
	info->argsz = sizeof(*info);
	info->index = VID_MIG_REGION_INDEX;
	ASSERT_EQ(0, ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, info));
	EXPECT_EQ(sizeof(*info) + sizeof(*cap), info->argsz);
	EXPECT_EQ(0, info->cap_offset);
	info->argsz = sizeof(buf);
	ASSERT_EQ(0, ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, info));
	EXPECT_EQ(VID_MIG_REGION_SIZE, info->size);
	EXPECT_TRUE(info->flags & VFIO_REGION_INFO_FLAG_CAPS);
	ASSERT_EQ(sizeof(*info), info->cap_offset);
	cap = (void *)(buf + info->cap_offset);
	EXPECT_EQ(VFIO_REGION_INFO_CAP_TYPE, cap->header.id);
	EXPECT_EQ(0, cap->header.next);
	EXPECT_EQ(VFIO_REGION_TYPE_MIGRATION_DEPRECATED, cap->type);
	EXPECT_EQ(VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED, cap->subtype);
	/* No such region. */
	info->argsz = sizeof(*info);
	info->index = VID_MIG_NUM_REGIONS;
	EXPECT_EQ(-1, ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, info));
	EXPECT_EQ(EINVAL, errno);

	/* Interrupts: none, and ERR refused as for conventional PCI. */
	for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
		irq.index = i;
		irq.count = 99;
		if (i == VFIO_PCI_ERR_IRQ_INDEX) {
			EXPECT_EQ(-1, ioctl(fd, VFIO_DEVICE_GET_IRQ_INFO, &irq));
			continue;
		}
		EXPECT_EQ(0, ioctl(fd, VFIO_DEVICE_GET_IRQ_INFO, &irq));
		EXPECT_EQ(0, irq.count);
	}

	/* Config space: identity, interrupt pin 0; BAR0's ID register. */
	VID_ASSERT_OK(rd(&self->a, self->a.cfg, 0, ids, sizeof(ids)));
	EXPECT_EQ(VID_MIG_VENDOR, ids[0]);
	EXPECT_EQ(VID_MIG_DEVICE, ids[1]);
	VID_ASSERT_OK(rd(&self->a, self->a.cfg, 0x3d, &pin, 1));
	EXPECT_EQ(0, pin);
	VID_ASSERT_ERR(EINVAL, rd(&self->a, self->a.cfg, 255, ids, 2));
	VID_ASSERT_OK(rd(&self->a, self->a.bar0, VID_MIG_REG_ID, &id, 4));
	EXPECT_EQ(VID_MIG_ID, id);
	VID_ASSERT_ERR(EINVAL, rd(&self->a, self->a.bar0, 2, &id, 4));
	VID_ASSERT_ERR(EINVAL, rd(&self->a, self->a.bar0, VID_MIG_BAR0_SIZE,
				  &id, 1));
}

/* A save on one device, restored into the other, byte for byte. */
TEST_F(mig, save_and_restore)
{
	uint8_t blob[BLOB_SIZE], chunk[VID_MIG_DATA_SIZE];
	uint64_t pending, off, size, got = 0;
	char ra[256], rb[256], ba[32], bb[32];

	VID_ASSERT_OK(sysfs_write(DEV0, "state", "seed 0x5eed"));
	EXPECT_EQ(S_RUNNING, get_state(&self->a));
	/* Pre-copy: the device still runs and has nothing to send. */
	VID_ASSERT_OK(set_state(&self->a, S_SAVING | S_RUNNING));
	VID_ASSERT_OK(read_u64(&self->a, MIG_OFF(pending_bytes), &pending));
	EXPECT_EQ(0, pending);
	/* Stop-and-copy: two chunks. */
	VID_ASSERT_OK(set_state(&self->a, S_SAVING));
	for (;;) {
		VID_ASSERT_OK(read_u64(&self->a, MIG_OFF(pending_bytes),
				       &pending));
		EXPECT_EQ(BLOB_SIZE - got, pending);
		if (!pending)
			break;
		VID_ASSERT_OK(read_u64(&self->a, MIG_OFF(data_offset), &off));
		ASSERT_EQ(VID_MIG_DATA_OFFSET, off);
		VID_ASSERT_OK(read_u64(&self->a, MIG_OFF(data_size), &size));
		ASSERT_LE(size, sizeof(chunk));
		ASSERT_LE(got + size, sizeof(blob));
		VID_ASSERT_OK(rd(&self->a, self->a.mig, off, blob + got, size));
		got += size;
	}
	EXPECT_EQ(BLOB_SIZE, got);
	VID_ASSERT_OK(set_state(&self->a, S_STOP));
	/* A stopped device does no DMA. */
	EXPECT_EQ(-EBUSY, sysfs_write(DEV0, "dma", "rw 0x0 8 1"));

	/* Resume on the other device, in chunks of 3000 bytes. */
	VID_ASSERT_OK(set_state(&self->b, S_RESUMING));
	for (off = 0; off < got; off += size) {
		uint64_t doff;

		size = got - off < 3000 ? got - off : 3000;
		VID_ASSERT_OK(read_u64(&self->b, MIG_OFF(data_offset), &doff));
		VID_ASSERT_OK(wr(&self->b, self->b.mig, doff, blob + off, size));
		VID_ASSERT_OK(wr(&self->b, self->b.mig, MIG_OFF(data_size),
				 &size, sizeof(size)));
	}
	VID_ASSERT_OK(set_state(&self->b, S_RUNNING));
	VID_ASSERT_OK(state_line(DEV0, "regs", ra, sizeof(ra)));
	VID_ASSERT_OK(state_line(DEV1, "regs", rb, sizeof(rb)));
	EXPECT_STREQ(ra, rb);
	VID_ASSERT_OK(state_line(DEV0, "buffer", ba, sizeof(ba)));
	VID_ASSERT_OK(state_line(DEV1, "buffer", bb, sizeof(bb)));
	EXPECT_STREQ(ba, bb);
	VID_ASSERT_OK(state_line(DEV1, "restored", rb, sizeof(rb)));
	EXPECT_STREQ("4176", rb);
	VID_ASSERT_OK(state_line(DEV0, "history", ra, sizeof(ra)));
	EXPECT_STREQ("1 3 2 0", ra);
	VID_ASSERT_OK(state_line(DEV1, "history", rb, sizeof(rb)));
	EXPECT_STREQ("1 4 1", rb);

	/* A damaged state is refused at its last chunk, and not applied. */
	blob[100] ^= 1;
	VID_ASSERT_OK(sysfs_write(DEV1, "state", "seed 7"));
	VID_ASSERT_OK(state_line(DEV1, "regs", ra, sizeof(ra)));
	VID_ASSERT_OK(set_state(&self->b, S_RESUMING));
	size = VID_MIG_DATA_SIZE;
	VID_ASSERT_OK(wr(&self->b, self->b.mig, VID_MIG_DATA_OFFSET, blob,
			 size));
	VID_ASSERT_OK(wr(&self->b, self->b.mig, MIG_OFF(data_size), &size,
			 sizeof(size)));
	size = got - VID_MIG_DATA_SIZE;
	VID_ASSERT_OK(wr(&self->b, self->b.mig, VID_MIG_DATA_OFFSET,
			 blob + VID_MIG_DATA_SIZE, size));
	VID_ASSERT_ERR(EINVAL, wr(&self->b, self->b.mig, MIG_OFF(data_size),
				  &size, sizeof(size)));
	/* Nothing complete arrived: RESUMING cannot be left. */
	VID_ASSERT_ERR(EINVAL, set_state(&self->b, S_RUNNING));
	EXPECT_EQ(S_RESUMING, get_state(&self->b));
	VID_ASSERT_OK(state_line(DEV1, "regs", rb, sizeof(rb)));
	EXPECT_STREQ(ra, rb);
	/* Reset takes the device back to RUNNING. */
	ASSERT_EQ(0, ioctl(self->b.ctx.device, VFIO_DEVICE_RESET));
	EXPECT_EQ(S_RUNNING, get_state(&self->b));
}

/* Every access the protocol forbids is EINVAL and changes nothing. */
TEST_F(mig, protocol_errors)
{
	struct mdev *m = &self->a;
	uint64_t v = 0, big = VID_MIG_DATA_SIZE + 1;
	uint32_t s;
	uint8_t c;

	/* Header fields: whole and aligned only; bytes 4-7 reserved. */
	VID_ASSERT_ERR(EINVAL, rd(m, m->mig, 0, &v, 8));
	VID_ASSERT_ERR(EINVAL, rd(m, m->mig, 0, &c, 1));
	VID_ASSERT_ERR(EINVAL, rd(m, m->mig, 4, &s, 4));
	VID_ASSERT_ERR(EINVAL, rd(m, m->mig, MIG_OFF(pending_bytes), &s, 4));
	VID_ASSERT_ERR(EINVAL, rd(m, m->mig, 32, &v, 8));
	VID_ASSERT_ERR(EINVAL, rd(m, m->mig, VID_MIG_REGION_SIZE, &c, 1));
	/* Not saving: no pending bytes, no data offset, no data. */
	VID_ASSERT_ERR(EINVAL, read_u64(m, MIG_OFF(pending_bytes), &v));
	VID_ASSERT_ERR(EINVAL, read_u64(m, MIG_OFF(data_offset), &v));
	VID_ASSERT_ERR(EINVAL, read_u64(m, MIG_OFF(data_size), &v));
	VID_ASSERT_ERR(EINVAL, rd(m, m->mig, VID_MIG_DATA_OFFSET, &c, 1));
	VID_ASSERT_ERR(EINVAL, wr(m, m->mig, VID_MIG_DATA_OFFSET, &c, 1));
	/* Read-only fields. */
	VID_ASSERT_ERR(EINVAL, wr(m, m->mig, MIG_OFF(pending_bytes), &v, 8));
	VID_ASSERT_ERR(EINVAL, wr(m, m->mig, MIG_OFF(data_offset), &v, 8));
	/* States the protocol forbids, reserved bits. */
	for (s = 5; s <= 7; s++)
		VID_ASSERT_ERR(EINVAL, set_state(m, s));
	VID_ASSERT_ERR(EINVAL, set_state(m, 1U << 3 | S_RUNNING));
	EXPECT_EQ(S_RUNNING, get_state(m));
	/* Saving never turns into resuming, nor the other way. */
	VID_ASSERT_OK(set_state(m, S_SAVING | S_RUNNING));
	VID_ASSERT_ERR(EINVAL, set_state(m, S_RESUMING));
	VID_ASSERT_ERR(EINVAL, wr(m, m->mig, MIG_OFF(data_size), &v, 8));
	VID_ASSERT_ERR(EINVAL, wr(m, m->mig, VID_MIG_DATA_OFFSET, &c, 1));
	/* Cancel: back to RUNNING. */
	VID_ASSERT_OK(set_state(m, S_RUNNING));
	VID_ASSERT_OK(set_state(m, S_RESUMING));
	VID_ASSERT_ERR(EINVAL, set_state(m, S_SAVING));
	VID_ASSERT_ERR(EINVAL, read_u64(m, MIG_OFF(pending_bytes), &v));
	/* More than the window, more than the state, data past the window. */
	VID_ASSERT_ERR(EINVAL, wr(m, m->mig, MIG_OFF(data_size), &big, 8));
	VID_ASSERT_ERR(EINVAL, wr(m, m->mig, VID_MIG_REGION_SIZE - 1, &v, 2));
	/* Leaving RESUMING with nothing received. */
	VID_ASSERT_ERR(EINVAL, set_state(m, S_RUNNING));
	EXPECT_EQ(S_RESUMING, get_state(m));
	/* Register file: one register, naturally aligned, 1/2/4/8 bytes. */
	VID_ASSERT_ERR(EINVAL, wr(m, m->bar0, VID_MIG_REG_SCRATCH, &v, 3));
	VID_ASSERT_ERR(EINVAL, wr(m, m->bar0, VID_MIG_REG_SCRATCH + 4, &v, 8));
	ASSERT_EQ(0, ioctl(m->ctx.device, VFIO_DEVICE_RESET));
	EXPECT_EQ(S_RUNNING, get_state(m));
}

/* The sysfs knobs: malformed commands, limits, a device nobody owns. */
TEST_F(mig, sysfs_errors)
{
	static const char *const bad[] = {
		"rw", "rw 0x1000 8", "rw 0x1000 8 1 2", "rw 0x1001 8 1",
		"rw 0x1000 7 1", "rw 0x1000 0 1", "wr 0x1000 8 1",
		"release 0x1000 8 1", "rw -1 8 1", "rw 0xfffffffffffffff8 16 1",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-EINVAL, sysfs_write(DEV0, "dma", bad[i]))
			TH_LOG("\"%s\"", bad[i]);
	}
	EXPECT_EQ(-E2BIG, sysfs_write(DEV0, "dma", "rw 0 0x100008 1"));
	EXPECT_EQ(-E2BIG, sysfs_write(DEV0, "dma", "pin 0 0x201000 1"));
	/* Nothing mapped in this container: the backend says EINVAL. */
	EXPECT_EQ(-EINVAL, sysfs_write(DEV0, "dma", "rw 0x1000 8 1"));
	EXPECT_EQ(-ENOENT, sysfs_write(DEV0, "dma", "release 0x1000 8"));
	EXPECT_EQ(-EINVAL, sysfs_write(DEV0, "state", "seed"));
	EXPECT_EQ(-EINVAL, sysfs_write(DEV0, "state", "sow 1"));
	/* Nobody owns vid-mig.1 once it is closed. */
	vid_ctx_close(&self->b.ctx);
	EXPECT_EQ(-ENODEV, sysfs_write(DEV1, "dma", "rw 0x1000 8 1"));
}

/*
 * A seeded random sequence of region accesses and state changes, legal
 * and not: whatever each returns, the kernel log stays clean and the
 * device still saves and restores afterwards.
 */
TEST_F(mig, random_sequence)
{
	static const uint64_t offs[] = {
		0, 4, 8, 16, 24, 32, VID_MIG_DATA_OFFSET,
		VID_MIG_DATA_OFFSET + 8, VID_MIG_REGION_SIZE - 8,
		VID_MIG_REGION_SIZE,
	};
	static const size_t lens[] = { 1, 2, 4, 8, 16, 4096 };
	static uint8_t buf[8192];
	struct vid_rng rng;
	uint64_t seed = vid_seed(0x3a5ULL);
	unsigned int i;

	vid_rng_init(&rng, seed);
	ksft_print_msg("seed 0x%llx (VID_SEED)\n", (unsigned long long)seed);
	for (i = 0; i < 20000; i++) {
		struct mdev *m = vid_rng_chance(&rng, 1, 2) ? &self->a :
							      &self->b;
		uint64_t off = offs[vid_rng_below(&rng, ARRAY_SIZE(offs))];
		size_t len = lens[vid_rng_below(&rng, ARRAY_SIZE(lens))];
		uint32_t state = vid_rng_below(&rng, 9);

		switch (vid_rng_below(&rng, 5)) {
		case 0:
			set_state(m, state);
			break;
		case 1:
			rd(m, m->mig, off, buf, len);
			break;
		case 2:
			memcpy(buf, &len, sizeof(len));
			wr(m, m->mig, off, buf, len);
			break;
		case 3:
			rd(m, m->bar0, vid_rng_below(&rng, 0x2100), buf, len);
			break;
		default:
			if (vid_rng_chance(&rng, 1, 50))
				ioctl(m->ctx.device, VFIO_DEVICE_RESET);
			break;
		}
	}
	/* Still a working device. */
	ASSERT_EQ(0, ioctl(self->a.ctx.device, VFIO_DEVICE_RESET));
	EXPECT_EQ(S_RUNNING, get_state(&self->a));
	VID_ASSERT_OK(set_state(&self->a, S_SAVING));
	VID_ASSERT_OK(read_u64(&self->a, MIG_OFF(pending_bytes),
			       (uint64_t *)buf));
	EXPECT_EQ(BLOB_SIZE, *(uint64_t *)buf);
	VID_ASSERT_OK(set_state(&self->a, S_RUNNING));
}

TEST_HARNESS_MAIN
