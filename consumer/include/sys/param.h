/*
 * Userland stand-in for the illumos <sys/param.h>, for compiling vmm_vm.c
 * (the consumer test, consumer/).  It shadows glibc's <sys/param.h>, which
 * nothing compiled against consumer/include needs.
 *
 * vmm_vm.c takes from it the page size macros (<sys/machparam.h> of the
 * harness), USERLIMIT (the top of a user address space: vmspace_alloc()
 * VERIFYs that a vmspace fits below it), errno values and UINT_MAX, and
 * panic() (<sys/cmn_err.h>; illumos declares it in <sys/systm.h>, which
 * every kernel file gets through one header or another).  The
 * errno values are Linux's, not illumos's: the test compares transcripts of
 * copies of vmm_vm.c built alike, never a value against illumos.
 */
#ifndef _VMM_CONSUMER_SYS_PARAM_H
#define	_VMM_CONSUMER_SYS_PARAM_H

#include <sys/types.h>
#include <sys/machparam.h>
#include <sys/cmn_err.h>

#include <errno.h>
#include <limits.h>

/* amd64 illumos: the top of the user address space. */
#define	USERLIMIT	0xfffffd7fffe00000ULL

#endif /* _VMM_CONSUMER_SYS_PARAM_H */
