// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_test: the test device's ioctls (vid_emu/). Each makes one call
 * with random arguments, predicts its result from the model of mappings
 * and pins, checks what came back and updates the pins: PIN, UNPIN, RW
 * (through dma_rw or through the pinned pages), STATUS, GET_INFO,
 * FEATURE and commands the device does not handle.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

#include "fuzz.h"

/* An IOVA for the device: a page of a mapping, a pinned page, anything. */
static uint64_t gen_dev_iova(struct fz *f)
{
	struct fz_map *m;
	bool g;

	if (f->nmap && rnd(f, 100) < 70) {
		m = &f->map[rnd(f, f->nmap)];
		return m->iova + P * rnd(f, min64(m->size / P, 1ULL << 20));
	}
	if (f->npin && chance(f, 1, 2))
		return f->pin[rnd(f, f->npin)].iova;
	if (chance(f, 4, 5))
		return fuzz_gen_iova(f, &g);
	return PICK(f, WIN + 1, WIN + 0x800, UINT64_MAX - P + 1,
		    UINT64_MAX & ~(P - 1), vid_rng_next(&f->rng));
}

/* [@iova, @iova + @len) as the device module accepts a range. */
static bool dev_range_ok(uint64_t iova, uint64_t len)
{
	return len && len - 1 <= UINT64_MAX - iova;
}

static int predict_pin(struct fz *f, const struct vid_emu_pin *pin)
{
	uint32_t need = 0, k;
	uint64_t a, va;
	int i;

	if (!rd(f, sizeof(*pin)))
		return -EFAULT;
	if (pin->argsz < sizeof(*pin) || pin->pad || !pin->npages ||
	    pin->flags & ~(VID_EMU_PIN_READ | VID_EMU_PIN_WRITE))
		return -EINVAL;
	if (pin->npages > VID_EMU_PIN_MAX)
		return -E2BIG;
	if (pin->iova & (P - 1) ||
	    !dev_range_ok(pin->iova, (uint64_t)pin->npages * P))
		return -EINVAL;
	if (pin->pfns &&
	    !fuzz_mem_range_ok(pin->pfns, pin->npages * 8ULL, true))
		return -EFAULT;
	if (!f->v2)
		return -EACCES;
	if (pin->flags & VID_EMU_PIN_READ)
		need |= VFIO_DMA_MAP_FLAG_READ;
	if (pin->flags & VID_EMU_PIN_WRITE)
		need |= VFIO_DMA_MAP_FLAG_WRITE;
	for (k = 0; k < pin->npages; k++) {
		a = pin->iova + (uint64_t)k * P;
		i = fuzz_model_at(f, a);
		if (i < 0)
			return -EINVAL;
		if ((f->map[i].prot & need) != need)
			return -EPERM;
		if (fuzz_pin_find(f, a))
			continue;	/* pinned already: no new lookup */
		va = f->map[i].vaddr + (a - f->map[i].iova);
		if (!fuzz_mem_ok(va, f->map[i].prot & VFIO_DMA_MAP_FLAG_WRITE))
			return -EFAULT;
	}
	return 0;
}

static void op_pin(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_PIN);
	struct vid_emu_pin pin = { 0 };
	int ret, want;
	enum where pc;
	bool g;
	void *p;

	pin.iova = gen_dev_iova(f);
	pin.npages = rnd(f, 100) < 85 ? 1 + rnd(f, 8) :
		     PICK(f, 0, 64, VID_EMU_PIN_MAX, VID_EMU_PIN_MAX + 1,
			  0xffffffffU);
	pin.flags = rnd(f, 100) < 85 ?
		    PICK(f, VID_EMU_PIN_READ | VID_EMU_PIN_WRITE,
			 VID_EMU_PIN_READ, VID_EMU_PIN_WRITE, 0) :
		    PICK(f, 4, 1U << 31, 0xffffffffU);
	pin.pad = chance(f, 1, 30);
	if (chance(f, 1, 10))
		pin.pfns = fuzz_gen_buf(f, A_DATA, N_DATA,
					min64(pin.npages, VID_EMU_PIN_MAX) * 8,
					&g);
	pin.argsz = fuzz_gen_argsz(f, sizeof(pin), sizeof(pin), &g);
	pc = fuzz_pick_pc(f);
	e->argsz = pin.argsz;
	e->flags = pin.flags;
	e->pc = pc;
	e->a[0] = pin.iova;
	e->a[1] = pin.npages;
	e->a[2] = pin.pfns;
	e->a[3] = pin.pad;
	p = fz_place(f, pc, &pin, sizeof(pin), sizeof(pin) + 16);
	ret = fz_ioctl(f->dev, VID_EMU_PIN, p);
	fz_end(f, e, ret);
	want = predict_pin(f, &pin);
	fz_expect(f, want, ret, "pin");
	if (!ret && !want)
		fuzz_pins_add(f, pin.iova, pin.npages, pin.flags);
}

static void op_unpin(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_UNPIN);
	struct vid_emu_unpin u = { 0 };
	int ret, want = 0;
	struct fz_pin *pn;
	enum where pc;
	uint32_t k;
	bool g;
	void *p;

	u.flags = chance(f, 1, 30) ? VID_EMU_UNPIN_ALL : 0;
	if (chance(f, 1, 30))
		u.flags |= PICK(f, 2, 1U << 31);
	if (f->npin && chance(f, 4, 5)) {
		u.iova = f->pin[rnd(f, f->npin)].iova;
		u.npages = 1 + rnd(f, 4);
	} else {
		u.iova = gen_dev_iova(f);
		u.npages = rnd(f, 100) < 90 ? 1 + rnd(f, 8) :
			   PICK(f, 0, VID_EMU_PIN_MAX + 1, 0xffffffffU);
	}
	if (u.flags & VID_EMU_UNPIN_ALL && chance(f, 9, 10)) {
		u.iova = 0;
		u.npages = 0;
	}
	u.pad = chance(f, 1, 30);
	u.argsz = fuzz_gen_argsz(f, sizeof(u), sizeof(u), &g);
	pc = fuzz_pick_pc(f);
	e->argsz = u.argsz;
	e->flags = u.flags;
	e->pc = pc;
	e->a[0] = u.iova;
	e->a[1] = u.npages;
	e->a[3] = u.pad;
	p = fz_place(f, pc, &u, sizeof(u), sizeof(u) + 16);
	ret = fz_ioctl(f->dev, VID_EMU_UNPIN, p);
	fz_end(f, e, ret);

	if (!rd(f, sizeof(u)))
		want = -EFAULT;
	else if (u.argsz < sizeof(u) || u.pad ||
		 u.flags & ~VID_EMU_UNPIN_ALL)
		want = -EINVAL;
	else if (u.flags & VID_EMU_UNPIN_ALL)
		want = u.iova || u.npages ? -EINVAL : 0;
	else if (!u.npages)
		want = -EINVAL;
	else if (u.npages > VID_EMU_PIN_MAX)
		want = -E2BIG;
	else if (u.iova & (P - 1) ||
		 !dev_range_ok(u.iova, (uint64_t)u.npages * P))
		want = -EINVAL;
	for (k = 0; !want && !(u.flags & VID_EMU_UNPIN_ALL) &&
	     k < u.npages; k++)
		if (!fuzz_pin_find(f, u.iova + (uint64_t)k * P))
			want = -ENOENT;
	fz_expect(f, want, ret, "unpin");
	if (ret || want)
		return;
	if (u.flags & VID_EMU_UNPIN_ALL) {
		f->npin = 0;
		return;
	}
	for (k = 0; k < u.npages; k++) {
		pn = fuzz_pin_find(f, u.iova + (uint64_t)k * P);
		if (pn && !--pn->refs)
			*pn = f->pin[--f->npin];
	}
}

/* A device access through the backend's dma_rw. */
static int predict_dma_rw(struct fz *f, uint64_t iova, uint64_t len,
			  bool write)
{
	uint64_t off, n, va;
	int i;

	while (len) {
		i = fuzz_model_at(f, iova);
		if (i < 0)
			return -EINVAL;
		if ((write && !(f->map[i].prot & VFIO_DMA_MAP_FLAG_WRITE)) ||
		    !(f->map[i].prot & VFIO_DMA_MAP_FLAG_READ))
			return -EPERM;
		off = iova - f->map[i].iova;
		n = min64(len, f->map[i].size - off);
		va = f->map[i].vaddr + off;
		if (va + n - 1 < va || !fuzz_mem_range_ok(va, n, write))
			return -EFAULT;
		iova += n;
		len -= n;
	}
	return 0;
}

/* A device access through the pages the device holds pinned. */
static int predict_pinned_rw(struct fz *f, uint64_t iova, uint64_t len,
			     bool write)
{
	uint64_t a, last = iova + len - 1;
	struct fz_pin *pn;

	for (a = iova & ~(P - 1); a <= last; a += P) {
		pn = fuzz_pin_find(f, a);
		if (!pn)
			return -ENOENT;
		if (write && !(pn->flags & VID_EMU_PIN_WRITE))
			return -EPERM;
		if (a + P < a)
			break;
	}
	return 0;
}

static void op_rw(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_RW);
	struct vid_emu_rw rw = { 0 };
	unsigned int r = rnd(f, 100);
	bool write, pinned, g;
	int ret, want;
	enum where pc;
	void *p;

	rw.flags = rnd(f, 100) < 90 ? rnd(f, 4) : PICK(f, 4, 1U << 31);
	write = rw.flags & VID_EMU_RW_WRITE;
	pinned = rw.flags & VID_EMU_RW_PINNED;
	rw.iova = gen_dev_iova(f);
	if (chance(f, 1, 3))
		rw.iova += rnd(f, P);
	if (r < 80)
		rw.length = 1 + rnd(f, 2 * P);
	else if (r < 90)
		rw.length = 1 + rnd(f, VID_EMU_RW_MAX);
	else
		rw.length = PICK(f, 0, VID_EMU_RW_MAX, VID_EMU_RW_MAX + 1,
				 UINT64_MAX, 1ULL << 40);
	rw.data = fuzz_gen_buf(f, A_DATA, N_DATA,
			       min64(rw.length, N_DATA * P), &g);
	rw.argsz = fuzz_gen_argsz(f, sizeof(rw), sizeof(rw), &g);
	pc = fuzz_pick_pc(f);
	e->argsz = rw.argsz;
	e->flags = rw.flags;
	e->pc = pc;
	e->a[0] = rw.iova;
	e->a[1] = rw.length;
	e->a[2] = rw.data;
	p = fz_place(f, pc, &rw, sizeof(rw), sizeof(rw) + 16);
	ret = fz_ioctl(f->dev, VID_EMU_RW, p);
	fz_end(f, e, ret);

	if (!rd(f, sizeof(rw)))
		want = -EFAULT;
	else if (rw.argsz < sizeof(rw) || !rw.length ||
		 rw.flags & ~(VID_EMU_RW_WRITE | VID_EMU_RW_PINNED))
		want = -EINVAL;
	else if (rw.length > VID_EMU_RW_MAX)
		want = -E2BIG;
	else if (!dev_range_ok(rw.iova, rw.length))
		want = -EINVAL;
	else if (!fuzz_mem_range_ok(rw.data, rw.length, !write))
		want = -EFAULT;	/* the device's own buffer */
	else if (pinned)
		want = predict_pinned_rw(f, rw.iova, rw.length, write);
	else
		want = predict_dma_rw(f, rw.iova, rw.length, write);
	fz_expect(f, want, ret, pinned ? "access through pins" : "dma_rw");
}

/* STATUS: the device's pin counts against the model. */
void fuzz_device_status(struct fz *f, bool exact)
{
	struct fz_ent *e = fz_begin(f, OP_STATUS);
	struct vid_emu_status st = { 0 };
	enum where pc = PC_NORMAL;
	int ret, want;
	bool g;
	void *p;

	st.argsz = exact ? sizeof(st) :
		   fuzz_gen_argsz(f, sizeof(st), sizeof(st), &g);
	if (!exact && chance(f, 1, 10))
		st.flags = PICK(f, VID_EMU_STATUS_RESET, 2, 1U << 31);
	if (!exact)
		pc = fuzz_pick_pc(f);
	e->argsz = st.argsz;
	e->flags = st.flags;
	e->pc = pc;
	p = fz_place(f, pc, &st, sizeof(st), sizeof(st) + 16);
	ret = fz_ioctl(f->dev, VID_EMU_STATUS, p);
	fz_end(f, e, ret);
	if (!rd(f, 8))
		want = -EFAULT;
	else if (st.argsz < sizeof(st) || st.flags & ~VID_EMU_STATUS_RESET)
		want = -EINVAL;
	else
		want = wr(f, sizeof(st)) ? 0 : -EFAULT;
	fz_expect(f, want, ret, "status");
	if (ret || !pc_writable(pc))
		return;
	memcpy(&st, p, sizeof(st));
	if (st.pinned_pages != f->npin || st.pinned_refs != fuzz_pins_refs(f) ||
	    st.anomalies)
		fz_bad(f, "device holds %llu pages, %llu pins, %llu anomalies; the model %u, %llu",
		       (unsigned long long)st.pinned_pages,
		       (unsigned long long)st.pinned_refs,
		       (unsigned long long)st.anomalies, f->npin,
		       (unsigned long long)fuzz_pins_refs(f));
}

static void op_dev_info(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_DEV_INFO);
	struct vfio_device_info info = { 0 };
	const uint32_t minsz = 16;
	int ret, want;
	enum where pc;
	bool g;
	void *p;

	info.argsz = fuzz_gen_argsz(f, minsz, sizeof(info), &g);
	pc = fuzz_pick_pc(f);
	e->argsz = info.argsz;
	e->pc = pc;
	p = fz_place(f, pc, &info, sizeof(info), sizeof(info) + 16);
	ret = fz_ioctl(f->dev, VFIO_DEVICE_GET_INFO, p);
	fz_end(f, e, ret);
	if (!rd(f, minsz))
		want = -EFAULT;
	else if (info.argsz < minsz)
		want = -EINVAL;
	else
		want = wr(f, minsz) ? 0 : -EFAULT;
	fz_expect(f, want, ret, "device info");
}

static void op_dev_feature(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_DEV_FEATURE);
	struct {
		struct vfio_device_feature h;
		uint8_t data[64];
	} a = { 0 };
	const uint32_t known = VFIO_DEVICE_FEATURE_MASK |
			       VFIO_DEVICE_FEATURE_GET |
			       VFIO_DEVICE_FEATURE_SET |
			       VFIO_DEVICE_FEATURE_PROBE;
	uint32_t gs = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET;
	int ret, want;
	enum where pc;
	bool g;
	void *p;

	a.h.flags = rnd(f, 16) | (rnd(f, 8) << 16);
	if (chance(f, 1, 10))
		a.h.flags |= PICK(f, 1U << 19, 1U << 31);
	a.h.argsz = fuzz_gen_argsz(f, 8, sizeof(a), &g);
	pc = fuzz_pick_pc(f);
	e->argsz = a.h.argsz;
	e->flags = a.h.flags;
	e->pc = pc;
	p = fz_place(f, pc, &a, sizeof(a), sizeof(a) + 16);
	ret = fz_ioctl(f->dev, VFIO_DEVICE_FEATURE, p);
	fz_end(f, e, ret);
	if (!rd(f, 8))
		want = -EFAULT;
	else if (a.h.argsz < 8 || a.h.flags & ~known)
		want = -EINVAL;
	else if (!(a.h.flags & VFIO_DEVICE_FEATURE_PROBE) &&
		 (a.h.flags & gs) == gs)
		want = -EINVAL;
	else
		want = -ENOTTY;	/* the device has no feature at all */
	fz_expect(f, want, ret, "device feature");
}

static void op_dev_unknown(struct fz *f)
{
	struct fz_ent *e = fz_begin(f, OP_DEV_UNKNOWN);
	unsigned long cmd;
	uint64_t arg;
	int ret;

	/*
	 * Not the commands the device and the VFIO core handle. GATE is
	 * never fuzzed: an armed gate holds the next unmap for seconds.
	 */
	do
		cmd = fuzz_gen_cmd(f);
	while (cmd == VFIO_DEVICE_GET_INFO || cmd == VFIO_DEVICE_FEATURE ||
	       cmd == VID_EMU_PIN || cmd == VID_EMU_UNPIN ||
	       cmd == VID_EMU_RW || cmd == VID_EMU_STATUS ||
	       cmd == VID_EMU_GATE);
	arg = PICK(f, 0, arena_addr(A_ARGS), KADDR, 1, UINT64_MAX);
	e->a[0] = cmd;
	e->a[1] = arg;
	ret = fz_ioctl(f->dev, cmd, (void *)(uintptr_t)arg);
	fz_end(f, e, ret);
	fz_expect(f, -ENOTTY, ret, "unknown device command");
}

/* One call of @op, an ioctl of the test device, with random arguments. */
void fuzz_device_op(struct fz *f, enum op op)
{
	switch (op) {
	case OP_PIN:
		op_pin(f);
		break;
	case OP_UNPIN:
		op_unpin(f);
		break;
	case OP_RW:
		op_rw(f);
		break;
	case OP_STATUS:
		fuzz_device_status(f, false);
		break;
	case OP_DEV_INFO:
		op_dev_info(f);
		break;
	case OP_DEV_FEATURE:
		op_dev_feature(f);
		break;
	case OP_DEV_UNKNOWN:
		op_dev_unknown(f);
		break;
	default:
		break;
	}
}
