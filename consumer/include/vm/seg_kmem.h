/*
 * Userland stand-in for the illumos <vm/seg_kmem.h>: vmm_vm.c includes it
 * but uses nothing of it.
 */
#ifndef _VMM_CONSUMER_VM_SEG_KMEM_H
#define	_VMM_CONSUMER_VM_SEG_KMEM_H

#include <sys/types.h>

#endif /* _VMM_CONSUMER_VM_SEG_KMEM_H */
