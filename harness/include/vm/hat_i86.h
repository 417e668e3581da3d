/*
 * Userland stand-in for the illumos <vm/hat_i86.h>: x86 hat internals.
 * Kernel code here needs only what it includes.
 */
#ifndef _VMM_HARNESS_VM_HAT_I86_H
#define	_VMM_HARNESS_VM_HAT_I86_H

#include <sys/types.h>
#include <sys/mach_mmu.h>
#include <vm/hat.h>
#include <vm/hat_pte.h>

#endif /* _VMM_HARNESS_VM_HAT_I86_H */
