/*
 * Hostile inputs: what user space and guests can hand the calls they reach
 * (illumos vmm_vm.c; docs/consumer.md), and the degenerate
 * populates and vacates, checked against what the non-DEBUG original, the
 * build production illumos runs, does with them.  A non-DEBUG build must
 * return exactly what it returns and leave the same tables and entries; a
 * DEBUG build panics where the DEBUG original's ASSERTs do (here only the
 * wrapping iterations: ASSERT3U(addr + len >= addr) in vmm_gpt_iter_init()).
 * These tests run linked with both originals too, so every expectation
 * below is the original's, measured.
 *
 * - VM_TRACK_DIRTY_PAGES hands the iterator a page-aligned [start,
 *   start + len) from user space, with 0 < len <= 1 GiB but no check that
 *   it does not wrap past 2^64; it queries and resets dirty bits over it.
 * - A guest's fault GPA reaches vmm_gpt_walk() (and the ABI's
 *   vmm_gpt_unmap()): any page-aligned 64-bit value.
 * - The original takes the table indices of an address mod 2^48 (bits 12
 *   to 47): a GPA at or beyond 2^48 walks to the entries of its alias below
 *   2^48, and an iteration from there yields those entries under the
 *   unaliased GPAs.  An iteration ends after the last entry (index 511 at
 *   every level), so it never runs on from the top of one alias into the
 *   next.  A wrapping range ends below its start: the iteration starts at
 *   or below the start, so it yields nothing.
 */

#include <stdio.h>

#include "tutil.h"

#define	P_DIRTY_ON	true

/* 2^63, and the 64-bit space's last 2 MiB and last page. */
#define	P_HALF		0x8000000000000000ULL
#define	P_TOP64_2M	0xffffffffffe00000ULL
#define	P_TOP64_PAGE	0xfffffffffffff000ULL

/*
 * The fixture: two regions, [0, 4 MiB) (two leaf tables) and the last
 * 2 MiB below 2^48 (index 511 at every level), and five mapped pages, each
 * with its dirty bit set.
 */
static const uint64_t fx_pages[] = {
	0, TU_PAGE, TU_2M, 2 * TU_2M - TU_PAGE, TU_TOP - TU_PAGE
};
#define	FX_NPAGES	(sizeof (fx_pages) / sizeof (fx_pages[0]))

typedef struct fixture {
	vmm_gpt_t	*fx_gpt;
	vmm_gpt_entry_t	*fx_ptep[FX_NPAGES];	/* the pages' leaf entries */
	vmm_gpt_entry_t	fx_pte[FX_NPAGES];	/* their values after setup */
} fixture_t;

static void
fx_setup(const vmm_pte_impl_t *impl, fixture_t *fx)
{
	fx->fx_gpt = vmm_gpt_alloc();
	vmm_gpt_populate_region(fx->fx_gpt, 0, 2 * TU_2M);
	vmm_gpt_populate_region(fx->fx_gpt, TU_TOP - TU_2M, TU_2M);
	for (size_t i = 0; i < FX_NPAGES; i++) {
		vmm_gpt_entry_t *ptep = tu_leaf(fx->fx_gpt, fx_pages[i]);

		VT_CHECK(vmm_gpt_map_at(fx->fx_gpt, ptep,
		    TU_PFN_FOR(fx_pages[i]), TU_PROT_RWX, KTEST_MTRR_WB));
		VT_CHECK(!vmm_gpte_reset_dirty(ptep, P_DIRTY_ON));
		fx->fx_ptep[i] = ptep;
		fx->fx_pte[i] = *ptep;
		VT_CHECK_NE(*ptep & impl->vpi_bit_dirty, 0);
	}
	TU_CHECK_TABLES(impl, fx->fx_gpt, 0, 2, 2, 3);
}

static void
fx_teardown(fixture_t *fx, uint64_t mapped)
{
	VT_CHECK_EQ(vmm_gpt_unmap_region(fx->fx_gpt, 0, 2 * TU_2M) +
	    vmm_gpt_unmap_region(fx->fx_gpt, TU_TOP - TU_2M, TU_2M), mapped);
	vmm_gpt_vacate_region(fx->fx_gpt, 0, 2 * TU_2M);
	vmm_gpt_vacate_region(fx->fx_gpt, TU_TOP - TU_2M, TU_2M);
	vmm_gpt_free(fx->fx_gpt);
}

/* The GPA below 2^48 whose entries `gpa` walks to. */
static uint64_t
alias_of(uint64_t gpa)
{
	return (gpa & (TU_TOP - 1));
}

/*
 * Hostile ranges over the fixture, and what the original's iteration
 * yields for each: it_n entries, the i-th with GPA it_first + i pages and
 * the leaf entry of GPA it_alias + i pages.
 */
typedef struct range_case {
	uint64_t	rc_addr;
	uint64_t	rc_len;
	uint64_t	rc_n;
	uint64_t	rc_first;
	uint64_t	rc_alias;
	const char	*rc_what;
} range_case_t;

static const range_case_t ranges[] = {
	/* Wrapping past 2^64, or ending exactly at it: nothing. */
	{ P_TOP64_PAGE, 0x2000, 0, 0, 0, "wraps to 4 KiB" },
	{ P_TOP64_2M, TU_2M, 0, 0, 0, "ends at 2^64 (wraps to 0)" },
	{ P_TOP64_PAGE, TU_PAGE, 0, 0, 0, "the last page: ends at 2^64" },
	{ P_TOP64_2M, 2 * TU_2M, 0, 0, 0, "wraps to 2 MiB" },
	{ 0x2000, P_TOP64_PAGE, 0, 0, 0, "from a populated page, wraps to "
	    "4 KiB" },
	/* The walk stops at LEVEL3, at 1 GiB, below the wrapped end. */
	{ TU_1G + 0x2000, P_TOP64_PAGE, 0, 0, 0, "from a hole, wraps to "
	    "1 GiB + 4 KiB" },
	{ P_HALF, P_HALF + TU_PAGE, 0, 0, 0, "from 2^63, wraps to 4 KiB" },
	{ P_HALF, P_HALF, 0, 0, 0, "from 2^63, ends at 2^64" },
	/* At or beyond 2^48: the alias's entries. */
	{ TU_TOP, 2 * TU_2M, 1024, TU_TOP, 0, "at 2^48: [0, 4 MiB)" },
	{ TU_TOP + TU_PAGE, TU_PAGE, 1, TU_TOP + TU_PAGE, TU_PAGE,
	    "one page at 2^48 + 4 KiB" },
	{ P_HALF, TU_2M, 512, P_HALF, 0, "at 2^63: [0, 2 MiB)" },
	{ 2 * TU_TOP - TU_2M, 2 * TU_2M, 512, 2 * TU_TOP - TU_2M,
	    TU_TOP - TU_2M, "the top leaf table's alias, then stops" },
	{ 0xffffffffffc00000ULL, 0x3ff000, 511, P_TOP64_2M, TU_TOP - TU_2M,
	    "below 2^64: the top leaf table's alias but its last page" },
	{ TU_TOP - TU_2M, 2 * TU_2M, 512, TU_TOP - TU_2M, TU_TOP - TU_2M,
	    "straddles 2^48: stops after the top leaf table" },
	/* Past every populated region. */
	{ 8 * TU_1G, TU_1G, 0, 0, 0, "no LEVEL2 table" },
	{ 2 * TU_512G, TU_1G, 0, 0, 0, "no LEVEL3 table" },
	{ TU_TOP - 2 * TU_2M, TU_2M, 0, 0, 0, "no leaf table" },
	{ 2 * TU_2M, TU_TOP - 3 * TU_2M, 0, 0, 0, "between the regions" },
	{ TU_TOP + 8 * TU_1G, TU_1G, 0, 0, 0, "no LEVEL2 table, aliased" },
	/* Zero length. */
	{ TU_PAGE, 0, 0, 0, 0, "empty, at a mapped page" },
	{ 0, 0, 0, 0, 0, "empty, at 0" },
	{ TU_TOP, 0, 0, 0, 0, "empty, at 2^48" },
	{ TU_1G + 0x2000, 0, 0, 0, 0, "empty, in a hole" },
	{ P_TOP64_PAGE, 0, 0, 0, 0, "empty, at the last page" },
};
#define	N_RANGES	(sizeof (ranges) / sizeof (ranges[0]))

/* Whether fixture page `i` is among the entries case `rc` yields. */
static bool
rc_hits(const range_case_t *rc, size_t i)
{
	return (rc->rc_n != 0 && fx_pages[i] >= rc->rc_alias &&
	    fx_pages[i] < rc->rc_alias + rc->rc_n * TU_PAGE);
}

/* Fixture pages the case yields. */
static uint64_t
rc_hit_count(const range_case_t *rc)
{
	uint64_t n = 0;

	for (size_t i = 0; i < FX_NPAGES; i++)
		n += rc_hits(rc, i) ? 1 : 0;
	return (n);
}

/* What a scan does with each entry, as vmspace_bits_operate() would. */
typedef enum scan_op {
	SCAN_QUERY,		/* vmm_gpte_query_dirty() */
	SCAN_RESET,		/* vmm_gpte_reset_dirty(ptep, false) */
	SCAN_UNMAP		/* vmm_gpt_unmap_region() instead */
} scan_op_t;

typedef struct scan_arg {
	const vmm_pte_impl_t	*sa_impl;
	vmm_gpt_t		*sa_gpt;
	const range_case_t	*sa_rc;
	scan_op_t		sa_op;
	uint64_t		sa_n;		/* entries, or pages unmapped */
	uint64_t		sa_dirty;	/* entries found dirty */
	uint64_t		sa_bad;		/* entries not as expected */
	uint64_t		sa_bad_gpa;	/* the first of those */
} scan_arg_t;

static void
do_scan(void *arg)
{
	scan_arg_t *sa = arg;
	const range_case_t *rc = sa->sa_rc;
	vmm_gpt_iter_t iter;
	vmm_gpt_iter_entry_t ent;

	sa->sa_n = sa->sa_dirty = sa->sa_bad = 0;
	if (sa->sa_op == SCAN_UNMAP) {
		sa->sa_n = vmm_gpt_unmap_region(sa->sa_gpt, rc->rc_addr,
		    rc->rc_len);
		return;
	}
	vmm_gpt_iter_init(&iter, sa->sa_gpt, rc->rc_addr, rc->rc_len);
	while (vmm_gpt_iter_next(&iter, &ent)) {
		const uint64_t i = sa->sa_n++;
		const vmm_gpt_entry_t *hw = tu_hw_entry(sa->sa_impl,
		    sa->sa_gpt, rc->rc_alias + i * TU_PAGE, LEVEL1);

		if (i >= rc->rc_n || ent.vgie_gpa != rc->rc_first +
		    i * TU_PAGE || ent.vgie_ptep != hw) {
			if (sa->sa_bad++ == 0)
				sa->sa_bad_gpa = ent.vgie_gpa;
		}
		if (sa->sa_op == SCAN_QUERY) {
			sa->sa_dirty += vmm_gpte_query_dirty(ent.vgie_ptep);
		} else {
			sa->sa_dirty += vmm_gpte_reset_dirty(ent.vgie_ptep,
			    false);
		}
	}
}

static const char *const scan_names[] = { "query", "reset", "unmap" };

/*
 * Runs scan `op` of case `rc` over a fresh fixture and checks the result:
 * the entries yielded, the dirty bits found, the pages unmapped, and every
 * fixture entry afterwards (a reset clears the dirty bit of the pages it
 * yields, an unmap zeroes their entries; everything else stays as it was).
 * Wrapping ranges: DEBUG builds panic (the original's ASSERT) and leave the
 * fixture unchanged.
 */
static void
check_scan(const vmm_pte_impl_t *impl, const range_case_t *rc, scan_op_t op)
{
	const bool wraps = rc->rc_addr + rc->rc_len < rc->rc_addr;
	const uint64_t hits = rc_hit_count(rc);
	fixture_t fx;
	scan_arg_t sa = { impl, NULL, rc, op, 0, 0, 0, 0 };
	bool ran = true;

	fx_setup(impl, &fx);
	sa.sa_gpt = fx.fx_gpt;
	if (wraps) {
		char msg[160];

		(void) snprintf(msg, sizeof (msg), "vmm_gpt_iter_init: range "
		    "0x%llx + 0x%llx wraps", (unsigned long long)rc->rc_addr,
		    (unsigned long long)rc->rc_len);
		ran = VT_EXPECT_DEBUG_PANIC(do_scan, &sa, msg,
		    "assertion failed: (addr + len) >= addr");
	} else {
		do_scan(&sa);
	}

	if (ran) {
		if (sa.sa_bad != 0 || (op != SCAN_UNMAP && sa.sa_n != rc->rc_n)) {
			vtest_fail(__FILE__, __LINE__, "%s [0x%llx, +0x%llx) "
			    "(%s): %llu entries, %llu not as expected (first "
			    "at gpa 0x%llx); expected %llu from 0x%llx "
			    "(entries of 0x%llx)", scan_names[op],
			    (unsigned long long)rc->rc_addr,
			    (unsigned long long)rc->rc_len, rc->rc_what,
			    (unsigned long long)sa.sa_n,
			    (unsigned long long)sa.sa_bad,
			    (unsigned long long)sa.sa_bad_gpa,
			    (unsigned long long)rc->rc_n,
			    (unsigned long long)rc->rc_first,
			    (unsigned long long)rc->rc_alias);
		}
		const uint64_t got = op == SCAN_UNMAP ? sa.sa_n : sa.sa_dirty;
		if (got != hits) {
			vtest_fail(__FILE__, __LINE__, "%s [0x%llx, +0x%llx) "
			    "(%s): %llu pages %s, expected %llu",
			    scan_names[op], (unsigned long long)rc->rc_addr,
			    (unsigned long long)rc->rc_len, rc->rc_what,
			    (unsigned long long)got, op == SCAN_UNMAP ?
			    "unmapped" : "dirty", (unsigned long long)hits);
		}
	}
	for (size_t i = 0; i < FX_NPAGES; i++) {
		vmm_gpt_entry_t want = fx.fx_pte[i];

		if (ran && rc_hits(rc, i) && op == SCAN_RESET)
			want &= ~impl->vpi_bit_dirty;
		if (ran && rc_hits(rc, i) && op == SCAN_UNMAP)
			want = 0;
		if (*fx.fx_ptep[i] != want) {
			vtest_fail(__FILE__, __LINE__, "%s [0x%llx, +0x%llx) "
			    "(%s): the entry of gpa 0x%llx is 0x%llx, expected "
			    "0x%llx", scan_names[op],
			    (unsigned long long)rc->rc_addr,
			    (unsigned long long)rc->rc_len, rc->rc_what,
			    (unsigned long long)fx_pages[i],
			    (unsigned long long)*fx.fx_ptep[i],
			    (unsigned long long)want);
		}
	}
	TU_CHECK_TABLES(impl, fx.fx_gpt, 0, 2, 2, 3);
	fx_teardown(&fx, ran && op == SCAN_UNMAP ? FX_NPAGES - hits :
	    FX_NPAGES);
}

/*
 * Iterating each hostile range and querying every dirty bit it yields
 * (read-only): the entries the original yields, the dirty bits it sees.
 */
VTEST(parity_iterate_query_dirty_hostile_ranges, VT_PER_FORMAT)
{
	for (size_t i = 0; i < N_RANGES; i++)
		check_scan(impl, &ranges[i], SCAN_QUERY);
}

/*
 * Resetting the dirty bits over each hostile range, as VM_TRACK_DIRTY_PAGES
 * does: the bits of exactly the entries the original yields are cleared
 * (it reports them as dirty), every other dirty bit is left set.
 */
VTEST(parity_iterate_reset_dirty_hostile_ranges, VT_PER_FORMAT)
{
	for (size_t i = 0; i < N_RANGES; i++)
		check_scan(impl, &ranges[i], SCAN_RESET);
}

/*
 * vmm_gpt_unmap_region() of each hostile range: it unmaps exactly the
 * mapped pages among the entries the original's iteration yields (for a
 * range at or beyond 2^48, its alias's), returns their number, and frees no
 * table.
 */
VTEST(parity_unmap_region_hostile_ranges, VT_PER_FORMAT)
{
	for (size_t i = 0; i < N_RANGES; i++)
		check_scan(impl, &ranges[i], SCAN_UNMAP);
}

/*
 * Hostile GPAs for vmm_gpt_walk() and vmm_gpt_unmap(): the deepest level
 * whose table has an entry for the GPA's alias (the walk's entries below it
 * are NULL) in the fixture.
 */
static const struct {
	uint64_t		hg_gpa;
	vmm_gpt_node_level_t	hg_deepest;
	bool			hg_mapped;	/* its alias is a mapped page */
} hostile_gpas[] = {
	{ TU_TOP, LEVEL1, true },
	{ TU_TOP + TU_PAGE, LEVEL1, true },
	{ TU_TOP + 0x2000, LEVEL1, false },
	{ P_HALF, LEVEL1, true },
	{ P_TOP64_PAGE, LEVEL1, true },
	{ 2 * TU_TOP - TU_PAGE, LEVEL1, true },
	{ 0xffffffffffc01234ULL, LEVEL2, false },	/* unaligned */
	{ 0xffffffffffc00000ULL, LEVEL2, false },
	{ TU_TOP - 2 * TU_2M, LEVEL2, false },
	{ 8 * TU_1G, LEVEL3, false },
	{ TU_TOP + 8 * TU_1G, LEVEL3, false },
	{ 2 * TU_512G, LEVEL4, false },
	{ P_HALF + 2 * TU_512G, LEVEL4, false },
};
#define	N_HOSTILE_GPAS	(sizeof (hostile_gpas) / sizeof (hostile_gpas[0]))

/*
 * vmm_gpt_walk() of each hostile GPA at every depth: the entries of its
 * alias (hardware's) down to the depth or to its deepest level, NULL below
 * that, nothing written past the depth, and the GPA (unaliased) masked to
 * the deepest level it reached.  No entry or table changes.
 */
VTEST(parity_walk_hostile_gpas_at_every_depth, VT_PER_FORMAT)
{
	vmm_gpt_entry_t *const sentinel = (vmm_gpt_entry_t *)0x5e1;
	fixture_t fx;

	fx_setup(impl, &fx);
	for (size_t i = 0; i < N_HOSTILE_GPAS; i++) {
		const uint64_t gpa = hostile_gpas[i].hg_gpa;

		for (vmm_gpt_node_level_t d = LEVEL4; d <= LEVEL1; d++) {
			const vmm_gpt_node_level_t reach =
			    d < hostile_gpas[i].hg_deepest ? d :
			    hostile_gpas[i].hg_deepest;
			vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];

			for (unsigned l = 0; l < MAX_GPT_LEVEL; l++)
				entries[l] = sentinel;
			VT_CHECK_EQ(vmm_gpt_walk(fx.fx_gpt, gpa, entries, d),
			    gpa & tu_lvl_mask(reach));
			for (vmm_gpt_node_level_t l = LEVEL4; l <= LEVEL1;
			    l++) {
				vmm_gpt_entry_t *want = l > d ? sentinel :
				    l > reach ? NULL :
				    tu_hw_entry(impl, fx.fx_gpt,
				    alias_of(gpa), l);
				if (entries[l] != want) {
					vtest_fail(__FILE__, __LINE__, "walk of "
					    "0x%llx to depth %u: entries[%u] "
					    "%p, expected %p",
					    (unsigned long long)gpa, d, l,
					    (void *)entries[l], (void *)want);
				}
			}
		}
	}
	for (size_t i = 0; i < FX_NPAGES; i++)
		VT_CHECK_EQ(*fx.fx_ptep[i], fx.fx_pte[i]);
	TU_CHECK_TABLES(impl, fx.fx_gpt, 0, 2, 2, 3);
	fx_teardown(&fx, FX_NPAGES);
}

/*
 * vmm_gpt_unmap() of each hostile GPA, on a fresh fixture: it clears the
 * leaf entry of the GPA's alias, returning true if that mapped a page (a
 * GPA at or beyond 2^48 unmaps the page below 2^48 it aliases), false
 * where there is no leaf entry or it maps nothing; no other entry changes.
 */
VTEST(parity_unmap_hostile_gpas, VT_PER_FORMAT)
{
	for (size_t i = 0; i < N_HOSTILE_GPAS; i++) {
		const uint64_t gpa = hostile_gpas[i].hg_gpa;
		const bool mapped = hostile_gpas[i].hg_mapped;
		fixture_t fx;

		fx_setup(impl, &fx);
		VT_CHECK_EQ(vmm_gpt_unmap(fx.fx_gpt, gpa), mapped);
		for (size_t p = 0; p < FX_NPAGES; p++) {
			const bool gone = mapped &&
			    fx_pages[p] == alias_of(gpa & ~(TU_PAGE - 1));

			VT_CHECK_EQ(*fx.fx_ptep[p], gone ? 0 : fx.fx_pte[p]);
		}
		TU_CHECK_TABLES(impl, fx.fx_gpt, 0, 2, 2, 3);
		fx_teardown(&fx, FX_NPAGES - (mapped ? 1 : 0));
	}
}

/*
 * Populating an empty range creates the chain of tables covering its start
 * (a LEVEL3, LEVEL2 and leaf table where missing) and counts nothing: the
 * original's first step of every populate.  Within a populated region it
 * changes nothing.  The chain's leaf table has a count of zero, so a later
 * populate and vacate of one of its pages frees it all again.
 */
VTEST(parity_populate_empty_range_creates_chain, VT_PER_FORMAT)
{
	const uint64_t x = TU_1G + 0x5000;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, x, 0);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
	VT_CHECK_NOT_NULL(tu_hw_entry(impl, gpt, x, LEVEL1));
	/* Twice: nothing new. */
	vmm_gpt_populate_region(gpt, x, 0);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
	/* An empty vacate takes no step: the chain stays. */
	vmm_gpt_vacate_region(gpt, x, 0);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
	/* Counted zero: one page populated and vacated frees it all. */
	vmm_gpt_populate_region(gpt, x, TU_PAGE);
	vmm_gpt_vacate_region(gpt, x, TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);

	/* Inside a populated region: no new table, no count. */
	vmm_gpt_populate_region(gpt, 0, 2 * TU_2M);
	vmm_gpt_populate_region(gpt, TU_2M + TU_PAGE, 0);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 2);
	vmm_gpt_vacate_region(gpt, 0, 2 * TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);

	/* At the last page below 2^48. */
	vmm_gpt_populate_region(gpt, TU_TOP - TU_PAGE, 0);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
	vmm_gpt_populate_region(gpt, TU_TOP - TU_PAGE, TU_PAGE);
	vmm_gpt_vacate_region(gpt, TU_TOP - TU_PAGE, TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);
	vmm_gpt_free(gpt);
}

/*
 * Populating a range that starts below 2^48 and wraps past 2^64 does the
 * same as an empty one (no address is below its wrapped end): the chain at
 * its start, nothing counted.  No build panics (the original has no check
 * there); ranges that start at or beyond 2^48 are death tests.
 */
VTEST(parity_populate_wrapping_range_creates_chain, VT_PER_FORMAT)
{
	static const struct {
		uint64_t	addr, len;
	} cases[] = {
		{ 0x2000, P_TOP64_PAGE },			/* to 4 KiB */
		{ 5 * TU_1G, 0 - 5 * TU_1G },			/* to 0 */
		{ TU_TOP - TU_PAGE, 0xffff000000002000ULL },	/* to 4 KiB */
		{ 3 * TU_512G + TU_2M, 0 - TU_2M },		/* to 3 * 512G */
	};
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
		const uint64_t a = cases[i].addr;

		VT_CHECK(a + cases[i].len < a);
		vmm_gpt_populate_region(gpt, a, cases[i].len);
		TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
		VT_CHECK_NOT_NULL(tu_hw_entry(impl, gpt, a, LEVEL1));
		/* Vacating the same wrapping range takes no step. */
		vmm_gpt_vacate_region(gpt, a, cases[i].len);
		TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
		vmm_gpt_populate_region(gpt, a, TU_PAGE);
		vmm_gpt_vacate_region(gpt, a, TU_PAGE);
		TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);
	}
	vmm_gpt_free(gpt);
}

/*
 * Vacating a range that starts where no leaf table is: the original finds
 * its starting tables only at the range's first address, and below the
 * first level where none is there it does nothing at all (here: no leaf
 * table at 2 MiB, so [4 MiB, 8 MiB)'s leaf tables keep their counts and
 * the tables above keep theirs).  The exact vacate then frees everything.
 */
VTEST(parity_vacate_from_unpopulated_start, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 2 * TU_2M, 2 * TU_2M);
	vmm_gpt_vacate_region(gpt, TU_2M, 3 * TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 2);
	/* No LEVEL2 table at 1 GiB either: nothing, up to 8 GiB. */
	vmm_gpt_vacate_region(gpt, TU_1G, 7 * TU_1G);
	vmm_gpt_vacate_region(gpt, TU_512G, TU_512G);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 2);
	vmm_gpt_vacate_region(gpt, 2 * TU_2M, 2 * TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);
	vmm_gpt_free(gpt);
}

/*
 * Vacating across a gap between regions.  Within one LEVEL2 table the
 * original goes from leaf table to the next present one, so both regions
 * go.  Across LEVEL2 tables it steps to the next parent only when that is
 * the adjacent one: [1 GiB - 2 MiB, 1 GiB) and [2 GiB, 2 GiB + 2 MiB) have
 * no LEVEL2 table for [1 GiB, 2 GiB) between them, so one vacate of both
 * frees the first region's tables only, and the second keeps its count.
 * Across adjacent LEVEL2 tables it goes on: [1 GiB - 2 MiB, 1 GiB +
 * 2 MiB) in two regions goes in one vacate.
 */
VTEST(parity_vacate_spanning_gaps, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	/* A gap of one leaf table in one LEVEL2 table. */
	vmm_gpt_populate_region(gpt, 0, TU_2M);
	vmm_gpt_populate_region(gpt, 2 * TU_2M, TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 2);
	vmm_gpt_vacate_region(gpt, 0, 3 * TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);

	/* A missing LEVEL2 table between them. */
	vmm_gpt_populate_region(gpt, TU_1G - TU_2M, TU_2M);
	vmm_gpt_populate_region(gpt, 2 * TU_1G, TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 2, 2);
	vmm_gpt_vacate_region(gpt, TU_1G - TU_2M, TU_1G + 2 * TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
	VT_CHECK_NOT_NULL(tu_hw_entry(impl, gpt, 2 * TU_1G, LEVEL1));
	vmm_gpt_vacate_region(gpt, 2 * TU_1G, TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);

	/* Adjacent LEVEL2 tables, adjacent LEVEL3 tables. */
	vmm_gpt_populate_region(gpt, TU_1G - TU_2M, TU_2M);
	vmm_gpt_populate_region(gpt, TU_1G, TU_2M);
	vmm_gpt_populate_region(gpt, TU_512G - TU_2M, TU_2M);
	vmm_gpt_populate_region(gpt, TU_512G, TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 2, 4, 4);
	vmm_gpt_vacate_region(gpt, TU_1G - TU_2M, 2 * TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 2, 2, 2);
	vmm_gpt_vacate_region(gpt, TU_512G - TU_2M, 2 * TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);
	vmm_gpt_free(gpt);
}

/*
 * Vacating parts of regions, and ranges that run past a region's end into
 * unpopulated space or into part of the next region: the original takes
 * each leaf table's covered pages off its count and frees the tables whose
 * count reaches zero, nothing else.
 */
VTEST(parity_vacate_partial_ranges, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	/* The middle of a region, across its two leaf tables: 256 + 256. */
	vmm_gpt_populate_region(gpt, 0, 2 * TU_2M);
	vmm_gpt_vacate_region(gpt, TU_1M, TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 2);
	vmm_gpt_vacate_region(gpt, 0, TU_1M);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
	vmm_gpt_vacate_region(gpt, 3 * TU_1M, TU_1M);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);

	/* Past the end of the only region, into nothing. */
	vmm_gpt_populate_region(gpt, 0, TU_2M);
	vmm_gpt_vacate_region(gpt, 0, TU_1G);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);

	/* Into half of the next region's leaf table. */
	vmm_gpt_populate_region(gpt, 0, TU_2M);
	vmm_gpt_populate_region(gpt, 2 * TU_2M, TU_2M);
	vmm_gpt_vacate_region(gpt, 0, 2 * TU_2M + TU_1M);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
	vmm_gpt_vacate_region(gpt, 2 * TU_2M + TU_1M, TU_1M);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);
	vmm_gpt_free(gpt);
}

/*
 * Vacating at or beyond 2^48.  The original finds its starting tables at
 * the alias of the range's first address, but compares the tables'
 * addresses (below 2^48) with the range's: it takes nothing off any count,
 * and frees only tables whose count is already zero (a chain left by an
 * empty populate).  A range straddling 2^48 vacates what lies below.
 * Vacating a range that wraps past 2^64 takes no step at all.
 */
VTEST(parity_vacate_at_or_beyond_48bit, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 0, 2 * TU_2M);
	vmm_gpt_populate_region(gpt, TU_TOP - TU_2M, TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 2, 2, 3);
	vmm_gpt_vacate_region(gpt, TU_TOP, 2 * TU_2M);
	vmm_gpt_vacate_region(gpt, TU_TOP, TU_TOP);
	vmm_gpt_vacate_region(gpt, P_HALF, TU_2M);
	vmm_gpt_vacate_region(gpt, 2 * TU_TOP - TU_2M, TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 2, 2, 3);

	/* Wrapping, or ending at 2^64: no step. */
	vmm_gpt_vacate_region(gpt, P_TOP64_PAGE, 0x2000);
	vmm_gpt_vacate_region(gpt, P_TOP64_2M, TU_2M);
	vmm_gpt_vacate_region(gpt, 0x2000, P_TOP64_PAGE);
	vmm_gpt_vacate_region(gpt, P_HALF, P_HALF + TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, 0, 2, 2, 3);

	/* Straddling 2^48: the top region goes. */
	vmm_gpt_vacate_region(gpt, TU_TOP - TU_2M, 2 * TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 2);

	/* An aliased vacate frees a chain of count zero. */
	vmm_gpt_populate_region(gpt, TU_1G + 0x5000, 0);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 2, 3);
	vmm_gpt_vacate_region(gpt, TU_TOP + TU_1G + 0x5000, TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 2);

	vmm_gpt_vacate_region(gpt, 0, 2 * TU_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);
	vmm_gpt_free(gpt);
}
