/*
 * Userland stand-in for the illumos <sys/atomic.h>.  atomic_cas_64 is a real
 * (out-of-line) function in kernel.c, as it is in the illumos kernel, so
 * that both the original and the library import it.
 */
#ifndef _VMM_HARNESS_SYS_ATOMIC_H
#define	_VMM_HARNESS_SYS_ATOMIC_H

#include <sys/types.h>

/* Returns the old value of *target; stores newval only if it was cmp. */
extern uint64_t atomic_cas_64(volatile uint64_t *, uint64_t, uint64_t);

#endif /* _VMM_HARNESS_SYS_ATOMIC_H */
