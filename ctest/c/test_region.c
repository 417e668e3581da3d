/*
 * vmm_gpt_populate_region() and vmm_gpt_vacate_region().
 *
 * Populating [addr, addr + len) must create exactly the LEVEL3, LEVEL2 and
 * LEVEL1 tables that cover the range and that do not exist yet, each linked
 * with the format's table entry; vacating a populated range must free exactly
 * the tables no other populated range still needs.  The table counts below
 * are checked twice: by walking the hardware entries from the root, and with
 * the number of live PAGESIZE allocations in the kernel stand-in.
 */

#include "tutil.h"

/*
 * Check that each page of the range has a leaf entry that reads zero, found
 * both through the hardware entries and through vmm_gpt_walk().
 */
static void
check_populated_empty(const vmm_pte_impl_t *impl, vmm_gpt_t *gpt,
    uint64_t addr, uint64_t len, uint64_t step)
{
	TU_CHECK_WALKABLE(impl, gpt, addr, len, step);
	for (uint64_t off = 0; off < len; off += step) {
		vmm_gpt_entry_t *ptep =
		    tu_hw_entry(impl, gpt, addr + off, LEVEL1);
		VT_CHECK_EQ(*ptep, 0);
	}
}

/*
 * The common life of one region in an otherwise empty GPT: populate it and
 * find exactly l3/l2/l1 new tables, all of its pages walkable, no leaf
 * table in the 2 MiB just before and just after it; vacate it and find only
 * the (empty) root table again.
 */
static void
region_lifecycle(const vmm_pte_impl_t *impl, uint64_t addr, uint64_t len,
    uint64_t l3, uint64_t l2, uint64_t l1, uint64_t step)
{
	const uint64_t base = tu_live_pages();
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	VT_CHECK_EQ(tu_live_pages(), base + 1);
	TU_CHECK_TABLES(impl, gpt, base, 0, 0, 0);

	vmm_gpt_populate_region(gpt, addr, len);
	VT_CHECK_EQ(tu_live_pages(), base + 1 + l3 + l2 + l1);
	TU_CHECK_TABLES(impl, gpt, base, l3, l2, l1);
	check_populated_empty(impl, gpt, addr, len, step);

	/* The 2 MiB chunks around the region have no leaf table. */
	const uint64_t before = (addr & ~(TU_2M - 1)) - TU_2M;
	const uint64_t after = (addr + len + TU_2M - 1) & ~(TU_2M - 1);
	if (addr >= TU_2M)
		VT_CHECK_NULL(tu_hw_entry(impl, gpt, before, LEVEL1));
	if (after < TU_TOP)
		VT_CHECK_NULL(tu_hw_entry(impl, gpt, after, LEVEL1));

	vmm_gpt_vacate_region(gpt, addr, len);
	VT_CHECK_EQ(tu_live_pages(), base + 1);
	TU_CHECK_TABLES(impl, gpt, base, 0, 0, 0);
	VT_CHECK(tu_table_is_empty(tu_root(gpt)));

	vmm_gpt_free(gpt);
	VT_CHECK_EQ(tu_live_pages(), base);
}

/* One page under the existing root: one table at each level below it. */
VTEST(region_populate_one_page_allocates_three_tables, VT_PER_FORMAT)
{
	region_lifecycle(impl, 0, TU_PAGE, 1, 1, 1, TU_PAGE);
}

/* The same for a page in the middle of the space (no index is 0). */
VTEST(region_populate_one_page_mid_space_allocates_three_tables, VT_PER_FORMAT)
{
	region_lifecycle(impl, 0x7f5a3c7b5000ULL, TU_PAGE, 1, 1, 1, TU_PAGE);
}

/* Two pages on either side of a 2 MiB boundary need two leaf tables. */
VTEST(region_populate_two_pages_straddling_2m_allocates_two_leaf_tables,
    VT_PER_FORMAT)
{
	region_lifecycle(impl, 3 * TU_2M - TU_PAGE, 2 * TU_PAGE, 1, 1, 2,
	    TU_PAGE);
}

/* An aligned 2 MiB region fills exactly one leaf table. */
VTEST(region_populate_aligned_2m_allocates_one_leaf_table, VT_PER_FORMAT)
{
	region_lifecycle(impl, 5 * TU_2M, TU_2M, 1, 1, 1, TU_PAGE);
}

/* 2 MiB + 4 KiB starting on a 2 MiB boundary spills into a second table. */
VTEST(region_populate_2m_plus_page_allocates_two_leaf_tables, VT_PER_FORMAT)
{
	region_lifecycle(impl, 5 * TU_2M, TU_2M + TU_PAGE, 1, 1, 2, TU_PAGE);
}

/*
 * 1 GiB + 4 KiB from the last page below 1 GiB: two LEVEL2 tables, one leaf
 * table for the page below 1 GiB and 512 for [1 GiB, 2 GiB).
 */
VTEST(region_populate_1g_plus_page_across_1g_boundary, VT_PER_FORMAT)
{
	region_lifecycle(impl, TU_1G - TU_PAGE, TU_1G + TU_PAGE, 1, 2, 513,
	    TU_PAGE);
}

/* Two pages on either side of 512 GiB: a separate table at every level. */
VTEST(region_populate_two_pages_straddling_512g_allocates_two_of_each,
    VT_PER_FORMAT)
{
	region_lifecycle(impl, TU_512G - TU_PAGE, 2 * TU_PAGE, 2, 2, 2,
	    TU_PAGE);
}

/* 8 GiB at 4 GiB: 8 LEVEL2 tables of 512 leaf tables each. */
VTEST(region_populate_8g_at_4g_allocates_4105_tables, VT_PER_FORMAT)
{
	region_lifecycle(impl, 4 * TU_1G, 8 * TU_1G, 1, 8, 8 * 512, TU_PAGE);
}

/* The last page of the 48-bit space: index 511 at every level. */
VTEST(region_populate_last_page_of_address_space, VT_PER_FORMAT)
{
	region_lifecycle(impl, TU_TOP - TU_PAGE, TU_PAGE, 1, 1, 1, TU_PAGE);

	/* Double-check the indexes the hardware path goes through. */
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	vmm_gpt_populate_region(gpt, TU_TOP - TU_PAGE, TU_PAGE);
	for (vmm_gpt_node_level_t l = LEVEL4; l <= LEVEL1; l++) {
		vmm_gpt_entry_t *ptep =
		    tu_hw_entry(impl, gpt, TU_TOP - TU_PAGE, l);
		VT_CHECK_NOT_NULL(ptep);
		VT_CHECK_EQ(tu_ptep_index(ptep), 511);
	}
	vmm_gpt_vacate_region(gpt, TU_TOP - TU_PAGE, TU_PAGE);
	vmm_gpt_free(gpt);
}

/* 1 GiB + 4 KiB ending exactly at 2^48. */
VTEST(region_populate_1g_plus_page_ending_at_top_of_address_space,
    VT_PER_FORMAT)
{
	region_lifecycle(impl, TU_TOP - TU_1G - TU_PAGE, TU_1G + TU_PAGE,
	    1, 2, 513, TU_PAGE);
}

/* 4 MiB across the 512 GiB boundary and its LEVEL4 entries 0 and 1. */
VTEST(region_populate_4m_across_512g_boundary, VT_PER_FORMAT)
{
	region_lifecycle(impl, TU_512G - TU_2M, 2 * TU_2M, 2, 2, 2, TU_PAGE);
}

/*
 * 256 GiB straddling 512 GiB ([384 GiB, 640 GiB)): 2 LEVEL3 tables, 256
 * LEVEL2 tables and 128 Ki leaf tables (512 MiB of tables, about 1 GiB of
 * process memory and a second per format: flagged VT_SLOW so that valgrind
 * runs can leave it out with VTEST_SKIP_SLOW=1).
 */
VTEST(region_populate_256g_across_512g_boundary, VT_PER_FORMAT | VT_SLOW)
{
	region_lifecycle(impl, 384 * TU_1G, 256 * TU_1G, 2, 256, 256 * 512,
	    TU_2M);
}

/*
 * Populate links each new table with exactly the format's table entry for
 * that table's PFN, at the index of the region's address in each level.
 */
VTEST(region_populate_links_tables_with_map_table_entries, VT_PER_FORMAT)
{
	const uint64_t gpa = 0x123456789000ULL;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, gpa, TU_PAGE);

	vmm_gpt_entry_t *table = tu_root(gpt);
	for (vmm_gpt_node_level_t l = LEVEL4; l < LEVEL1; l++) {
		const vmm_gpt_entry_t pte = table[tu_lvl_index(l, gpa)];
		vmm_gpt_entry_t *child = tu_child(impl, pte);

		VT_CHECK_NOT_NULL(child);
		VT_CHECK_EQ(pte, impl->vpi_map_table(KTEST_VA_TO_PFN(child)));
		/* Nothing else in the table: only one path exists. */
		for (unsigned i = 0; i < TU_PTES; i++) {
			if (i != tu_lvl_index(l, gpa))
				VT_CHECK_EQ(table[i], 0);
		}
		table = child;
	}
	/* The leaf table is new, so all of its entries are empty. */
	VT_CHECK(tu_table_is_empty(table));

	vmm_gpt_vacate_region(gpt, gpa, TU_PAGE);
	vmm_gpt_free(gpt);
}

/*
 * Two adjacent regions that share a leaf table ([0, 1 MiB) and
 * [1 MiB, 3 MiB)): the second adds only the leaf table for [2 MiB, 4 MiB)
 * and reuses the shared one; vacating the first frees nothing and leaves
 * the second one's entries in place; vacating the second frees everything.
 */
VTEST(region_adjacent_regions_share_leaf_table, VT_PER_FORMAT)
{
	const uint64_t base = tu_live_pages();
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 0, TU_1M);
	TU_CHECK_TABLES(impl, gpt, base, 1, 1, 1);
	vmm_gpt_entry_t *shared = tu_leaf(gpt, TU_1M);

	vmm_gpt_populate_region(gpt, TU_1M, 2 * TU_1M);
	TU_CHECK_TABLES(impl, gpt, base, 1, 1, 2);
	VT_CHECK_EQ((uintptr_t)tu_leaf(gpt, TU_1M), (uintptr_t)shared);
	vmm_gpt_entry_t *second = tu_leaf(gpt, 2 * TU_1M);

	vmm_gpt_vacate_region(gpt, 0, TU_1M);
	TU_CHECK_TABLES(impl, gpt, base, 1, 1, 2);
	TU_CHECK_WALKABLE(impl, gpt, TU_1M, 2 * TU_1M, TU_PAGE);
	VT_CHECK_EQ((uintptr_t)tu_leaf(gpt, TU_1M), (uintptr_t)shared);
	VT_CHECK_EQ((uintptr_t)tu_leaf(gpt, 2 * TU_1M), (uintptr_t)second);

	vmm_gpt_vacate_region(gpt, TU_1M, 2 * TU_1M);
	TU_CHECK_TABLES(impl, gpt, base, 0, 0, 0);
	VT_CHECK(tu_table_is_empty(tu_root(gpt)));

	vmm_gpt_free(gpt);
	VT_CHECK_EQ(tu_live_pages(), base);
}

/*
 * The same two regions vacated in the other order: vacating [1 MiB, 3 MiB)
 * frees only the leaf table for [2 MiB, 4 MiB) (its LEVEL2 entry becomes
 * zero) and keeps the shared one for [0, 1 MiB).
 */
VTEST(region_vacate_second_of_adjacent_regions_keeps_shared_table,
    VT_PER_FORMAT)
{
	const uint64_t base = tu_live_pages();
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 0, TU_1M);
	vmm_gpt_populate_region(gpt, TU_1M, 2 * TU_1M);
	TU_CHECK_TABLES(impl, gpt, base, 1, 1, 2);
	vmm_gpt_entry_t *shared = tu_leaf(gpt, 0);

	vmm_gpt_vacate_region(gpt, TU_1M, 2 * TU_1M);
	TU_CHECK_TABLES(impl, gpt, base, 1, 1, 1);
	TU_CHECK_WALKABLE(impl, gpt, 0, TU_1M, TU_PAGE);
	VT_CHECK_EQ((uintptr_t)tu_leaf(gpt, 0), (uintptr_t)shared);
	vmm_gpt_entry_t *l2e = tu_hw_entry(impl, gpt, TU_2M, LEVEL2);
	VT_CHECK_NOT_NULL(l2e);
	VT_CHECK_EQ(*l2e, 0);

	vmm_gpt_vacate_region(gpt, 0, TU_1M);
	TU_CHECK_TABLES(impl, gpt, base, 0, 0, 0);
	VT_CHECK(tu_table_is_empty(tu_root(gpt)));

	vmm_gpt_free(gpt);
	VT_CHECK_EQ(tu_live_pages(), base);
}

/*
 * Populating and vacating a region next to a mapped page in a shared leaf
 * table leaves that mapping untouched.
 */
VTEST(region_populate_and_vacate_keep_mappings_in_shared_leaf_table,
    VT_PER_FORMAT)
{
	const uint64_t gpa = 0x40000000ULL + 0x7000;
	const pfn_t pfn = 0x4242;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, TU_1G, 8 * TU_PAGE);
	vmm_gpt_entry_t *ptep = tu_leaf(gpt, gpa);
	VT_CHECK(vmm_gpt_map_at(gpt, ptep, pfn, TU_PROT_RWX, KTEST_MTRR_WB));
	const vmm_gpt_entry_t mapped = *ptep;

	vmm_gpt_populate_region(gpt, TU_1G + 8 * TU_PAGE, 2 * TU_2M);
	VT_CHECK_EQ((uintptr_t)tu_leaf(gpt, gpa), (uintptr_t)ptep);
	VT_CHECK_EQ(*ptep, mapped);

	vmm_gpt_vacate_region(gpt, TU_1G + 8 * TU_PAGE, 2 * TU_2M);
	VT_CHECK_EQ((uintptr_t)tu_leaf(gpt, gpa), (uintptr_t)ptep);
	VT_CHECK_EQ(*ptep, mapped);
	VT_CHECK_EQ(tu_count_mapped(impl, gpt), 1);

	VT_CHECK(vmm_gpt_unmap(gpt, gpa));
	vmm_gpt_vacate_region(gpt, TU_1G, 8 * TU_PAGE);
	vmm_gpt_free(gpt);
}

/*
 * A region populated into the gap between two existing ones
 * ([0, 4 KiB) and [4 GiB, 4 GiB + 4 KiB)) adds only what is missing:
 * LEVEL2 tables for 1, 2 and 3 GiB, 511 leaf tables in [2 MiB, 1 GiB) and
 * 3 * 512 in [1 GiB, 4 GiB).  Vacating the three in any order frees all.
 */
VTEST(region_populate_between_regions_adds_only_missing_tables, VT_PER_FORMAT)
{
	const uint64_t base = tu_live_pages();
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 0, TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, base, 1, 1, 1);
	vmm_gpt_populate_region(gpt, 4 * TU_1G, TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, base, 1, 2, 2);

	uint64_t before = tu_live_pages();
	vmm_gpt_populate_region(gpt, TU_PAGE, 4 * TU_1G - TU_PAGE);
	VT_CHECK_EQ(tu_live_pages() - before, 3 + 511 + 3 * 512);
	TU_CHECK_TABLES(impl, gpt, base, 1, 5, 2 + 511 + 3 * 512);
	TU_CHECK_WALKABLE(impl, gpt, 0, 4 * TU_1G + TU_PAGE, TU_PAGE);

	/* The middle one first: only the two end regions' tables remain. */
	vmm_gpt_vacate_region(gpt, TU_PAGE, 4 * TU_1G - TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, base, 1, 2, 2);
	TU_CHECK_WALKABLE(impl, gpt, 0, TU_PAGE, TU_PAGE);
	TU_CHECK_WALKABLE(impl, gpt, 4 * TU_1G, TU_PAGE, TU_PAGE);

	vmm_gpt_vacate_region(gpt, 4 * TU_1G, TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, base, 1, 1, 1);
	vmm_gpt_vacate_region(gpt, 0, TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, base, 0, 0, 0);
	VT_CHECK(tu_table_is_empty(tu_root(gpt)));

	vmm_gpt_free(gpt);
	VT_CHECK_EQ(tu_live_pages(), base);
}

/*
 * Several regions around the 512 GiB boundaries, vacated in an order that
 * is neither that of their population nor of their addresses; each vacate
 * frees exactly the tables of its region that no other region uses.
 */
VTEST(region_vacate_regions_across_512g_boundaries_in_any_order,
    VT_PER_FORMAT)
{
	const uint64_t base = tu_live_pages();
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	/* A: [512 GiB - 4 KiB, 512 GiB + 4 KiB): L3 0/1, L2 x2, L1 x2. */
	vmm_gpt_populate_region(gpt, TU_512G - TU_PAGE, 2 * TU_PAGE);
	/* B: [1 TiB - 2 MiB, 1 TiB): reuses L3 1, new L2, new L1. */
	vmm_gpt_populate_region(gpt, 2 * TU_512G - TU_2M, TU_2M);
	/* C: [1 TiB, 1 TiB + 4 KiB): new L3, L2, L1. */
	vmm_gpt_populate_region(gpt, 2 * TU_512G, TU_PAGE);
	/* D: [512 GiB + 4 KiB, 512 GiB + 2 MiB): shares A's upper leaf. */
	vmm_gpt_populate_region(gpt, TU_512G + TU_PAGE, TU_2M - TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, base, 3, 4, 4);

	vmm_gpt_vacate_region(gpt, TU_512G - TU_PAGE, 2 * TU_PAGE);
	/* A's lower leaf, L2 and L3 0 go; its upper leaf is D's. */
	TU_CHECK_TABLES(impl, gpt, base, 2, 3, 3);
	TU_CHECK_WALKABLE(impl, gpt, TU_512G + TU_PAGE, TU_2M - TU_PAGE,
	    TU_PAGE);
	VT_CHECK_NULL(tu_hw_entry(impl, gpt, TU_512G - TU_PAGE, LEVEL3));

	vmm_gpt_vacate_region(gpt, 2 * TU_512G, TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, base, 1, 2, 2);
	TU_CHECK_WALKABLE(impl, gpt, 2 * TU_512G - TU_2M, TU_2M, TU_PAGE);

	vmm_gpt_vacate_region(gpt, TU_512G + TU_PAGE, TU_2M - TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, base, 1, 1, 1);

	vmm_gpt_vacate_region(gpt, 2 * TU_512G - TU_2M, TU_2M);
	TU_CHECK_TABLES(impl, gpt, base, 0, 0, 0);
	VT_CHECK(tu_table_is_empty(tu_root(gpt)));

	vmm_gpt_free(gpt);
	VT_CHECK_EQ(tu_live_pages(), base);
}

/*
 * Vacating one of many regions in one leaf table frees nothing until the
 * last one goes; then the leaf, LEVEL2 and LEVEL3 tables all go at once.
 */
VTEST(region_leaf_table_freed_with_last_region_in_it, VT_PER_FORMAT)
{
	const uint64_t base = tu_live_pages();
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	const uint64_t at = 7 * TU_1G + 3 * TU_2M;

	/* Four one-page regions at pages 0, 1, 100 and 511 of one table. */
	static const unsigned pages[] = { 0, 1, 100, 511 };
	for (unsigned i = 0; i < 4; i++)
		vmm_gpt_populate_region(gpt, at + pages[i] * TU_PAGE, TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, base, 1, 1, 1);

	for (unsigned i = 0; i < 3; i++) {
		vmm_gpt_vacate_region(gpt, at + pages[i] * TU_PAGE, TU_PAGE);
		TU_CHECK_TABLES(impl, gpt, base, 1, 1, 1);
		TU_CHECK_WALKABLE(impl, gpt, at + 511 * TU_PAGE, TU_PAGE,
		    TU_PAGE);
	}
	vmm_gpt_vacate_region(gpt, at + 511 * TU_PAGE, TU_PAGE);
	TU_CHECK_TABLES(impl, gpt, base, 0, 0, 0);
	VT_CHECK(tu_table_is_empty(tu_root(gpt)));

	vmm_gpt_free(gpt);
}

/*
 * Regions of two GPTs are independent: populating one leaves the other
 * with its root only, and vacating restores each separately.
 */
VTEST(region_gpts_do_not_share_tables, VT_PER_FORMAT)
{
	const uint64_t base = tu_live_pages();
	vmm_gpt_t *a = vmm_gpt_alloc();
	vmm_gpt_t *b = vmm_gpt_alloc();

	VT_CHECK_NE((uintptr_t)tu_root(a), (uintptr_t)tu_root(b));
	vmm_gpt_populate_region(a, 0, TU_2M);
	VT_CHECK(tu_table_is_empty(tu_root(b)));
	VT_CHECK_EQ(tu_live_pages(), base + 2 + 3);

	vmm_gpt_populate_region(b, 0, TU_2M);
	VT_CHECK_EQ(tu_live_pages(), base + 2 + 6);
	VT_CHECK_NE((uintptr_t)tu_leaf(a, 0), (uintptr_t)tu_leaf(b, 0));

	vmm_gpt_vacate_region(a, 0, TU_2M);
	VT_CHECK(tu_table_is_empty(tu_root(a)));
	TU_CHECK_WALKABLE(impl, b, 0, TU_2M, TU_PAGE);
	VT_CHECK_EQ(tu_live_pages(), base + 2 + 3);

	vmm_gpt_vacate_region(b, 0, TU_2M);
	vmm_gpt_free(a);
	vmm_gpt_free(b);
	VT_CHECK_EQ(tu_live_pages(), base);
}
