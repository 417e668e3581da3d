/*
 * This file and its contents are supplied under the terms of the
 * Mozilla Public License, version 2.0.
 */

/*
 * Declarations of the two global symbols of vmm_gpt.o that no illumos header
 * declares: vmm_gpt.c defines them, and only vmm_gpt_indirect.S (the stubs'
 * initial jump target) and vmm_gpt.c itself use them.  These are the
 * definitions of vmm_gpt.c, as declarations, for the ctest address checks.
 */
#ifndef _VMM_GPT_ABI_EXTRA_H
#define	_VMM_GPT_ABI_EXTRA_H

#include <sys/vmm_gpt_impl.h>

extern void vmm_gpt_impl_panic(void);
extern const struct vmm_pte_impl vmm_pte_uninit_impl;

#endif /* _VMM_GPT_ABI_EXTRA_H */
