/*
 * vmm_gpt_walk(gpt, gpa, entries, depth).
 *
 * For each level from LEVEL4 down to `depth` the walk stores a pointer to the
 * entry for `gpa` in that level's table, or NULL once a table on the way is
 * missing; it writes nothing past `depth`.  It returns `gpa` masked to the
 * deepest level whose entry pointer is non-NULL (at least LEVEL4, since the
 * root always exists).  Entry pointers are checked against the tables found
 * by following the hardware entries from the EPTP/nCR3 root.
 */

#include "tutil.h"

/* Marks entries[] slots that the walk must not write. */
#define	SENTINEL	((vmm_gpt_entry_t *)(uintptr_t)0x5e5e5e5e5e5e5e58ULL)

/*
 * Walk `gpa` to `depth` and check the result, where `deepest` is the deepest
 * level whose table exists on the path of `gpa` (LEVEL1 if a leaf table
 * covers it).
 */
#define	CHECK_WALK(impl, gpt, gpa, depth, deepest) \
	check_walk_at(__LINE__, (impl), (gpt), (gpa), (depth), (deepest))

static void
check_walk_at(int line, const vmm_pte_impl_t *impl, vmm_gpt_t *gpt,
    uint64_t gpa, vmm_gpt_node_level_t depth, vmm_gpt_node_level_t deepest)
{
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];
	const vmm_gpt_node_level_t last = depth < deepest ? depth : deepest;

	for (unsigned l = 0; l < MAX_GPT_LEVEL; l++)
		entries[l] = SENTINEL;

	const uint64_t ret = vmm_gpt_walk(gpt, gpa, entries, depth);

	for (vmm_gpt_node_level_t l = LEVEL4; l < MAX_GPT_LEVEL; l++) {
		vmm_gpt_entry_t *want;

		if (l > depth)
			want = SENTINEL;
		else if (l > deepest)
			want = NULL;
		else
			want = tu_hw_entry(impl, gpt, gpa, l);

		if (entries[l] != want) {
			vtest_fail(__FILE__, line, "walk(0x%llx, depth %d): "
			    "entries[%d] = %p, expected %p",
			    (unsigned long long)gpa, (int)depth, (int)l,
			    (void *)entries[l], (void *)want);
		}
		if (l <= last) {
			/* The right slot of the table the level above links. */
			if (want == NULL ||
			    tu_ptep_index(entries[l]) != tu_lvl_index(l, gpa)) {
				vtest_fail(__FILE__, line, "walk(0x%llx): "
				    "entries[%d] = %p is not at index %u",
				    (unsigned long long)gpa, (int)l,
				    (void *)entries[l], tu_lvl_index(l, gpa));
			}
			vmm_gpt_entry_t *table = (l == LEVEL4) ? tu_root(gpt) :
			    tu_child(impl, *entries[l - 1]);
			if (tu_table_of(entries[l]) != table) {
				vtest_fail(__FILE__, line, "walk(0x%llx): "
				    "entries[%d] = %p is not in table %p",
				    (unsigned long long)gpa, (int)l,
				    (void *)entries[l], (void *)table);
			}
		}
	}
	if (ret != (gpa & tu_lvl_mask(last))) {
		vtest_fail(__FILE__, line, "walk(0x%llx, depth %d) returned "
		    "0x%llx, expected 0x%llx", (unsigned long long)gpa,
		    (int)depth, (unsigned long long)ret,
		    (unsigned long long)(gpa & tu_lvl_mask(last)));
	}
}

/* Walk `gpa` at every depth from LEVEL4 to LEVEL1. */
static void
check_walk_all_depths(int line, const vmm_pte_impl_t *impl, vmm_gpt_t *gpt,
    uint64_t gpa, vmm_gpt_node_level_t deepest)
{
	for (vmm_gpt_node_level_t d = LEVEL4; d <= LEVEL1; d++)
		check_walk_at(line, impl, gpt, gpa, d, deepest);
}
#define	CHECK_WALK_ALL(impl, gpt, gpa, deepest) \
	check_walk_all_depths(__LINE__, (impl), (gpt), (gpa), (deepest))

/*
 * In an empty GPT only the root exists: entries[LEVEL4] points at the gpa's
 * slot in the root, the rest down to depth are NULL, the result is the gpa
 * masked to 512 GiB, and the walk allocates nothing.
 */
VTEST(walk_empty_gpt_at_every_depth, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	const uint64_t pages = tu_live_pages();

	CHECK_WALK_ALL(impl, gpt, 0, LEVEL4);
	CHECK_WALK_ALL(impl, gpt, 0x123456789000ULL, LEVEL4);
	CHECK_WALK_ALL(impl, gpt, TU_TOP - TU_PAGE, LEVEL4);
	VT_CHECK_EQ(tu_live_pages(), pages);
	VT_CHECK(tu_table_is_empty(tu_root(gpt)));

	vmm_gpt_free(gpt);
}

/*
 * A populated page has an entry at every level; at depth d the walk returns
 * the gpa masked to level d (the page address at LEVEL1).
 */
VTEST(walk_populated_page_at_every_depth, VT_PER_FORMAT)
{
	const uint64_t gpa = 0x5a5a5a5a5000ULL;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, gpa, TU_PAGE);
	CHECK_WALK_ALL(impl, gpt, gpa, LEVEL1);

	vmm_gpt_vacate_region(gpt, gpa, TU_PAGE);
	vmm_gpt_free(gpt);
}

/*
 * With only [0, 4 KiB) populated, addresses whose path stops at each level:
 * another page of the same leaf table (LEVEL1 exists, entry empty), another
 * 2 MiB of the same LEVEL2 table (no leaf table), another 1 GiB of the same
 * LEVEL3 table (no LEVEL2 table), and another 512 GiB (no LEVEL3 table).
 */
VTEST(walk_partially_populated_paths_at_every_depth, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 0, TU_PAGE);
	const uint64_t pages = tu_live_pages();

	CHECK_WALK_ALL(impl, gpt, 0, LEVEL1);
	CHECK_WALK_ALL(impl, gpt, 0x1ff000, LEVEL1);
	CHECK_WALK_ALL(impl, gpt, TU_2M, LEVEL2);
	CHECK_WALK_ALL(impl, gpt, 0x3fe05000ULL, LEVEL2);
	CHECK_WALK_ALL(impl, gpt, TU_1G, LEVEL3);
	CHECK_WALK_ALL(impl, gpt, 0x7fffff3000ULL, LEVEL3);
	CHECK_WALK_ALL(impl, gpt, TU_512G, LEVEL4);
	CHECK_WALK_ALL(impl, gpt, TU_TOP - TU_PAGE, LEVEL4);

	/* An empty slot in an existing leaf table reads as zero. */
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];
	VT_CHECK_EQ(vmm_gpt_walk(gpt, 0x1ff000, entries, LEVEL1), 0x1ff000);
	VT_CHECK_EQ(*entries[LEVEL1], 0);
	VT_CHECK_EQ(tu_live_pages(), pages);

	vmm_gpt_vacate_region(gpt, 0, TU_PAGE);
	vmm_gpt_free(gpt);
}

/*
 * The unpopulated-address cases once more, at an address whose indexes are
 * all non-zero, so that a result masked at the wrong level would show.
 */
VTEST(walk_result_is_masked_to_deepest_present_level, VT_PER_FORMAT)
{
	/* Indexes: L4 0x0ab, L3 0x1cd, L2 0x0ef, L1 0x123. */
	const uint64_t gpa = (0x0abULL << 39) | (0x1cdULL << 30) |
	    (0x0efULL << 21) | (0x123ULL << 12);
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	VT_CHECK_EQ(vmm_gpt_walk(gpt, gpa, entries, LEVEL1), 0x0abULL << 39);

	/* Populate the page just past gpa's 1 GiB: L3 table exists. */
	const uint64_t g1 = (gpa & tu_lvl_mask(LEVEL3)) + TU_1G;
	vmm_gpt_populate_region(gpt, g1, TU_PAGE);
	VT_CHECK_EQ(vmm_gpt_walk(gpt, gpa, entries, LEVEL1),
	    gpa & tu_lvl_mask(LEVEL3));
	CHECK_WALK_ALL(impl, gpt, gpa, LEVEL3);

	/* The page just past gpa's 2 MiB: L2 table exists. */
	const uint64_t g2 = (gpa & tu_lvl_mask(LEVEL2)) + TU_2M;
	vmm_gpt_populate_region(gpt, g2, TU_PAGE);
	VT_CHECK_EQ(vmm_gpt_walk(gpt, gpa, entries, LEVEL1),
	    gpa & tu_lvl_mask(LEVEL2));
	CHECK_WALK_ALL(impl, gpt, gpa, LEVEL2);

	/* The page after gpa: leaf table exists. */
	vmm_gpt_populate_region(gpt, gpa + TU_PAGE, TU_PAGE);
	VT_CHECK_EQ(vmm_gpt_walk(gpt, gpa, entries, LEVEL1), gpa);
	CHECK_WALK_ALL(impl, gpt, gpa, LEVEL1);

	vmm_gpt_vacate_region(gpt, gpa + TU_PAGE, TU_PAGE);
	vmm_gpt_vacate_region(gpt, g2, TU_PAGE);
	vmm_gpt_vacate_region(gpt, g1, TU_PAGE);
	VT_CHECK(tu_table_is_empty(tu_root(gpt)));
	vmm_gpt_free(gpt);
}

/* The offset within the page is dropped from the result. */
VTEST(walk_unaligned_gpa_returns_page_address, VT_PER_FORMAT)
{
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 0x40200000ULL, TU_2M);
	VT_CHECK_EQ(vmm_gpt_walk(gpt, 0x40201234ULL, entries, LEVEL1),
	    0x40201000ULL);
	VT_CHECK_EQ((uintptr_t)entries[LEVEL1],
	    (uintptr_t)tu_hw_entry(impl, gpt, 0x40201000ULL, LEVEL1));
	VT_CHECK_EQ(vmm_gpt_walk(gpt, 0x40201234ULL, entries, LEVEL2),
	    0x40200000ULL);
	/* Unpopulated: masked to the last level with an entry. */
	VT_CHECK_EQ(vmm_gpt_walk(gpt, 0x40400fffULL, entries, LEVEL1),
	    0x40400000ULL);
	VT_CHECK_NULL(entries[LEVEL1]);

	vmm_gpt_vacate_region(gpt, 0x40200000ULL, TU_2M);
	vmm_gpt_free(gpt);
}

/* The last page of the 48-bit space: slot 511 of each table. */
VTEST(walk_last_page_of_address_space, VT_PER_FORMAT)
{
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, TU_TOP - TU_PAGE, TU_PAGE);
	CHECK_WALK_ALL(impl, gpt, TU_TOP - TU_PAGE, LEVEL1);
	(void) vmm_gpt_walk(gpt, TU_TOP - TU_PAGE, entries, LEVEL1);
	for (unsigned l = LEVEL4; l <= LEVEL1; l++)
		VT_CHECK_EQ((uintptr_t)entries[l] & 0xfff, 0xff8);

	/* Its neighbours stop one level up each. */
	CHECK_WALK_ALL(impl, gpt, TU_TOP - TU_2M - TU_PAGE, LEVEL2);
	CHECK_WALK_ALL(impl, gpt, TU_TOP - TU_1G - TU_PAGE, LEVEL3);
	CHECK_WALK_ALL(impl, gpt, TU_TOP - TU_512G - TU_PAGE, LEVEL4);

	vmm_gpt_vacate_region(gpt, TU_TOP - TU_PAGE, TU_PAGE);
	vmm_gpt_free(gpt);
}

/*
 * Across 512 GiB boundaries each side of the boundary has its own tables;
 * the leaf entries of all pages of 8 GiB at 4 GiB are where hardware finds
 * them.
 */
VTEST(walk_regions_across_boundaries, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, TU_512G - TU_2M, 2 * TU_2M);
	CHECK_WALK_ALL(impl, gpt, TU_512G - TU_PAGE, LEVEL1);
	CHECK_WALK_ALL(impl, gpt, TU_512G, LEVEL1);
	VT_CHECK_NE((uintptr_t)tu_table_of(tu_leaf(gpt, TU_512G - TU_PAGE)),
	    (uintptr_t)tu_table_of(tu_leaf(gpt, TU_512G)));
	CHECK_WALK_ALL(impl, gpt, TU_512G - TU_2M - TU_PAGE, LEVEL2);
	CHECK_WALK_ALL(impl, gpt, TU_512G + TU_2M, LEVEL2);
	CHECK_WALK_ALL(impl, gpt, TU_512G + TU_1G, LEVEL3);

	vmm_gpt_populate_region(gpt, 4 * TU_1G, 8 * TU_1G);
	TU_CHECK_WALKABLE(impl, gpt, 4 * TU_1G, 8 * TU_1G, TU_PAGE);
	CHECK_WALK_ALL(impl, gpt, 4 * TU_1G - TU_PAGE, LEVEL3);
	CHECK_WALK_ALL(impl, gpt, 12 * TU_1G, LEVEL3);
	CHECK_WALK_ALL(impl, gpt, 12 * TU_1G - TU_PAGE, LEVEL1);

	vmm_gpt_vacate_region(gpt, 4 * TU_1G, 8 * TU_1G);
	vmm_gpt_vacate_region(gpt, TU_512G - TU_2M, 2 * TU_2M);
	vmm_gpt_free(gpt);
}

/* After a vacate, the walk sees the tables gone. */
VTEST(walk_after_vacate_finds_only_root, VT_PER_FORMAT)
{
	const uint64_t gpa = 0x3000c0de000ULL;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, gpa, TU_PAGE);
	CHECK_WALK_ALL(impl, gpt, gpa, LEVEL1);
	vmm_gpt_vacate_region(gpt, gpa, TU_PAGE);
	CHECK_WALK_ALL(impl, gpt, gpa, LEVEL4);
	vmm_gpt_free(gpt);
}

/* The root slot is in the same (root) table for any address. */
VTEST(walk_level4_entry_is_in_root_table, VT_PER_FORMAT)
{
	static const uint64_t gpas[] = {
		0, TU_PAGE, TU_512G, 0x123456789000ULL, TU_TOP - TU_PAGE
	};
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	for (unsigned i = 0; i < sizeof (gpas) / sizeof (gpas[0]); i++) {
		vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];

		(void) vmm_gpt_walk(gpt, gpas[i], entries, LEVEL4);
		VT_CHECK_EQ((uintptr_t)entries[LEVEL4],
		    (uintptr_t)&tu_root(gpt)[tu_lvl_index(LEVEL4, gpas[i])]);
	}
	vmm_gpt_free(gpt);
}
