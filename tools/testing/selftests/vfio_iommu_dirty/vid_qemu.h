/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The host's QEMU as a client of the backend under test, for the
 * selftests that run it (qemu_test, migration_test).
 *
 * The host root is shared read-only into the test guest at $VID_HOSTROOT
 * (default /host); QEMU runs chrooted there, in a private mount namespace
 * with the guest's /dev, /sys and /tmp bound in, so that its QMP socket,
 * its migration socket and the files it writes (pmemsave) appear at the
 * same paths for the test.
 *
 * QEMU never outlives a test: it gets SIGKILL when the test process dies
 * (PR_SET_PDEATHSIG), vid_qemu_kill() may be called from any process that
 * shares the struct (the harness's parent after a failed ASSERT), and
 * vid_qemu_stop_strays() ends every QEMU an earlier, timed-out test left.
 *
 * Like vid_util, nothing here depends on the kselftest harness: functions
 * return 0 or a negative errno.
 */
#ifndef VID_QEMU_H
#define VID_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#define VID_QEMU_BIN		"/usr/bin/qemu-system-x86_64"
#define VID_QEMU_COMM		"qemu-system-x86"	/* cut to 15 chars */
#define VID_HOSTROOT		"/host"

/* Bounds on every wait, in milliseconds. */
#define VID_QEMU_START_MS	90000	/* QEMU answering QMP */
#define VID_QMP_MS		30000	/* one QMP command */
#define VID_QEMU_EXIT_MS	30000	/* QEMU gone after "quit" */
#define VID_QEMU_KILL_MS	10000	/* QEMU gone after SIGKILL */

struct vid_qemu {
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

/* $VID_HOSTROOT, or VID_HOSTROOT when unset. */
const char *vid_host_root(void);
/*
 * The host QEMU's path seen from here into @path; 0 when it can be run,
 * else -errno: -ENOENT without the host root shared into the guest,
 * -ENOEXEC when QEMU is built for another CPU than this program (the
 * host is x86-64, the guest arm64).
 */
int vid_qemu_find(char *path, size_t len);

void vid_qemu_init(struct vid_qemu *q);
/*
 * Start QEMU with TCG, no defaults, no display, machine q35, paused (-S),
 * QMP on a socket in /tmp, and the extra arguments @args (NULL
 * terminated, at most 32). @name tells the QMP socket and log files of
 * QEMUs that run at the same time apart. 0 or -errno; QEMU's own
 * complaints are in its log (vid_qemu_show_log()).
 */
int vid_qemu_start(struct vid_qemu *q, const char *name,
		   const char *const *args);
/* Reap QEMU if it has exited; true when it is gone. */
bool vid_qemu_reaped(struct vid_qemu *q);
/* Wait up to @ms for QEMU to exit; 0 or -ETIMEDOUT. */
int vid_qemu_wait(struct vid_qemu *q, long ms);
/*
 * SIGKILL every QEMU still around (left by an earlier test) and wait
 * until each has exited: the number found, or -ETIMEDOUT.
 */
int vid_qemu_stop_strays(void);
/*
 * Make sure QEMU is gone and everything it used is closed (its files, the
 * container among them). Idempotent; also from a process that is not
 * QEMU's parent. Returns false when QEMU outlived SIGKILL for
 * VID_QEMU_KILL_MS.
 */
bool vid_qemu_kill(struct vid_qemu *q);
/*
 * Print what QEMU wrote to stdout and stderr, one "# qemu @tag:" line
 * each, and remove the file.
 */
void vid_qemu_show_log(struct vid_qemu *q, const char *tag);

/*
 * After QEMU exited: wait up to @ms until the refcount of the backend
 * module is @ref0, the system's pinned pages are @pinned0 and none of the
 * paths in @gone (NULL terminated) exists. 0 or -ETIMEDOUT; *@ref gets
 * the refcount read last.
 */
int vid_qemu_settle(long ref0, long pinned0, const char *const *gone,
		    long ms, long *ref);

/* --- QMP: JSON lines over a unix socket ---------------------------------- */

/* Connect to QEMU's QMP socket once it exists; 0 or -errno. */
int vid_qmp_connect(struct vid_qemu *q, long ms);
/*
 * Read one line (without its newline) into @line, waiting until the
 * vid_now_ms() time @deadline. 0, -ETIMEDOUT, -EPIPE (QEMU closed the
 * socket) or -errno. An overlong line is cut to fit.
 */
int vid_qmp_read_line(struct vid_qemu *q, char *line, size_t size,
		      long long deadline);
/*
 * Run QMP command @cmd with @args (a JSON object, or NULL) and put the
 * reply line in @reply. Events that arrive first are skipped. 0 on a
 * "return", -EREMOTEIO on an "error" reply, else -errno.
 */
int vid_qmp_exec(struct vid_qemu *q, const char *cmd, const char *args,
		 char *reply, size_t size);
/*
 * Connect, read the greeting and negotiate (qmp_capabilities), all within
 * @ms. 0 or -errno; on failure *@why names the step and @reply holds what
 * QEMU said last.
 */
int vid_qmp_open(struct vid_qemu *q, long ms, char *reply, size_t size,
		 const char **why);

/*
 * vid_qmp_open() within VID_QEMU_START_MS, then "query-status" must report
 * @status ("prelaunch" for -S, "inmigrate" for -incoming). 0 or -errno
 * (-EPROTO: another status); *@why and @reply as for vid_qmp_open().
 */
int vid_qemu_up(struct vid_qemu *q, const char *status, char *reply,
		size_t size, const char **why);
/*
 * "quit" over QMP and wait up to VID_QEMU_EXIT_MS for QEMU to exit (its
 * wait status is then in q->status). 0 or -errno; *@why and @reply as for
 * vid_qmp_open().
 */
int vid_qemu_quit(struct vid_qemu *q, char *reply, size_t size,
		  const char **why);

/*
 * The number after "@key": (first occurrence) in the JSON text @json:
 * 0, -ENOENT when the key is missing, -EINVAL when no number follows.
 */
int vid_json_u64(const char *json, const char *key, uint64_t *val);
/* The string after "@key": into @buf (cut to @len), as above. */
int vid_json_str(const char *json, const char *key, char *buf, size_t len);

/* --- this module's containers in debugfs --------------------------------- */

#define VID_MAX_CONTAINERS	32
#define VID_NAME_LEN		32

struct vid_names {
	int n;
	char name[VID_MAX_CONTAINERS][VID_NAME_LEN];
};

/* Names of the container directories; none if the root is missing. */
int vid_containers_list(struct vid_names *c);
bool vid_names_has(const struct vid_names *c, const char *name);
/*
 * The one container directory that is not in @before into @cid: 0,
 * -ENOENT when there is none, -EEXIST when there is more than one.
 */
int vid_containers_new(const struct vid_names *before, char *cid,
		       size_t len);
/* The number after "@key:" in <container @cid>/state; 0 or -errno. */
int vid_container_state(const char *cid, const char *key,
			unsigned long long *val);

#ifdef __KSELFTEST_HARNESS_H
/*
 * For a test (include vid_test.h first): skip outside the test guest or
 * when the host root is not shared, put the modules in place
 * (vid_prepare()) and end any QEMU an earlier test left. Returns false
 * when the test is skipped: the caller then returns at once.
 */
static inline bool vid_qemu_prepare(struct __test_metadata *_metadata)
{
	char qemu[256];
	int n;

	if (!vid_prepare(_metadata))
		return false;
	n = vid_qemu_find(qemu, sizeof(qemu));
	if (n == -ENOEXEC)
		SKIP(return false,
		     "needs QEMU in the guest: the host's %s is built for another CPU than this guest, and no QEMU for this CPU is given to it (arm64 lanes, README)",
		     qemu);
	if (n)
		SKIP(return false,
		     "no host QEMU at %s: host root not shared (run the guest with guest-run.sh --hostroot)",
		     qemu);
	n = vid_qemu_stop_strays();
	ASSERT_LE(0, n) TH_LOG("a QEMU left by an earlier test does not die");
	if (n)
		ksft_print_msg("waited for %d QEMU left by an earlier test\n", n);
	return true;
}
#endif

#endif /* VID_QEMU_H */
