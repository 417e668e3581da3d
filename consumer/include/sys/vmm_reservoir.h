/*
 * Userland stand-in for bhyve's <sys/vmm_reservoir.h>: the guest-memory
 * reservoir behind vm_object_mem_allocate() (consumer/c/services.c).  A
 * region is one zeroed, page-aligned allocation from the stand-in's
 * kmem_zalloc() (so it shows in the kmem accounting), its pages
 * host-physically contiguous: vmmr_region_pfn_at() is hat_getpfnum() of
 * the page's address.
 */
#ifndef _VMM_CONSUMER_SYS_VMM_RESERVOIR_H
#define	_VMM_CONSUMER_SYS_VMM_RESERVOIR_H

#include <sys/types.h>

typedef struct vmmr_region vmmr_region_t;

extern int vmmr_alloc(size_t, bool, vmmr_region_t **);
extern pfn_t vmmr_region_pfn_at(vmmr_region_t *, uintptr_t);
extern void vmmr_free(vmmr_region_t *);

#endif /* _VMM_CONSUMER_SYS_VMM_RESERVOIR_H */
