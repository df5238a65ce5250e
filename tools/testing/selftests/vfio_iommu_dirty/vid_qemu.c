// SPDX-License-Identifier: GPL-2.0
/*
 * The host's QEMU in the test guest: starting and stopping it, QMP, and
 * this module's debugfs view of the containers QEMU opens. See vid_qemu.h.
 */
#include <dirent.h>
#include <elf.h>
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vid_qemu.h"
#include "vid_util.h"

#define ARGS_MAX	32	/* extra arguments of vid_qemu_start() */

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

static void sleep_ms(long ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (ms % 1000) * 1000000L,
	};

	nanosleep(&ts, NULL);
}

const char *vid_host_root(void)
{
	const char *r = getenv("VID_HOSTROOT");

	return r && *r ? r : VID_HOSTROOT;
}

/*
 * The ELF machine of the program at @path (e_machine: 16 bits after the
 * 16 bytes of e_ident and the 16 bits of e_type), or -errno.
 */
static int elf_machine(const char *path)
{
	unsigned char h[EI_NIDENT + 4];
	uint16_t machine;
	int fd, n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, h, sizeof(h));
	close(fd);
	if (n != (int)sizeof(h) || memcmp(h, ELFMAG, SELFMAG))
		return -ENOEXEC;
	memcpy(&machine, h + EI_NIDENT + 2, sizeof(machine));
	return machine;
}

int vid_qemu_find(char *path, size_t len)
{
	int mine, its;

	snprintf(path, len, "%s%s", vid_host_root(), VID_QEMU_BIN);
	if (access(path, X_OK))
		return -errno;
	/*
	 * The host's QEMU runs in the guest only when both are built for
	 * the same CPU: not in the arm64 guests of an x86-64 host.
	 */
	mine = elf_machine("/proc/self/exe");
	its = elf_machine(path);
	if (mine < 0 || its < 0)
		return mine < 0 ? mine : its;
	return mine == its ? 0 : -ENOEXEC;
}

void vid_qemu_init(struct vid_qemu *q)
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
 * /tmp is the guest's own tmpfs, so the sockets and files QEMU creates
 * there are visible to the test at the same paths.
 */
static void qemu_child(const char *root, const char *const *argv, int log,
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
	execve(VID_QEMU_BIN, (char *const *)argv, envp);
	child_fail("execve " VID_QEMU_BIN);
}

int vid_qemu_start(struct vid_qemu *q, const char *name,
		   const char *const *args)
{
	static const char *const common[] = {
		"qemu-system-x86_64", "-nodefaults", "-no-user-config",
		"-display", "none", "-machine", "q35",
		"-accel", "tcg,tb-size=64", "-smp", "1", "-S",
	};
	const char *argv[ARRAY_SIZE(common) + ARGS_MAX + 3];
	char qmp[sizeof(q->sock) + 32];
	pid_t parent = getpid(), pid;
	size_t n = 0, i;
	int log, ret;

	for (i = 0; i < ARRAY_SIZE(common); i++)
		argv[n++] = common[i];
	for (i = 0; args && args[i]; i++) {
		if (i == ARGS_MAX)
			return -E2BIG;
		argv[n++] = args[i];
	}
	snprintf(q->sock, sizeof(q->sock), "/tmp/vid-qmp-%d-%s.sock", parent,
		 name);
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", q->sock);
	argv[n++] = "-qmp";
	argv[n++] = qmp;
	argv[n] = NULL;
	unlink(q->sock);

	snprintf(q->log, sizeof(q->log), "/tmp/vid-qemu-%d-%s.log", parent,
		 name);
	log = open(q->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (log < 0)
		return -errno;

	/*
	 * The struct may be shared with the harness's processes: the child
	 * must not write to it, so the pid is stored by the parent only.
	 */
	pid = fork();
	if (pid == 0)
		qemu_child(vid_host_root(), argv, log, parent);
	ret = pid < 0 ? -errno : 0;
	close(log);
	if (!ret)
		q->pid = pid;
	return ret;
}

bool vid_qemu_reaped(struct vid_qemu *q)
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

int vid_qemu_wait(struct vid_qemu *q, long ms)
{
	long long deadline = vid_now_ms() + ms;

	while (!vid_qemu_reaped(q)) {
		if (vid_now_ms() >= deadline)
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
	if (!strcmp(comm, VID_QEMU_COMM)) {
		syscall(SYS_pidfd_send_signal, pfd.fd, SIGKILL, NULL, 0);
		ret = poll(&pfd, 1, (int)ms) == 1 ? 1 : -ETIMEDOUT;
	}
	close(pfd.fd);
	return ret;
}

int vid_qemu_stop_strays(void)
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
		ret = qemu_stop_pid(pid, VID_QEMU_KILL_MS);
		if (ret < 0) {
			found = ret;
			break;
		}
		found += ret;
	}
	closedir(dir);
	return found;
}

bool vid_qemu_kill(struct vid_qemu *q)
{
	bool ok = true;

	if (q->pid > 0) {
		ok = qemu_stop_pid(q->pid, VID_QEMU_KILL_MS) >= 0;
		/* Reap it if it is our child. */
		waitpid(q->pid, &q->status, WNOHANG);
		q->pid = -1;
	}
	/* Another process has no such fd: leave its fd table alone. */
	if (q->qmp >= 0 && q->owner == getpid())
		close(q->qmp);
	q->qmp = -1;
	if (q->sock[0])
		unlink(q->sock);
	q->sock[0] = '\0';
	return ok;
}

void vid_qemu_show_log(struct vid_qemu *q, const char *tag)
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
		printf("# qemu%s%s: %s\n", tag ? " " : "", tag ? tag : "",
		       line);
	fflush(stdout);
}

int vid_qemu_settle(long ref0, long pinned0, const char *const *gone,
		    long ms, long *ref)
{
	long long deadline = vid_now_ms() + ms;
	long pinned;
	bool left;
	int err, i;

	for (;;) {
		*ref = vid_module_refcnt(vid_backend_module());
		pinned = vid_pinned_pages(&err);
		left = false;
		for (i = 0; gone && gone[i]; i++)
			left |= !access(gone[i], F_OK);
		if (*ref == ref0 && !err && pinned == pinned0 && !left)
			return 0;
		if (vid_now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(50);
	}
}

/* ------------------------------------------------------------------ */
/* QMP                                                                  */
/* ------------------------------------------------------------------ */

int vid_qmp_connect(struct vid_qemu *q, long ms)
{
	long long deadline = vid_now_ms() + ms;
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
		if (vid_qemu_reaped(q))
			return -ECHILD;
		if (vid_now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(50);
	}
}

int vid_qmp_read_line(struct vid_qemu *q, char *line, size_t size,
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
		left = deadline - vid_now_ms();
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

int vid_qmp_exec(struct vid_qemu *q, const char *cmd, const char *args,
		 char *reply, size_t size)
{
	long long deadline = vid_now_ms() + VID_QMP_MS;
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
		ret = vid_qmp_read_line(q, reply, size, deadline);
		if (ret)
			return ret;
		if (strstr(reply, tag))
			return strstr(reply, "\"return\"") ? 0 : -EREMOTEIO;
	}
}

int vid_qmp_open(struct vid_qemu *q, long ms, char *reply, size_t size,
		 const char **why)
{
	long long deadline = vid_now_ms() + ms;
	int ret;

	reply[0] = '\0';
	*why = "connecting to QMP";
	ret = vid_qmp_connect(q, ms);
	if (ret)
		return ret;
	*why = "reading the QMP greeting";
	ret = vid_qmp_read_line(q, reply, size, deadline);
	if (ret)
		return ret;
	if (!strstr(reply, "\"QMP\""))
		return -EPROTO;
	*why = "qmp_capabilities";
	return vid_qmp_exec(q, "qmp_capabilities", NULL, reply, size);
}

int vid_qemu_up(struct vid_qemu *q, const char *status, char *reply,
		size_t size, const char **why)
{
	char want[64];
	int ret;

	ret = vid_qmp_open(q, VID_QEMU_START_MS, reply, size, why);
	if (ret)
		return ret;
	*why = "query-status";
	ret = vid_qmp_exec(q, "query-status", NULL, reply, size);
	if (ret)
		return ret;
	snprintf(want, sizeof(want), "\"status\": \"%s\"", status);
	return strstr(reply, want) ? 0 : -EPROTO;
}

int vid_qemu_quit(struct vid_qemu *q, char *reply, size_t size,
		  const char **why)
{
	int ret;

	*why = "quit";
	ret = vid_qmp_exec(q, "quit", NULL, reply, size);
	/* QEMU may close the socket before its reply is read. */
	if (ret && ret != -EPIPE)
		return ret;
	*why = "waiting for QEMU to exit after quit";
	return vid_qemu_wait(q, VID_QEMU_EXIT_MS);
}

/* Where the value of "@key" starts in @json, or NULL. */
static const char *json_value(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	return p;
}

int vid_json_u64(const char *json, const char *key, uint64_t *val)
{
	const char *p = json_value(json, key);
	char *end;

	if (!p)
		return -ENOENT;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	*val = strtoull(p, &end, 10);
	return errno ? -errno : 0;
}

int vid_json_str(const char *json, const char *key, char *buf, size_t len)
{
	const char *p = json_value(json, key);
	size_t n;

	if (!p)
		return -ENOENT;
	if (*p != '"')
		return -EINVAL;
	p++;
	n = strcspn(p, "\"");
	if (n >= len)
		n = len - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* this module's debugfs view                                          */
/* ------------------------------------------------------------------ */

int vid_containers_list(struct vid_names *c)
{
	struct dirent *de;
	size_t len;
	DIR *dir;

	c->n = 0;
	dir = opendir(VID_DEBUGFS_ROOT);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		len = strlen(de->d_name);
		if (c->n == VID_MAX_CONTAINERS || len >= VID_NAME_LEN) {
			closedir(dir);
			return -ENOSPC;
		}
		memcpy(c->name[c->n++], de->d_name, len + 1);
	}
	closedir(dir);
	return 0;
}

bool vid_names_has(const struct vid_names *c, const char *name)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (!strcmp(c->name[i], name))
			return true;
	return false;
}

int vid_containers_new(const struct vid_names *before, char *cid,
		       size_t len)
{
	struct vid_names now;
	int i, ret;

	cid[0] = '\0';
	ret = vid_containers_list(&now);
	if (ret)
		return ret;
	for (i = 0; i < now.n; i++) {
		if (vid_names_has(before, now.name[i]))
			continue;
		if (cid[0])
			return -EEXIST;
		snprintf(cid, len, "%s", now.name[i]);
	}
	return cid[0] ? 0 : -ENOENT;
}

int vid_container_state(const char *cid, const char *key,
			unsigned long long *val)
{
	char path[128];
	long long v;
	int ret;

	snprintf(path, sizeof(path), VID_DEBUGFS_ROOT "/%s/state", cid);
	ret = vid_file_key(path, key, &v);
	if (!ret)
		*val = v;
	return ret;
}
