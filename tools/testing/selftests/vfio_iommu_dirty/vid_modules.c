// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel modules the selftests need, through libkmod: this backend or
 * in-tree type1, the emulated test device's module (vid_emu/), their state
 * in sysfs, and this backend's debugfs view.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libkmod.h>

#include "vid_util.h"

/* ---------------------------------------------------------------------- */
/* kernel modules                                                         */
/* ---------------------------------------------------------------------- */

static int read_sysfs_line(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

bool vid_module_live(const char *name)
{
	char path[PATH_MAX], state[32];

	snprintf(path, sizeof(path), "/sys/module/%s/initstate", name);
	if (read_sysfs_line(path, state, sizeof(state)))
		return false;
	return !strcmp(state, "live");
}

long vid_module_refcnt(const char *name)
{
	char path[PATH_MAX], buf[32];
	char *end;
	long v;
	int ret;

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", name);
	ret = read_sysfs_line(path, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || *end || end == buf)
		return -EINVAL;
	return v;
}

/*
 * A libkmod context in *@ctx and in *@mod the module named @name or, with
 * @path, the module file at @path: 0 or -errno. Give them back with
 * kmod_put(), also after a failure.
 */
static int kmod_get(const char *name, const char *path,
		    struct kmod_ctx **ctx, struct kmod_module **mod)
{
	*mod = NULL;
	*ctx = kmod_new(NULL, NULL);
	if (!*ctx)
		return -ENOMEM;
	/* Keep libkmod quiet unless something is really wrong. */
	kmod_set_log_priority(*ctx, 3);
	if (path)
		return kmod_module_new_from_path(*ctx, path, mod);
	return kmod_module_new_from_name(*ctx, name, mod);
}

static void kmod_put(struct kmod_ctx *ctx, struct kmod_module *mod)
{
	if (mod)
		kmod_module_unref(mod);
	if (ctx)
		kmod_unref(ctx);
}

int vid_module_remove(const char *name, bool quiet)
{
	struct kmod_module *mod;
	struct kmod_ctx *ctx;
	int ret;

	ret = kmod_get(name, NULL, &ctx, &mod);
	if (!ret)
		ret = kmod_module_remove_module(mod,
						quiet ? KMOD_REMOVE_NOLOG : 0);
	kmod_put(ctx, mod);
	return ret;
}

/*
 * Insert the module file at @path with the parameters @opts (or none);
 * 0 (also if loaded already) or -errno.
 */
static int load_from_path(const char *path, const char *opts)
{
	struct kmod_module *mod;
	struct kmod_ctx *ctx;
	int ret;

	if (access(path, R_OK))
		return -errno;
	ret = kmod_get(NULL, path, &ctx, &mod);
	if (!ret)
		ret = kmod_module_insert_module(mod, 0, opts);
	if (ret == -EEXIST)
		ret = 0;
	kmod_put(ctx, mod);
	return ret;
}

int vid_module_load_ours(void)
{
	return vid_module_reload_ours(NULL);
}

int vid_module_reload_ours(const char *opts)
{
	const char *path = getenv("VID_MODULE");
	int ret;

	if (!path || !*path)
		path = VID_DEFAULT_MODULE;
	if (opts && vid_module_live(VID_MOD_OURS)) {
		ret = vid_module_remove(VID_MOD_OURS, false);
		if (ret)
			return ret;
	}
	return load_from_path(path, opts);
}

static int load_by_name(const char *name)
{
	struct kmod_module *mod;
	struct kmod_ctx *ctx;
	int ret;

	ret = kmod_get(name, NULL, &ctx, &mod);
	if (!ret)
		ret = kmod_module_probe_insert_module(mod, 0, NULL, NULL,
						      NULL, NULL);
	if (ret > 0)	/* blacklisted or similar: treat as not loadable */
		ret = -EPERM;
	kmod_put(ctx, mod);
	return ret;
}

int vid_modules_setup(const char **why)
{
	const char *dummy;
	int ret;

	if (!why)
		why = &dummy;
	*why = NULL;

	if (vid_backend_intree()) {
		if (vid_module_live(VID_MOD_OURS)) {
			ret = vid_module_remove(VID_MOD_OURS, false);
			if (ret) {
				*why = "unload " VID_MOD_OURS;
				return ret;
			}
		}
		if (!vid_module_live(VID_MOD_TYPE1)) {
			ret = load_by_name(VID_MOD_TYPE1);
			if (ret) {
				*why = "load " VID_MOD_TYPE1;
				return ret;
			}
		}
		return 0;
	}

	/*
	 * The VFIO core tries IOMMU drivers newest first, so ours must be
	 * registered after type1. If type1 is missing, (re)load in order.
	 */
	if (!vid_module_live(VID_MOD_TYPE1)) {
		if (vid_module_live(VID_MOD_OURS)) {
			ret = vid_module_remove(VID_MOD_OURS, false);
			if (ret) {
				*why = "unload " VID_MOD_OURS;
				return ret;
			}
		}
		ret = load_by_name(VID_MOD_TYPE1);
		if (ret) {
			*why = "load " VID_MOD_TYPE1;
			return ret;
		}
	}
	if (!vid_module_live(VID_MOD_OURS)) {
		ret = vid_module_load_ours();
		if (ret) {
			*why = "load " VID_MOD_OURS " from $VID_MODULE";
			return ret;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the emulated test device's module                                      */
/* ---------------------------------------------------------------------- */

/* Insert the test module with parameters @opts (or none). */
static int emu_insert(const char *opts)
{
	const char *path = getenv("VID_EMU_MODULE");
	char exe[PATH_MAX], def[PATH_MAX + sizeof(VID_EMU_KO)];
	char *slash;
	ssize_t n;

	if (!path || !*path) {
		/* The build puts the module next to the test programs. */
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0)
			return -errno;
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (!slash)
			return -ENOENT;
		*slash = '\0';
		snprintf(def, sizeof(def), "%s/%s", exe, VID_EMU_KO);
		path = def;
	}
	return load_from_path(path, opts);
}

int vid_emu_load(void)
{
	if (vid_module_live(VID_EMU_MOD))
		return 0;
	return emu_insert(NULL);
}

int vid_emu_load_mig(unsigned int count)
{
	char path[128], opts[32];
	int ret;

	snprintf(path, sizeof(path), "/sys/bus/platform/devices/%s.%u",
		 VID_EMU_MIG, count - 1);
	if (vid_module_live(VID_EMU_MOD)) {
		if (!access(path, F_OK))
			return 0;
		ret = vid_module_remove(VID_EMU_MOD, false);
		if (ret)
			return ret;
	}
	snprintf(opts, sizeof(opts), "mig_count=%u", count);
	ret = emu_insert(opts);
	if (ret)
		return ret;
	return access(path, F_OK) ? -ENODEV : 0;
}

/* ---------------------------------------------------------------------- */
/* debugfs view of this backend                                           */
/* ---------------------------------------------------------------------- */

/* Is @name a container directory name (decimal digits only)? */
static bool debugfs_numeric(const char *name)
{
	if (!*name)
		return false;
	for (; *name; name++)
		if (!isdigit((unsigned char)*name))
			return false;
	return true;
}

/*
 * The number of container directories, or -errno; the name of the last
 * one read into @last (@len bytes) unless @last is NULL.
 */
static int debugfs_scan(char *last, size_t len)
{
	struct dirent *de;
	int n = 0;
	DIR *dir;

	dir = opendir(VID_DEBUGFS_ROOT);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (!debugfs_numeric(de->d_name))
			continue;
		n++;
		if (last)
			snprintf(last, len, "%s", de->d_name);
	}
	closedir(dir);
	return n;
}

int vid_debugfs_containers(void)
{
	return debugfs_scan(NULL, 0);
}

/* Path of file @file in the only container directory; 0 or -errno. */
static int debugfs_only_file(const char *file, char *path, size_t len)
{
	char name[256] = "";
	int n;

	n = debugfs_scan(name, sizeof(name));
	if (n < 0)
		return n;
	if (n != 1)
		return -EBUSY;
	snprintf(path, len, "%s/%s/%s", VID_DEBUGFS_ROOT, name, file);
	return 0;
}

long vid_debugfs_read(const char *name)
{
	char path[PATH_MAX], buf[4096];
	long total = 0;
	ssize_t n;
	int fd, ret;

	ret = debugfs_only_file(name, path, sizeof(path));
	if (ret)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	if (n < 0)
		total = -errno;
	close(fd);
	return total;
}

long long vid_debugfs_state(const char *key)
{
	char path[PATH_MAX];
	long long v;
	int ret;

	ret = debugfs_only_file("state", path, sizeof(path));
	if (!ret)
		ret = vid_file_key(path, key, &v);
	return ret ? ret : v;
}
