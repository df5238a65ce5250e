// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_test: the steps of the life test. Containers opened and closed,
 * groups added to them and removed in any order, VFIO_SET_IOMMU with
 * every type value and garbage, the test device opened and closed, and
 * mappings, pins and tracking left for the closes to clean up. struct
 * life (fuzz.h) is the model of all that; each step predicts its result
 * from it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

#define LIFE_IOVA	0x100000ULL

static void life_detach(struct life *l, int g)
{
	struct life_c *c = &l->c[l->gin[g]];

	l->gin[g] = -1;
	if (--c->ngroups)
		return;
	/* The last group out takes the IOMMU driver with it. */
	c->set = false;
	c->nmap = 0;
	if (c->fd < 0)
		c->exists = false;
}

static void life_open(struct fz *f, struct life *l, int k)
{
	struct fz_ent *e = fz_begin(f, OP_OPEN);
	int ret = vid_open_container();

	e->a[0] = k;
	fz_end(f, e, ret < 0 ? ret : 0);
	if (ret < 0)
		return;
	l->c[k] = (struct life_c){ .fd = ret, .exists = true };
}

static void life_close(struct fz *f, struct life *l, int k)
{
	struct fz_ent *e = fz_begin(f, OP_CLOSE);

	e->a[0] = k;
	fz_end(f, e, close(l->c[k].fd) ? -errno : 0);
	l->c[k].fd = -1;
	if (!l->c[k].ngroups)
		l->c[k].exists = false;
}

/* GROUP_SET_CONTAINER of group @g with container @k or something else. */
static void life_add(struct fz *f, struct life *l, int g, int k)
{
	struct fz_ent *e = fz_begin(f, OP_ADD_GROUP);
	unsigned int r = rnd(f, 100);
	int fd, ret, want, *arg = &fd;

	e->a[0] = g;
	e->a[1] = k;
	if (r < 85 && l->c[k].fd >= 0) {
		fd = l->c[k].fd;
	} else if (r < 90) {
		fd = -1;
	} else if (r < 95) {
		fd = l->gfd[!g];	/* a VFIO fd, but no container */
		e->a[2] = 1;
	} else {
		arg = NULL;
		e->pc = PC_NULL;
	}
	ret = fz_ioctl(l->gfd[g], VFIO_GROUP_SET_CONTAINER, arg);
	fz_end(f, e, ret);
	if (!arg)
		want = -EFAULT;
	else if (fd < 0)
		want = -EBADF;
	else if (l->gin[g] >= 0)
		want = -EINVAL;
	else if (fd != l->c[k].fd)	/* no container */
		want = fuzz_kernel_6_1() ? -EINVAL : -EBADFD;
	else if (l->c[k].set && l->c[k].nmap)
		want = UNK;	/* mappings are replayed into a new domain */
	else if (l->c[k].set && g == G_EDU &&
		 l->c[k].type == VFIO_TYPE1_NESTING_IOMMU)
		want = vid_iommu_nesting_errno();	/* the IOMMU's answer */
	else
		want = 0;
	fz_expect(f, want, ret, "group set container");
	if (ret)
		return;
	l->gin[g] = k;
	l->c[k].ngroups++;
}

static void life_del(struct fz *f, struct life *l, int g)
{
	struct fz_ent *e = fz_begin(f, OP_DEL_GROUP);
	int ret, want;

	e->a[0] = g;
	ret = fz_ioctl(l->gfd[g], VFIO_GROUP_UNSET_CONTAINER, NULL);
	fz_end(f, e, ret);
	if (l->gin[g] < 0)
		want = -EINVAL;
	else if (g == G_EMU && l->dev >= 0)
		want = -EBUSY;		/* the open device uses it */
	else
		want = 0;
	fz_expect(f, want, ret, "group unset container");
	if (!ret && l->gin[g] >= 0)
		life_detach(l, g);
}

static void life_set_iommu(struct fz *f, struct life *l, int k)
{
	struct fz_ent *e = fz_begin(f, OP_SET_IOMMU);
	uint64_t type = rnd(f, 100) < 80 ?
			PICK(f, VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU,
			     VFIO_TYPE1v2_IOMMU, VFIO_TYPE1_NESTING_IOMMU) :
			PICK(f, 0, 2, 4, 5, 7, 8, 9, 10, 11, 12, 0xffff,
			     0x100000001ULL, UINT64_MAX);
	long before = vid_module_refcnt(f->mod);
	bool edu = l->gin[G_EDU] == k;
	int ret, want;

	e->a[0] = k;
	e->a[1] = type;
	ret = fz_ioctl(l->c[k].fd, VFIO_SET_IOMMU, (void *)(uintptr_t)type);
	fz_end(f, e, ret);
	if (!l->c[k].ngroups || l->c[k].set)
		want = -EINVAL;
	else if (type == VFIO_TYPE1_IOMMU || type == VFIO_TYPE1v2_IOMMU)
		want = 0;
	else if (type == VFIO_TYPE1_NESTING_IOMMU)
		want = edu ? vid_iommu_nesting_errno() : 0;
	else if (type == VFIO_UNMAP_ALL)
		want = -EINVAL;	/* announced as an extension, refused by open */
	else
		want = -ENODEV;
	fz_expect(f, want, ret, "set iommu");
	if (ret)
		return;
	if (vid_module_refcnt(f->mod) != before + 1)
		fz_bad(f, "type %llu: not served by %s",
		       (unsigned long long)type, f->mod);
	l->c[k].set = true;
	l->c[k].type = type;
	l->c[k].nmap = 0;
}

static void life_get_device(struct fz *f, struct life *l)
{
	struct fz_ent *e = fz_begin(f, OP_GET_DEVICE);
	static const char *const names[] = {
		VID_EMU_DEV0, VID_EMU_DEV0, VID_EMU_DEV0, VID_EMU_DEV0,
		"vid-emu.7", "", "0000:00:00.0", NULL,
	};
	const char *name = names[rnd(f, ARRAY_SIZE(names))];
	int k = l->gin[G_EMU], ret, want;

	e->a[0] = k;
	e->pc = name ? PC_NORMAL : PC_NULL;
	ret = fz_ioctl(l->gfd[G_EMU], VFIO_GROUP_GET_DEVICE_FD, (void *)name);
	fz_end(f, e, ret < 0 ? ret : 0);
	if (!name)
		want = -EFAULT;
	else if (strcmp(name, VID_EMU_DEV0))
		want = -ENODEV;
	else if (k < 0 || !l->c[k].set)
		want = -EINVAL;
	else
		want = 0;
	fz_expect(f, want, ret < 0 ? ret : 0, "get device fd");
	if (ret >= 0)
		l->dev = ret;
}

static void life_close_device(struct fz *f, struct life *l)
{
	struct fz_ent *e = fz_begin(f, OP_CLOSE_DEVICE);

	fz_end(f, e, close(l->dev) ? -errno : 0);
	l->dev = -1;
}

/* A mapping, tracking, a pin: things a close has to clean up. */
static void life_use(struct fz *f, struct life *l, int k)
{
	struct life_c *c = &l->c[k];
	uint64_t iova = LIFE_IOVA * (1 + rnd(f, 32));
	unsigned int r = rnd(f, 100);
	struct fz_ent *e;
	int ret;

	if (r >= 50 && r < 70 && l->dev >= 0) {
		/* A pin of one of the mappings of the device's container. */
		c = &l->c[l->gin[G_EMU]];
		if (c->nmap)
			iova = c->iova[rnd(f, min64(c->nmap, 8))] +
			       P * rnd(f, 4);
		e = fz_begin(f, OP_PIN);
		e->a[0] = iova;
		ret = vid_emu_pin(l->dev, iova, 1,
				  VID_EMU_PIN_READ | VID_EMU_PIN_WRITE, NULL);
		fz_end(f, e, ret);
		return;
	}
	if (r < 50) {
		uint64_t size = P * (1 + rnd(f, 4));
		bool g;
		uint64_t va = chance(f, 3, 4) ?
			      arena_addr(A_RW + rnd(f, 200)) :
			      fuzz_gen_vaddr(f, size, &g);

		e = fz_begin(f, OP_MAP);
		e->a[0] = iova;
		e->a[1] = size;
		e->a[2] = va;
		ret = vid_map(c->fd, iova, (void *)(uintptr_t)va, size,
			      VID_MAP_RW);
		fz_end(f, e, ret);
		if (!ret)
			c->iova[c->nmap++ % 8] = iova;
		if (!c->set)
			fz_expect(f, -EINVAL, ret, "map without a driver");
	} else if (r < 80) {
		e = fz_begin(f, OP_DIRTY);
		ret = vid_dirty_op(c->fd, 8, VFIO_IOMMU_DIRTY_PAGES_FLAG_START);
		fz_end(f, e, ret);
		fz_expect(f, !c->set ? -EINVAL :
			  c->type == VFIO_TYPE1_IOMMU ? -EACCES : 0, ret,
			  "start");
	} else if (r < 93) {
		uint64_t ext = rnd(f, 12);

		e = fz_begin(f, OP_CHECK_EXT);
		e->a[0] = ext;
		ret = fz_ioctl(c->fd, VFIO_CHECK_EXTENSION,
			       (void *)(uintptr_t)ext);
		fz_end(f, e, ret);
	} else {
		e = fz_begin(f, OP_UNKNOWN);
		ret = fz_ioctl(c->fd, _IO(VFIO_TYPE, VFIO_BASE + 30), NULL);
		fz_end(f, e, ret);
		fz_expect(f, c->set ? -ENOTTY : -EINVAL, ret, "unknown");
	}
}

/* A container to work with: mostly one that is set up, if any. */
static int life_pick(struct fz *f, struct life *l)
{
	int k = rnd(f, LIFE_N), i;

	if (chance(f, 1, 4))
		return k;
	for (i = 0; i < LIFE_N; i++) {
		k = (k + 1) % LIFE_N;
		if (l->c[k].fd >= 0 && l->c[k].set)
			return k;
	}
	return k;
}

/* One random step: a container, a group, SET_IOMMU, the device or a use. */
void fuzz_life_step(struct fz *f, struct life *l)
{
	unsigned int r = rnd(f, 100);
	int k = rnd(f, LIFE_N), g = rnd(f, NG);
	struct life_c *c = &l->c[k];

	if (r < 4) {
		if (!c->exists)
			life_open(f, l, k);
		else if (c->fd >= 0)
			life_close(f, l, k);
	} else if (r < 6) {
		if (c->fd >= 0)
			life_close(f, l, k);
	} else if (r < 20) {
		if (c->fd < 0 && !c->exists)
			life_open(f, l, k);
		life_add(f, l, g, k);
	} else if (r < 25) {
		life_del(f, l, g);
	} else if (r < 37) {
		/* Mostly where a group waits for it. */
		if (l->gin[g] >= 0 && !l->c[l->gin[g]].set && chance(f, 3, 4))
			k = l->gin[g];
		if (l->c[k].fd >= 0)
			life_set_iommu(f, l, k);
	} else if (r < 45) {
		if (l->dev < 0)
			life_get_device(f, l);
		else if (chance(f, 1, 3))
			life_close_device(f, l);
	} else {
		k = life_pick(f, l);
		if (l->c[k].fd >= 0)
			life_use(f, l, k);
	}
}
