// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel log: a reader from now on, a marker line written into it,
 * waiting for a line, and the problems (warnings, oopses, lockdep, ...)
 * it reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vid_util.h"

/* ---------------------------------------------------------------------- */
/* kernel log                                                             */
/* ---------------------------------------------------------------------- */

int vid_kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (lseek(fd, 0, SEEK_END) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

int vid_kmsg_write(const char *line)
{
	char buf[256];
	ssize_t n;
	int fd, len;

	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = snprintf(buf, sizeof(buf), "%s\n", line);
	n = write(fd, buf, len);
	close(fd);
	if (n < 0)
		return -errno;
	return n == len ? 0 : -EIO;
}

bool vid_kmsg_wait(int fd, const char *needle, int timeout_ms)
{
	long long deadline = vid_now_ms() + timeout_ms;
	char rec[8192];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left;
		ssize_t n;

		n = read(fd, rec, sizeof(rec) - 1);
		if (n > 0) {
			rec[n] = '\0';
			if (strstr(rec, needle))
				return true;
			continue;
		}
		/* EPIPE: records were overwritten; just keep reading. */
		if (n < 0 && errno == EPIPE)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		left = deadline - vid_now_ms();
		if (left <= 0)
			return false;
		poll(&pfd, 1, (int)left);
	}
}

/* ---------------------------------------------------------------------- */
/* kernel log problems                                                    */
/* ---------------------------------------------------------------------- */

/* What the guest runner also treats as a kernel problem, and a bit more. */
static const char *const kmsg_problem_words[] = {
	"BUG:", "WARNING:", "Oops", "general protection fault",
	"Call Trace", "Kernel panic", "kernel panic", "hung_task",
	"blocked for more than", "soft lockup", "KASAN", "UBSAN",
	"possible circular locking", "possible recursive locking",
	"inconsistent lock state", "bad unlock balance",
	"list_add corruption", "list_del corruption",
	"unreferenced object", "DMAR: DRHD", "ault addr", "arm-smmu-v3",
};

int vid_kmsg_problems(int fd, char *first, size_t len)
{
	char rec[8192];
	int found = 0;
	size_t i;
	ssize_t n;

	if (first && len)
		first[0] = '\0';
	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: go on */
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return found;
		if (n < 0)
			return -errno;
		if (n == 0)
			return found;
		rec[n] = '\0';
		for (i = 0; i < sizeof(kmsg_problem_words) /
				sizeof(kmsg_problem_words[0]); i++) {
			if (!strstr(rec, kmsg_problem_words[i]))
				continue;
			if (!found && first && len)
				snprintf(first, len, "%s", rec);
			found++;
			break;
		}
	}
}
