/*
 * Helpers shared by the functional unit tests; see tutil.h.
 */

#include "tutil.h"

uint64_t
tu_live_pages(void)
{
	kmem_stats_t ks;

	ktest_kmem_stats(&ks);
	return (ks.ks_live_pages);
}

uint64_t
tu_live_allocs(void)
{
	kmem_stats_t ks;

	ktest_kmem_stats(&ks);
	return (ks.ks_live_allocs);
}

unsigned
tu_lvl_index(vmm_gpt_node_level_t lvl, uint64_t gpa)
{
	/* LEVEL4 selects with bits 39..47, each level below 9 bits lower. */
	const unsigned shift = 39 - 9 * (unsigned)lvl;

	return ((unsigned)((gpa >> shift) & (TU_PTES - 1)));
}

uint64_t
tu_lvl_mask(vmm_gpt_node_level_t lvl)
{
	const unsigned shift = 39 - 9 * (unsigned)lvl;

	return (~((1ULL << shift) - 1));
}

unsigned
tu_ptep_index(const vmm_gpt_entry_t *ptep)
{
	return ((unsigned)(((uintptr_t)ptep & 0xfff) / sizeof (uint64_t)));
}

vmm_gpt_entry_t *
tu_table_of(const vmm_gpt_entry_t *ptep)
{
	return ((vmm_gpt_entry_t *)((uintptr_t)ptep & ~(uintptr_t)0xfff));
}

vmm_gpt_entry_t *
tu_root(vmm_gpt_t *gpt)
{
	const uint64_t pmtp = vmm_gpt_get_pmtp(gpt, false);

	return (KTEST_PFN_TO_VA((pmtp & TU_PA_MASK) >> 12));
}

vmm_gpt_entry_t *
tu_child(const vmm_pte_impl_t *impl, vmm_gpt_entry_t pte)
{
	pfn_t pfn;

	if (pte == 0 || !impl->vpi_pte_parse(pte, &pfn, NULL))
		return (NULL);
	return (KTEST_PFN_TO_VA(pfn));
}

vmm_gpt_entry_t *
tu_hw_entry(const vmm_pte_impl_t *impl, vmm_gpt_t *gpt, uint64_t gpa,
    vmm_gpt_node_level_t lvl)
{
	vmm_gpt_entry_t *table = tu_root(gpt);

	for (vmm_gpt_node_level_t l = LEVEL4; ; l++) {
		vmm_gpt_entry_t *ptep = &table[tu_lvl_index(l, gpa)];

		if (l == lvl)
			return (ptep);
		table = tu_child(impl, *ptep);
		if (table == NULL)
			return (NULL);
	}
}

static uint64_t
count_below(const vmm_pte_impl_t *impl, const vmm_gpt_entry_t *table,
    vmm_gpt_node_level_t lvl, uint64_t counts[MAX_GPT_LEVEL])
{
	uint64_t total = 1;

	counts[lvl]++;
	if (lvl == LEVEL1)
		return (total);

	for (unsigned i = 0; i < TU_PTES; i++) {
		const vmm_gpt_entry_t pte = table[i];

		if (pte == 0)
			continue;

		/* A link must be exactly the format's table entry. */
		vmm_gpt_entry_t *child = tu_child(impl, pte);
		VT_CHECK_NOT_NULL(child);
		VT_CHECK_EQ(pte, impl->vpi_map_table(KTEST_VA_TO_PFN(child)));
		total += count_below(impl, child, lvl + 1, counts);
	}
	return (total);
}

uint64_t
tu_count_tables(const vmm_pte_impl_t *impl, vmm_gpt_t *gpt,
    uint64_t counts[MAX_GPT_LEVEL])
{
	for (unsigned l = 0; l < MAX_GPT_LEVEL; l++)
		counts[l] = 0;
	return (count_below(impl, tu_root(gpt), LEVEL4, counts));
}

void
tu_check_tables_at(const char *file, int line, const vmm_pte_impl_t *impl,
    vmm_gpt_t *gpt, uint64_t base_pages, uint64_t l3, uint64_t l2, uint64_t l1)
{
	uint64_t counts[MAX_GPT_LEVEL];
	const uint64_t total = tu_count_tables(impl, gpt, counts);
	const uint64_t live = tu_live_pages();

	if (counts[LEVEL4] != 1 || counts[LEVEL3] != l3 ||
	    counts[LEVEL2] != l2 || counts[LEVEL1] != l1) {
		vtest_fail(file, line, "tables per level (L4, L3, L2, L1): "
		    "found (%llu, %llu, %llu, %llu), expected (1, %llu, %llu, "
		    "%llu)", (unsigned long long)counts[LEVEL4],
		    (unsigned long long)counts[LEVEL3],
		    (unsigned long long)counts[LEVEL2],
		    (unsigned long long)counts[LEVEL1],
		    (unsigned long long)l3, (unsigned long long)l2,
		    (unsigned long long)l1);
	}
	if (live != base_pages + total) {
		vtest_fail(file, line, "live pages %llu != %llu base + %llu "
		    "tables", (unsigned long long)live,
		    (unsigned long long)base_pages, (unsigned long long)total);
	}
}

static uint64_t
mapped_below(const vmm_pte_impl_t *impl, const vmm_gpt_entry_t *table,
    vmm_gpt_node_level_t lvl)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < TU_PTES; i++) {
		if (lvl == LEVEL1) {
			if (table[i] != 0 &&
			    impl->vpi_pte_parse(table[i], NULL, NULL))
				n++;
			continue;
		}
		const vmm_gpt_entry_t *child = tu_child(impl, table[i]);
		if (child != NULL)
			n += mapped_below(impl, child, lvl + 1);
	}
	return (n);
}

uint64_t
tu_count_mapped(const vmm_pte_impl_t *impl, vmm_gpt_t *gpt)
{
	return (mapped_below(impl, tu_root(gpt), LEVEL4));
}

bool
tu_table_is_empty(const vmm_gpt_entry_t *table)
{
	for (unsigned i = 0; i < TU_PTES; i++) {
		if (table[i] != 0)
			return (false);
	}
	return (true);
}

void
tu_check_walkable_at(const char *file, int line, const vmm_pte_impl_t *impl,
    vmm_gpt_t *gpt, uint64_t addr, uint64_t len, uint64_t step)
{
	for (uint64_t off = 0; off < len; off += step) {
		const uint64_t gpa = addr + off;
		vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];
		vmm_gpt_entry_t *hw = tu_hw_entry(impl, gpt, gpa, LEVEL1);
		const uint64_t ret = vmm_gpt_walk(gpt, gpa, entries, LEVEL1);

		if (hw == NULL) {
			vtest_fail(file, line, "gpa 0x%llx has no leaf table",
			    (unsigned long long)gpa);
		}
		if (entries[LEVEL1] != hw || ret != gpa) {
			vtest_fail(file, line, "walk of gpa 0x%llx: leaf %p "
			    "(expected %p), returned 0x%llx",
			    (unsigned long long)gpa, (void *)entries[LEVEL1],
			    (void *)hw, (unsigned long long)ret);
		}
	}
}

vmm_gpt_entry_t *
tu_leaf(vmm_gpt_t *gpt, uint64_t gpa)
{
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];

	(void) vmm_gpt_walk(gpt, gpa, entries, LEVEL1);
	VT_CHECK_NOT_NULL(entries[LEVEL1]);
	return (entries[LEVEL1]);
}
