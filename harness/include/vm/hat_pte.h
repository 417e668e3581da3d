/*
 * Userland stand-in for the illumos x86 <vm/hat_pte.h>: the bits of an x86
 * long-mode page-table entry (AMD APM vol. 2; also the nested-paging format,
 * see docs/pte-formats.md).
 */
#ifndef _VMM_HARNESS_VM_HAT_PTE_H
#define	_VMM_HARNESS_VM_HAT_PTE_H

#include <sys/types.h>
#include <sys/mach_mmu.h>

#define	PT_VALID	(0x001)		/* present */
#define	PT_WRITABLE	(0x002)		/* writable */
#define	PT_USER		(0x004)		/* user accessible */
#define	PT_WRITETHRU	(0x008)		/* write-through */
#define	PT_NOCACHE	(0x010)		/* cache disable */
#define	PT_REF		(0x020)		/* accessed */
#define	PT_MOD		(0x040)		/* dirty */
#define	PT_PAGESIZE	(0x080)		/* large page (not used here) */
#define	PT_GLOBAL	(0x100)		/* global */
#define	PT_NX		(0x8000000000000000ull)	/* no execute */
#define	PT_PADDR	PTE_PADDR_MASK	/* physical address, bits 12..51 */

#endif /* _VMM_HARNESS_VM_HAT_PTE_H */
