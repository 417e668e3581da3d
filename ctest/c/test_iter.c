/*
 * vmm_gpt_iter_init() and vmm_gpt_iter_next().
 *
 * The iterator emits, in address order, every leaf entry of [addr, addr +
 * len) for which a leaf table exists, skipping the address space that has no
 * leaf table; each entry comes with its page address and the pointer to the
 * leaf PTE.  Note that it emits every slot of an existing leaf table, even
 * slots outside any populated region: existence of the table is what counts.
 */

#include "tutil.h"

/* A run of pages expected from an iteration. */
typedef struct run {
	uint64_t	r_addr;
	uint64_t	r_len;
} run_t;

/*
 * Iterate [addr, addr + len) and check that it yields exactly the pages of
 * `runs` (ascending), each with the leaf entry hardware uses for it, and
 * then keeps returning false.
 */
#define	CHECK_ITER(impl, gpt, addr, len, runs, nruns) \
	check_iter_at(__LINE__, (impl), (gpt), (addr), (len), (runs), (nruns))

static void
check_iter_at(int line, const vmm_pte_impl_t *impl, vmm_gpt_t *gpt,
    uint64_t addr, uint64_t len, const run_t *runs, unsigned nruns)
{
	vmm_gpt_iter_t iter;
	vmm_gpt_iter_entry_t ent;
	unsigned r = 0;
	uint64_t off = 0, n = 0;

	vmm_gpt_iter_init(&iter, gpt, addr, len);
	while (vmm_gpt_iter_next(&iter, &ent)) {
		while (r < nruns && off == runs[r].r_len) {
			r++;
			off = 0;
		}
		if (r == nruns) {
			vtest_fail(__FILE__, line, "iteration of [0x%llx, "
			    "+0x%llx) yielded extra gpa 0x%llx after %llu "
			    "entries", (unsigned long long)addr,
			    (unsigned long long)len,
			    (unsigned long long)ent.vgie_gpa,
			    (unsigned long long)n);
		}
		const uint64_t want = runs[r].r_addr + off;
		vmm_gpt_entry_t *hw = tu_hw_entry(impl, gpt, want, LEVEL1);
		if (ent.vgie_gpa != want || ent.vgie_ptep != hw) {
			vtest_fail(__FILE__, line, "entry %llu: gpa 0x%llx "
			    "ptep %p, expected gpa 0x%llx ptep %p",
			    (unsigned long long)n,
			    (unsigned long long)ent.vgie_gpa,
			    (void *)ent.vgie_ptep, (unsigned long long)want,
			    (void *)hw);
		}
		off += TU_PAGE;
		n++;
	}
	while (r < nruns && off == runs[r].r_len) {
		r++;
		off = 0;
	}
	if (r != nruns) {
		vtest_fail(__FILE__, line, "iteration of [0x%llx, +0x%llx) "
		    "stopped after %llu entries, before gpa 0x%llx",
		    (unsigned long long)addr, (unsigned long long)len,
		    (unsigned long long)n,
		    (unsigned long long)(runs[r].r_addr + off));
	}
	/* An exhausted iterator stays exhausted. */
	VT_CHECK(!vmm_gpt_iter_next(&iter, &ent));
	VT_CHECK(!vmm_gpt_iter_next(&iter, &ent));
}

/* Init records the GPT and the range [addr, addr + len) as given. */
VTEST(iter_init_sets_gpt_addr_and_end, VT_PER_FORMAT)
{
	vmm_gpt_iter_t iter;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_iter_init(&iter, gpt, 0, 0);
	VT_CHECK_EQ((uintptr_t)iter.vgi_gpt, (uintptr_t)gpt);
	VT_CHECK_EQ(iter.vgi_addr, 0);
	VT_CHECK_EQ(iter.vgi_end, 0);

	vmm_gpt_iter_init(&iter, gpt, 0x1234000ULL, 0x56000ULL);
	VT_CHECK_EQ((uintptr_t)iter.vgi_gpt, (uintptr_t)gpt);
	VT_CHECK_EQ(iter.vgi_addr, 0x1234000ULL);
	VT_CHECK_EQ(iter.vgi_end, 0x128a000ULL);

	vmm_gpt_populate_region(gpt, 4 * TU_1G, TU_2M);
	vmm_gpt_iter_init(&iter, gpt, 4 * TU_1G + TU_PAGE, TU_1G);
	VT_CHECK_EQ((uintptr_t)iter.vgi_gpt, (uintptr_t)gpt);
	VT_CHECK_EQ(iter.vgi_addr, 4 * TU_1G + TU_PAGE);
	VT_CHECK_EQ(iter.vgi_end, 5 * TU_1G + TU_PAGE);

	vmm_gpt_iter_init(&iter, gpt, TU_TOP - 2 * TU_PAGE, 2 * TU_PAGE);
	VT_CHECK_EQ(iter.vgi_addr, TU_TOP - 2 * TU_PAGE);
	VT_CHECK_EQ(iter.vgi_end, TU_TOP);

	vmm_gpt_vacate_region(gpt, 4 * TU_1G, TU_2M);
	vmm_gpt_free(gpt);
}

/* A populated region yields each of its pages, in order. */
VTEST(iter_populated_region_yields_every_page_in_order, VT_PER_FORMAT)
{
	const run_t runs[] = { { 0x40000000ULL + TU_2M, 3 * TU_2M } };
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, runs[0].r_addr, runs[0].r_len);
	const uint64_t pages = tu_live_pages();
	CHECK_ITER(impl, gpt, runs[0].r_addr, runs[0].r_len, runs, 1);
	/* Iterating allocates nothing. */
	VT_CHECK_EQ(tu_live_pages(), pages);

	vmm_gpt_vacate_region(gpt, runs[0].r_addr, runs[0].r_len);
	vmm_gpt_free(gpt);
}

/*
 * Regions at 0 and at 3 GiB: iterating [0, 4 GiB) yields exactly the pages
 * of both, skipping the missing leaf and LEVEL2 tables between them.
 */
VTEST(iter_skips_gaps_between_regions, VT_PER_FORMAT)
{
	const run_t runs[] = {
		{ 0, TU_2M },
		{ 3 * TU_1G, 2 * TU_2M },
	};
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, runs[0].r_addr, runs[0].r_len);
	vmm_gpt_populate_region(gpt, runs[1].r_addr, runs[1].r_len);
	CHECK_ITER(impl, gpt, 0, 4 * TU_1G, runs, 2);

	vmm_gpt_vacate_region(gpt, runs[0].r_addr, runs[0].r_len);
	vmm_gpt_vacate_region(gpt, runs[1].r_addr, runs[1].r_len);
	vmm_gpt_free(gpt);
}

/*
 * Gaps at every level: missing leaf tables (2 MiB holes), missing LEVEL2
 * tables (1 GiB holes), missing LEVEL3 tables (512 GiB holes).
 */
VTEST(iter_skips_missing_tables_at_every_level, VT_PER_FORMAT)
{
	const run_t runs[] = {
		{ 2 * TU_2M, TU_2M },
		{ 5 * TU_2M, TU_2M },		/* leaf table hole before */
		{ 3 * TU_1G, TU_2M },		/* LEVEL2 table holes before */
		{ 3 * TU_512G + TU_2M, TU_2M },	/* LEVEL3 table holes before */
	};
	const unsigned nruns = sizeof (runs) / sizeof (runs[0]);
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	for (unsigned i = 0; i < nruns; i++)
		vmm_gpt_populate_region(gpt, runs[i].r_addr, runs[i].r_len);
	CHECK_ITER(impl, gpt, 0, TU_TOP, runs, nruns);
	CHECK_ITER(impl, gpt, TU_PAGE, 4 * TU_512G, runs, nruns);

	for (unsigned i = 0; i < nruns; i++)
		vmm_gpt_vacate_region(gpt, runs[i].r_addr, runs[i].r_len);
	vmm_gpt_free(gpt);
}

/*
 * One populated page creates a whole leaf table, and the iterator yields all
 * 512 slots of it, not only the populated page.
 */
VTEST(iter_yields_every_slot_of_existing_leaf_table, VT_PER_FORMAT)
{
	const run_t runs[] = { { 8 * TU_2M, TU_2M } };
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 8 * TU_2M + 7 * TU_PAGE, TU_PAGE);
	CHECK_ITER(impl, gpt, 0, TU_1G, runs, 1);

	/* Starting and ending inside it bounds the slots to the range. */
	const run_t inner[] = { { 8 * TU_2M + TU_PAGE, 3 * TU_PAGE } };
	CHECK_ITER(impl, gpt, 8 * TU_2M + TU_PAGE, 3 * TU_PAGE, inner, 1);

	vmm_gpt_vacate_region(gpt, 8 * TU_2M + 7 * TU_PAGE, TU_PAGE);
	vmm_gpt_free(gpt);
}

/* A range starting and ending inside a region yields only the range. */
VTEST(iter_range_starting_and_ending_inside_region, VT_PER_FORMAT)
{
	const uint64_t start = TU_1M + 3 * TU_PAGE;
	const uint64_t end = 5 * TU_1M - 5 * TU_PAGE;
	const run_t runs[] = { { start, end - start } };
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 0, 8 * TU_1M);
	CHECK_ITER(impl, gpt, start, end - start, runs, 1);

	/* A single page and the last page of the region. */
	const run_t one[] = { { 0x2ff000ULL, TU_PAGE } };
	CHECK_ITER(impl, gpt, 0x2ff000ULL, TU_PAGE, one, 1);
	const run_t last[] = { { 8 * TU_1M - TU_PAGE, TU_PAGE } };
	CHECK_ITER(impl, gpt, 8 * TU_1M - TU_PAGE, TU_1G, last, 1);

	vmm_gpt_vacate_region(gpt, 0, 8 * TU_1M);
	vmm_gpt_free(gpt);
}

/*
 * A range starting before a region, at an address whose leaf (or LEVEL2 or
 * LEVEL3) table is missing, yields the region from its start.
 */
VTEST(iter_range_starting_in_unpopulated_space_before_region, VT_PER_FORMAT)
{
	const run_t r2m[] = { { 3 * TU_2M, TU_2M } };
	const run_t r512g[] = { { TU_512G, TU_2M } };
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 3 * TU_2M, TU_2M);
	vmm_gpt_populate_region(gpt, TU_512G, TU_2M);

	CHECK_ITER(impl, gpt, 7 * TU_PAGE, 4 * TU_2M - 7 * TU_PAGE, r2m, 1);
	CHECK_ITER(impl, gpt, 4 * TU_2M + TU_PAGE, TU_512G + TU_2M -
	    (4 * TU_2M + TU_PAGE), r512g, 1);
	CHECK_ITER(impl, gpt, 3 * TU_1G + 5 * TU_PAGE, TU_512G + TU_1G -
	    (3 * TU_1G + 5 * TU_PAGE), r512g, 1);

	vmm_gpt_vacate_region(gpt, 3 * TU_2M, TU_2M);
	vmm_gpt_vacate_region(gpt, TU_512G, TU_2M);
	vmm_gpt_free(gpt);
}

/* Ranges with no leaf table yield nothing, even next to a region. */
VTEST(iter_range_with_nothing_populated_yields_nothing, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	CHECK_ITER(impl, gpt, 0, TU_TOP, NULL, 0);
	CHECK_ITER(impl, gpt, 0x123456000ULL, TU_PAGE, NULL, 0);

	vmm_gpt_populate_region(gpt, 2 * TU_512G, TU_2M);
	CHECK_ITER(impl, gpt, 0, 2 * TU_512G, NULL, 0);
	CHECK_ITER(impl, gpt, 2 * TU_512G + TU_2M, TU_1G, NULL, 0);
	CHECK_ITER(impl, gpt, 2 * TU_512G + TU_1G, TU_TOP - 2 * TU_512G -
	    TU_1G, NULL, 0);
	/* An empty range inside the region. */
	CHECK_ITER(impl, gpt, 2 * TU_512G + TU_PAGE, 0, NULL, 0);

	vmm_gpt_vacate_region(gpt, 2 * TU_512G, TU_2M);
	vmm_gpt_free(gpt);
}

/* Ranges ending at 2^48: the iteration ends after slot 511 everywhere. */
VTEST(iter_ranges_at_top_of_address_space, VT_PER_FORMAT)
{
	const run_t top[] = { { TU_TOP - 2 * TU_2M, 2 * TU_2M } };
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, TU_TOP - 2 * TU_2M, 2 * TU_2M);
	CHECK_ITER(impl, gpt, TU_TOP - 2 * TU_2M, 2 * TU_2M, top, 1);
	CHECK_ITER(impl, gpt, TU_TOP - TU_1G, TU_1G, top, 1);
	CHECK_ITER(impl, gpt, TU_TOP - 3 * TU_512G, 3 * TU_512G, top, 1);

	const run_t last[] = { { TU_TOP - TU_PAGE, TU_PAGE } };
	CHECK_ITER(impl, gpt, TU_TOP - TU_PAGE, TU_PAGE, last, 1);

	vmm_gpt_vacate_region(gpt, TU_TOP - 2 * TU_2M, 2 * TU_2M);
	vmm_gpt_free(gpt);
}

/* A region across 512 GiB is iterated across the LEVEL4 boundary. */
VTEST(iter_region_across_512g_boundary, VT_PER_FORMAT)
{
	const run_t runs[] = { { TU_512G - TU_2M - 2 * TU_PAGE,
	    2 * TU_2M + 4 * TU_PAGE } };
	const run_t slots[] = { { TU_512G - 2 * TU_2M, 4 * TU_2M } };
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, TU_512G - TU_2M, 2 * TU_2M);
	vmm_gpt_populate_region(gpt, TU_512G - TU_2M - TU_PAGE, TU_PAGE);
	vmm_gpt_populate_region(gpt, TU_512G + TU_2M, TU_PAGE);

	/* The four leaf tables of [512 GiB - 4 MiB, 512 GiB + 4 MiB). */
	CHECK_ITER(impl, gpt, 0, 2 * TU_512G, slots, 1);
	CHECK_ITER(impl, gpt, runs[0].r_addr, runs[0].r_len, runs, 1);

	vmm_gpt_vacate_region(gpt, TU_512G + TU_2M, TU_PAGE);
	vmm_gpt_vacate_region(gpt, TU_512G - TU_2M - TU_PAGE, TU_PAGE);
	vmm_gpt_vacate_region(gpt, TU_512G - TU_2M, 2 * TU_2M);
	vmm_gpt_free(gpt);
}

/*
 * The iterator only reads: entry values (mapped or not) are unchanged, and
 * each yielded pointer reads the value mapped at its page.
 */
VTEST(iter_yields_pointers_to_mapped_values_without_changing_them,
    VT_PER_FORMAT)
{
	const uint64_t addr = 6 * TU_1G;
	vmm_gpt_iter_t iter;
	vmm_gpt_iter_entry_t ent;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, addr, TU_2M);
	/* Map every 5th page with a PFN derived from its address. */
	for (uint64_t gpa = addr; gpa < addr + TU_2M; gpa += 5 * TU_PAGE) {
		VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, gpa),
		    TU_PFN_FOR(gpa), TU_PROT_RWX, KTEST_MTRR_WB));
	}

	uint64_t n = 0;
	vmm_gpt_iter_init(&iter, gpt, addr, TU_2M);
	while (vmm_gpt_iter_next(&iter, &ent)) {
		const bool mapped = ((ent.vgie_gpa - addr) / TU_PAGE) % 5 == 0;
		const uint64_t want = mapped ? impl->vpi_map_page(
		    TU_PFN_FOR(ent.vgie_gpa), TU_PROT_RWX, KTEST_MTRR_WB) : 0;
		VT_CHECK_EQ(*ent.vgie_ptep, want);
		n++;
	}
	VT_CHECK_EQ(n, 512);
	VT_CHECK_EQ(tu_count_mapped(impl, gpt), 103);

	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, addr, TU_2M), 103);
	vmm_gpt_vacate_region(gpt, addr, TU_2M);
	vmm_gpt_free(gpt);
}
