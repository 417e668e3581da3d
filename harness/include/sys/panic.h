/*
 * Userland stand-in for the illumos <sys/panic.h>.  The kernel's header
 * holds panic-path internals; the only thing kernel code gets from it here
 * is panic() itself (declared in <sys/cmn_err.h>, as in illumos).
 */
#ifndef _VMM_HARNESS_SYS_PANIC_H
#define	_VMM_HARNESS_SYS_PANIC_H

#include <sys/types.h>
#include <sys/cmn_err.h>

#endif /* _VMM_HARNESS_SYS_PANIC_H */
