// SPDX-License-Identifier: GPL-2.0
/*
 * vid-mig: the v1 VFIO migration region (struct vfio_device_migration_info
 * at offset 0, a data window at VID_MIG_DATA_OFFSET), as QEMU 7.2 drives
 * it.
 *
 * Saving: QEMU sets SAVING|RUNNING when migration starts. The device has
 * no state worth sending while it still runs, so it reports 0 pending
 * bytes then. When QEMU stops it (SAVING alone), the device takes a
 * snapshot of its registers and buffer and hands it out one window at a
 * time: reading data_offset puts the next chunk in the window and
 * data_size says how long it is; the next read of pending_bytes or
 * data_offset counts the chunk as taken. QEMU then writes STOP.
 *
 * Resuming: QEMU sets RESUMING, and for each chunk reads data_offset,
 * writes the chunk into the window and then writes its length to
 * data_size, which appends it to what was received. A complete, valid
 * state is applied at once; leaving RESUMING without one fails.
 *
 * Every access outside these rules fails with -EINVAL and changes
 * nothing: QEMU never makes one, so one is a bug worth seeing.
 */
#include <linux/kernel.h>
#include <linux/lockdep.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include "vid_mig.h"

#define MIG_STATE	offsetof(struct vfio_device_migration_info, device_state)
#define MIG_PENDING	offsetof(struct vfio_device_migration_info, pending_bytes)
#define MIG_DATA_OFFSET	offsetof(struct vfio_device_migration_info, data_offset)
#define MIG_DATA_SIZE	offsetof(struct vfio_device_migration_info, data_size)
#define MIG_HEADER_END	sizeof(struct vfio_device_migration_info)

#define S_RUNNING	VFIO_DEVICE_STATE_V1_RUNNING
#define S_SAVING	VFIO_DEVICE_STATE_V1_SAVING
#define S_RESUMING	VFIO_DEVICE_STATE_V1_RESUMING

static bool vid_mig_saving(const struct vid_mig *mig)
{
	return mig->device_state & S_SAVING;
}

static bool vid_mig_resuming(const struct vid_mig *mig)
{
	return mig->device_state == S_RESUMING;
}

/**
 * vid_mig_state_reset() - forget any migration in progress
 * @mig: the device, with its lock held
 *
 * Used on open, on VFIO_DEVICE_RESET and when a migration is cancelled or
 * completed: nothing is left to save or to restore.
 */
void vid_mig_state_reset(struct vid_mig *mig)
{
	mig->save_len = 0;
	mig->save_pos = 0;
	mig->staged = 0;
	mig->restore_len = 0;
	memset(mig->window, 0, sizeof(mig->window));
}

/**
 * vid_mig_enter() - record that the device is in @state now
 * @mig: the device, with its lock held
 * @state: the new v1 device_state
 *
 * Keeps the history the sysfs "state" attribute shows; a state equal to
 * the current one is not a new entry.
 */
void vid_mig_enter(struct vid_mig *mig, u32 state)
{
	if (mig->nhistory && mig->device_state == state)
		return;
	mig->device_state = state;
	mig->history[mig->nhistory % VID_MIG_HISTORY] = state;
	mig->nhistory++;
}

/* Stopped with SAVING set: take the snapshot that will be handed out. */
static void vid_mig_snapshot(struct vid_mig *mig)
{
	struct vid_mig_blob *b = &mig->save;
	unsigned int i;

	b->magic = cpu_to_le32(VID_MIG_BLOB_MAGIC);
	b->version = cpu_to_le32(VID_MIG_BLOB_VERSION);
	for (i = 0; i < VID_MIG_NR_SCRATCH; i++)
		b->regs[i] = cpu_to_le64(mig->regs[i]);
	memcpy(b->buf, mig->buf, sizeof(b->buf));
	b->check = cpu_to_le64(vid_mig_buf_hash((const u8 *)b,
						offsetof(typeof(*b), check)));
	mig->save_len = sizeof(*b);
	mig->save_pos = 0;
	mig->staged = 0;
}

/* The whole state has arrived: check it and make it the device's. */
static int vid_mig_apply(struct vid_mig *mig)
{
	const struct vid_mig_blob *b = &mig->restore;
	unsigned int i;

	if (le32_to_cpu(b->magic) != VID_MIG_BLOB_MAGIC ||
	    le32_to_cpu(b->version) != VID_MIG_BLOB_VERSION ||
	    le64_to_cpu(b->check) !=
	    vid_mig_buf_hash((const u8 *)b, offsetof(typeof(*b), check)))
		return -EINVAL;
	for (i = 0; i < VID_MIG_NR_SCRATCH; i++)
		mig->regs[i] = le64_to_cpu(b->regs[i]);
	memcpy(mig->buf, b->buf, sizeof(mig->buf));
	mig->restored = sizeof(*b);
	return 0;
}

/*
 * Which moves the device accepts. Any valid state may follow any other,
 * except that saving and resuming never turn into each other directly,
 * and RESUMING is left only once a complete state has been applied.
 */
static int vid_mig_set_state(struct vid_mig *mig, u32 new)
{
	u32 old = mig->device_state;

	if (new & ~VFIO_DEVICE_STATE_MASK || !VFIO_DEVICE_STATE_VALID(new))
		return -EINVAL;
	if (new == old)
		return 0;
	if ((old & S_SAVING && new & S_RESUMING) ||
	    (old & S_RESUMING && new & S_SAVING))
		return -EINVAL;
	if (old == S_RESUMING && mig->restore_len != sizeof(mig->restore))
		return -EINVAL;

	if (new == S_RESUMING) {
		vid_mig_state_reset(mig);
		mig->restored = 0;
	} else if (new == S_SAVING) {
		/* Stop-and-copy: the device is quiet, its state final. */
		vid_mig_snapshot(mig);
	} else if (!(new & S_SAVING)) {
		/* Saved, resumed or cancelled: nothing more to move. */
		vid_mig_state_reset(mig);
	} else {
		/* SAVING|RUNNING: nothing to send while the device runs. */
		vid_mig_state_reset(mig);
	}
	vid_mig_enter(mig, new);
	return 0;
}

/* The chunk in the window, if any, has been taken by the user. */
static void vid_mig_consume(struct vid_mig *mig)
{
	mig->save_pos += mig->staged;
	mig->saved += mig->staged;
	mig->staged = 0;
}

/* Put the next chunk of the snapshot in the window. */
static void vid_mig_stage(struct vid_mig *mig)
{
	vid_mig_consume(mig);
	mig->staged = min_t(u64, mig->save_len - mig->save_pos,
			    sizeof(mig->window));
	memcpy(mig->window, (u8 *)&mig->save + mig->save_pos, mig->staged);
}

/* Append @len bytes of the window to the state being received. */
static int vid_mig_receive(struct vid_mig *mig, u64 len)
{
	int ret;

	if (len > sizeof(mig->window) ||
	    len > sizeof(mig->restore) - mig->restore_len)
		return -EINVAL;
	memcpy((u8 *)&mig->restore + mig->restore_len, mig->window, len);
	mig->restore_len += len;
	if (mig->restore_len < sizeof(mig->restore))
		return 0;
	ret = vid_mig_apply(mig);
	if (ret)
		/* A damaged state is never half applied; start over. */
		mig->restore_len = 0;
	return ret;
}

/* A read of a header field: @off and @size already checked. */
static int vid_mig_read_field(struct vid_mig *mig, u64 off, u64 *val)
{
	switch (off) {
	case MIG_STATE:
		*val = mig->device_state;
		return 0;
	case MIG_PENDING:
		if (!vid_mig_saving(mig))
			return -EINVAL;
		vid_mig_consume(mig);
		*val = mig->save_len - mig->save_pos;
		return 0;
	case MIG_DATA_OFFSET:
		if (vid_mig_saving(mig))
			vid_mig_stage(mig);
		else if (!vid_mig_resuming(mig))
			return -EINVAL;
		*val = VID_MIG_DATA_OFFSET;
		return 0;
	case MIG_DATA_SIZE:
		if (!vid_mig_saving(mig))
			return -EINVAL;
		*val = mig->staged;
		return 0;
	}
	return -EINVAL;
}

static int vid_mig_write_field(struct vid_mig *mig, u64 off, u64 val)
{
	switch (off) {
	case MIG_STATE:
		return vid_mig_set_state(mig, val);
	case MIG_DATA_SIZE:
		if (!vid_mig_resuming(mig))
			return -EINVAL;
		return vid_mig_receive(mig, val);
	}
	/* pending_bytes and data_offset are read-only. */
	return -EINVAL;
}

/* The size a header field must be accessed with, or 0 for none there. */
static size_t vid_mig_field_size(u64 off)
{
	switch (off) {
	case MIG_STATE:
		return sizeof(u32);
	case MIG_PENDING:
	case MIG_DATA_OFFSET:
	case MIG_DATA_SIZE:
		return sizeof(u64);
	}
	return 0;
}

static ssize_t vid_mig_header_rw(struct vid_mig *mig, char __user *ubuf,
				 size_t count, u64 off, bool write)
{
	u64 val = 0;
	u32 val32;
	int ret;

	if (!count || count != vid_mig_field_size(off))
		return -EINVAL;
	if (write) {
		if (count == sizeof(u32)) {
			if (copy_from_user(&val32, ubuf, sizeof(val32)))
				return -EFAULT;
			val = val32;
		} else if (copy_from_user(&val, ubuf, sizeof(val))) {
			return -EFAULT;
		}
		ret = vid_mig_write_field(mig, off, val);
		return ret ? ret : count;
	}
	ret = vid_mig_read_field(mig, off, &val);
	if (ret)
		return ret;
	val32 = val;
	if (copy_to_user(ubuf, count == sizeof(u32) ? (void *)&val32 :
			 (void *)&val, count))
		return -EFAULT;
	return count;
}

static ssize_t vid_mig_window_rw(struct vid_mig *mig, char __user *ubuf,
				 size_t count, u64 off, bool write)
{
	u64 pos = off - VID_MIG_DATA_OFFSET;

	if (!count || count > sizeof(mig->window) - pos)
		return -EINVAL;
	if (write ? !vid_mig_resuming(mig) : !vid_mig_saving(mig))
		return -EINVAL;
	if (write ? copy_from_user(mig->window + pos, ubuf, count) :
		    copy_to_user(ubuf, mig->window + pos, count))
		return -EFAULT;
	return count;
}

/**
 * vid_mig_region_rw() - an access to the migration region
 * @mig: the device, with its lock held
 * @ubuf: the user's buffer
 * @count: bytes to move
 * @off: offset in the region
 * @write: the user writes
 *
 * Return: @count, or -EINVAL for an access the protocol does not allow
 * (see vid_mig_uapi.h), or -EFAULT, with nothing changed.
 */
ssize_t vid_mig_region_rw(struct vid_mig *mig, char __user *ubuf,
			  size_t count, u64 off, bool write)
{
	if (off < MIG_HEADER_END)
		return vid_mig_header_rw(mig, ubuf, count, off, write);
	if (off >= VID_MIG_DATA_OFFSET && off < VID_MIG_REGION_SIZE)
		return vid_mig_window_rw(mig, ubuf, count, off, write);
	return -EINVAL;
}
