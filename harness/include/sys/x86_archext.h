/*
 * Userland stand-in for the illumos <sys/x86_archext.h>: the memory types
 * (architectural MTRR/PAT encodings).
 */
#ifndef _VMM_HARNESS_SYS_X86_ARCHEXT_H
#define	_VMM_HARNESS_SYS_X86_ARCHEXT_H

#include <sys/types.h>

#define	MTRR_TYPE_UC		0	/* uncacheable */
#define	MTRR_TYPE_WC		1	/* write-combining */
#define	MTRR_TYPE_WT		4	/* write-through */
#define	MTRR_TYPE_WP		5	/* write-protect */
#define	MTRR_TYPE_WB		6	/* write-back */
#define	MTRR_TYPE_UC_		7	/* uncacheable, PAT "UC-" */

#endif /* _VMM_HARNESS_SYS_X86_ARCHEXT_H */
