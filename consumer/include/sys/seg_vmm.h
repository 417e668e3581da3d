/*
 * Userland stand-in for bhyve's <sys/seg_vmm.h>: the creation arguments of
 * a seg_vmm segment and its create function, which vmm_vm.c's
 * vm_segmap_obj() and vm_segmap_space() hand to as_map().  Not reached by
 * the consumer test (segvmm_create() panics, naming itself).
 */
#ifndef _VMM_CONSUMER_SYS_SEG_VMM_H
#define	_VMM_CONSUMER_SYS_SEG_VMM_H

#include <sys/types.h>
#include <sys/vmm_vm.h>

typedef struct segvmm_crargs {
	uchar_t		prot;		/* protection */
	uintptr_t	offset;
	vm_object_t	*vmo;
	vm_client_t	*vmc;
} segvmm_crargs_t;

struct seg;
extern int segvmm_create(struct seg **, void *);

#endif /* _VMM_CONSUMER_SYS_SEG_VMM_H */
