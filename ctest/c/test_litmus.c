/*
 * The litmus test of the accessed/dirty barrier: does marking a page dirty
 * order the page's data before the dirty bit, as the original's
 * atomic_cas_64 (a full barrier on x86) does?
 *
 * vmm_vm.c's vmp_release() marks a page dirty after the page was written:
 *
 *	publisher:  page data word = new;  vmm_gpte_reset_dirty(ptep, true)
 *
 * and a dirty-page scanner (VM_TRACK_DIRTY_PAGES, live migration) takes
 * the dirty bit and then copies the page:
 *
 *	scanner:    r = vmm_gpte_reset_dirty(ptep, false);  if (r) copy = word
 *
 * Each trial starts with the dirty bit already set (the page was dirtied
 * before, e.g. by the guest through the hardware), which is when an
 * implementation that skips the compare-and-swap because the bit already
 * holds the requested value gives the publisher no barrier: on x86 its
 * store of the word can still sit in its store buffer while its plain load
 * of the entry sees the bit set; the scanner then clears the bit and reads
 * the old word.  A lost dirty page: after both threads finished a trial,
 * the dirty bit is clear and the scanner did not copy the new word.  The
 * next scan would not see the page at all, and the copy is stale.
 *
 * The same two threads run three phases, each bounded in time (phase 1
 * fails with a message past its limit; phase 2 stops there; phase 3 stops
 * there and fails only if it lost nothing):
 *
 * 1. LITMUS_TRIALS trials with the implementation linked in as the
 *    publisher, which must lose none.  A correct tree cannot lose a page,
 *    so the only way a correct tree fails this phase is its time limit.
 * 2. The natural control, reported and never judged: a C copy of the old
 *    behaviour (a plain load, no CAS when the bit is already as requested)
 *    as the publisher, in program order (store the word, then look at the
 *    entry), up to LITMUS_NATURAL_TRIALS trials.  Only the CPU's store
 *    buffer can make it lose, within a window of some tens of nanoseconds:
 *    it lost from none to 4% of its trials on the 2-CPU test machine
 *    (docs/race-tests.md), which is why it cannot be a verdict.  Its rate
 *    is the test's power against the real defect, printed for the record.
 * 3. The reordered control, judged: the same old behaviour with its look at
 *    the entry made before its store of the word, and 0 to
 *    LITMUS_WINDOW - 1 pauses between them: exactly the execution the
 *    store buffer allows the natural control, stretched from nanoseconds
 *    to microseconds (a pause takes 10 to 140 cycles, depending on the CPU:
 *    the rates below are the test machine's).  It shows that the scanner
 *    sees, and the judge counts, a publisher whose store of the word
 *    becomes visible after its look at the entry.  It runs until it has
 *    lost LITMUS_CONTROL_ENOUGH pages, for at most LITMUS_CONTROL_LIMIT_S
 *    seconds, and fails only if it lost none; with one CPU, where the loss
 *    cannot happen, it is not run.
 *
 * A correct tree fails this test with probability far below 10^-9 per
 * run (docs/race-tests.md has the numbers of 200 runs of
 * scripts/race-repeat.sh, half of them beside two busy processes):
 *
 * - phase 1 cannot lose a page; its time limit, LITMUS_LIMIT_S (200 s), is
 *   23 times its longest measured duration (8.5 s), and 8 times the
 *   slowest it was ever seen to run (23 s, unpinned, both threads on one
 *   CPU: every trial four futex hand-overs);
 * - phase 3 lost at least 4.4% of its trials in every run, at 34 000
 *   trials a second or more (measured over the milliseconds it took to
 *   lose its 1000, and taken to hold for its limit), so within
 *   LITMUS_CONTROL_LIMIT_S (60 s) it makes 2 x 10^6 trials and loses none
 *   with probability (1 - 0.044)^(2 x 10^6), about e^-91000; were the
 *   trials correlated over a whole scheduler time slice (4 ms), the 15 000
 *   slices of its limit would still give e^-670.
 *
 * The case's phases are bounded by 200 + 5 + 60 s, below the runner's
 * 300 s (VTEST_TIMEOUT).  VTEST_VERBOSE=1 shows the numbers of each run.
 * Kept out of the valgrind run, which runs one thread at a time.
 */

#define	_GNU_SOURCE		/* sched_getaffinity(), CPU_COUNT() */

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

#define	LITMUS_TRIALS		1000000ULL
#define	LITMUS_NATURAL_TRIALS	100000ULL
/* The reordered control stops once it lost this many. */
#define	LITMUS_CONTROL_ENOUGH	1000ULL
/*
 * Time limits (the measured times are above): the natural control stops at
 * its limit without a verdict; the reordered control reaches its losses in
 * milliseconds.  The runner's limit for the whole case (VTEST_TIMEOUT,
 * 300 s) is above their sum.
 */
#define	LITMUS_LIMIT_S		200.0
#define	LITMUS_NATURAL_LIMIT_S	5.0
#define	LITMUS_CONTROL_LIMIT_S	60.0
/* Each side's start moves by up to LITMUS_JITTER - 1 pauses (random). */
#define	LITMUS_JITTER		2u
/* The reordered control's window: 0 to LITMUS_WINDOW - 1 pauses. */
#define	LITMUS_WINDOW		64u

/* Who publishes: the implementation, or one of the two controls. */
typedef enum litmus_mode {
	LM_IMPL,
	LM_NATURAL,
	LM_REORDERED
} litmus_mode_t;

typedef bool (*reset_fn_t)(vmm_gpt_entry_t *, bool);

typedef struct litmus {
	vmm_gpt_entry_t	*lm_ptep;	/* a mapped leaf entry */
	uint64_t	lm_dirty;	/* the format's dirty bit */
	reset_fn_t	lm_reset;	/* the reset_dirty under test */
	litmus_mode_t	lm_mode;	/* who publishes */
	uint64_t	lm_trials;
	uint64_t	lm_enough;	/* losses to stop at (0: none) */
	double		lm_limit_s;	/* time limit */
	/* The page's data word, on a cache line of its own. */
	uint64_t	lm_word __attribute__((aligned(64)));
	/*
	 * The barrier: arrivals (2 per phase, 2 phases per trial; 32 bits,
	 * for futex()), threads asleep in it, and the abort flag.
	 */
	uint32_t	lm_arrived __attribute__((aligned(64)));
	uint32_t	lm_sleepers;
	int		lm_abort;
	/* Results. */
	uint64_t	lm_done;	/* trials completed */
	uint64_t	lm_lost;
	uint64_t	lm_first_lost;	/* trial of the first loss, or 0 */
	double		lm_seconds;
} litmus_t;

static double
now_s(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static inline void
cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static void
futex_wait(uint32_t *addr, uint32_t val)
{
	const struct timespec ts = { 0, 10 * 1000 * 1000 };

	(void) syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void
futex_wake(uint32_t *addr)
{
	(void) syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL,
	    NULL, 0);
}

/*
 * Arrives at barrier `phase` (1-based: trial t has phases 2t - 1, before
 * the operations, and 2t, after them) and waits for the other thread;
 * false when the run was aborted.  It spins (so that both threads leave it
 * together, on two CPUs), and after a while sleeps until the other thread
 * arrives: on a machine with other work the CPU then goes to the other
 * thread, or to that work, rather than to spinning.
 */
static bool
barrier(litmus_t *lm, uint64_t phase)
{
	const uint32_t want = (uint32_t)(2 * phase);
	uint32_t v;

	v = __atomic_add_fetch(&lm->lm_arrived, 1, __ATOMIC_SEQ_CST);
	if (v >= want) {
		if (__atomic_load_n(&lm->lm_sleepers, __ATOMIC_SEQ_CST) != 0)
			futex_wake(&lm->lm_arrived);
		return (true);
	}
	for (unsigned spins = 0; spins < 1000; spins++) {
		if (__atomic_load_n(&lm->lm_arrived, __ATOMIC_ACQUIRE) >= want)
			return (true);
		cpu_pause();
	}
	(void) __atomic_add_fetch(&lm->lm_sleepers, 1, __ATOMIC_SEQ_CST);
	while ((v = __atomic_load_n(&lm->lm_arrived, __ATOMIC_SEQ_CST)) <
	    want) {
		if (__atomic_load_n(&lm->lm_abort, __ATOMIC_RELAXED)) {
			(void) __atomic_sub_fetch(&lm->lm_sleepers, 1,
			    __ATOMIC_SEQ_CST);
			return (false);
		}
		futex_wait(&lm->lm_arrived, v);
	}
	(void) __atomic_sub_fetch(&lm->lm_sleepers, 1, __ATOMIC_SEQ_CST);
	return (true);
}

/*
 * Moves this side's start by 0 or 1 pause (random): measured on the 2-CPU
 * test machine, this spread makes the control lose the most (wider ones,
 * in pauses or in plain loop steps, let the two sides miss each other).
 */
static inline void
jitter(uint64_t *rng)
{
	for (unsigned n = (unsigned)(rng_next(rng) >> 40) % LITMUS_JITTER;
	    n > 0; n--)
		cpu_pause();
}

/*
 * The reordered control's publisher (phase 3): the old behaviour's look at
 * the entry (a plain load; no CAS when the bit is already set) made first,
 * then a window of 0 to LITMUS_WINDOW - 1 pauses, then the store of the
 * word: what a store buffer does to the old behaviour, stretched.
 */
static void
publish_reordered(litmus_t *lm, uint64_t t, uint64_t *rng)
{
	const uint64_t pte = __atomic_load_n(lm->lm_ptep, __ATOMIC_ACQUIRE);

	for (unsigned n = (unsigned)(rng_next(rng) >> 40) % LITMUS_WINDOW;
	    n > 0; n--)
		cpu_pause();
	__atomic_store_n(&lm->lm_word, t, __ATOMIC_RELAXED);
	if ((pte & lm->lm_dirty) == 0) {
		(void) __atomic_fetch_or(lm->lm_ptep, lm->lm_dirty,
		    __ATOMIC_SEQ_CST);
	}
}

/* The publisher: write the word, then mark the page dirty. */
static void *
publisher(void *arg)
{
	litmus_t *lm = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;

	for (uint64_t t = 1; t <= lm->lm_trials; t++) {
		if (!barrier(lm, 2 * t - 1))
			break;
		jitter(&rng);
		if (lm->lm_mode == LM_REORDERED) {
			publish_reordered(lm, t, &rng);
		} else {
			__atomic_store_n(&lm->lm_word, t, __ATOMIC_RELAXED);
			(void) lm->lm_reset(lm->lm_ptep, true);
		}
		/* The scanner judges the trial after this barrier. */
		if (!barrier(lm, 2 * t))
			break;
	}
	return (NULL);
}

/*
 * The scanner, which also sets each trial up (the word old, the dirty bit
 * set, as hardware sets it) and judges it once both are done.  It takes
 * the bit with the implementation's vmm_gpte_reset_dirty(ptep, false) in
 * every phase: only the publisher differs.
 */
static void *
scanner(void *arg)
{
	litmus_t *lm = arg;
	uint64_t rng = 0x2545f4914f6cdd1dULL;
	const double start = now_s();

	for (uint64_t t = 1; t <= lm->lm_trials; t++) {
		uint64_t copy = 0;

		__atomic_store_n(&lm->lm_word, 0, __ATOMIC_RELAXED);
		(void) __atomic_fetch_or(lm->lm_ptep, lm->lm_dirty,
		    __ATOMIC_SEQ_CST);
		if (!barrier(lm, 2 * t - 1))
			break;
		jitter(&rng);
		if (vmm_gpte_reset_dirty(lm->lm_ptep, false))
			copy = __atomic_load_n(&lm->lm_word, __ATOMIC_RELAXED);
		if (!barrier(lm, 2 * t))
			break;

		const uint64_t pte = __atomic_load_n(lm->lm_ptep,
		    __ATOMIC_SEQ_CST);
		if ((pte & lm->lm_dirty) == 0 && copy != t) {
			if (lm->lm_lost++ == 0)
				lm->lm_first_lost = t;
		}
		lm->lm_done = t;
		if ((lm->lm_enough != 0 && lm->lm_lost >= lm->lm_enough) ||
		    ((t & 4095) == 0 && now_s() - start > lm->lm_limit_s)) {
			__atomic_store_n(&lm->lm_abort, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	lm->lm_seconds = now_s() - start;
	return (NULL);
}

/* CPUs this process may run on. */
static int
cpus_available(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof (set), &set) != 0)
		return (1);
	return (CPU_COUNT(&set));
}

/*
 * Pins the two threads to two different CPUs of this process's set (when
 * it has two): each then shares its CPU with other work at most, never
 * with the other thread, so that every trial has the two sides run at
 * once, as on the two CPUs of a kernel, rather than hand over through
 * futex sleeps.  Unpinned, beside two busy processes, phase 1 took from 1
 * to 23 s (as the scheduler put both threads on one CPU or not); pinned,
 * at most 8.5 s in 200 runs (1.4 s on average).
 */
static void
pin_pair(pthread_t a, pthread_t b)
{
	cpu_set_t set, one;
	int cpus[2], n = 0;

	if (sched_getaffinity(0, sizeof (set), &set) != 0)
		return;
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++) {
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	}
	if (n < 2)
		return;
	CPU_ZERO(&one);
	CPU_SET(cpus[0], &one);
	(void) pthread_setaffinity_np(a, sizeof (one), &one);
	CPU_ZERO(&one);
	CPU_SET(cpus[1], &one);
	(void) pthread_setaffinity_np(b, sizeof (one), &one);
}

/*
 * Runs `trials` trials of the publisher `mode` (with `reset` for LM_IMPL
 * and LM_NATURAL) on `ptep`, in two threads, stopping early after `enough`
 * losses (unless 0) or after `limit_s` seconds.
 */
static void
run_litmus(litmus_t *lm, vmm_gpt_entry_t *ptep, uint64_t dirty,
    litmus_mode_t mode, reset_fn_t reset, uint64_t trials, uint64_t enough,
    double limit_s)
{
	pthread_t tp, ts;

	lm->lm_ptep = ptep;
	lm->lm_dirty = dirty;
	lm->lm_mode = mode;
	lm->lm_reset = reset;
	lm->lm_trials = trials;
	lm->lm_enough = enough;
	lm->lm_limit_s = limit_s;
	__atomic_store_n(&lm->lm_word, 0, __ATOMIC_RELAXED);
	lm->lm_arrived = 0;
	lm->lm_sleepers = 0;
	lm->lm_abort = 0;
	lm->lm_done = lm->lm_lost = lm->lm_first_lost = 0;
	VT_CHECK_EQ(pthread_create(&tp, NULL, publisher, lm), 0);
	VT_CHECK_EQ(pthread_create(&ts, NULL, scanner, lm), 0);
	pin_pair(tp, ts);
	VT_CHECK_EQ(pthread_join(ts, NULL), 0);
	VT_CHECK_EQ(pthread_join(tp, NULL), 0);
}

/*
 * The old behaviour, for the control: a plain load, and no CAS at all when
 * the bit already holds the requested value.  Not inlined, so that the
 * compiler cannot move the caller's store of the word past its load: only
 * the CPU's store buffer can.
 */
static uint64_t control_dirty_bit;

__attribute__((noinline)) static bool
control_reset_dirty(vmm_gpt_entry_t *ptep, bool on)
{
	const uint64_t bit = control_dirty_bit;
	uint64_t pte = __atomic_load_n(ptep, __ATOMIC_ACQUIRE);

	if (((pte & bit) != 0) == on)
		return ((pte & bit) != 0);
	while (!__atomic_compare_exchange_n(ptep, &pte,
	    on ? (pte | bit) : (pte & ~bit), false, __ATOMIC_SEQ_CST,
	    __ATOMIC_SEQ_CST))
		;
	return ((pte & bit) != 0);
}

VTEST(litmus_reset_dirty_publish_vs_scan, VT_PER_FORMAT | VT_NO_VALGRIND)
{
	static litmus_t lm;
	const uint64_t gpa = 0x40000000ULL + 0x7000;
	const uint64_t dirty = impl->vpi_bit_dirty;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	vmm_gpt_populate_region(gpt, gpa, TU_PAGE);
	vmm_gpt_entry_t *ptep = tu_leaf(gpt, gpa);
	VT_CHECK(vmm_gpt_map_at(gpt, ptep, TU_PFN_FOR(gpa), TU_PROT_RWX,
	    KTEST_MTRR_WB));
	const vmm_gpt_entry_t mapped = *ptep;

	/* 1. The implementation under test. */
	run_litmus(&lm, ptep, dirty, LM_IMPL, vmm_gpte_reset_dirty,
	    LITMUS_TRIALS, 0, LITMUS_LIMIT_S);
	(void) printf("litmus: %s %s, %s: %llu trials in %.2f s, %llu lost "
	    "dirty pages\n", vtest_debug ? "DEBUG" : "non-DEBUG",
	    vtest_reference ? "original" : "library", vtest_format,
	    (unsigned long long)lm.lm_done, lm.lm_seconds,
	    (unsigned long long)lm.lm_lost);
	if (lm.lm_done != LITMUS_TRIALS) {
		vtest_fail(__FILE__, __LINE__, "litmus: only %llu of %llu "
		    "trials in %.0f s (the limit): is the machine that busy?",
		    (unsigned long long)lm.lm_done, LITMUS_TRIALS,
		    LITMUS_LIMIT_S);
	}
	if (lm.lm_lost != 0) {
		vtest_fail(__FILE__, __LINE__, "litmus: %llu of %llu trials "
		    "lost a dirty page (the first: trial %llu): marking a page "
		    "dirty that is already dirty must still be a full barrier, "
		    "as the original's atomic_cas_64",
		    (unsigned long long)lm.lm_lost, LITMUS_TRIALS,
		    (unsigned long long)lm.lm_first_lost);
	}
	/* Nothing but the dirty bit ever changed. */
	VT_CHECK_EQ(*ptep & ~dirty, mapped & ~dirty);

	/* 2. The natural control: its rate is printed, never judged. */
	control_dirty_bit = dirty;
	run_litmus(&lm, ptep, dirty, LM_NATURAL, control_reset_dirty,
	    LITMUS_NATURAL_TRIALS, 0, LITMUS_NATURAL_LIMIT_S);
	(void) printf("litmus: natural control (no CAS when the bit is already "
	    "as requested; not judged), %s: %llu trials in %.2f s, %llu lost "
	    "dirty pages (%.4f%%)\n", vtest_format,
	    (unsigned long long)lm.lm_done, lm.lm_seconds,
	    (unsigned long long)lm.lm_lost,
	    100.0 * (double)lm.lm_lost / (double)(lm.lm_done ? lm.lm_done : 1));
	VT_CHECK_EQ(*ptep & ~dirty, mapped & ~dirty);

	/*
	 * 3. The reordered control: the harness sees the loss it is for (with
	 * two CPUs to run on: with one it cannot, and is not run).  Bounded by
	 * time and losses; its trial count only keeps the barrier's 32-bit
	 * arrival count from wrapping (4 per trial).
	 */
	if (cpus_available() < 2) {
		(void) printf("litmus: reordered control: one CPU, where the loss "
		    "cannot happen: not run\n");
		goto done;
	}
	run_litmus(&lm, ptep, dirty, LM_REORDERED, NULL, 1ULL << 30,
	    LITMUS_CONTROL_ENOUGH, LITMUS_CONTROL_LIMIT_S);
	(void) printf("litmus: reordered control (look at the entry, 0-%u "
	    "pauses, store the word), %s: %llu trials in %.3f s, %llu lost "
	    "dirty pages (%.2f%%), on %d CPUs\n", LITMUS_WINDOW - 1,
	    vtest_format, (unsigned long long)lm.lm_done, lm.lm_seconds,
	    (unsigned long long)lm.lm_lost,
	    100.0 * (double)lm.lm_lost / (double)(lm.lm_done ? lm.lm_done : 1),
	    cpus_available());
	if (lm.lm_lost == 0) {
		vtest_fail(__FILE__, __LINE__, "litmus control: the reordered "
		    "publisher lost no dirty page in %llu trials (%.0f s) on %d "
		    "CPUs: the harness cannot see the loss it is for",
		    (unsigned long long)lm.lm_done, lm.lm_seconds,
		    cpus_available());
	}
	VT_CHECK_EQ(*ptep & ~dirty, mapped & ~dirty);

done:
	VT_CHECK(vmm_gpt_unmap(gpt, gpa));
	vmm_gpt_vacate_region(gpt, gpa, TU_PAGE);
	vmm_gpt_free(gpt);
}
