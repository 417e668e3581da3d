/*
 * The vtest runner (see vtest.h).
 *
 * Each test case (a test, or a test and a PTE format for VT_PER_FORMAT tests)
 * runs in a child process of its own, in its own process group, with its
 * stdout and stderr going to a pipe that the runner reads.  The runner prints
 * "ok <case>" or "FAIL <case>" followed by the case's output (indented), or
 * "skip <case> (<why>)", and, last, "N passed, N failed, N skipped" on a line
 * of its own.  The output of passing cases is shown only with VTEST_VERBOSE
 * set.
 *
 * Command line (libtest-like, so `cargo test -- FILTER` and cargo-nextest
 * work): FILTER... (substring of the case name "test [fmt]"), --exact,
 * --skip FILTER, --list [--format terse] [--ignored]; other options are
 * accepted and ignored.
 *
 * Environment:
 *   VTEST_TIMEOUT=<seconds>  per-case time limit (default 300, or 1200 under
 *                            valgrind); a case over it is killed and fails
 *   VTEST_SKIP_SLOW=1        skip VT_SLOW tests (counted as skipped)
 *   VTEST_MEM_LIMIT_MB=<MiB> RLIMIT_DATA of each case (default 8192; 0: no
 *                            limit), so that a runaway test fails (kmem_zalloc
 *                            panics "out of memory") instead of waking the
 *                            OOM killer (valgrind emulates the limit for the
 *                            brk heap only, so there it hardly applies)
 *   VTEST_VERBOSE=1          show the output of passing cases (and, through
 *                            kernel.c, echo cmn_err() messages)
 */
#define	_GNU_SOURCE		/* pipe2() */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define	VT_HAVE_VALGRIND_H	1
#endif
#endif

#include "ktest.h"
#include "vtest.h"

bool vtest_reference;
bool vtest_debug;
const char *vtest_format;

/* A death-test child whose function returned exits with this status. */
#define	VT_NO_PANIC_STATUS	117
/* A case's child that skipped (vtest_skip()) exits with this status. */
#define	VT_SKIP_STATUS		77
/* Its last output line then starts with this, followed by the reason. */
#define	VT_SKIP_TAG		"vtest-skip: "

/*
 * Death tests of the current case (in its child): how many were checked
 * (a panic seen, or, for a DEBUG-only check in a non-DEBUG build, the call
 * made in this process for the test to check its results) and how many
 * skipped, with the first reason.  A case that skipped some and checked
 * none is reported as skipped.
 */
static unsigned vt_deaths_checked, vt_deaths_skipped;
static const char *vt_death_skip_why;

/* Keep at most this much of a child's output (the rest is dropped). */
#define	VT_OUTPUT_MAX		(1024 * 1024)

/* ------------------------------------------------------------------ */
/* Registration                                                        */
/* ------------------------------------------------------------------ */

static const vtest_t **vt_tests;
static size_t vt_ntests, vt_cap;

/* Called from constructors, before main(): no output, no failure path. */
void
vtest_register(const vtest_t *t)
{
	if (vt_ntests == vt_cap) {
		size_t ncap = vt_cap == 0 ? 64 : vt_cap * 2;
		const vtest_t **n = realloc(vt_tests, ncap * sizeof (*n));
		if (n == NULL)
			abort();
		vt_tests = n;
		vt_cap = ncap;
	}
	vt_tests[vt_ntests++] = t;
}

static const struct {
	const char		*name;
	const vmm_pte_impl_t	*impl;
} vt_formats[] = {
	{ "ept", &ept_pte_impl },
	{ "rvi", &rvi_pte_impl },
};
#define	VT_NFORMATS	(sizeof (vt_formats) / sizeof (vt_formats[0]))

/* ------------------------------------------------------------------ */
/* Utilities                                                           */
/* ------------------------------------------------------------------ */

typedef struct vt_buf {
	char	*vb_data;
	size_t	vb_len;
	size_t	vb_cap;
	bool	vb_truncated;
} vt_buf_t;

static void
vt_buf_append(vt_buf_t *b, const char *data, size_t len)
{
	if (b->vb_len + len > VT_OUTPUT_MAX) {
		b->vb_truncated = true;
		len = VT_OUTPUT_MAX - b->vb_len;
	}
	if (b->vb_len + len + 1 > b->vb_cap) {
		size_t ncap = b->vb_cap == 0 ? 4096 : b->vb_cap;
		while (ncap < b->vb_len + len + 1)
			ncap *= 2;
		char *n = realloc(b->vb_data, ncap);
		if (n == NULL)
			abort();
		b->vb_data = n;
		b->vb_cap = ncap;
	}
	(void) memcpy(b->vb_data + b->vb_len, data, len);
	b->vb_len += len;
	b->vb_data[b->vb_len] = '\0';
}

static const char *
vt_buf_str(const vt_buf_t *b)
{
	return (b->vb_data != NULL ? b->vb_data : "");
}

static void
vt_buf_free(vt_buf_t *b)
{
	free(b->vb_data);
	(void) memset(b, 0, sizeof (*b));
}

static double
vt_now(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static bool
vt_env_is(const char *name, const char *value)
{
	const char *v = getenv(name);

	return (v != NULL && strcmp(v, value) == 0);
}

/*
 * Whether this process runs under valgrind (the client request is a no-op
 * returning 0 natively; c_unit.rs also sets VMM_GPT_UNDER_VALGRIND=1).
 */
static bool
vt_under_valgrind(void)
{
#ifdef VT_HAVE_VALGRIND_H
	if (RUNNING_ON_VALGRIND)
		return (true);
#endif
	return (vt_env_is("VMM_GPT_UNDER_VALGRIND", "1"));
}

/*
 * Reads a child's output from fd until the child (pid) has exited, or until
 * the deadline (then it is killed).  With own_group, the child leads its own
 * process group and the whole group is killed once the leader is gone, so
 * that no descendant can keep the pipe open (or run on).  Reaps the child;
 * returns its wait status.
 */
static int
vt_collect(pid_t pid, int fd, bool own_group, double timeout, vt_buf_t *out,
    bool *timed_out)
{
	const double deadline = vt_now() + timeout;
	bool eof = false;
	char chunk[4096];

	*timed_out = false;
	(void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

	for (;;) {
		if (!eof) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			(void) poll(&pfd, 1, 100);
			for (;;) {
				ssize_t n = read(fd, chunk, sizeof (chunk));
				if (n > 0) {
					vt_buf_append(out, chunk, (size_t)n);
					continue;
				}
				if (n == 0)
					eof = true;
				else if (errno == EINTR)
					continue;
				break;
			}
		} else {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			(void) nanosleep(&ts, NULL);
		}

		/* Has it exited?  (WNOWAIT: keep the zombie, and its pgid.) */
		siginfo_t si;
		(void) memset(&si, 0, sizeof (si));
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT)
		    == 0 && si.si_pid == pid)
			break;
		if (vt_now() >= deadline) {
			*timed_out = true;
			break;
		}
	}

	if (own_group)
		(void) kill(-pid, SIGKILL);
	if (*timed_out)
		(void) kill(pid, SIGKILL);

	/* Drain what is left; every writer is gone or being killed. */
	const double drain_deadline = vt_now() + 10.0;
	while (!eof && vt_now() < drain_deadline) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		(void) poll(&pfd, 1, 100);
		ssize_t n = read(fd, chunk, sizeof (chunk));
		if (n > 0)
			vt_buf_append(out, chunk, (size_t)n);
		else if (n == 0)
			eof = true;
		else if (errno != EAGAIN && errno != EINTR)
			break;
	}

	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return (status);
}

static void
vt_describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status)) {
		(void) snprintf(buf, len, "exited with status %d",
		    WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		(void) snprintf(buf, len, "killed by signal %d (%s)%s",
		    WTERMSIG(status), strsignal(WTERMSIG(status)),
		    WCOREDUMP(status) ? ", core dumped" : "");
	} else {
		(void) snprintf(buf, len, "wait status 0x%x", status);
	}
}

static const char *
vt_basename(const char *path)
{
	const char *s = strrchr(path, '/');

	return (s != NULL ? s + 1 : path);
}

/* Kill this process if its parent dies (no orphaned test processes). */
static void
vt_die_with_parent(pid_t parent)
{
	(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(125);
}

/* ------------------------------------------------------------------ */
/* Failures and death tests                                            */
/* ------------------------------------------------------------------ */

/* Prints the failure and the cmn_err log to stderr, and ends the process. */
__attribute__((noreturn, format(printf, 2, 0))) static void
vt_vfail(const char *where, const char *fmt, va_list ap)
{
	(void) fflush(stdout);
	(void) fprintf(stderr, "%s: ", where);
	(void) vfprintf(stderr, fmt, ap);
	(void) fputc('\n', stderr);

	/* The kernel log often tells why (e.g. vmm_gpt_init() warnings). */
	const size_t n = ktest_cmn_err_count();
	if (n != 0) {
		(void) fprintf(stderr, "cmn_err log (%zu message%s):\n", n,
		    n == 1 ? "" : "s");
		for (size_t i = 0; i < n; i++) {
			(void) fprintf(stderr, "  [level %d] %s\n",
			    ktest_cmn_err_level(i), ktest_cmn_err_message(i));
		}
	}
	(void) fflush(stderr);
	_exit(1);
}

void
vtest_fail(const char *file, int line, const char *fmt, ...)
{
	char where[512];
	va_list ap;

	(void) snprintf(where, sizeof (where), "%s:%d", file, line);
	va_start(ap, fmt);
	vt_vfail(where, fmt, ap);
}

/* A failure found by the runner in a case's child (not at a test's line). */
__attribute__((noreturn, format(printf, 2, 3))) static void
vt_case_fail(const vtest_t *t, const char *fmt, ...)
{
	char where[512];
	va_list ap;

	(void) snprintf(where, sizeof (where), "%s (%s)", t->vt_name,
	    vt_basename(t->vt_file));
	va_start(ap, fmt);
	vt_vfail(where, fmt, ap);
}

/*
 * valgrind and children that die on purpose.
 *
 * valgrind follows fork(): every test case and death-test child is checked
 * by its own copy of valgrind, which writes its report to the stderr that
 * valgrind started with (it keeps a private duplicate of fd 2, so our dup2()
 * onto fd 2 does not capture it: the report appears on the runner's stderr,
 * tagged ==<pid>==).  A child that exits with errors exits with valgrind's
 * --error-exitcode, which fails the case.  But a child that panics dies of
 * SIGABRT, and then its exit status is that signal whatever valgrind found:
 * valgrind still runs its exit checks (the leak check too) and prints them,
 * but --error-exitcode never shows.  An abort by itself is not an error (with
 * --quiet, valgrind prints nothing for it), and kmem buffers are never
 * "definitely lost" (kernel.c's table references them), so the aborting
 * death-test children do not fail the run by themselves.
 *
 * To still catch memory errors made before a death test's panic, the
 * death-test child counts valgrind's errors (VALGRIND_COUNT_ERRORS, 0 when
 * not under valgrind) from its start to its SIGABRT: a handler (which
 * returns, so abort() goes on to kill the process with SIGABRT as before)
 * writes the count to the captured output, and the death test fails if it
 * is not 0.  Leaks cannot be counted there (valgrind looks for them after
 * the process died); they are the test case's to find, at its own exit.
 */
#define	VT_VG_ERRORS_TAG	"vtest: valgrind errors in the death-test child: "

static unsigned vt_vg_errors_at_start;

static unsigned
vt_valgrind_error_count(void)
{
#ifdef VT_HAVE_VALGRIND_H
	return ((unsigned)VALGRIND_COUNT_ERRORS);
#else
	return (0);
#endif
}

/* SIGABRT handler of death-test children (async-signal-safe). */
static void
vt_death_sigabrt(int sig __attribute__((unused)))
{
	unsigned n = vt_valgrind_error_count() - vt_vg_errors_at_start;
	char buf[128], digits[16];
	size_t len = sizeof (VT_VG_ERRORS_TAG) - 1, nd = 0;

	if (n == 0)
		return;
	(void) memcpy(buf, VT_VG_ERRORS_TAG, len);
	do {
		digits[nd++] = (char)('0' + n % 10);
		n /= 10;
	} while (n != 0);
	while (nd > 0)
		buf[len++] = digits[--nd];
	buf[len++] = '\n';
	(void) !write(STDERR_FILENO, buf, len);
}

/* Counts a death test skipped with this implementation. */
static void
vt_death_skip(const char *why)
{
	if (vt_deaths_skipped++ == 0)
		vt_death_skip_why = why;
}

/* Forks, runs fn(arg) in the child, and checks that it panicked. */
static void vt_expect_panic(const char *file, int line, void (*fn)(void *),
    void *arg, const char *want);

void
vtest_expect_panic_at(const char *file, int line, void (*fn)(void *),
    void *arg, unsigned flags, const char *library_msg,
    const char *reference_msg)
{
	const unsigned known = VT_DEATH_LIBRARY_ONLY |
	    VT_DEATH_LIBRARY_ONLY_NDEBUG;

	if ((flags & VT_DEATH_DEBUG_ONLY) != 0) {
		vtest_fail(file, line, "death test: VT_DEATH_DEBUG_ONLY needs "
		    "VT_EXPECT_DEBUG_PANIC, which makes the caller check the "
		    "non-DEBUG results");
	}
	if ((flags & ~known) != 0 || flags == known) {
		vtest_fail(file, line, "death test: bad flags 0x%x", flags);
	}
	if (vtest_reference && (flags & VT_DEATH_LIBRARY_ONLY) != 0) {
		vt_death_skip("library-only: the original does not panic here; "
		    "the test says what it does");
		return;
	}
	if (vtest_reference && !vtest_debug &&
	    (flags & VT_DEATH_LIBRARY_ONLY_NDEBUG) != 0) {
		vt_death_skip("the non-DEBUG original has only an ASSERT here, "
		    "compiled out, and crashes or corrupts memory instead; the "
		    "test says how");
		return;
	}
	vt_expect_panic(file, line, fn, arg,
	    vtest_reference ? reference_msg : library_msg);
	vt_deaths_checked++;
}

/* Where a DEBUG-only check runs in a non-DEBUG build, for the panic hook. */
static const char *vt_ndebug_file;
static int vt_ndebug_line;

/* Says why a panic in a non-DEBUG build fails the test. */
static void
vt_ndebug_panic_hook(void)
{
	(void) fprintf(stderr, "%s:%d: a non-DEBUG build panicked on a check "
	    "that only DEBUG builds make (the non-DEBUG original goes on "
	    "here)\n", vt_ndebug_file, vt_ndebug_line);
	(void) fflush(stderr);
}

bool
vtest_expect_debug_panic_at(const char *file, int line, void (*fn)(void *),
    void *arg, const char *library_msg, const char *reference_msg)
{
	vt_deaths_checked++;
	if (!vtest_debug) {
		/*
		 * The check is compiled out: the call must return, here,
		 * where a panic fails the test, and the caller checks what
		 * it did.
		 */
		vt_ndebug_file = file;
		vt_ndebug_line = line;
		const ktest_panic_hook_t old =
		    ktest_set_panic_hook(vt_ndebug_panic_hook);
		fn(arg);
		(void) ktest_set_panic_hook(old);
		return (true);
	}
	vt_expect_panic(file, line, fn, arg,
	    vtest_reference ? reference_msg : library_msg);
	return (false);
}

void
vtest_skip(const char *why)
{
	(void) fflush(stdout);
	(void) fprintf(stderr, "\n" VT_SKIP_TAG "%s\n", why);
	(void) fflush(stderr);
	_exit(VT_SKIP_STATUS);
}

static void
vt_expect_panic(const char *file, int line, void (*fn)(void *), void *arg,
    const char *want)
{
	int pfd[2];

	(void) fflush(stdout);
	(void) fflush(stderr);
	if (pipe2(pfd, O_CLOEXEC) != 0)
		vtest_fail(file, line, "death test: pipe: %s", strerror(errno));

	const pid_t parent = getpid();
	const pid_t pid = fork();
	if (pid < 0)
		vtest_fail(file, line, "death test: fork: %s", strerror(errno));
	if (pid == 0) {
		vt_die_with_parent(parent);
		(void) dup2(pfd[1], STDOUT_FILENO);
		(void) dup2(pfd[1], STDERR_FILENO);
		(void) close(pfd[0]);
		(void) close(pfd[1]);
		if (vt_under_valgrind()) {
			struct sigaction sa;
			(void) memset(&sa, 0, sizeof (sa));
			sa.sa_handler = vt_death_sigabrt;
			sa.sa_flags = SA_RESETHAND;
			(void) sigemptyset(&sa.sa_mask);
			vt_vg_errors_at_start = vt_valgrind_error_count();
			(void) sigaction(SIGABRT, &sa, NULL);
		}
		fn(arg);
		(void) fflush(stdout);
		_exit(VT_NO_PANIC_STATUS);
	}
	(void) close(pfd[1]);

	vt_buf_t out = { 0 };
	bool timed_out;
	/* The runner's per-case limit bounds this wait. */
	const int status = vt_collect(pid, pfd[0], false, 1e9, &out,
	    &timed_out);
	(void) close(pfd[0]);

	const char *output = vt_buf_str(&out);
	char why[512] = "";
	if (WIFEXITED(status) && WEXITSTATUS(status) == VT_NO_PANIC_STATUS) {
		(void) snprintf(why, sizeof (why),
		    "returned without panicking");
	} else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
		char st[128];
		vt_describe_status(status, st, sizeof (st));
		(void) snprintf(why, sizeof (why), "%s instead of panicking "
		    "(a kernel panic aborts: SIGABRT)", st);
	} else if (strstr(output, "panic: ") == NULL) {
		(void) snprintf(why, sizeof (why),
		    "aborted without a kernel panic (no \"panic: \" message)");
	} else if (want != NULL && strstr(output, want) == NULL) {
		(void) snprintf(why, sizeof (why), "the panic message does not "
		    "contain \"%s\" (expected for the %s)", want,
		    vtest_reference ? "original" : "library");
	} else if (strstr(output, VT_VG_ERRORS_TAG) != NULL) {
		(void) snprintf(why, sizeof (why), "it panicked as expected, "
		    "but valgrind found errors in the death-test child before "
		    "(its report is on the runner's stderr, ==%ld==)",
		    (long)pid);
	}

	if (why[0] != '\0') {
		vtest_fail(file, line, "death test: %s\n"
		    "--- output of the death-test child%s ---\n%s%s"
		    "--- end of output ---", why,
		    out.vb_truncated ? " (truncated)" : "", output,
		    (out.vb_len > 0 && output[out.vb_len - 1] != '\n') ?
		    "\n" : "");
	}
	vt_buf_free(&out);
}

/* ------------------------------------------------------------------ */
/* Running cases                                                       */
/* ------------------------------------------------------------------ */

typedef struct vt_case {
	const vtest_t	*vc_test;
	int		vc_fmt;		/* index in vt_formats, or -1 */
	char		vc_id[256];	/* "name" or "name [fmt]" */
} vt_case_t;

static int
vt_test_cmp(const void *a, const void *b)
{
	const vtest_t *ta = *(const vtest_t *const *)a;
	const vtest_t *tb = *(const vtest_t *const *)b;
	int c = strcmp(vt_basename(ta->vt_file), vt_basename(tb->vt_file));

	return (c != 0 ? c : strcmp(ta->vt_name, tb->vt_name));
}

/* Decode a stub's jmp: its target, or 0 when it is not a near jmp. */
static uintptr_t
vt_stub_target(void (*stub)(void))
{
	const uint8_t *p = (const uint8_t *)(uintptr_t)stub;
	int32_t off;

	if (p[0] != 0xe9)
		return (0);
	(void) memcpy(&off, p + 1, sizeof (off));
	return ((uintptr_t)(p + KTEST_STUB_LEN) + (uintptr_t)(intptr_t)off);
}

/* The body of a case's child process. */
__attribute__((noreturn)) static void
vt_run_child(const vt_case_t *c)
{
	const vtest_t *t = c->vc_test;
	const vmm_pte_impl_t *impl = NULL;
	const bool per_format = (t->vt_flags & VT_PER_FORMAT) != 0;

	const unsigned vg_start = vt_valgrind_error_count();

	vtest_format = c->vc_fmt >= 0 ? vt_formats[c->vc_fmt].name : NULL;
	if (per_format) {
		impl = vt_formats[c->vc_fmt].impl;
		if (!vmm_gpt_init(impl)) {
			vt_case_fail(t, "the runner's vmm_gpt_init(&%s_pte_impl) "
			    "returned false", vtest_format);
		}
	}

	t->vt_fn(impl);

	if (per_format) {
		vmm_gpt_fini();
		/* fini must have put every stub back. */
		static const struct {
			const char *name;
			void (*stub)(void);
		} stubs[] = {
			{ "vmm_gpti_map_table", vmm_gpti_map_table },
			{ "vmm_gpti_map_page", vmm_gpti_map_page },
			{ "vmm_gpti_parse", vmm_gpti_parse },
		};
		for (size_t i = 0; i < sizeof (stubs) / sizeof (stubs[0]);
		    i++) {
			if (vt_stub_target(stubs[i].stub) !=
			    (uintptr_t)vmm_gpt_impl_panic) {
				vt_case_fail(t, "after the runner's "
				    "vmm_gpt_fini(), %s does not jump to "
				    "vmm_gpt_impl_panic", stubs[i].name);
			}
		}
	}

	kmem_stats_t ks;
	ktest_kmem_stats(&ks);
	if (ks.ks_live_allocs != 0) {
		vt_case_fail(t, "leak: %llu kmem allocation(s) "
		    "(%llu bytes, %llu of PAGESIZE) still live after the test "
		    "(%llu allocations, %llu frees in all)",
		    (unsigned long long)ks.ks_live_allocs,
		    (unsigned long long)ks.ks_live_bytes,
		    (unsigned long long)ks.ks_live_pages,
		    (unsigned long long)ks.ks_total_allocs,
		    (unsigned long long)ks.ks_total_frees);
	}
	const unsigned vg = vt_valgrind_error_count() - vg_start;
	if (vg != 0) {
		vt_case_fail(t, "valgrind found %u error(s) in this case (its "
		    "report is on the runner's stderr, ==%ld==)", vg,
		    (long)getpid());
	}
	if (vt_deaths_skipped > 0 && vt_deaths_checked == 0) {
		/* Every check of this death test was skipped. */
		vtest_skip(vt_death_skip_why);
	}
	(void) fflush(stdout);
	(void) fflush(stderr);
	_exit(0);
}

static void
vt_print_output(const vt_buf_t *out)
{
	const char *p = vt_buf_str(out);

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		const int len = nl != NULL ? (int)(nl - p) : (int)strlen(p);
		(void) printf("    | %.*s\n", len, p);
		p += len + (nl != NULL ? 1 : 0);
	}
	if (out->vb_truncated)
		(void) printf("    | ... (output truncated)\n");
}

/*
 * The reason a skipping child gave (its last VT_SKIP_TAG line, cut at the
 * newline in place), or NULL when there is none.
 */
static const char *
vt_last_skip_reason(vt_buf_t *out)
{
	char *p = out->vb_data, *last = NULL;

	while (p != NULL && (p = strstr(p, VT_SKIP_TAG)) != NULL) {
		last = p + sizeof (VT_SKIP_TAG) - 1;
		p = last;
	}
	if (last == NULL)
		return (NULL);
	char *nl = strchr(last, '\n');
	if (nl != NULL)
		*nl = '\0';
	return (last);
}

typedef enum vt_result {
	VT_PASSED,
	VT_FAILED,
	VT_SKIPPED
} vt_result_t;

/* Runs one case. */
static vt_result_t
vt_run_case(const vt_case_t *c, double timeout, bool verbose,
    unsigned long mem_limit_mb)
{
	vt_buf_t out = { 0 };
	int pfd[2];
	bool timed_out = false;
	char why[512] = "";
	const double start = vt_now();
	int status;

	(void) fflush(stdout);
	(void) fflush(stderr);
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		(void) printf("FAIL %s\n    | pipe: %s\n", c->vc_id,
		    strerror(errno));
		return (VT_FAILED);
	}

	const pid_t parent = getpid();
	const pid_t pid = fork();
	if (pid < 0) {
		(void) printf("FAIL %s\n    | fork: %s\n", c->vc_id,
		    strerror(errno));
		(void) close(pfd[0]);
		(void) close(pfd[1]);
		return (VT_FAILED);
	}
	if (pid == 0) {
		(void) setpgid(0, 0);
		vt_die_with_parent(parent);
		(void) dup2(pfd[1], STDOUT_FILENO);
		(void) dup2(pfd[1], STDERR_FILENO);
		(void) close(pfd[0]);
		(void) close(pfd[1]);
		/* Unbuffered: nothing is lost when the test aborts. */
		(void) setvbuf(stdout, NULL, _IONBF, 0);
		if (mem_limit_mb > 0) {
			const struct rlimit rl = {
				.rlim_cur = (rlim_t)mem_limit_mb << 20,
				.rlim_max = (rlim_t)mem_limit_mb << 20,
			};
			(void) setrlimit(RLIMIT_DATA, &rl);
		}
		vt_run_child(c);
	}
	/* Both sides set the group, so it exists whoever runs first. */
	(void) setpgid(pid, pid);
	(void) close(pfd[1]);

	status = vt_collect(pid, pfd[0], true, timeout, &out, &timed_out);
	(void) close(pfd[0]);

	bool passed = false;
	const char *skip_why = NULL;
	if (timed_out) {
		(void) snprintf(why, sizeof (why),
		    "timed out after %.0f s (VTEST_TIMEOUT), killed", timeout);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		passed = true;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) ==
	    VT_SKIP_STATUS && (skip_why = vt_last_skip_reason(&out)) != NULL) {
		(void) printf("skip %s (%s)\n", c->vc_id, skip_why);
		if (verbose)
			vt_print_output(&out);
		(void) fflush(stdout);
		vt_buf_free(&out);
		return (VT_SKIPPED);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
		(void) snprintf(why, sizeof (why), "a check failed");
	} else {
		char st[128];
		vt_describe_status(status, st, sizeof (st));
		(void) snprintf(why, sizeof (why), "%s%s", st,
		    vt_under_valgrind() && WIFEXITED(status) ?
		    "; under valgrind this is likely its --error-exitcode: "
		    "see its report on stderr" : "");
	}
	if (!passed && vt_under_valgrind()) {
		const size_t l = strlen(why);
		(void) snprintf(why + l, sizeof (why) - l, " (pid %ld)",
		    (long)pid);
	}

	if (passed) {
		if (verbose) {
			(void) printf("ok %s (%.2f s)\n", c->vc_id,
			    vt_now() - start);
			vt_print_output(&out);
		} else {
			(void) printf("ok %s\n", c->vc_id);
		}
	} else {
		(void) printf("FAIL %s\n    | [%s]\n", c->vc_id, why);
		vt_print_output(&out);
	}
	(void) fflush(stdout);
	vt_buf_free(&out);
	return (passed ? VT_PASSED : VT_FAILED);
}

/* ------------------------------------------------------------------ */
/* Main                                                                */
/* ------------------------------------------------------------------ */

static bool
vt_matches(const char *id, char **filters, size_t nfilters, bool exact,
    char **skips, size_t nskips)
{
	for (size_t i = 0; i < nskips; i++) {
		if (strstr(id, skips[i]) != NULL)
			return (false);
	}
	if (nfilters == 0)
		return (true);
	for (size_t i = 0; i < nfilters; i++) {
		if (exact ? strcmp(id, filters[i]) == 0 :
		    strstr(id, filters[i]) != NULL)
			return (true);
	}
	return (false);
}

int
vtest_main(int argc, char **argv, bool reference, bool debug)
{
	char **filters = calloc((size_t)argc + 1, sizeof (char *));
	char **skips = calloc((size_t)argc + 1, sizeof (char *));
	size_t nfilters = 0, nskips = 0;
	bool list = false, exact = false, ignored = false, terse = false;

	vtest_reference = reference;
	vtest_debug = debug;
	if (filters == NULL || skips == NULL)
		abort();

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--list") == 0) {
			list = true;
		} else if (strcmp(a, "--exact") == 0) {
			exact = true;
		} else if (strcmp(a, "--ignored") == 0) {
			ignored = true;
		} else if (strcmp(a, "--skip") == 0 && i + 1 < argc) {
			skips[nskips++] = argv[++i];
		} else if (strcmp(a, "--format") == 0 && i + 1 < argc) {
			terse = strcmp(argv[++i], "terse") == 0;
		} else if ((strcmp(a, "--test-threads") == 0 ||
		    strcmp(a, "--color") == 0 || strcmp(a, "--logfile") == 0 ||
		    strcmp(a, "--shuffle-seed") == 0 || strcmp(a, "-Z") == 0) &&
		    i + 1 < argc) {
			i++;	/* libtest options with a value: ignored */
		} else if (a[0] == '-') {
			/* --nocapture, --quiet, --test-threads=N, ... */
		} else {
			filters[nfilters++] = argv[i];
		}
	}

	/* Expand the tests into cases, in a stable order. */
	if (vt_ntests > 0)
		qsort(vt_tests, vt_ntests, sizeof (vt_tests[0]), vt_test_cmp);
	vt_case_t *cases = calloc(vt_ntests * VT_NFORMATS + 1,
	    sizeof (*cases));
	size_t ncases = 0;
	unsigned bad = 0;
	if (cases == NULL)
		abort();
	for (size_t i = 0; i < vt_ntests; i++) {
		const vtest_t *t = vt_tests[i];
		const unsigned mode = t->vt_flags & (VT_PER_FORMAT | VT_NO_IMPL);
		const unsigned known = VT_PER_FORMAT | VT_NO_IMPL |
		    VT_LIBRARY_ONLY | VT_SLOW | VT_NO_VALGRIND;

		/* Names are the cases' identity: they must be unique. */
		size_t dup = 0;
		while (dup < i && strcmp(vt_tests[dup]->vt_name, t->vt_name))
			dup++;
		if (dup < i) {
			(void) printf("vtest: duplicate test name %s (%s and "
			    "%s)\n", t->vt_name, vt_tests[dup]->vt_file,
			    t->vt_file);
			bad++;
			continue;
		}
		if ((mode != VT_PER_FORMAT && mode != VT_NO_IMPL) ||
		    (t->vt_flags & ~known) != 0) {
			(void) printf("vtest: test %s (%s) has flags 0x%x: it "
			    "needs exactly one of VT_PER_FORMAT and "
			    "VT_NO_IMPL, and no unknown flag\n", t->vt_name,
			    t->vt_file, t->vt_flags);
			bad++;
			continue;
		}
		for (size_t f = 0; f < VT_NFORMATS; f++) {
			vt_case_t *c = &cases[ncases];
			c->vc_test = t;
			if (mode == VT_PER_FORMAT) {
				c->vc_fmt = (int)f;
				(void) snprintf(c->vc_id, sizeof (c->vc_id),
				    "%s [%s]", t->vt_name, vt_formats[f].name);
			} else {
				c->vc_fmt = -1;
				(void) snprintf(c->vc_id, sizeof (c->vc_id),
				    "%s", t->vt_name);
			}
			if (vt_matches(c->vc_id, filters, nfilters, exact,
			    skips, nskips))
				ncases++;
			if (mode == VT_NO_IMPL)
				break;
		}
	}

	if (list) {
		/* libtest's list format, for cargo-nextest. */
		for (size_t i = 0; i < ncases && !ignored; i++)
			(void) printf("%s: test\n", cases[i].vc_id);
		if (!terse) {
			(void) printf("\n%zu tests, 0 benchmarks\n",
			    ignored ? (size_t)0 : ncases);
		}
		(void) fflush(stdout);
		free(cases);
		free(filters);
		free(skips);
		return (bad == 0 ? 0 : 1);
	}

	const bool verbose = getenv("VTEST_VERBOSE") != NULL;
	const bool skip_slow = vt_env_is("VTEST_SKIP_SLOW", "1");
	double timeout = vt_under_valgrind() ? 1200 : 300;
	const char *tenv = getenv("VTEST_TIMEOUT");
	if (tenv != NULL && strtod(tenv, NULL) > 0)
		timeout = strtod(tenv, NULL);
	unsigned long mem_limit_mb = 8192;
	const char *menv = getenv("VTEST_MEM_LIMIT_MB");
	if (menv != NULL)
		mem_limit_mb = strtoul(menv, NULL, 10);

	(void) printf("vtest: %zu case(s) against the %s %s%s\n", ncases,
	    debug ? "DEBUG" : "non-DEBUG",
	    reference ? "original vmm_gpt.c" : "Rust library",
	    vt_under_valgrind() ? ", under valgrind" : "");
	(void) fflush(stdout);

	unsigned passed = 0, failed = bad, skipped = 0;
	const char **failures = calloc(ncases + 1, sizeof (char *));
	size_t nfailures = 0;
	if (failures == NULL)
		abort();
	for (size_t i = 0; i < ncases; i++) {
		const vt_case_t *c = &cases[i];
		const unsigned fl = c->vc_test->vt_flags;

		if (reference && (fl & VT_LIBRARY_ONLY) != 0) {
			(void) printf("skip %s (library only)\n", c->vc_id);
			skipped++;
		} else if (skip_slow && (fl & VT_SLOW) != 0) {
			(void) printf("skip %s (slow; VTEST_SKIP_SLOW=1)\n",
			    c->vc_id);
			skipped++;
		} else if ((fl & VT_NO_VALGRIND) != 0 && vt_under_valgrind()) {
			(void) printf("skip %s (not under valgrind, which runs "
			    "one thread at a time)\n", c->vc_id);
			skipped++;
		} else {
			switch (vt_run_case(c, timeout, verbose,
			    mem_limit_mb)) {
			case VT_PASSED:
				passed++;
				break;
			case VT_SKIPPED:
				skipped++;
				break;
			case VT_FAILED:
				failures[nfailures++] = c->vc_id;
				failed++;
				break;
			}
		}
		(void) fflush(stdout);
	}

	if (nfailures > 0 || bad > 0) {
		(void) printf("\nfailures:\n");
		for (size_t i = 0; i < nfailures; i++)
			(void) printf("    %s\n", failures[i]);
		if (bad > 0)
			(void) printf("    (%u badly declared test(s))\n", bad);
		(void) printf("\n");
	}
	(void) printf("%u passed, %u failed, %u skipped\n", passed, failed,
	    skipped);
	(void) fflush(stdout);

	free(failures);
	free(cases);
	free(filters);
	free(skips);
	return (failed == 0 && passed > 0 ? 0 : 1);
}
