/*
 * Userland stand-in for the illumos <sys/mman.h>.  glibc's header is used
 * as is: PROT_READ, PROT_WRITE and PROT_EXEC are 1, 2 and 4 on Linux as on
 * illumos (checked below).
 */
#ifndef _VMM_HARNESS_SYS_MMAN_H
#define	_VMM_HARNESS_SYS_MMAN_H

#include <sys/types.h>
#include_next <sys/mman.h>

_Static_assert(PROT_READ == 1 && PROT_WRITE == 2 && PROT_EXEC == 4,
    "PROT_* values differ from illumos");

#ifndef PROT_ALL
#define	PROT_ALL	(PROT_READ | PROT_WRITE | PROT_EXEC)
#endif

#endif /* _VMM_HARNESS_SYS_MMAN_H */
