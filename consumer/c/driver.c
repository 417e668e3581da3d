/*
 * The consumer test's driver: it uses vmm_vm.c (bhyve's vmspace layer, the
 * only caller of vmm_gpt) through its public interface, <sys/vmm_vm.h>,
 * the way bhyve does, and writes down everything it sees in a transcript.
 * build.rs combines it with vmm_vm.c and renames the combination once per
 * implementation of vmm_gpt; the Rust side runs every copy with the same
 * arguments and compares the transcripts, which must be identical.
 *
 * What a run does is decided by its seed (an xorshift64* stream), never by
 * an implementation, so two copies make exactly the same calls as long as
 * vmm_vm.c gets the same answers from below.  The transcript records every
 * return value, each held page, each bitmap (with the guard bytes around
 * it), resident counts, generations, invalidation callbacks, the values
 * guest accesses read, and at checkpoints the whole page-table tree as the
 * hardware sees it.  Nothing run-dependent appears: a leaf's host PFN is
 * written as the object it belongs to and the page's offset in it
 * ("o2+0x3000"), a table link's PFN not at all.
 *
 * The hardware is simulated in software, as a vCPU in guest mode uses the
 * tables: vmc_table_enter(), the root from vmspace_table_root(), a walk
 * from the root through hat_kpm_pfn2va(), checking presence and permission
 * at every level; on a permitted leaf, the accessed bit (and the dirty bit
 * for a write) set with an atomic OR, as the formats' hardware does (EPT
 * only when the EPTP enables A/D, and then also in the table links it
 * walked through; AMD always), then the access of the page's memory; on a
 * missing or insufficient entry, vmc_table_exit() and vmc_fault(), then
 * the access again.
 *
 * Two scenarios (consumer_args_t.ca_mode):
 *
 * - Sequential: one thread plays every part, bhyve-like.  It maps RAM below
 *   3 GiB and above 4 GiB, a RAM window across the 512 GiB line, a bootrom
 *   (read + execute), two MMIO ranges (vmm_mmio_alloc() with made-up host
 *   addresses), then runs ca_ops random operations: guest accesses of the
 *   vCPUs, page holds of devices and vCPUs (vmc_hold(), vmc_hold_ext() with
 *   and without VPF_DEFER_DIRTY, reads and writes through the held page,
 *   vmp_mark_dirty(), chains released with vmp_release_chain(), holds of
 *   unmapped and protected addresses), faults, populates, dirty tracking on
 *   and off (and refused without hardware A/D support), every
 *   vmspace_bits_operate() operation with and without the bitmap flags
 *   over ranges that cover missing tables, gaps and partial mappings,
 *   unmaps and remaps elsewhere, the mapping errors, client clones and
 *   destruction.  Then it unmaps everything, destroys the vmspace while a
 *   client is left (which orphans it) and checks that the kernel memory is
 *   what it was.
 * - Concurrent: vCPU threads (guest accesses, faults, leaving guest mode
 *   when poked) and device threads (holds for writing, writes, releases)
 *   run while the main thread harvests dirty pages with VBO_RESET_DIRTY and
 *   VBO_GET_DIRTY and populates.  Interleavings differ from run to run, so
 *   only what they cannot change is recorded: what each thread's accesses
 *   came to, the resident count, the tree after the phase.  What must hold
 *   in every interleaving is checked in the run: with tracking on for the
 *   whole first phase, the pages harvested are exactly the pages written
 *   (no dirty page lost, none invented), and a copy of memory kept up to
 *   date from the harvests alone equals memory at the end.  A second phase
 *   toggles tracking meanwhile (and checks that nothing unwritten shows
 *   dirty).
 *
 * Holds live across unmaps, as a device's do in bhyve: the driver keeps
 * them (on several clients) while it unmaps their mappings, reads and
 * writes through them afterwards, remaps the same range while they live,
 * and releases them later, when vmp_release() must say that their region
 * was unmapped; at the end the last client keeps its holds across
 * vmspace_destroy() and the driver drops its own object references before
 * it uses and releases them, so that only the holds' object references
 * (vmp_obj_ref) keep those pages.  That needs vmc_space_unmap() to walk its
 * list with the page, which the gate's vmm_vm.c does not do
 * (illumos-build/patches/vmm_vm-unmap-held-pages.patch): unfixed, the first
 * unmap while any client holds a page spins forever, which
 * consumer/tests/patches.rs expects.  Two things the driver still avoids:
 * holds beyond the vmspace (aliases of pages below 2^48, which
 * vmc_space_unmap() cannot see) are released before any unmap, and nothing
 * is unmapped while vCPUs run (bhyve freezes them first).
 *
 * Built with -DCONSUMER_GPA_BOUNDED (over vmm_vm.c patched with
 * vmm_vm-hold-bounds.patch), the driver requires every hold and fault
 * beyond the vmspace to fail (FC_NOMAP); otherwise it records what they
 * give (they alias).
 */
#include <sys/types.h>
#include <sys/param.h>
#include <sys/debug.h>
#include <sys/kmem.h>
#include <sys/mman.h>
#include <sys/machparam.h>
#include <sys/x86_archext.h>
#include <sys/vmsystm.h>
#include <sys/vmm_vm.h>
#include <vm/seg_vn.h>

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ktest.h"
#include "consumer.h"

#define	KIB		(1ULL << 10)
#define	MIB		(1ULL << 20)
#define	GIB		(1ULL << 30)
#define	PA_MASK		0x000ffffffffff000ULL
#define	PTES		512

#define	MAX_OBJS	32
#define	MAX_MAPS	16
#define	MAX_CLIENTS	12
#define	MAX_HOLDS	24
#define	GUARD		16	/* guard bytes on each side of a bitmap */

/* Made-up host physical addresses of the MMIO ranges: above any user VA. */
#define	MMIO_HPA_BASE	0x000fe00000000000ULL

/* Whether `gpa` lies beyond the vmspace (vmspace_alloc(VM_MAXUSER_ADDRESS)). */
#define	BEYOND(gpa)	((uint64_t)(gpa) > VM_MAXUSER_ADDRESS)

/*
 * The concurrent scenario: how long one guest access may take, faults and
 * exits on pokes included, before it counts as never completing (see
 * consumer/tests/concurrent.rs for why this is a wall-clock bound and why
 * this one).
 */
#define	ACCESS_LIMIT_NS	(60ULL * 1000 * 1000 * 1000)

/* ------------------------------------------------------------------ */
/* the transcript                                                      */
/* ------------------------------------------------------------------ */

typedef struct tr {
	char	*t_buf;
	size_t	t_len;
	size_t	t_cap;
} tr_t;

static void tr_printf(tr_t *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
tr_printf(tr_t *t, const char *fmt, ...)
{
	va_list ap;

	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(t->t_buf + t->t_len, t->t_cap - t->t_len,
		    fmt, ap);
		va_end(ap);
		VERIFY(n >= 0);
		if ((size_t)n < t->t_cap - t->t_len) {
			t->t_len += (size_t)n;
			return;
		}
		size_t cap = t->t_cap * 2 + (size_t)n + 1;
		char *buf = realloc(t->t_buf, cap);
		if (buf == NULL)
			panic("consumer: out of memory for the transcript");
		t->t_buf = buf;
		t->t_cap = cap;
	}
}

/* ------------------------------------------------------------------ */
/* random numbers                                                      */
/* ------------------------------------------------------------------ */

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

/* xorshift64*: the stream every choice comes from. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (*s * 0x2545f4914f6cdd1dULL);
}

/* Uniform in [0, n) (n > 0). */
static uint64_t
rndn(uint64_t *s, uint64_t n)
{
	return (rnd(s) % n);
}

/* Uniform in [lo, hi]. */
static uint64_t
rndr(uint64_t *s, uint64_t lo, uint64_t hi)
{
	return (lo + rndn(s, hi - lo + 1));
}

/* True with probability pct / 100. */
static bool
chance(uint64_t *s, unsigned pct)
{
	return (rndn(s, 100) < pct);
}

/* ------------------------------------------------------------------ */
/* the driver's state                                                  */
/* ------------------------------------------------------------------ */

typedef struct dobj {
	vm_object_t	*o_vmo;
	bool		o_mmio;
	bool		o_live;		/* vm_object_t not yet freed */
	bool		o_held;		/* the driver holds a reference */
	uint64_t	o_pfn0;		/* host PFN of its first page */
	size_t		o_npages;
	const char	*o_name;
} dobj_t;

typedef struct dmap {
	int		m_obj;
	uint64_t	m_gpa;
	size_t		m_len;
	uint64_t	m_off;
	uint8_t		m_prot;
	bool		m_live;
	const char	*m_name;
} dmap_t;

struct drv;

typedef struct dclient {
	vm_client_t	*c_vmc;
	bool		c_live;
	bool		c_vcpu;
	int		c_cpu;
	int		c_nholds;
	vm_page_t	*c_holds[MAX_HOLDS];
	uint64_t	c_hold_gpa[MAX_HOLDS];
	pfn_t		c_hold_pfn[MAX_HOLDS];	/* vmp_get_pfn() when taken */
	int		c_hold_obj[MAX_HOLDS];	/* its object (index) */
	int		c_hold_prot[MAX_HOLDS];
	/* Its mapping was unmapped while it was held. */
	bool		c_hold_unmapped[MAX_HOLDS];
	struct drv	*c_drv;		/* for the invalidation callback */
	int		c_idx;
	uint64_t	c_invals;
} dclient_t;

typedef struct drv {
	tr_t		d_tr;
	uint64_t	d_rng;
	int		d_format;
	bool		d_sequential;
	int		d_fails;
	pthread_mutex_t	d_fail_lock;
	vmspace_t	*d_vms;
	dobj_t		d_objs[MAX_OBJS];
	int		d_nobjs;
	dmap_t		d_maps[MAX_MAPS];
	int		d_nmaps;
	dclient_t	d_clients[MAX_CLIENTS];
	int		d_nclients;
	uint64_t	d_wval;		/* the next value written */
	uint64_t	d_beyond;	/* holds and faults beyond the vmspace */
	uint64_t	d_beyond_ok;	/* ... that succeeded */
} drv_t;

static void fail(drv_t *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* An in-run check failed: a "FAIL" line, and the run's result says so. */
static void
fail(drv_t *d, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	(void) vsnprintf(msg, sizeof (msg), fmt, ap);
	va_end(ap);
	(void) pthread_mutex_lock(&d->d_fail_lock);
	if (d->d_fails++ < 20)
		tr_printf(&d->d_tr, "FAIL: %s\n", msg);
	(void) pthread_mutex_unlock(&d->d_fail_lock);
}

/* ------------------------------------------------------------------ */
/* the formats, as the hardware sees them                              */
/* ------------------------------------------------------------------ */

#define	EPT_RWX		0x7ULL
#define	EPT_A		(1ULL << 8)
#define	EPT_D		(1ULL << 9)
#define	EPTP_AD		(1ULL << 6)
#define	RVI_P		0x1ULL
#define	RVI_W		0x2ULL
#define	RVI_A		(1ULL << 5)
#define	RVI_D		(1ULL << 6)
#define	RVI_NX		(1ULL << 63)

static bool
hw_present(const drv_t *d, uint64_t e)
{
	return (d->d_format == CONSUMER_EPT ? (e & EPT_RWX) != 0 :
	    (e & RVI_P) != 0);
}

/* Whether entry `e` lets an access of kind `acc` (a PROT_* bit) through. */
static bool
hw_allows(const drv_t *d, uint64_t e, int acc)
{
	if (d->d_format == CONSUMER_EPT)
		return ((e & (uint64_t)acc) != 0);
	if ((e & RVI_P) == 0)
		return (false);
	if (acc == PROT_WRITE)
		return ((e & RVI_W) != 0);
	if (acc == PROT_EXEC)
		return ((e & RVI_NX) == 0);
	return (true);
}

static uint64_t
hw_bit_a(const drv_t *d)
{
	return (d->d_format == CONSUMER_EPT ? EPT_A : RVI_A);
}

static uint64_t
hw_bit_d(const drv_t *d)
{
	return (d->d_format == CONSUMER_EPT ? EPT_D : RVI_D);
}

/* Whether the hardware maintains A/D bits with this EPTP / nCR3. */
static bool
hw_ad(const drv_t *d, uint64_t pmtp)
{
	return (d->d_format == CONSUMER_RVI || (pmtp & EPTP_AD) != 0);
}

static uint64_t *
hw_table(uint64_t pa)
{
	return ((uint64_t *)(void *)hat_kpm_pfn2va((pfn_t)(pa >> PAGESHIFT)));
}

/* The index of `gpa` in its table at depth `lvl` (0 the root). */
static unsigned
hw_index(int lvl, uint64_t gpa)
{
	return ((unsigned)(gpa >> (39 - 9 * lvl)) & (PTES - 1));
}

/* Sets `bits` in *ep as the hardware does: one locked OR, if needed. */
static void
hw_set(uint64_t *ep, uint64_t e, uint64_t bits)
{
	if ((e & bits) != bits)
		(void) __atomic_fetch_or(ep, bits, __ATOMIC_SEQ_CST);
}

/*
 * One guest access of kind `acc` (PROT_READ, _WRITE or _EXEC) to `gpa`
 * through the tables of `pmtp`.  Returns 0 and the leaf's PFN, or the
 * level (4 the root ... 1 the leaves) of the entry that stopped the walk,
 * negated when the entry was present but did not permit the access.
 */
static int
hw_access(const drv_t *d, uint64_t pmtp, uint64_t gpa, int acc, pfn_t *pfnp)
{
	const bool ad = hw_ad(d, pmtp);
	uint64_t *table = hw_table(pmtp & PA_MASK);

	for (int lvl = 0; lvl < 4; lvl++) {
		uint64_t *ep = &table[hw_index(lvl, gpa)];
		const uint64_t e = __atomic_load_n(ep, __ATOMIC_SEQ_CST);

		if (!hw_present(d, e))
			return (4 - lvl);
		if (!hw_allows(d, e, acc))
			return (-(4 - lvl));
		if (lvl < 3) {
			if (ad)
				hw_set(ep, e, hw_bit_a(d));
			table = hw_table(e & PA_MASK);
			continue;
		}
		if (ad) {
			hw_set(ep, e, hw_bit_a(d) |
			    (acc == PROT_WRITE ? hw_bit_d(d) : 0));
		}
		*pfnp = (pfn_t)((e & PA_MASK) >> PAGESHIFT);
	}
	return (0);
}

/* ------------------------------------------------------------------ */
/* objects and names                                                   */
/* ------------------------------------------------------------------ */

/* The object (index) whose pages include `pfn`, or -1; its page in *pgp. */
static int
obj_of_pfn(const drv_t *d, uint64_t pfn, uint64_t *pgp)
{
	for (int i = 0; i < d->d_nobjs; i++) {
		const dobj_t *o = &d->d_objs[i];

		if (o->o_live && pfn >= o->o_pfn0 &&
		    pfn - o->o_pfn0 < o->o_npages) {
			*pgp = pfn - o->o_pfn0;
			return (i);
		}
	}
	return (-1);
}

/* "o<id>+<offset>" for a host PFN; a PFN of no object is a failure. */
static const char *
pfn_name(drv_t *d, uint64_t pfn, char *buf, size_t len)
{
	uint64_t pg;
	int o = obj_of_pfn(d, pfn, &pg);

	if (o < 0) {
		fail(d, "host PFN %#lx belongs to no object", (ulong_t)pfn);
		(void) snprintf(buf, len, "pfn-of-no-object");
	} else {
		(void) snprintf(buf, len, "o%d+%#lx", o,
		    (ulong_t)(pg << PAGESHIFT));
	}
	return (buf);
}

static int
obj_add(drv_t *d, vm_object_t *vmo, bool mmio, size_t len, uint64_t hpa,
    const char *name)
{
	int id = 0;

	/* A freed MMIO object's slot (and id) is taken again, else a new one. */
	while (id < d->d_nobjs && (d->d_objs[id].o_live ||
	    !d->d_objs[id].o_mmio))
		id++;
	if (id == d->d_nobjs) {
		VERIFY(d->d_nobjs < MAX_OBJS);
		d->d_nobjs++;
	}
	dobj_t *o = &d->d_objs[id];

	o->o_vmo = vmo;
	o->o_mmio = mmio;
	o->o_live = true;
	o->o_held = !mmio;
	o->o_npages = len / PAGESIZE;
	o->o_name = name;
	if (mmio) {
		o->o_pfn0 = hpa >> PAGESHIFT;
	} else {
		o->o_pfn0 = vm_object_pfn(vmo, 0);
		/* The reservoir's pages are contiguous: check it. */
		if (vm_object_pfn(vmo, len - PAGESIZE) !=
		    o->o_pfn0 + o->o_npages - 1)
			fail(d, "object %s: its pages are not contiguous",
			    name);
	}
	return (id);
}

/* A RAM object of `npages` pages, with the driver's reference. */
static int
mem_obj(drv_t *d, size_t npages, const char *name)
{
	vm_object_t *vmo = vm_object_mem_allocate(npages * PAGESIZE, false);

	if (vmo == NULL)
		panic("consumer: vm_object_mem_allocate(%zu pages) failed",
		    npages);
	int id = obj_add(d, vmo, false, npages * PAGESIZE, 0, name);
	tr_printf(&d->d_tr, "object o%d %s: %zu pages\n", id, name, npages);
	return (id);
}

static bool
overlaps(uint64_t a, size_t alen, uint64_t b, size_t blen)
{
	return (a < b + blen && b < a + alen);
}

/* Whether [gpa, gpa + len) is free of live mappings. */
static bool
gpa_free(const drv_t *d, uint64_t gpa, size_t len)
{
	for (int i = 0; i < d->d_nmaps; i++) {
		const dmap_t *m = &d->d_maps[i];
		if (m->m_live && overlaps(gpa, len, m->m_gpa, m->m_len))
			return (false);
	}
	return (true);
}

static int
map_slot(drv_t *d)
{
	for (int i = 0; i < d->d_nmaps; i++) {
		if (!d->d_maps[i].m_live)
			return (i);
	}
	VERIFY(d->d_nmaps < MAX_MAPS);
	return (d->d_nmaps++);
}

/*
 * The generation and the resident count.  Threads make the generation
 * depend on the interleaving (each harvest advances it): the concurrent
 * scenario records the count only.
 */
static void
status(drv_t *d)
{
	if (d->d_sequential) {
		tr_printf(&d->d_tr, "  gen=%lu resident=%lu\n",
		    (ulong_t)vmspace_table_gen(d->d_vms),
		    (ulong_t)vmspace_resident_count(d->d_vms));
	} else {
		tr_printf(&d->d_tr, "  resident=%lu\n",
		    (ulong_t)vmspace_resident_count(d->d_vms));
	}
}

/*
 * Maps `len` bytes of RAM object `obj` at offset `off` to `gpa` as bhyve
 * maps a memory segment: a reference for the mapping, given back if the
 * map fails.  Returns vmspace_map()'s result.
 */
static int
map_mem(drv_t *d, int obj, uint64_t off, uint64_t gpa, size_t len,
    uint8_t prot, const char *name)
{
	dobj_t *o = &d->d_objs[obj];

	vm_object_reference(o->o_vmo);
	int err = vmspace_map(d->d_vms, o->o_vmo, off, gpa, len, prot);
	tr_printf(&d->d_tr, "map %s o%d+%#lx at %#lx +%#zx prot=%u -> %d\n",
	    name, obj, (ulong_t)off, (ulong_t)gpa, len, prot, err);
	if (err != 0) {
		vm_object_release(o->o_vmo);
		return (err);
	}
	dmap_t *m = &d->d_maps[map_slot(d)];
	*m = (dmap_t){ .m_obj = obj, .m_gpa = gpa, .m_len = len,
	    .m_off = off, .m_prot = prot, .m_live = true, .m_name = name };
	return (0);
}

/* An MMIO range as bhyve maps one: vmm_mmio_alloc(). */
static int
map_mmio(drv_t *d, uint64_t gpa, size_t len, uint64_t hpa, const char *name)
{
	vm_object_t *vmo = vmm_mmio_alloc(d->d_vms, gpa, len, hpa);

	tr_printf(&d->d_tr, "mmio %s at %#lx +%#zx -> %s\n", name,
	    (ulong_t)gpa, len, vmo == NULL ? "NULL" : "object");
	if (vmo == NULL)
		return (-1);
	int id = obj_add(d, vmo, true, len, hpa, name);
	dmap_t *m = &d->d_maps[map_slot(d)];
	*m = (dmap_t){ .m_obj = id, .m_gpa = gpa, .m_len = len, .m_off = 0,
	    .m_prot = PROT_READ | PROT_WRITE, .m_live = true, .m_name = name };
	tr_printf(&d->d_tr, "  object o%d\n", id);
	return (0);
}

/* ------------------------------------------------------------------ */
/* the tree, as the hardware sees it                                   */
/* ------------------------------------------------------------------ */

typedef struct run {
	bool		r_on;
	unsigned	r_first, r_last;
	uint64_t	r_flags;
	int		r_obj;
	uint64_t	r_pg;		/* the object page of r_last */
} run_t;

static void
run_flush(drv_t *d, run_t *r, const char *path)
{
	if (!r->r_on)
		return;
	const uint64_t first = r->r_pg - (r->r_last - r->r_first);
	tr_printf(&d->d_tr, "  L1 %s[%u..%u] f=%#lx o%d+%#lx\n", path,
	    r->r_first, r->r_last, (ulong_t)r->r_flags, r->r_obj,
	    (ulong_t)(first << PAGESHIFT));
	r->r_on = false;
}

static void
dump_table(drv_t *d, const uint64_t *table, int lvl, const char *path,
    uint64_t mask, uint64_t counts[4])
{
	run_t r = { .r_on = false };
	char sub[64];

	counts[lvl]++;
	for (unsigned i = 0; i < PTES; i++) {
		const uint64_t e = __atomic_load_n(&table[i], __ATOMIC_SEQ_CST);

		if (e == 0)
			continue;
		const uint64_t flags = e & ~PA_MASK & mask;
		if (!hw_present(d, e)) {
			run_flush(d, &r, path);
			tr_printf(&d->d_tr, "  L%d %s%u not present: %#lx\n",
			    4 - lvl, path, i, (ulong_t)(e & mask));
			continue;
		}
		if (lvl < 3) {
			(void) snprintf(sub, sizeof (sub), "%s%u.", path, i);
			tr_printf(&d->d_tr, "  L%d %s%u f=%#lx\n", 4 - lvl,
			    path, i, (ulong_t)flags);
			dump_table(d, hw_table(e & PA_MASK), lvl + 1, sub, mask,
			    counts);
			continue;
		}
		uint64_t pg;
		const int o = obj_of_pfn(d, (e & PA_MASK) >> PAGESHIFT, &pg);
		if (o < 0) {
			run_flush(d, &r, path);
			fail(d, "leaf %s%u maps a PFN of no object: %#lx", path,
			    i, (ulong_t)e);
			continue;
		}
		if (r.r_on && i == r.r_last + 1 && flags == r.r_flags &&
		    o == r.r_obj && pg == r.r_pg + 1) {
			r.r_last = i;
			r.r_pg = pg;
			continue;
		}
		run_flush(d, &r, path);
		r = (run_t){ .r_on = true, .r_first = i, .r_last = i,
		    .r_flags = flags, .r_obj = o, .r_pg = pg };
	}
	run_flush(d, &r, path);
}

/*
 * The whole tree from the root vmspace_table_root() names: every non-zero
 * entry with its level, index path and bits other than the address (those
 * in `mask`), leaves as runs of consecutive pages of one object.
 */
static void
dump_tree_masked(drv_t *d, const char *label, uint64_t mask)
{
	const uint64_t pmtp = vmspace_table_root(d->d_vms);
	uint64_t counts[4] = { 0 };

	tr_printf(&d->d_tr, "tree %s: root flags %#lx\n", label,
	    (ulong_t)(pmtp & ~PA_MASK));
	dump_table(d, hw_table(pmtp & PA_MASK), 0, "", mask, counts);
	tr_printf(&d->d_tr, "tree %s: tables %lu %lu %lu %lu\n", label,
	    (ulong_t)counts[0], (ulong_t)counts[1], (ulong_t)counts[2],
	    (ulong_t)counts[3]);
}

static void
dump_tree(drv_t *d, const char *label)
{
	dump_tree_masked(d, label, ~0ULL);
}

/* ------------------------------------------------------------------ */
/* clients                                                             */
/* ------------------------------------------------------------------ */

static void
inval_cb(void *arg, uintptr_t addr, size_t len)
{
	dclient_t *c = arg;

	c->c_invals++;
	if (c->c_drv->d_sequential) {
		tr_printf(&c->c_drv->d_tr, "  inval c%d %#lx +%#zx\n",
		    c->c_idx, (ulong_t)addr, len);
	}
}

static int
client_add(drv_t *d, vm_client_t *vmc, bool vcpu, int cpu)
{
	VERIFY(d->d_nclients < MAX_CLIENTS);
	int i = d->d_nclients++;
	dclient_t *c = &d->d_clients[i];

	*c = (dclient_t){ .c_vmc = vmc, .c_live = true, .c_vcpu = vcpu,
	    .c_cpu = cpu, .c_drv = d, .c_idx = i };
	tr_printf(&d->d_tr, "client c%d (%s)\n", i, vcpu ? "vcpu" : "device");
	return (i);
}

/* A live client, a vCPU's if `vcpu`, else any. */
static int
pick_client(drv_t *d, bool vcpu)
{
	for (int tries = 0; tries < 100; tries++) {
		int i = (int)rndn(&d->d_rng, (uint64_t)d->d_nclients);
		if (d->d_clients[i].c_live && (!vcpu || d->d_clients[i].c_vcpu))
			return (i);
	}
	for (int i = 0; i < d->d_nclients; i++) {
		if (d->d_clients[i].c_live && (!vcpu || d->d_clients[i].c_vcpu))
			return (i);
	}
	panic("consumer: no live client");
}

/* ------------------------------------------------------------------ */
/* guest addresses                                                     */
/* ------------------------------------------------------------------ */

/* A live mapping, RAM only if `ram` (-1 if none). */
static int
pick_map(drv_t *d, bool ram)
{
	int live[MAX_MAPS], n = 0;

	for (int i = 0; i < d->d_nmaps; i++) {
		const dmap_t *m = &d->d_maps[i];
		if (m->m_live && (!ram || !d->d_objs[m->m_obj].o_mmio))
			live[n++] = i;
	}
	return (n == 0 ? -1 : live[rndn(&d->d_rng, (uint64_t)n)]);
}

/* A page-aligned GPA: mostly mapped, sometimes near or between mappings. */
static uint64_t
pick_gpa(drv_t *d)
{
	const int mi = pick_map(d, false);
	const uint64_t r = rndn(&d->d_rng, 100);

	if (mi < 0 || r >= 92) {
		static const uint64_t far[] = { 3 * GIB + 512 * MIB,
		    64 * GIB, 1ULL << 45, 0x3ffffffff000ULL };
		return (far[rndn(&d->d_rng, 4)] +
		    rndn(&d->d_rng, 16) * PAGESIZE);
	}
	const dmap_t *m = &d->d_maps[mi];
	const uint64_t pages = m->m_len / PAGESIZE;
	if (r < 80)
		return (m->m_gpa + rndn(&d->d_rng, pages) * PAGESIZE);
	/* Just around the mapping. */
	uint64_t delta = rndr(&d->d_rng, 1, 40) * PAGESIZE;
	if (r < 86 && m->m_gpa >= delta)
		return (m->m_gpa - delta);
	return (m->m_gpa + m->m_len + delta - PAGESIZE);
}

static const char *
acc_name(int acc)
{
	switch (acc) {
	case PROT_READ:
		return ("R");
	case PROT_WRITE:
		return ("W");
	case PROT_EXEC:
		return ("X");
	default:
		return ("?");
	}
}

static const char *
prot_name(int prot, char *buf)
{
	buf[0] = (prot & PROT_READ) ? 'r' : '-';
	buf[1] = (prot & PROT_WRITE) ? 'w' : '-';
	buf[2] = (prot & PROT_EXEC) ? 'x' : '-';
	buf[3] = '\0';
	return (buf);
}

/* Word `word` of RAM page `pfn`; NULL for MMIO (memory not to touch). */
static uint64_t *
ram_word(drv_t *d, uint64_t pfn, unsigned word)
{
	uint64_t pg;
	int o = obj_of_pfn(d, pfn, &pg);

	if (o < 0 || d->d_objs[o].o_mmio)
		return (NULL);
	return ((uint64_t *)(void *)hat_kpm_pfn2va((pfn_t)pfn) + word);
}

/* ------------------------------------------------------------------ */
/* sequential operations                                               */
/* ------------------------------------------------------------------ */

/* A vCPU's guest access, faulting and retrying as bhyve's exit path does. */
static void
op_guest(drv_t *d, int ci, uint64_t gpa, int acc)
{
	dclient_t *c = &d->d_clients[ci];
	const unsigned word = (unsigned)rndn(&d->d_rng, PAGESIZE / 8);
	char name[48];

	for (int attempt = 0; attempt < 3; attempt++) {
		pfn_t pfn = 0;
		const uint64_t gen = vmc_table_enter(c->c_vmc);
		const uint64_t pmtp = vmspace_table_root(d->d_vms);
		const int r = hw_access(d, pmtp, gpa, acc, &pfn);

		if (r == 0) {
			uint64_t *p = ram_word(d, pfn, word);
			tr_printf(&d->d_tr, "guest c%d %s %#lx gen=%lu: %s",
			    ci, acc_name(acc), (ulong_t)gpa, (ulong_t)gen,
			    pfn_name(d, pfn, name, sizeof (name)));
			if (p != NULL && acc == PROT_WRITE) {
				__atomic_store_n(p, ++d->d_wval,
				    __ATOMIC_RELAXED);
				tr_printf(&d->d_tr, " wrote %#lx\n",
				    (ulong_t)d->d_wval);
			} else if (p != NULL) {
				tr_printf(&d->d_tr, " read %#lx\n", (ulong_t)
				    __atomic_load_n(p, __ATOMIC_RELAXED));
			} else {
				tr_printf(&d->d_tr, " (mmio)\n");
			}
			vmc_table_exit(c->c_vmc);
			return;
		}
		vmc_table_exit(c->c_vmc);
		const int err = vmc_fault(c->c_vmc, gpa, acc);
		tr_printf(&d->d_tr, "guest c%d %s %#lx gen=%lu: exit at L%d "
		    "(%s), vmc_fault -> %d\n", ci, acc_name(acc), (ulong_t)gpa,
		    (ulong_t)gen, r < 0 ? -r : r,
		    r < 0 ? "not permitted" : "not present", err);
		if (err != 0)
			return;
	}
	fail(d, "guest access %s %#lx still exits after vmc_fault succeeded",
	    acc_name(acc), (ulong_t)gpa);
}

static void
hold_push(drv_t *d, int ci, vm_page_t *vmp, uint64_t gpa, int prot)
{
	dclient_t *c = &d->d_clients[ci];
	uint64_t pg;

	if (c->c_nholds == MAX_HOLDS) {
		bool r = vmp_release(vmp);
		tr_printf(&d->d_tr, "  release (no room) -> %d\n", r);
		if (r)
			fail(d, "vmp_release() of a fresh hold says unmapped");
		return;
	}
	const int n = c->c_nholds++;
	c->c_hold_gpa[n] = gpa;
	c->c_holds[n] = vmp;
	c->c_hold_pfn[n] = vmp_get_pfn(vmp);
	c->c_hold_obj[n] = obj_of_pfn(d, c->c_hold_pfn[n], &pg);
	c->c_hold_prot[n] = prot;
	c->c_hold_unmapped[n] = false;
}

/* A page hold; uses the page as the flags allow.  Returns the page. */
static vm_page_t *
do_hold(drv_t *d, int ci, uint64_t gpa, int prot, int flags, bool ext)
{
	dclient_t *c = &d->d_clients[ci];
	char name[48], pn[4];
	vm_page_t *vmp = ext ? vmc_hold_ext(c->c_vmc, gpa, prot, flags) :
	    vmc_hold(c->c_vmc, gpa, prot);

	tr_printf(&d->d_tr, "hold%s c%d %#lx %s%s -> ", ext ? "_ext" : "",
	    ci, (ulong_t)gpa, prot_name(prot, pn),
	    (flags & VPF_DEFER_DIRTY) ? " defer" : "");
	if (BEYOND(gpa)) {
		d->d_beyond++;
		d->d_beyond_ok += vmp != NULL;
#ifdef CONSUMER_GPA_BOUNDED
		if (vmp != NULL) {
			fail(d, "a hold of %#lx, beyond the vmspace, succeeded",
			    (ulong_t)gpa);
		}
#endif
	}
	if (vmp == NULL) {
		tr_printf(&d->d_tr, "NULL\n");
		return (NULL);
	}
	const pfn_t pfn = vmp_get_pfn(vmp);
	tr_printf(&d->d_tr, "%s", pfn_name(d, pfn, name, sizeof (name)));
	const unsigned word = (unsigned)rndn(&d->d_rng, PAGESIZE / 8);
	uint64_t *p = ram_word(d, pfn, word);
	if (p != NULL && (prot & PROT_WRITE) != 0) {
		uint64_t *w = vmp_get_writable(vmp);
		if ((uint64_t *)w + word != p)
			fail(d, "vmp_get_writable() is not the page's memory");
		__atomic_store_n(p, ++d->d_wval, __ATOMIC_RELAXED);
		tr_printf(&d->d_tr, " wrote %#lx", (ulong_t)d->d_wval);
		if ((flags & VPF_DEFER_DIRTY) != 0 && chance(&d->d_rng, 50)) {
			vmp_mark_dirty(vmp);
			tr_printf(&d->d_tr, " marked dirty");
		}
	} else if (p != NULL && (prot & PROT_READ) != 0) {
		const uint64_t *r = vmp_get_readable(vmp);
		if ((const uint64_t *)r + word != p)
			fail(d, "vmp_get_readable() is not the page's memory");
		tr_printf(&d->d_tr, " read %#lx",
		    (ulong_t)__atomic_load_n(p, __ATOMIC_RELAXED));
	}
	tr_printf(&d->d_tr, "\n");
	return (vmp);
}

/*
 * Releases hold `hi` of client `ci`: vmp_release() must say whether its
 * mapping was unmapped while it was held.
 */
static void
release_one(drv_t *d, int ci, int hi)
{
	dclient_t *c = &d->d_clients[ci];
	vm_page_t *vmp = c->c_holds[hi];
	const uint64_t gpa = c->c_hold_gpa[hi];
	const bool unmapped = c->c_hold_unmapped[hi];
	const int last = c->c_nholds - 1;

	c->c_holds[hi] = c->c_holds[last];
	c->c_hold_gpa[hi] = c->c_hold_gpa[last];
	c->c_hold_pfn[hi] = c->c_hold_pfn[last];
	c->c_hold_obj[hi] = c->c_hold_obj[last];
	c->c_hold_prot[hi] = c->c_hold_prot[last];
	c->c_hold_unmapped[hi] = c->c_hold_unmapped[last];
	c->c_nholds--;
	const bool r = vmp_release(vmp);
	tr_printf(&d->d_tr, "release c%d %#lx -> %d\n", ci, (ulong_t)gpa, r);
	if (r != unmapped) {
		fail(d, "vmp_release() of %#lx says %s, but its mapping %s",
		    (ulong_t)gpa, r ? "unmapped" : "not unmapped",
		    unmapped ? "was unmapped" : "is still there");
	}
}

/*
 * Releases the holds beyond the vmspace (before an unmap): they alias
 * pages below, and vmc_space_unmap() does not see them (it compares the
 * GPA the hold was asked for with the range).
 */
static void
release_beyond(drv_t *d)
{
	for (int ci = 0; ci < d->d_nclients; ci++) {
		dclient_t *c = &d->d_clients[ci];
		for (int hi = c->c_nholds - 1; c->c_live && hi >= 0; hi--) {
			if (BEYOND(c->c_hold_gpa[hi]))
				release_one(d, ci, hi);
		}
	}
}

/* Releases every hold of client `ci`. */
static void
release_client(drv_t *d, int ci)
{
	while (d->d_clients[ci].c_nholds > 0)
		release_one(d, ci, d->d_clients[ci].c_nholds - 1);
}

/*
 * Reads or writes (as its protection allows) through hold `hi` of client
 * `ci`, which may have outlived its mapping, even the vmspace: it must
 * still reach the page it was taken on, of the object it was taken on.
 */
static void
use_hold(drv_t *d, int ci, int hi)
{
	dclient_t *c = &d->d_clients[ci];
	vm_page_t *vmp = c->c_holds[hi];
	const int prot = c->c_hold_prot[hi];
	const int obj = c->c_hold_obj[hi];
	const unsigned word = (unsigned)rndn(&d->d_rng, PAGESIZE / 8);

	tr_printf(&d->d_tr, "use c%d %#lx%s: ", ci, (ulong_t)c->c_hold_gpa[hi],
	    c->c_hold_unmapped[hi] ? " (unmapped)" : "");
	if (vmp_get_pfn(vmp) != c->c_hold_pfn[hi]) {
		fail(d, "the held page %#lx changed its PFN",
		    (ulong_t)c->c_hold_gpa[hi]);
	}
	if (obj < 0 || d->d_objs[obj].o_mmio) {
		tr_printf(&d->d_tr, "(mmio)\n");
		return;
	}
	uint64_t *p = (uint64_t *)(void *)hat_kpm_pfn2va(c->c_hold_pfn[hi]) +
	    word;
	if ((prot & PROT_WRITE) != 0) {
		uint64_t *w = vmp_get_writable(vmp);
		if (w + word != p)
			fail(d, "vmp_get_writable() is not the held page");
		__atomic_store_n(p, ++d->d_wval, __ATOMIC_RELAXED);
		tr_printf(&d->d_tr, "o%d wrote %#lx\n", obj, (ulong_t)d->d_wval);
	} else {
		const uint64_t *r = vmp_get_readable(vmp);
		if ((const uint64_t *)r + word != p)
			fail(d, "vmp_get_readable() is not the held page");
		tr_printf(&d->d_tr, "o%d read %#lx\n", obj,
		    (ulong_t)__atomic_load_n(p, __ATOMIC_RELAXED));
	}
}

/*
 * Unmaps [gpa, gpa + len) (a whole mapping) with the holds kept, except
 * those beyond the vmspace; the holds inside are then unmapped ones, and a
 * few of them are used.  Returns vmspace_unmap()'s result.
 */
static int
unmap_keeping_holds(drv_t *d, const dmap_t *m)
{
	int kept = 0, inside = 0;

	release_beyond(d);
	for (int ci = 0; ci < d->d_nclients; ci++)
		kept += d->d_clients[ci].c_live ? d->d_clients[ci].c_nholds : 0;
	const int err = vmspace_unmap(d->d_vms, m->m_gpa, m->m_len);
	tr_printf(&d->d_tr, "unmap %s %#lx +%#zx (%d holds kept) -> %d\n",
	    m->m_name, (ulong_t)m->m_gpa, m->m_len, kept, err);
	if (err != 0)
		return (err);
	for (int ci = 0; ci < d->d_nclients; ci++) {
		dclient_t *c = &d->d_clients[ci];
		for (int hi = 0; c->c_live && hi < c->c_nholds; hi++) {
			const uint64_t g = c->c_hold_gpa[hi];
			if (g >= m->m_gpa && g - m->m_gpa < m->m_len) {
				c->c_hold_unmapped[hi] = true;
				inside++;
			}
		}
	}
	tr_printf(&d->d_tr, "  %d of them in the range\n", inside);
	for (int k = 0; k < 3 && inside > 0; k++) {
		const int ci = pick_client(d, false);
		dclient_t *c = &d->d_clients[ci];
		if (c->c_nholds > 0)
			use_hold(d, ci, (int)rndn(&d->d_rng,
			    (uint64_t)c->c_nholds));
	}
	return (0);
}

static void
op_hold(drv_t *d)
{
	const int ci = pick_client(d, false);
	const uint64_t r = rndn(&d->d_rng, 100);
	static const int prots[] = { PROT_READ, PROT_WRITE,
	    PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC,
	    PROT_READ | PROT_WRITE | PROT_EXEC };
	uint64_t gpa = pick_gpa(d);
	const int prot = prots[rndn(&d->d_rng, 5)];

	if (r < 4) {
		/* Beyond the 48-bit space: the walk aliases (docs/checks.md). */
		gpa = (rndr(&d->d_rng, 1, 0xffff) << 48) | (gpa & PA_MASK);
	}
	if (r < 50) {
		const int flags = chance(&d->d_rng, 50) ? VPF_DEFER_DIRTY : 0;
		vm_page_t *vmp = do_hold(d, ci, gpa, prot, flags, true);
		if (vmp != NULL)
			hold_push(d, ci, vmp, gpa, prot);
	} else if (r < 85) {
		vm_page_t *vmp = do_hold(d, ci, gpa, prot, 0, false);
		if (vmp != NULL)
			hold_push(d, ci, vmp, gpa, prot);
	} else {
		/* A chain of holds, released together. */
		vm_page_t *chain[4];
		int n = 0;
		const int want = (int)rndr(&d->d_rng, 2, 4);
		for (int i = 0; i < want; i++) {
			vm_page_t *vmp = do_hold(d, ci, pick_gpa(d),
			    PROT_READ | PROT_WRITE, 0, false);
			if (vmp != NULL)
				chain[n++] = vmp;
		}
		if (n == 0)
			return;
		for (int i = 0; i + 1 < n; i++) {
			vmp_chain(chain[i], chain[i + 1]);
			if (vmp_next(chain[i]) != chain[i + 1])
				fail(d, "vmp_next() is not what vmp_chain() "
				    "stored");
		}
		if (vmp_next(chain[n - 1]) != NULL)
			fail(d, "the chain's last page has a next page");
		const bool rr = vmp_release_chain(chain[0]);
		tr_printf(&d->d_tr, "release_chain c%d (%d pages) -> %d\n", ci,
		    n, rr);
		if (rr)
			fail(d, "vmp_release_chain() of fresh holds says unmapped");
	}
}

static void
op_release(drv_t *d)
{
	const int ci = pick_client(d, false);
	dclient_t *c = &d->d_clients[ci];

	if (c->c_nholds == 0)
		return;
	const int hi = (int)rndn(&d->d_rng, (uint64_t)c->c_nholds);
	if (chance(&d->d_rng, 40))
		use_hold(d, ci, hi);
	else
		release_one(d, ci, hi);
}

static void
hexdump(drv_t *d, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char line[2 * 64 + 1];

	for (size_t i = 0; i < n; i += 64) {
		size_t k = n - i < 64 ? n - i : 64;
		for (size_t j = 0; j < k; j++) {
			line[2 * j] = hex[p[i + j] >> 4];
			line[2 * j + 1] = hex[p[i + j] & 15];
		}
		line[2 * k] = '\0';
		tr_printf(&d->d_tr, "    %s\n", line);
	}
}

/*
 * vmspace_bits_operate() over `npages` pages from `gpa`, the bitmap (when
 * there is one) between random guard bytes that must stay unchanged, as
 * must every bit of pages beyond the range and the whole bitmap without
 * VBO_FLAG_BITMAP_OUT.  Records the whole buffer.
 */
static void
do_bits(drv_t *d, uint64_t gpa, size_t npages, int oper, int flags,
    bool null_bitmap)
{
	static const char *const names[] = { "?", "RESET", "SET", "GET" };
	const size_t nbytes = (npages + 7) / 8;
	const size_t total = nbytes + 2 * GUARD;
	uint8_t *buf = malloc(total), *before = malloc(total);

	VERIFY(buf != NULL && before != NULL);
	for (size_t i = 0; i < total; i++)
		buf[i] = (uint8_t)rnd(&d->d_rng);
	(void) memcpy(before, buf, total);
	uint8_t *bitmap = (flags != 0 || !null_bitmap) ? buf + GUARD : NULL;

	vmspace_bits_operate(d->d_vms, gpa, npages * PAGESIZE,
	    (vmspace_bit_oper_t)(oper | flags), bitmap);
	tr_printf(&d->d_tr, "bits %s%s%s %#lx +%zu pages%s\n", names[oper],
	    (flags & VBO_FLAG_BITMAP_IN) ? " in" : "",
	    (flags & VBO_FLAG_BITMAP_OUT) ? " out" : "", (ulong_t)gpa, npages,
	    bitmap == NULL ? " (no bitmap)" : "");
	if (bitmap != NULL && total <= 2048) {
		hexdump(d, buf, total);
	} else if (bitmap != NULL) {
		/* A large one: what changed, and a digest of all of it. */
		uint64_t h = 0xcbf29ce484222325ULL, changed = 0;
		for (size_t i = 0; i < total; i++) {
			h = (h ^ buf[i]) * 0x100000001b3ULL;
			if (buf[i] != before[i] && changed++ < 256) {
				tr_printf(&d->d_tr, "    [%zu] %02x -> %02x\n",
				    i, before[i], buf[i]);
			}
		}
		tr_printf(&d->d_tr, "    %lu bytes changed, digest %016lx\n",
		    (ulong_t)changed, (ulong_t)h);
	}
	if (memcmp(buf, before, GUARD) != 0 ||
	    memcmp(buf + GUARD + nbytes, before + GUARD + nbytes, GUARD) != 0)
		fail(d, "vmspace_bits_operate wrote outside the bitmap");
	if ((flags & VBO_FLAG_BITMAP_OUT) == 0 && memcmp(buf, before,
	    total) != 0)
		fail(d, "vmspace_bits_operate wrote the bitmap without OUT");
	if (npages % 8 != 0) {
		const uint8_t beyond = (uint8_t)(0xff << (npages % 8));
		if (((buf[GUARD + nbytes - 1] ^ before[GUARD + nbytes - 1]) &
		    beyond) != 0)
			fail(d, "vmspace_bits_operate wrote bits of pages "
			    "beyond the range");
	}
	free(buf);
	free(before);
	status(d);
}

static void
op_bits(drv_t *d)
{
	static const int flag_sets[] = { 0, VBO_FLAG_BITMAP_IN,
	    VBO_FLAG_BITMAP_OUT, VBO_FLAG_BITMAP_IN | VBO_FLAG_BITMAP_OUT };
	const int oper = (int)rndr(&d->d_rng, VBO_RESET_DIRTY, VBO_GET_DIRTY);
	const int flags = flag_sets[rndn(&d->d_rng, 4)];
	const uint64_t r = rndn(&d->d_rng, 100);
	uint64_t gpa;
	size_t npages;

	if (r < 5) {
		/* Everything below 8 GiB: lowmem to highmem, the holes too. */
		gpa = 0;
		npages = (size_t)(8 * GIB / PAGESIZE);
	} else if (r < 10) {
		/* Far from everything: no table at all. */
		gpa = (1ULL << 44) + rndn(&d->d_rng, 1024) * PAGESIZE;
		npages = (size_t)rndr(&d->d_rng, 1, 4096);
	} else {
		const int mi = pick_map(d, false);
		if (mi < 0)
			return;
		const dmap_t *m = &d->d_maps[mi];
		const uint64_t pages = m->m_len / PAGESIZE;
		const uint64_t lead = rndn(&d->d_rng, 3) == 0 ?
		    rndn(&d->d_rng, 700) : 0;
		const uint64_t start = m->m_gpa / PAGESIZE > lead ?
		    m->m_gpa / PAGESIZE - lead : 0;
		gpa = (start + rndn(&d->d_rng, pages)) * PAGESIZE;
		if (chance(&d->d_rng, 30))
			gpa = start * PAGESIZE;
		npages = (size_t)rndr(&d->d_rng, 1,
		    chance(&d->d_rng, 20) ? 3000 : 300);
	}
	do_bits(d, gpa, npages, oper, flags, chance(&d->d_rng, 50));
}

static void
op_populate(drv_t *d)
{
	const int mi = pick_map(d, false);
	uint64_t gpa, len;

	if (mi < 0)
		return;
	const dmap_t *m = &d->d_maps[mi];
	const uint64_t pages = m->m_len / PAGESIZE;
	const uint64_t r = rndn(&d->d_rng, 100);
	if (r < 60) {
		gpa = m->m_gpa;
		len = m->m_len;
	} else if (r < 85) {
		const uint64_t first = rndn(&d->d_rng, pages);
		gpa = m->m_gpa + first * PAGESIZE;
		len = rndr(&d->d_rng, 1, pages - first) * PAGESIZE;
	} else {
		/* Not within one mapping. */
		gpa = m->m_gpa + m->m_len - PAGESIZE;
		len = rndr(&d->d_rng, 2, 64) * PAGESIZE;
	}
	const int err = vmspace_populate(d->d_vms, gpa, len);
	tr_printf(&d->d_tr, "populate %#lx +%#lx -> %d\n", (ulong_t)gpa,
	    (ulong_t)len, err);
	status(d);
}

static void
op_tracking(drv_t *d)
{
	const uint64_t r = rndn(&d->d_rng, 100);
	int err;

	if (r < 15) {
		/* Without hardware A/D support tracking cannot be enabled. */
		ktest_set_hw_ad_supported(false);
		err = vmspace_set_tracking(d->d_vms, true);
		ktest_set_hw_ad_supported(true);
		tr_printf(&d->d_tr, "tracking on without A/D -> %d", err);
	} else {
		const bool on = chance(&d->d_rng, 60);
		err = vmspace_set_tracking(d->d_vms, on);
		tr_printf(&d->d_tr, "tracking %s -> %d", on ? "on" : "off",
		    err);
	}
	tr_printf(&d->d_tr, " (now %d, root flags %#lx)\n",
	    vmspace_get_tracking(d->d_vms),
	    (ulong_t)(vmspace_table_root(d->d_vms) & ~PA_MASK));
	status(d);
}

/* A free place for `len` bytes, away from the current mappings. */
static uint64_t
free_gpa(drv_t *d, size_t len)
{
	for (int tries = 0; tries < 64; tries++) {
		uint64_t gpa;
		switch (rndn(&d->d_rng, 5)) {
		case 0:		/* below 3 GiB */
			gpa = rndr(&d->d_rng, 16, 700) * 4 * MIB +
			    rndn(&d->d_rng, 512) * PAGESIZE;
			break;
		case 1:		/* above the highmem */
			gpa = 8 * GIB + rndn(&d->d_rng, 1024) * 2 * MIB +
			    rndn(&d->d_rng, 512) * PAGESIZE;
			break;
		case 2:		/* the same leaf table as something else */
		{
			const int mi = pick_map(d, false);
			if (mi < 0)
				continue;
			const dmap_t *m = &d->d_maps[mi];
			gpa = m->m_gpa + m->m_len +
			    rndn(&d->d_rng, 8) * PAGESIZE;
			break;
		}
		case 3:		/* just below the top of the vmspace */
			gpa = (VM_MAXUSER_ADDRESS + 1 - len - PAGESIZE) -
			    rndn(&d->d_rng, 8) * PAGESIZE;
			break;
		default:	/* across a 1 GiB line */
			gpa = rndr(&d->d_rng, 10, 500) * GIB - len / 2;
			gpa &= PA_MASK;
			break;
		}
		if (gpa + len < VM_MAXUSER_ADDRESS && gpa_free(d, gpa, len))
			return (gpa);
	}
	return (UINT64_MAX);
}

/*
 * Unmaps one mapping (the holds kept) and maps it again, at the same place
 * or elsewhere.
 */
static void
op_remap(drv_t *d)
{
	const int mi = pick_map(d, false);
	char label[64];

	if (mi < 0)
		return;
	dmap_t old = d->d_maps[mi];
	dobj_t *o = &d->d_objs[old.m_obj];
	const int err = unmap_keeping_holds(d, &old);
	status(d);
	if (err != 0) {
		fail(d, "unmapping a mapping failed: %d", err);
		return;
	}
	d->d_maps[mi].m_live = false;
	if (o->o_mmio)
		o->o_live = false;	/* its mapping held the only reference */
	(void) snprintf(label, sizeof (label), "after unmapping %s",
	    old.m_name);
	dump_tree(d, label);

	const uint64_t gpa = chance(&d->d_rng, 40) ? old.m_gpa :
	    free_gpa(d, old.m_len);
	if (gpa == UINT64_MAX)
		return;
	if (o->o_mmio)
		(void) map_mmio(d, gpa, old.m_len, o->o_pfn0 << PAGESHIFT,
		    old.m_name);
	else
		(void) map_mem(d, old.m_obj, old.m_off, gpa, old.m_len,
		    old.m_prot, old.m_name);
	status(d);
}

/* The calls that must fail, and how. */
static void
op_errors(drv_t *d)
{
	const int mi = pick_map(d, true);
	int err;

	if (mi < 0)
		return;
	const dmap_t m = d->d_maps[mi];
	switch (rndn(&d->d_rng, 7)) {
	case 0:		/* over a live mapping */
		err = map_mem(d, m.m_obj, m.m_off, m.m_gpa + PAGESIZE *
		    rndn(&d->d_rng, m.m_len / PAGESIZE), PAGESIZE, m.m_prot,
		    "overlapping");
		break;
	case 1:		/* empty */
		err = map_mem(d, m.m_obj, 0, 100 * GIB, 0, m.m_prot, "empty");
		break;
	case 2:		/* past the end of the vmspace */
		err = map_mem(d, m.m_obj, 0, VM_MAXUSER_ADDRESS + 1 -
		    PAGESIZE, PAGESIZE, m.m_prot, "past the end");
		break;
	case 3:		/* past the end of the object */
		err = map_mem(d, m.m_obj, m.m_off + m.m_len, 100 * GIB,
		    d->d_objs[m.m_obj].o_npages * PAGESIZE, m.m_prot,
		    "past the object");
		break;
	case 4:		/* part of a mapping */
		err = vmspace_unmap(d->d_vms, m.m_gpa, m.m_len - PAGESIZE);
		tr_printf(&d->d_tr, "unmap part of %s -> %d\n", m.m_name, err);
		break;
	case 5:		/* where nothing is mapped */
		err = vmspace_unmap(d->d_vms, 200 * GIB, 4 * PAGESIZE);
		tr_printf(&d->d_tr, "unmap nothing -> %d\n", err);
		break;
	default:	/* object PFNs through the interface */
	{
		char name[48];
		const uint64_t off = rndn(&d->d_rng,
		    d->d_objs[m.m_obj].o_npages) * PAGESIZE +
		    rndn(&d->d_rng, PAGESIZE);
		const pfn_t pfn = vm_object_pfn(d->d_objs[m.m_obj].o_vmo,
		    off);
		tr_printf(&d->d_tr, "vm_object_pfn o%d %#lx -> %s\n", m.m_obj,
		    (ulong_t)off, pfn_name(d, pfn, name, sizeof (name)));
		err = 1;
		break;
	}
	}
	if (err == 0)
		fail(d, "a call that must fail succeeded");
	status(d);
}

static void
op_clients(drv_t *d)
{
	if (chance(&d->d_rng, 50) && d->d_nclients < MAX_CLIENTS) {
		const int from = pick_client(d, false);
		vm_client_t *vmc = vmc_clone(d->d_clients[from].c_vmc);
		tr_printf(&d->d_tr, "clone c%d -> ", from);
		const int ci = client_add(d, vmc, false, 0);
		if (chance(&d->d_rng, 50)) {
			const int err = vmc_set_inval_cb(vmc, inval_cb,
			    &d->d_clients[ci]);
			tr_printf(&d->d_tr, "  set_inval_cb c%d -> %d\n", ci,
			    err);
		}
		return;
	}
	/* Destroy a clone (never the first four clients). */
	for (int ci = d->d_nclients - 1; ci >= 4; ci--) {
		dclient_t *c = &d->d_clients[ci];
		if (!c->c_live)
			continue;
		release_client(d, ci);
		vmc_destroy(c->c_vmc);
		c->c_live = false;
		tr_printf(&d->d_tr, "destroy c%d\n", ci);
		return;
	}
}

/* ------------------------------------------------------------------ */
/* setup and teardown                                                  */
/* ------------------------------------------------------------------ */

/*
 * The guest: lowmem at 0, highmem at 4 GiB (sometimes ending one page into
 * a leaf table), a window of lowmem's object beside it, a RAM window
 * across the 512 GiB line, a bootrom below 4 GiB, MMIO at 3 GiB and at the
 * IOAPIC's address.  `scale` divides the sizes (the concurrent scenario's
 * guest is smaller).
 */
static void
setup_guest(drv_t *d, unsigned scale)
{
	uint64_t *s = &d->d_rng;
	const size_t low = (size_t)rndr(s, 256, 1536) / scale;
	size_t high = (size_t)rndr(s, 128, 1024) / scale;
	if (chance(s, 50))
		high = (high + 511) / 512 * 512 + 1;
	const size_t ext = (size_t)rndr(s, 64, 512);
	const size_t rom = (size_t)rndr(s, 16, 64);
	const size_t win = (size_t)rndr(s, 8, 64);

	const int olow = mem_obj(d, low, "lowmem");
	const int ohigh = mem_obj(d, high, "highmem");
	const int oext = mem_obj(d, ext, "ext");
	const int orom = mem_obj(d, rom, "bootrom");

	(void) map_mem(d, olow, 0, 0, low * PAGESIZE,
	    PROT_READ | PROT_WRITE | PROT_EXEC, "lowmem");
	(void) map_mem(d, ohigh, 0, 4 * GIB, high * PAGESIZE,
	    PROT_READ | PROT_WRITE | PROT_EXEC, "highmem");
	(void) map_mem(d, orom, 0, 4 * GIB - rom * PAGESIZE, rom * PAGESIZE,
	    PROT_READ | PROT_EXEC, "bootrom");
	if (d->d_sequential) {
		const uint64_t woff = rndn(s, low - win) * PAGESIZE;
		(void) map_mem(d, olow, woff, (low + rndr(s, 0, 40)) *
		    PAGESIZE, win * PAGESIZE, PROT_READ | PROT_WRITE,
		    "window");
		const uint64_t below = rndr(s, 1, ext - 1);
		(void) map_mem(d, oext, 0, 512 * GIB - below * PAGESIZE,
		    ext * PAGESIZE, PROT_READ | PROT_WRITE, "ext");
	}
	(void) map_mmio(d, 3 * GIB, rndr(s, 16, 256) * PAGESIZE,
	    MMIO_HPA_BASE, "mmio-bar");
	(void) map_mmio(d, 0xfec00000ULL, PAGESIZE, MMIO_HPA_BASE + 64 * GIB,
	    "ioapic");
	status(d);
}

/* Unmaps everything left, the holds kept (but those beyond the vmspace). */
static void
teardown_maps(drv_t *d)
{
	for (int i = 0; i < d->d_nmaps; i++) {
		dmap_t *m = &d->d_maps[i];
		if (!m->m_live)
			continue;
		const int err = unmap_keeping_holds(d, m);
		if (err != 0)
			fail(d, "unmapping %s failed: %d", m->m_name, err);
		status(d);
		m->m_live = false;
		if (d->d_objs[m->m_obj].o_mmio)
			d->d_objs[m->m_obj].o_live = false;
	}
	dump_tree(d, "with nothing mapped");
}

/*
 * Destroys the clients but the first device client (each releasing its
 * holds, which outlived their mappings), destroys the vmspace (which
 * orphans that client, its holds kept), uses the orphan, drops the
 * driver's object references (the orphan's holds keep their pages), uses
 * and releases the orphan's holds and destroys it.
 */
static void
teardown(drv_t *d, int orphan)
{
	for (int ci = 0; ci < d->d_nclients; ci++) {
		dclient_t *c = &d->d_clients[ci];
		if (!c->c_live || ci == orphan)
			continue;
		release_client(d, ci);
		vmc_destroy(c->c_vmc);
		c->c_live = false;
	}
	vmspace_destroy(d->d_vms);
	d->d_vms = NULL;
	tr_printf(&d->d_tr, "vmspace destroyed\n");

	vm_client_t *vmc = d->d_clients[orphan].c_vmc;
	vm_page_t *vmp = vmc_hold(vmc, 0, PROT_READ);
	tr_printf(&d->d_tr, "orphan: hold -> %s, fault -> %d, "
	    "set_inval_cb -> %d\n", vmp == NULL ? "NULL" : "page",
	    vmc_fault(vmc, 0, PROT_READ), vmc_set_inval_cb(vmc, NULL, NULL));
	if (vmp != NULL)
		(void) vmp_release(vmp);

	for (int i = 0; i < d->d_nobjs; i++) {
		dobj_t *o = &d->d_objs[i];
		if (o->o_held) {
			vm_object_release(o->o_vmo);
			o->o_held = false;
			o->o_live = false;
		}
	}
	tr_printf(&d->d_tr, "objects released; the orphan holds %d pages\n",
	    d->d_clients[orphan].c_nholds);
	for (int hi = 0; hi < d->d_clients[orphan].c_nholds; hi++)
		use_hold(d, orphan, hi);
	release_client(d, orphan);
	vmc_destroy(vmc);
	d->d_clients[orphan].c_live = false;
}

/*
 * Before the teardown: a few holds on each of the first four clients (the
 * vCPUs' and the device's), which the unmaps then keep.
 */
static void
hold_for_teardown(drv_t *d)
{
	for (int ci = 0; ci < 4 && ci < d->d_nclients; ci++) {
		const int n = (int)rndr(&d->d_rng, 2, 3);
		for (int k = 0; k < n; k++) {
			const int mi = pick_map(d, true);
			if (mi < 0)
				return;
			const dmap_t *m = &d->d_maps[mi];
			const uint64_t gpa = m->m_gpa + rndn(&d->d_rng,
			    m->m_len / PAGESIZE) * PAGESIZE;
			const int prot = m->m_prot & (PROT_READ | PROT_WRITE);
			vm_page_t *vmp = do_hold(d, ci, gpa, prot, 0, false);
			if (vmp == NULL)
				fail(d, "a hold of mapped %#lx failed",
				    (ulong_t)gpa);
			else
				hold_push(d, ci, vmp, gpa, prot);
		}
	}
}

/* ------------------------------------------------------------------ */
/* the sequential scenario                                             */
/* ------------------------------------------------------------------ */

static void
run_sequential(drv_t *d, uint32_t ops)
{
	setup_guest(d, 1);
	for (int i = 0; i < 3; i++) {
		const int ci = client_add(d, vmspace_client_alloc(d->d_vms),
		    true, i + 1);
		(void) ci;
	}
	const int dev = client_add(d, vmspace_client_alloc(d->d_vms), false,
	    0);
	tr_printf(&d->d_tr, "set_inval_cb c%d -> %d\n", dev,
	    vmc_set_inval_cb(d->d_clients[dev].c_vmc, inval_cb,
	    &d->d_clients[dev]));
	dump_tree(d, "mapped");

	/* Some mappings wired as bhyve wires them. */
	for (int i = 0; i < d->d_nmaps; i++) {
		const dmap_t *m = &d->d_maps[i];
		if (m->m_live && chance(&d->d_rng, 40)) {
			const int err = vmspace_populate(d->d_vms, m->m_gpa,
			    m->m_len);
			tr_printf(&d->d_tr, "populate %s -> %d\n", m->m_name,
			    err);
		}
	}
	status(d);
	dump_tree(d, "populated");

	for (uint32_t op = 0; op < ops; op++) {
		const uint64_t r = rndn(&d->d_rng, 1000);

		tr_printf(&d->d_tr, "#%u\n", op);
		if (r < 380) {
			static const int accs[] = { PROT_READ, PROT_WRITE,
			    PROT_WRITE, PROT_EXEC };
			op_guest(d, pick_client(d, true), pick_gpa(d),
			    accs[rndn(&d->d_rng, 4)]);
		} else if (r < 560) {
			op_hold(d);
		} else if (r < 660) {
			op_release(d);
		} else if (r < 800) {
			op_bits(d);
		} else if (r < 840) {
			op_populate(d);
		} else if (r < 880) {
			op_tracking(d);
		} else if (r < 905) {
			op_remap(d);
		} else if (r < 950) {
			op_errors(d);
		} else if (r < 975) {
			op_clients(d);
		} else {
			const int ci = pick_client(d, false);
			uint64_t gpa = pick_gpa(d) + rndn(&d->d_rng, PAGESIZE);
			if (chance(&d->d_rng, 10)) {
				/* Beyond the vmspace: an alias below 2^48. */
				gpa |= rndr(&d->d_rng, 1, 0xffff) << 48;
			}
			const int err = vmc_fault(d->d_clients[ci].c_vmc, gpa,
			    PROT_READ);
			tr_printf(&d->d_tr, "fault c%d %#lx -> %d\n", ci,
			    (ulong_t)gpa, err);
			if (BEYOND(gpa)) {
				d->d_beyond++;
				d->d_beyond_ok += err == 0;
#ifdef CONSUMER_GPA_BOUNDED
				if (err != FC_NOMAP) {
					fail(d, "a fault of %#lx, beyond the "
					    "vmspace, gave %d", (ulong_t)gpa,
					    err);
				}
#endif
			}
			status(d);
		}
		if ((op + 1) % 500 == 0) {
			char label[32];
			(void) snprintf(label, sizeof (label), "at #%u", op);
			dump_tree(d, label);
		}
	}
	dump_tree(d, "final");
	hold_for_teardown(d);
	teardown_maps(d);
	teardown(d, 3);
	tr_printf(&d->d_tr, "beyond the vmspace: %lu holds and faults, %lu "
	    "succeeded\n", (ulong_t)d->d_beyond, (ulong_t)d->d_beyond_ok);
}

/* ------------------------------------------------------------------ */
/* the concurrent scenario                                             */
/* ------------------------------------------------------------------ */

/*
 * Lets the other threads run (there are more threads than CPUs): a sleep
 * of a microsecond, with a timer slack of a nanosecond so that it is one.
 * Not sched_yield(): beside busy processes of the same priority a yield
 * puts the thread behind them for a whole time slice, milliseconds, and
 * the scenario, which yields some 10^4 times a run, then took 920 s where
 * it took 11 s idle.  A sleeper instead wakes within microseconds and, as
 * it used little CPU, preempts a busy process; idle, the sleep costs a few
 * microseconds more than a yield.
 */
static void
let_others_run(void)
{
	static __thread bool slack_set;
	const struct timespec ts = { 0, 1000 };

	if (!slack_set) {
		(void) prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
		slack_set = true;
	}
	(void) nanosleep(&ts, NULL);
}

/* The RAM the threads use: every writable RAM mapping, pages numbered. */
typedef struct ram {
	int		r_maps[MAX_MAPS];
	uint64_t	r_first[MAX_MAPS];	/* first page number */
	int		r_n;
	uint64_t	r_pages;
} ram_t;

typedef struct worker {
	drv_t		*w_drv;
	const ram_t	*w_ram;
	pthread_t	w_thread;
	int		w_client;
	bool		w_vcpu;
	uint64_t	w_rng;
	uint32_t	w_iters;
	uint8_t		*w_written;	/* bitmap over the RAM's pages */
	uint64_t	w_ok, w_prot, w_nomap, w_faults, w_poked;
	uint64_t	w_max_attempts;	/* the most one access needed */
	uint64_t	w_max_ns;	/* the longest one access took */
	uint32_t	*w_done;
} worker_t;

static void
bit_set(uint8_t *bm, uint64_t i)
{
	bm[i / 8] |= (uint8_t)(1 << (i % 8));
}

static bool
bit_get(const uint8_t *bm, uint64_t i)
{
	return ((bm[i / 8] >> (i % 8)) & 1);
}

/* The GPA of RAM page `i`. */
static uint64_t
ram_gpa(const drv_t *d, const ram_t *ram, uint64_t i)
{
	int k = ram->r_n - 1;

	while (ram->r_first[k] > i)
		k--;
	return (d->d_maps[ram->r_maps[k]].m_gpa +
	    (i - ram->r_first[k]) * PAGESIZE);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	VERIFY0(clock_gettime(CLOCK_MONOTONIC, &ts));
	return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}

/* A unique value for a thread's write. */
static uint64_t
wvalue(const worker_t *w, uint32_t i)
{
	return (((uint64_t)(w->w_client + 1) << 48) | ((uint64_t)i << 8) | 1);
}

static void *
vcpu_thread(void *arg)
{
	worker_t *w = arg;
	drv_t *d = w->w_drv;
	const dclient_t *c = &d->d_clients[w->w_client];
	const dmap_t *rom = NULL;
	bool in_guest = false;
	uint64_t pmtp = 0;

	consumer_set_cpu_id(c->c_cpu);
	for (int i = 0; i < d->d_nmaps; i++) {
		if (d->d_maps[i].m_live && d->d_maps[i].m_prot ==
		    (PROT_READ | PROT_EXEC))
			rom = &d->d_maps[i];
	}
	for (uint32_t it = 0; it < w->w_iters; it++) {
		const uint64_t r = rndn(&w->w_rng, 100);
		uint64_t gpa, page = UINT64_MAX;
		int acc;

		if (r < 85) {
			page = rndn(&w->w_rng, w->w_ram->r_pages);
			gpa = ram_gpa(d, w->w_ram, page);
			acc = r < 45 ? PROT_WRITE : (r < 78 ? PROT_READ :
			    PROT_EXEC);
		} else if (r < 95 && rom != NULL) {
			gpa = rom->m_gpa + rndn(&w->w_rng, rom->m_len /
			    PAGESIZE) * PAGESIZE;
			acc = r < 88 ? PROT_WRITE : PROT_READ;
		} else {
			gpa = 2 * GIB + rndn(&w->w_rng, 512) * PAGESIZE;
			acc = PROT_READ;
		}
		const unsigned word = (unsigned)rndn(&w->w_rng, PAGESIZE / 8);
		/*
		 * Each attempt ends in a completed access, a refusal, or an
		 * exit (a poke, a miss and a fault), after which it is tried
		 * again.  How many exits an access meets depends on how often
		 * harvests poke it, which depends on the scheduling: the bound
		 * on an access that never completes is one of wall-clock time,
		 * ACCESS_LIMIT_NS.
		 */
		const uint64_t t0 = now_ns();
		uint64_t attempt;
		for (attempt = 0; ; attempt++) {
			if (attempt > 1 && now_ns() - t0 > ACCESS_LIMIT_NS) {
				fail(d, "vCPU c%d: %s %#lx does not complete "
				    "in %llu s (%lu attempts)", w->w_client,
				    acc_name(acc), (ulong_t)gpa,
				    ACCESS_LIMIT_NS / 1000000000ULL,
				    (ulong_t)attempt);
				break;
			}
			if (!in_guest) {
				(void) vmc_table_enter(c->c_vmc);
				pmtp = vmspace_table_root(d->d_vms);
				in_guest = true;
			}
			if (consumer_take_poke()) {
				vmc_table_exit(c->c_vmc);
				in_guest = false;
				w->w_poked++;
				continue;
			}
			pfn_t pfn = 0;
			const int hr = hw_access(d, pmtp, gpa, acc, &pfn);
			if (hr == 0) {
				uint64_t *p = ram_word(d, pfn, word);
				if (p != NULL && acc == PROT_WRITE) {
					__atomic_store_n(p, wvalue(w, it),
					    __ATOMIC_RELAXED);
					bit_set(w->w_written, page);
				} else if (p != NULL) {
					(void) __atomic_load_n(p,
					    __ATOMIC_RELAXED);
				}
				w->w_ok++;
				break;
			}
			vmc_table_exit(c->c_vmc);
			in_guest = false;
			w->w_faults++;
			const int err = vmc_fault(c->c_vmc, gpa, acc);
			if (err == FC_PROT) {
				w->w_prot++;
				break;
			} else if (err == FC_NOMAP) {
				w->w_nomap++;
				break;
			} else if (err != 0) {
				fail(d, "vmc_fault -> %d", err);
				break;
			}
		}
		if (attempt + 1 > w->w_max_attempts)
			w->w_max_attempts = attempt + 1;
		const uint64_t took = now_ns() - t0;
		if (took > w->w_max_ns)
			w->w_max_ns = took;
		/*
		 * Let the others run (there are more threads than CPUs): now
		 * and then after an exit of its own (an I/O port, say), more
		 * often in guest mode, as if on another CPU meanwhile, where
		 * harvests find it and poke it.
		 */
		const uint64_t y = rndn(&w->w_rng, 64);
		if (in_guest && y == 0) {
			vmc_table_exit(c->c_vmc);
			in_guest = false;
			let_others_run();
		} else if (y < 5) {
			let_others_run();
		}
	}
	if (in_guest)
		vmc_table_exit(c->c_vmc);
	__atomic_add_fetch(w->w_done, 1, __ATOMIC_SEQ_CST);
	return (NULL);
}

static void *
device_thread(void *arg)
{
	worker_t *w = arg;
	drv_t *d = w->w_drv;
	const dclient_t *c = &d->d_clients[w->w_client];

	consumer_set_cpu_id(c->c_cpu);
	for (uint32_t it = 0; it < w->w_iters; it++) {
		vm_page_t *chain[3];
		const int n = rndn(&w->w_rng, 8) == 0 ? 3 : 1;

		for (int k = 0; k < n; k++) {
			const uint64_t page = rndn(&w->w_rng,
			    w->w_ram->r_pages);
			const uint64_t gpa = ram_gpa(d, w->w_ram, page);
			const bool write = rndn(&w->w_rng, 10) < 7;
			const bool defer = write && rndn(&w->w_rng, 2) == 0;
			const unsigned word = (unsigned)rndn(&w->w_rng,
			    PAGESIZE / 8);
			vm_page_t *vmp = vmc_hold_ext(c->c_vmc, gpa,
			    write ? PROT_READ | PROT_WRITE : PROT_READ,
			    defer ? VPF_DEFER_DIRTY : 0);

			if (vmp == NULL) {
				fail(d, "device c%d: hold of RAM %#lx failed",
				    w->w_client, (ulong_t)gpa);
				chain[k] = NULL;
				continue;
			}
			if (write) {
				uint64_t *p = vmp_get_writable(vmp);
				__atomic_store_n(p + word, wvalue(w, it),
				    __ATOMIC_RELAXED);
				bit_set(w->w_written, page);
				if (defer)
					vmp_mark_dirty(vmp);
			} else {
				const uint64_t *p = vmp_get_readable(vmp);
				(void) __atomic_load_n(p + word,
				    __ATOMIC_RELAXED);
			}
			w->w_ok++;
			chain[k] = vmp;
		}
		if (n == 1) {
			if (chain[0] != NULL)
				(void) vmp_release(chain[0]);
		} else {
			vm_page_t *head = NULL;
			for (int k = n - 1; k >= 0; k--) {
				if (chain[k] == NULL)
					continue;
				if (head != NULL)
					vmp_chain(chain[k], head);
				head = chain[k];
			}
			if (head != NULL)
				(void) vmp_release_chain(head);
		}
		let_others_run();
	}
	__atomic_add_fetch(w->w_done, 1, __ATOMIC_SEQ_CST);
	return (NULL);
}

/* The RAM mappings' pages, as consecutive numbers. */
static void
ram_init(drv_t *d, ram_t *ram)
{
	*ram = (ram_t){ .r_n = 0 };
	for (int i = 0; i < d->d_nmaps; i++) {
		const dmap_t *m = &d->d_maps[i];
		if (!m->m_live || d->d_objs[m->m_obj].o_mmio ||
		    (m->m_prot & PROT_WRITE) == 0)
			continue;
		ram->r_maps[ram->r_n] = i;
		ram->r_first[ram->r_n++] = ram->r_pages;
		ram->r_pages += m->m_len / PAGESIZE;
	}
	VERIFY(ram->r_n > 0);
}

/*
 * One harvest of the RAM: VBO_RESET_DIRTY (or, with `get`, VBO_GET_DIRTY)
 * with VBO_FLAG_BITMAP_OUT over each RAM mapping; the pages found dirty go
 * into `found` and, when `shadow` is given, are copied there.
 */
static void
harvest(drv_t *d, const ram_t *ram, bool get, uint8_t *found,
    uint64_t *shadow)
{
	for (int k = 0; k < ram->r_n; k++) {
		const dmap_t *m = &d->d_maps[ram->r_maps[k]];
		const uint64_t pages = m->m_len / PAGESIZE;
		uint8_t *bm = calloc((pages + 7) / 8, 1);

		VERIFY(bm != NULL);
		vmspace_bits_operate(d->d_vms, m->m_gpa, m->m_len,
		    (vmspace_bit_oper_t)((get ? VBO_GET_DIRTY : VBO_RESET_DIRTY)
		    | VBO_FLAG_BITMAP_OUT), bm);
		for (uint64_t p = 0; p < pages; p++) {
			if (!bit_get(bm, p))
				continue;
			const uint64_t i = ram->r_first[k] + p;
			bit_set(found, i);
			if (shadow == NULL)
				continue;
			pfn_t pfn = vm_object_pfn(d->d_objs[m->m_obj].o_vmo,
			    m->m_off + p * PAGESIZE);
			const uint64_t *src = (const uint64_t *)(void *)
			    hat_kpm_pfn2va(pfn);
			for (unsigned w = 0; w < PAGESIZE / 8; w++) {
				shadow[i * (PAGESIZE / 8) + w] =
				    __atomic_load_n(&src[w], __ATOMIC_RELAXED);
			}
		}
		free(bm);
	}
}

/* A copy of every RAM page's memory into `shadow`. */
static void
copy_ram(drv_t *d, const ram_t *ram, uint64_t *shadow, bool compare)
{
	uint64_t mismatched = 0;

	for (uint64_t i = 0; i < ram->r_pages; i++) {
		int k = ram->r_n - 1;
		while (ram->r_first[k] > i)
			k--;
		const dmap_t *m = &d->d_maps[ram->r_maps[k]];
		const pfn_t pfn = vm_object_pfn(d->d_objs[m->m_obj].o_vmo,
		    m->m_off + (i - ram->r_first[k]) * PAGESIZE);
		const uint64_t *src = (const uint64_t *)(void *)
		    hat_kpm_pfn2va(pfn);
		uint64_t *dst = &shadow[i * (PAGESIZE / 8)];
		if (compare) {
			if (memcmp(dst, src, PAGESIZE) != 0 &&
			    mismatched++ < 4) {
				fail(d, "page %#lx: its last harvested copy is "
				    "stale (a lost dirty page)",
				    (ulong_t)ram_gpa(d, ram, i));
			}
		} else {
			(void) memcpy(dst, src, PAGESIZE);
		}
	}
}

/* vmspace_populate() of every RAM mapping. */
static void
populate_ram(drv_t *d, const ram_t *ram)
{
	for (int k = 0; k < ram->r_n; k++) {
		const dmap_t *m = &d->d_maps[ram->r_maps[k]];
		const int err = vmspace_populate(d->d_vms, m->m_gpa, m->m_len);
		if (err != 0)
			fail(d, "populate -> %d", err);
	}
}

/*
 * One phase of threads.  `toggle`: the harvester also switches tracking
 * off and on, so only "harvested implies written" holds; otherwise
 * tracking stays on and harvested must equal written, and the memory the
 * harvests copied must equal memory.
 */
static void
run_phase(drv_t *d, const ram_t *ram, const uint32_t iters, int vcpus,
    int devices, bool toggle, const char *label)
{
	const size_t bmlen = (ram->r_pages + 7) / 8;
	const int nw = vcpus + devices;
	worker_t *ws = calloc((size_t)nw, sizeof (worker_t));
	uint8_t *harvested = calloc(bmlen, 1), *got = calloc(bmlen, 1);
	uint8_t *written = calloc(bmlen, 1);
	uint64_t *shadow = toggle ? NULL :
	    malloc(ram->r_pages * PAGESIZE);
	uint32_t done = 0;

	VERIFY(ws != NULL && harvested != NULL && got != NULL &&
	    written != NULL && (toggle || shadow != NULL));

	/* From a clean start: nothing dirty, the shadow equal to memory. */
	harvest(d, ram, false, harvested, NULL);
	(void) memset(harvested, 0, bmlen);
	if (shadow != NULL)
		copy_ram(d, ram, shadow, false);

	for (int i = 0; i < nw; i++) {
		worker_t *w = &ws[i];
		w->w_drv = d;
		w->w_ram = ram;
		w->w_vcpu = i < vcpus;
		w->w_client = i < vcpus ? i : vcpus + (i - vcpus);
		w->w_rng = splitmix64(&d->d_rng) | 1;
		w->w_iters = w->w_vcpu ? iters : iters / 4 + 1;
		w->w_written = calloc(bmlen, 1);
		w->w_done = &done;
		VERIFY(w->w_written != NULL);
	}
	for (int i = 0; i < nw; i++) {
		VERIFY0(pthread_create(&ws[i].w_thread, NULL, ws[i].w_vcpu ?
		    vcpu_thread : device_thread, &ws[i]));
	}

	/*
	 * The harvester (this thread), with a generator of its own: how many
	 * rounds it makes depends on the interleaving.
	 */
	uint64_t hrng = splitmix64(&d->d_rng) | 1;
	uint64_t rounds = 0, populates = 0;
	bool tracking = true;
	while (__atomic_load_n(&done, __ATOMIC_SEQ_CST) < (uint32_t)nw) {
		const uint64_t r = rnd(&hrng) % 16;
		rounds++;
		if (r < 10) {
			harvest(d, ram, false, harvested, shadow);
		} else if (r < 13) {
			harvest(d, ram, true, got, NULL);
		} else if (r < 14) {
			populate_ram(d, ram);
			populates++;
		} else if (toggle) {
			tracking = !tracking;
			const int err = vmspace_set_tracking(d->d_vms,
			    tracking);
			if (err != 0)
				fail(d, "set_tracking -> %d", err);
		}
		let_others_run();
	}
	for (int i = 0; i < nw; i++)
		VERIFY0(pthread_join(ws[i].w_thread, NULL));
	/*
	 * The resident count below is compared: whether the RAM was populated
	 * must not depend on how many rounds the harvester made.
	 */
	if (populates == 0)
		populate_ram(d, ram);
	if (!tracking && vmspace_set_tracking(d->d_vms, true) != 0)
		fail(d, "set_tracking on failed");
	harvest(d, ram, false, harvested, shadow);

	/* What every interleaving must give. */
	uint64_t nwritten = 0, lost = 0, invented = 0, phantom = 0;
	for (int i = 0; i < nw; i++) {
		for (size_t b = 0; b < bmlen; b++)
			written[b] |= ws[i].w_written[b];
	}
	for (uint64_t i = 0; i < ram->r_pages; i++) {
		const bool wr = bit_get(written, i);
		nwritten += wr;
		if (wr && !bit_get(harvested, i) && !toggle && lost++ < 4)
			fail(d, "%s: page %#lx written but never harvested",
			    label, (ulong_t)ram_gpa(d, ram, i));
		if (!wr && bit_get(harvested, i) && invented++ < 4)
			fail(d, "%s: page %#lx harvested dirty but never "
			    "written", label, (ulong_t)ram_gpa(d, ram, i));
		if (!wr && bit_get(got, i) && phantom++ < 4)
			fail(d, "%s: page %#lx reported dirty (GET) but never "
			    "written", label, (ulong_t)ram_gpa(d, ram, i));
	}
	if (shadow != NULL)
		copy_ram(d, ram, shadow, true);

	/* What the interleaving cannot change. */
	tr_printf(&d->d_tr, "%s: %lu pages written\n", label,
	    (ulong_t)nwritten);
	for (int i = 0; i < nw; i++) {
		const worker_t *w = &ws[i];
		tr_printf(&d->d_tr, "  %s c%d: %lu done, %lu refused, "
		    "%lu unmapped\n", w->w_vcpu ? "vcpu" : "device",
		    w->w_client, (ulong_t)w->w_ok, (ulong_t)w->w_prot,
		    (ulong_t)w->w_nomap);
		free(w->w_written);
	}
	tr_printf(&d->d_tr, "  resident=%lu\n",
	    (ulong_t)vmspace_resident_count(d->d_vms));
	/* Not compared: they depend on the interleaving. */
	uint64_t faults = 0, poked = 0, attempts = 0, ns = 0;
	for (int i = 0; i < nw; i++) {
		faults += ws[i].w_faults;
		poked += ws[i].w_poked;
		if (ws[i].w_max_attempts > attempts)
			attempts = ws[i].w_max_attempts;
		if (ws[i].w_max_ns > ns)
			ns = ws[i].w_max_ns;
	}
	tr_printf(&d->d_tr, "~ %s: %lu harvest rounds (%lu populating), %lu "
	    "faults, %lu exits on a poke, %lu pokes; an access took at most "
	    "%lu attempts, %lu us\n", label, (ulong_t)rounds,
	    (ulong_t)populates, (ulong_t)faults, (ulong_t)poked,
	    (ulong_t)consumer_pokes_sent(), (ulong_t)attempts,
	    (ulong_t)(ns / 1000));
	free(ws);
	free(harvested);
	free(got);
	free(written);
	free(shadow);
}

static void
run_concurrent(drv_t *d, uint32_t iters, int vcpus, int devices)
{
	ram_t ram;

	VERIFY(vcpus >= 1 && devices >= 1);
	VERIFY(vcpus + devices + 1 <= MAX_CLIENTS);
	VERIFY(vcpus + devices + 1 < CONSUMER_MAX_CPUS);
	setup_guest(d, 2);
	for (int i = 0; i < vcpus; i++)
		(void) client_add(d, vmspace_client_alloc(d->d_vms), true,
		    i + 1);
	for (int i = 0; i < devices; i++)
		(void) client_add(d, vmspace_client_alloc(d->d_vms), false,
		    vcpus + 1 + i);
	/* Only lowmem wired: highmem is faulted in. */
	const int err = vmspace_populate(d->d_vms, d->d_maps[0].m_gpa,
	    d->d_maps[0].m_len);
	tr_printf(&d->d_tr, "populate lowmem -> %d\n", err);
	status(d);
	tr_printf(&d->d_tr, "tracking on -> %d\n",
	    vmspace_set_tracking(d->d_vms, true));
	ram_init(d, &ram);
	dump_tree(d, "before the threads");

	run_phase(d, &ram, iters, vcpus, devices, false, "phase 1");
	dump_tree(d, "after phase 1");
	run_phase(d, &ram, iters, vcpus, devices, true, "phase 2");
	/* Which pages have A set depends on when tracking was on. */
	dump_tree_masked(d, "after phase 2 (A/D bits left out)",
	    ~(hw_bit_a(d) | hw_bit_d(d)));

	teardown_maps(d);
	teardown(d, vcpus);
}

/* ------------------------------------------------------------------ */
/* the entry point                                                     */
/* ------------------------------------------------------------------ */

int
consumer_run(const consumer_args_t *args, char **outp, size_t *lenp)
{
	kmem_stats_t before, after;
	drv_t *d = calloc(1, sizeof (*d));

	VERIFY(d != NULL);
	VERIFY3U(args->ca_size, ==, sizeof (*args));
	VERIFY(args->ca_format == CONSUMER_EPT ||
	    args->ca_format == CONSUMER_RVI);
	d->d_tr.t_cap = 1 << 16;
	d->d_tr.t_buf = malloc(d->d_tr.t_cap);
	VERIFY(d->d_tr.t_buf != NULL);
	d->d_tr.t_buf[0] = '\0';
	d->d_format = (int)args->ca_format;
	d->d_sequential = args->ca_mode == CONSUMER_SEQUENTIAL;
	d->d_rng = args->ca_seed;
	(void) splitmix64(&d->d_rng);
	d->d_rng = splitmix64(&d->d_rng) | 1;
	VERIFY0(pthread_mutex_init(&d->d_fail_lock, NULL));

	tr_printf(&d->d_tr, "consumer %s %s seed %lu ops %u\n",
	    d->d_format == CONSUMER_EPT ? "ept" : "rvi",
	    d->d_sequential ? "sequential" : "concurrent",
	    (ulong_t)args->ca_seed, args->ca_ops);
	consumer_set_cpu_id(0);
	consumer_set_vendor(d->d_format);
	ktest_set_hw_ad_supported(true);
	ktest_kmem_stats(&before);

	const bool ok = vmm_vm_init();
	tr_printf(&d->d_tr, "vmm_vm_init -> %d\n", ok);
	if (!ok)
		panic("consumer: vmm_vm_init() failed");
	d->d_vms = vmspace_alloc(VM_MAXUSER_ADDRESS);
	dump_tree(d, "empty");

	if (d->d_sequential)
		run_sequential(d, args->ca_ops);
	else
		run_concurrent(d, args->ca_ops, (int)args->ca_vcpus,
		    (int)args->ca_devices);

	vmm_vm_fini();
	ktest_kmem_stats(&after);
	if (after.ks_live_allocs != before.ks_live_allocs ||
	    after.ks_live_bytes != before.ks_live_bytes) {
		fail(d, "kernel memory not back where it started: %ld "
		    "allocations, %ld bytes more",
		    (long)(after.ks_live_allocs - before.ks_live_allocs),
		    (long)(after.ks_live_bytes - before.ks_live_bytes));
	} else {
		tr_printf(&d->d_tr, "kernel memory back where it started\n");
	}
	tr_printf(&d->d_tr, "end\n");

	const int result = d->d_fails == 0 ? CONSUMER_OK :
	    CONSUMER_CHECK_FAILED;
	*outp = d->d_tr.t_buf;
	*lenp = d->d_tr.t_len;
	(void) pthread_mutex_destroy(&d->d_fail_lock);
	free(d);
	return (result);
}
