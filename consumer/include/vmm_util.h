/*
 * Userland stand-in for bhyve's "vmm_util.h": which vendor's hardware
 * virtualization the host has.  vmm_vm_init() picks the PTE format with
 * them: the consumer test selects one per run (consumer_set_vendor(),
 * consumer/c/services.c).
 */
#ifndef _VMM_CONSUMER_VMM_UTIL_H
#define	_VMM_CONSUMER_VMM_UTIL_H

#include <sys/types.h>

extern bool vmm_is_intel(void);
extern bool vmm_is_svm(void);

#endif /* _VMM_CONSUMER_VMM_UTIL_H */
