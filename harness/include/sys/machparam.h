/*
 * Userland stand-in for the illumos x86 <sys/machparam.h>: the base page
 * size.  Spelled as illumos does (int-typed PAGESIZE, PAGEMASK = ~PAGEOFFSET,
 * which sign-extends to 0xfffffffffffff000 when widened to 64 bits).
 */
#ifndef _VMM_HARNESS_SYS_MACHPARAM_H
#define	_VMM_HARNESS_SYS_MACHPARAM_H

#define	PAGESHIFT	12
#define	PAGESIZE	(1 << PAGESHIFT)
#define	PAGEOFFSET	(PAGESIZE - 1)
#define	PAGEMASK	(~PAGEOFFSET)

#define	MMU_PAGESHIFT	PAGESHIFT
#define	MMU_PAGESIZE	PAGESIZE
#define	MMU_PAGEOFFSET	PAGEOFFSET
#define	MMU_PAGEMASK	PAGEMASK

#endif /* _VMM_HARNESS_SYS_MACHPARAM_H */
