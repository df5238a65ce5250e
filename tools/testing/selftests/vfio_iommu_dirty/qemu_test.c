// SPDX-License-Identifier: GPL-2.0
/*
 * QEMU as a real client. The host's own, unmodified QEMU (shared into the
 * test guest over 9p at $VID_HOSTROOT, run in a chroot there) starts
 * paused with the edu device assigned through vfio-pci. That makes QEMU
 * open a type1 container and map all of its RAM through it. The tests
 * check, over QMP and from the outside, that:
 *
 *  - QEMU came up (QMP greeting, qmp_capabilities, query-status);
 *  - the backend under test serves its container (module refcount; for
 *    this module also a new debugfs container directory);
 *  - what is mapped covers QEMU's RAM: QEMU's VmLck and the system's
 *    pinned pages grew by at least the RAM size, and this module's
 *    debugfs view agrees (mapped total, every byte in the IOMMU);
 *  - memory hot-added over QMP (memory-backend-ram + pc-dimm) is mapped
 *    as one new mapping at the DIMM's guest-physical address;
 *  - after "quit" every page is unpinned, the container is gone and the
 *    module refcount is back.
 *
 * With VID_BACKEND=intree the same runs go against vfio_iommu_type1 and
 * only the debugfs checks are left out: that validates the test itself.
 * Without the host root (guest-run.sh without --hostroot) the tests skip.
 *
 * QEMU never outlives a test: it is in the test's process group (which
 * the harness kills on timeout) and gets SIGKILL when the test process
 * dies (PR_SET_PDEATHSIG). The teardown runs in the harness's parent
 * process, so it runs even after a failed ASSERT, and waits until QEMU
 * has fully exited; the setup does the same for any QEMU an earlier,
 * timed-out test left dying. QEMU's mounts live in a private mount
 * namespace that goes away with it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"
#include "vid_qemu.h"

#define DEBUGFS		VID_DEBUGFS_ROOT

#define RAM_MB		128
#define DIMM_MB		64
#define RAM_SIZE	((unsigned long long)RAM_MB << 20)
#define RAM_SLACK_KB	1024
#define DIMM_SIZE	((unsigned long long)DIMM_MB << 20)

#define SETTLE_MS	5000	/* counters back after QEMU is gone */

#define MAX_MAPPINGS	128

struct mapping {
	unsigned long long iova;
	unsigned long long size;
	unsigned long long mapped;
};

struct mappings {
	int n;
	struct mapping m[MAX_MAPPINGS];
};

/* What the tests read from the outside while QEMU runs. */
struct snap {
	long qemu_vmlck_kb;
	long pinned;
	/* This module only: */
	unsigned long long nmaps;
	unsigned long long bytes;
	unsigned long long iommu_bytes;
	unsigned long long locked_pages;
	struct mappings maps;
};

/*
 * Start QEMU paused with the edu device; with @dimm_slots it gets room
 * for memory hotplug. 0 or -errno; QEMU's own complaints are in its log.
 */
static int qemu_start(struct vid_qemu *q, bool dimm_slots)
{
	char mem[64], dev[128];
	const char *args[5];

	args[0] = "-m";
	args[1] = mem;
	args[2] = "-device";
	args[3] = dev;
	args[4] = NULL;

	snprintf(mem, sizeof(mem), "%dM%s", RAM_MB,
		 dimm_slots ? ",slots=2,maxmem=512M" : "");
	snprintf(dev, sizeof(dev), "vfio-pci,host=%s,id=edu", vid_edu_bdf());
	return vid_qemu_start(q, "edu", args);
}

/* Every line of <container>/mappings; 0 or -errno. */
static int mappings_get(const char *id, struct mappings *m)
{
	char path[128], line[256];
	unsigned long long iova, size, mapped;
	int ret = 0;
	FILE *f;

	m->n = 0;
	snprintf(path, sizeof(path), DEBUGFS "/%s/mappings", id);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		if (sscanf(line, "%llx %llx %llx", &iova, &size, &mapped) != 3) {
			ret = -EINVAL;
			break;
		}
		if (m->n == MAX_MAPPINGS) {
			ret = -ENOSPC;
			break;
		}
		m->m[m->n].iova = iova;
		m->m[m->n].size = size;
		m->m[m->n].mapped = mapped;
		m->n++;
	}
	fclose(f);
	return ret;
}

static const struct mapping *find_mapping(const struct mappings *m,
					  unsigned long long iova)
{
	int i;

	for (i = 0; i < m->n; i++)
		if (m->m[i].iova == iova)
			return &m->m[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* the fixture                                                          */
/* ------------------------------------------------------------------ */

/* One QEMU run, and what was true before it. */
struct run {
	struct vid_qemu q;
	struct vid_acct base;	/* the system's pinned pages, our VmLck */
	long ref0;		/* refcount of the backend module */
	bool ours;		/* this module: debugfs checks apply */
	struct vid_names before; /* debugfs containers before QEMU */
	char cid[VID_NAME_LEN];	/* QEMU's container in debugfs */
};

FIXTURE(qemu) {
	struct run r;
};

FIXTURE_SETUP(qemu)
{
	struct run *r = &self->r;

	vid_qemu_init(&r->q);
	r->cid[0] = '\0';
	if (!vid_qemu_prepare(_metadata))
		return;
	r->ours = !vid_backend_intree();
	r->ref0 = vid_module_refcnt(vid_backend_module());
	ASSERT_LE(0, r->ref0);
	VID_ASSERT_OK(vid_acct_read(&r->base));
	VID_ASSERT_OK(vid_containers_list(&r->before));
}

/*
 * In the parent: the harness skips a child-side teardown after a failed
 * ASSERT when built with optimization (its fork result does not survive
 * the longjmp). The fixture data is shared, so QEMU's pid is known here.
 */
FIXTURE_TEARDOWN_PARENT(qemu)
{
	struct run *r = &self->r;

	if (!vid_qemu_kill(&r->q))
		ksft_print_msg("QEMU still there %d ms after SIGKILL\n",
			       VID_QEMU_KILL_MS);
	vid_qemu_show_log(&r->q, NULL);
}

/* Everything observable from outside while QEMU runs. */
static void snap_read(struct __test_metadata *_metadata, struct run *r,
		      struct snap *s)
{
	int err;

	memset(s, 0, sizeof(*s));
	s->qemu_vmlck_kb = vid_proc_status_kb(r->q.pid, "VmLck");
	ASSERT_LE(0, s->qemu_vmlck_kb);
	s->pinned = vid_pinned_pages(&err);
	VID_ASSERT_OK(err);
	if (!r->ours)
		return;
	VID_ASSERT_OK(vid_container_state(r->cid, "mappings", &s->nmaps));
	VID_ASSERT_OK(vid_container_state(r->cid, "mapping_bytes", &s->bytes));
	VID_ASSERT_OK(vid_container_state(r->cid, "iommu_mapped_bytes",
					  &s->iommu_bytes));
	VID_ASSERT_OK(vid_container_state(r->cid, "locked_vm_pages",
					  &s->locked_pages));
	VID_ASSERT_OK(mappings_get(r->cid, &s->maps));
}

/*
 * This module's view is consistent: the mappings file adds up to the
 * state totals and every mapping is wholly in the IOMMU.
 */
static void snap_check_view(struct __test_metadata *_metadata,
			    const struct snap *s)
{
	unsigned long long sum = 0, mapped = 0;
	int i;

	ASSERT_EQ(s->nmaps, (unsigned long long)s->maps.n);
	for (i = 0; i < s->maps.n; i++) {
		const struct mapping *m = &s->maps.m[i];

		EXPECT_EQ(m->size, m->mapped)
			TH_LOG("mapping 0x%llx+0x%llx has only 0x%llx in the IOMMU",
			       m->iova, m->size, m->mapped);
		sum += m->size;
		mapped += m->mapped;
	}
	EXPECT_EQ(s->bytes, sum);
	EXPECT_EQ(s->iommu_bytes, mapped);
	EXPECT_EQ(s->bytes, s->iommu_bytes);
	/* QEMU runs as root: charged to locked_vm, just not limited. */
	EXPECT_EQ(s->locked_pages * (VID_PAGE / 1024),
		  (unsigned long long)s->qemu_vmlck_kb)
		TH_LOG("module charged %llu pages, QEMU's VmLck is %ld kB",
		       s->locked_pages, s->qemu_vmlck_kb);
}

static void snap_log(const char *when, const struct snap *s, bool ours)
{
	int i;

	ksft_print_msg("%s: QEMU VmLck %ld kB, pinned pages (system) %ld\n",
		       when, s->qemu_vmlck_kb, s->pinned);
	if (!ours)
		return;
	ksft_print_msg("%s: %llu mappings, %llu bytes, %llu in the IOMMU, locked_vm %llu pages\n",
		       when, s->nmaps, s->bytes, s->iommu_bytes,
		       s->locked_pages);
	for (i = 0; i < s->maps.n; i++)
		ksft_print_msg("  iova 0x%09llx size 0x%08llx\n",
			       s->maps.m[i].iova, s->maps.m[i].size);
}

/*
 * Start QEMU, talk QMP until it reports itself paused, and check that the
 * backend under test serves its container.
 */
static void qemu_up(struct __test_metadata *_metadata, struct run *r,
		    bool dimm_slots)
{
	struct vid_qemu *q = &r->q;
	long long t0 = vid_now_ms();
	const char *why;
	char line[1024];
	int ret;

	VID_ASSERT_OK(qemu_start(q, dimm_slots));
	/* -S: created, all devices realized, not yet running. */
	ret = vid_qemu_up(q, "prelaunch", line, sizeof(line), &why);
	ASSERT_EQ(0, ret) TH_LOG("%s (QMP at %s): %s: %s", why, q->sock,
				 strerror(-ret), line);
	ksft_print_msg("QEMU (pid %d) up in %lld ms: %s\n", q->pid,
		       vid_now_ms() - t0, line);

	EXPECT_EQ(r->ref0 + 1, vid_module_refcnt(vid_backend_module()))
		TH_LOG("%s does not serve QEMU's container",
		       vid_backend_module());
	if (!r->ours)
		return;
	ret = vid_containers_new(&r->before, r->cid, sizeof(r->cid));
	ASSERT_EQ(0, ret) TH_LOG("QEMU's container in " DEBUGFS ": %s",
				 ret == -EEXIST ? "more than one new" :
				 strerror(-ret));
}

/* QEMU's RAM is pinned, charged and (for this module) fully mapped. */
static void check_ram(struct __test_metadata *_metadata,
		      struct run *r, struct snap *s)
{
	snap_read(_metadata, r, s);
	snap_log("running", s, r->ours);
	/*
	 * Pages QEMU maps but never touched may be the shared zero page,
	 * which is neither charged nor counted as pinned (Linux 6.1 has
	 * 64 of them here, with either backend): allow 1 MiB of those.
	 */
	EXPECT_LE((long)(RAM_SIZE / 1024) - RAM_SLACK_KB, s->qemu_vmlck_kb);
	EXPECT_LE((long)(RAM_SIZE / VID_PAGE) - RAM_SLACK_KB / 4,
		  s->pinned - r->base.pinned);
	if (!r->ours)
		return;
	snap_check_view(_metadata, s);
	EXPECT_LE(RAM_SIZE, s->bytes);
	EXPECT_EQ(s->bytes, s->iommu_bytes);
}

/*
 * Quit QEMU over QMP, check it exits cleanly, and that everything it had
 * is released: pins, the container (debugfs), the module reference.
 */
static void qemu_quit(struct __test_metadata *_metadata, struct run *r)
{
	struct vid_qemu *q = &r->q;
	long long t0 = vid_now_ms();
	char line[1024], path[128];
	const char *gone[2], *why;
	long ref = -1;
	int ret;

	ret = vid_qemu_quit(q, line, sizeof(line), &why);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s: %s", why, strerror(-ret), line);
	ksft_print_msg("QEMU exited in %lld ms\n", vid_now_ms() - t0);
	EXPECT_TRUE(WIFEXITED(q->status) && WEXITSTATUS(q->status) == 0)
		TH_LOG("QEMU wait status 0x%x", q->status);

	/* Closing is synchronous, but allow the counters a moment. */
	snprintf(path, sizeof(path), DEBUGFS "/%s", r->cid);
	gone[0] = r->ours ? path : NULL;
	gone[1] = NULL;
	vid_qemu_settle(r->ref0, r->base.pinned, gone, SETTLE_MS, &ref);
	EXPECT_EQ(r->ref0, ref);
	VID_EXPECT_ACCT(&r->base);
	EXPECT_TRUE(!r->ours || access(path, F_OK))
		TH_LOG("%s still exists", path);
}

/*
 * QEMU with 128 MiB of RAM: the container is ours, the RAM is mapped,
 * and quitting releases it all.
 */
TEST_F_TIMEOUT(qemu, ram_mapped, 240)
{
	struct run *r = &self->r;
	struct snap s;

	qemu_up(_metadata, r, false);
	check_ram(_metadata, r, &s);
	qemu_quit(_metadata, r);
}

/*
 * A 64 MiB DIMM hot-added over QMP is mapped as one new mapping at the
 * DIMM's address, pinned and charged; quitting releases it with the rest.
 */
TEST_F_TIMEOUT(qemu, hotplug_dimm, 240)
{
	struct run *r = &self->r;
	unsigned long long addr = 0;
	const struct mapping *m;
	struct snap s0, s1;
	char line[1024];
	const char *p;
	int i, ret;

	qemu_up(_metadata, r, true);
	check_ram(_metadata, r, &s0);

	ret = vid_qmp_exec(&r->q, "object-add",
			   "{\"qom-type\": \"memory-backend-ram\", \"id\": \"mem1\", \"size\": 67108864}",
			   line, sizeof(line));
	ASSERT_EQ(0, ret) TH_LOG("object-add: %s: %s", strerror(-ret), line);
	ret = vid_qmp_exec(&r->q, "device_add",
			   "{\"driver\": \"pc-dimm\", \"id\": \"dimm1\", \"memdev\": \"mem1\"}",
			   line, sizeof(line));
	ASSERT_EQ(0, ret) TH_LOG("device_add: %s: %s", strerror(-ret), line);
	ret = vid_qmp_exec(&r->q, "query-memory-devices", NULL, line,
			   sizeof(line));
	ASSERT_EQ(0, ret) TH_LOG("query-memory-devices: %s: %s",
				 strerror(-ret), line);
	ksft_print_msg("%s\n", line);
	p = strstr(line, "\"addr\":");
	ASSERT_NE(NULL, p) TH_LOG("no DIMM address in: %s", line);
	addr = strtoull(p + strlen("\"addr\":"), NULL, 10);
	ASSERT_NE(0, addr);

	snap_read(_metadata, r, &s1);
	snap_log("after hotplug", &s1, r->ours);
	EXPECT_EQ(s0.qemu_vmlck_kb + (long)(DIMM_SIZE / 1024),
		  s1.qemu_vmlck_kb);
	EXPECT_LE((long)(DIMM_SIZE / VID_PAGE), s1.pinned - s0.pinned);
	if (r->ours) {
		snap_check_view(_metadata, &s1);
		EXPECT_EQ(s0.nmaps + 1, s1.nmaps);
		EXPECT_EQ(s0.bytes + DIMM_SIZE, s1.bytes);
		EXPECT_EQ(s1.bytes, s1.iommu_bytes);
		/* The mappings from before are all still there, unchanged. */
		for (i = 0; i < s0.maps.n; i++) {
			m = find_mapping(&s1.maps, s0.maps.m[i].iova);
			EXPECT_TRUE(m && m->size == s0.maps.m[i].size)
				TH_LOG("mapping at 0x%llx changed",
				       s0.maps.m[i].iova);
		}
		ASSERT_EQ(NULL, find_mapping(&s0.maps, addr));
		m = find_mapping(&s1.maps, addr);
		ASSERT_NE(NULL, m) TH_LOG("no mapping at the DIMM's 0x%llx",
					  addr);
		EXPECT_EQ(DIMM_SIZE, m->size);
		EXPECT_EQ(DIMM_SIZE, m->mapped);
	}
	qemu_quit(_metadata, r);
}

TEST_HARNESS_MAIN
