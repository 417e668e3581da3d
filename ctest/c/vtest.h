/*
 * vtest: the small C test framework of the vmm-gpt harness.
 *
 * Tests register themselves with VTEST().  The runner (vtest_main.c) runs
 * each test in its own child process (fork), so a crash, an abort or a kernel
 * `panic` in one test fails that test alone.  In the child, for tests flagged
 * VT_PER_FORMAT, the runner calls vmm_gpt_init(impl) first and vmm_gpt_fini()
 * after, once for each PTE format (EPT, then RVI); afterwards it checks that
 * the kernel stand-in holds zero live allocations (a leak fails the test).
 *
 * The same test sources are linked with every implementation under test:
 * the Rust library (vtest_reference == false) as the test profile builds it
 * (debug_assertions: a DEBUG build), the release staticlib and the kernel
 * objects of illumos-build/build.sh (vmm_gpt.o non-DEBUG, vmm_gpt.debug.o
 * DEBUG), and, when ILLUMOS_GATE is set, the original vmm_gpt.c
 * (vtest_reference == true) compiled with and without -DDEBUG.  vtest_debug
 * says which kind of build runs: in a DEBUG build the original's ASSERTs
 * (and the library's counterparts) are live, in a non-DEBUG build, the one
 * production illumos runs, they are compiled out.
 */
#ifndef VTEST_H
#define VTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/vmm_gpt.h>
#include <sys/vmm_gpt_impl.h>

/* Run once for each PTE format, with that format installed by the runner. */
#define	VT_PER_FORMAT	0x1u
/* Run once, with no format installed (the test manages init/fini itself). */
#define	VT_NO_IMPL	0x2u
/* Skipped when linked with the original (tests the defect the library fixes). */
#define	VT_LIBRARY_ONLY	0x4u
/* Long-running (stress); still run by default. */
#define	VT_SLOW		0x8u
/*
 * Skipped under valgrind (which runs one thread at a time, so a test of
 * what two CPUs do at once would measure nothing there).
 */
#define	VT_NO_VALGRIND	0x10u

typedef struct vtest {
	const char	*vt_name;
	const char	*vt_file;
	void		(*vt_fn)(const vmm_pte_impl_t *impl);
	unsigned	vt_flags;
} vtest_t;

void vtest_register(const vtest_t *);

/*
 * Define a test.  `impl` is the installed format for VT_PER_FORMAT tests and
 * NULL for VT_NO_IMPL tests.
 */
#define	VTEST(name, flags)						\
	static void name(const vmm_pte_impl_t *impl);			\
	static const vtest_t name##_vtdesc = {				\
		#name, __FILE__, name, (flags) };			\
	__attribute__((constructor)) static void name##_vtreg(void)	\
	{ vtest_register(&name##_vtdesc); }				\
	static void name(const vmm_pte_impl_t *impl __attribute__((unused)))

/* True when linked with the original vmm_gpt.c instead of the library. */
extern bool vtest_reference;

/*
 * True when the implementation under test is a DEBUG build: the original
 * compiled with -DDEBUG, the library with debug_assertions (the test
 * profile's build, vmm_gpt.debug.o).  False for the non-DEBUG original,
 * the release staticlib and vmm_gpt.o.
 */
extern bool vtest_debug;

/* Name of the format installed for the current test ("ept", "rvi", NULL). */
extern const char *vtest_format;

/*
 * Failure reporting: prints file:line, the expression and both values, and
 * ends the current test (the child exits non-zero).
 */
void vtest_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define	VT_CHECK(cond) do {						\
	if (!(cond))							\
		vtest_fail(__FILE__, __LINE__, "check failed: %s", #cond); \
} while (0)

#define	VT_CHECK_EQ(a, b) do {						\
	const uint64_t vt_a_ = (uint64_t)(a), vt_b_ = (uint64_t)(b);	\
	if (vt_a_ != vt_b_)						\
		vtest_fail(__FILE__, __LINE__,				\
		    "%s == %s failed: 0x%llx != 0x%llx", #a, #b,	\
		    (unsigned long long)vt_a_, (unsigned long long)vt_b_); \
} while (0)

#define	VT_CHECK_NE(a, b) do {						\
	const uint64_t vt_a_ = (uint64_t)(a), vt_b_ = (uint64_t)(b);	\
	if (vt_a_ == vt_b_)						\
		vtest_fail(__FILE__, __LINE__,				\
		    "%s != %s failed: both 0x%llx", #a, #b,		\
		    (unsigned long long)vt_a_);				\
} while (0)

#define	VT_CHECK_NULL(p)	VT_CHECK_EQ((uintptr_t)(p), 0)
#define	VT_CHECK_NOT_NULL(p)	VT_CHECK_NE((uintptr_t)(p), 0)

/*
 * Death tests.  Runs `fn(arg)` in a child process (forked from the test's
 * process, so the installed format and any state built so far are inherited)
 * and checks that it ends in a kernel panic (the stand-in's panic() or a
 * failed ASSERT/VERIFY, which print "panic: <message>" and abort).
 *
 * When linked with the library, the panic message must contain
 * `library_msg` (pass NULL to check only that it panicked).  When linked
 * with the original, only the panic itself is checked, unless
 * `reference_msg` is not NULL.  `flags` say where the panic is expected:
 *
 * 0                       in every build of both (the original VERIFYs, or
 *                         it panics some other way in non-DEBUG builds too);
 * VT_DEATH_LIBRARY_ONLY   the library's, in every build; skipped with the
 *                         original, which does not panic at all (a comment
 *                         at the test says what it does instead);
 * VT_DEATH_LIBRARY_ONLY_NDEBUG
 *                         the library's in every build and the original's
 *                         in DEBUG builds (an ASSERT); skipped with the
 *                         non-DEBUG original, which crashes or corrupts
 *                         memory there (a comment says how);
 * VT_DEATH_DEBUG_ONLY     a check that only DEBUG builds make (the
 *                         original's ASSERT, the library's counterpart):
 *                         use VT_EXPECT_DEBUG_PANIC, not VT_EXPECT_PANIC.
 *
 * A test case all of whose death tests were skipped, and that checked
 * nothing else through VT_EXPECT_DEBUG_PANIC, is reported as skipped.
 */
#define	VT_DEATH_LIBRARY_ONLY		0x1u
#define	VT_DEATH_DEBUG_ONLY		0x2u
#define	VT_DEATH_LIBRARY_ONLY_NDEBUG	0x4u
void vtest_expect_panic_at(const char *file, int line,
    void (*fn)(void *), void *arg, unsigned flags,
    const char *library_msg, const char *reference_msg);
#define	VT_EXPECT_PANIC(fn, arg, flags, lib_msg, ref_msg)		\
	vtest_expect_panic_at(__FILE__, __LINE__, (fn), (arg), (flags),	\
	    (lib_msg), (ref_msg))

/*
 * A death test of a check that only DEBUG builds make (the original's
 * ASSERTs).  In a DEBUG build it expects the panic as VT_EXPECT_PANIC does
 * and returns false.  In a non-DEBUG build it calls `fn(arg)` in the test's
 * own process, where a panic fails the test, and returns true: the caller
 * must then check the results the non-DEBUG original gives (the test runs
 * linked with that original too, so a wrong expectation fails there):
 *
 *	if (VT_EXPECT_DEBUG_PANIC(do_thing, &arg, lib_msg, ref_msg)) {
 *		VT_CHECK_EQ(arg.result, <what the non-DEBUG original gives>);
 *		...
 *	}
 */
bool vtest_expect_debug_panic_at(const char *file, int line,
    void (*fn)(void *), void *arg, const char *library_msg,
    const char *reference_msg) __attribute__((warn_unused_result));
#define	VT_EXPECT_DEBUG_PANIC(fn, arg, lib_msg, ref_msg)		\
	vtest_expect_debug_panic_at(__FILE__, __LINE__, (fn), (arg),	\
	    (lib_msg), (ref_msg))

/*
 * Ends the current test case as skipped (not passed), saying why: for a
 * case that has nothing to check with this implementation.  Only before
 * the test has allocated anything (the leak check is not run).
 */
void vtest_skip(const char *why) __attribute__((noreturn));

/*
 * Runs every registered test; argv may name tests (substring match) to run
 * only those.  `reference` and `debug` say what is linked in (vtest_reference,
 * vtest_debug).  Prints one line per test and, last, "N passed, N failed,
 * N skipped".  Returns the process exit status (0 when all passed).
 */
int vtest_main(int argc, char **argv, bool reference, bool debug);

#endif /* VTEST_H */
