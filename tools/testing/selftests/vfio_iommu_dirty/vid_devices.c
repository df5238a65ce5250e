// SPDX-License-Identifier: GPL-2.0
/*
 * The devices the selftests drive: the QEMU edu device through vfio-pci,
 * and the emulated test device (vid_emu/) through its ioctls.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vid_util.h"

/* ---------------------------------------------------------------------- */
/* the QEMU edu device                                                    */
/* ---------------------------------------------------------------------- */

static int region_info(int dev, uint32_t index,
		       struct vfio_region_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	info->index = index;
	return ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, info) ? -errno : 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n = pread(fd, buf, len, (off_t)off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = pwrite(fd, buf, len, (off_t)off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int vid_edu_read64(struct vid_edu *edu, uint64_t reg, uint64_t *val)
{
	return pread_all(edu->fd, val, sizeof(*val), edu->bar0 + reg);
}

int vid_edu_write64(struct vid_edu *edu, uint64_t reg, uint64_t val)
{
	return pwrite_all(edu->fd, &val, sizeof(val), edu->bar0 + reg);
}

#define PCI_CMD_OFF	0x04
#define PCI_CMD_MEMORY	0x2
#define PCI_CMD_MASTER	0x4

int vid_edu_open(struct vid_ctx *ctx, struct vid_edu *edu)
{
	if (!vid_edu_bdf())
		return -ENODEV;
	return vid_edu_open_bdf(ctx, vid_edu_bdf(), edu);
}

int vid_edu_open_bdf(struct vid_ctx *ctx, const char *bdf,
		     struct vid_edu *edu)
{
	struct vfio_region_info info;
	uint32_t id;
	uint16_t cmd;
	int fd, ret;

	fd = ioctl(ctx->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (fd < 0)
		return -errno;
	ctx->device = fd;
	edu->fd = fd;

	ret = region_info(fd, VFIO_PCI_BAR0_REGION_INDEX, &info);
	if (ret)
		return ret;
	if (!(info.flags & VFIO_REGION_INFO_FLAG_READ) ||
	    !(info.flags & VFIO_REGION_INFO_FLAG_WRITE) ||
	    info.size < EDU_BUF + EDU_BUF_SIZE)
		return -ENXIO;
	edu->bar0 = info.offset;
	edu->bar0_size = info.size;

	ret = region_info(fd, VFIO_PCI_CONFIG_REGION_INDEX, &info);
	if (ret)
		return ret;
	edu->cfg = info.offset;

	ret = pread_all(fd, &cmd, sizeof(cmd), edu->cfg + PCI_CMD_OFF);
	if (ret)
		return ret;
	cmd |= PCI_CMD_MEMORY | PCI_CMD_MASTER;
	ret = pwrite_all(fd, &cmd, sizeof(cmd), edu->cfg + PCI_CMD_OFF);
	if (ret)
		return ret;
	ret = pread_all(fd, &cmd, sizeof(cmd), edu->cfg + PCI_CMD_OFF);
	if (ret)
		return ret;
	if ((cmd & (PCI_CMD_MEMORY | PCI_CMD_MASTER)) !=
	    (PCI_CMD_MEMORY | PCI_CMD_MASTER))
		return -EIO;

	/* The identification register reads 0xRRrr00ed on edu. */
	ret = pread_all(fd, &id, sizeof(id), edu->bar0 + EDU_REG_ID);
	if (ret)
		return ret;
	if ((id & 0xff) != 0xed)
		return -ENODEV;
	return 0;
}

#define EDU_DMA_TIMEOUT_MS	5000

static int edu_wait_idle(struct vid_edu *edu)
{
	long long deadline = vid_now_ms() + EDU_DMA_TIMEOUT_MS;
	uint64_t cmd;
	int ret;

	for (;;) {
		ret = vid_edu_read64(edu, EDU_REG_DMA_CMD, &cmd);
		if (ret)
			return ret;
		if (!(cmd & EDU_DMA_START))
			return 0;
		if (vid_now_ms() > deadline)
			return -ETIMEDOUT;
		usleep(5000);
	}
}

int vid_edu_dma(struct vid_edu *edu, uint64_t iova, uint64_t buf_off,
		uint64_t count, bool to_ram)
{
	uint64_t src, dst;
	int ret;

	/* edu's bounds check is off by one at the buffer's last byte. */
	if (!count || buf_off + count >= EDU_BUF_SIZE)
		return -EINVAL;
	/* edu ignores register writes while a transfer is running. */
	ret = edu_wait_idle(edu);
	if (ret)
		return ret;
	if (to_ram) {
		src = EDU_BUF + buf_off;
		dst = iova;
	} else {
		src = iova;
		dst = EDU_BUF + buf_off;
	}
	ret = vid_edu_write64(edu, EDU_REG_DMA_SRC, src);
	if (!ret)
		ret = vid_edu_write64(edu, EDU_REG_DMA_DST, dst);
	if (!ret)
		ret = vid_edu_write64(edu, EDU_REG_DMA_CNT, count);
	if (!ret)
		ret = vid_edu_write64(edu, EDU_REG_DMA_CMD, EDU_DMA_START |
				      (to_ram ? EDU_DMA_TO_RAM : 0));
	if (ret)
		return ret;
	return edu_wait_idle(edu);
}

/* ---------------------------------------------------------------------- */
/* the emulated test device                                               */
/* ---------------------------------------------------------------------- */

int vid_emu_ctx_open(struct vid_ctx *ctx, const char *name, int type,
		     bool *served)
{
	int group, ret;

	*served = false;
	vid_ctx_init(ctx);
	group = vid_device_group("platform", name);
	if (group < 0)
		return group;
	ret = vid_open_container();
	if (ret < 0)
		return ret;
	ctx->container = ret;
	ret = vid_open_group_id(ctx->container, group);
	if (ret < 0)
		goto err;
	ctx->group = ret;
	ret = vid_set_iommu(ctx->container, type, vid_backend_module(),
			    served);
	if (ret)
		goto err;
	ret = ioctl(ctx->group, VFIO_GROUP_GET_DEVICE_FD, name);
	if (ret < 0) {
		ret = -errno;
		goto err;
	}
	ctx->device = ret;
	return 0;
err:
	vid_ctx_close(ctx);
	return ret;
}

int vid_emu_pin(int dev, uint64_t iova, uint32_t npages, uint32_t flags,
		uint64_t *pfns)
{
	struct vid_emu_pin pin = {
		.argsz = sizeof(pin),
		.flags = flags,
		.iova = iova,
		.npages = npages,
		.pfns = (uintptr_t)pfns,
	};

	return ioctl(dev, VID_EMU_PIN, &pin) ? -errno : 0;
}

static int emu_unpin(int dev, uint32_t flags, uint64_t iova,
		     uint32_t npages)
{
	struct vid_emu_unpin unpin = {
		.argsz = sizeof(unpin),
		.flags = flags,
		.iova = iova,
		.npages = npages,
	};

	return ioctl(dev, VID_EMU_UNPIN, &unpin) ? -errno : 0;
}

int vid_emu_unpin(int dev, uint64_t iova, uint32_t npages)
{
	return emu_unpin(dev, 0, iova, npages);
}

int vid_emu_unpin_all(int dev)
{
	return emu_unpin(dev, VID_EMU_UNPIN_ALL, 0, 0);
}

int vid_emu_rw(int dev, uint64_t iova, void *buf, uint64_t len,
	       uint32_t flags)
{
	struct vid_emu_rw rw = {
		.argsz = sizeof(rw),
		.flags = flags,
		.iova = iova,
		.data = (uintptr_t)buf,
		.length = len,
	};

	return ioctl(dev, VID_EMU_RW, &rw) ? -errno : 0;
}

int vid_emu_status(int dev, struct vid_emu_status *st, bool reset)
{
	memset(st, 0, sizeof(*st));
	st->argsz = sizeof(*st);
	st->flags = reset ? VID_EMU_STATUS_RESET : 0;
	return ioctl(dev, VID_EMU_STATUS, st) ? -errno : 0;
}

int vid_emu_gate(int dev, uint32_t flags, uint32_t timeout_ms)
{
	struct vid_emu_gate gate = {
		.argsz = sizeof(gate),
		.flags = flags,
		.timeout_ms = timeout_ms,
	};

	return ioctl(dev, VID_EMU_GATE, &gate) ? -errno : 0;
}

static void *unmap_job_run(void *arg)
{
	struct vid_unmap_job *job = arg;

	if (job->bits)
		job->ret = vid_unmap_bitmap(job->container, 0, job->iova,
					    job->size, job->pgsize, job->bits,
					    job->bytes, &job->unmapped);
	else
		job->ret = vid_unmap(job->container, job->iova, job->size,
				     &job->unmapped);
	return NULL;
}

int vid_unmap_job_start(struct vid_unmap_job *job)
{
	return -pthread_create(&job->thread, NULL, unmap_job_run, job);
}

int vid_unmap_job_join(struct vid_unmap_job *job)
{
	return -pthread_join(job->thread, NULL);
}
