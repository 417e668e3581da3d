/*
 * A stand-in for vmm_gpt.o, for tests/bad_objects.rs: the 21 exports of
 * vmm_gpt.o with trivial bodies that call kernel services.  Compiled with
 * the illumos kernel flags it passes the checker; each BAD_* macro (or, in
 * the test, a compiler flag such as -fPIC or -fasynchronous-unwind-tables)
 * adds exactly one kind of violation, which the checker must report.
 * Nothing here is meant to run.
 *
 * The good object has what an illumos kernel object compiled by gcc has:
 * an indirect call (through __x86_indirect_thunk_rax with
 * -mindirect-branch=thunk-extern), a function guarded by the stack
 * protector (__stack_chk_guard, __stack_chk_fail), a function that never
 * returns (vmm_gpt_impl_panic).  The BAD_* cases of the function-symbol
 * rules are written in assembly, so that they do not depend on a compiler
 * version.
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

#ifdef BAD_NAMES
/* A Rust name in the legacy mangling, and a name with a `$`. */
__attribute__((__noinline__)) static void legacy_free(void *)
    __asm__("_ZN7vmm_gpt4node3Gpt4free17h0123456789abcdefE");
__attribute__((__noinline__)) static void dollar_free(void *)
    __asm__("vmm_gpt$free_l1");

static void
legacy_free(void *p)
{
	kmem_free(p, 4096);
}

static void
dollar_free(void *p)
{
	kmem_free(p, 8);
}
#define	FREE(p)	do { legacy_free(p); dollar_free(p); } while (0)
#else
#define	FREE(p)	kmem_free((p), 4096)
#endif

#ifndef OMIT_FREE
void
vmm_gpt_free(void *gpt)
{
	FREE(gpt);
}
#endif

static const struct vmm_pte_impl *vmm_gpt_cur = &vmm_pte_uninit_impl;

int
vmm_gpt_init(const struct vmm_pte_impl *impl)
{
	if (impl == 0)
		cmn_err(2, "vmm: no implementation");
	else
		vmm_gpt_cur = impl;
	return (impl != 0);
}

void
vmm_gpt_fini(void)
{
}

#ifdef BAD_SHARED_ADDRESS
/* A second function symbol at vmm_gpt_fini's address. */
static void vmm_gpt_fini_alias(void)
    __attribute__((__alias__("vmm_gpt_fini"), __used__));
#endif

/* An indirect call: through __x86_indirect_thunk_rax in a kernel build. */
ulong_t
vmm_gpt_get_pmtp(void *gpt, int track)
{
	ulong_t (*get)(void *) = (ulong_t (*)(void *))vmm_gpt_cur->vpi_get_pmtp;

	return (get(gpt) | hat_getpfnum(kas.a_hat, gpt) << 12 |
	    (track ? 0x40 : 0));
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
#elif !defined(BAD_FBT_ENTRY)
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
#elif !defined(BAD_FBT_ENTRY)
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
#elif !defined(BAD_EARLY_RETURN)
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
#elif !defined(BAD_TABLE_THUNK)
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
/* A (local) function with a name from Rust's core (v0 mangling). */
__attribute__((__noinline__)) static void rust_core_panic(void)
    __asm__("_RNvNtCsgEmfK2I1SDS_4core9panicking5panic");

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

#ifndef BAD_TAIL_CALLS
/* A local array whose address escapes: -fstack-protector-strong guards it. */
ulong_t
vmm_gpt_unmap(ulong_t x)
{
	char buf[16];

	buf[0] = (char)x;
	buf[1] = 0;
	cmn_err(0, "%s", buf);
	return (x ^ 8);
}
#endif

#ifdef BAD_SWITCH
/* A dense switch: a jump table, unless retpolines (thunk-extern) are on. */
ulong_t
vmm_gpte_reset_accessed(ulong_t x, void *p)
{
	switch (x) {
	case 0: kmem_free(p, 1); return (3);
	case 1: kmem_free(p, 7); return (9);
	case 2: kmem_free(p, 3); return (12);
	case 3: return (5);
	case 4: kmem_free(p, 11); return (1);
	case 5: kmem_free(0, 13); return (2);
	case 6: kmem_free(p, 17); return (8);
	default: return (0);
	}
}
#endif

#define	TRIVIAL(name, k)	ulong_t name(ulong_t x) { return (x ^ (k)); }
#ifndef BAD_FBT_ENTRY
TRIVIAL(vmm_gpt_populate_region, 6)
TRIVIAL(vmm_gpte_query_dirty, 13)
#endif
#ifndef BAD_TAIL_CALLS
TRIVIAL(vmm_gpt_map_at, 7)
TRIVIAL(vmm_gpte_is_mapped, 9)
#endif
#ifndef BAD_SWITCH
TRIVIAL(vmm_gpte_reset_accessed, 10)
#endif
TRIVIAL(vmm_gpte_reset_dirty, 11)
TRIVIAL(vmm_gpte_query_accessed, 12)

/*
 * The function-symbol rules, in assembly.  FUNC(name) opens a global
 * function, END(name) closes it.
 */
#define	FUNC(name)	"	.text\n	.globl " #name "\n" \
	"	.type " #name ", @function\n" #name ":\n"
#define	END(name)	"	.size " #name ", .-" #name "\n"

#ifdef BAD_FBT_ENTRY
/*
 * fbt-entry: a frameless leaf (no push %rbp: no probes), a shrink-wrapped
 * function (the prologue on one path only), a push %rbp without mov
 * %rsp,%rbp, and a load scheduled above the push.  Every ret is after the
 * push, so fbt-return has nothing to say.
 */
__asm__(
FUNC(vmm_gpt_walk)
"	lea	1(%rdi), %rax\n"
"	ret\n"
END(vmm_gpt_walk)
FUNC(vmm_gpt_populate_region)
"	test	%rdi, %rdi\n"
"	je	1f\n"
"	push	%rbp\n"
"	mov	%rsp, %rbp\n"
"	xor	%esi, %esi\n"
"	call	kmem_free\n"
"	pop	%rbp\n"
"1:	xor	%eax, %eax\n"
"	ret\n"
END(vmm_gpt_populate_region)
FUNC(vmm_gpt_unmap_region)
"	push	%rbp\n"
"	push	%rbx\n"
"	mov	%rdi, %rbx\n"
"	call	kmem_free\n"
"	mov	%rbx, %rax\n"
"	pop	%rbx\n"
"	pop	%rbp\n"
"	ret\n"
END(vmm_gpt_unmap_region)
FUNC(vmm_gpte_query_dirty)
"	mov	(%rdi), %rax\n"
"	push	%rbp\n"
"	mov	%rsp, %rbp\n"
"	and	$0x40, %eax\n"
"	pop	%rbp\n"
"	ret\n"
END(vmm_gpte_query_dirty));
#endif

#ifdef BAD_EARLY_RETURN
/*
 * A return before the prologue (LLVM's shrink-wrapping of a fast path):
 * the entry probe misses that path (fbt-entry) and so does the return
 * probe (fbt-return).
 */
__asm__(
FUNC(vmm_gpt_vacate_region)
"	test	%rdi, %rdi\n"
"	jne	1f\n"
"	xor	%eax, %eax\n"
"	ret\n"
"1:	push	%rbp\n"
"	mov	%rsp, %rbp\n"
"	call	kmem_free\n"
"	pop	%rbp\n"
"	ret\n"
END(vmm_gpt_vacate_region));
#endif

#ifdef BAD_TAIL_CALLS
/*
 * fbt-return: a tail jump to another function (no ret at all), an
 * indirect tail call through a retpoline thunk (allowed by retpoline, not
 * by fbt), and a conditional tail jump beside a ret.
 */
__asm__(
FUNC(vmm_gpt_map_at)
"	push	%rbp\n"
"	mov	%rsp, %rbp\n"
"	pop	%rbp\n"
"	jmp	kmem_free\n"
END(vmm_gpt_map_at)
FUNC(vmm_gpt_unmap)
"	push	%rbp\n"
"	mov	%rsp, %rbp\n"
"	mov	(%rdi), %rax\n"
"	pop	%rbp\n"
"	jmp	__x86_indirect_thunk_rax\n"
END(vmm_gpt_unmap)
FUNC(vmm_gpte_is_mapped)
"	push	%rbp\n"
"	mov	%rsp, %rbp\n"
"	test	%rdi, %rdi\n"
"	pop	%rbp\n"
"	jne	vmm_gpt_walk\n"
"	xor	%eax, %eax\n"
"	ret\n"
END(vmm_gpte_is_mapped));
#endif

#ifdef BAD_TABLE_THUNK
/*
 * A jump table dispatched through a retpoline thunk: no raw indirect jump,
 * but code addresses inside the function stored in .rodata.
 */
__asm__(
FUNC(vmm_gpt_iter_next)
"	push	%rbp\n"
"	mov	%rsp, %rbp\n"
"	and	$3, %edi\n"
"	mov	3f(,%rdi,8), %rax\n"
"	jmp	__x86_indirect_thunk_rax\n"
"1:	mov	$1, %eax\n"
"	pop	%rbp\n"
"	ret\n"
"2:	mov	$2, %eax\n"
"	pop	%rbp\n"
"	ret\n"
END(vmm_gpt_iter_next)
"	.pushsection .rodata\n"
"	.balign	8\n"
"3:	.quad	1b, 2b, 1b, 2b\n"
"	.popsection\n");
#endif
