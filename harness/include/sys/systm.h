/*
 * Userland stand-in for the illumos <sys/systm.h>: the kernel text patcher.
 */
#ifndef _VMM_HARNESS_SYS_SYSTM_H
#define	_VMM_HARNESS_SYS_SYSTM_H

#include <sys/types.h>

/* Writes the low `size` (1, 2 or 4) bytes of `value`, little-endian. */
extern void hot_patch_kernel_text(caddr_t, uint32_t, uint_t);

#endif /* _VMM_HARNESS_SYS_SYSTM_H */
