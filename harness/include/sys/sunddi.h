/*
 * Userland stand-in for the illumos <sys/sunddi.h>.  Of the DDI, kernel code
 * here needs what the real header drags in: cmn_err(), the text patcher and
 * the module symbol lookup.
 */
#ifndef _VMM_HARNESS_SYS_SUNDDI_H
#define	_VMM_HARNESS_SYS_SUNDDI_H

#include <sys/types.h>
#include <sys/cmn_err.h>
#include <sys/debug.h>
#include <sys/modctl.h>
#include <sys/systm.h>

#endif /* _VMM_HARNESS_SYS_SUNDDI_H */
