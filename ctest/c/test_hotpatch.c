/*
 * Tests of the hot-patch contract (docs/abi.md, "The hot-patch contract").
 *
 * The library calls the PTE format only through three 5-byte near-jmp stubs
 * (stubs.S): vmm_gpti_map_table, vmm_gpti_map_page and vmm_gpti_parse.
 * vmm_gpt_init() validates all three before touching any of them, then
 * retargets them to the format's functions with hot_patch_kernel_text();
 * vmm_gpt_fini() puts them back to vmm_gpt_impl_panic.  A refused init must
 * warn through cmn_err(CE_WARN) naming the symbols, patch nothing and leave
 * no format installed.
 *
 * These tests are VT_NO_IMPL: each calls vmm_gpt_init()/vmm_gpt_fini()
 * itself, in its own forked child, so the stubs it patches (including the
 * tampering done by the tests themselves) never leak into another test.
 */

#ifndef _GNU_SOURCE
#define	_GNU_SOURCE
#endif

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vtest.h"
#include "ktest.h"

/*
 * The kernel's text patcher, as the stand-in provides it.  The tests use it
 * to tamper with the stubs, exactly as another (buggy) patcher might.
 */
extern void hot_patch_kernel_text(caddr_t, uint32_t, uint_t);

#define	JMP_NEAR_OPCODE	0xe9
#define	INT3_OPCODE	0xcc
#define	CE_WARN_LEVEL	2
#define	NSTUBS		3

#define	T_PROT_READ	1
#define	T_PROT_WRITE	2
#define	T_PROT_EXEC	4

/* The signatures the stubs are called with (those of the format's fields). */
typedef uint64_t (*map_table_fn_t)(pfn_t);
typedef uint64_t (*map_page_fn_t)(pfn_t, uint_t, uint8_t);
typedef bool (*parse_fn_t)(uint64_t, pfn_t *, uint_t *);

/*
 * The stubs again, declared with those signatures (ktest.h declares them as
 * plain code addresses), for calling through them as the library does.
 */
extern uint64_t stub_call_map_table(pfn_t) __asm__("vmm_gpti_map_table");
extern uint64_t stub_call_map_page(pfn_t, uint_t, uint8_t)
    __asm__("vmm_gpti_map_page");
extern bool stub_call_parse(uint64_t, pfn_t *, uint_t *)
    __asm__("vmm_gpti_parse");

/* Stub index, in the order the original validates and patches them. */
enum { STUB_MAP_TABLE = 0, STUB_MAP_PAGE = 1, STUB_PARSE = 2 };

static const char *const stub_names[NSTUBS] = {
	"vmm_gpti_map_table",
	"vmm_gpti_map_page",
	"vmm_gpti_parse",
};

static uint8_t *
stub_addr(int i)
{
	switch (i) {
	case STUB_MAP_TABLE:
		return ((uint8_t *)vmm_gpti_map_table);
	case STUB_MAP_PAGE:
		return ((uint8_t *)vmm_gpti_map_page);
	default:
		return ((uint8_t *)vmm_gpti_parse);
	}
}

/* The function of `impl` that stub `i` should jump to once it is installed. */
static uintptr_t
impl_fn(const vmm_pte_impl_t *impl, int i)
{
	switch (i) {
	case STUB_MAP_TABLE:
		return ((uintptr_t)impl->vpi_map_table);
	case STUB_MAP_PAGE:
		return ((uintptr_t)impl->vpi_map_page);
	default:
		return ((uintptr_t)impl->vpi_pte_parse);
	}
}

static int32_t
stub_disp(int i)
{
	int32_t disp;

	/* The displacement is unaligned: copy it out byte-wise. */
	(void) memcpy(&disp, stub_addr(i) + 1, sizeof (disp));
	return (disp);
}

/*
 * Where stub `i` jumps: the address after the 5-byte instruction plus the
 * sign-extended displacement.  Fails the test if it is no longer a near jmp.
 */
static uintptr_t
stub_target(int i)
{
	const uint8_t *p = stub_addr(i);

	if (p[0] != JMP_NEAR_OPCODE) {
		vtest_fail(__FILE__, __LINE__, "stub %s starts with 0x%02x, "
		    "not a near jmp (0xe9)", stub_names[i], p[0]);
	}
	return ((uintptr_t)p + KTEST_STUB_LEN + (intptr_t)stub_disp(i));
}

/* A byte-for-byte copy of the three stubs. */
typedef struct stub_snap {
	uint8_t	ss_bytes[NSTUBS][KTEST_STUB_LEN];
} stub_snap_t;

static void
stub_snap(stub_snap_t *s)
{
	for (int i = 0; i < NSTUBS; i++)
		(void) memcpy(s->ss_bytes[i], stub_addr(i), KTEST_STUB_LEN);
}

static void
stub_snap_check(const stub_snap_t *s, int line)
{
	for (int i = 0; i < NSTUBS; i++) {
		const uint8_t *p = stub_addr(i);

		for (int b = 0; b < KTEST_STUB_LEN; b++) {
			if (p[b] != s->ss_bytes[i][b]) {
				vtest_fail(__FILE__, line, "stub %s byte %d "
				    "changed: 0x%02x, was 0x%02x", stub_names[i],
				    b, p[b], s->ss_bytes[i][b]);
			}
		}
	}
}

/* Tampering, through the kernel's own patcher (as the library patches). */
static void
tamper_opcode(int i, uint8_t opcode)
{
	hot_patch_kernel_text((caddr_t)stub_addr(i), opcode, 1);
	VT_CHECK_EQ(stub_addr(i)[0], opcode);
}

static void
tamper_target(int i, uintptr_t target)
{
	const intptr_t disp =
	    (intptr_t)(target - ((uintptr_t)stub_addr(i) + KTEST_STUB_LEN));

	VT_CHECK(disp >= INT32_MIN && disp <= INT32_MAX);
	hot_patch_kernel_text((caddr_t)(stub_addr(i) + 1),
	    (uint32_t)(int32_t)disp, 4);
	VT_CHECK_EQ(stub_target(i), target);
}

/* Puts back the bytes of stub `i` as they were in `s`. */
static void
stub_restore(const stub_snap_t *s, int i)
{
	uint32_t disp;

	(void) memcpy(&disp, &s->ss_bytes[i][1], sizeof (disp));
	hot_patch_kernel_text((caddr_t)stub_addr(i), s->ss_bytes[i][0], 1);
	hot_patch_kernel_text((caddr_t)(stub_addr(i) + 1), disp, 4);
	VT_CHECK(memcmp(stub_addr(i), s->ss_bytes[i], KTEST_STUB_LEN) == 0);
}

/* No format installed: every stub is a near jmp to vmm_gpt_impl_panic. */
static void
check_uninstalled(int line)
{
	for (int i = 0; i < NSTUBS; i++) {
		if (stub_target(i) != (uintptr_t)vmm_gpt_impl_panic) {
			vtest_fail(__FILE__, line, "stub %s jumps to %p, not "
			    "vmm_gpt_impl_panic (%p)", stub_names[i],
			    (void *)stub_target(i), (void *)vmm_gpt_impl_panic);
		}
	}
}

/* Protections and memory types the formats accept, for the stub calls. */
static const uint_t test_prots[] = {
	T_PROT_READ,
	T_PROT_READ | T_PROT_WRITE,
	T_PROT_READ | T_PROT_EXEC,
	T_PROT_READ | T_PROT_WRITE | T_PROT_EXEC,
};
static const uint8_t test_attrs[] = { KTEST_MTRR_UC, KTEST_MTRR_WB };
static const pfn_t test_pfns[] = { 0, 1, 0x1234, 0x80000, 0xffffffffful };

/*
 * `impl` is installed: each stub jumps straight to its function, calls
 * through the stubs give the format's own results, and the library uses the
 * format for everything it does not call through the stubs (A/D bits,
 * get_pmtp, can_track_dirty).  `other` is the other format, whose A/D bits
 * must then be ignored.
 */
static void
check_installed(const vmm_pte_impl_t *impl, const vmm_pte_impl_t *other,
    int line)
{
	for (int i = 0; i < NSTUBS; i++) {
		if (stub_target(i) != impl_fn(impl, i)) {
			vtest_fail(__FILE__, line, "stub %s jumps to %p, not "
			    "the format's function %p", stub_names[i],
			    (void *)stub_target(i), (void *)impl_fn(impl, i));
		}
	}

	/*
	 * Call through the stubs, cast to the signatures of the format's
	 * fields, and compare with calling the format directly.
	 */
	const map_table_fn_t s_map_table = stub_call_map_table;
	const map_page_fn_t s_map_page = stub_call_map_page;
	const parse_fn_t s_parse = stub_call_parse;

	for (size_t p = 0; p < sizeof (test_pfns) / sizeof (test_pfns[0]);
	    p++) {
		const pfn_t pfn = test_pfns[p];

		VT_CHECK_EQ(s_map_table(pfn), impl->vpi_map_table(pfn));
		for (size_t r = 0;
		    r < sizeof (test_prots) / sizeof (test_prots[0]); r++) {
			for (size_t a = 0;
			    a < sizeof (test_attrs) / sizeof (test_attrs[0]);
			    a++) {
				const uint_t prot = test_prots[r];
				const uint8_t attr = test_attrs[a];
				const uint64_t pte = s_map_page(pfn, prot, attr);
				pfn_t spfn = 1, dpfn = 2;
				uint_t sprot = 3, dprot = 4;

				VT_CHECK_EQ(pte,
				    impl->vpi_map_page(pfn, prot, attr));
				VT_CHECK(s_parse(pte, &spfn, &sprot));
				VT_CHECK(impl->vpi_pte_parse(pte, &dpfn,
				    &dprot));
				VT_CHECK_EQ(spfn, dpfn);
				VT_CHECK_EQ(sprot, dprot);
				VT_CHECK_EQ(spfn, pfn);
				VT_CHECK(s_parse(pte, NULL, NULL));
			}
		}
	}
	VT_CHECK(!s_parse(0, NULL, NULL));

	vmm_gpt_t *gpt = vmm_gpt_alloc();
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];

	/*
	 * get_pmtp: the root table is the page behind the LEVEL4 entry of GPA
	 * 0 (index 0); the stand-in's PFNs are identity-mapped addresses.
	 */
	(void) vmm_gpt_walk(gpt, 0, entries, LEVEL4);
	VT_CHECK_NOT_NULL(entries[LEVEL4]);
	VT_CHECK_EQ((uintptr_t)entries[LEVEL4] & 0xfff, 0);
	const pfn_t root_pfn = KTEST_VA_TO_PFN(entries[LEVEL4]);
	VT_CHECK_EQ(vmm_gpt_get_pmtp(gpt, false),
	    impl->vpi_get_pmtp(root_pfn, false));
	VT_CHECK_EQ(vmm_gpt_get_pmtp(gpt, true),
	    impl->vpi_get_pmtp(root_pfn, true));

	/* can_track_dirty asks the installed format, every time. */
	ktest_set_hw_ad_supported(false);
	VT_CHECK_EQ(vmm_gpt_can_track_dirty(gpt), impl->vpi_hw_ad_supported());
	ktest_set_hw_ad_supported(true);
	VT_CHECK_EQ(vmm_gpt_can_track_dirty(gpt), impl->vpi_hw_ad_supported());
	VT_CHECK(vmm_gpt_can_track_dirty(gpt));

	/* The A/D bits are the installed format's, not the other one's. */
	vmm_gpt_entry_t e = impl->vpi_bit_dirty;
	VT_CHECK(vmm_gpte_query_dirty(&e));
	VT_CHECK(!vmm_gpte_query_accessed(&e));
	e = impl->vpi_bit_accessed;
	VT_CHECK(vmm_gpte_query_accessed(&e));
	VT_CHECK(!vmm_gpte_query_dirty(&e));
	e = other->vpi_bit_accessed | other->vpi_bit_dirty;
	VT_CHECK(!vmm_gpte_query_accessed(&e));
	VT_CHECK(!vmm_gpte_query_dirty(&e));

	/*
	 * A small map/unmap cycle: the tables are linked and the leaf written
	 * with exactly the format's entries.
	 */
	const uint64_t gpa = 0x40201000ul;
	vmm_gpt_populate_region(gpt, gpa, 0x1000);
	VT_CHECK_EQ(vmm_gpt_walk(gpt, gpa, entries, LEVEL1), gpa);
	for (int lvl = LEVEL4; lvl < LEVEL1; lvl++) {
		VT_CHECK_NOT_NULL(entries[lvl]);
		VT_CHECK_EQ(*entries[lvl], impl->vpi_map_table(
		    KTEST_VA_TO_PFN((uintptr_t)entries[lvl + 1] &
		    ~(uintptr_t)0xfff)));
	}
	VT_CHECK_NOT_NULL(entries[LEVEL1]);
	VT_CHECK(vmm_gpt_map_at(gpt, entries[LEVEL1], 0x4242,
	    T_PROT_READ | T_PROT_WRITE, KTEST_MTRR_WB));
	VT_CHECK_EQ(*entries[LEVEL1],
	    impl->vpi_map_page(0x4242, T_PROT_READ | T_PROT_WRITE,
	    KTEST_MTRR_WB));
	pfn_t pfn = 0;
	VT_CHECK(vmm_gpte_is_mapped(entries[LEVEL1], &pfn, NULL));
	VT_CHECK_EQ(pfn, 0x4242);
	VT_CHECK(vmm_gpt_unmap(gpt, gpa));
	vmm_gpt_vacate_region(gpt, gpa, 0x1000);
	vmm_gpt_free(gpt);
}

/* vmm_gpt_init() that must succeed, patching each stub once. */
static void
init_ok(const vmm_pte_impl_t *impl)
{
	const uint64_t before = ktest_hot_patch_count();

	VT_CHECK(vmm_gpt_init(impl));
	VT_CHECK_EQ(ktest_hot_patch_count() - before, NSTUBS);
}

/* vmm_gpt_fini(), patching each stub once, back to vmm_gpt_impl_panic. */
static void
fini_ok(void)
{
	const uint64_t before = ktest_hot_patch_count();

	vmm_gpt_fini();
	VT_CHECK_EQ(ktest_hot_patch_count() - before, NSTUBS);
	check_uninstalled(__LINE__);
}

static void
round_trip(const vmm_pte_impl_t *first, const vmm_pte_impl_t *second)
{
	ktest_cmn_err_clear();
	check_uninstalled(__LINE__);

	init_ok(first);
	check_installed(first, second, __LINE__);
	fini_ok();

	/* Re-installing, with the other format, works the same way. */
	init_ok(second);
	check_installed(second, first, __LINE__);
	fini_ok();

	/* Nothing was worth a warning. */
	VT_CHECK_EQ(ktest_cmn_err_count(), 0);
}

VTEST(hotpatch_round_trip_ept_then_rvi, VT_NO_IMPL)
{
	round_trip(&ept_pte_impl, &rvi_pte_impl);
}

VTEST(hotpatch_round_trip_rvi_then_ept, VT_NO_IMPL)
{
	round_trip(&rvi_pte_impl, &ept_pte_impl);
}

/*
 * Many load/unload cycles: the displacement arithmetic must be exact every
 * time (any drift would show up as a wrong target), and each init and fini
 * patches exactly three times.
 */
VTEST(hotpatch_repeated_cycles, VT_NO_IMPL)
{
	const uint64_t before = ktest_hot_patch_count();
	const int cycles = 64;

	ktest_cmn_err_clear();
	for (int c = 0; c < cycles; c++) {
		const vmm_pte_impl_t *impl =
		    (c & 1) ? &rvi_pte_impl : &ept_pte_impl;

		VT_CHECK(vmm_gpt_init(impl));
		for (int i = 0; i < NSTUBS; i++)
			VT_CHECK_EQ(stub_target(i), impl_fn(impl, i));
		vmm_gpt_fini();
		check_uninstalled(__LINE__);
	}
	VT_CHECK_EQ(ktest_hot_patch_count() - before, 2 * NSTUBS * cycles);
	VT_CHECK_EQ(ktest_cmn_err_count(), 0);
}

/*
 * vmm_gpt_init(impl) must refuse: return false, warn exactly once at
 * CE_WARN with `msg` (or, when `msg` is NULL, with a message that starts with
 * `prefix` and ends with `suffix`), call hot_patch_kernel_text() zero times
 * and leave all three stubs byte-for-byte as they were.
 */
static void
expect_refused(const vmm_pte_impl_t *impl, const char *msg,
    const char *prefix, const char *suffix, int line)
{
	stub_snap_t before;

	stub_snap(&before);
	ktest_cmn_err_clear();
	const uint64_t patches = ktest_hot_patch_count();

	if (vmm_gpt_init(impl))
		vtest_fail(__FILE__, line, "vmm_gpt_init() did not refuse");
	if (ktest_hot_patch_count() != patches) {
		vtest_fail(__FILE__, line, "a refused vmm_gpt_init() called "
		    "hot_patch_kernel_text() %llu times",
		    (unsigned long long)(ktest_hot_patch_count() - patches));
	}
	stub_snap_check(&before, line);

	if (ktest_cmn_err_count() != 1) {
		vtest_fail(__FILE__, line, "expected one cmn_err(), got %zu",
		    ktest_cmn_err_count());
	}
	if (ktest_cmn_err_level(0) != CE_WARN_LEVEL) {
		vtest_fail(__FILE__, line, "cmn_err level %d, not CE_WARN",
		    ktest_cmn_err_level(0));
	}

	const char *got = ktest_cmn_err_message(0);
	VT_CHECK_NOT_NULL(got);
	if (msg != NULL) {
		if (strcmp(got, msg) != 0) {
			vtest_fail(__FILE__, line, "warning \"%s\", expected "
			    "\"%s\"", got, msg);
		}
	} else {
		const size_t gl = strlen(got), sl = strlen(suffix);

		if (strncmp(got, prefix, strlen(prefix)) != 0 || gl < sl ||
		    strcmp(got + gl - sl, suffix) != 0) {
			vtest_fail(__FILE__, line, "warning \"%s\", expected "
			    "\"%s...%s\"", got, prefix, suffix);
		}
	}
}

/*
 * A stub that is not a near jmp: nothing is patched, not even the stubs
 * validated before it (which are all fine).
 */
static void
refuse_non_jmp(int bad, const vmm_pte_impl_t *impl)
{
	stub_snap_t orig;
	char msg[160];

	check_uninstalled(__LINE__);
	stub_snap(&orig);
	tamper_opcode(bad, INT3_OPCODE);

	(void) snprintf(msg, sizeof (msg), "vmm: non-JMP instruction found "
	    "when attempting to hotpatch %s", stub_names[bad]);
	expect_refused(impl, msg, NULL, NULL, __LINE__);

	/* The refusal left no format installed: a good init now works. */
	stub_restore(&orig, bad);
	check_uninstalled(__LINE__);
	init_ok(impl);
	for (int i = 0; i < NSTUBS; i++)
		VT_CHECK_EQ(stub_target(i), impl_fn(impl, i));
	fini_ok();
}

VTEST(hotpatch_refuse_non_jmp_map_page, VT_NO_IMPL)
{
	refuse_non_jmp(STUB_MAP_PAGE, &ept_pte_impl);
}

VTEST(hotpatch_refuse_non_jmp_parse, VT_NO_IMPL)
{
	refuse_non_jmp(STUB_PARSE, &rvi_pte_impl);
}

/*
 * The last stub jumps to a function other than the installed format's
 * (vmm_gpt_impl_panic): here vmm_gpt_alloc, an exported function, so that
 * modgetsymname() can name it.
 */
VTEST(hotpatch_refuse_unexpected_target, VT_NO_IMPL)
{
	stub_snap_t orig;

	check_uninstalled(__LINE__);
	stub_snap(&orig);
	tamper_target(STUB_PARSE, (uintptr_t)vmm_gpt_alloc);

	expect_refused(&ept_pte_impl, "vmm: JMP instr @ vmm_gpti_parse has "
	    "unexpected target vmm_gpt_alloc != vmm_gpt_impl_panic",
	    NULL, NULL, __LINE__);

	stub_restore(&orig, STUB_PARSE);
	init_ok(&rvi_pte_impl);
	check_installed(&rvi_pte_impl, &ept_pte_impl, __LINE__);
	fini_ok();
}

/*
 * A stub that already jumps to the very function init would install is
 * still refused: its target is not the installed (uninit) format's.  The
 * format's functions may be static, so their name is not checked.
 */
VTEST(hotpatch_refuse_target_already_new, VT_NO_IMPL)
{
	stub_snap_t orig;

	check_uninstalled(__LINE__);
	stub_snap(&orig);
	tamper_target(STUB_MAP_PAGE, (uintptr_t)ept_pte_impl.vpi_map_page);

	expect_refused(&ept_pte_impl, NULL,
	    "vmm: JMP instr @ vmm_gpti_map_page has unexpected target ",
	    " != vmm_gpt_impl_panic", __LINE__);

	stub_restore(&orig, STUB_MAP_PAGE);
	init_ok(&ept_pte_impl);
	check_installed(&ept_pte_impl, &rvi_pte_impl, __LINE__);
	fini_ok();
}

/*
 * Maps one page, more than 4 GiB away from the stubs (so out of reach of a
 * rel32 displacement, which reaches +-2 GiB), holding `xor eax,eax; ret`.
 */
static void *
map_far_page(size_t pgsz)
{
	static const uint8_t code[] = { 0x31, 0xc0, 0xc3 };
	const uintptr_t site = (uintptr_t)vmm_gpti_map_page;
	const uint64_t gib = 1ull << 30;
	const int64_t offsets[] = {
		8, 16, 64, 256, 1024, 4096, 16384,
		-8, -16, -64, -256, -1024, -4096,
	};
	void *page = NULL;

	for (size_t i = 0; i < sizeof (offsets) / sizeof (offsets[0]); i++) {
		const uintptr_t hint =
		    (site + (uintptr_t)(offsets[i] * (int64_t)gib)) &
		    ~(uintptr_t)(pgsz - 1);

		/* Stay in the canonical lower half, above the low guard. */
		if ((offsets[i] > 0 && hint < site) ||
		    (offsets[i] < 0 && hint > site) ||
		    hint < 0x100000ul || hint >= 0x7fff00000000ul)
			continue;

		void *p = mmap((void *)hint, pgsz, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED)
			continue;

		/* Older kernels take the flag as a mere hint: verify. */
		const uintptr_t a = (uintptr_t)p;
		const uint64_t dist = a > site ? a - site : site - a;
		if (dist <= 4 * gib) {
			(void) munmap(p, pgsz);
			continue;
		}
		page = p;
		break;
	}
	if (page == NULL) {
		vtest_fail(__FILE__, __LINE__, "could not map a page more than "
		    "4 GiB away from the stubs at %p", (void *)site);
	}

	(void) memcpy(page, code, sizeof (code));
	if (mprotect(page, pgsz, PROT_READ | PROT_EXEC) == 0) {
		/* It is a real function (when the system lets it execute). */
		VT_CHECK_EQ(((map_page_fn_t)page)(1, T_PROT_READ,
		    KTEST_MTRR_WB), 0);
	}
	return (page);
}

/*
 * The new target is out of near-jmp reach of its stub: refused before any
 * stub is patched, although the first stub's patch alone would be fine.
 * The far page is in no module, so modgetsymname() cannot name it.
 */
VTEST(hotpatch_refuse_target_too_far, VT_NO_IMPL)
{
	const size_t pgsz = (size_t)sysconf(_SC_PAGESIZE);
	void *far = map_far_page(pgsz);
	struct vmm_pte_impl far_impl = ept_pte_impl;

	far_impl.vpi_map_page = (map_page_fn_t)far;

	check_uninstalled(__LINE__);
	expect_refused(&far_impl, "vmm: near-JMP to new target <null> is too "
	    "far for site vmm_gpti_map_page", NULL, NULL, __LINE__);
	check_uninstalled(__LINE__);

	/* Not installed, so the far page can go; a good init now works. */
	VT_CHECK_EQ(munmap(far, pgsz), 0);
	init_ok(&ept_pte_impl);
	check_installed(&ept_pte_impl, &rvi_pte_impl, __LINE__);
	fini_ok();
}

static void
do_init(void *arg)
{
	(void) vmm_gpt_init(arg);
}

static void
do_fini(void *arg __attribute__((unused)))
{
	vmm_gpt_fini();
}

/* A second vmm_gpt_init() without vmm_gpt_fini() is a kernel bug: panic. */
VTEST(hotpatch_double_init_panics, VT_NO_IMPL)
{
	init_ok(&ept_pte_impl);

	VT_EXPECT_PANIC(do_init, (void *)&rvi_pte_impl, 0,
	    "vmm_gpt_init: a PTE format is already installed",
	    "vmm_pte_impl == &vmm_pte_uninit_impl");
	VT_EXPECT_PANIC(do_init, (void *)&ept_pte_impl, 0,
	    "vmm_gpt_init: a PTE format is already installed",
	    "vmm_pte_impl == &vmm_pte_uninit_impl");

	/* (The panics were in children: this process is unchanged.) */
	for (int i = 0; i < NSTUBS; i++)
		VT_CHECK_EQ(stub_target(i), impl_fn(&ept_pte_impl, i));
	fini_ok();
}

static void
do_get_pmtp(void *arg)
{
	(void) vmm_gpt_get_pmtp(arg, false);
}

static void
do_can_track_dirty(void *arg)
{
	(void) vmm_gpt_can_track_dirty(arg);
}

/*
 * Bad formats: NULL, or one with a NULL stub target.  The library panics in
 * every build (library-only: the original dereferences a NULL format; for a
 * NULL stub target, in the kernel, whose text lies in the top 2 GiB, it
 * would patch the stub to jump to address 0, and here, where 0 is out of
 * reach, it warns that the target is too far and refuses).
 */
VTEST(hotpatch_bad_impl_panics, VT_NO_IMPL)
{
	struct vmm_pte_impl no_parse = ept_pte_impl;
	struct vmm_pte_impl no_map_table = rvi_pte_impl;

	no_parse.vpi_pte_parse = NULL;
	no_map_table.vpi_map_table = NULL;

	VT_EXPECT_PANIC(do_init, NULL, VT_DEATH_LIBRARY_ONLY,
	    "vmm_gpt_init: NULL vmm_pte_impl", NULL);
	VT_EXPECT_PANIC(do_init, &no_parse, VT_DEATH_LIBRARY_ONLY,
	    "vmm_gpt_init: vmm_pte_impl has a NULL stub target", NULL);
	VT_EXPECT_PANIC(do_init, &no_map_table, VT_DEATH_LIBRARY_ONLY,
	    "vmm_gpt_init: vmm_pte_impl has a NULL stub target", NULL);

	/* Nothing was installed or patched here. */
	check_uninstalled(__LINE__);
	init_ok(&ept_pte_impl);
	fini_ok();
}

/*
 * A format whose vpi_get_pmtp and vpi_hw_ad_supported are NULL installs, as
 * in the original (they are no stub targets: nothing checks them), and its
 * table operations work.
 */
static void
init_no_pmtp(void)
{
	static struct vmm_pte_impl no_pmtp;

	no_pmtp = rvi_pte_impl;
	no_pmtp.vpi_get_pmtp = NULL;
	no_pmtp.vpi_hw_ad_supported = NULL;
	init_ok(&no_pmtp);
	for (int i = 0; i < NSTUBS; i++)
		VT_CHECK_EQ(stub_target(i), impl_fn(&no_pmtp, i));
}

VTEST(hotpatch_installs_null_pmtp_and_ad_functions, VT_NO_IMPL)
{
	vmm_gpt_t *gpt;
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];

	init_no_pmtp();
	gpt = vmm_gpt_alloc();
	vmm_gpt_populate_region(gpt, 0, 0x1000);
	VT_CHECK_EQ(vmm_gpt_walk(gpt, 0, entries, LEVEL1), 0);
	VT_CHECK_NOT_NULL(entries[LEVEL1]);
	VT_CHECK(vmm_gpt_map_at(gpt, entries[LEVEL1], 0x1234, T_PROT_READ,
	    KTEST_MTRR_WB));
	VT_CHECK(vmm_gpt_unmap(gpt, 0));
	vmm_gpt_vacate_region(gpt, 0, 0x1000);
	vmm_gpt_free(gpt);
	fini_ok();
}

/*
 * Calling the NULL functions of such a format is the bug: the library
 * panics in every build, naming the function; the original calls address
 * 0 (a fault), so this is library-only.
 */
VTEST(hotpatch_null_pmtp_and_ad_functions_panic, VT_NO_IMPL | VT_LIBRARY_ONLY)
{
	vmm_gpt_t *gpt;

	init_no_pmtp();
	gpt = vmm_gpt_alloc();
	VT_EXPECT_PANIC(do_get_pmtp, gpt, 0,
	    "vmm_gpt_get_pmtp: vpi_get_pmtp is NULL", NULL);
	VT_EXPECT_PANIC(do_can_track_dirty, gpt, 0,
	    "vmm_gpt_can_track_dirty: vpi_hw_ad_supported is NULL", NULL);
	vmm_gpt_free(gpt);
	fini_ok();
}

/*
 * vmm_gpt_fini() cannot fail gracefully (module unload): stubs that no
 * longer match the installed format make it panic (the original's VERIFY).
 */
VTEST(hotpatch_fini_tampered_panics, VT_NO_IMPL)
{
	stub_snap_t orig;

	init_ok(&rvi_pte_impl);
	stub_snap(&orig);

	/* The last stub is no longer a jmp. */
	tamper_opcode(STUB_PARSE, INT3_OPCODE);
	VT_EXPECT_PANIC(do_fini, NULL, 0, "vmm_gpt_fini", NULL);
	stub_restore(&orig, STUB_PARSE);

	/* The second stub jumps somewhere else. */
	tamper_target(STUB_MAP_PAGE, (uintptr_t)ept_pte_impl.vpi_map_page);
	VT_EXPECT_PANIC(do_fini, NULL, 0, "vmm_gpt_fini", NULL);
	stub_restore(&orig, STUB_MAP_PAGE);

	/* Untampered, fini works. */
	for (int i = 0; i < NSTUBS; i++)
		VT_CHECK_EQ(stub_target(i), impl_fn(&rvi_pte_impl, i));
	fini_ok();
}

static void
call_map_table_stub(void *arg __attribute__((unused)))
{
	(void) stub_call_map_table(0x1234);
}

static void
call_map_page_stub(void *arg __attribute__((unused)))
{
	(void) stub_call_map_page(0x1234, T_PROT_READ, KTEST_MTRR_WB);
}

static void
call_parse_stub(void *arg __attribute__((unused)))
{
	pfn_t pfn;
	uint_t prot;

	(void) stub_call_parse(0x1234007, &pfn, &prot);
}

static void
expect_stubs_panic(void)
{
	static const char msg[] = "Indirect function not hot-patched";

	VT_EXPECT_PANIC(call_map_table_stub, NULL, 0, msg, msg);
	VT_EXPECT_PANIC(call_map_page_stub, NULL, 0, msg, msg);
	VT_EXPECT_PANIC(call_parse_stub, NULL, 0, msg, msg);
}

/* Before init, and again after fini, every stub lands in the panic. */
VTEST(hotpatch_stub_before_init_panics, VT_NO_IMPL)
{
	check_uninstalled(__LINE__);
	expect_stubs_panic();

	init_ok(&ept_pte_impl);
	fini_ok();
	expect_stubs_panic();
}

/* The "no format" implementation: all vmm_gpt_impl_panic, both bits 0. */
VTEST(hotpatch_uninit_impl, VT_NO_IMPL)
{
	const vmm_pte_impl_t *u = &vmm_pte_uninit_impl;
	const uintptr_t p = (uintptr_t)vmm_gpt_impl_panic;

	VT_CHECK_EQ(sizeof (struct vmm_pte_impl), 56);
	VT_CHECK_EQ(offsetof(struct vmm_pte_impl, vpi_hw_ad_supported), 48);

	VT_CHECK_EQ((uintptr_t)u->vpi_map_table, p);
	VT_CHECK_EQ((uintptr_t)u->vpi_map_page, p);
	VT_CHECK_EQ((uintptr_t)u->vpi_pte_parse, p);
	VT_CHECK_EQ((uintptr_t)u->vpi_get_pmtp, p);
	VT_CHECK_EQ((uintptr_t)u->vpi_hw_ad_supported, p);
	VT_CHECK_EQ(u->vpi_bit_accessed, 0);
	VT_CHECK_EQ(u->vpi_bit_dirty, 0);

	/* And it is what the stubs point at before any init. */
	check_uninstalled(__LINE__);
}
