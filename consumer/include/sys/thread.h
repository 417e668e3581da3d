/*
 * Userland stand-in for the illumos <sys/thread.h> (and what it brings in
 * from <sys/t_lock.h>, <sys/mutex.h>, <sys/condvar.h> and <sys/cpuvar.h>),
 * for compiling vmm_vm.c in the consumer test.  The services are in
 * consumer/c/services.c.
 *
 * The types are the harness's (8-byte kmutex_t, 2-byte kcondvar_t); the
 * services work on zero-filled memory, as the kernel's do: vmspace_alloc()
 * never calls mutex_init() or cv_init().
 *
 * - MUTEX_HELD(m) is true when the calling thread holds `m`.
 * - cv_wait() may return without a signal (spurious wakeups are legal in
 *   illumos too; every cv_wait() of vmm_vm.c is in a loop).
 * - CPU is the calling thread's simulated processor: each thread of the
 *   test sets its cpu_id (consumer_set_cpu_id()), and vmc_table_enter()
 *   records it for poke_cpu().
 */
#ifndef _VMM_CONSUMER_SYS_THREAD_H
#define	_VMM_CONSUMER_SYS_THREAD_H

#include <sys/types.h>
#include <sys/mutex.h>
#include <sys/condvar.h>

typedef enum {
	MUTEX_ADAPTIVE = 0,
	MUTEX_SPIN = 1,
	MUTEX_DRIVER = 4,
	MUTEX_DEFAULT = 6
} kmutex_type_t;

typedef enum {
	CV_DEFAULT,
	CV_DRIVER
} kcv_type_t;

extern void mutex_init(kmutex_t *, char *, kmutex_type_t, void *);
extern void mutex_destroy(kmutex_t *);
extern void mutex_enter(kmutex_t *);
extern void mutex_exit(kmutex_t *);
extern int mutex_owned(const kmutex_t *);
#define	MUTEX_HELD(m)	(mutex_owned(m))

extern void cv_init(kcondvar_t *, char *, kcv_type_t, void *);
extern void cv_destroy(kcondvar_t *);
extern void cv_wait(kcondvar_t *, kmutex_t *);
extern void cv_signal(kcondvar_t *);
extern void cv_broadcast(kcondvar_t *);

typedef int processorid_t;

typedef struct cpu {
	processorid_t	cpu_id;
} cpu_t;

extern cpu_t *consumer_curcpu(void);
#define	CPU	(consumer_curcpu())

#endif /* _VMM_CONSUMER_SYS_THREAD_H */
