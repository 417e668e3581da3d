/*
 * Userland stand-in for the illumos <sys/debug.h>.
 *
 * As in illumos: VERIFY* are always checked, ASSERT* only when DEBUG is
 * defined (and expand to nothing otherwise).  A failure calls assfail() or
 * assfail3() (kernel.c), which panic with the illumos messages
 *   "assertion failed: <expr>, file: <file>, line: <line>"
 *   "assertion failed: <l> <op> <r> (0x<lv> <op> 0x<rv>), file: ..., line: ..."
 * Unlike the kernel (where a set `aok` makes assfail() return), these never
 * return, so they are declared noreturn.
 */
#ifndef _VMM_HARNESS_SYS_DEBUG_H
#define	_VMM_HARNESS_SYS_DEBUG_H

#include <sys/types.h>

extern int assfail(const char *, const char *, int) __NORETURN;
extern void assfail3(const char *, uintmax_t, const char *, uintmax_t,
    const char *, int) __NORETURN;

#define	VERIFY(EX)	((void)((EX) || assfail(#EX, __FILE__, __LINE__)))

#define	VERIFY3_IMPL(LEFT, OP, RIGHT, TYPE) do {			\
	const TYPE __left = (TYPE)(LEFT);				\
	const TYPE __right = (TYPE)(RIGHT);				\
	if (!(__left OP __right))					\
		assfail3(#LEFT " " #OP " " #RIGHT,			\
		    (uintmax_t)__left, #OP, (uintmax_t)__right,		\
		    __FILE__, __LINE__);				\
} while (0)

#define	VERIFY3S(x, y, z)	VERIFY3_IMPL(x, y, z, int64_t)
#define	VERIFY3U(x, y, z)	VERIFY3_IMPL(x, y, z, uint64_t)
#define	VERIFY3P(x, y, z)	VERIFY3_IMPL(x, y, z, uintptr_t)
#define	VERIFY0(x)		VERIFY3_IMPL(x, ==, 0, uintmax_t)

#ifdef DEBUG
#define	ASSERT(EX)		VERIFY(EX)
#define	ASSERT3S(x, y, z)	VERIFY3S(x, y, z)
#define	ASSERT3U(x, y, z)	VERIFY3U(x, y, z)
#define	ASSERT3P(x, y, z)	VERIFY3P(x, y, z)
#define	ASSERT0(x)		VERIFY0(x)
#define	IMPLY(A, B)		((void)(!(A) || (B) ||			\
	assfail("(" #A ") implies (" #B ")", __FILE__, __LINE__)))
#define	EQUIV(A, B)		((void)(!!(A) == !!(B) ||		\
	assfail("(" #A ") is equivalent to (" #B ")", __FILE__, __LINE__)))
#else
#define	ASSERT(x)		((void)0)
#define	ASSERT3S(x, y, z)	((void)0)
#define	ASSERT3U(x, y, z)	((void)0)
#define	ASSERT3P(x, y, z)	((void)0)
#define	ASSERT0(x)		((void)0)
#define	IMPLY(A, B)		((void)0)
#define	EQUIV(A, B)		((void)0)
#endif

#define	CTASSERT(x)		_Static_assert((x), #x)

#endif /* _VMM_HARNESS_SYS_DEBUG_H */
