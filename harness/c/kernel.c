/*
 * The userland kernel stand-in: the illumos kernel services that vmm_gpt.c
 * (and the Rust library replacing it) import, implemented for a test process,
 * with hooks for the tests (ktest.h).
 *
 * Every piece of state here is per process: the runner forks a child per test
 * (vtest_main.c), so tests start from a clean kernel.
 */
#define	_GNU_SOURCE		/* dladdr(), pipe2() */

#include <sys/types.h>
#include <sys/atomic.h>
#include <sys/cmn_err.h>
#include <sys/debug.h>
#include <sys/kmem.h>
#include <sys/machparam.h>
#include <sys/modctl.h>
#include <sys/systm.h>
#include <vm/as.h>
#include <vm/hat.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define	KTEST_HAVE_VALGRIND_H	1
#endif
#endif

#include "ktest.h"

/*
 * Fork safety: a test may fork (death tests) while another of its threads
 * holds one of the locks below; the child would then deadlock on it.  Take
 * them all around fork() (pthread_atfork), so the child starts with every
 * lock free and every table consistent.
 */
static pthread_mutex_t kmem_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cmn_err_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t hot_patch_lock = PTHREAD_MUTEX_INITIALIZER;

static void
ktest_atfork_prepare(void)
{
	(void) pthread_mutex_lock(&hot_patch_lock);
	(void) pthread_mutex_lock(&cmn_err_lock);
	(void) pthread_mutex_lock(&kmem_lock);
}

static void
ktest_atfork_release(void)
{
	(void) pthread_mutex_unlock(&kmem_lock);
	(void) pthread_mutex_unlock(&cmn_err_lock);
	(void) pthread_mutex_unlock(&hot_patch_lock);
}

__attribute__((constructor)) static void
ktest_init(void)
{
	(void) pthread_atfork(ktest_atfork_prepare, ktest_atfork_release,
	    ktest_atfork_release);
}

/* ------------------------------------------------------------------ */
/* panic, assfail                                                      */
/* ------------------------------------------------------------------ */

/* The hook panic() calls before it aborts (ktest_set_panic_hook()). */
static ktest_panic_hook_t ktest_panic_hook;

ktest_panic_hook_t
ktest_set_panic_hook(ktest_panic_hook_t hook)
{
	return (__atomic_exchange_n(&ktest_panic_hook, hook, __ATOMIC_SEQ_CST));
}

/*
 * Formats the message and writes "panic: <message>\n" to stderr with one
 * write(2) (no stdio: it may be called with any lock held, and nothing
 * buffered may be lost), calls the panic hook if one is set, then
 * abort()s: death tests require SIGABRT.
 */
void
panic(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	(void) memcpy(buf, "panic: ", 7);
	va_start(ap, fmt);
	n = vsnprintf(buf + 7, sizeof (buf) - 8, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	size_t len = 7 + ((size_t)n < sizeof (buf) - 8 ?
	    (size_t)n : sizeof (buf) - 9);
	buf[len++] = '\n';

	for (size_t off = 0; off < len; ) {
		ssize_t w = write(STDERR_FILENO, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	/* Taken out first: a hook that panics does not run again. */
	ktest_panic_hook_t hook = ktest_set_panic_hook(NULL);
	if (hook != NULL)
		hook();
	abort();
}

int
assfail(const char *assertion, const char *file, int line)
{
	panic("assertion failed: %s, file: %s, line: %d", assertion, file,
	    line);
}

void
assfail3(const char *assertion, uintmax_t lv, const char *op, uintmax_t rv,
    const char *file, int line)
{
	panic("assertion failed: %s (0x%llx %s 0x%llx), file: %s, line: %d",
	    assertion, (unsigned long long)lv, op, (unsigned long long)rv,
	    file, line);
}

/* ------------------------------------------------------------------ */
/* kmem                                                                */
/* ------------------------------------------------------------------ */

/*
 * Every live allocation is recorded in a side table (a chained hash keyed by
 * address) rather than in a header in front of the block: the pointer handed
 * out is exactly the one posix_memalign() returned, so valgrind tracks each
 * kmem buffer as a block of its own (overruns of a table page are reported
 * as such), and the table's reference keeps live kmem buffers "still
 * reachable" for valgrind; leaks of kmem buffers are caught by the runner's
 * live-count check instead.
 */
typedef struct kmem_rec {
	void		*kr_ptr;
	size_t		kr_size;
	struct kmem_rec	*kr_next;
	unsigned	kr_domain;	/* charged to (ktest_kmem_set_domain) */
} kmem_rec_t;

static kmem_rec_t **kmem_hash;
static size_t kmem_hash_size;		/* buckets, a power of two */
static kmem_stats_t kmem_stats;
static kmem_stats_t kmem_domain_stats[KTEST_KMEM_DOMAINS];
static __thread unsigned kmem_cur_domain;

static size_t
kmem_bucket(const void *ptr, size_t nbuckets)
{
	uint64_t h = (uint64_t)(uintptr_t)ptr >> 4;

	h *= 0x9e3779b97f4a7c15ull;	/* Fibonacci hashing */
	return ((size_t)(h >> 32) & (nbuckets - 1));
}

/* Called with kmem_lock held: keep the load factor at most 1. */
static void
kmem_hash_grow(void)
{
	size_t nsize = kmem_hash_size == 0 ? 1024 : kmem_hash_size * 2;
	kmem_rec_t **nhash = calloc(nsize, sizeof (*nhash));

	if (nhash == NULL) {
		(void) pthread_mutex_unlock(&kmem_lock);
		panic("kmem: out of memory for the allocation table");
	}
	for (size_t i = 0; i < kmem_hash_size; i++) {
		kmem_rec_t *r = kmem_hash[i];
		while (r != NULL) {
			kmem_rec_t *next = r->kr_next;
			size_t b = kmem_bucket(r->kr_ptr, nsize);
			r->kr_next = nhash[b];
			nhash[b] = r;
			r = next;
		}
	}
	free(kmem_hash);
	kmem_hash = nhash;
	kmem_hash_size = nsize;
}

/*
 * Alignment as illumos's kmem_alloc caches give it: sizes that are a multiple
 * of PAGESIZE are page-aligned (vmm_gpt relies on that for its tables),
 * multiples of 64 are 64-byte aligned, everything else gets malloc's 16
 * (more than illumos's KMEM_ALIGN of 8).
 */
static size_t
kmem_align(size_t size)
{
	if (size % PAGESIZE == 0)
		return (PAGESIZE);
	if (size % 64 == 0)
		return (64);
	return (16);
}

void *
kmem_zalloc(size_t size, int kmflags)
{
	void *ptr = NULL;

	/* As in illumos, a zero-sized allocation returns NULL. */
	if (size == 0)
		return (NULL);

	int err = posix_memalign(&ptr, kmem_align(size), size);
	if (err != 0 || ptr == NULL) {
		if (kmflags & KM_NOSLEEP)
			return (NULL);
		panic("kmem_zalloc(%zu, 0x%x): out of memory", size, kmflags);
	}
	(void) memset(ptr, 0, size);

	kmem_rec_t *rec = malloc(sizeof (*rec));
	if (rec == NULL)
		panic("kmem_zalloc: out of memory for the allocation table");
	rec->kr_ptr = ptr;
	rec->kr_size = size;
	rec->kr_domain = kmem_cur_domain;
	kmem_stats_t *ds = &kmem_domain_stats[rec->kr_domain];

	(void) pthread_mutex_lock(&kmem_lock);
	if (kmem_stats.ks_live_allocs >= kmem_hash_size)
		kmem_hash_grow();
	size_t b = kmem_bucket(ptr, kmem_hash_size);
	rec->kr_next = kmem_hash[b];
	kmem_hash[b] = rec;
	kmem_stats.ks_live_allocs++;
	kmem_stats.ks_live_bytes += size;
	if (size == PAGESIZE)
		kmem_stats.ks_live_pages++;
	kmem_stats.ks_total_allocs++;
	ds->ks_live_allocs++;
	ds->ks_live_bytes += size;
	if (size == PAGESIZE)
		ds->ks_live_pages++;
	ds->ks_total_allocs++;
	(void) pthread_mutex_unlock(&kmem_lock);

	return (ptr);
}

/* The stand-in never needs the non-zeroing variant to differ. */
void *
kmem_alloc(size_t size, int kmflags)
{
	return (kmem_zalloc(size, kmflags));
}

/* Called with kmem_lock held: a live record leaves the accounting. */
static void
kmem_uncount(const kmem_rec_t *rec)
{
	kmem_stats_t *ds = &kmem_domain_stats[rec->kr_domain];

	kmem_stats.ks_live_allocs--;
	kmem_stats.ks_live_bytes -= rec->kr_size;
	if (rec->kr_size == PAGESIZE)
		kmem_stats.ks_live_pages--;
	kmem_stats.ks_total_frees++;
	ds->ks_live_allocs--;
	ds->ks_live_bytes -= rec->kr_size;
	if (rec->kr_size == PAGESIZE)
		ds->ks_live_pages--;
	ds->ks_total_frees++;
}

void
kmem_free(void *ptr, size_t size)
{
	/* kmem_free(NULL, 0) undoes kmem_zalloc(0, ...). */
	if (ptr == NULL && size == 0)
		return;

	(void) pthread_mutex_lock(&kmem_lock);
	kmem_rec_t **pp = NULL, *rec = NULL;
	if (kmem_hash_size != 0) {
		pp = &kmem_hash[kmem_bucket(ptr, kmem_hash_size)];
		while ((rec = *pp) != NULL && rec->kr_ptr != ptr)
			pp = &rec->kr_next;
	}
	if (rec == NULL) {
		(void) pthread_mutex_unlock(&kmem_lock);
		panic("kmem_free(%p, %zu): not a live kmem_zalloc() buffer "
		    "(never allocated, or already freed)", ptr, size);
	}
	if (rec->kr_size != size) {
		const size_t alloc_size = rec->kr_size;
		(void) pthread_mutex_unlock(&kmem_lock);
		panic("kmem_free(%p, %zu): size mismatch: the buffer was "
		    "allocated with size %zu, freed with size %zu", ptr, size,
		    alloc_size, size);
	}
	*pp = rec->kr_next;
	kmem_uncount(rec);
	(void) pthread_mutex_unlock(&kmem_lock);

	/*
	 * Poison before freeing, so a use after free reads garbage (and, for
	 * a freed table page, PTEs that parse as present with a wild PFN) in
	 * native runs too, not only under valgrind.
	 */
	(void) memset(ptr, 0xdb, size);
	free(rec);
	free(ptr);
}

void
ktest_kmem_stats(kmem_stats_t *ks)
{
	(void) pthread_mutex_lock(&kmem_lock);
	*ks = kmem_stats;
	(void) pthread_mutex_unlock(&kmem_lock);
}

void
ktest_kmem_set_domain(unsigned domain)
{
	if (domain >= KTEST_KMEM_DOMAINS)
		panic("ktest_kmem_set_domain(%u): there are %u domains", domain,
		    (unsigned)KTEST_KMEM_DOMAINS);
	kmem_cur_domain = domain;
}

unsigned
ktest_kmem_domain(void)
{
	return (kmem_cur_domain);
}

void
ktest_kmem_domain_stats(unsigned domain, kmem_stats_t *ks)
{
	if (domain >= KTEST_KMEM_DOMAINS)
		panic("ktest_kmem_domain_stats(%u): there are %u domains",
		    domain, (unsigned)KTEST_KMEM_DOMAINS);
	(void) pthread_mutex_lock(&kmem_lock);
	*ks = kmem_domain_stats[domain];
	(void) pthread_mutex_unlock(&kmem_lock);
}

uint64_t
ktest_kmem_domain_reclaim(unsigned domain)
{
	kmem_rec_t *reclaimed = NULL;
	uint64_t n = 0;

	if (domain >= KTEST_KMEM_DOMAINS)
		panic("ktest_kmem_domain_reclaim(%u): there are %u domains",
		    domain, (unsigned)KTEST_KMEM_DOMAINS);
	(void) pthread_mutex_lock(&kmem_lock);
	for (size_t i = 0; i < kmem_hash_size; i++) {
		kmem_rec_t **pp = &kmem_hash[i];
		kmem_rec_t *rec;
		while ((rec = *pp) != NULL) {
			if (rec->kr_domain != domain) {
				pp = &rec->kr_next;
				continue;
			}
			*pp = rec->kr_next;
			kmem_uncount(rec);
			rec->kr_next = reclaimed;
			reclaimed = rec;
			n++;
		}
	}
	(void) pthread_mutex_unlock(&kmem_lock);

	while (reclaimed != NULL) {
		kmem_rec_t *next = reclaimed->kr_next;
		(void) memset(reclaimed->kr_ptr, 0xdb, reclaimed->kr_size);
		free(reclaimed->kr_ptr);
		free(reclaimed);
		reclaimed = next;
	}
	return (n);
}

/* ------------------------------------------------------------------ */
/* atomics                                                             */
/* ------------------------------------------------------------------ */

uint64_t
atomic_cas_64(volatile uint64_t *target, uint64_t cmp, uint64_t newval)
{
	/* On failure the builtin stores the current value in cmp. */
	(void) __atomic_compare_exchange_n(target, &cmp, newval, false,
	    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return (cmp);
}

/* ------------------------------------------------------------------ */
/* retpoline thunk                                                     */
/* ------------------------------------------------------------------ */

/*
 * illumos builds kernel code with -mindirect-branch=thunk-extern: indirect
 * calls go through __x86_indirect_thunk_<reg> (uts/intel/ml/retpoline.S),
 * which the kernel patches at boot into a full retpoline or, on CPUs that
 * need none, a plain indirect jump.  The library calls the format's
 * vpi_get_pmtp and vpi_hw_ad_supported through the %rax one; here it is the
 * plain jump.
 */
__asm__(
	"	.text\n"
	"	.p2align 4\n"
	"	.globl	__x86_indirect_thunk_rax\n"
	"	.type	__x86_indirect_thunk_rax, @function\n"
	"__x86_indirect_thunk_rax:\n"
	"	jmp	*%rax\n"
	"	.size	__x86_indirect_thunk_rax, . - __x86_indirect_thunk_rax\n");

/* ------------------------------------------------------------------ */
/* hat / as                                                            */
/* ------------------------------------------------------------------ */

/*
 * The kernel's hat is a real object so that hat_getpfnum() can check it was
 * given kas.a_hat (a NULL or stray hat would be an ABI mistake).
 */
struct hat {
	int	h_unused;
};
static struct hat ktest_kas_hat;
struct as kas = { .a_hat = &ktest_kas_hat };

pfn_t
hat_getpfnum(struct hat *hat, caddr_t addr)
{
	if (hat != kas.a_hat)
		panic("hat_getpfnum(%p, %p): not the kernel's hat (%p)",
		    (void *)hat, (void *)addr, (void *)kas.a_hat);
	return ((pfn_t)((uintptr_t)addr >> PAGESHIFT));
}

caddr_t
hat_kpm_pfn2va(pfn_t pfn)
{
	return ((caddr_t)((uintptr_t)pfn << PAGESHIFT));
}

/* ------------------------------------------------------------------ */
/* hot_patch_kernel_text, modgetsymname                                */
/* ------------------------------------------------------------------ */

static uint64_t hot_patch_calls;

/*
 * Really rewrites the code: makes the page(s) writable (keeping them
 * executable, another thread may be running code there), copies the low
 * `size` bytes of `value` (x86 is little-endian), and restores R+X.
 */
void
hot_patch_kernel_text(caddr_t addr, uint32_t value, uint_t size)
{
	if (size != 1 && size != 2 && size != 4)
		panic("hot_patch_kernel_text(%p, 0x%x, %u): bad size",
		    (void *)addr, value, size);

	const uintptr_t pgsz = (uintptr_t)sysconf(_SC_PAGESIZE);
	const uintptr_t start = (uintptr_t)addr & ~(pgsz - 1);
	const uintptr_t end = ((uintptr_t)addr + size + pgsz - 1) &
	    ~(pgsz - 1);

	(void) pthread_mutex_lock(&hot_patch_lock);
	if (mprotect((void *)start, end - start,
	    PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
		int e = errno;
		(void) pthread_mutex_unlock(&hot_patch_lock);
		panic("hot_patch_kernel_text(%p): mprotect(RWX) failed: %s",
		    (void *)addr, strerror(e));
	}
	(void) memcpy(addr, &value, size);
	if (mprotect((void *)start, end - start, PROT_READ | PROT_EXEC) != 0) {
		int e = errno;
		(void) pthread_mutex_unlock(&hot_patch_lock);
		panic("hot_patch_kernel_text(%p): mprotect(RX) failed: %s",
		    (void *)addr, strerror(e));
	}
	__builtin___clear_cache(addr, addr + size);
#ifdef KTEST_HAVE_VALGRIND_H
	/*
	 * valgrind's default --smc-check=all-non-file does not look for
	 * self-modifying code in file-backed mappings (our .text): drop its
	 * cached translations of the patched bytes, as a real kernel would
	 * synchronize the instruction stream.  A no-op when not under valgrind.
	 */
	VALGRIND_DISCARD_TRANSLATIONS(addr, size);
#endif
	__atomic_add_fetch(&hot_patch_calls, 1, __ATOMIC_SEQ_CST);
	(void) pthread_mutex_unlock(&hot_patch_lock);
}

uint64_t
ktest_hot_patch_count(void)
{
	return (__atomic_load_n(&hot_patch_calls, __ATOMIC_SEQ_CST));
}

/*
 * As illumos: the name of the symbol that encloses addr, with the offset into
 * it, or NULL.  dladdr() sees only dynamic symbols, which is why the test
 * executables are linked with -rdynamic.
 */
const char *
modgetsymname(uintptr_t addr, ulong_t *offp)
{
	Dl_info info;

	if (dladdr((void *)addr, &info) == 0 || info.dli_sname == NULL ||
	    info.dli_saddr == NULL)
		return (NULL);
	if (offp != NULL)
		*offp = (ulong_t)(addr - (uintptr_t)info.dli_saddr);
	return (info.dli_sname);
}

/* ------------------------------------------------------------------ */
/* cmn_err                                                             */
/* ------------------------------------------------------------------ */

typedef struct cmn_err_rec {
	int	ce_level;
	char	*ce_msg;
} cmn_err_rec_t;

static cmn_err_rec_t *cmn_err_log;
static size_t cmn_err_count, cmn_err_cap;

void
cmn_err(int level, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL)
		panic("cmn_err: out of memory");

	if (level == CE_PANIC)
		panic("%s", msg);

	if (getenv("VTEST_VERBOSE") != NULL) {
		static const char *const prefix[] = {
			"", "NOTICE: ", "WARNING: ", "PANIC: ", ""
		};
		const char *p = (level >= 0 && level <= CE_IGNORE) ?
		    prefix[level] : "";
		(void) fprintf(stderr, "cmn_err: %s%s\n", p, msg);
	}

	(void) pthread_mutex_lock(&cmn_err_lock);
	if (cmn_err_count == cmn_err_cap) {
		size_t ncap = cmn_err_cap == 0 ? 16 : cmn_err_cap * 2;
		cmn_err_rec_t *nlog = realloc(cmn_err_log,
		    ncap * sizeof (*nlog));
		if (nlog == NULL) {
			(void) pthread_mutex_unlock(&cmn_err_lock);
			panic("cmn_err: out of memory");
		}
		cmn_err_log = nlog;
		cmn_err_cap = ncap;
	}
	cmn_err_log[cmn_err_count].ce_level = level;
	cmn_err_log[cmn_err_count].ce_msg = msg;
	cmn_err_count++;
	(void) pthread_mutex_unlock(&cmn_err_lock);
}

size_t
ktest_cmn_err_count(void)
{
	(void) pthread_mutex_lock(&cmn_err_lock);
	size_t n = cmn_err_count;
	(void) pthread_mutex_unlock(&cmn_err_lock);
	return (n);
}

int
ktest_cmn_err_level(size_t i)
{
	int level = -1;

	(void) pthread_mutex_lock(&cmn_err_lock);
	if (i < cmn_err_count)
		level = cmn_err_log[i].ce_level;
	(void) pthread_mutex_unlock(&cmn_err_lock);
	return (level);
}

/* Valid until ktest_cmn_err_clear(); NULL when i is out of range. */
const char *
ktest_cmn_err_message(size_t i)
{
	const char *msg = NULL;

	(void) pthread_mutex_lock(&cmn_err_lock);
	if (i < cmn_err_count)
		msg = cmn_err_log[i].ce_msg;
	(void) pthread_mutex_unlock(&cmn_err_lock);
	return (msg);
}

void
ktest_cmn_err_clear(void)
{
	(void) pthread_mutex_lock(&cmn_err_lock);
	for (size_t i = 0; i < cmn_err_count; i++)
		free(cmn_err_log[i].ce_msg);
	free(cmn_err_log);
	cmn_err_log = NULL;
	cmn_err_count = cmn_err_cap = 0;
	(void) pthread_mutex_unlock(&cmn_err_lock);
}

/* ------------------------------------------------------------------ */
/* PTE format settings                                                 */
/* ------------------------------------------------------------------ */

static bool ktest_hw_ad = true;

void
ktest_set_hw_ad_supported(bool on)
{
	__atomic_store_n(&ktest_hw_ad, on, __ATOMIC_SEQ_CST);
}

bool
ktest_hw_ad_supported(void)
{
	return (__atomic_load_n(&ktest_hw_ad, __ATOMIC_SEQ_CST));
}
