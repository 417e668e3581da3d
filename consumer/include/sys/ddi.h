/*
 * Userland stand-in for the illumos <sys/ddi.h>: vmm_vm.c includes it but
 * uses nothing of it that the other stand-ins do not provide.
 */
#ifndef _VMM_CONSUMER_SYS_DDI_H
#define	_VMM_CONSUMER_SYS_DDI_H

#include <sys/types.h>

#endif /* _VMM_CONSUMER_SYS_DDI_H */
