// SPDX-License-Identifier: GPL-2.0
/*
 * vid-mig: the test's side of the device, two sysfs attributes of the
 * platform device (formats in vid_mig_uapi.h).
 *
 * "dma" makes the device write guest memory while QEMU owns it, the way a
 * mediated device does: through vfio_dma_rw(), or through pages it pinned
 * with vfio_pin_pages(), briefly or held. A device that is not RUNNING
 * does no DMA, so the command is refused then.
 *
 * "state" shows the device's migration state and contents, and lets the
 * test give the device contents that a migration must carry.
 */
#include <linux/device.h>
#include <linux/iommu.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/platform_device.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/workqueue.h>

#include "vid_mig.h"
#include "vid_emu_uapi.h"

enum vid_mig_dma_how { DMA_RW, DMA_PIN, DMA_HOLD, DMA_RELEASE };

struct vid_mig_dma_cmd {
	enum vid_mig_dma_how how;
	u64 gpa;
	u64 len;
	u64 seed;
};

static struct vid_mig_dev *vid_mig_from_dev(struct device *dev)
{
	return to_vid_mig(platform_get_drvdata(to_platform_device(dev)));
}

/*
 * Split a sysfs write into at most @max numbers after a word: "<word> <n>
 * ...", blanks between, numbers in C notation. @text is changed.
 * Returns how many numbers there were, or -EINVAL.
 */
static int vid_mig_words(char *text, const char **word, u64 *nums, int max)
{
	char *tok;
	int n = 0;

	text = strim(text);
	*word = strsep(&text, " \t");
	while ((tok = strsep(&text, " \t"))) {
		if (!*tok)
			continue;	/* several blanks */
		if (n == max || kstrtou64(tok, 0, &nums[n]))
			return -EINVAL;
		n++;
	}
	return n;
}

/* Parse "<how> <gpa> <len> [<seed>]" from a sysfs write. */
static int vid_mig_dma_parse(const char *buf, size_t count,
			     struct vid_mig_dma_cmd *cmd)
{
	static const char *const names[] = {
		[DMA_RW] = "rw", [DMA_PIN] = "pin",
		[DMA_HOLD] = "hold", [DMA_RELEASE] = "release",
	};
	char text[96];
	const char *how;
	u64 nums[3];
	int n;

	if (count >= sizeof(text))
		return -EINVAL;
	memcpy(text, buf, count);
	text[count] = '\0';
	n = vid_mig_words(text, &how, nums, ARRAY_SIZE(nums));
	if (n < 0)
		return n;
	for (cmd->how = DMA_RW; cmd->how <= DMA_RELEASE; cmd->how++)
		if (!strcmp(how, names[cmd->how]))
			break;
	/* A seed for every write, none for release. */
	if (cmd->how > DMA_RELEASE || n != (cmd->how == DMA_RELEASE ? 2 : 3))
		return -EINVAL;
	cmd->gpa = nums[0];
	cmd->len = nums[1];
	cmd->seed = n == 3 ? nums[2] : 0;
	if (!cmd->len || (cmd->gpa | cmd->len) & 7 ||
	    !vid_emu_range_ok(cmd->gpa, cmd->len))
		return -EINVAL;
	if (cmd->len > VID_MIG_DMA_MAX)
		return -E2BIG;
	return 0;
}

/* The device's words for [gpa, gpa + len), in a new buffer. */
static u8 *vid_mig_dma_data(const struct vid_mig_dma_cmd *cmd)
{
	__le64 *words;
	u64 i;

	words = kvmalloc(cmd->len, GFP_KERNEL_ACCOUNT);
	if (!words)
		return NULL;
	for (i = 0; i < cmd->len / 8; i++)
		words[i] = cpu_to_le64(vid_mig_pattern(cmd->seed,
						       cmd->gpa + 8 * i));
	return (u8 *)words;
}

/*
 * pin, hold, release: whole pages around [gpa, gpa + len). The pin
 * table's entries taken by "hold" stay until "release", dma_unmap or the
 * last close gives them back.
 */
static int vid_mig_dma_pinned(struct vid_emu_dev *emu,
			      const struct vid_mig_dma_cmd *cmd, u8 *data)
{
	u64 first = round_down(cmd->gpa, PAGE_SIZE);
	u64 npages = (round_up(cmd->gpa + cmd->len, PAGE_SIZE) - first) >>
		     PAGE_SHIFT;
	struct page **pages;
	int ret;

	if (npages > VID_EMU_PIN_MAX)
		return -E2BIG;
	if (cmd->how == DMA_RELEASE)
		return vid_emu_unpin_locked(emu, first, npages);

	pages = kcalloc(npages, sizeof(*pages), GFP_KERNEL_ACCOUNT);
	if (!pages)
		return -ENOMEM;
	ret = vid_emu_pin_locked(emu, first, npages,
				 IOMMU_READ | IOMMU_WRITE, pages);
	kfree(pages);
	if (ret)
		return ret;
	ret = vid_emu_rw_pinned_locked(emu, cmd->gpa, data, cmd->len, true);
	if (cmd->how == DMA_PIN || ret)
		WARN_ON_ONCE(vid_emu_unpin_locked(emu, first, npages));
	return ret;
}

/* A device write through vfio_dma_rw(), run by a kernel worker. */
struct vid_mig_rw_work {
	struct work_struct work;
	struct vfio_device *vdev;
	const struct vid_mig_dma_cmd *cmd;
	u8 *data;
	int ret;
};

static void vid_mig_rw_fn(struct work_struct *work)
{
	struct vid_mig_rw_work *rw = container_of(work, typeof(*rw), work);

	rw->ret = vfio_dma_rw(rw->vdev, rw->cmd->gpa, rw->data, rw->cmd->len,
			      true);
}

/*
 * vfio_dma_rw() reaches guest memory through the mm of the process that
 * mapped it; called by any other process (the test writing to sysfs) it
 * fails with -EFAULT, in-tree type1 as here. A mediated device's DMA runs
 * in a kernel thread, which borrows that mm: so does this device's.
 */
static int vid_mig_dma_rw(struct vid_emu_dev *emu,
			  const struct vid_mig_dma_cmd *cmd, u8 *data)
{
	struct vid_mig_rw_work rw = {
		.vdev = &emu->vdev,
		.cmd = cmd,
		.data = data,
	};

	INIT_WORK_ONSTACK(&rw.work, vid_mig_rw_fn);
	queue_work(system_unbound_wq, &rw.work);
	flush_work(&rw.work);
	destroy_work_on_stack(&rw.work);
	return rw.ret;
}

static int vid_mig_dma(struct vid_mig_dev *md, const struct vid_mig_dma_cmd *cmd)
{
	struct vid_emu_dev *emu = &md->emu;
	struct vid_mig *mig = &md->mig;
	u8 *data = NULL;
	int ret;

	if (cmd->how != DMA_RELEASE) {
		data = vid_mig_dma_data(cmd);
		if (!data)
			return -ENOMEM;
	}

	mutex_lock(&emu->lock);
	if (!mig->open) {
		ret = -ENODEV;
	} else if (cmd->how != DMA_RELEASE &&
		   !(mig->device_state & VFIO_DEVICE_STATE_V1_RUNNING)) {
		mig->refused++;
		ret = -EBUSY;
	} else if (cmd->how == DMA_RW) {
		ret = vid_mig_dma_rw(emu, cmd, data);
	} else {
		ret = vid_mig_dma_pinned(emu, cmd, data);
	}
	if (!ret && cmd->how != DMA_RELEASE)
		mig->writes++;
	mutex_unlock(&emu->lock);
	kvfree(data);
	return ret;
}

static ssize_t dma_store(struct device *dev, struct device_attribute *attr,
			 const char *buf, size_t count)
{
	struct vid_mig_dma_cmd cmd;
	int ret;

	ret = vid_mig_dma_parse(buf, count, &cmd);
	if (!ret)
		ret = vid_mig_dma(vid_mig_from_dev(dev), &cmd);
	return ret ? ret : count;
}
static DEVICE_ATTR_WO(dma);

static ssize_t state_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	struct vid_mig_dev *md = vid_mig_from_dev(dev);
	struct vid_mig *mig = &md->mig;
	unsigned int i, first;
	int len;

	mutex_lock(&md->emu.lock);
	len = sysfs_emit(buf, "device_state %u\nhistory", mig->device_state);
	first = mig->nhistory > VID_MIG_HISTORY ?
		mig->nhistory - VID_MIG_HISTORY : 0;
	for (i = first; i < mig->nhistory; i++)
		len += sysfs_emit_at(buf, len, " %u",
				     mig->history[i % VID_MIG_HISTORY]);
	len += sysfs_emit_at(buf, len, "\nregs");
	for (i = 0; i < VID_MIG_NR_SCRATCH; i++)
		len += sysfs_emit_at(buf, len, " %016llx", mig->regs[i]);
	len += sysfs_emit_at(buf, len,
			     "\nbuffer %016llx\nsaved %llu\nrestored %llu\n"
			     "held %llu\nwrites %llu\nrefused %llu\n",
			     vid_mig_buf_hash(mig->buf, sizeof(mig->buf)),
			     mig->saved, mig->restored, md->emu.pinned_pages,
			     mig->writes, mig->refused);
	mutex_unlock(&md->emu.lock);
	return len;
}

static ssize_t state_store(struct device *dev, struct device_attribute *attr,
			   const char *buf, size_t count)
{
	struct vid_mig_dev *md = vid_mig_from_dev(dev);
	char text[48];
	const char *word;
	u64 seed;
	int ret = 0;

	if (count >= sizeof(text))
		return -EINVAL;
	memcpy(text, buf, count);
	text[count] = '\0';
	if (vid_mig_words(text, &word, &seed, 1) != 1 || strcmp(word, "seed"))
		return -EINVAL;
	mutex_lock(&md->emu.lock);
	if (md->mig.device_state & VFIO_DEVICE_STATE_V1_RESUMING)
		ret = -EBUSY;
	else
		vid_mig_fill(&md->mig, seed);
	mutex_unlock(&md->emu.lock);
	return ret ? ret : count;
}
static DEVICE_ATTR_RW(state);

static struct attribute *vid_mig_attrs[] = {
	&dev_attr_dma.attr,
	&dev_attr_state.attr,
	NULL,
};

static const struct attribute_group vid_mig_group = {
	.attrs = vid_mig_attrs,
};

const struct attribute_group *vid_mig_groups[] = {
	&vid_mig_group,
	NULL,
};
