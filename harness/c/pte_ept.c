/*
 * Test PTE format: Intel EPT, written from docs/pte-formats.md.
 *
 * Entry bits 0..2 are read/write/execute, which are exactly PROT_READ (1),
 * PROT_WRITE (2) and PROT_EXEC (4); bits 3..5 the memory type; 8 accessed;
 * 9 dirty; 12..51 the physical address.  An entry with bits 0..2 clear is
 * not present.
 *
 * The functions are global (not static) so that modgetsymname()/dladdr()
 * can name them in vmm_gpt_init()'s warnings.
 */
#include <sys/types.h>
#include <sys/vmm_gpt_impl.h>

#include "ktest.h"

#define	EPT_R		0x1ull
#define	EPT_W		0x2ull
#define	EPT_X		0x4ull
#define	EPT_RWX		(EPT_R | EPT_W | EPT_X)
#define	EPT_MT_SHIFT	3
#define	EPT_ACCESSED	(1ull << 8)
#define	EPT_DIRTY	(1ull << 9)
#define	EPT_PA_MASK	0x000ffffffffff000ull

/* EPTP fields */
#define	EPTP_MT_WB	6ull		/* memory type of the tables */
#define	EPTP_PWL_4	(3ull << 3)	/* page-walk length - 1 */
#define	EPTP_AD_ENABLE	(1ull << 6)

uint64_t
ktest_ept_map_table(pfn_t pfn)
{
	return (((uint64_t)pfn << 12) | EPT_RWX);
}

uint64_t
ktest_ept_map_page(pfn_t pfn, uint_t prot, uint8_t attr)
{
	return (((uint64_t)pfn << 12) | (prot & EPT_RWX) |
	    ((uint64_t)(attr & 0x7) << EPT_MT_SHIFT));
}

bool
ktest_ept_pte_parse(uint64_t pte, pfn_t *pfnp, uint_t *protp)
{
	if ((pte & EPT_RWX) == 0)
		return (false);
	if (pfnp != NULL)
		*pfnp = (pfn_t)((pte & EPT_PA_MASK) >> 12);
	if (protp != NULL)
		*protp = (uint_t)(pte & EPT_RWX);
	return (true);
}

uint64_t
ktest_ept_get_pmtp(pfn_t root_pfn, bool track_dirty)
{
	return (((uint64_t)root_pfn << 12) | EPTP_PWL_4 | EPTP_MT_WB |
	    (track_dirty ? EPTP_AD_ENABLE : 0));
}

bool
ktest_ept_hw_ad_supported(void)
{
	return (ktest_hw_ad_supported());
}

const struct vmm_pte_impl ept_pte_impl = {
	.vpi_map_table		= ktest_ept_map_table,
	.vpi_map_page		= ktest_ept_map_page,
	.vpi_pte_parse		= ktest_ept_pte_parse,
	.vpi_bit_accessed	= EPT_ACCESSED,
	.vpi_bit_dirty		= EPT_DIRTY,
	.vpi_get_pmtp		= ktest_ept_get_pmtp,
	.vpi_hw_ad_supported	= ktest_ept_hw_ad_supported,
};
