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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "vid_test.h"

#define QEMU_BIN	"/usr/bin/qemu-system-x86_64"
#define QEMU_COMM	"qemu-system-x86"	/* its name, cut to 15 chars */
#define HOSTROOT	"/host"
#define DEBUGFS		"/sys/kernel/debug/vfio_iommu_dirty"

#define RAM_MB		128
#define DIMM_MB		64
#define RAM_SIZE	((unsigned long long)RAM_MB << 20)
#define RAM_SLACK_KB	1024
#define DIMM_SIZE	((unsigned long long)DIMM_MB << 20)

/* Bounds on every wait, in milliseconds. */
#define START_MS	90000	/* QEMU answering QMP */
#define QMP_MS		30000	/* one QMP command */
#define EXIT_MS		30000	/* QEMU gone after "quit" */
#define KILL_MS		10000	/* QEMU gone after SIGKILL */
#define SETTLE_MS	5000	/* counters back after QEMU is gone */

#define MAX_CONTAINERS	32
#define MAX_MAPPINGS	128
#define NAME_LEN	32

struct qemu {
	pid_t pid;		/* -1 when not running (or reaped) */
	int status;		/* wait status once reaped */
	pid_t owner;		/* the process that holds qmp */
	int qmp;		/* QMP socket */
	unsigned int id;	/* last QMP command id */
	size_t len;		/* bytes pending in buf */
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char log[64];		/* QEMU's stdout and stderr */
	char buf[16384];
};

struct names {
	int n;
	char name[MAX_CONTAINERS][NAME_LEN];
};

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

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000L,
	};

	nanosleep(&ts, NULL);
}

static const char *host_root(void)
{
	const char *r = getenv("VID_HOSTROOT");

	return r && *r ? r : HOSTROOT;
}

/* ------------------------------------------------------------------ */
/* starting and stopping QEMU                                          */
/* ------------------------------------------------------------------ */

static void qemu_init(struct qemu *q)
{
	memset(q, 0, sizeof(*q));
	q->pid = -1;
	q->qmp = -1;
}

/* In the child: report what failed into QEMU's log, and give up. */
static void child_fail(const char *what)
{
	dprintf(STDERR_FILENO, "vid: %s: %s\n", what, strerror(errno));
	_exit(127);
}

/*
 * In the child: a private mount namespace with /dev, /sys, /tmp and a
 * fresh /proc inside the (read-only) host root, then chroot and exec.
 * /tmp is the guest's own tmpfs, so the QMP socket QEMU creates there is
 * visible to the test at the same path.
 */
static void qemu_child(const char *root, const char **argv, int log,
		       pid_t parent)
{
	static const char *const binds[] = { "/dev", "/sys", "/tmp" };
	char *const envp[] = {
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/tmp",
		"LC_ALL=C",
		NULL,
	};
	char path[PATH_MAX];
	size_t i;
	int null;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL))
		child_fail("prctl(PR_SET_PDEATHSIG)");
	/* The test may have died before the prctl took effect. */
	if (getppid() != parent)
		_exit(127);

	null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
	    dup2(log, STDOUT_FILENO) < 0 || dup2(log, STDERR_FILENO) < 0)
		_exit(127);

	if (unshare(CLONE_NEWNS))
		child_fail("unshare(CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		child_fail("making / private");
	for (i = 0; i < ARRAY_SIZE(binds); i++) {
		snprintf(path, sizeof(path), "%s%s", root, binds[i]);
		if (mount(binds[i], path, NULL, MS_BIND | MS_REC, NULL))
			child_fail(path);
	}
	snprintf(path, sizeof(path), "%s/proc", root);
	if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL))
		child_fail(path);
	if (chroot(root) || chdir("/"))
		child_fail("chroot");
	execve(QEMU_BIN, (char *const *)argv, envp);
	child_fail("execve " QEMU_BIN);
}

/* Reap QEMU if it has exited; true when it is gone. */
static bool qemu_reaped(struct qemu *q)
{
	pid_t r;

	if (q->pid <= 0)
		return true;
	r = waitpid(q->pid, &q->status, WNOHANG);
	if (r == q->pid || (r < 0 && errno == ECHILD)) {
		q->pid = -1;
		return true;
	}
	return false;
}

/* Wait up to @ms for QEMU to exit; 0 or -ETIMEDOUT. */
static int qemu_wait(struct qemu *q, long ms)
{
	long long deadline = now_ms() + ms;

	while (!qemu_reaped(q)) {
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(20);
	}
	return 0;
}

/*
 * SIGKILL process @pid if it is (still) a QEMU, and wait up to @ms until
 * all its threads have exited: by then its files, the container among
 * them, are closed. Works whether or not the caller is QEMU's parent (a
 * zombie counts as exited). 1 if it was a QEMU, 0 if not (or gone), or
 * -ETIMEDOUT.
 */
static int qemu_stop_pid(pid_t pid, long ms)
{
	struct pollfd pfd = { .events = POLLIN };
	char path[64], comm[32] = "";
	int ret = 0, fd;
	ssize_t n;

	/* The pidfd pins the process: no pid reuse from here on. */
	pfd.fd = syscall(SYS_pidfd_open, pid, 0);
	if (pfd.fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, comm, sizeof(comm) - 1);
		comm[n > 0 ? n : 0] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		close(fd);
	}
	if (!strcmp(comm, QEMU_COMM)) {
		syscall(SYS_pidfd_send_signal, pfd.fd, SIGKILL, NULL, 0);
		ret = poll(&pfd, 1, (int)ms) == 1 ? 1 : -ETIMEDOUT;
	}
	close(pfd.fd);
	return ret;
}

/*
 * Stop every QEMU still around (left by an earlier test that the harness
 * killed on timeout). The number found, or -ETIMEDOUT.
 */
static int qemu_stop_strays(void)
{
	struct dirent *de;
	int found = 0, ret;
	char *end;
	DIR *dir;
	long pid;

	dir = opendir("/proc");
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 1 || pid == getpid())
			continue;
		/* Not QEMU: qemu_stop_pid() leaves it alone. */
		ret = qemu_stop_pid(pid, KILL_MS);
		if (ret < 0) {
			found = ret;
			break;
		}
		found += ret;
	}
	closedir(dir);
	return found;
}

/*
 * Make sure QEMU is gone and everything it used is closed. Idempotent;
 * also called from the harness's parent process, which is not QEMU's
 * parent.
 */
static void qemu_kill(struct qemu *q)
{
	if (q->pid > 0) {
		if (qemu_stop_pid(q->pid, KILL_MS) < 0)
			ksft_print_msg("QEMU (pid %d) still there %d ms after SIGKILL\n",
				       q->pid, KILL_MS);
		/* Reap it if it is our child. */
		waitpid(q->pid, &q->status, WNOHANG);
		q->pid = -1;
	}
	/* The parent process has no such fd: leave its fd table alone. */
	if (q->qmp >= 0 && q->owner == getpid())
		close(q->qmp);
	q->qmp = -1;
	if (q->sock[0])
		unlink(q->sock);
	q->sock[0] = '\0';
}

/*
 * Print what QEMU wrote to stdout and stderr, one "# qemu:" line each,
 * and remove the file.
 */
static void qemu_show_log(struct qemu *q)
{
	char buf[4096], *line, *save = NULL;
	ssize_t n;
	int fd;

	if (!q->log[0])
		return;
	fd = open(q->log, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	unlink(q->log);
	q->log[0] = '\0';
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		ksft_print_msg("qemu: %s\n", line);
}

/*
 * Start QEMU paused with the edu device; with @dimm_slots it gets room
 * for memory hotplug. 0 or -errno; QEMU's own complaints are in its log.
 */
static int qemu_start(struct qemu *q, bool dimm_slots)
{
	char mem[64], dev[128], qmp[sizeof(q->sock) + 32];
	const char *argv[24];
	pid_t parent = getpid(), pid;
	int n = 0, log;

	snprintf(mem, sizeof(mem), "%dM%s", RAM_MB,
		 dimm_slots ? ",slots=2,maxmem=512M" : "");
	snprintf(dev, sizeof(dev), "vfio-pci,host=%s,id=edu", vid_edu_bdf());
	snprintf(q->sock, sizeof(q->sock), "/tmp/vid-qmp-%d.sock", parent);
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", q->sock);
	unlink(q->sock);

	argv[n++] = "qemu-system-x86_64";
	argv[n++] = "-nodefaults";
	argv[n++] = "-no-user-config";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-machine";
	argv[n++] = "q35";
	argv[n++] = "-accel";
	argv[n++] = "tcg,tb-size=64";
	argv[n++] = "-smp";
	argv[n++] = "1";
	argv[n++] = "-m";
	argv[n++] = mem;
	argv[n++] = "-S";
	argv[n++] = "-device";
	argv[n++] = dev;
	argv[n++] = "-qmp";
	argv[n++] = qmp;
	argv[n] = NULL;

	snprintf(q->log, sizeof(q->log), "/tmp/vid-qemu-%d.log", parent);
	log = open(q->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (log < 0)
		return -errno;

	/*
	 * The fixture data is shared with the harness's processes: the child
	 * must not write to it, so the pid is stored by the parent only.
	 */
	pid = fork();
	if (pid == 0)
		qemu_child(host_root(), argv, log, parent);
	n = pid < 0 ? -errno : 0;
	close(log);
	if (n)
		return n;
	q->pid = pid;
	return 0;
}

/* ------------------------------------------------------------------ */
/* QMP: JSON lines over a unix socket                                  */
/* ------------------------------------------------------------------ */

/* Connect to QEMU's QMP socket once it exists; 0 or -errno. */
static int qmp_connect(struct qemu *q, long ms)
{
	long long deadline = now_ms() + ms;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	memcpy(sa.sun_path, q->sock, sizeof(sa.sun_path));
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			q->owner = getpid();
			q->qmp = fd;
			q->len = 0;
			return 0;
		}
		close(fd);
		if (errno != ENOENT && errno != ECONNREFUSED)
			return -errno;
		if (qemu_reaped(q))
			return -ECHILD;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(50);
	}
}

/*
 * Read one line (without its newline) into @line, waiting until
 * @deadline. 0, -ETIMEDOUT, -EPIPE (QEMU closed the socket) or -errno.
 * An overlong line is cut to fit.
 */
static int qmp_read_line(struct qemu *q, char *line, size_t size,
			 long long deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = q->qmp, .events = POLLIN };
		char *nl = memchr(q->buf, '\n', q->len);
		long long left;
		ssize_t n;

		if (nl || q->len == sizeof(q->buf)) {
			size_t llen = nl ? (size_t)(nl - q->buf) : q->len;
			size_t take = llen < size - 1 ? llen : size - 1;
			size_t used = nl ? llen + 1 : llen;

			memcpy(line, q->buf, take);
			line[take] = '\0';
			memmove(q->buf, q->buf + used, q->len - used);
			q->len -= used;
			return 0;
		}
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		n = read(q->qmp, q->buf + q->len, sizeof(q->buf) - q->len);
		if (n == 0)
			return -EPIPE;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		q->len += n;
	}
}

/*
 * Run QMP command @cmd with @args (a JSON object, or NULL) and put the
 * reply line in @reply. Events that arrive first are skipped. 0 on a
 * "return", -EREMOTEIO on an "error" reply, else -errno.
 */
static int qmp_exec(struct qemu *q, const char *cmd, const char *args,
		    char *reply, size_t size)
{
	long long deadline = now_ms() + QMP_MS;
	char msg[1024], tag[32];
	int len, ret;
	ssize_t n;

	reply[0] = '\0';
	if (q->qmp < 0)
		return -ENOTCONN;
	q->id++;
	/* The closing quote keeps "vid-1" from matching "vid-12". */
	snprintf(tag, sizeof(tag), "\"vid-%u\"", q->id);
	len = snprintf(msg, sizeof(msg),
		       "{\"execute\": \"%s\"%s%s, \"id\": %s}\n", cmd,
		       args ? ", \"arguments\": " : "", args ? args : "", tag);
	if (len < 0 || (size_t)len >= sizeof(msg))
		return -E2BIG;
	n = send(q->qmp, msg, len, MSG_NOSIGNAL);
	if (n != len)
		return n < 0 ? -errno : -EIO;
	for (;;) {
		ret = qmp_read_line(q, reply, size, deadline);
		if (ret)
			return ret;
		if (strstr(reply, tag))
			return strstr(reply, "\"return\"") ? 0 : -EREMOTEIO;
	}
}

/* ------------------------------------------------------------------ */
/* this module's debugfs view                                          */
/* ------------------------------------------------------------------ */

/* Names of the container directories; none if the root is missing. */
static int list_containers(struct names *c)
{
	struct dirent *de;
	size_t len;
	DIR *dir;

	c->n = 0;
	dir = opendir(DEBUGFS);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		len = strlen(de->d_name);
		if (c->n == MAX_CONTAINERS || len >= NAME_LEN) {
			closedir(dir);
			return -ENOSPC;
		}
		memcpy(c->name[c->n++], de->d_name, len + 1);
	}
	closedir(dir);
	return 0;
}

static bool has_name(const struct names *c, const char *name)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (!strcmp(c->name[i], name))
			return true;
	return false;
}

/* @key from <container>/state; 0 or -errno. */
static int state_get(const char *id, const char *key, unsigned long long *val)
{
	char path[128];
	long long v;
	int ret;

	snprintf(path, sizeof(path), DEBUGFS "/%s/state", id);
	ret = vid_file_key(path, key, &v);
	if (!ret)
		*val = v;
	return ret;
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
	struct qemu q;
	struct vid_acct base;	/* the system's pinned pages, our VmLck */
	long ref0;		/* refcount of the backend module */
	bool ours;		/* this module: debugfs checks apply */
	struct names before;	/* debugfs containers before QEMU */
	char cid[NAME_LEN];	/* QEMU's container in debugfs */
};

FIXTURE(qemu) {
	struct run r;
};

FIXTURE_SETUP(qemu)
{
	struct run *r = &self->r;
	char qemu[256];
	int n;

	qemu_init(&r->q);
	r->cid[0] = '\0';
	if (!vid_prepare(_metadata))
		return;
	snprintf(qemu, sizeof(qemu), "%s%s", host_root(), QEMU_BIN);
	if (access(qemu, X_OK))
		SKIP(return,
		     "no host QEMU at %s: host root not shared (run the guest with guest-run.sh --hostroot)",
		     qemu);
	n = qemu_stop_strays();
	ASSERT_LE(0, n) TH_LOG("a QEMU left by an earlier test does not die");
	if (n)
		ksft_print_msg("waited for %d QEMU left by an earlier test\n", n);
	r->ours = !vid_backend_intree();
	r->ref0 = vid_module_refcnt(vid_backend_module());
	ASSERT_LE(0, r->ref0);
	VID_ASSERT_OK(vid_acct_read(&r->base));
	VID_ASSERT_OK(list_containers(&r->before));
}

/*
 * In the parent: the harness skips a child-side teardown after a failed
 * ASSERT when built with optimization (its fork result does not survive
 * the longjmp). The fixture data is shared, so QEMU's pid is known here.
 */
FIXTURE_TEARDOWN_PARENT(qemu)
{
	struct run *r = &self->r;

	qemu_kill(&r->q);
	qemu_show_log(&r->q);
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
	VID_ASSERT_OK(state_get(r->cid, "mappings", &s->nmaps));
	VID_ASSERT_OK(state_get(r->cid, "mapping_bytes", &s->bytes));
	VID_ASSERT_OK(state_get(r->cid, "iommu_mapped_bytes",
				&s->iommu_bytes));
	VID_ASSERT_OK(state_get(r->cid, "locked_vm_pages",
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
	struct qemu *q = &r->q;
	struct names now;
	char line[1024];
	long long t0 = now_ms();
	int i, ret;

	VID_ASSERT_OK(qemu_start(q, dimm_slots));
	ret = qmp_connect(q, START_MS);
	ASSERT_EQ(0, ret) TH_LOG("connecting to QMP at %s: %s", q->sock,
				 strerror(-ret));
	ret = qmp_read_line(q, line, sizeof(line), t0 + START_MS);
	ASSERT_EQ(0, ret) TH_LOG("QMP greeting: %s", strerror(-ret));
	ASSERT_NE(NULL, strstr(line, "\"QMP\"")) TH_LOG("greeting: %s", line);
	ret = qmp_exec(q, "qmp_capabilities", NULL, line, sizeof(line));
	ASSERT_EQ(0, ret) TH_LOG("qmp_capabilities: %s: %s", strerror(-ret),
				 line);
	ret = qmp_exec(q, "query-status", NULL, line, sizeof(line));
	ASSERT_EQ(0, ret) TH_LOG("query-status: %s: %s", strerror(-ret), line);
	/* -S: created, all devices realized, not yet running. */
	ASSERT_NE(NULL, strstr(line, "prelaunch")) TH_LOG("%s", line);
	ksft_print_msg("QEMU (pid %d) up in %lld ms: %s\n", q->pid,
		       now_ms() - t0, line);

	EXPECT_EQ(r->ref0 + 1, vid_module_refcnt(vid_backend_module()))
		TH_LOG("%s does not serve QEMU's container",
		       vid_backend_module());
	if (!r->ours)
		return;
	VID_ASSERT_OK(list_containers(&now));
	for (i = 0; i < now.n; i++) {
		if (has_name(&r->before, now.name[i]))
			continue;
		ASSERT_EQ(0, r->cid[0])
			TH_LOG("more than one new container: %s and %s",
			       r->cid, now.name[i]);
		snprintf(r->cid, sizeof(r->cid), "%s", now.name[i]);
	}
	ASSERT_NE(0, r->cid[0]) TH_LOG("no new container in " DEBUGFS);
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
	struct qemu *q = &r->q;
	long long t0 = now_ms(), deadline;
	char line[1024], path[128];
	bool gone = false;
	long ref = -1, pinned = -1;
	int ret, err = 0;

	ret = qmp_exec(q, "quit", NULL, line, sizeof(line));
	/* QEMU may close the socket before its reply is read. */
	ASSERT_TRUE(ret == 0 || ret == -EPIPE)
		TH_LOG("quit: %s: %s", strerror(-ret), line);
	ret = qemu_wait(q, EXIT_MS);
	ASSERT_EQ(0, ret) TH_LOG("QEMU still running %d ms after quit",
				 EXIT_MS);
	ksft_print_msg("QEMU exited in %lld ms\n", now_ms() - t0);
	EXPECT_TRUE(WIFEXITED(q->status) && WEXITSTATUS(q->status) == 0)
		TH_LOG("QEMU wait status 0x%x", q->status);

	/* Closing is synchronous, but allow the counters a moment. */
	snprintf(path, sizeof(path), DEBUGFS "/%s", r->cid);
	deadline = now_ms() + SETTLE_MS;
	do {
		ref = vid_module_refcnt(vid_backend_module());
		pinned = vid_pinned_pages(&err);
		gone = !r->ours || access(path, F_OK);
		if (ref == r->ref0 && !err &&
		    pinned == r->base.pinned && gone)
			break;
		sleep_ms(50);
	} while (now_ms() < deadline);
	EXPECT_EQ(r->ref0, ref);
	VID_EXPECT_ACCT(&r->base);
	EXPECT_TRUE(gone) TH_LOG("%s still exists", path);
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

	ret = qmp_exec(&r->q, "object-add",
		       "{\"qom-type\": \"memory-backend-ram\", \"id\": \"mem1\", \"size\": 67108864}",
		       line, sizeof(line));
	ASSERT_EQ(0, ret) TH_LOG("object-add: %s: %s", strerror(-ret), line);
	ret = qmp_exec(&r->q, "device_add",
		       "{\"driver\": \"pc-dimm\", \"id\": \"dimm1\", \"memdev\": \"mem1\"}",
		       line, sizeof(line));
	ASSERT_EQ(0, ret) TH_LOG("device_add: %s: %s", strerror(-ret), line);
	ret = qmp_exec(&r->q, "query-memory-devices", NULL, line,
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
