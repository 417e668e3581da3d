/*
 * vmm_gpt_map_at(), vmm_gpte_is_mapped(), vmm_gpt_unmap() and
 * vmm_gpt_unmap_region().
 *
 * map_at installs the format's leaf entry (vpi_map_page) only into an empty
 * PTE; is_mapped parses a PTE; unmap and unmap_region clear leaf PTEs and
 * report what was mapped.  None of them allocates or frees tables.
 */

#include "tutil.h"

/* The (protection, memory type) pairs mapped by the tests. */
static const struct {
	unsigned	p_prot;
	uint8_t		p_attr;
} prots[] = {
	{ PROT_READ, KTEST_MTRR_WB },
	{ PROT_READ | PROT_WRITE, KTEST_MTRR_WB },
	{ PROT_READ | PROT_EXEC, KTEST_MTRR_UC },
	{ PROT_READ | PROT_WRITE | PROT_EXEC, KTEST_MTRR_WB },
	{ PROT_READ | PROT_WRITE | PROT_EXEC, KTEST_MTRR_UC },
};
#define	NPROTS	(sizeof (prots) / sizeof (prots[0]))

/* PFNs mapped by the tests: low, arbitrary, the largest 40-bit one. */
static const pfn_t pfns[] = { 1, 0x12345, 0xabcdef012ULL, 0xffffffffffULL };
#define	NPFNS	(sizeof (pfns) / sizeof (pfns[0]))

/*
 * map_at into an empty PTE succeeds and stores exactly what the format's
 * vpi_map_page() makes of (pfn, prot, attr), touching no other entry.
 */
VTEST(map_at_empty_pte_installs_map_page_value, VT_PER_FORMAT)
{
	const uint64_t addr = 0x7654321000ULL & ~(TU_2M - 1);
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, addr, TU_2M);
	const uint64_t pages = tu_live_pages();

	unsigned n = 0;
	for (unsigned i = 0; i < NPROTS; i++) {
		for (unsigned j = 0; j < NPFNS; j++, n++) {
			/* Every other page, so neighbours stay empty. */
			vmm_gpt_entry_t *ptep =
			    tu_leaf(gpt, addr + 2 * n * TU_PAGE);
			const uint64_t want = impl->vpi_map_page(pfns[j],
			    prots[i].p_prot, prots[i].p_attr);

			VT_CHECK_EQ(*ptep, 0);
			VT_CHECK(vmm_gpt_map_at(gpt, ptep, pfns[j],
			    prots[i].p_prot, prots[i].p_attr));
			VT_CHECK_EQ(*ptep, want);
			VT_CHECK_EQ(ptep[1], 0);
		}
	}
	VT_CHECK_EQ(tu_count_mapped(impl, gpt), NPROTS * NPFNS);
	VT_CHECK_EQ(tu_live_pages(), pages);

	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, addr, TU_2M), NPROTS * NPFNS);
	vmm_gpt_vacate_region(gpt, addr, TU_2M);
	vmm_gpt_free(gpt);
}

/*
 * map_at into a PTE that is already mapped (here: the same PFN again, with
 * another protection, as racing faults would) fails and leaves it as is.
 */
VTEST(map_at_mapped_pte_returns_false_and_keeps_pte, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 0, TU_2M);
	vmm_gpt_entry_t *ptep = tu_leaf(gpt, 0x5000);

	VT_CHECK(vmm_gpt_map_at(gpt, ptep, 0x777, PROT_READ, KTEST_MTRR_WB));
	const vmm_gpt_entry_t first = *ptep;
	VT_CHECK_EQ(first, impl->vpi_map_page(0x777, PROT_READ,
	    KTEST_MTRR_WB));

	VT_CHECK(!vmm_gpt_map_at(gpt, ptep, 0x777, TU_PROT_RWX,
	    KTEST_MTRR_UC));
	VT_CHECK_EQ(*ptep, first);
	VT_CHECK(!vmm_gpt_map_at(gpt, ptep, 0x777, PROT_READ, KTEST_MTRR_WB));
	VT_CHECK_EQ(*ptep, first);

	/* Once unmapped, it can be mapped again. */
	VT_CHECK(vmm_gpt_unmap(gpt, 0x5000));
	VT_CHECK(vmm_gpt_map_at(gpt, ptep, 0x777, TU_PROT_RWX,
	    KTEST_MTRR_UC));
	VT_CHECK_EQ(*ptep, impl->vpi_map_page(0x777, TU_PROT_RWX,
	    KTEST_MTRR_UC));

	VT_CHECK(vmm_gpt_unmap(gpt, 0x5000));
	vmm_gpt_vacate_region(gpt, 0, TU_2M);
	vmm_gpt_free(gpt);
}

/* An empty PTE is not mapped. */
VTEST(is_mapped_empty_pte_is_false, VT_PER_FORMAT)
{
	const vmm_gpt_entry_t zero = 0;
	pfn_t pfn;
	unsigned prot;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	VT_CHECK(!vmm_gpte_is_mapped(&zero, &pfn, &prot));
	VT_CHECK(!vmm_gpte_is_mapped(&zero, NULL, NULL));

	/* Nor is a leaf slot of a freshly populated region. */
	vmm_gpt_populate_region(gpt, TU_1G, TU_2M);
	VT_CHECK(!vmm_gpte_is_mapped(tu_leaf(gpt, TU_1G), &pfn, &prot));
	VT_CHECK(!vmm_gpte_is_mapped(tu_leaf(gpt, TU_1G + TU_2M - TU_PAGE),
	    NULL, NULL));

	vmm_gpt_vacate_region(gpt, TU_1G, TU_2M);
	vmm_gpt_free(gpt);
}

/*
 * A mapped PTE is mapped, with the PFN it maps and the protection the
 * format reads back (read+write+exec round-trips in both formats); the
 * out-pointers may be NULL.
 */
VTEST(is_mapped_mapped_pte_returns_pfn_and_prot, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 0, TU_2M);
	for (unsigned i = 0; i < NPROTS; i++) {
		for (unsigned j = 0; j < NPFNS; j++) {
			const uint64_t gpa = (i * NPFNS + j) * TU_PAGE;
			vmm_gpt_entry_t *ptep = tu_leaf(gpt, gpa);
			pfn_t pfn = 0, want_pfn = 0;
			unsigned prot = 0, want_prot = 0;

			VT_CHECK(vmm_gpt_map_at(gpt, ptep, pfns[j],
			    prots[i].p_prot, prots[i].p_attr));
			VT_CHECK(impl->vpi_pte_parse(*ptep, &want_pfn,
			    &want_prot));
			VT_CHECK_EQ(want_pfn, pfns[j]);

			VT_CHECK(vmm_gpte_is_mapped(ptep, &pfn, &prot));
			VT_CHECK_EQ(pfn, pfns[j]);
			VT_CHECK_EQ(prot, want_prot);
			if (prots[i].p_prot == TU_PROT_RWX)
				VT_CHECK_EQ(prot, TU_PROT_RWX);

			pfn = 0;
			VT_CHECK(vmm_gpte_is_mapped(ptep, &pfn, NULL));
			VT_CHECK_EQ(pfn, pfns[j]);
			prot = 0;
			VT_CHECK(vmm_gpte_is_mapped(ptep, NULL, &prot));
			VT_CHECK_EQ(prot, want_prot);
			VT_CHECK(vmm_gpte_is_mapped(ptep, NULL, NULL));
		}
	}

	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, 0, TU_2M), NPROTS * NPFNS);
	vmm_gpt_vacate_region(gpt, 0, TU_2M);
	vmm_gpt_free(gpt);
}

/* Unmapping a mapped page returns true and zeroes only its PTE. */
VTEST(unmap_mapped_page_returns_true_and_clears_pte, VT_PER_FORMAT)
{
	const uint64_t gpa = 3 * TU_512G + 0x1234000ULL;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, gpa - TU_PAGE, 3 * TU_PAGE);
	const uint64_t pages = tu_live_pages();
	vmm_gpt_entry_t *ptep = tu_leaf(gpt, gpa);
	VT_CHECK(vmm_gpt_map_at(gpt, ptep - 1, 0x100, TU_PROT_RWX,
	    KTEST_MTRR_WB));
	VT_CHECK(vmm_gpt_map_at(gpt, ptep, 0x101, TU_PROT_RWX,
	    KTEST_MTRR_WB));
	VT_CHECK(vmm_gpt_map_at(gpt, ptep + 1, 0x102, TU_PROT_RWX,
	    KTEST_MTRR_WB));

	VT_CHECK(vmm_gpt_unmap(gpt, gpa));
	VT_CHECK_EQ(*ptep, 0);
	VT_CHECK_EQ(ptep[-1], impl->vpi_map_page(0x100, TU_PROT_RWX,
	    KTEST_MTRR_WB));
	VT_CHECK_EQ(ptep[1], impl->vpi_map_page(0x102, TU_PROT_RWX,
	    KTEST_MTRR_WB));
	VT_CHECK_EQ(tu_live_pages(), pages);

	/* A second unmap finds nothing mapped. */
	VT_CHECK(!vmm_gpt_unmap(gpt, gpa));
	VT_CHECK_EQ(*ptep, 0);

	VT_CHECK(vmm_gpt_unmap(gpt, gpa - TU_PAGE));
	VT_CHECK(vmm_gpt_unmap(gpt, gpa + TU_PAGE));
	VT_CHECK_EQ(tu_count_mapped(impl, gpt), 0);
	vmm_gpt_vacate_region(gpt, gpa - TU_PAGE, 3 * TU_PAGE);
	vmm_gpt_free(gpt);
}

/* Unmapping an unmapped page of a populated region returns false. */
VTEST(unmap_unmapped_page_in_populated_region_returns_false, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, TU_2M, TU_2M);
	VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, TU_2M), 0x55, TU_PROT_RWX,
	    KTEST_MTRR_WB));
	const uint64_t pages = tu_live_pages();

	VT_CHECK(!vmm_gpt_unmap(gpt, TU_2M + TU_PAGE));
	VT_CHECK(!vmm_gpt_unmap(gpt, 2 * TU_2M - TU_PAGE));
	VT_CHECK_EQ(*tu_leaf(gpt, TU_2M + TU_PAGE), 0);
	VT_CHECK_EQ(*tu_leaf(gpt, TU_2M), impl->vpi_map_page(0x55,
	    TU_PROT_RWX, KTEST_MTRR_WB));
	VT_CHECK_EQ(tu_live_pages(), pages);

	VT_CHECK(vmm_gpt_unmap(gpt, TU_2M));
	vmm_gpt_vacate_region(gpt, TU_2M, TU_2M);
	vmm_gpt_free(gpt);
}

/*
 * Unmapping an address without a leaf table (missing at LEVEL1, LEVEL2 or
 * LEVEL3) returns false, allocates nothing and changes no entry.
 */
VTEST(unmap_address_without_leaf_table_returns_false, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	VT_CHECK(!vmm_gpt_unmap(gpt, 0));
	VT_CHECK(!vmm_gpt_unmap(gpt, TU_TOP - TU_PAGE));
	VT_CHECK(tu_table_is_empty(tu_root(gpt)));

	vmm_gpt_populate_region(gpt, 0, TU_PAGE);
	VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, 0), 0x99, TU_PROT_RWX,
	    KTEST_MTRR_WB));
	const uint64_t pages = tu_live_pages();

	VT_CHECK(!vmm_gpt_unmap(gpt, TU_2M));
	VT_CHECK(!vmm_gpt_unmap(gpt, TU_1G));
	VT_CHECK(!vmm_gpt_unmap(gpt, TU_512G));
	VT_CHECK_EQ(tu_live_pages(), pages);
	TU_CHECK_TABLES(impl, gpt, pages - 4, 1, 1, 1);
	VT_CHECK_EQ(tu_count_mapped(impl, gpt), 1);

	VT_CHECK(vmm_gpt_unmap(gpt, 0));
	vmm_gpt_vacate_region(gpt, 0, TU_PAGE);
	vmm_gpt_free(gpt);
}

/*
 * unmap_region returns how many pages of the range were mapped, clears
 * them, and frees no table.
 */
VTEST(unmap_region_counts_only_mapped_pages, VT_PER_FORMAT)
{
	const uint64_t addr = 2 * TU_1G - TU_2M;
	const uint64_t len = 2 * TU_2M;		/* across the 2 GiB boundary */
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, addr, len);
	uint64_t mapped = 0;
	for (uint64_t gpa = addr; gpa < addr + len; gpa += 3 * TU_PAGE) {
		VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, gpa),
		    TU_PFN_FOR(gpa), TU_PROT_RWX, KTEST_MTRR_WB));
		mapped++;
	}
	VT_CHECK_EQ(mapped, 342);
	const uint64_t pages = tu_live_pages();

	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, addr, len), mapped);
	VT_CHECK_EQ(tu_count_mapped(impl, gpt), 0);
	VT_CHECK_EQ(tu_live_pages(), pages);
	TU_CHECK_WALKABLE(impl, gpt, addr, len, TU_PAGE);

	/* Nothing left to unmap. */
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, addr, len), 0);

	vmm_gpt_vacate_region(gpt, addr, len);
	vmm_gpt_free(gpt);
}

/*
 * unmap_region over a range that only partly overlaps populated space (two
 * regions with missing tables around and between them) counts the mapped
 * pages inside the range only; mappings outside the range stay.
 */
VTEST(unmap_region_partially_outside_populated_space, VT_PER_FORMAT)
{
	const uint64_t a = TU_512G - TU_2M;	/* [a, a + 4 MiB) */
	const uint64_t b = TU_512G + 5 * TU_1G;	/* [b, b + 2 MiB) */
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, a, 2 * TU_2M);
	vmm_gpt_populate_region(gpt, b, TU_2M);

	/* Mapped: a, a + 4 KiB, 512 GiB - 4 KiB, 512 GiB, a's last; b's ends */
	const uint64_t gpas[] = {
		a, a + TU_PAGE, TU_512G - TU_PAGE, TU_512G,
		a + 2 * TU_2M - TU_PAGE, b, b + TU_2M - TU_PAGE,
	};
	const unsigned n = sizeof (gpas) / sizeof (gpas[0]);
	for (unsigned i = 0; i < n; i++) {
		VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, gpas[i]),
		    TU_PFN_FOR(gpas[i]), PROT_READ | PROT_WRITE,
		    KTEST_MTRR_WB));
	}
	const uint64_t pages = tu_live_pages();

	/* Nothing mapped before a. */
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, 0, a), 0);
	/* [a + 4 KiB, 512 GiB + 4 KiB): three of them. */
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, a + TU_PAGE, TU_2M), 3);
	VT_CHECK_EQ(tu_count_mapped(impl, gpt), n - 3);
	VT_CHECK_EQ(*tu_leaf(gpt, a), impl->vpi_map_page(TU_PFN_FOR(a),
	    PROT_READ | PROT_WRITE, KTEST_MTRR_WB));
	/* From the middle of the gap to the top: b's two. */
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, TU_512G + TU_1G,
	    TU_TOP - TU_512G - TU_1G), 2);
	/* Everything: a and the last page of a's region. */
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, 0, TU_TOP), 2);
	VT_CHECK_EQ(tu_count_mapped(impl, gpt), 0);
	VT_CHECK_EQ(tu_live_pages(), pages);
	TU_CHECK_TABLES(impl, gpt, pages - 1 - 2 - 3 - 3, 2, 3, 3);

	vmm_gpt_vacate_region(gpt, a, 2 * TU_2M);
	vmm_gpt_vacate_region(gpt, b, TU_2M);
	vmm_gpt_free(gpt);
}

/* unmap_region where nothing is populated returns 0 and allocates nothing. */
VTEST(unmap_region_over_unpopulated_space_returns_zero, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	const uint64_t pages = tu_live_pages();

	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, 0, TU_TOP), 0);
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, 4 * TU_1G, TU_PAGE), 0);
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, 4 * TU_1G, 0), 0);
	VT_CHECK_EQ(tu_live_pages(), pages);
	VT_CHECK(tu_table_is_empty(tu_root(gpt)));

	vmm_gpt_free(gpt);
}

/* unmap_region of a range ending at 2^48. */
VTEST(unmap_region_at_top_of_address_space, VT_PER_FORMAT)
{
	const uint64_t addr = TU_TOP - 2 * TU_2M;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, addr, 2 * TU_2M);
	VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, addr), 1, TU_PROT_RWX,
	    KTEST_MTRR_WB));
	VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, TU_TOP - TU_2M), 2,
	    TU_PROT_RWX, KTEST_MTRR_WB));
	VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, TU_TOP - TU_PAGE), 3,
	    TU_PROT_RWX, KTEST_MTRR_WB));

	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, TU_TOP - TU_PAGE, TU_PAGE), 1);
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, TU_TOP - TU_1G, TU_1G), 2);
	VT_CHECK_EQ(tu_count_mapped(impl, gpt), 0);

	vmm_gpt_vacate_region(gpt, addr, 2 * TU_2M);
	vmm_gpt_free(gpt);
}

/*
 * The consumer's populate path: iterate a new region and map_at each leaf,
 * then unmap_region reports every page and vacate frees every table.
 */
VTEST(map_at_each_iterated_entry_then_unmap_region, VT_PER_FORMAT)
{
	const uint64_t addr = 3 * TU_1G - TU_2M - 4 * TU_PAGE;
	const uint64_t len = TU_2M + 8 * TU_PAGE;
	const uint64_t base = tu_live_pages();
	vmm_gpt_iter_t iter;
	vmm_gpt_iter_entry_t ent;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, addr, len);
	uint64_t n = 0;
	vmm_gpt_iter_init(&iter, gpt, addr, len);
	while (vmm_gpt_iter_next(&iter, &ent)) {
		VT_CHECK(vmm_gpt_map_at(gpt, ent.vgie_ptep,
		    TU_PFN_FOR(ent.vgie_gpa), TU_PROT_RWX, KTEST_MTRR_WB));
		n++;
	}
	VT_CHECK_EQ(n, len / TU_PAGE);
	VT_CHECK_EQ(tu_count_mapped(impl, gpt), len / TU_PAGE);
	for (uint64_t gpa = addr; gpa < addr + len; gpa += TU_PAGE) {
		pfn_t pfn;
		VT_CHECK(vmm_gpte_is_mapped(tu_leaf(gpt, gpa), &pfn, NULL));
		VT_CHECK_EQ(pfn, TU_PFN_FOR(gpa));
	}

	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, addr, len), len / TU_PAGE);
	vmm_gpt_vacate_region(gpt, addr, len);
	TU_CHECK_TABLES(impl, gpt, base, 0, 0, 0);
	vmm_gpt_free(gpt);
	VT_CHECK_EQ(tu_live_pages(), base);
}
