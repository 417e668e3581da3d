/*
 * Userland stand-in for the illumos <vm/seg_vn.h>: what vmm_vm.c uses of
 * it and of <vm/faultcode.h>, which it brings in: the fault codes that
 * vmc_fault() and vmc_hold() pass on (illumos values).
 */
#ifndef _VMM_CONSUMER_VM_SEG_VN_H
#define	_VMM_CONSUMER_VM_SEG_VN_H

#include <sys/types.h>

#define	FC_HWERR	0x1	/* misc hardware error */
#define	FC_ALIGN	0x2	/* hardware alignment error */
#define	FC_OBJERR	0x3	/* underlying object returned error */
#define	FC_PROT		0x4	/* access exceeded current protections */
#define	FC_NOMAP	0x5	/* no mapping at the address */
#define	FC_NOSUPPORT	0x6	/* operation not supported by driver */

#endif /* _VMM_CONSUMER_VM_SEG_VN_H */
