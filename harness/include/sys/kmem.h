/*
 * Userland stand-in for the illumos <sys/kmem.h>.  kernel.c implements the
 * allocator with accounting (see ktest.h).
 */
#ifndef _VMM_HARNESS_SYS_KMEM_H
#define	_VMM_HARNESS_SYS_KMEM_H

#include <sys/types.h>

#define	KM_SLEEP	0x0000	/* can block for memory; never fails */
#define	KM_NOSLEEP	0x0001	/* cannot block for memory; may fail */
#define	KM_PANIC	0x0002	/* if memory cannot be allocated, panic */
#define	KM_PUSHPAGE	0x0004	/* can block for memory; may use reserve */
#define	KM_NORMALPRI	0x0008
#define	KM_NOSLEEP_LAZY	(KM_NOSLEEP | KM_NORMALPRI)

extern void *kmem_alloc(size_t, int);
extern void *kmem_zalloc(size_t, int);
extern void kmem_free(void *, size_t);

#endif /* _VMM_HARNESS_SYS_KMEM_H */
