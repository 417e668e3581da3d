/*
 * vmm_gpt_alloc() and vmm_gpt_free().
 *
 * A new GPT owns one table page, its (empty) root.  Freeing a GPT returns
 * every allocation it made.  The original vmm_gpt_free() only manages that
 * for a GPT whose regions were all vacated: with populated regions left it
 * panics (see "The defect the library fixes" in docs/abi.md).  The library
 * frees every table then, mapped entries or not; those tests are
 * VT_LIBRARY_ONLY.  Beyond the checks here, the runner fails any test that
 * leaves an allocation live.
 */

#include "tutil.h"

/* Check that the kernel stand-in is back to the allocations of `before`. */
#define	CHECK_ALL_FREED(before) do {					\
	kmem_stats_t ks_;						\
	ktest_kmem_stats(&ks_);						\
	VT_CHECK_EQ(ks_.ks_live_allocs, (before).ks_live_allocs);	\
	VT_CHECK_EQ(ks_.ks_live_bytes, (before).ks_live_bytes);	\
	VT_CHECK_EQ(ks_.ks_live_pages, (before).ks_live_pages);	\
} while (0)

/* alloc makes exactly one table page, the root, with all entries empty. */
VTEST(free_alloc_makes_only_an_empty_root_table, VT_PER_FORMAT)
{
	kmem_stats_t before;

	ktest_kmem_stats(&before);
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	VT_CHECK_NOT_NULL(gpt);
	VT_CHECK_EQ(tu_live_pages(), before.ks_live_pages + 1);
	TU_CHECK_TABLES(impl, gpt, before.ks_live_pages, 0, 0, 0);
	VT_CHECK(tu_table_is_empty(tu_root(gpt)));

	vmm_gpt_free(gpt);
	CHECK_ALL_FREED(before);
}

/* Freeing an empty GPT returns everything alloc took. */
VTEST(free_empty_gpt_releases_all_allocations, VT_PER_FORMAT)
{
	kmem_stats_t before, after;

	ktest_kmem_stats(&before);
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	ktest_kmem_stats(&after);
	VT_CHECK(after.ks_live_allocs > before.ks_live_allocs);

	vmm_gpt_free(gpt);
	CHECK_ALL_FREED(before);

	/* Many in a row, interleaved: no state carried over. */
	vmm_gpt_t *gpts[16];
	for (unsigned i = 0; i < 16; i++)
		gpts[i] = vmm_gpt_alloc();
	VT_CHECK_EQ(tu_live_pages(), before.ks_live_pages + 16);
	for (unsigned i = 0; i < 16; i += 2)
		vmm_gpt_free(gpts[i]);
	for (unsigned i = 1; i < 16; i += 2)
		vmm_gpt_free(gpts[i]);
	CHECK_ALL_FREED(before);
}

/* The consumer's life cycle: populate, map, unmap, vacate, then free. */
VTEST(free_after_unmap_and_vacate_releases_all_allocations, VT_PER_FORMAT)
{
	kmem_stats_t before;

	ktest_kmem_stats(&before);
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	vmm_gpt_populate_region(gpt, 4 * TU_1G, 8 * TU_1G);
	vmm_gpt_populate_region(gpt, TU_512G - TU_2M, 2 * TU_2M);
	VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, 4 * TU_1G), 1, TU_PROT_RWX,
	    KTEST_MTRR_WB));
	VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, TU_512G), 2, TU_PROT_RWX,
	    KTEST_MTRR_WB));

	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, 4 * TU_1G, 8 * TU_1G), 1);
	vmm_gpt_vacate_region(gpt, 4 * TU_1G, 8 * TU_1G);
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, TU_512G - TU_2M, 2 * TU_2M), 1);
	vmm_gpt_vacate_region(gpt, TU_512G - TU_2M, 2 * TU_2M);

	vmm_gpt_free(gpt);
	CHECK_ALL_FREED(before);
}

/* Freeing one GPT leaves another intact and usable. */
VTEST(free_one_gpt_leaves_other_intact, VT_PER_FORMAT)
{
	kmem_stats_t before;

	ktest_kmem_stats(&before);
	vmm_gpt_t *a = vmm_gpt_alloc();
	vmm_gpt_t *b = vmm_gpt_alloc();
	vmm_gpt_populate_region(b, TU_1G, TU_2M);
	VT_CHECK(vmm_gpt_map_at(b, tu_leaf(b, TU_1G), 0x321, TU_PROT_RWX,
	    KTEST_MTRR_WB));
	const uint64_t pmtp = vmm_gpt_get_pmtp(b, true);

	vmm_gpt_free(a);
	VT_CHECK_EQ(tu_live_pages(), before.ks_live_pages + 4);
	VT_CHECK_EQ(vmm_gpt_get_pmtp(b, true), pmtp);
	TU_CHECK_WALKABLE(impl, b, TU_1G, TU_2M, TU_PAGE);
	VT_CHECK_EQ(*tu_leaf(b, TU_1G), impl->vpi_map_page(0x321,
	    TU_PROT_RWX, KTEST_MTRR_WB));

	VT_CHECK(vmm_gpt_unmap(b, TU_1G));
	vmm_gpt_vacate_region(b, TU_1G, TU_2M);
	vmm_gpt_free(b);
	CHECK_ALL_FREED(before);
}

/*
 * The fixed defect: a GPT that still has populated regions frees them all.
 */

/* One populated page (the original reaches no node from GPA 0 at all). */
VTEST(free_with_one_populated_page_frees_all_tables,
    VT_PER_FORMAT | VT_LIBRARY_ONLY)
{
	kmem_stats_t before;

	ktest_kmem_stats(&before);
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	vmm_gpt_populate_region(gpt, 0x123456789000ULL, TU_PAGE);
	VT_CHECK_EQ(tu_live_pages(), before.ks_live_pages + 4);

	vmm_gpt_free(gpt);
	CHECK_ALL_FREED(before);
}

/* One populated page at GPA 0, where the original does find its nodes. */
VTEST(free_with_populated_page_at_zero_frees_all_tables,
    VT_PER_FORMAT | VT_LIBRARY_ONLY)
{
	kmem_stats_t before;

	ktest_kmem_stats(&before);
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	vmm_gpt_populate_region(gpt, 0, TU_PAGE);

	vmm_gpt_free(gpt);
	CHECK_ALL_FREED(before);
}

/* 8 GiB at 4 GiB: 4105 tables. */
VTEST(free_with_8g_at_4g_populated_frees_all_tables,
    VT_PER_FORMAT | VT_LIBRARY_ONLY)
{
	kmem_stats_t before;

	ktest_kmem_stats(&before);
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	vmm_gpt_populate_region(gpt, 4 * TU_1G, 8 * TU_1G);
	VT_CHECK_EQ(tu_live_pages(), before.ks_live_pages + 1 + 4105);

	vmm_gpt_free(gpt);
	CHECK_ALL_FREED(before);
}

/*
 * Several regions across 512 GiB boundaries, some sharing leaf tables
 * (partially referenced ones), with pages still mapped in them, and one
 * region vacated before the free.
 */
VTEST(free_with_regions_across_512g_boundaries_and_mappings,
    VT_PER_FORMAT | VT_LIBRARY_ONLY)
{
	static const struct {
		uint64_t	addr;
		uint64_t	len;
	} regions[] = {
		{ 0, TU_1M },				/* shares a leaf... */
		{ TU_1M, TU_1M + TU_PAGE },		/* ...with this one */
		{ TU_512G - TU_PAGE, 2 * TU_PAGE },	/* across 512 GiB */
		{ 2 * TU_512G - TU_1G, TU_1G + TU_2M },	/* across 1 TiB */
		{ 5 * TU_512G + 3 * TU_1G, TU_PAGE },
		{ TU_TOP - TU_2M - TU_PAGE, TU_2M + TU_PAGE },	/* to the top */
	};
	const unsigned n = sizeof (regions) / sizeof (regions[0]);
	kmem_stats_t before;

	ktest_kmem_stats(&before);
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	for (unsigned i = 0; i < n; i++) {
		vmm_gpt_populate_region(gpt, regions[i].addr, regions[i].len);
		/* Map the first and last page of each region. */
		const uint64_t first = regions[i].addr;
		const uint64_t last = regions[i].addr + regions[i].len -
		    TU_PAGE;
		VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, first),
		    TU_PFN_FOR(first), TU_PROT_RWX, KTEST_MTRR_WB));
		if (last != first) {
			VT_CHECK(vmm_gpt_map_at(gpt, tu_leaf(gpt, last),
			    TU_PFN_FOR(last), TU_PROT_RWX, KTEST_MTRR_WB));
		}
	}
	VT_CHECK_EQ(tu_count_mapped(impl, gpt), 2 * n - 1);

	/* Vacate one (after unmapping it) so a freed region is mixed in. */
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, regions[4].addr,
	    regions[4].len), 1);
	vmm_gpt_vacate_region(gpt, regions[4].addr, regions[4].len);

	vmm_gpt_free(gpt);
	CHECK_ALL_FREED(before);
}

/* Half of two adjacent regions sharing a leaf table vacated. */
VTEST(free_with_partly_vacated_shared_leaf_table_frees_all_tables,
    VT_PER_FORMAT | VT_LIBRARY_ONLY)
{
	kmem_stats_t before;

	ktest_kmem_stats(&before);
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	vmm_gpt_populate_region(gpt, 3 * TU_1G, TU_1M);
	vmm_gpt_populate_region(gpt, 3 * TU_1G + TU_1M, 3 * TU_1M);
	vmm_gpt_vacate_region(gpt, 3 * TU_1G, TU_1M);
	VT_CHECK_EQ(tu_live_pages(), before.ks_live_pages + 1 + 4);

	vmm_gpt_free(gpt);
	CHECK_ALL_FREED(before);
}
