/*
 * Death tests: every bad input the library must refuse with a kernel panic,
 * rather than corrupt the tables, and every check that only DEBUG builds
 * make.
 *
 * The library's panic messages all read "<function>: <what> ...", with
 * values printed as 0x%lx; each test checks a stable substring naming the
 * function and the offending values.  The original panics on many of these
 * through its ASSERTs and VERIFYs, with its own wording, so only the panic
 * itself is checked there.  Which build panics where (vtest.h):
 *
 * - the original's VERIFYs, and inputs it panics on some other way: every
 *   build of both (flags 0);
 * - its ASSERTs: DEBUG builds only, the library's DEBUG builds and the DEBUG
 *   original (VT_EXPECT_DEBUG_PANIC).  A non-DEBUG build (production) must
 *   not panic there and must return what the non-DEBUG original returns,
 *   leaving the same tables and entries: each such test says and checks
 *   what that is (it runs linked with the non-DEBUG original too);
 * - ASSERTs without which the original crashes or corrupts memory or the
 *   tree: the library panics in every build, the original in DEBUG builds
 *   (VT_DEATH_LIBRARY_ONLY_NDEBUG, a comment says what it does otherwise);
 * - inputs the original takes silently into a corrupt tree: the library
 *   panics in every build (VT_DEATH_LIBRARY_ONLY, with a comment).
 *
 * Each death case runs in a child forked from the test, so the test's own
 * GPT is unchanged by it and is cleaned up (vacated and freed) by the test,
 * which the runner's leak check then verifies.
 */

#include <stdio.h>
#include <string.h>

#include "tutil.h"

#define	T_PAGE		0x1000ul
#define	T_2M		0x200000ul
#define	T_PROT_RW	3		/* PROT_READ | PROT_WRITE */

/*
 * The four region operations, to run in a death child or, for DEBUG-only
 * checks in non-DEBUG builds, in the test, recording what they return.
 */
typedef struct region_arg {
	vmm_gpt_t	*ra_gpt;
	uint64_t	ra_addr;
	uint64_t	ra_len;
	uint64_t	ra_n;		/* entries iterated, or pages unmapped */
	uint64_t	ra_first;	/* gpa of the first entry iterated */
	uint64_t	ra_last;	/* gpa of the last one */
	uint64_t	ra_bad;		/* entries whose ptep is not walk()'s */
} region_arg_t;

static void
do_populate(void *arg)
{
	region_arg_t *ra = arg;

	vmm_gpt_populate_region(ra->ra_gpt, ra->ra_addr, ra->ra_len);
}

static void
do_vacate(void *arg)
{
	region_arg_t *ra = arg;

	vmm_gpt_vacate_region(ra->ra_gpt, ra->ra_addr, ra->ra_len);
}

static void
do_unmap_region(void *arg)
{
	region_arg_t *ra = arg;

	ra->ra_n = vmm_gpt_unmap_region(ra->ra_gpt, ra->ra_addr, ra->ra_len);
}

static void
do_iter_init(void *arg)
{
	region_arg_t *ra = arg;
	vmm_gpt_iter_t iter;
	vmm_gpt_iter_entry_t entry;

	vmm_gpt_iter_init(&iter, ra->ra_gpt, ra->ra_addr, ra->ra_len);
	/* Should it not panic in init, drive it and record what it yields. */
	ra->ra_n = ra->ra_bad = 0;
	while (vmm_gpt_iter_next(&iter, &entry)) {
		vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];

		if (ra->ra_n++ == 0)
			ra->ra_first = entry.vgie_gpa;
		ra->ra_last = entry.vgie_gpa;
		(void) vmm_gpt_walk(ra->ra_gpt, entry.vgie_gpa, entries,
		    LEVEL1);
		if (entries[LEVEL1] != entry.vgie_ptep)
			ra->ra_bad++;
	}
}

/*
 * Unaligned ranges.  Every region operation ASSERTs that start and length
 * are page-aligned (ASSERT0(addr & PAGEOFFSET), ASSERT0(len & PAGEOFFSET)):
 * DEBUG builds panic.  The non-DEBUG original goes on with the values as
 * they are: the walk rounds the start down to its page, the loops stop
 * below the unaligned end, and the leaf counts take the pages from
 * addr & PAGEMASK to end & PAGEMASK.  For each case, what it does:
 */
typedef struct unaligned_case {
	uint64_t	uc_addr;
	uint64_t	uc_len;
	/*
	 * On [0, 4 MiB) populated with GPA 0x1000 mapped: the iteration
	 * yields uc_n pages from uc_first (the walk of the start rounded down,
	 * then every page below the end), which vmm_gpt_unmap_region() unmaps
	 * (so it unmaps 0x1000 if that is one of them).
	 */
	uint64_t	uc_first;
	uint64_t	uc_n;
	/* Vacating it takes the pages [uc_lo, uc_hi) off the leaf counts. */
	uint64_t	uc_lo;
	uint64_t	uc_hi;
	/* Leaf tables left after vacating it from [0, 4 MiB). */
	uint64_t	uc_vac_leaves;
	/*
	 * Leaf tables populating it creates in an empty GPT: those from
	 * addr's 2 MiB down to below the end (with a count of zero for one
	 * that holds no whole page of the range); vacating the same range
	 * frees them all again.
	 */
	uint64_t	uc_pop_leaves;
} unaligned_case_t;

static const unaligned_case_t unaligned[] = {
	{ 0x1234, T_PAGE,	0x1000, 2,	0x1000, 0x2000,	2, 1 },
	/* [2 MiB + 2 KiB, 4 MiB + 2 KiB): a leaf table at 4 MiB too. */
	{ T_2M + 0x800, T_2M,	T_2M, 512,	T_2M, 2 * T_2M,	1, 2 },
	{ 0xfff, T_PAGE,	0, 2,		0, 0x1000,	2, 1 },
	{ 0, 0x1001,		0, 2,		0, 0x1000,	2, 1 },
	/* No whole page: its leaf table gets a count of zero. */
	{ T_2M, 0x10,		T_2M, 1,	T_2M, T_2M,	2, 1 },
	{ 0, T_2M - 1,		0, 512,		0, T_2M - T_PAGE, 2, 1 },
};
#define	N_UNALIGNED	(sizeof (unaligned) / sizeof (unaligned[0]))

typedef struct region_op {
	const char	*ro_name;
	void		(*ro_fn)(void *);
	/* The GPT the unaligned cases start from: [0, 4 MiB) populated. */
	bool		ro_populated;
	/*
	 * Checks what the non-DEBUG original leaves after the call on case
	 * `uc` (ra: the call and what it returned) and frees the GPT.
	 */
	void		(*ro_ndebug)(const vmm_pte_impl_t *, region_arg_t *,
	    const unaligned_case_t *);
} region_op_t;

/* [0, 4 MiB) populated, GPA 0x1000 mapped to PFN 0x777. */
static vmm_gpt_t *
populated_gpt(void)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 0, 2 * T_2M);
	VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, T_PAGE), 0x777, T_PROT_RW,
	    KTEST_MTRR_WB));
	return (gpt);
}

/* Whether GPA 0x1000 is still mapped to PFN 0x777. */
static bool
page_still_mapped(vmm_gpt_t *gpt)
{
	pfn_t pfn = 0;

	return (vmm_gpte_is_mapped(tu_leaf(gpt, T_PAGE), &pfn, NULL) &&
	    pfn == 0x777);
}

/* Unmaps, vacates and frees a populated_gpt(). */
static void
free_populated_gpt(vmm_gpt_t *gpt, bool mapped)
{
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, 0, 2 * T_2M), mapped ? 1 : 0);
	vmm_gpt_vacate_region(gpt, 0, 2 * T_2M);
	vmm_gpt_free(gpt);
}

/* The iteration yields uc_n pages from uc_first, each with its leaf entry. */
static void
ndebug_iter(const vmm_pte_impl_t *impl, region_arg_t *ra,
    const unaligned_case_t *uc)
{
	VT_CHECK_EQ(ra->ra_n, uc->uc_n);
	VT_CHECK_EQ(ra->ra_first, uc->uc_first);
	VT_CHECK_EQ(ra->ra_last, uc->uc_first + (uc->uc_n - 1) * T_PAGE);
	VT_CHECK_EQ(ra->ra_bad, 0);
	VT_CHECK(page_still_mapped(ra->ra_gpt));
	TU_CHECK_TABLES(impl, ra->ra_gpt, 0, 1, 1, 2);
	free_populated_gpt(ra->ra_gpt, true);
}

/* Those pages are unmapped: 0x1000 if it is one of them. */
static void
ndebug_unmap_region(const vmm_pte_impl_t *impl, region_arg_t *ra,
    const unaligned_case_t *uc)
{
	const bool hit = T_PAGE >= uc->uc_first &&
	    T_PAGE < uc->uc_first + uc->uc_n * T_PAGE;

	VT_CHECK_EQ(ra->ra_n, hit ? 1 : 0);
	VT_CHECK_EQ(page_still_mapped(ra->ra_gpt), !hit);
	VT_CHECK_EQ(tu_count_mapped(impl, ra->ra_gpt), hit ? 0 : 1);
	TU_CHECK_TABLES(impl, ra->ra_gpt, 0, 1, 1, 2);
	free_populated_gpt(ra->ra_gpt, !hit);
}

/*
 * Its tables exist; vacating the same unaligned range frees them all (the
 * counts agree with vacate's, which ndebug_vacate() pins down).
 */
static void
ndebug_populate(const vmm_pte_impl_t *impl, region_arg_t *ra,
    const unaligned_case_t *uc)
{
	TU_CHECK_TABLES(impl, ra->ra_gpt, 0, 1, 1, uc->uc_pop_leaves);
	vmm_gpt_vacate_region(ra->ra_gpt, ra->ra_addr, ra->ra_len);
	TU_CHECK_TABLES(impl, ra->ra_gpt, 0, 0, 0, 0);
	vmm_gpt_free(ra->ra_gpt);
}

/*
 * Exactly [uc_lo, uc_hi) came off the counts: vacating the rest of
 * [0, 4 MiB), page-aligned, frees every table.
 */
static void
ndebug_vacate(const vmm_pte_impl_t *impl, region_arg_t *ra,
    const unaligned_case_t *uc)
{
	vmm_gpt_t *gpt = ra->ra_gpt;

	TU_CHECK_TABLES(impl, gpt, 0, 1, 1, uc->uc_vac_leaves);
	VT_CHECK(page_still_mapped(gpt));
	VT_CHECK(vmm_gpt_unmap(gpt, T_PAGE));
	vmm_gpt_vacate_region(gpt, 0, uc->uc_lo);
	vmm_gpt_vacate_region(gpt, uc->uc_hi, 2 * T_2M - uc->uc_hi);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);
	vmm_gpt_free(gpt);
}

static const region_op_t op_populate = {
	"vmm_gpt_populate_region", do_populate, false, ndebug_populate };
static const region_op_t op_vacate = {
	"vmm_gpt_vacate_region", do_vacate, true, ndebug_vacate };
static const region_op_t op_unmap_region = {
	"vmm_gpt_unmap_region", do_unmap_region, true, ndebug_unmap_region };
static const region_op_t op_iter_init = {
	"vmm_gpt_iter_init", do_iter_init, true, ndebug_iter };

/* The library's message "<fn>: " + fmt(v1, v2), in msg. */
static void
region_msg(char *msg, size_t size, const char *fn, const char *fmt,
    uint64_t v1, uint64_t v2)
{
	int n = snprintf(msg, size, "%s: ", fn);

	(void) snprintf(msg + n, size - (size_t)n, fmt, (unsigned long)v1,
	    (unsigned long)v2);
}

/*
 * Expects `op` on [addr, addr + len) to panic with the library message
 * "<op>: <fmt...>" (`fmt` takes the two values given), and the original
 * with a message containing `ref` (its failed ASSERT), if not NULL.
 */
static void
expect_region_panic(int line, const region_op_t *op, vmm_gpt_t *gpt,
    uint64_t addr, uint64_t len, unsigned flags, const char *ref,
    const char *fmt, uint64_t v1, uint64_t v2)
{
	region_arg_t ra = { gpt, addr, len, 0, 0, 0, 0 };
	char msg[200];

	region_msg(msg, sizeof (msg), op->ro_name, fmt, v1, v2);
	vtest_expect_panic_at(__FILE__, line, op->ro_fn, &ra, flags, msg,
	    ref);
}

/*
 * The original's ASSERTs, as the stand-in's assfail3() prints them:
 * ASSERT0(addr & PAGEOFFSET), ASSERT0(len & PAGEOFFSET) and (iter_init
 * only) ASSERT3U((addr + len), >=, addr).
 */
#define	REF_ADDR	"assertion failed: addr & "
#define	REF_LEN		"assertion failed: len & "
#define	REF_WRAPS	"assertion failed: (addr + len) >= addr"

/*
 * Every region operation, on each unaligned case: DEBUG builds panic (the
 * library naming the start when it is unaligned, else the length), in a
 * child, and the GPT is unchanged; non-DEBUG builds do what the non-DEBUG
 * original does (op->ro_ndebug checks it).  Populate starts from an empty
 * GPT, the others from [0, 4 MiB) populated with a page mapped, so that
 * the check cannot be skipped for lack of tables.
 */
static void
unaligned_cases(const vmm_pte_impl_t *impl, const region_op_t *op)
{
	for (size_t i = 0; i < N_UNALIGNED; i++) {
		const unaligned_case_t *uc = &unaligned[i];
		const bool bad_addr = (uc->uc_addr & (T_PAGE - 1)) != 0;
		region_arg_t ra = { NULL, uc->uc_addr, uc->uc_len, 0, 0, 0, 0 };
		char msg[200];

		ra.ra_gpt = op->ro_populated ? populated_gpt() :
		    vmm_gpt_alloc();
		region_msg(msg, sizeof (msg), op->ro_name, bad_addr ?
		    "addr 0x%lx is not page-aligned" :
		    "len 0x%lx is not page-aligned",
		    bad_addr ? uc->uc_addr : uc->uc_len, 0);
		if (VT_EXPECT_DEBUG_PANIC(op->ro_fn, &ra, msg,
		    bad_addr ? REF_ADDR : REF_LEN)) {
			op->ro_ndebug(impl, &ra, uc);
			continue;
		}
		/* Unchanged by the child. */
		if (op->ro_populated) {
			VT_CHECK(page_still_mapped(ra.ra_gpt));
			TU_CHECK_TABLES(impl, ra.ra_gpt, 0, 1, 1, 2);
			free_populated_gpt(ra.ra_gpt, true);
		} else {
			TU_CHECK_TABLES(impl, ra.ra_gpt, 0, 0, 0, 0);
			vmm_gpt_free(ra.ra_gpt);
		}
	}
}

VTEST(death_populate_unaligned, VT_PER_FORMAT)
{
	unaligned_cases(impl, &op_populate);
}

VTEST(death_vacate_unaligned, VT_PER_FORMAT)
{
	unaligned_cases(impl, &op_vacate);
}

VTEST(death_unmap_region_unaligned, VT_PER_FORMAT)
{
	unaligned_cases(impl, &op_unmap_region);
}

VTEST(death_iter_init_unaligned, VT_PER_FORMAT)
{
	unaligned_cases(impl, &op_iter_init);
}

/*
 * A range whose end wraps past 2^64 (or ends exactly at 2^64, which wraps
 * to 0).  The original checks this only in vmm_gpt_iter_init()
 * (ASSERT3U(addr + len >= addr)), which vmm_gpt_unmap_region() also goes
 * through: DEBUG builds panic (the library under vmm_gpt_iter_init's name
 * for both).  The non-DEBUG original takes the wrapped end: the iteration
 * starts at or below the start, above that end, so it yields nothing,
 * unmaps nothing and leaves every entry as it was, dirty bits included
 * (test_parity.c has more of these).  Populating and vacating such ranges
 * are not ASSERTed against at all: test_parity.c and the 48-bit tests below.
 */
static const struct {
	uint64_t	wc_addr;
	uint64_t	wc_len;
} wrap_cases[] = {
	{ 0xfffffffffffff000ul, 0x2000ul },
	{ 0xffffffffffe00000ul, T_2M },		/* ends at 2^64: 0 */
	{ 0x8000000000000000ul, 0x8000000000001000ul },
	{ 0x2000ul, 0xfffffffffffff000ul },
};
#define	N_WRAPS		(sizeof (wrap_cases) / sizeof (wrap_cases[0]))

static void
wrap_iter_cases(const vmm_pte_impl_t *impl, const region_op_t *op)
{
	vmm_gpt_t *gpt = populated_gpt();
	vmm_gpt_entry_t *ptep = tu_leaf(gpt, T_PAGE);

	(void) vmm_gpte_reset_dirty(ptep, true);
	const vmm_gpt_entry_t before = *ptep;
	for (size_t i = 0; i < N_WRAPS; i++) {
		region_arg_t ra = { gpt, wrap_cases[i].wc_addr,
		    wrap_cases[i].wc_len, 0, 0, 0, 0 };
		char msg[200];

		region_msg(msg, sizeof (msg), "vmm_gpt_iter_init",
		    "range 0x%lx + 0x%lx wraps", ra.ra_addr, ra.ra_len);
		if (VT_EXPECT_DEBUG_PANIC(op->ro_fn, &ra, msg, REF_WRAPS)) {
			/* Nothing iterated, nothing unmapped. */
			VT_CHECK_EQ(ra.ra_n, 0);
		}
		VT_CHECK_EQ(*ptep, before);
		TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 2);
	}
	free_populated_gpt(gpt, true);
}

VTEST(death_unmap_region_wraps, VT_PER_FORMAT)
{
	wrap_iter_cases(impl, &op_unmap_region);
}

VTEST(death_iter_init_wraps, VT_PER_FORMAT)
{
	wrap_iter_cases(impl, &op_iter_init);
}

/*
 * Populating at or beyond the 48-bit guest-physical space that four levels
 * of tables cover (ranges that wrap past 2^64 among them).  The library
 * panics in every build.  The original masks the table indices but keeps
 * the whole address in its nodes:
 * - for a range that runs from below 2^48 to beyond it, or from the last
 *   512 GiB of the 64-bit space past 2^64, it panics too, in every build:
 *   it looks for the root's next sibling (DEBUG: ASSERT(node->vgn_parent
 *   != NULL); non-DEBUG: panic("impossible level value"));
 * - for a range that starts at or beyond 2^48 and ends in the same
 *   512 GiB it records tables for the aliased address (a second node for
 *   the same root entry later, which leaks a table and corrupts the tree),
 *   without complaint: library-only.
 */
VTEST(death_populate_beyond_48bit, VT_PER_FORMAT)
{
	static const struct {
		uint64_t	addr, len;
		unsigned	flags;
		const char	*what;
	} cases[] = {
		{ 0xfffffffff000ul, 0x2000ul, 0,		/* straddles */
		    "exceeds" },
		{ 0ul, 0x1000000001000ul, 0,			/* all + a page */
		    "exceeds" },
		{ 0x800000000000ul, 0x800000001000ul, 0,	/* half + a page */
		    "exceeds" },
		{ 0x1000000000000ul, 0x1000ul, VT_DEATH_LIBRARY_ONLY,
		    "starts beyond" },
		{ 0x1000000000000ul, 0ul, VT_DEATH_LIBRARY_ONLY,
		    "starts beyond" },
		/* Wrapping past 2^64 (to 0x1000; to 0). */
		{ 0xfffffffffffff000ul, 0x2000ul, 0, "starts beyond" },
		{ 0xffffffffffe00000ul, T_2M, VT_DEATH_LIBRARY_ONLY,
		    "starts beyond" },
		{ 0x8000000000000000ul, 0x8000000000001000ul,
		    VT_DEATH_LIBRARY_ONLY, "starts beyond" },
	};
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
		char fmt[120];

		(void) snprintf(fmt, sizeof (fmt), "range 0x%%lx + 0x%%lx %s "
		    "the 48-bit guest-physical space", cases[i].what);
		expect_region_panic(__LINE__, &op_populate, gpt, cases[i].addr,
		    cases[i].len, cases[i].flags, NULL, fmt, cases[i].addr,
		    cases[i].len);
	}
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);
	vmm_gpt_free(gpt);
}

/*
 * Populating a range twice takes the leaf tables' reference counts past
 * their 512 entries.  The original ASSERTs (ref_cnt < 512 and ref_cnt +
 * covered <= 512), so DEBUG builds panic; the non-DEBUG original counts on
 * (its count is a uint32), and the table then needs as many vacates as
 * there were populates.
 */
VTEST(death_populate_refcount_overflow, VT_PER_FORMAT)
{
	/* The library names the leaf table (its first GPA). */
	static const char msg[] = "vmm_gpt_populate_region: leaf table "
	    "reference count overflow at gpa 0x200000";
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	region_arg_t ra = { gpt, T_2M, T_2M, 0, 0, 0, 0 };

	/* A whole leaf table, populated twice. */
	vmm_gpt_populate_region(gpt, T_2M, T_2M);
	if (VT_EXPECT_DEBUG_PANIC(do_populate, &ra, msg, "vgn_ref_cnt")) {
		/* Counted 1024: no new table, and one vacate frees nothing. */
		TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
		vmm_gpt_vacate_region(gpt, T_2M, T_2M);
		TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
	}
	vmm_gpt_vacate_region(gpt, T_2M, T_2M);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);

	/* 511 entries, then two more of which one overlaps: 513. */
	vmm_gpt_populate_region(gpt, T_2M, T_2M - T_PAGE);
	ra.ra_addr = 2 * T_2M - 2 * T_PAGE;
	ra.ra_len = 2 * T_PAGE;
	if (VT_EXPECT_DEBUG_PANIC(do_populate, &ra, msg, "vgn_ref_cnt")) {
		/* 513: taking the two back leaves 511. */
		vmm_gpt_vacate_region(gpt, ra.ra_addr, ra.ra_len);
		TU_CHECK_TABLES(impl, gpt, 0, 1, 1, 1);
	}
	vmm_gpt_vacate_region(gpt, T_2M, T_2M - T_PAGE);
	TU_CHECK_TABLES(impl, gpt, 0, 0, 0, 0);

	vmm_gpt_free(gpt);
}

/*
 * Vacating more than was populated underflows a leaf table's reference
 * count: one page populated, its whole 2 MiB table vacated.  The library
 * panics in every build; the original ASSERTs (ref_cnt >= covered), and
 * without DEBUG its uint32 count wraps to 2^32 - 511: the table is never
 * freed, and freeing the GPT then panics.
 */
VTEST(death_vacate_refcount_underflow, VT_PER_FORMAT)
{
	static const char msg[] = "vmm_gpt_vacate_region: leaf table "
	    "reference count underflow at gpa 0x200000";
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	region_arg_t ra = { gpt, T_2M, T_2M, 0, 0, 0, 0 };

	vmm_gpt_populate_region(gpt, T_2M + 5 * T_PAGE, T_PAGE);
	VT_EXPECT_PANIC(do_vacate, &ra, VT_DEATH_LIBRARY_ONLY_NDEBUG, msg,
	    "assertion failed: node->vgn_ref_cnt >= covered");
	vmm_gpt_vacate_region(gpt, T_2M + 5 * T_PAGE, T_PAGE);
	vmm_gpt_free(gpt);
}

typedef struct walk_arg {
	vmm_gpt_t		*wa_gpt;
	vmm_gpt_node_level_t	wa_depth;
} walk_arg_t;

static void
do_walk(void *arg)
{
	walk_arg_t *wa = arg;
	/* Room for a runaway walk, so that it cannot smash the stack. */
	vmm_gpt_entry_t *entries[16];

	(void) vmm_gpt_walk(wa->wa_gpt, 0, entries, wa->wa_depth);
}

/*
 * A walk deeper than the leaves.  The library panics in every build; the
 * original ASSERT3U(depth < MAX_GPT_LEVEL)s, and without DEBUG writes
 * entries[] past LEVEL1, beyond the caller's array of MAX_GPT_LEVEL
 * entries (its stack), or, below a mapped leaf, indexes the guest's page
 * as a table.
 */
VTEST(death_walk_depth, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	walk_arg_t wa = { gpt, MAX_GPT_LEVEL };

	vmm_gpt_populate_region(gpt, 0, T_PAGE);
	VT_EXPECT_PANIC(do_walk, &wa, VT_DEATH_LIBRARY_ONLY_NDEBUG,
	    "vmm_gpt_walk: depth 0x4 is beyond LEVEL1",
	    "assertion failed: depth < MAX_GPT_LEVEL");
	wa.wa_depth = (vmm_gpt_node_level_t)7;
	VT_EXPECT_PANIC(do_walk, &wa, VT_DEATH_LIBRARY_ONLY_NDEBUG,
	    "vmm_gpt_walk: depth 0x7 is beyond LEVEL1",
	    "assertion failed: depth < MAX_GPT_LEVEL");
	vmm_gpt_vacate_region(gpt, 0, T_PAGE);
	vmm_gpt_free(gpt);
}

typedef struct map_arg {
	vmm_gpt_t		*ma_gpt;
	vmm_gpt_entry_t		*ma_ptep;
	pfn_t			ma_pfn;
	bool			ma_ret;		/* what map_at returned */
} map_arg_t;

static void
do_map_at(void *arg)
{
	map_arg_t *ma = arg;

	ma->ma_ret = vmm_gpt_map_at(ma->ma_gpt, ma->ma_ptep, ma->ma_pfn,
	    T_PROT_RW, KTEST_MTRR_WB);
}

/*
 * Mapping over an entry that maps a different page: the caller broke the
 * contract ("a conflicting PFN is not mapped at the requested location").
 * DEBUG builds panic (the original's ASSERT3U(old_pfn, ==, new_pfn)); the
 * non-DEBUG original's compare-and-swap fails, and it returns false with
 * the entry unchanged, as for a lost race.
 */
VTEST(death_map_at_conflict, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];
	const uint64_t gpa = 0x40000000ul + 3 * T_PAGE;

	vmm_gpt_populate_region(gpt, gpa, T_PAGE);
	VT_CHECK_EQ(vmm_gpt_walk(gpt, gpa, entries, LEVEL1), gpa);
	VT_CHECK(vmm_gpt_map_at(gpt, entries[LEVEL1], 0x1234, T_PROT_RW,
	    KTEST_MTRR_WB));

	const vmm_gpt_entry_t mapped = *entries[LEVEL1];
	map_arg_t ma = { gpt, entries[LEVEL1], 0x5678, true };
	if (VT_EXPECT_DEBUG_PANIC(do_map_at, &ma,
	    "vmm_gpt_map_at: entry already maps pfn 0x1234",
	    "assertion failed: old_pfn == new_pfn"))
		VT_CHECK(!ma.ma_ret);
	VT_CHECK_EQ(*entries[LEVEL1], mapped);
	ma.ma_pfn = 0x1235;
	ma.ma_ret = true;
	if (VT_EXPECT_DEBUG_PANIC(do_map_at, &ma,
	    "vmm_gpt_map_at: entry already maps pfn 0x1234",
	    "assertion failed: old_pfn == new_pfn"))
		VT_CHECK(!ma.ma_ret);
	VT_CHECK_EQ(*entries[LEVEL1], mapped);

	/* The same PFN again is a lost race, not a conflict: false. */
	VT_CHECK(!vmm_gpt_map_at(gpt, entries[LEVEL1], 0x1234, T_PROT_RW,
	    KTEST_MTRR_WB));
	pfn_t pfn = 0;
	VT_CHECK(vmm_gpte_is_mapped(entries[LEVEL1], &pfn, NULL));
	VT_CHECK_EQ(pfn, 0x1234);

	VT_CHECK(vmm_gpt_unmap(gpt, gpa));
	vmm_gpt_vacate_region(gpt, gpa, T_PAGE);
	vmm_gpt_free(gpt);
}

static void
do_reset_dirty_null(void *arg)
{
	(void) vmm_gpte_reset_dirty(NULL, arg != NULL);
}

static void
do_reset_accessed_null(void *arg)
{
	(void) vmm_gpte_reset_accessed(NULL, arg != NULL);
}

/*
 * Resetting A/D bits through a NULL entry pointer: a panic, not a fault, in
 * every build (the original's ASSERT, and in every build the VERIFY3P(ptep,
 * !=, NULL) of vmm_gpt_reset_bits()).
 */
VTEST(death_reset_bits_null, VT_PER_FORMAT)
{
	static int on;

	VT_EXPECT_PANIC(do_reset_dirty_null, NULL, 0,
	    "vmm_gpte_reset_dirty: ptep is NULL", "ptep");
	VT_EXPECT_PANIC(do_reset_dirty_null, &on, 0,
	    "vmm_gpte_reset_dirty: ptep is NULL", "ptep");
	VT_EXPECT_PANIC(do_reset_accessed_null, NULL, 0,
	    "vmm_gpte_reset_accessed: ptep is NULL", "ptep");
	VT_EXPECT_PANIC(do_reset_accessed_null, &on, 0,
	    "vmm_gpte_reset_accessed: ptep is NULL", "ptep");
}

static void
do_is_mapped_null(void *arg __attribute__((unused)))
{
	pfn_t pfn;

	(void) vmm_gpte_is_mapped(NULL, &pfn, NULL);
}

static void
do_query_dirty_null(void *arg __attribute__((unused)))
{
	(void) vmm_gpte_query_dirty(NULL);
}

static void
do_query_accessed_null(void *arg __attribute__((unused)))
{
	(void) vmm_gpte_query_accessed(NULL);
}

static void
do_map_at_null(void *arg)
{
	(void) vmm_gpt_map_at(arg, NULL, 0x1234, T_PROT_RW, KTEST_MTRR_WB);
}

static void
do_walk_null(void *arg __attribute__((unused)))
{
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];

	(void) vmm_gpt_walk(NULL, 0, entries, LEVEL1);
}

static void
do_unmap_null(void *arg __attribute__((unused)))
{
	(void) vmm_gpt_unmap(NULL, 0);
}

static void
do_populate_null(void *arg __attribute__((unused)))
{
	vmm_gpt_populate_region(NULL, 0, T_PAGE);
}

/*
 * Other NULL entry and GPT pointers: a panic naming the function, not a
 * fault, in every build of the library.  The original ASSERTs ptep != NULL
 * in the queries and gpt != NULL in walk and unmap, so its DEBUG build
 * panics; its non-DEBUG build dereferences the NULL pointer (a fault: a
 * kernel panic of another kind), so those are skipped with it.  It has no
 * check in map_at (the CAS faults) or populate (faults), so those two are
 * library-only.
 */
VTEST(death_null_pointers, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	const unsigned ndebug_faults = VT_DEATH_LIBRARY_ONLY_NDEBUG;

	VT_EXPECT_PANIC(do_is_mapped_null, NULL, ndebug_faults,
	    "vmm_gpte_is_mapped: ptep is NULL", "ptep != ");
	VT_EXPECT_PANIC(do_query_dirty_null, NULL, ndebug_faults,
	    "vmm_gpte_query_dirty: ptep is NULL", "ptep != ");
	VT_EXPECT_PANIC(do_query_accessed_null, NULL, ndebug_faults,
	    "vmm_gpte_query_accessed: ptep is NULL", "ptep != ");
	VT_EXPECT_PANIC(do_walk_null, NULL, ndebug_faults,
	    "vmm_gpt_walk: gpt is NULL", "gpt != ");
	VT_EXPECT_PANIC(do_unmap_null, NULL, ndebug_faults,
	    "vmm_gpt_unmap: gpt is NULL", "gpt != ");
	VT_EXPECT_PANIC(do_map_at_null, gpt, VT_DEATH_LIBRARY_ONLY,
	    "vmm_gpt_map_at: ptep is NULL", NULL);
	VT_EXPECT_PANIC(do_populate_null, NULL, VT_DEATH_LIBRARY_ONLY,
	    "vmm_gpt_populate_region: gpt is NULL", NULL);
	vmm_gpt_free(gpt);
}

static void
do_impl_panic(void *arg __attribute__((unused)))
{
	vmm_gpt_impl_panic();
}

/* The stubs' target before init; both implementations say the same. */
VTEST(death_impl_panic, VT_PER_FORMAT)
{
	static const char msg[] = "Indirect function not hot-patched";

	VT_EXPECT_PANIC(do_impl_panic, NULL, 0, msg, msg);
}
