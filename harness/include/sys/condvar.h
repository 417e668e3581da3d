/*
 * Userland stand-in for the illumos <sys/condvar.h>: only the type, for the
 * layout of kernel structures that embed one (struct as).  A kcondvar_t is
 * one ushort_t.
 */
#ifndef _VMM_HARNESS_SYS_CONDVAR_H
#define	_VMM_HARNESS_SYS_CONDVAR_H

#include <sys/types.h>

typedef struct _kcondvar {
	ushort_t	_opaque;
} kcondvar_t;

#endif /* _VMM_HARNESS_SYS_CONDVAR_H */
