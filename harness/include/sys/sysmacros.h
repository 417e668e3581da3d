/*
 * Userland stand-in for the illumos <sys/sysmacros.h>.
 *
 * glibc has a <sys/sysmacros.h> too (major/minor/makedev); it is included
 * first so that libc code including it keeps working.  MIN and MAX are
 * spelled token for token as in glibc's <sys/param.h>, so including both
 * headers in either order is not a redefinition.
 */
#ifndef _VMM_HARNESS_SYS_SYSMACROS_H
#define	_VMM_HARNESS_SYS_SYSMACROS_H

#include_next <sys/sysmacros.h>

#include <sys/types.h>
#include <sys/machparam.h>
#include <sys/debug.h>

#ifndef MIN
#define	MIN(a,b) (((a)<(b))?(a):(b))
#endif
#ifndef MAX
#define	MAX(a,b) (((a)>(b))?(a):(b))
#endif
#ifndef ARRAY_SIZE
#define	ARRAY_SIZE(x)	(sizeof (x) / sizeof (x[0]))
#endif

#ifndef P2ALIGN
#define	P2ALIGN(x, align)	((x) & -(align))
#endif
#ifndef P2ROUNDUP
#define	P2ROUNDUP(x, align)	(-(-(x) & -(align)))
#endif
#ifndef IS_P2ALIGNED
#define	IS_P2ALIGNED(v, a)	((((uintptr_t)(v)) & ((uintptr_t)(a) - 1)) == 0)
#endif

#endif /* _VMM_HARNESS_SYS_SYSMACROS_H */
