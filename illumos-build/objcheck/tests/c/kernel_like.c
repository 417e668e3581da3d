/*
 * A stand-in for vmm_gpt.o, for tests/bad_objects.rs: the 21 exports of
 * vmm_gpt.o with trivial bodies that call kernel services.  Compiled with
 * the illumos kernel flags it passes the checker; each BAD_* macro (or, in
 * the test, a compiler flag such as -fPIC or -fasynchronous-unwind-tables)
 * adds exactly one kind of violation, which the checker must report.
 * Nothing here is meant to run.
 */

typedef unsigned long size_t;
typedef unsigned long ulong_t;

extern void *kmem_zalloc(size_t, int);
extern void kmem_free(void *, size_t);
extern void panic(const char *, ...) __attribute__((__noreturn__));
extern void cmn_err(int, const char *, ...);
extern ulong_t hat_getpfnum(void *, char *);
extern struct as { void *a_contents; void *a_hat; } kas;

struct vmm_pte_impl {
	void *vpi_map_table;
	void *vpi_map_page;
	void *vpi_pte_parse;
	ulong_t vpi_bit_accessed;
	ulong_t vpi_bit_dirty;
	void *vpi_get_pmtp;
	void *vpi_hw_ad_supported;
};

void
vmm_gpt_impl_panic(void)
{
	panic("Indirect function not hot-patched");
}

const struct vmm_pte_impl vmm_pte_uninit_impl = {
	.vpi_map_table = (void *)vmm_gpt_impl_panic,
	.vpi_map_page = (void *)vmm_gpt_impl_panic,
	.vpi_pte_parse = (void *)vmm_gpt_impl_panic,
	.vpi_get_pmtp = (void *)vmm_gpt_impl_panic,
	.vpi_hw_ad_supported = (void *)vmm_gpt_impl_panic,
};

#ifdef BAD_IMPORT
/* Not a kernel service. */
extern void *malloc(size_t);
#define	ALLOC(n)	malloc(n)
#else
#define	ALLOC(n)	kmem_zalloc((n), 0)
#endif

void *
vmm_gpt_alloc(void)
{
	return (ALLOC(4096));
}

#ifndef OMIT_FREE
void
vmm_gpt_free(void *gpt)
{
	kmem_free(gpt, 4096);
}
#endif

int
vmm_gpt_init(const struct vmm_pte_impl *impl)
{
	if (impl == 0)
		cmn_err(2, "vmm: no implementation");
	return (impl != 0);
}

void
vmm_gpt_fini(void)
{
}

ulong_t
vmm_gpt_get_pmtp(void *gpt, int track)
{
	return (hat_getpfnum(kas.a_hat, gpt) << 12 | (track ? 0x40 : 0));
}

#ifdef BAD_BIG_FRAME
/* A 1 KiB array on the stack. */
ulong_t
vmm_gpt_walk(ulong_t x)
{
	volatile unsigned char buf[1024];

	buf[x & 1023] = (unsigned char)x;
	kmem_free((void *)buf, x);
	return (buf[(x >> 3) & 1023]);
}
#else
ulong_t
vmm_gpt_walk(ulong_t x)
{
	return (x + 1);
}
#endif

#ifdef BAD_MUTUAL_RECURSION
static ulong_t ping(ulong_t);

__attribute__((__noinline__)) static ulong_t
pong(ulong_t n)
{
	if (n == 0)
		return (0);
	kmem_free(0, n);
	return (ping(n - 1) * 3 + 1);
}

__attribute__((__noinline__)) static ulong_t
ping(ulong_t n)
{
	if (n == 0)
		return (1);
	kmem_free(0, n);
	return (pong(n - 1) * 5 + 2);
}

ulong_t
vmm_gpt_unmap_region(ulong_t n)
{
	return (ping(n));
}
#else
ulong_t
vmm_gpt_unmap_region(ulong_t n)
{
	return (n + 2);
}
#endif

#ifdef BAD_SELF_RECURSION
__attribute__((__noinline__)) static ulong_t
count_down(ulong_t n)
{
	if (n < 2)
		return (n);
	kmem_free(0, n);
	return (count_down(n - 1) + count_down(n - 2));
}

ulong_t
vmm_gpt_vacate_region(ulong_t n)
{
	return (count_down(n));
}
#else
ulong_t
vmm_gpt_vacate_region(ulong_t n)
{
	return (n + 3);
}
#endif

#ifdef BAD_SSE
/* Floating point, compiled with -msse2: SSE registers. */
ulong_t
vmm_gpt_can_track_dirty(ulong_t x)
{
	return ((ulong_t)((double)x * 1.5));
}
#elif defined(BAD_X87)
/* long double is x87 even without SSE. */
ulong_t
vmm_gpt_can_track_dirty(ulong_t x)
{
	return ((ulong_t)((long double)x * 1.5L));
}
#else
ulong_t
vmm_gpt_can_track_dirty(ulong_t x)
{
	return (x & 1);
}
#endif

#ifdef BAD_TLS
static __thread ulong_t walks;

ulong_t
vmm_gpt_iter_next(ulong_t x)
{
	return (walks += x);
}
#else
ulong_t
vmm_gpt_iter_next(ulong_t x)
{
	return (x + 4);
}
#endif

#ifdef BAD_CONSTRUCTOR
__attribute__((__constructor__)) static void
vmm_gpt_setup(void)
{
	kmem_free(0, 0);
}
#endif

#ifdef BAD_EXTRA_GLOBAL
/* A global definition that vmm_gpt.o does not have. */
ulong_t vmm_gpt_walk_count;
#endif

#ifdef BAD_RUST_SYMBOL
/* A (local) function with a name from Rust's core. */
__attribute__((__noinline__)) static void rust_core_panic(void)
    __asm__("_ZN4core9panicking5panic17h0123456789abcdefE");

static void
rust_core_panic(void)
{
	panic("core::panicking::panic");
}
#define	CHECK(x)	do { if ((x) == 0) rust_core_panic(); } while (0)
#else
#define	CHECK(x)	((void)(x))
#endif

#ifdef BAD_EXCEPTIONS
/* A cleanup that runs on unwinding (with -fexceptions): landing pads. */
static void
release(void **p)
{
	kmem_free(*p, 8);
}

ulong_t
vmm_gpt_iter_init(ulong_t x)
{
	void *p __attribute__((__cleanup__(release))) = kmem_zalloc(8, 0);

	cmn_err(0, "%p", p);
	return (x + 5);
}
#else
ulong_t
vmm_gpt_iter_init(ulong_t x)
{
	CHECK(x);
	return (x + 5);
}
#endif

#define	TRIVIAL(name, k)	ulong_t name(ulong_t x) { return (x ^ (k)); }
TRIVIAL(vmm_gpt_populate_region, 6)
TRIVIAL(vmm_gpt_map_at, 7)
TRIVIAL(vmm_gpt_unmap, 8)
TRIVIAL(vmm_gpte_is_mapped, 9)
TRIVIAL(vmm_gpte_reset_accessed, 10)
TRIVIAL(vmm_gpte_reset_dirty, 11)
TRIVIAL(vmm_gpte_query_accessed, 12)
TRIVIAL(vmm_gpte_query_dirty, 13)
