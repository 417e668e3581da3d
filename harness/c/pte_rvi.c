/*
 * Test PTE format: AMD nested paging (RVI, long-mode entries), written from
 * docs/pte-formats.md.
 *
 * Every entry has present, user and accessed set; tables are writable;
 * leaves are writable for PROT_WRITE and no-execute without PROT_EXEC;
 * MTRR_TYPE_UC sets cache-disable and write-through, MTRR_TYPE_WB neither,
 * and any other memory type panics.  A present entry always reads back as
 * PROT_READ.  The bit names (PT_*) come from the <vm/hat_pte.h> stand-in.
 *
 * The functions are global (not static) so that modgetsymname()/dladdr()
 * can name them in vmm_gpt_init()'s warnings.
 */
#include <sys/types.h>
#include <sys/cmn_err.h>
#include <sys/vmm_gpt_impl.h>

#include "ktest.h"

uint64_t
ktest_rvi_map_table(pfn_t pfn)
{
	const uint64_t pa = (uint64_t)pfn << 12;

	return (pa | PT_VALID | PT_WRITABLE | PT_USER | PT_REF);
}

uint64_t
ktest_rvi_map_page(pfn_t pfn, uint_t prot, uint8_t attr)
{
	const uint64_t pa = (uint64_t)pfn << 12;
	uint64_t pte = pa | PT_VALID | PT_USER | PT_REF;

	if ((prot & PROT_WRITE) != 0)
		pte |= PT_WRITABLE;
	if ((prot & PROT_EXEC) == 0)
		pte |= PT_NX;

	switch (attr) {
	case MTRR_TYPE_UC:
		pte |= PT_NOCACHE | PT_WRITETHRU;
		break;
	case MTRR_TYPE_WB:
		break;
	default:
		panic("rvi_pte_impl: unexpected memory type %u",
		    (unsigned)attr);
	}
	return (pte);
}

bool
ktest_rvi_pte_parse(uint64_t pte, pfn_t *pfnp, uint_t *protp)
{
	if ((pte & PT_VALID) == 0)
		return (false);
	if (pfnp != NULL)
		*pfnp = (pfn_t)((pte & PT_PADDR) >> 12);
	if (protp != NULL) {
		uint_t prot = PROT_READ;
		if ((pte & PT_WRITABLE) != 0)
			prot |= PROT_WRITE;
		if ((pte & PT_NX) == 0)
			prot |= PROT_EXEC;
		*protp = prot;
	}
	return (true);
}

uint64_t
ktest_rvi_get_pmtp(pfn_t root_pfn, bool track_dirty __attribute__((unused)))
{
	/* nCR3 is the root table's physical address. */
	return ((uint64_t)root_pfn << 12);
}

bool
ktest_rvi_hw_ad_supported(void)
{
	return (ktest_hw_ad_supported());
}

const struct vmm_pte_impl rvi_pte_impl = {
	.vpi_map_table		= ktest_rvi_map_table,
	.vpi_map_page		= ktest_rvi_map_page,
	.vpi_pte_parse		= ktest_rvi_pte_parse,
	.vpi_bit_accessed	= PT_REF,
	.vpi_bit_dirty		= PT_MOD,
	.vpi_get_pmtp		= ktest_rvi_get_pmtp,
	.vpi_hw_ad_supported	= ktest_rvi_hw_ad_supported,
};
