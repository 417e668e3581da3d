/*
 * Helpers shared by the functional unit tests (test_region.c, test_walk.c,
 * test_iter.c, test_map.c, test_ad.c, test_free.c).
 *
 * The helpers look at a GPT only through what hardware would see: the
 * EPTP/nCR3 value names the root table, and each table-link entry names the
 * next table (parsed with the installed format's vpi_pte_parse()).  They never
 * rely on vmm_gpt_walk(), so the tests can use them to check it.
 */
#ifndef TUTIL_H
#define	TUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vtest.h"
#include "ktest.h"

#define	TU_PAGE		0x1000ULL		/* 4 KiB: one leaf entry */
#define	TU_1M		0x100000ULL
#define	TU_2M		0x200000ULL		/* one LEVEL2 entry */
#define	TU_1G		0x40000000ULL		/* one LEVEL3 entry */
#define	TU_512G		0x8000000000ULL		/* one LEVEL4 entry */
#define	TU_TOP		0x1000000000000ULL	/* 2^48: end of the space */
#define	TU_PTES		512			/* entries per table */

/* Physical-address bits of an entry, an EPTP or an nCR3 (12..51). */
#define	TU_PA_MASK	0x000ffffffffff000ULL

/* Protection used by most tests: everything allowed. */
#define	TU_PROT_RWX	(PROT_READ | PROT_WRITE | PROT_EXEC)

/* Live PAGESIZE allocations (page-table pages) in the kernel stand-in. */
uint64_t tu_live_pages(void);

/* Live allocations of any size in the kernel stand-in. */
uint64_t tu_live_allocs(void);

/* Index of `gpa` in a table at `lvl`. */
unsigned tu_lvl_index(vmm_gpt_node_level_t lvl, uint64_t gpa);

/* Mask keeping the part of a GPA that selects an entry at `lvl`. */
uint64_t tu_lvl_mask(vmm_gpt_node_level_t lvl);

/* Index of an entry pointer within its (page-aligned) table. */
unsigned tu_ptep_index(const vmm_gpt_entry_t *ptep);

/* The table an entry pointer lies in. */
vmm_gpt_entry_t *tu_table_of(const vmm_gpt_entry_t *ptep);

/*
 * The root (LEVEL4) table of `gpt`, from the physical address that
 * vmm_gpt_get_pmtp() hands to hardware (bits 12..51 in both formats).
 */
vmm_gpt_entry_t *tu_root(vmm_gpt_t *gpt);

/* The table a table-link entry points at, NULL if the entry links nothing. */
vmm_gpt_entry_t *tu_child(const vmm_pte_impl_t *impl, vmm_gpt_entry_t pte);

/*
 * The entry for `gpa` in the table at `lvl`, found by following the hardware
 * entries from the root; NULL when a table on the way is missing.
 */
vmm_gpt_entry_t *tu_hw_entry(const vmm_pte_impl_t *impl, vmm_gpt_t *gpt,
    uint64_t gpa, vmm_gpt_node_level_t lvl);

/*
 * Count the tables reachable from the root, per level (counts[LEVEL4] is 1,
 * the root) and return the total.  Along the way it checks that every
 * non-zero entry of a non-leaf table is exactly impl->vpi_map_table() of a
 * page-aligned table.
 */
uint64_t tu_count_tables(const vmm_pte_impl_t *impl, vmm_gpt_t *gpt,
    uint64_t counts[MAX_GPT_LEVEL]);

/*
 * Check that the tables reachable from the root number exactly l3, l2 and l1
 * at LEVEL3, LEVEL2 and LEVEL1 (plus the root) and that the kernel stand-in
 * holds exactly `base_pages` + that many pages.
 */
#define	TU_CHECK_TABLES(impl, gpt, base_pages, l3, l2, l1) \
	tu_check_tables_at(__FILE__, __LINE__, (impl), (gpt), (base_pages), \
	    (l3), (l2), (l1))
void tu_check_tables_at(const char *file, int line, const vmm_pte_impl_t *impl,
    vmm_gpt_t *gpt, uint64_t base_pages, uint64_t l3, uint64_t l2,
    uint64_t l1);

/* Number of leaf entries in the whole tree that the format parses as mapped. */
uint64_t tu_count_mapped(const vmm_pte_impl_t *impl, vmm_gpt_t *gpt);

/* True if all 512 entries of `table` are zero. */
bool tu_table_is_empty(const vmm_gpt_entry_t *table);

/*
 * Check that every page of [addr, addr + len), in steps of `step`, has a leaf
 * entry, that vmm_gpt_walk(LEVEL1) finds exactly that entry and returns the
 * page address.
 */
#define	TU_CHECK_WALKABLE(impl, gpt, addr, len, step) \
	tu_check_walkable_at(__FILE__, __LINE__, (impl), (gpt), (addr), \
	    (len), (step))
void tu_check_walkable_at(const char *file, int line,
    const vmm_pte_impl_t *impl, vmm_gpt_t *gpt, uint64_t addr, uint64_t len,
    uint64_t step);

/* The leaf entry of `gpa` through vmm_gpt_walk(); fails the test if none. */
vmm_gpt_entry_t *tu_leaf(vmm_gpt_t *gpt, uint64_t gpa);

/* A PFN to map at `gpa` in tests (distinct per page, within 40 bits). */
#define	TU_PFN_FOR(gpa)	((pfn_t)(0x100000ULL + ((gpa) >> 12)) & 0xffffffffffULL)

/* A small per-thread PRNG (xorshift64*), for the threaded tests. */
static inline uint64_t
rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (x * 0x2545f4914f6cdd1dULL);
}

#endif /* TUTIL_H */
