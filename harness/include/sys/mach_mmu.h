/*
 * Userland stand-in for the illumos x86 <sys/mach_mmu.h>: MMU page size
 * names and the physical-address mask of page-table entries.
 */
#ifndef _VMM_HARNESS_SYS_MACH_MMU_H
#define	_VMM_HARNESS_SYS_MACH_MMU_H

#include <sys/types.h>
#include <sys/machparam.h>

#define	MMU_STD_PAGESIZE	MMU_PAGESIZE
#define	MMU_STD_PAGEMASK	MMU_PAGEMASK

/* Page-table entries hold physical addresses in bits 12..51. */
#define	PTE_PADDR_MASK		0x000ffffffffff000ull

#endif /* _VMM_HARNESS_SYS_MACH_MMU_H */
