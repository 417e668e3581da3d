/*
 * Userland stand-in for the illumos <sys/cmn_err.h>: the kernel log and
 * panic().  kernel.c records cmn_err() messages for the tests (ktest.h);
 * panic() prints "panic: <message>" to stderr and abort()s.
 */
#ifndef _VMM_HARNESS_SYS_CMN_ERR_H
#define	_VMM_HARNESS_SYS_CMN_ERR_H

#include <sys/types.h>

#define	CE_CONT		0	/* continuation */
#define	CE_NOTE		1	/* notice */
#define	CE_WARN		2	/* warning */
#define	CE_PANIC	3	/* panic */
#define	CE_IGNORE	4	/* print nothing */

extern void cmn_err(int, const char *, ...) __KPRINTFLIKE(2);
extern void panic(const char *, ...) __KPRINTFLIKE(1) __NORETURN;

#endif /* _VMM_HARNESS_SYS_CMN_ERR_H */
