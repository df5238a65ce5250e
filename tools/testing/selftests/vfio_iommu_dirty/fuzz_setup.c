// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_test: what a run works in. The variant's container opened with
 * its groups and the test device, served by the run's module with
 * dma_entry_limit at FZ_LIMIT, closed again and the run's memory freed;
 * this module's tracepoints switched on and off; which kernel runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "fuzz.h"

/*
 * Linux 6.1's VFIO core and in-tree type1 give a few answers of their
 * own (noted where they matter); this module answers as 6.12 on both.
 */
bool fuzz_kernel_6_1(void)
{
	static int v = -1;
	struct utsname u;

	if (v < 0)
		v = !uname(&u) && !strncmp(u.release, "6.1.", 4);
	return v;
}

static void fz_forget_fds(struct fz *f)
{
	f->container = -1;
	f->group = -1;
	f->egroup = -1;
	f->dev = -1;
}

/* Close whatever the run has open. */
void fz_close(struct fz *f)
{
	if (f->dev >= 0)
		close(f->dev);
	if (f->egroup >= 0)
		close(f->egroup);
	if (f->group >= 0)
		close(f->group);
	if (f->container >= 0)
		close(f->container);
	fz_forget_fds(f);
}

static const char *limit_path(const char *mod)
{
	static char path[128];

	snprintf(path, sizeof(path), "/sys/module/%s/parameters/dma_entry_limit",
		 mod);
	return path;
}

static int write_param(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		ret = -EIO;
	close(fd);
	return ret;
}

static int read_param(const char *path, char *val, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, val, len - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	val[n] = '\0';
	return 0;
}

/*
 * Open the variant's container, served by @mod, with dma_entry_limit set
 * to FZ_LIMIT for it. 0, or -errno and *@why.
 */
int fz_open(struct fz *f, const struct fz_cfg *cfg, const char **why)
{
	char saved[32], lim[16];
	bool served = false;
	int ret, id;

	fz_forget_fds(f);
	*why = "reading dma_entry_limit";
	ret = read_param(limit_path(f->mod), saved, sizeof(saved));
	if (ret)
		return ret;
	snprintf(lim, sizeof(lim), "%d", FZ_LIMIT);
	*why = "setting dma_entry_limit";
	ret = write_param(limit_path(f->mod), lim);
	if (ret)
		return ret;
	*why = "opening the container";
	ret = vid_open_container();
	if (ret < 0)
		goto out;
	f->container = ret;
	if (cfg->edu) {
		*why = "adding the edu group";
		ret = vid_open_group(f->container);
		if (ret < 0)
			goto out;
		f->group = ret;
	}
	if (cfg->emu) {
		*why = "adding the test device's group";
		id = vid_device_group("platform", VID_EMU_DEV0);
		ret = id < 0 ? id : vid_open_group_id(f->container, id);
		if (ret < 0)
			goto out;
		f->egroup = ret;
	}
	*why = "VFIO_SET_IOMMU";
	ret = vid_set_iommu(f->container, cfg->type, f->mod, &served);
	if (!ret && !served) {
		*why = "the expected module did not take the container";
		ret = -ESRCH;
	}
	if (!ret && cfg->emu) {
		*why = "getting the test device";
		ret = ioctl(f->egroup, VFIO_GROUP_GET_DEVICE_FD, VID_EMU_DEV0);
		if (ret < 0)
			ret = -errno;
		else
			f->dev = ret;
	}
	if (ret > 0)
		ret = 0;
out:
	write_param(limit_path(f->mod), saved);
	if (ret)
		fz_close(f);
	return ret;
}

#define TRACE_EVENTS	"/sys/kernel/tracing/events/vfio_iommu_dirty/enable"
#define TRACE_BUF	"/sys/kernel/tracing/trace"

/*
 * Switch this module's tracepoints on (they then format every hostile
 * argument too); false when there is no tracefs here.
 */
bool fuzz_trace_on(void)
{
	return !write_param(TRACE_EVENTS, "1");
}

/* Read the whole trace (each event printed), switch off, clear; bytes. */
long fuzz_trace_off(void)
{
	char buf[4096];
	long total = 0;
	ssize_t n;
	int fd;

	write_param(TRACE_EVENTS, "0");
	fd = open(TRACE_BUF, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	close(fd);
	fd = open(TRACE_BUF, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return total;
}

/* Free and close all the run holds, and empty @f. */
void fz_free(struct fz *f)
{
	free(f->tr);
	free(f->pin);
	fuzz_arena_destroy(f);
	if (f->container >= 0)
		fz_close(f);
	memset(f, 0, sizeof(*f));
	fz_forget_fds(f);
}
