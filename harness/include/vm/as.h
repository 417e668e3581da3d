/*
 * Userland stand-in for the illumos <vm/as.h>: the kernel address space.
 *
 * struct as keeps the head of the illumos layout, up to a_hat, the only
 * field kernel code here uses: on amd64 a_hat is at offset 16, after the
 * kmutex_t, two flag bytes and the kcondvar_t.  A compiled consumer (the
 * Rust library) reads kas.a_hat at that offset, so a stand-in with a_hat at
 * offset 0 would feed it the mutex; hat_getpfnum() in kernel.c panics when
 * handed anything but kas.a_hat.
 */
#ifndef _VMM_HARNESS_VM_AS_H
#define	_VMM_HARNESS_VM_AS_H

#include <sys/types.h>
#include <sys/condvar.h>
#include <sys/mutex.h>
#include <vm/hat.h>

struct as {
	kmutex_t	a_contents;	/* protects the fields below */
	uchar_t		a_flags;	/* as attributes */
	uchar_t		a_vbits;	/* used for collecting statistics */
	kcondvar_t	a_cv;		/* used by as_rangelock */
	struct hat	*a_hat;		/* the hat of this address space */
	/* (the rest of the illumos struct as is not needed here) */
};

extern struct as kas;			/* the kernel's address space */

#endif /* _VMM_HARNESS_VM_AS_H */
