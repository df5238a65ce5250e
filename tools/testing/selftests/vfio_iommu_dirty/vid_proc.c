// SPDX-License-Identifier: GPL-2.0
/*
 * What /proc tells: this process's locked memory, the pages pinned in
 * the whole system, and the status of other processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vid_util.h"

/* ---------------------------------------------------------------------- */
/* accounting                                                             */
/* ---------------------------------------------------------------------- */

long vid_vmlck_kb(void)
{
	char line[256];
	long v = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/status", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmLck: %ld kB", &v) == 1)
			break;
	}
	fclose(f);
	return v;
}

/*
 * The pin counters are node statistics kept per CPU and folded into the
 * global values only now and then, so /proc/vmstat can lag by a few pages
 * per CPU. Writing vm.stat_refresh (root only) folds them right away.
 */
static int vmstat_refresh(void)
{
	ssize_t n;
	int fd;

	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, "1\n", 2);
	close(fd);
	return n == 2 ? 0 : -EIO;
}

long vid_pinned_pages(int *err)
{
	long acquired = -1, released = -1, v;
	char name[64];
	FILE *f;

	*err = 0;
	/* Best effort: without it the values are only less precise. */
	vmstat_refresh();
	f = fopen("/proc/vmstat", "re");
	if (!f) {
		*err = -errno;
		return 0;
	}
	while (fscanf(f, "%63s %ld", name, &v) == 2) {
		if (!strcmp(name, "nr_foll_pin_acquired"))
			acquired = v;
		else if (!strcmp(name, "nr_foll_pin_released"))
			released = v;
	}
	fclose(f);
	if (acquired < 0 || released < 0) {
		*err = -ENOENT;
		return 0;
	}
	return acquired - released;
}

int vid_acct_read(struct vid_acct *a)
{
	int err;

	a->vmlck_kb = vid_vmlck_kb();
	if (a->vmlck_kb < 0)
		return (int)a->vmlck_kb;
	a->pinned = vid_pinned_pages(&err);
	return err;
}

/* ---------------------------------------------------------------------- */
/* other processes                                                        */
/* ---------------------------------------------------------------------- */

int vid_file_key(const char *path, const char *key, long long *val)
{
	size_t klen = strlen(key);
	char line[256];
	int ret = -ENOENT;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		ret = sscanf(line + klen + 1, "%lli", val) == 1 ? 0 : -EINVAL;
		break;
	}
	fclose(f);
	return ret;
}

long vid_proc_status_kb(int pid, const char *field)
{
	char path[64];
	long long v;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	ret = vid_file_key(path, field, &v);
	return ret ? ret : (long)v;
}
