/*
 * Concurrency stress tests, for what the kernel does concurrently with the
 * GPT (docs/consumer.md, "The calls"):
 *
 * - vCPU page faults on the same pages race to vmm_gpt_walk(LEVEL1) and
 *   vmm_gpt_map_at(): exactly one map may win per entry, all see the same
 *   page, and no mapping is lost;
 * - hardware sets accessed/dirty bits in leaf entries (atomically, as the
 *   page walker does) while the kernel queries and resets them: no A/D
 *   event set between two resets may be lost or reported twice, and no
 *   other bit of an entry may ever change.
 *
 * Each racing phase runs for STRESS_NS; the A/D race then goes on until
 * the race has demonstrably happened (AD_MIN_* operations and events), up
 * to STRESS_MAX_NS from its start.  No verdict depends on the
 * interleaving: the map race's checks hold for every interleaving of
 * correct code, and the A/D race's activity floors are waited for, not
 * sampled, so a correct tree fails only if its threads make fewer than
 * 1000 operations, 100 A/D events or 10 mixed access events in
 * STRESS_MAX_NS.  Beside two busy processes they made at least 1.2 x 10^6
 * operations of each kind, 135 000 A/D events and 64 mixed access events
 * in the first 200 ms (docs/race-tests.md).
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vtest.h"
#include "ktest.h"
#include "tutil.h"

#define	T_PAGE		0x1000ul
#define	T_2M		0x200000ul
#define	T_1G		0x40000000ul

#define	T_PROT_READ	1
#define	T_PROT_WRITE	2
#define	T_PROT_EXEC	4

/*
 * Wall-clock budget of each racing phase, per format: 600 ms, or
 * VTEST_STRESS_MS (scripts/race-repeat.sh runs them for 200 ms: fewer map
 * rounds, and the A/D race's floors then rest more on the wait).
 */
#define	STRESS_NS	stress_ns()
/* The A/D race's limit while it waits for its activity floors. */
#define	STRESS_MAX_NS	(120ull * 1000 * 1000 * 1000)

static uint64_t
now_ns(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
}

/* VTEST_STRESS_MS: 1 to 600000 ms; unset, 600 ms; anything else fails. */
static uint64_t
stress_ns(void)
{
	const char *ms = getenv("VTEST_STRESS_MS");
	char *end;

	if (ms == NULL)
		return (600ull * 1000 * 1000);
	const unsigned long long v = strtoull(ms, &end, 10);
	if (*ms < '0' || *ms > '9' || *end != '\0' || v == 0 || v > 600000) {
		vtest_fail(__FILE__, __LINE__, "VTEST_STRESS_MS=%s: not a "
		    "number of milliseconds from 1 to 600000", ms);
	}
	return ((uint64_t)v * 1000 * 1000);
}

static void
start_threads(pthread_t *tids, int n, void *(*fn)(void *), void *args,
    size_t argsz)
{
	for (int i = 0; i < n; i++) {
		VT_CHECK_EQ(pthread_create(&tids[i], NULL, fn,
		    (char *)args + i * argsz), 0);
	}
}

static void
join_threads(pthread_t *tids, int n)
{
	for (int i = 0; i < n; i++)
		VT_CHECK_EQ(pthread_join(tids[i], NULL), 0);
}

/*
 * Map race.
 *
 * The region straddles a 1 GiB boundary, so it spans leaf tables under two
 * different LEVEL2 tables.  Each round, every mapper thread walks to each
 * page and maps it with the round's PFN (the same for all threads, as for
 * vCPUs faulting on the same guest page); an iterator thread reads the
 * entries meanwhile.  Between rounds the main thread checks the outcome and
 * unmaps everything.
 */
#define	MR_MAPPERS	6
#define	MR_BASE		(T_1G - T_2M)
#define	MR_PAGES	1024u			/* 4 MiB, two leaf tables */
#define	MR_MAX_ROUNDS	20000u

typedef struct map_race {
	vmm_gpt_t		*mr_gpt;
	const vmm_pte_impl_t	*mr_impl;
	pthread_barrier_t	mr_start;
	pthread_barrier_t	mr_done;
	uint32_t		mr_round;	/* set by main before start */
	int			mr_stop;	/* set by main before start */
	uint32_t		mr_wins[MR_PAGES];
	uint64_t		mr_losses;
	uint64_t		mr_iter_passes;
} map_race_t;

typedef struct mr_thread {
	map_race_t	*mt_mr;
	int		mt_id;
} mr_thread_t;

static pfn_t
mr_pfn(uint32_t round, uint32_t page)
{
	return (0x100000ul + (pfn_t)round * 0x1000ul + page);
}

static uint_t
mr_prot(uint32_t round)
{
	static const uint_t prots[] = {
		T_PROT_READ | T_PROT_WRITE | T_PROT_EXEC,
		T_PROT_READ | T_PROT_WRITE,
		T_PROT_READ,
		T_PROT_READ | T_PROT_EXEC,
	};
	return (prots[round % 4]);
}

static uint8_t
mr_attr(uint32_t round)
{
	return ((round & 4) ? KTEST_MTRR_UC : KTEST_MTRR_WB);
}

/* The protection the format reads back for a PTE it made with `prot`. */
static uint_t
parsed_prot(const vmm_pte_impl_t *impl, uint_t prot, uint8_t attr)
{
	pfn_t pfn;
	uint_t p = 0;

	VT_CHECK(impl->vpi_pte_parse(impl->vpi_map_page(0x1234, prot, attr),
	    &pfn, &p));
	return (p);
}

static void
mr_map_all(map_race_t *mr, int id, uint32_t round)
{
	const uint_t prot = mr_prot(round);
	const uint8_t attr = mr_attr(round);
	const uint_t want_prot = parsed_prot(mr->mr_impl, prot, attr);
	uint64_t losses = 0;

	for (uint32_t i = 0; i < MR_PAGES; i++) {
		/*
		 * Most threads go up, the odd ones down, so that every entry
		 * sees racing CAS from several sides.
		 */
		const uint32_t page = (id & 1) ? MR_PAGES - 1 - i : i;
		const uint64_t gpa = MR_BASE + (uint64_t)page * T_PAGE;
		const pfn_t want = mr_pfn(round, page);
		vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];
		pfn_t pfn = 0;
		uint_t gprot = 0;

		VT_CHECK_EQ(vmm_gpt_walk(mr->mr_gpt, gpa, entries, LEVEL1),
		    gpa);
		VT_CHECK_NOT_NULL(entries[LEVEL1]);
		if (vmm_gpt_map_at(mr->mr_gpt, entries[LEVEL1], want, prot,
		    attr)) {
			__atomic_fetch_add(&mr->mr_wins[page], 1,
			    __ATOMIC_RELAXED);
		} else {
			losses++;
		}

		/* Won or lost, the entry now maps the page, as asked. */
		VT_CHECK(vmm_gpte_is_mapped(entries[LEVEL1], &pfn, &gprot));
		VT_CHECK_EQ(pfn, want);
		VT_CHECK_EQ(gprot, want_prot);
	}
	__atomic_fetch_add(&mr->mr_losses, losses, __ATOMIC_RELAXED);
}

/*
 * Iterate the region while it is being mapped: the iterator yields every
 * leaf entry in order, each either empty or mapping this round's page.
 */
static void
mr_iterate(map_race_t *mr, uint32_t round)
{
	for (int pass = 0; pass < 3; pass++) {
		vmm_gpt_iter_t iter;
		vmm_gpt_iter_entry_t entry;
		uint32_t n = 0;

		vmm_gpt_iter_init(&iter, mr->mr_gpt, MR_BASE,
		    (uint64_t)MR_PAGES * T_PAGE);
		while (vmm_gpt_iter_next(&iter, &entry)) {
			pfn_t pfn = 0;

			VT_CHECK(n < MR_PAGES);
			VT_CHECK_EQ(entry.vgie_gpa, MR_BASE + n * T_PAGE);
			VT_CHECK_NOT_NULL(entry.vgie_ptep);
			if (vmm_gpte_is_mapped(entry.vgie_ptep, &pfn, NULL))
				VT_CHECK_EQ(pfn, mr_pfn(round, n));
			n++;
		}
		VT_CHECK_EQ(n, MR_PAGES);
		__atomic_fetch_add(&mr->mr_iter_passes, 1, __ATOMIC_RELAXED);
	}
}

static void *
mr_thread(void *arg)
{
	mr_thread_t *mt = arg;
	map_race_t *mr = mt->mt_mr;

	for (;;) {
		(void) pthread_barrier_wait(&mr->mr_start);
		if (mr->mr_stop)
			break;
		const uint32_t round = mr->mr_round;
		if (mt->mt_id == MR_MAPPERS)
			mr_iterate(mr, round);
		else
			mr_map_all(mr, mt->mt_id, round);
		(void) pthread_barrier_wait(&mr->mr_done);
	}
	return (NULL);
}

VTEST(stress_map_race, VT_PER_FORMAT | VT_SLOW)
{
	static map_race_t mr;
	mr_thread_t args[MR_MAPPERS + 1];
	pthread_t tids[MR_MAPPERS + 1];
	const uint64_t len = (uint64_t)MR_PAGES * T_PAGE;

	(void) memset(&mr, 0, sizeof (mr));
	mr.mr_gpt = vmm_gpt_alloc();
	mr.mr_impl = impl;
	vmm_gpt_populate_region(mr.mr_gpt, MR_BASE, len);
	VT_CHECK_EQ(pthread_barrier_init(&mr.mr_start, NULL, MR_MAPPERS + 2),
	    0);
	VT_CHECK_EQ(pthread_barrier_init(&mr.mr_done, NULL, MR_MAPPERS + 2),
	    0);
	for (int i = 0; i <= MR_MAPPERS; i++) {
		args[i].mt_mr = &mr;
		args[i].mt_id = i;
	}
	start_threads(tids, MR_MAPPERS + 1, mr_thread, args, sizeof (args[0]));

	const uint64_t t0 = now_ns();
	uint32_t round;
	for (round = 0; round < MR_MAX_ROUNDS && now_ns() - t0 < STRESS_NS;
	    round++) {
		(void) memset(mr.mr_wins, 0, sizeof (mr.mr_wins));
		mr.mr_round = round;
		(void) pthread_barrier_wait(&mr.mr_start);
		(void) pthread_barrier_wait(&mr.mr_done);

		/*
		 * Exactly one map_at won each entry, and the entry holds
		 * exactly the PTE the format makes for that page.
		 */
		for (uint32_t page = 0; page < MR_PAGES; page++) {
			const uint64_t gpa = MR_BASE + (uint64_t)page * T_PAGE;
			vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];

			if (mr.mr_wins[page] != 1) {
				vtest_fail(__FILE__, __LINE__, "round %u: page "
				    "0x%lx mapped by %u winners", round,
				    (unsigned long)gpa, mr.mr_wins[page]);
			}
			(void) vmm_gpt_walk(mr.mr_gpt, gpa, entries, LEVEL1);
			VT_CHECK_EQ(*entries[LEVEL1],
			    impl->vpi_map_page(mr_pfn(round, page),
			    mr_prot(round), mr_attr(round)));
		}
		VT_CHECK_EQ(vmm_gpt_unmap_region(mr.mr_gpt, MR_BASE, len),
		    MR_PAGES);
	}

	mr.mr_stop = 1;
	(void) pthread_barrier_wait(&mr.mr_start);
	join_threads(tids, MR_MAPPERS + 1);

	/* Every round had MR_MAPPERS - 1 losers per page. */
	VT_CHECK(round > 0);
	VT_CHECK_EQ(mr.mr_losses,
	    (uint64_t)round * MR_PAGES * (MR_MAPPERS - 1));
	VT_CHECK_EQ(mr.mr_iter_passes, (uint64_t)round * 3);
	(void) printf("%u rounds, %lu lost map races\n", round,
	    (unsigned long)mr.mr_losses);

	(void) pthread_barrier_destroy(&mr.mr_start);
	(void) pthread_barrier_destroy(&mr.mr_done);
	vmm_gpt_vacate_region(mr.mr_gpt, MR_BASE, len);
	vmm_gpt_free(mr.mr_gpt);
}

/*
 * A/D race.
 *
 * Pages of one leaf table, in three groups, each with a precise invariant:
 *
 * - dirty pages: "hardware" ORs in A (a read) or A|D (a write); software
 *   calls reset_dirty(false), reset_dirty(true) and the queries.  A dirty
 *   event is a transition of D from clear to set: by a hardware OR whose
 *   returned old value lacked D, or by a reset_dirty(true) that returned
 *   false.  Every event is consumed by exactly one reset_dirty(false) that
 *   returns true: sets == resets per page.
 * - accessed pages: hardware ORs in A only; software calls
 *   reset_accessed(false/true) and the queries.  Accessed events count the
 *   same way, and D must never appear on these pages.
 * - mixed pages: hardware ORs in A or A|D; software calls reset_dirty(false)
 *   and reset_accessed(false), which clears both bits.  An access event is
 *   A|D going from all clear to not; only reset_accessed consumes those, so
 *   they balance exactly, and D is never set without A.  The dirty resets
 *   can only be fewer than the dirty sets (reset_accessed eats some).
 *
 * In all groups, every bit other than A and D stays as mapped.
 */
#define	AD_GROUP	8
#define	AD_PAGES	(3 * AD_GROUP)
#define	AD_HW		3
#define	AD_SW		3
#define	AD_BASE		(2 * T_1G + 7 * T_2M)
/* Activity floors: the race really happened. */
#define	AD_MIN_OPS	1000u		/* per kind of thread, in all */
#define	AD_MIN_SETS	100u		/* A or D events, dirty/accessed */
#define	AD_MIN_ACC	10u		/* access events, mixed pages */
/* Threads publish their operation counts this often. */
#define	AD_PUBLISH	256u

enum { AD_DIRTY = 0, AD_ACCESSED = 1, AD_MIXED = 2 };

typedef struct ad_race {
	vmm_gpt_entry_t		*ad_ptep[AD_PAGES];
	uint64_t		ad_base[AD_PAGES];	/* the PTE as mapped */
	uint64_t		ad_a;			/* accessed bit */
	uint64_t		ad_d;			/* dirty bit */
	int			ad_stop;
	uint64_t		ad_sets[AD_PAGES];	/* D (A for accessed) */
	uint64_t		ad_resets[AD_PAGES];
	uint64_t		ad_acc_sets[AD_PAGES];	/* mixed: A|D events */
	uint64_t		ad_acc_resets[AD_PAGES];
	uint64_t		ad_hw_ops;
	uint64_t		ad_sw_ops;
} ad_race_t;

typedef struct ad_thread {
	ad_race_t	*at_ad;
	uint64_t	at_seed;
} ad_thread_t;

static int
ad_group(uint32_t page)
{
	return (page / AD_GROUP);
}

static void
inc(uint64_t *p)
{
	__atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
}

/* Every bit other than A and D is as mapped. */
static void
ad_check_stable(const ad_race_t *ad, uint32_t page, uint64_t pte)
{
	const uint64_t ad_bits = ad->ad_a | ad->ad_d;

	if ((pte & ~ad_bits) != ad->ad_base[page]) {
		vtest_fail(__FILE__, __LINE__, "page %u: PTE 0x%lx, non-A/D "
		    "bits changed from 0x%lx", page, (unsigned long)pte,
		    (unsigned long)ad->ad_base[page]);
	}
	/* D without A on a mixed page, or D at all on an accessed page. */
	if (ad_group(page) == AD_ACCESSED && (pte & ad->ad_d) != 0) {
		vtest_fail(__FILE__, __LINE__, "page %u: dirty bit appeared "
		    "on a page nothing dirties (PTE 0x%lx)", page,
		    (unsigned long)pte);
	}
	if (ad_group(page) == AD_MIXED && (pte & ad_bits) == ad->ad_d) {
		vtest_fail(__FILE__, __LINE__, "page %u: dirty without "
		    "accessed (PTE 0x%lx)", page, (unsigned long)pte);
	}
}

/*
 * Whether the race has demonstrably happened so far: enough operations of
 * each kind of thread, set events on the dirty and accessed pages, and
 * access events on the mixed pages (the counters as they stand, read while
 * the threads run).
 */
static bool
ad_floors_met(ad_race_t *ad)
{
	uint64_t sets = 0, acc = 0;

	for (uint32_t page = 0; page < AD_PAGES; page++) {
		if (ad_group(page) == AD_MIXED) {
			acc += __atomic_load_n(&ad->ad_acc_sets[page],
			    __ATOMIC_RELAXED);
		} else {
			sets += __atomic_load_n(&ad->ad_sets[page],
			    __ATOMIC_RELAXED);
		}
	}
	return (__atomic_load_n(&ad->ad_hw_ops, __ATOMIC_RELAXED) >
	    AD_MIN_OPS &&
	    __atomic_load_n(&ad->ad_sw_ops, __ATOMIC_RELAXED) > AD_MIN_OPS &&
	    sets > AD_MIN_SETS && acc > AD_MIN_ACC);
}

/* The page walker: atomic ORs, as the MMU sets A/D bits. */
static void *
ad_hw_thread(void *arg)
{
	ad_thread_t *at = arg;
	ad_race_t *ad = at->at_ad;
	uint64_t seed = at->at_seed, ops = 0;

	while (!__atomic_load_n(&ad->ad_stop, __ATOMIC_RELAXED)) {
		const uint64_t r = rng_next(&seed);
		const uint32_t page = (uint32_t)(r % AD_PAGES);
		const bool write = ((r >> 32) & 1) != 0 &&
		    ad_group(page) != AD_ACCESSED;
		const uint64_t bits = write ? (ad->ad_a | ad->ad_d) : ad->ad_a;
		const uint64_t old = __atomic_fetch_or(ad->ad_ptep[page], bits,
		    __ATOMIC_SEQ_CST);

		ad_check_stable(ad, page, old);
		if (++ops % AD_PUBLISH == 0) {
			__atomic_fetch_add(&ad->ad_hw_ops, AD_PUBLISH,
			    __ATOMIC_RELAXED);
		}
		switch (ad_group(page)) {
		case AD_DIRTY:
			if (write && (old & ad->ad_d) == 0)
				inc(&ad->ad_sets[page]);
			break;
		case AD_ACCESSED:
			if ((old & ad->ad_a) == 0)
				inc(&ad->ad_sets[page]);
			break;
		default:
			if (write && (old & ad->ad_d) == 0)
				inc(&ad->ad_sets[page]);
			if ((old & (ad->ad_a | ad->ad_d)) == 0)
				inc(&ad->ad_acc_sets[page]);
			break;
		}
	}
	__atomic_fetch_add(&ad->ad_hw_ops, ops % AD_PUBLISH, __ATOMIC_RELAXED);
	return (NULL);
}

/* The kernel: vmspace_bits_operate()-style queries and resets. */
static void *
ad_sw_thread(void *arg)
{
	ad_thread_t *at = arg;
	ad_race_t *ad = at->at_ad;
	uint64_t seed = at->at_seed, ops = 0;

	while (!__atomic_load_n(&ad->ad_stop, __ATOMIC_RELAXED)) {
		const uint64_t r = rng_next(&seed);
		const uint32_t page = (uint32_t)(r % AD_PAGES);
		vmm_gpt_entry_t *ptep = ad->ad_ptep[page];
		const unsigned op = (unsigned)((r >> 32) % 5);

		switch (ad_group(page)) {
		case AD_DIRTY:
			if (op <= 1) {
				if (vmm_gpte_reset_dirty(ptep, false))
					inc(&ad->ad_resets[page]);
			} else if (op == 2) {
				/* Software marks the page dirty itself. */
				if (!vmm_gpte_reset_dirty(ptep, true))
					inc(&ad->ad_sets[page]);
			} else {
				(void) vmm_gpte_query_dirty(ptep);
				(void) vmm_gpte_query_accessed(ptep);
			}
			break;
		case AD_ACCESSED:
			if (op <= 1) {
				if (vmm_gpte_reset_accessed(ptep, false))
					inc(&ad->ad_resets[page]);
			} else if (op == 2) {
				if (!vmm_gpte_reset_accessed(ptep, true))
					inc(&ad->ad_sets[page]);
			} else {
				VT_CHECK(!vmm_gpte_query_dirty(ptep));
				(void) vmm_gpte_query_accessed(ptep);
			}
			break;
		default:
			if (op <= 1) {
				if (vmm_gpte_reset_dirty(ptep, false))
					inc(&ad->ad_resets[page]);
			} else if (op == 2) {
				if (vmm_gpte_reset_accessed(ptep, false))
					inc(&ad->ad_acc_resets[page]);
			} else {
				(void) vmm_gpte_query_dirty(ptep);
				(void) vmm_gpte_query_accessed(ptep);
			}
			break;
		}
		ad_check_stable(ad, page,
		    __atomic_load_n(ptep, __ATOMIC_SEQ_CST));
		if (++ops % AD_PUBLISH == 0) {
			__atomic_fetch_add(&ad->ad_sw_ops, AD_PUBLISH,
			    __ATOMIC_RELAXED);
		}
	}
	__atomic_fetch_add(&ad->ad_sw_ops, ops % AD_PUBLISH, __ATOMIC_RELAXED);
	return (NULL);
}

VTEST(stress_ad_bits, VT_PER_FORMAT | VT_SLOW)
{
	static ad_race_t ad;
	ad_thread_t args[AD_HW + AD_SW];
	pthread_t tids[AD_HW + AD_SW];
	const uint64_t len = (uint64_t)AD_PAGES * T_PAGE;
	vmm_gpt_t *gpt = vmm_gpt_alloc();

	(void) memset(&ad, 0, sizeof (ad));
	ad.ad_a = impl->vpi_bit_accessed;
	ad.ad_d = impl->vpi_bit_dirty;
	VT_CHECK_NE(ad.ad_a, 0);
	VT_CHECK_NE(ad.ad_d, 0);

	/* Map every page, each with a different PFN and protection. */
	vmm_gpt_populate_region(gpt, AD_BASE, len);
	for (uint32_t page = 0; page < AD_PAGES; page++) {
		const uint64_t gpa = AD_BASE + (uint64_t)page * T_PAGE;
		const uint_t prot = T_PROT_READ |
		    ((page & 1) ? T_PROT_WRITE : 0) |
		    ((page & 2) ? T_PROT_EXEC : 0);
		vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];

		VT_CHECK_EQ(vmm_gpt_walk(gpt, gpa, entries, LEVEL1), gpa);
		VT_CHECK(vmm_gpt_map_at(gpt, entries[LEVEL1], 0x5000 + page,
		    prot, KTEST_MTRR_WB));
		ad.ad_ptep[page] = entries[LEVEL1];

		/*
		 * A format may map with A (or D) already set (RVI sets
		 * accessed on every entry, as illumos does): those count as
		 * events that happened before the race.
		 */
		const uint64_t pte = *entries[LEVEL1];
		ad.ad_base[page] = pte & ~(ad.ad_a | ad.ad_d);
		switch (ad_group(page)) {
		case AD_DIRTY:
			ad.ad_sets[page] = (pte & ad.ad_d) != 0;
			break;
		case AD_ACCESSED:
			VT_CHECK_EQ(pte & ad.ad_d, 0);
			ad.ad_sets[page] = (pte & ad.ad_a) != 0;
			break;
		default:
			VT_CHECK((pte & (ad.ad_a | ad.ad_d)) != ad.ad_d);
			ad.ad_sets[page] = (pte & ad.ad_d) != 0;
			ad.ad_acc_sets[page] =
			    (pte & (ad.ad_a | ad.ad_d)) != 0;
			break;
		}
	}

	for (int i = 0; i < AD_HW + AD_SW; i++) {
		args[i].at_ad = &ad;
		args[i].at_seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
	}
	start_threads(tids, AD_HW, ad_hw_thread, args, sizeof (args[0]));
	start_threads(tids + AD_HW, AD_SW, ad_sw_thread, args + AD_HW,
	    sizeof (args[0]));

	const uint64_t t0 = now_ns();
	while (now_ns() - t0 < STRESS_MAX_NS &&
	    (now_ns() - t0 < STRESS_NS || !ad_floors_met(&ad))) {
		const struct timespec ts = { 0, 10 * 1000 * 1000 };
		(void) nanosleep(&ts, NULL);
	}
	const uint64_t raced_ns = now_ns() - t0;
	__atomic_store_n(&ad.ad_stop, 1, __ATOMIC_RELAXED);
	join_threads(tids, AD_HW + AD_SW);

	/* A final reset collects what was left set. */
	uint64_t total_sets = 0, total_acc = 0;
	for (uint32_t page = 0; page < AD_PAGES; page++) {
		vmm_gpt_entry_t *ptep = ad.ad_ptep[page];

		ad_check_stable(&ad, page, *ptep);
		switch (ad_group(page)) {
		case AD_DIRTY:
			if (vmm_gpte_reset_dirty(ptep, false))
				ad.ad_resets[page]++;
			/* Then clear A too (no dirty left to lose). */
			(void) vmm_gpte_reset_accessed(ptep, false);
			break;
		case AD_ACCESSED:
			if (vmm_gpte_reset_accessed(ptep, false))
				ad.ad_resets[page]++;
			break;
		default:
			if (vmm_gpte_reset_dirty(ptep, false))
				ad.ad_resets[page]++;
			if (vmm_gpte_reset_accessed(ptep, false))
				ad.ad_acc_resets[page]++;
			break;
		}
		/* Back to the PTE as mapped, without A and D. */
		VT_CHECK_EQ(*ptep, ad.ad_base[page]);

		if (ad_group(page) == AD_MIXED) {
			if (ad.ad_acc_sets[page] != ad.ad_acc_resets[page] ||
			    ad.ad_resets[page] > ad.ad_sets[page]) {
				vtest_fail(__FILE__, __LINE__, "mixed page %u: "
				    "%lu access events, %lu reset; %lu dirty "
				    "events, %lu reset by reset_dirty", page,
				    (unsigned long)ad.ad_acc_sets[page],
				    (unsigned long)ad.ad_acc_resets[page],
				    (unsigned long)ad.ad_sets[page],
				    (unsigned long)ad.ad_resets[page]);
			}
			total_acc += ad.ad_acc_sets[page];
		} else if (ad.ad_sets[page] != ad.ad_resets[page]) {
			vtest_fail(__FILE__, __LINE__, "%s page %u: %lu set "
			    "events, %lu reported by resets",
			    ad_group(page) == AD_DIRTY ? "dirty" : "accessed",
			    page, (unsigned long)ad.ad_sets[page],
			    (unsigned long)ad.ad_resets[page]);
		} else {
			total_sets += ad.ad_sets[page];
		}
	}

	(void) printf("%lu hardware, %lu kernel operations; %lu A or D events, "
	    "%lu mixed access events, in %.2f s\n", (unsigned long)ad.ad_hw_ops,
	    (unsigned long)ad.ad_sw_ops, (unsigned long)total_sets,
	    (unsigned long)total_acc, (double)raced_ns / 1e9);

	/* The race really happened. */
	VT_CHECK(ad.ad_hw_ops > AD_MIN_OPS);
	VT_CHECK(ad.ad_sw_ops > AD_MIN_OPS);
	VT_CHECK(total_sets > AD_MIN_SETS);
	VT_CHECK(total_acc > AD_MIN_ACC);

	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, AD_BASE, len), AD_PAGES);
	vmm_gpt_vacate_region(gpt, AD_BASE, len);
	vmm_gpt_free(gpt);
}
