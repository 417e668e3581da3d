/*
 * Accessed/dirty bits (vmm_gpte_reset_accessed(), vmm_gpte_reset_dirty(),
 * vmm_gpte_query_accessed(), vmm_gpte_query_dirty()), vmm_gpt_get_pmtp()
 * and vmm_gpt_can_track_dirty().
 *
 * reset_accessed(ptep, on) works on the accessed AND dirty bits: it clears
 * both, sets accessed again when `on`, and returns whether either was set
 * before.  reset_dirty(ptep, on) sets or clears the dirty bit alone and
 * returns whether it was set.  Neither touches any other bit.  The bits are
 * the installed format's vpi_bit_accessed and vpi_bit_dirty.
 */

#include "tutil.h"

/*
 * Values of the bits other than A/D: a real leaf entry, all other bits set,
 * all clear, and an arbitrary pattern.
 */
static void
other_bits(const vmm_pte_impl_t *impl, uint64_t out[4])
{
	const uint64_t ad = impl->vpi_bit_accessed | impl->vpi_bit_dirty;

	out[0] = impl->vpi_map_page(0x12345, TU_PROT_RWX, KTEST_MTRR_WB) & ~ad;
	out[1] = ~ad;
	out[2] = 0;
	out[3] = 0xa5c3f00dbeef1234ULL & ~ad;
}

/* The format's A and D bits are two distinct single bits. */
VTEST(ad_format_bits_are_distinct_single_bits, VT_PER_FORMAT)
{
	const uint64_t a = impl->vpi_bit_accessed, d = impl->vpi_bit_dirty;

	VT_CHECK_NE(a, 0);
	VT_CHECK_NE(d, 0);
	VT_CHECK_EQ(a & (a - 1), 0);
	VT_CHECK_EQ(d & (d - 1), 0);
	VT_CHECK_NE(a, d);
}

/*
 * Runs reset(&pte, on) for each of the other bits and the four A/D states
 * before: it must return whether any bit of `was` was set, and leave the
 * entry with the other bits kept, `clear` cleared and `set` set.
 */
static void
check_reset(const vmm_pte_impl_t *impl, bool (*reset)(vmm_gpt_entry_t *, bool),
    bool on, uint64_t was, uint64_t clear, uint64_t set)
{
	const uint64_t a = impl->vpi_bit_accessed, d = impl->vpi_bit_dirty;
	uint64_t base[4];

	other_bits(impl, base);
	for (unsigned b = 0; b < 4; b++) {
		for (unsigned s = 0; s < 4; s++) {
			const uint64_t bits = ((s & 1) ? a : 0) |
			    ((s & 2) ? d : 0);
			vmm_gpt_entry_t pte = base[b] | bits;

			VT_CHECK_EQ(reset(&pte, on), (bits & was) != 0);
			VT_CHECK_EQ(pte, base[b] | (bits & ~clear) | set);
		}
	}
}

/*
 * reset_accessed(false) clears A and D, keeps the rest, and returns whether
 * A or D was set: for each of the four A/D states before.
 */
VTEST(reset_accessed_off_clears_accessed_and_dirty, VT_PER_FORMAT)
{
	const uint64_t ad = impl->vpi_bit_accessed | impl->vpi_bit_dirty;

	check_reset(impl, vmm_gpte_reset_accessed, false, ad, ad, 0);
}

/*
 * reset_accessed(true) sets A, clears D, keeps the rest, and returns
 * whether A or D was set.
 */
VTEST(reset_accessed_on_sets_accessed_and_clears_dirty, VT_PER_FORMAT)
{
	const uint64_t a = impl->vpi_bit_accessed, d = impl->vpi_bit_dirty;

	check_reset(impl, vmm_gpte_reset_accessed, true, a | d, a | d, a);
}

/*
 * reset_dirty(false) clears D only, keeps A and the rest, and returns
 * whether D was set.
 */
VTEST(reset_dirty_off_clears_only_dirty, VT_PER_FORMAT)
{
	const uint64_t d = impl->vpi_bit_dirty;

	check_reset(impl, vmm_gpte_reset_dirty, false, d, d, 0);
}

/*
 * reset_dirty(true) sets D only, keeps A and the rest, and returns whether
 * D was set.
 */
VTEST(reset_dirty_on_sets_only_dirty, VT_PER_FORMAT)
{
	const uint64_t d = impl->vpi_bit_dirty;

	check_reset(impl, vmm_gpte_reset_dirty, true, d, 0, d);
}

/* query_accessed and query_dirty read their bit and nothing else. */
VTEST(query_accessed_and_dirty_read_their_bit, VT_PER_FORMAT)
{
	const uint64_t a = impl->vpi_bit_accessed, d = impl->vpi_bit_dirty;
	uint64_t base[4];

	other_bits(impl, base);
	for (unsigned b = 0; b < 4; b++) {
		for (unsigned s = 0; s < 4; s++) {
			const vmm_gpt_entry_t pte = base[b] |
			    ((s & 1) ? a : 0) | ((s & 2) ? d : 0);

			VT_CHECK_EQ(vmm_gpte_query_accessed(&pte),
			    (s & 1) != 0);
			VT_CHECK_EQ(vmm_gpte_query_dirty(&pte), (s & 2) != 0);
		}
	}
}

/*
 * The dirty-tracking cycle on a live leaf entry of a GPT, as hardware and
 * vmspace_bits_operate() would run it: the mapping itself survives.
 */
VTEST(ad_bits_on_mapped_leaf_entry_keep_mapping, VT_PER_FORMAT)
{
	const uint64_t a = impl->vpi_bit_accessed, d = impl->vpi_bit_dirty;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, 2 * TU_1G, TU_2M);
	vmm_gpt_entry_t *ptep = tu_leaf(gpt, 2 * TU_1G + 9 * TU_PAGE);
	VT_CHECK(vmm_gpt_map_at(gpt, ptep, 0xbeef, PROT_READ | PROT_WRITE,
	    KTEST_MTRR_WB));

	/*
	 * Some formats map pages with A preset (AMD sets it on every entry):
	 * start the cycle from a clean entry.
	 */
	const vmm_gpt_entry_t fresh = *ptep;
	const vmm_gpt_entry_t mapped = fresh & ~(a | d);
	VT_CHECK_EQ(vmm_gpte_query_accessed(ptep), (fresh & a) != 0);
	VT_CHECK_EQ(vmm_gpte_reset_accessed(ptep, false),
	    (fresh & (a | d)) != 0);
	VT_CHECK_EQ(*ptep, mapped);
	VT_CHECK(!vmm_gpte_query_accessed(ptep));
	VT_CHECK(!vmm_gpte_query_dirty(ptep));

	/* "Hardware" writes the page. */
	*ptep |= a | d;
	VT_CHECK(vmm_gpte_query_dirty(ptep));
	VT_CHECK(vmm_gpte_reset_dirty(ptep, false));
	VT_CHECK_EQ(*ptep, mapped | a);
	VT_CHECK(!vmm_gpte_reset_dirty(ptep, false));
	VT_CHECK(vmm_gpte_query_accessed(ptep));
	VT_CHECK(vmm_gpte_reset_accessed(ptep, false));
	VT_CHECK_EQ(*ptep, mapped);
	VT_CHECK(!vmm_gpte_reset_accessed(ptep, false));

	pfn_t pfn;
	VT_CHECK(vmm_gpte_is_mapped(ptep, &pfn, NULL));
	VT_CHECK_EQ(pfn, 0xbeef);
	/* A mapped page with A/D bits still counts as mapped when removed. */
	VT_CHECK(!vmm_gpte_reset_dirty(ptep, true));
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, 2 * TU_1G, TU_2M), 1);

	vmm_gpt_vacate_region(gpt, 2 * TU_1G, TU_2M);
	vmm_gpt_free(gpt);
}

/*
 * get_pmtp is the format's EPTP/nCR3 for the root table, with and without
 * A/D tracking; the root is where walks start (entries[LEVEL4]).
 */
VTEST(get_pmtp_is_format_pmtp_of_root_table, VT_PER_FORMAT)
{
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	(void) vmm_gpt_walk(gpt, 0, entries, LEVEL4);
	const pfn_t root =
	    KTEST_VA_TO_PFN((uintptr_t)entries[LEVEL4] & ~(uintptr_t)0xfff);

	VT_CHECK_EQ(vmm_gpt_get_pmtp(gpt, false),
	    impl->vpi_get_pmtp(root, false));
	VT_CHECK_EQ(vmm_gpt_get_pmtp(gpt, true),
	    impl->vpi_get_pmtp(root, true));
	/* The root is a live table page of its own. */
	VT_CHECK_EQ(vmm_gpt_get_pmtp(gpt, false) & TU_PA_MASK, root << 12);

	/* Populating and vacating do not move the root. */
	vmm_gpt_populate_region(gpt, 0, 8 * TU_1G);
	VT_CHECK_EQ(vmm_gpt_get_pmtp(gpt, true),
	    impl->vpi_get_pmtp(root, true));
	vmm_gpt_vacate_region(gpt, 0, 8 * TU_1G);
	VT_CHECK_EQ(vmm_gpt_get_pmtp(gpt, false),
	    impl->vpi_get_pmtp(root, false));

	vmm_gpt_free(gpt);
}

/* Two GPTs have two roots, so two different pmtps. */
VTEST(get_pmtp_differs_between_gpts, VT_PER_FORMAT)
{
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];
	vmm_gpt_t *a = vmm_gpt_alloc();
	vmm_gpt_t *b = vmm_gpt_alloc();

	(void) vmm_gpt_walk(b, 0, entries, LEVEL4);
	const pfn_t broot =
	    KTEST_VA_TO_PFN((uintptr_t)entries[LEVEL4] & ~(uintptr_t)0xfff);

	VT_CHECK_NE(vmm_gpt_get_pmtp(a, false), vmm_gpt_get_pmtp(b, false));
	VT_CHECK_NE(vmm_gpt_get_pmtp(a, true), vmm_gpt_get_pmtp(b, true));
	VT_CHECK_EQ(vmm_gpt_get_pmtp(b, true), impl->vpi_get_pmtp(broot,
	    true));

	vmm_gpt_free(a);
	vmm_gpt_free(b);
}

/*
 * can_track_dirty reports what the format's vpi_hw_ad_supported() says at
 * the time of the call.
 */
VTEST(can_track_dirty_follows_hw_ad_support, VT_PER_FORMAT)
{
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	ktest_set_hw_ad_supported(true);
	VT_CHECK(impl->vpi_hw_ad_supported());
	VT_CHECK(vmm_gpt_can_track_dirty(gpt));

	ktest_set_hw_ad_supported(false);
	VT_CHECK_EQ(vmm_gpt_can_track_dirty(gpt), impl->vpi_hw_ad_supported());
	if (impl == &ept_pte_impl)
		VT_CHECK(!vmm_gpt_can_track_dirty(gpt));

	ktest_set_hw_ad_supported(true);
	VT_CHECK(vmm_gpt_can_track_dirty(gpt));

	vmm_gpt_free(gpt);
}
