// SPDX-License-Identifier: GPL-2.0
/*
 * Live migration end to end. The host's unmodified QEMU (7.2, run in the
 * test guest as in qemu_test) migrates a paused VM from a source to a
 * destination QEMU over a unix socket while the assigned device writes
 * the VM's memory, and not one byte may be lost.
 *
 * The device is vid-mig.N of the test module vid_emu (vid_mig_uapi.h):
 * QEMU's vfio-pci takes it with x-enable-migration=on and migrates it by
 * the first VFIO migration protocol. The test plays the device's part
 * through its sysfs attributes: it writes patterns into guest memory
 * (vfio_dma_rw(), or pin + write + unpin), before the migration, during
 * pre-copy after all RAM was sent once, and at the pause before
 * switchover (pause-before-switchover), and holds one page pinned
 * throughout. The migration is kept from converging (a 1 ms downtime
 * limit and a small bandwidth: the held page is dirty at every sync)
 * until the test lets it.
 *
 * After "completed" the guest RAM of both sides is saved (pmemsave) and
 * compared page by page, the legacy VGA hole excepted: the source must
 * hold exactly what the device wrote (the VM never ran), the destination
 * the same. The stopped source device must refuse DMA; once the
 * destination runs, its device must have the source's registers and
 * buffer, and the device state histories must read SAVING|RUNNING,
 * SAVING, STOP and RESUMING, RUNNING. QEMU 7.2 postpones the end of dirty
 * tracking until the VM runs, so the source runs again too before both
 * quit. For this module, debugfs must show both containers, and its
 * tracepoints the dirty tracking QEMU did on the source's container (one
 * START, a GET_BITMAP per RAM section at each sync, one STOP), none on
 * the destination's. Afterwards nothing may stay pinned or charged.
 *
 * Variants: the device case above (128 MiB); the same with the source's
 * x-pre-copy-dirty-page-tracking=off, where QEMU skips every dirty sync
 * and the writes after the first pass must be missing on the destination
 * (a negative control: the comparison can fail); 512 MiB with thousands
 * of pages written at random while pre-copy iterates; and a migration
 * without any device (the machinery alone).
 *
 * With VID_BACKEND=intree the same runs go against vfio_iommu_type1 and
 * only this module's debugfs and tracepoint checks are left out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"
#include "vid_qemu.h"
#include "vid_emu/vid_mig_uapi.h"

#define SYSFS_DEV	"/sys/bus/platform/devices/"
#define SRC_DEV		VID_MIG_NAME ".0"
#define DST_DEV		VID_MIG_NAME ".1"
#define PCI_ADDR	"4"	/* the same slot on both sides */

#define TRACEFS		"/sys/kernel/tracing"
#define EVENTS		TRACEFS "/events/vfio_iommu_dirty"
#define TRACE_KB	"8192"	/* per CPU: a long pre-copy syncs often */

#define VGA_START	0xa0000ULL
#define VGA_END		0x100000ULL
#define CHUNK		(32ULL << 20)	/* pmemsave piece */

#define BANDWIDTH	1048576ULL	/* bytes/s while pre-copy iterates */
#define SLOW_DOWNTIME	1		/* ms: no convergence */
#define FAST_DOWNTIME	60000		/* ms: converge now */

#define MIG_MS		300000	/* a migration phase */
#define POLL_MS		20
#define SETTLE_MS	5000	/* counters back after QEMU is gone */

#define MAX_WRITES	4096
#define STATE_LEN	2048	/* a device's "state" text */
#define BATCH		250	/* random pages between two syncs */

enum phase { P_BEFORE, P_HOLD, P_PRECOPY, P_SWITCH, NR_PHASES };

static const char *const phase_name[NR_PHASES] = {
	"before migrate", "held", "pre-copy", "pre-switchover",
};

/* One dma command the device carried out. */
struct wr {
	const char *mode;	/* rw, pin, hold */
	unsigned long long gpa;
	unsigned long long len;
	unsigned long long seed;
	enum phase phase;
};

/* Per guest page: the last write to it and the one before, or -1. */
struct owner {
	int cur;
	int prev;
};

/* What the page-by-page comparison found. */
struct verdict {
	unsigned long pages;		/* compared */
	unsigned long src_bad;		/* source differs from the writes */
	unsigned long diff;		/* destination differs from source */
	unsigned long junk;		/* unwritten page not zero on dst */
	unsigned long written[NR_PHASES];
	unsigned long present[NR_PHASES];	/* dst has the write */
	unsigned long stale[NR_PHASES];	/* dst has what was there before */
	unsigned long long first_diff;
	unsigned long long first_src_bad;
};

struct mig_status {
	char status[32];
	uint64_t syncs;		/* ram dirty-sync-count */
	uint64_t transferred;	/* ram bytes */
};

/* What a variant asks for. */
struct mig_cfg {
	unsigned int ram_mb;
	bool device;		/* vid-mig.0 on the source, .1 on the destination */
	bool precopy_tracking;	/* the source's x-pre-copy-dirty-page-tracking */
	unsigned int random_pages;	/* written at random during pre-copy */
};

/* One migration, and what was true before it. */
struct run {
	const struct mig_cfg *cfg;
	struct vid_qemu src;
	struct vid_qemu dst;
	struct vid_acct base;
	long ref0;
	bool ours;		/* this module: debugfs checks */
	bool traced;		/* its tracepoints are on */
	char old_kb[32];	/* trace buffer size before */
	struct vid_names before;
	char src_cid[VID_NAME_LEN];
	char dst_cid[VID_NAME_LEN];
	char mig_sock[108];
	char uri[128];		/* the destination's -incoming */
	char dump[2][64];	/* pmemsave files */
	struct wr *w;
	int nw;
	struct owner *pages;
	unsigned long npages;
};

FIXTURE(mig) {
	struct run r;
};

FIXTURE_VARIANT(mig) {
	struct mig_cfg cfg;
};

/* The device writes before, during and after pre-copy. */
FIXTURE_VARIANT_ADD(mig, device) {
	.cfg = {
		.ram_mb = 128,
		.device = true,
		.precopy_tracking = true,
	},
};

/* QEMU skips the dirty syncs: the writes after the first pass are lost. */
FIXTURE_VARIANT_ADD(mig, no_precopy_tracking) {
	.cfg = {
		.ram_mb = 128,
		.device = true,
		.precopy_tracking = false,
	},
};

/* 512 MiB, a few thousand pages written at random during pre-copy. */
FIXTURE_VARIANT_ADD(mig, large_random) {
	.cfg = {
		.ram_mb = 512,
		.device = true,
		.precopy_tracking = true,
		.random_pages = 3000,
	},
};

/* No device: QEMU's own migration and the comparison alone. */
FIXTURE_VARIANT_ADD(mig, ram_only) {
	.cfg = {
		.ram_mb = 128,
	},
};

/* ------------------------------------------------------------------ */
/* files                                                                */
/* ------------------------------------------------------------------ */

/* Write @val to @path in one write(); 0 or -errno. */
static int put_file(const char *path, const char *val)
{
	ssize_t n, len = strlen(val);
	int fd, ret;

	/* O_TRUNC: what clears tracefs's trace; sysfs ignores it. */
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	ret = n < 0 ? -errno : n == len ? 0 : -EIO;
	close(fd);
	return ret;
}

/* The first line of @path into @buf without its newline; 0 or -errno. */
static int get_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, len, f))
		ret = -EIO;
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return ret;
}

/* ------------------------------------------------------------------ */
/* the device's attributes                                              */
/* ------------------------------------------------------------------ */

/* One "dma" command to device @dev; 0 or -errno. */
static int dev_dma(const char *dev, const char *cmd)
{
	char path[128];

	snprintf(path, sizeof(path), SYSFS_DEV "%s/dma", dev);
	return put_file(path, cmd);
}

/* Device @dev's whole "state" into @buf; 0 or -errno. */
static int dev_state(const char *dev, char *buf, size_t len)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), SYSFS_DEV "%s/state", dev);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/*
 * The rest of the line that starts with "@key " in a state text, into
 * @val; 0 or -ENOENT.
 */
static int state_field(const char *state, const char *key, char *val,
		       size_t len)
{
	size_t klen = strlen(key);
	const char *p = state;

	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == ' ') {
			p += klen + 1;
			snprintf(val, len, "%.*s", (int)strcspn(p, "\n"), p);
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -ENOENT;
}

/* A numeric field of a state text, or -1 when it is missing. */
static long long state_num(const char *state, const char *key)
{
	char val[64];

	if (state_field(state, key, val, sizeof(val)))
		return -1;
	return strtoll(val, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* the device writes guest memory                                       */
/* ------------------------------------------------------------------ */

/*
 * Have the source device write @len bytes at @gpa with @seed (@mode: rw,
 * pin, hold) and note it in the model of guest memory.
 */
static void dev_write(struct __test_metadata *_metadata,
		      struct run *r, const char *mode,
		      unsigned long long gpa, unsigned long long len,
		      unsigned long long seed, enum phase phase)
{
	unsigned long long a;
	char cmd[128];
	struct wr *w;

	ASSERT_GT(MAX_WRITES, r->nw);
	ASSERT_EQ(0, gpa % VID_PAGE);
	ASSERT_EQ(0, len % VID_PAGE);
	ASSERT_GE(r->npages, (gpa + len) / VID_PAGE);
	snprintf(cmd, sizeof(cmd), "%s 0x%llx 0x%llx 0x%llx", mode, gpa, len,
		 seed);
	VID_ASSERT_OK(dev_dma(SRC_DEV, cmd));
	w = &r->w[r->nw];
	w->mode = mode;
	w->gpa = gpa;
	w->len = len;
	w->seed = seed;
	w->phase = phase;
	for (a = gpa; a < gpa + len; a += VID_PAGE) {
		struct owner *o = &r->pages[a / VID_PAGE];

		o->prev = o->cur;
		o->cur = r->nw;
	}
	r->nw++;
}

/* The fixed writes of one phase: distinct places and seeds. */
static void phase_writes(struct __test_metadata *_metadata,
			 struct run *r, enum phase phase)
{
	unsigned long long s = 0x100 * (phase + 1);

	switch (phase) {
	case P_BEFORE:
		dev_write(_metadata, r, "rw", 0x200000, 0x3000, s + 1, phase);
		dev_write(_metadata, r, "pin", 0x280000, 0x2000, s + 2, phase);
		dev_write(_metadata, r, "rw", 0x10000, 0x1000, s + 3, phase);
		break;
	case P_HOLD:
		dev_write(_metadata, r, "hold", 0x300000, 0x1000, s + 1,
			  phase);
		break;
	case P_PRECOPY:
		dev_write(_metadata, r, "rw", 0x400000, 0x4000, s + 1, phase);
		dev_write(_metadata, r, "pin", 0x480000, 0x2000, s + 2, phase);
		dev_write(_metadata, r, "rw", 0x20000, 0x1000, s + 3, phase);
		/* Again over a page written before the first pass. */
		dev_write(_metadata, r, "rw", 0x201000, 0x1000, s + 4, phase);
		break;
	case P_SWITCH:
		dev_write(_metadata, r, "rw", 0x600000, 0x2000, s + 1, phase);
		dev_write(_metadata, r, "pin", 0x680000, 0x1000, s + 2, phase);
		dev_write(_metadata, r, "pin", 0x281000, 0x1000, s + 3, phase);
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------ */
/* QMP steps                                                            */
/* ------------------------------------------------------------------ */

/* A QMP command that must succeed. */
static void qmp_ok(struct __test_metadata *_metadata, struct vid_qemu *q,
		   const char *cmd, const char *args)
{
	char line[1024];
	int ret = vid_qmp_exec(q, cmd, args, line, sizeof(line));

	ASSERT_EQ(0, ret) TH_LOG("%s %s: %s: %s", cmd, args ? args : "",
				 strerror(-ret), line);
}

static int mig_query(struct vid_qemu *q, struct mig_status *st,
		     char *line, size_t size)
{
	const char *ram;
	int ret;

	memset(st, 0, sizeof(*st));
	ret = vid_qmp_exec(q, "query-migrate", NULL, line, size);
	if (ret)
		return ret;
	ret = vid_json_str(line, "status", st->status, sizeof(st->status));
	if (ret)
		return ret;
	ram = strstr(line, "\"ram\":");
	if (ram) {
		vid_json_u64(ram, "dirty-sync-count", &st->syncs);
		vid_json_u64(ram, "transferred", &st->transferred);
	}
	return 0;
}

/*
 * Poll @q's migration until its status is @until or, with @syncs, it is
 * "active" with at least @syncs dirty syncs done. Fails on "failed",
 * "cancelled" and after MIG_MS.
 */
static void mig_wait(struct __test_metadata *_metadata, struct vid_qemu *q,
		     const char *until, uint64_t syncs, struct mig_status *st)
{
	long long deadline = vid_now_ms() + MIG_MS;
	char line[4096];
	int ret;

	for (;;) {
		ret = mig_query(q, st, line, sizeof(line));
		ASSERT_EQ(0, ret) TH_LOG("query-migrate: %s: %s",
					 strerror(-ret), line);
		if (!strcmp(st->status, until))
			return;
		if (syncs && !strcmp(st->status, "active") &&
		    st->syncs >= syncs)
			return;
		ASSERT_TRUE(strcmp(st->status, "failed") &&
			    strcmp(st->status, "cancelled") &&
			    strcmp(st->status, "completed"))
			TH_LOG("waiting for %s: %s", until, line);
		ASSERT_GT(deadline, vid_now_ms())
			TH_LOG("no %s after %d ms: %s", until, MIG_MS, line);
		usleep(POLL_MS * 1000);
	}
}

/* ------------------------------------------------------------------ */
/* the two QEMUs                                                        */
/* ------------------------------------------------------------------ */

/*
 * Start the source (@incoming NULL) or the destination QEMU and check
 * that the backend under test serves its container: 0 or -errno.
 */
static void qemu_up(struct __test_metadata *_metadata,
		    struct run *r,
		    struct vid_qemu *q,
		    const char *dev, const char *incoming, char *cid)
{
	const char *args[12], *why;
	char mem[32], vfio[256], line[1024];
	long long t0 = vid_now_ms();
	int n = 0, ret;

	snprintf(mem, sizeof(mem), "%uM", r->cfg->ram_mb);
	args[n++] = "-m";
	args[n++] = mem;
	if (r->cfg->device) {
		snprintf(vfio, sizeof(vfio),
			 "vfio-pci,sysfsdev=%s%s,addr=%s,x-enable-migration=on%s",
			 SYSFS_DEV, dev, PCI_ADDR,
			 incoming || r->cfg->precopy_tracking ? "" :
			 ",x-pre-copy-dirty-page-tracking=off");
		args[n++] = "-only-migratable";
		args[n++] = "-device";
		args[n++] = vfio;
	}
	if (incoming) {
		args[n++] = "-incoming";
		args[n++] = incoming;
	}
	args[n] = NULL;

	VID_ASSERT_OK(vid_qemu_start(q, incoming ? "dst" : "src", args));
	ret = vid_qemu_up(q, incoming ? "inmigrate" : "prelaunch", line,
			  sizeof(line), &why);
	ASSERT_EQ(0, ret) TH_LOG("%s QEMU: %s: %s: %s",
				 incoming ? "destination" : "source", why,
				 strerror(-ret), line);
	ksft_print_msg("%s QEMU (pid %d) up in %lld ms\n",
		       incoming ? "destination" : "source", q->pid,
		       vid_now_ms() - t0);
	if (!r->cfg->device || !r->ours)
		return;
	ret = vid_containers_new(&r->before, cid, VID_NAME_LEN);
	ASSERT_EQ(0, ret) TH_LOG("%s's container in " VID_DEBUGFS_ROOT ": %s",
				 dev, ret == -EEXIST ? "more than one new" :
				 strerror(-ret));
	/* The next QEMU's container is the one that is new after this. */
	VID_ASSERT_OK(vid_containers_list(&r->before));
}

/* Let @q's guest run ("cont"); returns once QEMU says it runs. */
static void qemu_cont(struct __test_metadata *_metadata, struct vid_qemu *q)
{
	long long deadline = vid_now_ms() + VID_QMP_MS;
	char line[1024], status[32] = "";

	qmp_ok(_metadata, q, "cont", NULL);
	do {
		VID_ASSERT_OK(vid_qmp_exec(q, "query-status", NULL, line,
					   sizeof(line)));
		VID_ASSERT_OK(vid_json_str(line, "status", status,
					   sizeof(status)));
		if (!strcmp(status, "running"))
			return;
		usleep(POLL_MS * 1000);
	} while (vid_now_ms() < deadline);
	ASSERT_STREQ("running", status) TH_LOG("%s", line);
}

/* Quit @q over QMP; it must exit with status 0. */
static void qemu_quit(struct __test_metadata *_metadata, struct vid_qemu *q,
		      const char *who)
{
	char line[1024];
	const char *why;
	int ret;

	ret = vid_qemu_quit(q, line, sizeof(line), &why);
	ASSERT_EQ(0, ret) TH_LOG("%s QEMU: %s: %s: %s", who, why,
				 strerror(-ret), line);
	EXPECT_TRUE(WIFEXITED(q->status) && WEXITSTATUS(q->status) == 0)
		TH_LOG("%s QEMU wait status 0x%x", who, q->status);
}

/* ------------------------------------------------------------------ */
/* comparing guest memory                                               */
/* ------------------------------------------------------------------ */

/* Does @page (at @gpa) hold exactly write @w (-1: zeros)? */
static bool page_is(const struct run *r, const uint64_t *page,
		    unsigned long long gpa, int w)
{
	size_t i;

	for (i = 0; i < VID_PAGE / 8; i++) {
		uint64_t want = w < 0 ? 0 :
			vid_mig_pattern(r->w[w].seed, gpa + 8 * i);

		if (page[i] != want)
			return false;
	}
	return true;
}

/* Save [@gpa, @gpa + @len) of @q's guest memory to @file and map it. */
static void *dump(struct __test_metadata *_metadata, struct vid_qemu *q,
		  const char *file, unsigned long long gpa,
		  unsigned long long len)
{
	char args[256], line[1024];
	struct stat st;
	void *p;
	int fd, ret;

	snprintf(args, sizeof(args),
		 "{\"val\": %llu, \"size\": %llu, \"filename\": \"%s\"}", gpa,
		 len, file);
	ret = vid_qmp_exec(q, "pmemsave", args, line, sizeof(line));
	EXPECT_EQ(0, ret) TH_LOG("pmemsave %s: %s: %s", args, strerror(-ret),
				 line);
	if (ret)
		return NULL;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	EXPECT_LE(0, fd) TH_LOG("%s: %s", file, strerror(errno));
	if (fd < 0)
		return NULL;
	p = NULL;
	if (!fstat(fd, &st) && (unsigned long long)st.st_size == len)
		p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	/* The mapping keeps the data; the file goes at once. */
	unlink(file);
	EXPECT_TRUE(p && p != MAP_FAILED) TH_LOG("%s: size %lld, want %llu",
						 file, (long long)st.st_size,
						 len);
	return p && p != MAP_FAILED ? p : NULL;
}

/* Compare one chunk of both guests' memory page by page into @v. */
static void compare_chunk(const struct run *r, const uint8_t *s,
			  const uint8_t *d, unsigned long long base,
			  unsigned long long len, struct verdict *v)
{
	unsigned long long off;

	for (off = 0; off < len; off += VID_PAGE) {
		const uint64_t *sp = (const uint64_t *)(s + off);
		const uint64_t *dp = (const uint64_t *)(d + off);
		unsigned long long gpa = base + off;
		const struct owner *o = &r->pages[gpa / VID_PAGE];
		enum phase ph;

		if (gpa >= VGA_START && gpa < VGA_END)
			continue;
		v->pages++;
		if (!page_is(r, sp, gpa, o->cur) && !v->src_bad++)
			v->first_src_bad = gpa;
		if (memcmp(sp, dp, VID_PAGE) && !v->diff++)
			v->first_diff = gpa;
		if (o->cur < 0) {
			if (!page_is(r, dp, gpa, -1))
				v->junk++;
			continue;
		}
		ph = r->w[o->cur].phase;
		v->written[ph]++;
		if (page_is(r, dp, gpa, o->cur))
			v->present[ph]++;
		else if (page_is(r, dp, gpa, o->prev))
			v->stale[ph]++;
	}
}

/* Both guests' memory, chunk by chunk, the VGA hole excepted. */
static void compare_ram(struct __test_metadata *_metadata,
			struct run *r, struct verdict *v)
{
	unsigned long long ram = (unsigned long long)r->cfg->ram_mb << 20;
	unsigned long long gpa, len;
	long long t0 = vid_now_ms(), avail, low = 0;
	void *s, *d;
	int i;

	memset(v, 0, sizeof(*v));
	for (gpa = 0; gpa < ram; gpa += len) {
		len = ram - gpa < CHUNK ? ram - gpa : CHUNK;
		s = dump(_metadata, &r->src, r->dump[0], gpa, len);
		d = dump(_metadata, &r->dst, r->dump[1], gpa, len);
		if (s && d)
			compare_chunk(r, s, d, gpa, len, v);
		if (!vid_file_key("/proc/meminfo", "MemAvailable", &avail) &&
		    (!low || avail < low))
			low = avail;
		if (s)
			munmap(s, len);
		if (d)
			munmap(d, len);
		ASSERT_TRUE(s && d);
	}
	ksft_print_msg("compared %lu pages in %lld ms: %lu differ; MemAvailable >= %lld MiB\n",
		       v->pages, vid_now_ms() - t0, v->diff, low >> 10);
	ksft_print_msg("%lu source pages not as written, %lu unwritten dst pages not zero\n",
		       v->src_bad, v->junk);
	if (v->diff)
		ksft_print_msg("first difference at 0x%llx\n", v->first_diff);
	for (i = 0; i < NR_PHASES; i++)
		ksft_print_msg("%s: %lu pages written, %lu arrived, %lu stale\n",
			       phase_name[i], v->written[i], v->present[i],
			       v->stale[i]);
}

/* ------------------------------------------------------------------ */
/* this module's tracepoints                                            */
/* ------------------------------------------------------------------ */

struct trace_counts {
	unsigned long start, stop, get, get_err;
};

/* Count the dirty-tracking events of container @cid in the trace. */
static int trace_count(const char *cid, struct trace_counts *c)
{
	char line[512], want[48];
	FILE *f;

	memset(c, 0, sizeof(*c));
	snprintf(want, sizeof(want), "container=%s ", cid);
	f = fopen(TRACEFS "/trace", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, want))
			continue;
		if (strstr(line, "vid_dirty_tracking:")) {
			if (strstr(line, " start "))
				c->start++;
			else if (strstr(line, " stop "))
				c->stop++;
		} else if (strstr(line, "vid_get_bitmap:")) {
			c->get++;
			if (!strstr(line, " ret=0"))
				c->get_err++;
		}
	}
	fclose(f);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the fixture                                                          */
/* ------------------------------------------------------------------ */

FIXTURE_SETUP(mig)
{
	struct run *r = &self->r;
	unsigned long p;
	int n, i;

	r->cfg = &variant->cfg;
	vid_qemu_init(&r->src);
	vid_qemu_init(&r->dst);
	r->traced = false;
	r->nw = 0;
	r->w = NULL;
	r->pages = NULL;
	snprintf(r->mig_sock, sizeof(r->mig_sock),
		 "/tmp/vid-mig-%d.sock", getpid());
	for (i = 0; i < 2; i++)
		snprintf(r->dump[i], sizeof(r->dump[i]),
			 "/tmp/vid-mig-%d.%s", getpid(), i ? "dst" : "src");
	if (!vid_qemu_prepare(_metadata))
		return;
	if (r->cfg->device) {
		n = vid_emu_load_mig(2);
		ASSERT_EQ(0, n) TH_LOG("vid_emu with %s.0 and .1: %s",
				       VID_EMU_MIG, strerror(-n));
	}
	r->ours = !vid_backend_intree();
	r->ref0 = vid_module_refcnt(vid_backend_module());
	ASSERT_LE(0, r->ref0);
	VID_ASSERT_OK(vid_acct_read(&r->base));
	VID_ASSERT_OK(vid_containers_list(&r->before));

	r->npages = ((unsigned long)r->cfg->ram_mb << 20) / VID_PAGE;
	r->pages = calloc(r->npages, sizeof(*r->pages));
	r->w = calloc(MAX_WRITES, sizeof(*r->w));
	ASSERT_TRUE(r->pages && r->w);
	for (p = 0; p < r->npages; p++) {
		r->pages[p].cur = -1;
		r->pages[p].prev = -1;
	}

	if (r->ours && r->cfg->device && !access(EVENTS "/enable", W_OK)) {
		VID_ASSERT_OK(get_line(TRACEFS "/buffer_size_kb", r->old_kb,
				       sizeof(r->old_kb)));
		VID_ASSERT_OK(put_file(TRACEFS "/buffer_size_kb", TRACE_KB));
		VID_ASSERT_OK(put_file(TRACEFS "/trace", ""));
		r->traced = true;
		VID_ASSERT_OK(put_file(EVENTS "/vid_dirty_tracking/enable", "1"));
		VID_ASSERT_OK(put_file(EVENTS "/vid_get_bitmap/enable", "1"));
	}
}

/*
 * In the parent, which runs even after a failed ASSERT: no QEMU survives
 * the test, and what it leaves in /tmp and tracefs is put back.
 */
FIXTURE_TEARDOWN_PARENT(mig)
{
	struct run *r = &self->r;

	if (!vid_qemu_kill(&r->src) || !vid_qemu_kill(&r->dst))
		ksft_print_msg("a QEMU is still there %d ms after SIGKILL\n",
			       VID_QEMU_KILL_MS);
	vid_qemu_show_log(&r->src, "src");
	vid_qemu_show_log(&r->dst, "dst");
	unlink(r->mig_sock);
	unlink(r->dump[0]);
	unlink(r->dump[1]);
	if (r->traced) {
		put_file(EVENTS "/vid_dirty_tracking/enable", "0");
		put_file(EVENTS "/vid_get_bitmap/enable", "0");
		put_file(TRACEFS "/buffer_size_kb", r->old_kb);
	}
}

/* Random pages, written in batches that each a dirty sync follows. */
static void random_writes(struct __test_metadata *_metadata,
			  struct run *r,
			  struct mig_status *st)
{
	uint64_t seed = vid_seed(0x5eed0010);
	uint64_t syncs0 = st->syncs;
	struct vid_rng rng;
	unsigned int i;

	ksft_print_msg("random pages: seed 0x%llx (VID_SEED)\n",
		       (unsigned long long)seed);
	vid_rng_init(&rng, seed);
	for (i = 0; i < r->cfg->random_pages; i++) {
		unsigned long long gpa;

		do {
			gpa = vid_rng_below(&rng, r->npages) * VID_PAGE;
		} while ((gpa >= VGA_START && gpa < VGA_END) ||
			 r->pages[gpa / VID_PAGE].cur >= 0);
		dev_write(_metadata, r,
			  vid_rng_chance(&rng, 1, 4) ? "pin" : "rw", gpa,
			  VID_PAGE, 0x10000 + i, P_PRECOPY);
		if ((i + 1) % BATCH)
			continue;
		mig_wait(_metadata, &r->src, "pre-switchover",
			 st->syncs + 1, st);
		ASSERT_STREQ("active", st->status);
	}
	ksft_print_msg("%u random pages written over %llu dirty syncs\n",
		       r->cfg->random_pages,
		       (unsigned long long)(st->syncs - syncs0));
	EXPECT_LE(r->cfg->random_pages / BATCH, st->syncs - syncs0);
}

/*
 * Does the "history" line @hist end with the @n states of @tail? Also
 * false when the line does not parse.
 */
static bool history_ends(const char *hist, const long *tail, int n)
{
	long seen[64];
	int count = 0, i;
	const char *p;
	char *end;

	for (p = hist; count < 64; p = end) {
		seen[count] = strtol(p, &end, 0);
		if (end == p)
			break;
		count++;
	}
	if (*p || count < n)
		return false;
	for (i = 0; i < n; i++)
		if (seen[count - n + i] != tail[i])
			return false;
	return true;
}

/*
 * The device state arrived: after the destination ran, its registers and
 * buffer are the source's (@src_state, read before the migration), it
 * restored bytes and went through RESUMING to RUNNING; the source went
 * through the saving states to STOP.
 */
static void check_device(struct __test_metadata *_metadata,
			 struct run *r, const char *src_before)
{
	char src[STATE_LEN], dst[STATE_LEN], x[256], y[256];
	static const long src_tail[] = {
		VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RUNNING,
		VFIO_DEVICE_STATE_V1_SAVING,
		VFIO_DEVICE_STATE_V1_STOP,
	};
	static const long dst_tail[] = {
		VFIO_DEVICE_STATE_V1_RESUMING,
		VFIO_DEVICE_STATE_V1_RUNNING,
	};

	/* The destination's guest runs: RESUMING ends there. */
	qemu_cont(_metadata, &r->dst);

	VID_ASSERT_OK(dev_state(SRC_DEV, src, sizeof(src)));
	VID_ASSERT_OK(dev_state(DST_DEV, dst, sizeof(dst)));
	VID_ASSERT_OK(state_field(src, "history", x, sizeof(x)));
	VID_ASSERT_OK(state_field(dst, "history", y, sizeof(y)));
	ksft_print_msg("source history: %s; destination history: %s\n", x,
		       y);
	ksft_print_msg("source saved %lld bytes, destination restored %lld\n",
		       state_num(src, "saved"), state_num(dst, "restored"));
	EXPECT_EQ(0, state_num(src, "device_state"));
	EXPECT_TRUE(history_ends(x, src_tail, ARRAY_SIZE(src_tail)))
		TH_LOG("source history does not end SAVING|RUNNING, SAVING, STOP");
	EXPECT_LT(0, state_num(src, "saved"));
	EXPECT_EQ(VFIO_DEVICE_STATE_V1_RUNNING,
		  state_num(dst, "device_state"));
	EXPECT_TRUE(history_ends(y, dst_tail, ARRAY_SIZE(dst_tail)))
		TH_LOG("destination history does not end RESUMING, RUNNING");
	EXPECT_LT(0, state_num(dst, "restored"));

	/* What the source had before the migration, the destination has. */
	VID_ASSERT_OK(state_field(src_before, "regs", x, sizeof(x)));
	VID_ASSERT_OK(state_field(dst, "regs", y, sizeof(y)));
	EXPECT_STREQ(x, y);
	VID_ASSERT_OK(state_field(src_before, "buffer", x, sizeof(x)));
	VID_ASSERT_OK(state_field(dst, "buffer", y, sizeof(y)));
	EXPECT_STREQ(x, y);
}

/*
 * With both QEMUs gone, nothing is left: the module reference, the
 * containers in debugfs, pinned pages and the devices' held pages.
 */
static void check_released(struct __test_metadata *_metadata,
			   struct run *r)
{
	char path[2][128], st[2][STATE_LEN];
	const char *gone[3] = { NULL };
	long ref = -1;
	int i;

	for (i = 0; i < 2 && r->ours && r->cfg->device; i++) {
		snprintf(path[i], sizeof(path[i]), VID_DEBUGFS_ROOT "/%s",
			 i ? r->dst_cid : r->src_cid);
		gone[i] = path[i];
	}
	/* Closing is synchronous, but allow the counters a moment. */
	vid_qemu_settle(r->ref0, r->base.pinned, gone, SETTLE_MS, &ref);
	EXPECT_EQ(r->ref0, ref);
	VID_EXPECT_ACCT(&r->base);
	for (i = 0; gone[i]; i++) {
		EXPECT_NE(0, access(gone[i], F_OK))
			TH_LOG("%s still exists", gone[i]);
	}
	if (!r->cfg->device)
		return;
	VID_ASSERT_OK(dev_state(SRC_DEV, st[0], sizeof(st[0])));
	VID_ASSERT_OK(dev_state(DST_DEV, st[1], sizeof(st[1])));
	EXPECT_EQ(0, state_num(st[0], "held"));
	EXPECT_EQ(0, state_num(st[1], "held"));
}

/*
 * QEMU tracked dirty pages on the source's container through this
 * module: one START, a GET_BITMAP per RAM section at every sync (as many
 * as the container's debugfs counted: @queries), one STOP; nothing on the
 * destination's.
 */
static void check_trace(struct __test_metadata *_metadata,
			struct run *r, unsigned long long queries)
{
	struct trace_counts s, d;

	VID_ASSERT_OK(trace_count(r->src_cid, &s));
	VID_ASSERT_OK(trace_count(r->dst_cid, &d));
	ksft_print_msg("source container %s: START %lu, GET_BITMAP %lu (%lu failed), STOP %lu\n",
		       r->src_cid, s.start, s.get, s.get_err, s.stop);
	ksft_print_msg("destination container %s: START %lu, GET_BITMAP %lu, STOP %lu\n",
		       r->dst_cid, d.start, d.get, d.stop);
	EXPECT_EQ(1, s.start);
	EXPECT_EQ(1, s.stop);
	EXPECT_EQ(0, s.get_err);
	EXPECT_EQ(queries, s.get);
	/* Without pre-copy tracking QEMU never asks (a -S source). */
	EXPECT_TRUE(r->cfg->precopy_tracking ? s.get >= 2 : s.get == 0)
		TH_LOG("%lu GET_BITMAP calls", s.get);
	EXPECT_EQ(0, d.start);
	EXPECT_EQ(0, d.get);
	EXPECT_EQ(0, d.stop);
}

/* Source and destination up; both containers served by the backend. */
static void start_both(struct __test_metadata *_metadata, struct run *r)
{
	qemu_up(_metadata, r, &r->src, SRC_DEV, NULL, r->src_cid);
	snprintf(r->uri, sizeof(r->uri), "unix:%s", r->mig_sock);
	unlink(r->mig_sock);
	qemu_up(_metadata, r, &r->dst, DST_DEV, r->uri, r->dst_cid);
	if (!r->cfg->device)
		return;
	EXPECT_EQ(r->ref0 + 2, vid_module_refcnt(vid_backend_module()))
		TH_LOG("%s does not serve both containers",
		       vid_backend_module());
	if (r->ours)
		ksft_print_msg("containers in debugfs: source %s, destination %s\n",
			       r->src_cid, r->dst_cid);
}

/*
 * Before the migration: the device state to carry (into @before), the
 * first writes, and the held page, pinned and charged to QEMU.
 */
static void device_before(struct __test_metadata *_metadata, struct run *r,
			  char *before, size_t len)
{
	char now[STATE_LEN];
	long pinned;
	int err;

	/* What the device's own work would leave in it. */
	VID_ASSERT_OK(put_file(SYSFS_DEV SRC_DEV "/state", "seed 0x5eed"));
	VID_ASSERT_OK(dev_state(SRC_DEV, before, len));
	EXPECT_EQ(VFIO_DEVICE_STATE_V1_RUNNING,
		  state_num(before, "device_state"));
	phase_writes(_metadata, r, P_BEFORE);
	phase_writes(_metadata, r, P_HOLD);
	pinned = vid_pinned_pages(&err);
	VID_ASSERT_OK(err);
	EXPECT_EQ(r->base.pinned + 1, pinned);
	EXPECT_EQ(VID_PAGE / 1024, vid_proc_status_kb(r->src.pid, "VmLck"));
	VID_ASSERT_OK(dev_state(SRC_DEV, now, sizeof(now)));
	EXPECT_EQ(1, state_num(now, "held"));
}

/*
 * The migration, with the device writing after the first pass and at the
 * pause before switchover; returns when both sides report "completed".
 */
static void run_migration(struct __test_metadata *_metadata, struct run *r)
{
	const struct mig_cfg *cfg = r->cfg;
	struct mig_status st, dst;
	uint64_t syncs_pre = 0;
	char args[256], line[1024];
	long long t0;

	qmp_ok(_metadata, &r->src, "migrate-set-capabilities",
	       "{\"capabilities\": [{\"capability\": \"pause-before-switchover\", \"state\": true}]}");
	snprintf(args, sizeof(args),
		 "{\"max-bandwidth\": %llu, \"downtime-limit\": %d}",
		 BANDWIDTH, SLOW_DOWNTIME);
	qmp_ok(_metadata, &r->src, "migrate-set-parameters", args);

	t0 = vid_now_ms();
	snprintf(args, sizeof(args), "{\"uri\": \"%s\"}", r->uri);
	qmp_ok(_metadata, &r->src, "migrate", args);

	/* Pre-copy, once all RAM was sent and a sync followed. */
	mig_wait(_metadata, &r->src, "pre-switchover", 2, &st);
	ksft_print_msg("first pass done after %lld ms: %s, %llu dirty syncs, %llu bytes\n",
		       vid_now_ms() - t0, st.status,
		       (unsigned long long)st.syncs,
		       (unsigned long long)st.transferred);
	if (cfg->device && cfg->precopy_tracking)
		/* The held page is dirty at every sync: no convergence. */
		ASSERT_STREQ("active", st.status);
	syncs_pre = st.syncs;
	if (cfg->random_pages)
		random_writes(_metadata, r, &st);
	else if (cfg->device)
		phase_writes(_metadata, r, P_PRECOPY);
	if (cfg->device && cfg->precopy_tracking) {
		/* A whole sync after the writes, still in pre-copy. */
		mig_wait(_metadata, &r->src, "pre-switchover", st.syncs + 2,
			 &st);
		ASSERT_STREQ("active", st.status);
	}
	snprintf(args, sizeof(args), "{\"downtime-limit\": %d}",
		 FAST_DOWNTIME);
	qmp_ok(_metadata, &r->src, "migrate-set-parameters", args);

	/* Paused before switchover; a stopped VM, but the device runs. */
	mig_wait(_metadata, &r->src, "pre-switchover", 0, &st);
	ksft_print_msg("pre-switchover after %lld ms: %llu dirty syncs, %llu after the first\n",
		       vid_now_ms() - t0, (unsigned long long)st.syncs,
		       (unsigned long long)(st.syncs - syncs_pre));
	if (cfg->device)
		phase_writes(_metadata, r, P_SWITCH);
	qmp_ok(_metadata, &r->src, "migrate-continue", "{\"state\": \"pre-switchover\"}");
	mig_wait(_metadata, &r->src, "completed", 0, &st);
	ksft_print_msg("migration completed in %lld ms: %llu dirty syncs, %llu bytes of RAM\n",
		       vid_now_ms() - t0, (unsigned long long)st.syncs,
		       (unsigned long long)st.transferred);
	mig_wait(_metadata, &r->dst, "completed", 0, &dst);
	VID_ASSERT_OK(vid_qmp_exec(&r->dst, "query-status", NULL, line,
				   sizeof(line)));
	ksft_print_msg("destination: %s\n", line);
}

/* What the comparison must have found. */
static void check_ram(struct __test_metadata *_metadata,
		      const struct run *r, const struct verdict *v)
{
	int i;

	EXPECT_EQ(0, v->src_bad)
		TH_LOG("source page 0x%llx is not what the device wrote",
		       v->first_src_bad);
	EXPECT_EQ(0, v->junk);
	if (!r->cfg->device || r->cfg->precopy_tracking) {
		EXPECT_EQ(0, v->diff);
		for (i = 0; i < NR_PHASES; i++) {
			EXPECT_EQ(v->written[i], v->present[i])
				TH_LOG("%s: %lu of %lu pages missing",
				       phase_name[i],
				       v->written[i] - v->present[i],
				       v->written[i]);
		}
		return;
	}
	/* Without syncs, what was written after the first pass is lost. */
	EXPECT_EQ(v->written[P_BEFORE], v->present[P_BEFORE]);
	EXPECT_EQ(v->written[P_HOLD], v->present[P_HOLD]);
	EXPECT_EQ(0, v->present[P_PRECOPY]);
	EXPECT_EQ(v->written[P_PRECOPY], v->stale[P_PRECOPY]);
	EXPECT_EQ(0, v->present[P_SWITCH]);
	EXPECT_EQ(v->written[P_SWITCH], v->stale[P_SWITCH]);
	EXPECT_EQ(v->written[P_PRECOPY] + v->written[P_SWITCH], v->diff);
	EXPECT_NE(0, v->diff);
}

/* The stopped source refuses DMA, and counts the refusal. */
static void check_refused(struct __test_metadata *_metadata)
{
	char a[STATE_LEN], b[STATE_LEN];

	VID_ASSERT_OK(dev_state(SRC_DEV, a, sizeof(a)));
	EXPECT_EQ(-EBUSY, dev_dma(SRC_DEV, "rw 0x800000 0x1000 0x99"));
	VID_ASSERT_OK(dev_state(SRC_DEV, b, sizeof(b)));
	EXPECT_EQ(state_num(a, "refused") + 1, state_num(b, "refused"));
}

TEST_F_TIMEOUT(mig, migrate, 600)
{
	struct run *r = &self->r;
	char before[STATE_LEN];
	unsigned long long queries = 0;
	struct verdict v;

	start_both(_metadata, r);
	if (r->cfg->device)
		device_before(_metadata, r, before, sizeof(before));
	run_migration(_metadata, r);
	compare_ram(_metadata, r, &v);
	check_ram(_metadata, r, &v);
	if (r->cfg->device) {
		check_refused(_metadata);
		check_device(_metadata, r, before);
	}
	/*
	 * QEMU 7.2 stops dirty tracking only once the VM runs (a source
	 * that never ran keeps it on until it quits): let the source run
	 * again, as after a migration given up late.
	 */
	qemu_cont(_metadata, &r->src);
	if (r->ours && r->cfg->device)
		VID_ASSERT_OK(vid_container_state(r->src_cid,
						  "stat_bitmap_queries",
						  &queries));
	qemu_quit(_metadata, &r->dst, "destination");
	qemu_quit(_metadata, &r->src, "source");
	check_released(_metadata, r);
	if (r->traced)
		check_trace(_metadata, r, queries);
	free(r->w);
	free(r->pages);
}

TEST_HARNESS_MAIN
