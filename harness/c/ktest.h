/*
 * The test-side view of the userland kernel stand-in (kernel.c): what tests
 * can observe and control about the "kernel" services the library imports.
 */
#ifndef KTEST_H
#define KTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/vmm_gpt.h>
#include <sys/vmm_gpt_impl.h>

/*
 * Addition: the kernel services themselves (kmem_zalloc, cmn_err, panic,
 * atomic_cas_64, hot_patch_kernel_text, modgetsymname, hat_*, kas), from the
 * stand-in headers in harness/include.
 */
#include <sys/atomic.h>
#include <sys/cmn_err.h>
#include <sys/kmem.h>
#include <sys/modctl.h>
#include <sys/systm.h>
#include <vm/as.h>
#include <vm/hat.h>

/* Allocation accounting of kmem_zalloc/kmem_free (live = not yet freed). */
typedef struct kmem_stats {
	uint64_t	ks_live_allocs;		/* live allocations */
	uint64_t	ks_live_bytes;		/* bytes in live allocations */
	uint64_t	ks_live_pages;		/* live allocations of PAGESIZE */
	uint64_t	ks_total_allocs;	/* allocations ever made */
	uint64_t	ks_total_frees;		/* frees ever made */
} kmem_stats_t;
void ktest_kmem_stats(kmem_stats_t *);

/*
 * Addition: allocation domains, for running two implementations in one
 * process (difftest/).  Each thread charges its kmem_zalloc()s to its
 * current domain (0 until it sets one); every allocation remembers its
 * domain, so kmem_free() charges it back there, whichever thread frees it.
 * ktest_kmem_stats() still counts every domain.
 */
#define	KTEST_KMEM_DOMAINS	4
void ktest_kmem_set_domain(unsigned);		/* panics if >= KTEST_KMEM_DOMAINS */
unsigned ktest_kmem_domain(void);		/* the calling thread's domain */
void ktest_kmem_domain_stats(unsigned, kmem_stats_t *);
/*
 * Frees every live allocation of a domain, as kmem_free() would (poisoned,
 * counted as frees), for abandoning state that cannot be torn down through
 * its API (a diverged implementation).  Returns how many it freed.
 */
uint64_t ktest_kmem_domain_reclaim(unsigned);

/*
 * Addition: a function that panic() calls once, after writing its message
 * and before abort()ing, e.g. to say what was running (NULL: none).
 * panic() still aborts when it returns.  Returns the previous hook.
 */
typedef void (*ktest_panic_hook_t)(void);
ktest_panic_hook_t ktest_set_panic_hook(ktest_panic_hook_t);

/* Messages recorded by cmn_err(), oldest first. */
size_t ktest_cmn_err_count(void);
int ktest_cmn_err_level(size_t i);
const char *ktest_cmn_err_message(size_t i);	/* formatted text */
void ktest_cmn_err_clear(void);

/* Number of hot_patch_kernel_text() calls so far. */
uint64_t ktest_hot_patch_count(void);

/* The three indirection stubs (assembly, stubs.S), as byte addresses. */
extern void vmm_gpti_map_table(void);
extern void vmm_gpti_map_page(void);
extern void vmm_gpti_parse(void);
#define	KTEST_STUB_LEN	5

/* Defined by the library (or the original): panics when called. */
extern void vmm_gpt_impl_panic(void);
extern const struct vmm_pte_impl vmm_pte_uninit_impl;

/* Test PTE formats, written from docs/pte-formats.md (pte_ept.c, pte_rvi.c). */
extern const struct vmm_pte_impl ept_pte_impl;
extern const struct vmm_pte_impl rvi_pte_impl;

/* Whether the formats' vpi_hw_ad_supported() returns true (default true). */
void ktest_set_hw_ad_supported(bool);
/* Addition: the current setting (what the formats' vpi_hw_ad_supported use). */
bool ktest_hw_ad_supported(void);

/* Memory types and protections the formats accept. */
#define	KTEST_MTRR_UC	0
#define	KTEST_MTRR_WB	6

/* Address <-> PFN identity of the stand-in hat_getpfnum()/hat_kpm_pfn2va(). */
#define	KTEST_PFN_TO_VA(pfn)	((void *)((uintptr_t)(pfn) << 12))
#define	KTEST_VA_TO_PFN(va)	((uint64_t)(uintptr_t)(va) >> 12)

#endif /* KTEST_H */
