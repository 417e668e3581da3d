/*
 * Userland stand-in for the illumos <vm/hat.h>: the address translation
 * services the kernel code imports.  kernel.c implements an identity view:
 * hat_getpfnum(kas.a_hat, va) == va >> 12 and hat_kpm_pfn2va(pfn) ==
 * pfn << 12, so the "host physical" address of a table is its user address.
 */
#ifndef _VMM_HARNESS_VM_HAT_H
#define	_VMM_HARNESS_VM_HAT_H

#include <sys/types.h>
#include <sys/machparam.h>

struct hat;

extern pfn_t hat_getpfnum(struct hat *, caddr_t);
extern caddr_t hat_kpm_pfn2va(pfn_t);

#endif /* _VMM_HARNESS_VM_HAT_H */
