/*
 * Death tests: every bad input the library must refuse with a kernel panic,
 * rather than corrupt the tables (or, like a non-DEBUG build of the
 * original, carry on silently).
 *
 * The library's panic messages all read "<function>: <what> ...", with
 * values printed as 0x%lx; each test checks a stable substring naming the
 * function and the offending values.  The original (built with -DDEBUG)
 * panics on most of these through its ASSERTs and VERIFYs, with its own
 * wording, so only the panic itself is checked there; the cases it does not
 * catch at all are VT_DEATH_LIBRARY_ONLY, with a comment saying why.
 *
 * Each case runs in a child forked from the test, so the test's own GPT is
 * unchanged by it and is cleaned up (vacated and freed) by the test, which
 * the runner's leak check then verifies.
 */

#include <stdio.h>
#include <string.h>

#include "vtest.h"
#include "ktest.h"

#define	T_PAGE		0x1000ul
#define	T_2M		0x200000ul
#define	T_PROT_RW	3		/* PROT_READ | PROT_WRITE */

/* The four region operations, to run in a death child. */
typedef struct region_arg {
	vmm_gpt_t	*ra_gpt;
	uint64_t	ra_addr;
	uint64_t	ra_len;
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

	(void) vmm_gpt_unmap_region(ra->ra_gpt, ra->ra_addr, ra->ra_len);
}

static void
do_iter_init(void *arg)
{
	region_arg_t *ra = arg;
	vmm_gpt_iter_t iter;
	vmm_gpt_iter_entry_t entry;

	vmm_gpt_iter_init(&iter, ra->ra_gpt, ra->ra_addr, ra->ra_len);
	/* Should it not panic in init, at least drive it. */
	while (vmm_gpt_iter_next(&iter, &entry))
		;
}

typedef struct region_op {
	const char	*ro_name;
	void		(*ro_fn)(void *);
} region_op_t;

static const region_op_t op_populate = {
	"vmm_gpt_populate_region", do_populate };
static const region_op_t op_vacate = {
	"vmm_gpt_vacate_region", do_vacate };
static const region_op_t op_unmap_region = {
	"vmm_gpt_unmap_region", do_unmap_region };
static const region_op_t op_iter_init = {
	"vmm_gpt_iter_init", do_iter_init };

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
	region_arg_t ra = { gpt, addr, len };
	char msg[200];
	int n;

	n = snprintf(msg, sizeof (msg), "%s: ", op->ro_name);
	(void) snprintf(msg + n, sizeof (msg) - n, fmt,
	    (unsigned long)v1, (unsigned long)v2);
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

#define	EXPECT_UNALIGNED_ADDR(op, gpt, addr, len)			\
	expect_region_panic(__LINE__, (op), (gpt), (addr), (len), 0,	\
	    REF_ADDR, "addr 0x%lx is not page-aligned", (addr), 0)
#define	EXPECT_UNALIGNED_LEN(op, gpt, addr, len)			\
	expect_region_panic(__LINE__, (op), (gpt), (addr), (len), 0,	\
	    REF_LEN, "len 0x%lx is not page-aligned", (len), 0)
#define	EXPECT_WRAPS(op, gpt, addr, len, flags)				\
	expect_region_panic(__LINE__, (op), (gpt), (addr), (len),	\
	    (flags), REF_WRAPS, "range 0x%lx + 0x%lx wraps", (addr), (len))

/*
 * Every region operation refuses a start or a length that is not
 * page-aligned (the original ASSERTs both, live in DEBUG).  The GPT has a
 * populated (and partly mapped) region around the addresses, so that the
 * check cannot be skipped for lack of tables.
 */
static void
unaligned_cases(const region_op_t *op)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];

	vmm_gpt_populate_region(gpt, 0, 2 * T_2M);
	(void) vmm_gpt_walk(gpt, T_PAGE, entries, LEVEL1);
	VT_CHECK(vmm_gpt_map_at(gpt, entries[LEVEL1], 0x777, T_PROT_RW,
	    KTEST_MTRR_WB));

	EXPECT_UNALIGNED_ADDR(op, gpt, 0x1234, T_PAGE);
	EXPECT_UNALIGNED_ADDR(op, gpt, T_2M + 0x800, T_2M);
	EXPECT_UNALIGNED_ADDR(op, gpt, 0xfff, T_PAGE);
	EXPECT_UNALIGNED_LEN(op, gpt, 0, 0x1001);
	EXPECT_UNALIGNED_LEN(op, gpt, T_2M, 0x10);
	EXPECT_UNALIGNED_LEN(op, gpt, 0, T_2M - 1);

	/* Unchanged by the children: the mapping is still there. */
	pfn_t pfn = 0;
	VT_CHECK(vmm_gpte_is_mapped(entries[LEVEL1], &pfn, NULL));
	VT_CHECK_EQ(pfn, 0x777);
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, 0, 2 * T_2M), 1);
	vmm_gpt_vacate_region(gpt, 0, 2 * T_2M);
	vmm_gpt_free(gpt);
}

VTEST(death_populate_unaligned, VT_PER_FORMAT)
{
	unaligned_cases(&op_populate);
}

VTEST(death_vacate_unaligned, VT_PER_FORMAT)
{
	unaligned_cases(&op_vacate);
}

VTEST(death_unmap_region_unaligned, VT_PER_FORMAT)
{
	unaligned_cases(&op_unmap_region);
}

VTEST(death_iter_init_unaligned, VT_PER_FORMAT)
{
	unaligned_cases(&op_iter_init);
}

/*
 * A range whose end wraps past 2^64.  The original checks this only in
 * vmm_gpt_iter_init() (ASSERT3U(addr + len >= addr)), which
 * vmm_gpt_unmap_region() also goes through; its populate and vacate take
 * the wrapped end (below the start) as an empty range and silently do
 * nothing, so those two are library-only.
 */
static void
wrap_cases(const region_op_t *op, unsigned flags)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	EXPECT_WRAPS(op, gpt, 0xfffffffffffff000ul, 0x2000ul, flags);
	EXPECT_WRAPS(op, gpt, 0x8000000000000000ul, 0x8000000000001000ul,
	    flags);
	EXPECT_WRAPS(op, gpt, 0x2000ul, 0xfffffffffffff000ul, flags);
	vmm_gpt_free(gpt);
}

VTEST(death_populate_wraps, VT_PER_FORMAT)
{
	/* Original: no check (the empty wrapped range is a no-op). */
	wrap_cases(&op_populate, VT_DEATH_LIBRARY_ONLY);
}

VTEST(death_vacate_wraps, VT_PER_FORMAT)
{
	/* Original: no check (the empty wrapped range is a no-op). */
	wrap_cases(&op_vacate, VT_DEATH_LIBRARY_ONLY);
}

VTEST(death_unmap_region_wraps, VT_PER_FORMAT)
{
	wrap_cases(&op_unmap_region, 0);
}

VTEST(death_iter_init_wraps, VT_PER_FORMAT)
{
	wrap_cases(&op_iter_init, 0);
}

/*
 * Populating beyond the 48-bit guest-physical space that four levels of
 * tables cover.  Library-only: the original masks the table indices and
 * would alias the region onto low addresses (or, for a wrapped end, do
 * nothing) without complaint.
 */
VTEST(death_populate_beyond_48bit, VT_PER_FORMAT)
{
	static const struct {
		uint64_t addr, len;
	} cases[] = {
		{ 0xfffffffff000ul, 0x2000ul },		/* straddles 2^48 */
		{ 0x1000000000000ul, 0x1000ul },	/* starts at 2^48 */
		{ 0ul, 0x1000000001000ul },		/* all, and a page */
		{ 0x800000000000ul, 0x800000001000ul },	/* half, and a page */
	};
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	for (size_t i = 0; i < sizeof (cases) / sizeof (cases[0]); i++) {
		expect_region_panic(__LINE__, &op_populate, gpt, cases[i].addr,
		    cases[i].len, VT_DEATH_LIBRARY_ONLY, NULL,
		    "range 0x%lx + 0x%lx exceeds the 48-bit guest-physical "
		    "space", cases[i].addr, cases[i].len);
	}
	vmm_gpt_free(gpt);
}

/*
 * Populating a range twice overflows the leaf tables' reference counts
 * (512 entries each).  The original ASSERTs (ref_cnt < 512 and
 * ref_cnt + covered <= 512), live in DEBUG.
 */
VTEST(death_populate_refcount_overflow, VT_PER_FORMAT)
{
	/* The library names the leaf table (its first GPA). */
	static const char msg[] = "vmm_gpt_populate_region: leaf table "
	    "reference count overflow at gpa 0x200000";
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	region_arg_t ra = { gpt, T_2M, T_2M };

	/* A whole leaf table, populated twice. */
	vmm_gpt_populate_region(gpt, T_2M, T_2M);
	VT_EXPECT_PANIC(do_populate, &ra, 0, msg, "vgn_ref_cnt");
	vmm_gpt_vacate_region(gpt, T_2M, T_2M);

	/* 511 entries, then two more of which one overlaps: 513. */
	vmm_gpt_populate_region(gpt, T_2M, T_2M - T_PAGE);
	ra.ra_addr = 2 * T_2M - 2 * T_PAGE;
	ra.ra_len = 2 * T_PAGE;
	VT_EXPECT_PANIC(do_populate, &ra, 0, msg, "vgn_ref_cnt");
	vmm_gpt_vacate_region(gpt, T_2M, T_2M - T_PAGE);

	vmm_gpt_free(gpt);
}

/*
 * Vacating more than was populated underflows a leaf table's reference
 * count: one page populated, its whole 2 MiB table vacated.  The original
 * ASSERTs (ref_cnt >= covered), live in DEBUG.
 */
VTEST(death_vacate_refcount_underflow, VT_PER_FORMAT)
{
	static const char msg[] = "vmm_gpt_vacate_region: leaf table "
	    "reference count underflow at gpa 0x200000";
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	region_arg_t ra = { gpt, T_2M, T_2M };

	vmm_gpt_populate_region(gpt, T_2M + 5 * T_PAGE, T_PAGE);
	VT_EXPECT_PANIC(do_vacate, &ra, 0, msg,
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
 * A walk deeper than the leaves (the original ASSERT3U(depth <
 * MAX_GPT_LEVEL), live in DEBUG).
 */
VTEST(death_walk_depth, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	walk_arg_t wa = { gpt, MAX_GPT_LEVEL };

	vmm_gpt_populate_region(gpt, 0, T_PAGE);
	VT_EXPECT_PANIC(do_walk, &wa, 0,
	    "vmm_gpt_walk: depth 0x4 is beyond LEVEL1",
	    "assertion failed: depth < MAX_GPT_LEVEL");
	wa.wa_depth = (vmm_gpt_node_level_t)7;
	VT_EXPECT_PANIC(do_walk, &wa, 0,
	    "vmm_gpt_walk: depth 0x7 is beyond LEVEL1",
	    "assertion failed: depth < MAX_GPT_LEVEL");
	vmm_gpt_vacate_region(gpt, 0, T_PAGE);
	vmm_gpt_free(gpt);
}

typedef struct map_arg {
	vmm_gpt_t		*ma_gpt;
	vmm_gpt_entry_t		*ma_ptep;
	pfn_t			ma_pfn;
} map_arg_t;

static void
do_map_at(void *arg)
{
	map_arg_t *ma = arg;

	(void) vmm_gpt_map_at(ma->ma_gpt, ma->ma_ptep, ma->ma_pfn, T_PROT_RW,
	    KTEST_MTRR_WB);
}

/*
 * Mapping over an entry that maps a different page: the caller broke the
 * contract ("a conflicting PFN is not mapped at the requested location").
 * The library checks it in its debug build (the tests build it so), the
 * original in DEBUG (ASSERT3U(old_pfn, ==, new_pfn)).
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

	map_arg_t ma = { gpt, entries[LEVEL1], 0x5678 };
	VT_EXPECT_PANIC(do_map_at, &ma, 0,
	    "vmm_gpt_map_at: entry already maps pfn 0x1234",
	    "assertion failed: old_pfn == new_pfn");
	ma.ma_pfn = 0x1235;
	VT_EXPECT_PANIC(do_map_at, &ma, 0,
	    "vmm_gpt_map_at: entry already maps pfn 0x1234",
	    "assertion failed: old_pfn == new_pfn");

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
 * Resetting A/D bits through a NULL entry pointer (the original's ASSERT
 * and VERIFY3P(ptep, !=, NULL)); a panic, not a fault.
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
 * fault.  The original ASSERTs ptep != NULL in the queries and gpt != NULL
 * in walk and unmap (live in DEBUG); it has no check in map_at (the CAS
 * faults) or populate (faults), so those two are library-only.
 */
VTEST(death_null_pointers, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	VT_EXPECT_PANIC(do_is_mapped_null, NULL, 0,
	    "vmm_gpte_is_mapped: ptep is NULL", "ptep != ");
	VT_EXPECT_PANIC(do_query_dirty_null, NULL, 0,
	    "vmm_gpte_query_dirty: ptep is NULL", "ptep != ");
	VT_EXPECT_PANIC(do_query_accessed_null, NULL, 0,
	    "vmm_gpte_query_accessed: ptep is NULL", "ptep != ");
	VT_EXPECT_PANIC(do_walk_null, NULL, 0,
	    "vmm_gpt_walk: gpt is NULL", "gpt != ");
	VT_EXPECT_PANIC(do_unmap_null, NULL, 0,
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
