/*
 * The kernel services vmm_vm.c needs beyond those of the harness's
 * stand-in (harness/c/kernel.c: kmem, panic, assfail, hat_*, atomic_cas_64,
 * ...), for running it in a test process: mutexes, condition variables,
 * lists, atomics, the current CPU and poke_cpu(), the vendor test, the
 * guest-memory reservoir, and the address-space services of the seg_vmm
 * functions, which the test does not reach and which panic, naming
 * themselves.
 *
 * Compiled once and shared by every copy of vmm_vm.c in the process (the
 * copies are renamed, these are not): only one copy runs at a time.
 *
 * Mutexes and condition variables live in the harness's types (an 8-byte
 * kmutex_t, a 2-byte kcondvar_t) and work on zero-filled memory, as the
 * kernel's do: vmspace_alloc() never initializes its vms_lock or vms_cv.
 *
 * A mutex is a futex word (0 free, 1 held, 2 held with waiters: the
 * classic three-state lock) and the holder's thread id beside it, so that
 * MUTEX_HELD() means "held by the calling thread", as in illumos, and a
 * recursive enter or an exit by another thread panics.
 *
 * A condition variable has no state of its own: waiters sleep on one of a
 * few sequence counters chosen by the variable's address, which signal and
 * broadcast advance.  vmm_vm.c signals with the mutex held, and a waiter
 * reads the counter before it drops the mutex, so no wakeup is lost; others
 * sharing the counter wake spuriously, which illumos allows (every cv_wait
 * of vmm_vm.c is in a loop).  A wait also ends after a while without a
 * signal: harmless for the same reason.
 */
#define	_GNU_SOURCE

#include <sys/types.h>
#include <sys/debug.h>
#include <sys/kmem.h>
#include <sys/list.h>
#include <sys/machparam.h>
#include <sys/machsystm.h>
#include <sys/thread.h>
#include <sys/vmsystm.h>
#include <sys/vmm_reservoir.h>
#include <sys/seg_vmm.h>
#include <sys/vmm_kernel.h>
#include <vm/as.h>
#include <vm/hat.h>

#include <linux/futex.h>
#include <limits.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ktest.h"
#include "consumer.h"

/* ------------------------------------------------------------------ */
/* threads and processors                                              */
/* ------------------------------------------------------------------ */

/* The calling thread's id (gettid(2)), never 0. */
static uint32_t
self_tid(void)
{
	static __thread uint32_t tid;

	if (tid == 0)
		tid = (uint32_t)syscall(SYS_gettid);
	return (tid);
}

static __thread cpu_t consumer_cpu;

cpu_t *
consumer_curcpu(void)
{
	return (&consumer_cpu);
}

void
consumer_set_cpu_id(int id)
{
	VERIFY3S(id, >=, 0);
	VERIFY3S(id, <, CONSUMER_MAX_CPUS);
	consumer_cpu.cpu_id = id;
}

/* Set by poke_cpu(), taken by the vCPU running there. */
static uint32_t consumer_pokes[CONSUMER_MAX_CPUS];
static uint64_t consumer_poke_count;

void
poke_cpu(int id)
{
	VERIFY3S(id, >=, 0);
	VERIFY3S(id, <, CONSUMER_MAX_CPUS);
	__atomic_store_n(&consumer_pokes[id], 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&consumer_poke_count, 1, __ATOMIC_RELAXED);
}

bool
consumer_take_poke(void)
{
	uint32_t *p = &consumer_pokes[consumer_cpu.cpu_id];

	if (__atomic_load_n(p, __ATOMIC_SEQ_CST) == 0)
		return (false);
	return (__atomic_exchange_n(p, 0, __ATOMIC_SEQ_CST) != 0);
}

uint64_t
consumer_pokes_sent(void)
{
	return (__atomic_load_n(&consumer_poke_count, __ATOMIC_RELAXED));
}

static int consumer_vendor;

void
consumer_set_vendor(int vendor)
{
	consumer_vendor = vendor;
}

bool
vmm_is_intel(void)
{
	return (consumer_vendor == CONSUMER_EPT);
}

bool
vmm_is_svm(void)
{
	return (consumer_vendor == CONSUMER_RVI);
}

/* ------------------------------------------------------------------ */
/* futexes                                                             */
/* ------------------------------------------------------------------ */

/* Sleeps while *word is `val`, at most `ms` milliseconds (0: no limit). */
static void
futex_wait(uint32_t *word, uint32_t val, long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
	    .tv_nsec = (ms % 1000) * 1000000L };

	(void) syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val,
	    ms == 0 ? NULL : &ts, NULL, 0);
}

static void
futex_wake(uint32_t *word, int n)
{
	(void) syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* mutexes                                                             */
/* ------------------------------------------------------------------ */

typedef struct cmutex {
	uint32_t	cm_state;	/* 0 free, 1 held, 2 held + waiters */
	uint32_t	cm_owner;	/* the holder's thread id, 0 if none */
} cmutex_t;

_Static_assert(sizeof (cmutex_t) == sizeof (kmutex_t),
    "a mutex must fit the harness's kmutex_t");

static cmutex_t *
cmutex(const kmutex_t *m)
{
	VERIFY(((uintptr_t)m & 7) == 0);
	return ((cmutex_t *)(uintptr_t)m);
}

void
mutex_init(kmutex_t *m, char *name, kmutex_type_t type, void *arg)
{
	(void) name;
	(void) type;
	(void) arg;
	cmutex_t *cm = cmutex(m);
	__atomic_store_n(&cm->cm_state, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cm->cm_owner, 0, __ATOMIC_RELAXED);
}

void
mutex_destroy(kmutex_t *m)
{
	cmutex_t *cm = cmutex(m);

	if (__atomic_load_n(&cm->cm_state, __ATOMIC_SEQ_CST) != 0)
		panic("mutex_destroy(%p): the mutex is held", (void *)m);
}

void
mutex_enter(kmutex_t *m)
{
	cmutex_t *cm = cmutex(m);
	const uint32_t me = self_tid();
	uint32_t c = 0;

	if (__atomic_load_n(&cm->cm_owner, __ATOMIC_RELAXED) == me)
		panic("mutex_enter(%p): recursive enter", (void *)m);
	if (!__atomic_compare_exchange_n(&cm->cm_state, &c, 1, false,
	    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
		if (c != 2)
			c = __atomic_exchange_n(&cm->cm_state, 2,
			    __ATOMIC_ACQUIRE);
		while (c != 0) {
			futex_wait(&cm->cm_state, 2, 0);
			c = __atomic_exchange_n(&cm->cm_state, 2,
			    __ATOMIC_ACQUIRE);
		}
	}
	__atomic_store_n(&cm->cm_owner, me, __ATOMIC_RELAXED);
}

void
mutex_exit(kmutex_t *m)
{
	cmutex_t *cm = cmutex(m);

	if (__atomic_load_n(&cm->cm_state, __ATOMIC_RELAXED) == 0 ||
	    __atomic_load_n(&cm->cm_owner, __ATOMIC_RELAXED) != self_tid())
		panic("mutex_exit(%p): not held by this thread", (void *)m);
	__atomic_store_n(&cm->cm_owner, 0, __ATOMIC_RELAXED);
	if (__atomic_exchange_n(&cm->cm_state, 0, __ATOMIC_RELEASE) == 2)
		futex_wake(&cm->cm_state, 1);
}

int
mutex_owned(const kmutex_t *m)
{
	cmutex_t *cm = cmutex(m);

	return (__atomic_load_n(&cm->cm_state, __ATOMIC_RELAXED) != 0 &&
	    __atomic_load_n(&cm->cm_owner, __ATOMIC_RELAXED) == self_tid());
}

/* ------------------------------------------------------------------ */
/* condition variables                                                 */
/* ------------------------------------------------------------------ */

#define	CV_BUCKETS	64
/* A wait ends after this long without a signal (a spurious wakeup). */
#define	CV_WAIT_MS	50

static struct cv_bucket {
	uint32_t	cb_seq;
	uint32_t	cb_waiters;
} __attribute__((aligned(64))) cv_buckets[CV_BUCKETS];

static struct cv_bucket *
cv_bucket(const kcondvar_t *cv)
{
	return (&cv_buckets[((uintptr_t)cv >> 3) % CV_BUCKETS]);
}

void
cv_init(kcondvar_t *cv, char *name, kcv_type_t type, void *arg)
{
	(void) name;
	(void) type;
	(void) arg;
	cv->_opaque = 0;
}

void
cv_destroy(kcondvar_t *cv)
{
	(void) cv;
}

void
cv_wait(kcondvar_t *cv, kmutex_t *m)
{
	struct cv_bucket *b = cv_bucket(cv);

	if (!mutex_owned(m))
		panic("cv_wait(%p, %p): mutex not held", (void *)cv, (void *)m);
	__atomic_add_fetch(&b->cb_waiters, 1, __ATOMIC_SEQ_CST);
	const uint32_t seq = __atomic_load_n(&b->cb_seq, __ATOMIC_SEQ_CST);
	mutex_exit(m);
	futex_wait(&b->cb_seq, seq, CV_WAIT_MS);
	__atomic_sub_fetch(&b->cb_waiters, 1, __ATOMIC_SEQ_CST);
	mutex_enter(m);
}

void
cv_broadcast(kcondvar_t *cv)
{
	struct cv_bucket *b = cv_bucket(cv);

	__atomic_add_fetch(&b->cb_seq, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&b->cb_waiters, __ATOMIC_SEQ_CST) != 0)
		futex_wake(&b->cb_seq, INT_MAX);
}

void
cv_signal(kcondvar_t *cv)
{
	cv_broadcast(cv);
}

/* ------------------------------------------------------------------ */
/* lists (illumos list.c)                                              */
/* ------------------------------------------------------------------ */

#define	list_d2l(a, obj)	((list_node_t *)(((char *)(obj)) + (a)->list_offset))
#define	list_object(a, node)	((void *)(((char *)(node)) - (a)->list_offset))
#define	list_empty(a)		((a)->list_head.list_next == &(a)->list_head)

void
list_create(list_t *list, size_t size, size_t offset)
{
	VERIFY(size > 0);
	VERIFY(size >= offset + sizeof (list_node_t));

	list->list_size = size;
	list->list_offset = offset;
	list->list_head.list_next = list->list_head.list_prev =
	    &list->list_head;
}

void
list_destroy(list_t *list)
{
	list_node_t *node = &list->list_head;

	VERIFY(list->list_head.list_next == node);
	VERIFY(list->list_head.list_prev == node);

	node->list_next = node->list_prev = NULL;
}

static void
list_insert_after_node(list_t *list, list_node_t *prev, void *object)
{
	list_node_t *lnew = list_d2l(list, object);

	if (lnew->list_next != NULL || lnew->list_prev != NULL)
		panic("list_insert(%p, %p): already on a list", (void *)list,
		    object);
	lnew->list_prev = prev;
	lnew->list_next = prev->list_next;
	prev->list_next->list_prev = lnew;
	prev->list_next = lnew;
}

void
list_insert_tail(list_t *list, void *object)
{
	list_insert_after_node(list, list->list_head.list_prev, object);
}

void
list_insert_head(list_t *list, void *object)
{
	list_insert_after_node(list, &list->list_head, object);
}

void
list_remove(list_t *list, void *object)
{
	list_node_t *lold = list_d2l(list, object);

	VERIFY(!list_empty(list));
	VERIFY(lold->list_next != NULL);
	lold->list_prev->list_next = lold->list_next;
	lold->list_next->list_prev = lold->list_prev;
	lold->list_next = lold->list_prev = NULL;
}

void *
list_head(list_t *list)
{
	if (list_empty(list))
		return (NULL);
	return (list_object(list, list->list_head.list_next));
}

void *
list_tail(list_t *list)
{
	if (list_empty(list))
		return (NULL);
	return (list_object(list, list->list_head.list_prev));
}

void *
list_next(list_t *list, void *object)
{
	list_node_t *node = list_d2l(list, object);

	if (node->list_next != &list->list_head)
		return (list_object(list, node->list_next));
	return (NULL);
}

void *
list_prev(list_t *list, void *object)
{
	list_node_t *node = list_d2l(list, object);

	if (node->list_prev != &list->list_head)
		return (list_object(list, node->list_prev));
	return (NULL);
}

int
list_is_empty(list_t *list)
{
	return (list_empty(list));
}

int
list_link_active(list_node_t *link)
{
	return (link->list_next != NULL);
}

/* ------------------------------------------------------------------ */
/* atomics                                                             */
/* ------------------------------------------------------------------ */

uint_t
atomic_inc_uint_nv(volatile uint_t *target)
{
	return (__atomic_add_fetch(target, 1, __ATOMIC_SEQ_CST));
}

uint_t
atomic_dec_uint_nv(volatile uint_t *target)
{
	return (__atomic_sub_fetch(target, 1, __ATOMIC_SEQ_CST));
}

void
atomic_or_uint(volatile uint_t *target, uint_t bits)
{
	(void) __atomic_fetch_or(target, bits, __ATOMIC_SEQ_CST);
}

void
atomic_and_uint(volatile uint_t *target, uint_t bits)
{
	(void) __atomic_fetch_and(target, bits, __ATOMIC_SEQ_CST);
}

void
atomic_and_8(volatile uint8_t *target, uint8_t bits)
{
	(void) __atomic_fetch_and(target, bits, __ATOMIC_SEQ_CST);
}

void
atomic_inc_64(volatile uint64_t *target)
{
	(void) __atomic_add_fetch(target, 1, __ATOMIC_SEQ_CST);
}

void
atomic_add_64(volatile uint64_t *target, int64_t delta)
{
	(void) __atomic_add_fetch(target, (uint64_t)delta, __ATOMIC_SEQ_CST);
}

/* ------------------------------------------------------------------ */
/* the guest-memory reservoir                                          */
/* ------------------------------------------------------------------ */

/* The stand-in's kernel physical mapping is the identity. */
caddr_t kpm_vbase = NULL;

struct vmmr_region {
	caddr_t		vr_base;	/* page-aligned, zeroed */
	size_t		vr_size;
};

int
vmmr_alloc(size_t size, bool transient, vmmr_region_t **resp)
{
	(void) transient;
	VERIFY(size != 0 && (size & PAGEOFFSET) == 0);

	vmmr_region_t *region = kmem_zalloc(sizeof (*region), KM_SLEEP);
	region->vr_base = kmem_zalloc(size, KM_SLEEP);
	region->vr_size = size;
	VERIFY(((uintptr_t)region->vr_base & PAGEOFFSET) == 0);
	*resp = region;
	return (0);
}

pfn_t
vmmr_region_pfn_at(vmmr_region_t *region, uintptr_t off)
{
	VERIFY3U(off, <, region->vr_size);
	return (hat_getpfnum(kas.a_hat, region->vr_base + (off & PAGEMASK)));
}

void
vmmr_free(vmmr_region_t *region)
{
	kmem_free(region->vr_base, region->vr_size);
	kmem_free(region, sizeof (*region));
}

/* ------------------------------------------------------------------ */
/* what the test does not reach                                        */
/* ------------------------------------------------------------------ */

int
choose_addr(struct as *as, caddr_t *addrp, size_t len, offset_t off,
    int vacalign, uint_t flags)
{
	(void) as; (void) addrp; (void) len; (void) off; (void) vacalign;
	(void) flags;
	panic("choose_addr: not provided by the consumer test's stand-in");
}

void
as_rangelock(struct as *as)
{
	(void) as;
	panic("as_rangelock: not provided by the consumer test's stand-in");
}

void
as_rangeunlock(struct as *as)
{
	(void) as;
	panic("as_rangeunlock: not provided by the consumer test's stand-in");
}

int
as_map(struct as *as, caddr_t addr, size_t len, segcreate_func_t crfp,
    void *argsp)
{
	(void) as; (void) addr; (void) len; (void) crfp; (void) argsp;
	panic("as_map: not provided by the consumer test's stand-in");
}

int
segvmm_create(struct seg **segpp, void *argsp)
{
	(void) segpp; (void) argsp;
	panic("segvmm_create: not provided by the consumer test's stand-in");
}

int
vm_get_memseg(struct vm *vm, int ident, size_t *len, bool *sysmem,
    vm_object_t **objptr)
{
	(void) vm; (void) ident; (void) len; (void) sysmem; (void) objptr;
	panic("vm_get_memseg: not provided by the consumer test's stand-in");
}

struct vmspace *
vm_get_vmspace(struct vm *vm)
{
	(void) vm;
	panic("vm_get_vmspace: not provided by the consumer test's stand-in");
}
