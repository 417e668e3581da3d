/*
 * Userland stand-in for the illumos <sys/vmsystm.h>, with what vmm_vm.c's
 * seg_vmm functions (vm_segmap_obj(), vm_segmap_space()) take from the
 * address-space layer (<vm/as.h>, <vm/seg.h>: the harness's <vm/as.h> has
 * only the struct) and two types of the vmm headers.  The consumer test
 * does not reach those functions: the services they call panic, naming
 * themselves (consumer/c/services.c).
 */
#ifndef _VMM_CONSUMER_SYS_VMSYSTM_H
#define	_VMM_CONSUMER_SYS_VMSYSTM_H

#include <sys/types.h>
#include <sys/mman.h>
#include <vm/as.h>

/* <sys/mman.h> of illumos: user-accessible mapping (glibc has none). */
#ifndef PROT_USER
#define	PROT_USER	0x8
#endif

/* choose_addr() flags */
#define	ADDR_NOVACALIGN	0
#define	ADDR_VACALIGN	1

typedef long long	offset_t;
/* <sys/vmm.h>: a guest or host physical address. */
typedef uint64_t	vm_paddr_t;

struct seg;
typedef int (*segcreate_func_t)(struct seg **, void *);

extern int choose_addr(struct as *, caddr_t *, size_t, offset_t, int, uint_t);
extern void as_rangelock(struct as *);
extern void as_rangeunlock(struct as *);
extern int as_map(struct as *, caddr_t, size_t, segcreate_func_t, void *);

#endif /* _VMM_CONSUMER_SYS_VMSYSTM_H */
