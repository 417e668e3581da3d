/*
 * Userland stand-in for bhyve's <sys/vmm_kernel.h>: the two functions of
 * the VM (vmm.c) that vmm_vm.c's seg_vmm functions call.  Not reached by
 * the consumer test: both panic, naming themselves
 * (consumer/c/services.c).
 */
#ifndef _VMM_CONSUMER_SYS_VMM_KERNEL_H
#define	_VMM_CONSUMER_SYS_VMM_KERNEL_H

#include <sys/types.h>
#include <sys/vmm_vm.h>

struct vm;
extern int vm_get_memseg(struct vm *, int, size_t *, bool *, vm_object_t **);
extern struct vmspace *vm_get_vmspace(struct vm *);

#endif /* _VMM_CONSUMER_SYS_VMM_KERNEL_H */
