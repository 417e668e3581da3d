/*
 * Userland stand-in for the illumos kernel's <sys/types.h>.
 *
 * It is found before glibc's header (-I harness/include), so it pulls glibc's
 * in with #include_next (libc headers that include <sys/types.h> keep
 * working) and then adds the illumos names that the kernel code uses:
 * pfn_t, uint_t, ulong_t, caddr_t, boolean_t, ...  The guard must differ
 * from glibc's (_SYS_TYPES_H).
 */
#ifndef _VMM_HARNESS_SYS_TYPES_H
#define	_VMM_HARNESS_SYS_TYPES_H

#include_next <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/ccompile.h>

typedef unsigned char		uchar_t;
typedef unsigned short		ushort_t;
typedef unsigned int		uint_t;
typedef unsigned long		ulong_t;
typedef long long		longlong_t;
typedef unsigned long long	u_longlong_t;

/*
 * glibc also defines caddr_t (as char *) under _DEFAULT_SOURCE; C11 allows
 * repeating a typedef of the same type, so this works in both cases.
 */
typedef char			*caddr_t;

/* Page frame number: unsigned long, as in the illumos kernel. */
typedef unsigned long		pfn_t;
#define	PFN_INVALID		((pfn_t)-1)

typedef enum { B_FALSE = 0, B_TRUE = 1 } boolean_t;

#endif /* _VMM_HARNESS_SYS_TYPES_H */
