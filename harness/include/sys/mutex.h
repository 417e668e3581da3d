/*
 * Userland stand-in for the illumos <sys/mutex.h>: only the type, for the
 * layout of kernel structures that embed one (struct as).  On amd64 a
 * kmutex_t is one pointer.
 */
#ifndef _VMM_HARNESS_SYS_MUTEX_H
#define	_VMM_HARNESS_SYS_MUTEX_H

#include <sys/types.h>

typedef struct mutex {
	void	*_opaque[1];
} kmutex_t;

#endif /* _VMM_HARNESS_SYS_MUTEX_H */
