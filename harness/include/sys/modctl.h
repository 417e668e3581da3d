/*
 * Userland stand-in for the illumos <sys/modctl.h>: symbol lookup.
 * The type is the one of docs/abi.md (const char *).
 */
#ifndef _VMM_HARNESS_SYS_MODCTL_H
#define	_VMM_HARNESS_SYS_MODCTL_H

#include <sys/types.h>

/* Name of the symbol enclosing addr (offset into it in *offp), or NULL. */
extern const char *modgetsymname(uintptr_t, ulong_t *);

#endif /* _VMM_HARNESS_SYS_MODCTL_H */
