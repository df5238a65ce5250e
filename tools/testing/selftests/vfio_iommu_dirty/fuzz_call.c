// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_test: making a call. Each call gets an entry in the run's trace,
 * which the second run is compared with; its result is counted by kind
 * of call and errno, and checked against the errnos that kind of call
 * may give and against the model's prediction. What went wrong is kept
 * for the report.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "fuzz.h"

/* Names of the argument classes, kinds of call and results. */
static const char *const pc_name[NPC] = {
	"normal", "misaligned", "cut-by-hole", "read-only", "NULL", "kernel",
	"unmapped", "non-canonical", "PROT_NONE",
};

static const char *const op_name[NOPS] = {
	"GET_INFO", "MAP_DMA", "MAP_DMA vaddr", "UNMAP_DMA", "UNMAP_DMA all",
	"UNMAP_DMA vaddr", "UNMAP_DMA bitmap", "DIRTY start/stop",
	"DIRTY get-bitmap", "CHECK_EXTENSION", "unknown ioctl", "dev PIN",
	"dev UNPIN", "dev RW", "dev STATUS", "dev GET_INFO", "dev FEATURE",
	"dev unknown", "(fixup unmap)",
	"open container", "GROUP_SET_CONTAINER", "GROUP_UNSET_CONTAINER",
	"SET_IOMMU", "GET_DEVICE_FD", "close device", "close container",
};

static const char *const eb_name[NEB] = {
	"ok", "EINVAL", "EFAULT", "EEXIST", "ENOENT", "ENOSPC", "ENOMEM",
	"EBUSY", "EPERM", "EACCES", "ENOTTY", "E2BIG", "ENODEV", "EBADF",
	"EBADFD", "other",
};

/* Per kind of call: the errnos it may fail with (bits of enum eb). */
#define B(x)	(1U << EB_##x)
static const unsigned int op_allowed[NOPS] = {
	[OP_INFO] = B(EINVAL) | B(EFAULT) | B(ENOMEM),
	[OP_MAP] = B(EINVAL) | B(EFAULT) | B(EEXIST) | B(ENOSPC) | B(ENOMEM),
	[OP_MAP_VADDR] = B(EINVAL) | B(EFAULT) | B(ENOENT) | B(ENOMEM),
	[OP_UNMAP] = B(EINVAL) | B(EFAULT) | B(EBUSY) | B(ENOMEM),
	[OP_UNMAP_ALL] = B(EINVAL) | B(EFAULT) | B(EBUSY),
	[OP_UNMAP_VADDR] = B(EINVAL) | B(EFAULT) | B(EBUSY),
	[OP_UNMAP_BITMAP] = B(EINVAL) | B(EFAULT) | B(ENOMEM),
	[OP_DIRTY] = B(EINVAL) | B(EFAULT) | B(EACCES) | B(ENOMEM),
	[OP_GET_BITMAP] = B(EINVAL) | B(EFAULT) | B(EACCES) | B(ENOMEM),
	[OP_CHECK_EXT] = 0,
	[OP_UNKNOWN] = B(ENOTTY) | B(EINVAL),
	[OP_PIN] = B(EINVAL) | B(EFAULT) | B(EPERM) | B(EACCES) | B(E2BIG) |
		   B(ENOMEM),
	[OP_UNPIN] = B(EINVAL) | B(EFAULT) | B(ENOENT) | B(E2BIG),
	[OP_RW] = B(EINVAL) | B(EFAULT) | B(ENOENT) | B(EPERM) | B(E2BIG) |
		  B(ENOMEM),
	[OP_STATUS] = B(EINVAL) | B(EFAULT),
	[OP_DEV_INFO] = B(EINVAL) | B(EFAULT),
	[OP_DEV_FEATURE] = B(EINVAL) | B(EFAULT) | B(ENOTTY),
	[OP_DEV_UNKNOWN] = B(ENOTTY) | B(EINVAL),
	[OP_FIXUP] = B(EINVAL),
	[OP_OPEN] = 0,
	/* EPERM: an Arm SMMUv3 refuses nesting (vid_iommu_nesting_errno()). */
	[OP_ADD_GROUP] = B(EINVAL) | B(EFAULT) | B(EBUSY) | B(EBADF) |
			 B(EBADFD) | B(ENOMEM) | B(EPERM),
	[OP_DEL_GROUP] = B(EINVAL) | B(EBUSY),
	[OP_SET_IOMMU] = B(EINVAL) | B(ENODEV) | B(EPERM),
	[OP_GET_DEVICE] = B(EINVAL) | B(EFAULT) | B(ENODEV),
	[OP_CLOSE_DEVICE] = 0,
	[OP_CLOSE] = 0,
};

enum eb fuzz_err_bucket(int ret)
{
	switch (-ret) {
	case 0: return EB_OK;
	case EINVAL: return EB_EINVAL;
	case EFAULT: return EB_EFAULT;
	case EEXIST: return EB_EEXIST;
	case ENOENT: return EB_ENOENT;
	case ENOSPC: return EB_ENOSPC;
	case ENOMEM: return EB_ENOMEM;
	case EBUSY: return EB_EBUSY;
	case EPERM: return EB_EPERM;
	case EACCES: return EB_EACCES;
	case ENOTTY: return EB_ENOTTY;
	case E2BIG: return EB_E2BIG;
	case ENODEV: return EB_ENODEV;
	case EBADF: return EB_EBADF;
	case EBADFD: return EB_EBADFD;
	default: return EB_OTHER;
	}
}

const char *fuzz_res_name(int ret)
{
	static char buf[4][32];
	static unsigned int k;
	char *b = buf[k++ % 4];

	if (ret > 0)
		snprintf(b, 32, "returned %d", ret);
	else if (!ret)
		snprintf(b, 32, "success");
	else
		snprintf(b, 32, "%s", strerror(-ret));
	return b;
}

void fz_bad(struct fz *f, const char *fmt, ...)
{
	const struct fz_ent *e = f->ntr > f->cur ? &f->tr[f->cur] : NULL;
	va_list ap;
	int n;

	if (!f->nbad)
		f->first_bad = f->cur;
	if (f->nbad++ >= MAX_BAD)
		return;
	n = snprintf(f->bad[f->nbad - 1], BAD_LEN, "op #%u %s: ", f->cur,
		     e ? op_name[e->op] : "?");
	va_start(ap, fmt);
	vsnprintf(f->bad[f->nbad - 1] + n, BAD_LEN - n, fmt, ap);
	va_end(ap);
}

/* Start an entry for the call about to be made. */
struct fz_ent *fz_begin(struct fz *f, enum op op)
{
	struct fz_ent *e;

	if (f->ntr == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 4096;
		f->tr = realloc(f->tr, f->cap * sizeof(*f->tr));
		if (!f->tr) {
			fprintf(stderr, "fuzz: out of memory\n");
			exit(1);
		}
	}
	f->cur = f->ntr;
	e = &f->tr[f->ntr++];
	memset(e, 0, sizeof(*e));
	e->op = op;
	return e;
}

/* The first run's entry for this call, when this is the second run. */
const struct fz_ent *fz_ref(struct fz *f)
{
	return f->ref && f->cur < f->nref ? &f->ref[f->cur] : NULL;
}

/* An ioctl: 0, -errno, or the positive value it returned. */
int fz_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

/* Count the result and check it against the allowed errnos. */
void fz_end(struct fz *f, struct fz_ent *e, int ret)
{
	enum eb b = fuzz_err_bucket(ret < 0 ? ret : 0);

	e->ret = ret;
	f->count[e->op][b]++;
	if (ret < 0 && !(op_allowed[e->op] & (1U << b)))
		fz_bad(f, "%s not allowed (argsz %u flags 0x%x %s, 0x%llx 0x%llx 0x%llx 0x%llx)",
		       fuzz_res_name(ret), e->argsz, e->flags, pc_name[e->pc],
		       (unsigned long long)e->a[0],
		       (unsigned long long)e->a[1],
		       (unsigned long long)e->a[2],
		       (unsigned long long)e->a[3]);
	if (ret < 0 && pc_unreadable(e->pc) && e->op != OP_UNKNOWN &&
	    e->op != OP_DEV_UNKNOWN && ret != -EFAULT &&
	    !(ret == -EACCES && !f->v2))
		fz_bad(f, "unreadable argument (%s): %s, want EFAULT",
		       pc_name[e->pc], fuzz_res_name(ret));
	if (!ret && pc_unreadable(e->pc) && e->op != OP_CHECK_EXT)
		fz_bad(f, "unreadable argument (%s) accepted",
		       pc_name[e->pc]);
}

/* Compare a predicted result (or UNK) with what the call gave. */
void fz_expect(struct fz *f, int want, int got, const char *what)
{
	if (want != UNK && want != got)
		fz_bad(f, "%s: %s, the model says %s", what, fuzz_res_name(got),
		       fuzz_res_name(want));
}

/* A trace entry in words, for the report. */
void fuzz_ent_str(const struct fz_ent *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s argsz %u flags 0x%x %s pointer args 0x%llx 0x%llx 0x%llx 0x%llx",
		 op_name[e->op], e->argsz, e->flags, pc_name[e->pc],
		 (unsigned long long)e->a[0], (unsigned long long)e->a[1],
		 (unsigned long long)e->a[2], (unsigned long long)e->a[3]);
}

/*
 * The line of the report that counts the results of the calls of @op,
 * into @line; false when the run made none.
 */
bool fuzz_count_line(struct fz *f, unsigned int op, char *line, size_t len)
{
	uint64_t total = 0;
	unsigned int b;
	int n;

	for (b = 0; b < NEB; b++)
		total += f->count[op][b];
	if (!total)
		return false;
	n = snprintf(line, len, "  %-20s %6llu:", op_name[op],
		     (unsigned long long)total);
	for (b = 0; b < NEB && n < (int)len; b++)
		if (f->count[op][b])
			n += snprintf(line + n, len - n, " %s %llu", eb_name[b],
				      (unsigned long long)f->count[op][b]);
	return true;
}
