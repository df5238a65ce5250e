// SPDX-License-Identifier: GPL-2.0
/*
 * vid_migrate - one live migration with the device writing, step by step.
 * See vid_migrate.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vid_util.h"
#include "vid_migrate.h"
#include "vid_emu/vid_mig_uapi.h"

#define DEV_DIR		"/sys/bus/platform/devices/"
#define SRC_DEV		VID_MIG_NAME ".0"
#define DST_DEV		VID_MIG_NAME ".1"
#define PCI_SLOT	"4"

#define TRACING		"/sys/kernel/tracing"
#define VID_EVENTS	TRACING "/events/vfio_iommu_dirty"
#define TRACE_KB	"4096"

#define VGA_LO		0xa0000ULL
#define VGA_HI		0x100000ULL
#define DUMP_CHUNK	(32ULL << 20)
#define POLL_US		10000

static const char *const vid_events[] = {
	"vid_dirty_run", "vid_get_bitmap", "vid_dirty_tracking",
};

/* Note what failed in vm->err; returns @ret. */
static int fail(struct vmig *vm, int ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(vm->err, sizeof(vm->err), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(vm->err))
		snprintf(vm->err + n, sizeof(vm->err) - n, ": %s",
			 strerror(-ret));
	return ret;
}

/* Write @text to the file at @path in one write(); 0 or -errno. */
static int write_text(const char *path, const char *text)
{
	size_t len = strlen(text);
	ssize_t done;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	done = write(fd, text, len);
	if (done < 0)
		err = -errno;
	else if ((size_t)done != len)
		err = -EIO;
	close(fd);
	return err;
}

int vmig_init(struct vmig *vm, unsigned int ram_mb, bool page_trace)
{
	char qemu[256];
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->ram_mb = ram_mb;
	vm->page_trace = page_trace;
	vm->pipe = -1;
	vid_qemu_init(&vm->src);
	vid_qemu_init(&vm->dst);
	snprintf(vm->sock, sizeof(vm->sock), "/tmp/vmig-%d.sock", getpid());
	snprintf(vm->qlog, sizeof(vm->qlog), "/tmp/vmig-%d.trace", getpid());
	vm->w = calloc(VMIG_MAX_WRITES, sizeof(*vm->w));
	vm->owner = malloc(((size_t)ram_mb << 20) / VID_PAGE * sizeof(int));
	vm->syncs = calloc(VMIG_MAX_SYNCS, sizeof(*vm->syncs));
	if (!vm->w || !vm->owner || !vm->syncs)
		return fail(vm, -ENOMEM, "allocating");
	memset(vm->owner, 0xff, ((size_t)ram_mb << 20) / VID_PAGE * sizeof(int));

	ret = vid_qemu_find(qemu, sizeof(qemu));
	if (ret)
		return fail(vm, ret, "no host QEMU at %s (guest-run.sh --hostroot)",
			    qemu);
	ret = vid_emu_load_mig(2);
	if (ret)
		return fail(vm, ret, "loading vid_emu with %s.0 and .1",
			    VID_MIG_NAME);
	ret = vid_qemu_stop_strays();
	if (ret < 0)
		return fail(vm, ret, "ending a QEMU left over");
	vm->ours = !vid_backend_intree();
	ret = vid_containers_list(&vm->before);
	return ret ? fail(vm, ret, "listing containers") : 0;
}

/* Start one QEMU (@incoming NULL: the source) and find its container. */
static int start_one(struct vmig *vm, struct vid_qemu *q, const char *dev,
		     const char *incoming, char *cid)
{
	char mem[16], vfio[160], line[1024], uri[128];
	const char *args[16], *why;
	int n = 0, ret;

	snprintf(mem, sizeof(mem), "%uM", vm->ram_mb);
	snprintf(vfio, sizeof(vfio),
		 "vfio-pci,sysfsdev=" DEV_DIR "%s,addr=" PCI_SLOT ",x-enable-migration=on",
		 dev);
	args[n++] = "-m";
	args[n++] = mem;
	args[n++] = "-only-migratable";
	args[n++] = "-device";
	args[n++] = vfio;
	if (incoming) {
		snprintf(uri, sizeof(uri), "unix:%s", incoming);
		args[n++] = "-incoming";
		args[n++] = uri;
	} else {
		/* QEMU's log trace backend, with gettimeofday() stamps. */
		args[n++] = "-msg";
		args[n++] = "timestamp=on";
		args[n++] = "-D";
		args[n++] = vm->qlog;
		args[n++] = "-trace";
		args[n++] = "enable=migration_bitmap_sync_*";
		if (vm->page_trace) {
			args[n++] = "-trace";
			args[n++] = "enable=ram_save_page";
		}
	}
	args[n] = NULL;
	ret = vid_qemu_start(q, incoming ? "dst" : "src", args);
	if (ret)
		return fail(vm, ret, "starting QEMU");
	ret = vid_qemu_up(q, incoming ? "inmigrate" : "prelaunch", line,
			  sizeof(line), &why);
	if (ret) {
		vid_qemu_show_log(q, incoming ? "dst" : "src");
		return fail(vm, ret, "%s QEMU: %s (%s)",
			    incoming ? "destination" : "source", why, line);
	}
	if (!vm->ours)
		return 0;
	ret = vid_containers_new(&vm->before, cid, VID_NAME_LEN);
	if (ret)
		return fail(vm, ret, "the container of %s in debugfs", dev);
	return vid_containers_list(&vm->before);
}

int vmig_start(struct vmig *vm)
{
	int ret;

	unlink(vm->qlog);
	unlink(vm->sock);
	ret = start_one(vm, &vm->src, SRC_DEV, NULL, vm->src_cid);
	if (!ret)
		ret = start_one(vm, &vm->dst, DST_DEV, vm->sock, vm->dst_cid);
	return ret;
}

static int events_switch(const char *on)
{
	char path[128];
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(vid_events); i++) {
		snprintf(path, sizeof(path), VID_EVENTS "/%s/enable",
			 vid_events[i]);
		ret = write_text(path, on);
		if (ret)
			return ret;
	}
	return 0;
}

int vmig_trace_on(struct vmig *vm)
{
	FILE *f;
	int ret;

	if (!vm->ours || access(VID_EVENTS "/enable", W_OK))
		return 0;
	f = fopen(TRACING "/buffer_size_kb", "re");
	if (!f || !fgets(vm->old_kb, sizeof(vm->old_kb), f))
		snprintf(vm->old_kb, sizeof(vm->old_kb), "1408");
	if (f)
		fclose(f);
	ret = write_text(TRACING "/buffer_size_kb", TRACE_KB);
	if (!ret)
		ret = write_text(TRACING "/trace", "");
	if (ret)
		return fail(vm, ret, "preparing tracefs");
	vm->pipe = open(TRACING "/trace_pipe", O_RDONLY | O_NONBLOCK |
			O_CLOEXEC);
	if (vm->pipe < 0)
		return fail(vm, -errno, "opening trace_pipe");
	vm->traced = true;
	ret = events_switch("1");
	return ret ? fail(vm, ret, "enabling this module's events") : 0;
}

int vmig_write(struct vmig *vm, const char *mode, uint64_t gpa,
	       uint64_t len, uint64_t seed)
{
	uint64_t ram = (uint64_t)vm->ram_mb << 20, a;
	char cmd[96];
	int ret;

	if (vm->nw == VMIG_MAX_WRITES || gpa + len > ram)
		return fail(vm, -ENOSPC, "device write 0x%llx+0x%llx",
			    (unsigned long long)gpa, (unsigned long long)len);
	snprintf(cmd, sizeof(cmd), "%s 0x%llx 0x%llx 0x%llx", mode,
		 (unsigned long long)gpa, (unsigned long long)len,
		 (unsigned long long)seed);
	ret = write_text(DEV_DIR SRC_DEV "/dma", cmd);
	if (ret)
		return fail(vm, ret, "device: %s", cmd);
	vm->w[vm->nw] = (struct vmig_write){ gpa, len, seed };
	for (a = gpa & ~(VID_PAGE - 1); a < gpa + len; a += VID_PAGE)
		vm->owner[a / VID_PAGE] = vm->nw;
	vm->nw++;
	return 0;
}

int vmig_qmp(struct vmig *vm, const char *cmd, const char *args)
{
	char line[1024];
	int ret = vid_qmp_exec(&vm->src, cmd, args, line, sizeof(line));

	return ret ? fail(vm, ret, "%s %s (%s)", cmd, args ? args : "",
			  line) : 0;
}

int vmig_migrate(struct vmig *vm, bool pause, uint64_t bandwidth,
		 unsigned int downtime_ms)
{
	char args[160];
	int ret;

	snprintf(args, sizeof(args),
		 "{\"capabilities\": [{\"capability\": \"pause-before-switchover\", \"state\": %s}]}",
		 pause ? "true" : "false");
	ret = vmig_qmp(vm, "migrate-set-capabilities", args);
	if (ret)
		return ret;
	snprintf(args, sizeof(args),
		 "{\"max-bandwidth\": %llu, \"downtime-limit\": %u}",
		 (unsigned long long)bandwidth, downtime_ms);
	ret = vmig_qmp(vm, "migrate-set-parameters", args);
	if (ret)
		return ret;
	snprintf(args, sizeof(args), "{\"uri\": \"unix:%s\"}", vm->sock);
	return vmig_qmp(vm, "migrate", args);
}

int vmig_query(struct vmig *vm, struct vmig_status *st)
{
	char line[4096];
	const char *ram;
	int ret;

	memset(st, 0, sizeof(*st));
	ret = vid_qmp_exec(&vm->src, "query-migrate", NULL, line,
			   sizeof(line));
	if (!ret)
		ret = vid_json_str(line, "status", st->status,
				   sizeof(st->status));
	if (ret)
		return fail(vm, ret, "query-migrate (%s)", line);
	vid_json_u64(line, "total-time", &st->total_ms);
	vid_json_u64(line, "downtime", &st->downtime_ms);
	ram = strstr(line, "\"ram\":");
	if (!ram)
		return 0;
	vid_json_u64(ram, "dirty-sync-count", &st->syncs);
	vid_json_u64(ram, "normal", &st->normal);
	vid_json_u64(ram, "duplicate", &st->duplicate);
	vid_json_u64(ram, "total", &st->total);
	return 0;
}

/* ------------------------------------------------------------------ */
/* this module's trace                                                 */
/* ------------------------------------------------------------------ */

/* The number after "@key=" in @line. */
static bool field(const char *line, const char *key, uint64_t *val)
{
	const char *p = strstr(line, key);

	if (!p)
		return false;
	*val = strtoull(p + strlen(key), NULL, 0);
	return true;
}

/*
 * A GET_BITMAP call (or a run it reported) at @iova: is it the first of
 * a new sync? Sections come in ascending order within one sync.
 */
static struct vmig_sync *mod_sync(struct vmig *vm, uint64_t iova)
{
	if (!vm->nmod || (vm->have_iova && iova <= vm->last_iova)) {
		if (vm->nmod == VMIG_MAX_SYNCS)
			return NULL;
		vm->nmod++;
		vm->have_iova = false;
	}
	return &vm->syncs[vm->nmod - 1];
}

static void mod_run(struct vmig *vm, uint64_t iova, uint64_t npages,
		    unsigned int shift)
{
	struct vmig_sync *s = mod_sync(vm, iova);
	uint64_t pages = npages << (shift - 12), p;
	struct vmig_run *r;

	if (!s || shift < 12)
		return;
	s->reported += pages;
	for (p = 0; p < pages; p++)
		s->rep_cells[vmig_cell(vm, iova + p * VID_PAGE)]++;
	if (vm->nruns == vm->maxruns) {
		unsigned int n = vm->maxruns ? 2 * vm->maxruns : 1024;

		r = realloc(vm->runs, n * sizeof(*r));
		if (!r)
			return;
		vm->runs = r;
		vm->maxruns = n;
	}
	vm->runs[vm->nruns++] = (struct vmig_run){ vm->nmod - 1, iova, pages };
}

static void trace_line(struct vmig *vm, const char *line)
{
	char want[48];
	uint64_t iova, npages, shift;

	snprintf(want, sizeof(want), "container=%s ", vm->src_cid);
	if (!strstr(line, want) || !field(line, " iova=", &iova))
		return;
	if (strstr(line, "vid_dirty_run:")) {
		if (field(line, " npages=", &npages) &&
		    field(line, " pgshift=", &shift))
			mod_run(vm, iova, npages, shift);
	} else if (strstr(line, "vid_get_bitmap:")) {
		if (mod_sync(vm, iova)) {
			vm->gets++;
			vm->last_iova = iova;
			vm->have_iova = true;
		}
	}
}

/* Everything trace_pipe has now. */
static void trace_drain(struct vmig *vm)
{
	char *nl, *p;
	ssize_t n;

	while (vm->pipe >= 0) {
		n = read(vm->pipe, vm->tbuf + vm->tlen,
			 sizeof(vm->tbuf) - 1 - vm->tlen);
		if (n <= 0)
			return;
		vm->tlen += n;
		vm->tbuf[vm->tlen] = '\0';
		p = vm->tbuf;
		while ((nl = strchr(p, '\n'))) {
			*nl = '\0';
			trace_line(vm, p);
			p = nl + 1;
		}
		vm->tlen -= p - vm->tbuf;
		memmove(vm->tbuf, p, vm->tlen);
		/* A line longer than the buffer: drop it. */
		if (vm->tlen == sizeof(vm->tbuf) - 1)
			vm->tlen = 0;
	}
}

int vmig_wait(struct vmig *vm, const char *until, uint64_t syncs,
	      long ms, struct vmig_status *st)
{
	long long deadline = vid_now_ms() + ms;
	int ret;

	for (;;) {
		trace_drain(vm);
		ret = vmig_query(vm, st);
		if (ret)
			return ret;
		if (!strcmp(st->status, until)) {
			/* "completed" comes a moment before total-time. */
			if (strcmp(until, "completed") || st->total_ms)
				return 0;
		} else if (syncs && !strcmp(st->status, "active") &&
			   st->syncs >= syncs) {
			return 0;
		} else if (!strcmp(st->status, "failed") ||
			   !strcmp(st->status, "cancelled") ||
			   !strcmp(st->status, "completed")) {
			return fail(vm, -EIO, "waiting for %s: migration %s",
				    until, st->status);
		}
		if (vid_now_ms() > deadline)
			return fail(vm, -ETIMEDOUT, "no %s after %ld ms (%s)",
				    until, ms, st->status);
		usleep(POLL_US);
	}
}

/* ------------------------------------------------------------------ */
/* comparing memory                                                     */
/* ------------------------------------------------------------------ */

/* pmemsave [@gpa, @gpa + @len) of @q into @file, mapped; NULL on error. */
static const uint8_t *save_mem(struct vmig *vm, struct vid_qemu *q,
			       const char *file, uint64_t gpa, uint64_t len)
{
	char args[160], line[512];
	void *p = MAP_FAILED;
	struct stat sb;
	int fd, ret;

	snprintf(args, sizeof(args),
		 "{\"val\": %llu, \"size\": %llu, \"filename\": \"%s\"}",
		 (unsigned long long)gpa, (unsigned long long)len, file);
	ret = vid_qmp_exec(q, "pmemsave", args, line, sizeof(line));
	if (ret) {
		fail(vm, ret, "pmemsave (%s)", line);
		return NULL;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && !fstat(fd, &sb) && (uint64_t)sb.st_size == len)
		p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (fd >= 0)
		close(fd);
	unlink(file);
	if (p == MAP_FAILED) {
		fail(vm, -EIO, "reading %s", file);
		return NULL;
	}
	return p;
}

/* Does @page at @gpa hold what write @w put there? */
static bool holds_write(const struct vmig *vm, const uint64_t *page,
			uint64_t gpa, int w)
{
	unsigned int i;

	for (i = 0; i < VID_PAGE / 8; i++)
		if (page[i] != vid_mig_pattern(vm->w[w].seed, gpa + 8 * i))
			return false;
	return true;
}

int vmig_compare(struct vmig *vm, struct vmig_verdict *v)
{
	uint64_t ram = (uint64_t)vm->ram_mb << 20, base, off, len;
	long long t0 = vid_now_ms();
	const uint8_t *s, *d;
	char fs[64], fd[64];
	int ret = 0;

	memset(v, 0, sizeof(*v));
	snprintf(fs, sizeof(fs), "/tmp/vmig-%d.src", getpid());
	snprintf(fd, sizeof(fd), "/tmp/vmig-%d.dst", getpid());
	for (base = 0; base < ram && !ret; base += len) {
		len = ram - base < DUMP_CHUNK ? ram - base : DUMP_CHUNK;
		s = save_mem(vm, &vm->src, fs, base, len);
		d = s ? save_mem(vm, &vm->dst, fd, base, len) : NULL;
		if (!d) {
			ret = -EIO;
		} else {
			for (off = 0; off < len; off += VID_PAGE) {
				uint64_t gpa = base + off;
				int w = vm->owner[gpa / VID_PAGE];

				if (gpa >= VGA_LO && gpa < VGA_HI)
					continue;
				v->pages++;
				if (memcmp(s + off, d + off, VID_PAGE))
					v->differ++;
				if (w < 0)
					continue;
				v->written++;
				if (holds_write(vm, (const void *)(d + off),
						gpa, w))
					v->arrived++;
			}
			munmap((void *)d, len);
		}
		if (s)
			munmap((void *)s, len);
	}
	v->ms = vid_now_ms() - t0;
	return ret;
}

/* ------------------------------------------------------------------ */
/* the end                                                              */
/* ------------------------------------------------------------------ */

static int cont_src(struct vmig *vm)
{
	long long deadline = vid_now_ms() + VID_QMP_MS;
	char line[512], status[32] = "";
	int ret = vmig_qmp(vm, "cont", NULL);

	while (!ret && strcmp(status, "running")) {
		if (vid_now_ms() > deadline)
			return fail(vm, -ETIMEDOUT, "source not running");
		usleep(POLL_US);
		ret = vid_qmp_exec(&vm->src, "query-status", NULL, line,
				   sizeof(line));
		if (!ret)
			ret = vid_json_str(line, "status", status,
					   sizeof(status));
	}
	return ret;
}

static int quit(struct vmig *vm, struct vid_qemu *q, const char *who)
{
	char line[512];
	const char *why;
	int ret = vid_qemu_quit(q, line, sizeof(line), &why);

	return ret ? fail(vm, ret, "%s QEMU: %s (%s)", who, why, line) : 0;
}

/* "pid@sec.usec:event rest" of QEMU's trace: the time and the rest. */
static const char *qemu_event(const char *line, const char *event,
			      double *t)
{
	const char *at = strchr(line, '@'), *colon;
	size_t n = strlen(event);

	if (!at)
		return NULL;
	colon = strchr(at, ':');
	if (!colon || strncmp(colon + 1, event, n) || colon[1 + n] != ' ')
		return NULL;
	*t = strtod(at + 1, NULL);
	return colon + 1 + n + 1;
}

/* QEMU's syncs and, with page_trace, the pages sent after each. */
static int read_qemu_trace(struct vmig *vm)
{
	struct vmig_sync *cur = NULL;
	char line[512];
	const char *rest, *off;
	double t;
	FILE *f;

	f = fopen(vm->qlog, "re");
	if (!f)
		return fail(vm, -errno, "QEMU's trace %s", vm->qlog);
	while (fgets(line, sizeof(line), f)) {
		if (qemu_event(line, "migration_bitmap_sync_start", &t)) {
			if (vm->nsyncs == VMIG_MAX_SYNCS)
				break;
			cur = &vm->syncs[vm->nsyncs++];
			cur->t_start = t;
			cur->sent = vm->page_trace ? 0 : -1;
		} else if (cur &&
			   qemu_event(line, "migration_bitmap_sync_end", &t)) {
			cur->t_end = t;
		} else if (cur) {
			rest = qemu_event(line, "ram_save_page", &t);
			/* "pc.ram: offset: 0x... host: ...": RAM from 0. */
			off = rest && !strncmp(rest, "pc.ram: ", 8) ?
			      strstr(rest, "offset: ") : NULL;
			if (!off)
				continue;
			cur->sent++;
			cur->sent_cells[vmig_cell(vm, strtoull(off + 8, NULL,
							       16))]++;
		}
	}
	fclose(f);
	return 0;
}

int vmig_finish(struct vmig *vm)
{
	unsigned int i;
	int ret;

	ret = cont_src(vm);
	if (!ret)
		ret = quit(vm, &vm->dst, "destination");
	if (!ret)
		ret = quit(vm, &vm->src, "source");
	trace_drain(vm);
	if (vm->traced)
		events_switch("0");
	if (!vm->traced)
		for (i = 0; i < VMIG_MAX_SYNCS; i++)
			vm->syncs[i].reported = -1;
	if (!ret)
		ret = read_qemu_trace(vm);
	return ret;
}

void vmig_cleanup(struct vmig *vm)
{
	vid_qemu_kill(&vm->src);
	vid_qemu_kill(&vm->dst);
	vid_qemu_show_log(&vm->src, "src");
	vid_qemu_show_log(&vm->dst, "dst");
	unlink(vm->sock);
	unlink(vm->qlog);
	if (vm->traced) {
		events_switch("0");
		write_text(TRACING "/buffer_size_kb", vm->old_kb);
		vm->traced = false;
	}
	if (vm->pipe >= 0)
		close(vm->pipe);
	vm->pipe = -1;
	free(vm->w);
	free(vm->owner);
	free(vm->syncs);
	free(vm->runs);
	vm->w = NULL;
	vm->owner = NULL;
	vm->syncs = NULL;
	vm->runs = NULL;
}
