/*
 * Compile-time ABI parity checks of the headers under test
 * (include/sys/vmm_gpt.h, include/sys/vmm_gpt_impl.h) against the facts of
 * docs/abi.md.  Nothing here runs: the file compiles (with
 * -Werror=incompatible-pointer-types) or the build fails.
 *
 * - layouts: _Static_assert on sizeof/offsetof/_Generic types;
 * - functions: each of the 19 is assigned to a pointer whose type spells out
 *   the illumos prototype, so any difference in a parameter or return type
 *   (const-ness included) is an incompatible-pointer-types error;
 * - the vmm_pte_impl fields, through the test formats, likewise;
 * - the kernel services of the stand-in headers, against the ABI's table.
 *
 * The pointers are unused static variables: their initializers are
 * type-checked, and no code or reference is emitted.
 */
#include <stdalign.h>
#include <stddef.h>

#include <sys/types.h>
#include <sys/atomic.h>
#include <sys/cmn_err.h>
#include <sys/kmem.h>
#include <sys/modctl.h>
#include <sys/systm.h>
#include <vm/as.h>
#include <vm/hat.h>

#include <sys/vmm_gpt.h>
#include <sys/vmm_gpt_impl.h>

#include "ktest.h"

#define	SAME_TYPE(expr, type)	_Generic((expr), type: 1, default: 0)
#define	ABI_UNUSED		__attribute__((unused))

/* ---- include guards ---- */
#ifndef _VMM_GPT_H
#error "sys/vmm_gpt.h must use the include guard _VMM_GPT_H"
#endif
#ifndef _VMM_GPT_IMPL_H
#error "sys/vmm_gpt_impl.h must use the include guard _VMM_GPT_IMPL_H"
#endif

/* ---- kernel types the headers use ---- */
_Static_assert(SAME_TYPE((pfn_t)0, unsigned long), "pfn_t is unsigned long");
_Static_assert(SAME_TYPE((uint_t)0, unsigned int), "uint_t is unsigned int");
_Static_assert(sizeof (size_t) == 8, "LP64");

/* ---- vmm_gpt_node_level_t ---- */
_Static_assert(SAME_TYPE((vmm_gpt_node_level_t)0, enum vmm_gpt_node_level),
    "vmm_gpt_node_level_t is enum vmm_gpt_node_level");
_Static_assert(sizeof (vmm_gpt_node_level_t) == 4,
    "vmm_gpt_node_level_t is a 4-byte C enum");
_Static_assert(LEVEL4 == 0 && LEVEL3 == 1 && LEVEL2 == 2 && LEVEL1 == 3 &&
    MAX_GPT_LEVEL == 4, "LEVEL4..MAX_GPT_LEVEL are 0..4");
_Static_assert(SAME_TYPE(LEVEL4, int) && SAME_TYPE(MAX_GPT_LEVEL, int),
    "the levels are enumerators (int constants)");

/* ---- vmm_gpt_t, vmm_gpt_entry_t ---- */
_Static_assert(SAME_TYPE((vmm_gpt_t *)0, struct vmm_gpt *),
    "vmm_gpt_t is struct vmm_gpt");
_Static_assert(SAME_TYPE((vmm_gpt_entry_t)0, uint64_t),
    "vmm_gpt_entry_t is uint64_t");
_Static_assert(sizeof (vmm_gpt_entry_t) == 8, "vmm_gpt_entry_t is 8 bytes");

/* ---- vmm_gpt_iter_t ---- */
_Static_assert(SAME_TYPE((vmm_gpt_iter_t *)0, struct vmm_gpt_iter *),
    "vmm_gpt_iter_t is struct vmm_gpt_iter");
_Static_assert(offsetof(vmm_gpt_iter_t, vgi_gpt) == 0, "vgi_gpt at 0");
_Static_assert(offsetof(vmm_gpt_iter_t, vgi_addr) == 8, "vgi_addr at 8");
_Static_assert(offsetof(vmm_gpt_iter_t, vgi_end) == 16, "vgi_end at 16");
_Static_assert(offsetof(vmm_gpt_iter_t, vgi_current) == 24,
    "vgi_current at 24");
_Static_assert(offsetof(vmm_gpt_iter_t, vgi_entries) == 32,
    "vgi_entries at 32");
_Static_assert(sizeof (vmm_gpt_iter_t) == 64, "vmm_gpt_iter_t is 64 bytes");
_Static_assert(alignof (vmm_gpt_iter_t) == 8, "vmm_gpt_iter_t is 8-aligned");
_Static_assert(SAME_TYPE(((vmm_gpt_iter_t *)0)->vgi_gpt, vmm_gpt_t *),
    "vgi_gpt is vmm_gpt_t *");
_Static_assert(SAME_TYPE(((vmm_gpt_iter_t *)0)->vgi_addr, uint64_t),
    "vgi_addr is uint64_t");
_Static_assert(SAME_TYPE(((vmm_gpt_iter_t *)0)->vgi_end, uint64_t),
    "vgi_end is uint64_t");
_Static_assert(SAME_TYPE(((vmm_gpt_iter_t *)0)->vgi_current, uint64_t),
    "vgi_current is uint64_t");
_Static_assert(SAME_TYPE(&((vmm_gpt_iter_t *)0)->vgi_entries,
    vmm_gpt_entry_t *(*)[MAX_GPT_LEVEL]),
    "vgi_entries is vmm_gpt_entry_t *[MAX_GPT_LEVEL]");

/* ---- vmm_gpt_iter_entry_t ---- */
_Static_assert(SAME_TYPE((vmm_gpt_iter_entry_t *)0,
    struct vmm_gpt_iter_entry *),
    "vmm_gpt_iter_entry_t is struct vmm_gpt_iter_entry");
_Static_assert(offsetof(vmm_gpt_iter_entry_t, vgie_gpa) == 0,
    "vgie_gpa at 0");
_Static_assert(offsetof(vmm_gpt_iter_entry_t, vgie_ptep) == 8,
    "vgie_ptep at 8");
_Static_assert(sizeof (vmm_gpt_iter_entry_t) == 16,
    "vmm_gpt_iter_entry_t is 16 bytes");
_Static_assert(SAME_TYPE(((vmm_gpt_iter_entry_t *)0)->vgie_gpa, uint64_t),
    "vgie_gpa is uint64_t");
_Static_assert(SAME_TYPE(((vmm_gpt_iter_entry_t *)0)->vgie_ptep,
    vmm_gpt_entry_t *), "vgie_ptep is vmm_gpt_entry_t *");

/* ---- struct vmm_pte_impl ---- */
_Static_assert(SAME_TYPE((vmm_pte_impl_t *)0, struct vmm_pte_impl *),
    "vmm_pte_impl_t is struct vmm_pte_impl");
_Static_assert(offsetof(struct vmm_pte_impl, vpi_map_table) == 0,
    "vpi_map_table at 0");
_Static_assert(offsetof(struct vmm_pte_impl, vpi_map_page) == 8,
    "vpi_map_page at 8");
_Static_assert(offsetof(struct vmm_pte_impl, vpi_pte_parse) == 16,
    "vpi_pte_parse at 16");
_Static_assert(offsetof(struct vmm_pte_impl, vpi_bit_accessed) == 24,
    "vpi_bit_accessed at 24");
_Static_assert(offsetof(struct vmm_pte_impl, vpi_bit_dirty) == 32,
    "vpi_bit_dirty at 32");
_Static_assert(offsetof(struct vmm_pte_impl, vpi_get_pmtp) == 40,
    "vpi_get_pmtp at 40");
_Static_assert(offsetof(struct vmm_pte_impl, vpi_hw_ad_supported) == 48,
    "vpi_hw_ad_supported at 48");
_Static_assert(sizeof (struct vmm_pte_impl) == 56,
    "struct vmm_pte_impl is 56 bytes");
_Static_assert(SAME_TYPE(((struct vmm_pte_impl *)0)->vpi_bit_accessed,
    uint64_t), "vpi_bit_accessed is uint64_t");
_Static_assert(SAME_TYPE(((struct vmm_pte_impl *)0)->vpi_bit_dirty,
    uint64_t), "vpi_bit_dirty is uint64_t");

/*
 * The field function-pointer types, spelled as in docs/abi.md, against
 * the test formats' fields (locals: a field read is not a constant
 * initializer).  Never called.
 */
static void ABI_UNUSED
abi_pte_impl_fields(void)
{
	uint64_t (*map_table)(pfn_t) = ept_pte_impl.vpi_map_table;
	uint64_t (*map_page)(pfn_t, uint_t, uint8_t) =
	    ept_pte_impl.vpi_map_page;
	bool (*pte_parse)(uint64_t, pfn_t *, uint_t *) =
	    ept_pte_impl.vpi_pte_parse;
	uint64_t (*get_pmtp)(pfn_t, bool) = ept_pte_impl.vpi_get_pmtp;
	bool (*hw_ad_supported)(void) = ept_pte_impl.vpi_hw_ad_supported;

	(void) map_table;
	(void) map_page;
	(void) pte_parse;
	(void) get_pmtp;
	(void) hw_ad_supported;
}
_Static_assert(SAME_TYPE(((struct vmm_pte_impl *)0)->vpi_map_table,
    uint64_t (*)(pfn_t)), "vpi_map_table type");
_Static_assert(SAME_TYPE(((struct vmm_pte_impl *)0)->vpi_map_page,
    uint64_t (*)(pfn_t, uint_t, uint8_t)), "vpi_map_page type");
_Static_assert(SAME_TYPE(((struct vmm_pte_impl *)0)->vpi_pte_parse,
    bool (*)(uint64_t, pfn_t *, uint_t *)), "vpi_pte_parse type");
_Static_assert(SAME_TYPE(((struct vmm_pte_impl *)0)->vpi_get_pmtp,
    uint64_t (*)(pfn_t, bool)), "vpi_get_pmtp type");
_Static_assert(SAME_TYPE(((struct vmm_pte_impl *)0)->vpi_hw_ad_supported,
    bool (*)(void)), "vpi_hw_ad_supported type");

/* ---- the two data/function symbols besides the 19 functions ---- */
extern void vmm_gpt_impl_panic(void);
extern const struct vmm_pte_impl vmm_pte_uninit_impl;
static void (*const abi_impl_panic)(void) ABI_UNUSED = vmm_gpt_impl_panic;
static const struct vmm_pte_impl *const abi_uninit_impl ABI_UNUSED =
    &vmm_pte_uninit_impl;

/* ---- the 19 functions, in header order ---- */
static bool (*const abi_init)(const struct vmm_pte_impl *) ABI_UNUSED =
    vmm_gpt_init;
static void (*const abi_fini)(void) ABI_UNUSED = vmm_gpt_fini;
static vmm_gpt_t *(*const abi_alloc)(void) ABI_UNUSED = vmm_gpt_alloc;
static void (*const abi_free)(vmm_gpt_t *) ABI_UNUSED = vmm_gpt_free;
static uint64_t (*const abi_walk)(vmm_gpt_t *, uint64_t, vmm_gpt_entry_t **,
    vmm_gpt_node_level_t) ABI_UNUSED = vmm_gpt_walk;
static void (*const abi_iter_init)(vmm_gpt_iter_t *, vmm_gpt_t *, uint64_t,
    uint64_t) ABI_UNUSED = vmm_gpt_iter_init;
static bool (*const abi_iter_next)(vmm_gpt_iter_t *, vmm_gpt_iter_entry_t *)
    ABI_UNUSED = vmm_gpt_iter_next;
static void (*const abi_populate_region)(vmm_gpt_t *, uint64_t, uint64_t)
    ABI_UNUSED = vmm_gpt_populate_region;
static bool (*const abi_map_at)(vmm_gpt_t *, vmm_gpt_entry_t *, pfn_t, uint_t,
    uint8_t) ABI_UNUSED = vmm_gpt_map_at;
static void (*const abi_vacate_region)(vmm_gpt_t *, uint64_t, uint64_t)
    ABI_UNUSED = vmm_gpt_vacate_region;
static bool (*const abi_unmap)(vmm_gpt_t *, uint64_t) ABI_UNUSED =
    vmm_gpt_unmap;
static size_t (*const abi_unmap_region)(vmm_gpt_t *, uint64_t, uint64_t)
    ABI_UNUSED = vmm_gpt_unmap_region;
static uint64_t (*const abi_get_pmtp)(vmm_gpt_t *, bool) ABI_UNUSED =
    vmm_gpt_get_pmtp;
static bool (*const abi_is_mapped)(const vmm_gpt_entry_t *, pfn_t *, uint_t *)
    ABI_UNUSED = vmm_gpte_is_mapped;
static bool (*const abi_reset_accessed)(vmm_gpt_entry_t *, bool) ABI_UNUSED =
    vmm_gpte_reset_accessed;
static bool (*const abi_reset_dirty)(vmm_gpt_entry_t *, bool) ABI_UNUSED =
    vmm_gpte_reset_dirty;
static bool (*const abi_query_accessed)(const vmm_gpt_entry_t *) ABI_UNUSED =
    vmm_gpte_query_accessed;
static bool (*const abi_query_dirty)(const vmm_gpt_entry_t *) ABI_UNUSED =
    vmm_gpte_query_dirty;
static bool (*const abi_can_track_dirty)(vmm_gpt_t *) ABI_UNUSED =
    vmm_gpt_can_track_dirty;

/* ---- the kernel services of the stand-in headers (the ABI's table) ---- */
static void *(*const abi_kmem_zalloc)(size_t, int) ABI_UNUSED = kmem_zalloc;
static void (*const abi_kmem_free)(void *, size_t) ABI_UNUSED = kmem_free;
static pfn_t (*const abi_hat_getpfnum)(struct hat *, caddr_t) ABI_UNUSED =
    hat_getpfnum;
static caddr_t (*const abi_hat_kpm_pfn2va)(pfn_t) ABI_UNUSED = hat_kpm_pfn2va;
static void (*const abi_hot_patch)(caddr_t, uint32_t, uint_t) ABI_UNUSED =
    hot_patch_kernel_text;
static const char *(*const abi_modgetsymname)(uintptr_t, ulong_t *)
    ABI_UNUSED = modgetsymname;
static void (*const abi_cmn_err)(int, const char *, ...) ABI_UNUSED = cmn_err;
static void (*const abi_panic)(const char *, ...) ABI_UNUSED = panic;
static uint64_t (*const abi_atomic_cas_64)(volatile uint64_t *, uint64_t,
    uint64_t) ABI_UNUSED = atomic_cas_64;
static struct hat *const *const abi_kas_hat ABI_UNUSED = &kas.a_hat;
_Static_assert(offsetof(struct as, a_hat) == 16,
    "kas.a_hat is at its illumos (amd64) offset, 16");
_Static_assert(KM_SLEEP == 0 && CE_WARN == 2, "KM_SLEEP, CE_WARN");
_Static_assert(PAGESIZE == 4096 && PAGESHIFT == 12 && PAGEOFFSET == 4095,
    "page size");
_Static_assert((uint64_t)PAGEMASK == 0xfffffffffffff000ull, "PAGEMASK");
_Static_assert(PROT_READ == 1 && PROT_WRITE == 2 && PROT_EXEC == 4,
    "PROT_*");
_Static_assert(MTRR_TYPE_UC == 0 && MTRR_TYPE_WB == 6, "MTRR_TYPE_*");
_Static_assert(KTEST_MTRR_UC == MTRR_TYPE_UC &&
    KTEST_MTRR_WB == MTRR_TYPE_WB, "ktest.h memory types");
