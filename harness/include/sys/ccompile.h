/*
 * Userland stand-in for the illumos <sys/ccompile.h>: compiler attribute
 * shorthands.  (glibc has no such header and defines none of these.)
 */
#ifndef _VMM_HARNESS_SYS_CCOMPILE_H
#define	_VMM_HARNESS_SYS_CCOMPILE_H

#ifndef __packed
#define	__packed		__attribute__((__packed__))
#endif
#ifndef __NORETURN
#define	__NORETURN		__attribute__((__noreturn__))
#endif
#ifndef __KPRINTFLIKE
#define	__KPRINTFLIKE(n)	__attribute__((__format__(__printf__, n, (n) + 1)))
#endif
#ifndef __PRINTFLIKE
#define	__PRINTFLIKE(n)		__KPRINTFLIKE(n)
#endif

#endif /* _VMM_HARNESS_SYS_CCOMPILE_H */
