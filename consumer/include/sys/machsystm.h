/*
 * Userland stand-in for the illumos <sys/machsystm.h> and what vmm_vm.c
 * gets through it: poke_cpu(), kpm_vbase and the atomics of <sys/atomic.h>
 * beyond the harness's atomic_cas_64 (consumer/c/services.c).
 *
 * poke_cpu(id) tells the simulated vCPU thread running on processor `id`
 * to leave guest context (it polls for that between guest accesses).
 * kpm_vbase is NULL: the stand-in's kernel physical mapping is the
 * identity (hat_kpm_pfn2va(pfn) is pfn << PAGESHIFT), so vmp_get_writable()
 * returns the page's own address.
 */
#ifndef _VMM_CONSUMER_SYS_MACHSYSTM_H
#define	_VMM_CONSUMER_SYS_MACHSYSTM_H

#include <sys/types.h>
#include <sys/atomic.h>

extern void poke_cpu(int);
extern caddr_t kpm_vbase;

extern uint_t atomic_inc_uint_nv(volatile uint_t *);
extern uint_t atomic_dec_uint_nv(volatile uint_t *);
extern void atomic_or_uint(volatile uint_t *, uint_t);
extern void atomic_and_uint(volatile uint_t *, uint_t);
extern void atomic_and_8(volatile uint8_t *, uint8_t);
extern void atomic_inc_64(volatile uint64_t *);
extern void atomic_add_64(volatile uint64_t *, int64_t);

#endif /* _VMM_CONSUMER_SYS_MACHSYSTM_H */
