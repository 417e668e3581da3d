/*
 * Smoke tests of the harness itself: they prove that the runner, the kernel
 * stand-in (kmem accounting, cmn_err recording, hot patching, symbol names)
 * and death tests work, with a small round trip through the GPT for each
 * format.  The real coverage lives in the other test_*.c files.
 */
#include <string.h>

#include "ktest.h"
#include "vtest.h"

/* populate, walk, map, query, unmap, vacate, free: one small region. */
VTEST(smoke_gpt_round_trip, VT_PER_FORMAT)
{
	/* 16 KiB straddling a 1 GiB boundary: two leaf tables. */
	const uint64_t addr = (1ull << 30) - 2 * PAGESIZE;
	const uint64_t len = 4 * PAGESIZE;
	vmm_gpt_entry_t *entries[MAX_GPT_LEVEL];
	pfn_t pfn;
	uint_t prot;

	VT_CHECK_NOT_NULL(impl);
	vmm_gpt_t *gpt = vmm_gpt_alloc();
	VT_CHECK_NOT_NULL(gpt);

	vmm_gpt_populate_region(gpt, addr, len);
	(void) vmm_gpt_walk(gpt, addr, entries, LEVEL1);
	for (int lvl = LEVEL4; lvl <= LEVEL1; lvl++)
		VT_CHECK_NOT_NULL(entries[lvl]);
	VT_CHECK_EQ(*entries[LEVEL1], 0);
	VT_CHECK(!vmm_gpte_is_mapped(entries[LEVEL1], &pfn, &prot));

	/* Map every page of the region through the iterator. */
	vmm_gpt_iter_t iter;
	vmm_gpt_iter_entry_t ent;
	unsigned n = 0;
	vmm_gpt_iter_init(&iter, gpt, addr, len);
	while (vmm_gpt_iter_next(&iter, &ent)) {
		VT_CHECK_EQ(ent.vgie_gpa, addr + n * PAGESIZE);
		VT_CHECK_NOT_NULL(ent.vgie_ptep);
		VT_CHECK(vmm_gpt_map_at(gpt, ent.vgie_ptep, 0x1000 + n,
		    PROT_READ | PROT_WRITE, KTEST_MTRR_WB));
		n++;
	}
	VT_CHECK_EQ(n, 4);

	/* Read one back. */
	(void) vmm_gpt_walk(gpt, addr + PAGESIZE, entries, LEVEL1);
	VT_CHECK(vmm_gpte_is_mapped(entries[LEVEL1], &pfn, &prot));
	VT_CHECK_EQ(pfn, 0x1001);
	VT_CHECK_EQ(prot & (PROT_READ | PROT_WRITE), PROT_READ | PROT_WRITE);
	VT_CHECK(!vmm_gpte_query_dirty(entries[LEVEL1]));
	VT_CHECK(!vmm_gpte_reset_dirty(entries[LEVEL1], true));
	VT_CHECK(vmm_gpte_query_dirty(entries[LEVEL1]));
	VT_CHECK_NE(*entries[LEVEL1] & impl->vpi_bit_dirty, 0);

	/* A second map of the same entry loses the race. */
	VT_CHECK(!vmm_gpt_map_at(gpt, entries[LEVEL1], 0x1001, PROT_READ,
	    KTEST_MTRR_WB));

	VT_CHECK(vmm_gpt_unmap(gpt, addr + PAGESIZE));
	VT_CHECK(!vmm_gpt_unmap(gpt, addr + PAGESIZE));
	VT_CHECK_EQ(vmm_gpt_unmap_region(gpt, addr, len), 3);

	vmm_gpt_vacate_region(gpt, addr, len);
	(void) vmm_gpt_walk(gpt, addr, entries, LEVEL1);
	VT_CHECK_NULL(entries[LEVEL2]);

	VT_CHECK_EQ(vmm_gpt_get_pmtp(gpt, false),
	    impl->vpi_get_pmtp(KTEST_VA_TO_PFN(entries[LEVEL4]), false));
	VT_CHECK(vmm_gpt_can_track_dirty(gpt));

	vmm_gpt_free(gpt);
	/* The runner checks that nothing is left allocated. */
}

static void
call_unpatched_stub(void *arg __attribute__((unused)))
{
	uint64_t (*map_table)(pfn_t) =
	    (uint64_t (*)(pfn_t))(uintptr_t)vmm_gpti_map_table;

	(void) map_table(1);
}

static void
free_wrong_size(void *arg __attribute__((unused)))
{
	void *p = kmem_zalloc(64, KM_SLEEP);
	kmem_free(p, 32);
}

static void
init_twice(void *arg __attribute__((unused)))
{
	(void) vmm_gpt_init(&ept_pte_impl);
}

/* Death tests: a stub before init, a bad kmem_free, a double init. */
VTEST(smoke_death_tests, VT_NO_IMPL)
{
	VT_CHECK_NULL(impl);
	VT_EXPECT_PANIC(call_unpatched_stub, NULL, 0,
	    "Indirect function not hot-patched",
	    "Indirect function not hot-patched");
	VT_EXPECT_PANIC(free_wrong_size, NULL, 0,
	    "allocated with size 64, freed with size 32",
	    "allocated with size 64, freed with size 32");

	VT_CHECK(vmm_gpt_init(&rvi_pte_impl));
	VT_EXPECT_PANIC(init_twice, NULL, 0, NULL, "assertion failed: ");
	vmm_gpt_fini();
}

/*
 * The hot-patch machinery end to end: init refuses (with a warning naming
 * the stub, through modgetsymname) while a stub is not a jmp, and patches
 * nothing; it works once the stub is repaired, and fini undoes it.
 */
VTEST(smoke_hot_patch_and_cmn_err, VT_NO_IMPL)
{
	const uint8_t *parse = (const uint8_t *)(uintptr_t)vmm_gpti_parse;
	const uint64_t patches = ktest_hot_patch_count();

	/* modgetsymname() sees the stubs and the library/original. */
	ulong_t off = 1;
	const char *name = modgetsymname((uintptr_t)parse + 2, &off);
	VT_CHECK_NOT_NULL(name);
	VT_CHECK(strcmp(name, "vmm_gpti_parse") == 0);
	VT_CHECK_EQ(off, 2);
	name = modgetsymname((uintptr_t)vmm_gpt_impl_panic, &off);
	VT_CHECK(name != NULL && strcmp(name, "vmm_gpt_impl_panic") == 0);

	hot_patch_kernel_text((caddr_t)parse, 0x90, 1);
	VT_CHECK_EQ(parse[0], 0x90);
	VT_CHECK_EQ(ktest_cmn_err_count(), 0);
	VT_CHECK(!vmm_gpt_init(&ept_pte_impl));
	VT_CHECK_EQ(ktest_cmn_err_count(), 1);
	VT_CHECK_EQ(ktest_cmn_err_level(0), CE_WARN);
	VT_CHECK(strstr(ktest_cmn_err_message(0), "hotpatch vmm_gpti_parse")
	    != NULL);
	VT_CHECK_EQ(ktest_hot_patch_count(), patches + 1);

	hot_patch_kernel_text((caddr_t)parse, 0xe9, 1);
	ktest_cmn_err_clear();
	VT_CHECK_EQ(ktest_cmn_err_count(), 0);
	VT_CHECK(vmm_gpt_init(&ept_pte_impl));
	VT_CHECK_EQ(ktest_hot_patch_count(), patches + 2 + 3);

	/* The stubs now call the format. */
	bool (*parse_fn)(uint64_t, pfn_t *, uint_t *) =
	    (bool (*)(uint64_t, pfn_t *, uint_t *))(uintptr_t)parse;
	pfn_t pfn = 0;
	VT_CHECK(parse_fn(ept_pte_impl.vpi_map_page(42, PROT_READ,
	    KTEST_MTRR_WB), &pfn, NULL));
	VT_CHECK_EQ(pfn, 42);

	vmm_gpt_fini();
	VT_CHECK_EQ(ktest_hot_patch_count(), patches + 2 + 6);
	VT_CHECK_EQ(ktest_cmn_err_count(), 0);
}

/* kmem accounting and alignment; cmn_err formatting. */
VTEST(smoke_kernel_stand_in, VT_NO_IMPL)
{
	kmem_stats_t ks;

	ktest_kmem_stats(&ks);
	const kmem_stats_t before = ks;

	uint8_t *page = kmem_zalloc(PAGESIZE, KM_SLEEP);
	void *small = kmem_zalloc(24, KM_SLEEP);
	VT_CHECK_EQ((uintptr_t)page & PAGEOFFSET, 0);
	for (size_t i = 0; i < PAGESIZE; i++)
		VT_CHECK_EQ(page[i], 0);
	ktest_kmem_stats(&ks);
	VT_CHECK_EQ(ks.ks_live_allocs, before.ks_live_allocs + 2);
	VT_CHECK_EQ(ks.ks_live_bytes, before.ks_live_bytes + PAGESIZE + 24);
	VT_CHECK_EQ(ks.ks_live_pages, before.ks_live_pages + 1);
	VT_CHECK_EQ(ks.ks_total_allocs, before.ks_total_allocs + 2);

	VT_CHECK_EQ(KTEST_VA_TO_PFN(page),
	    hat_getpfnum(kas.a_hat, (caddr_t)page));
	VT_CHECK_EQ((uintptr_t)hat_kpm_pfn2va(KTEST_VA_TO_PFN(page)),
	    (uintptr_t)page);

	kmem_free(small, 24);
	kmem_free(page, PAGESIZE);
	ktest_kmem_stats(&ks);
	VT_CHECK_EQ(ks.ks_live_allocs, before.ks_live_allocs);
	VT_CHECK_EQ(ks.ks_live_pages, before.ks_live_pages);
	VT_CHECK_EQ(ks.ks_total_frees, before.ks_total_frees + 2);

	uint64_t word = 5;
	VT_CHECK_EQ(atomic_cas_64(&word, 4, 7), 5);
	VT_CHECK_EQ(word, 5);
	VT_CHECK_EQ(atomic_cas_64(&word, 5, 7), 5);
	VT_CHECK_EQ(word, 7);

	cmn_err(CE_NOTE, "note %d of %s", 1, "smoke");
	VT_CHECK_EQ(ktest_cmn_err_count(), 1);
	VT_CHECK_EQ(ktest_cmn_err_level(0), CE_NOTE);
	VT_CHECK(strcmp(ktest_cmn_err_message(0), "note 1 of smoke") == 0);
	VT_CHECK_NULL(ktest_cmn_err_message(1));
	ktest_cmn_err_clear();
}

/*
 * Re-patching a stub that has run: the second format must be the one called
 * (under valgrind too, whose cached translation of the old jump
 * hot_patch_kernel_text() must discard).
 */
VTEST(smoke_hot_patch_repatch, VT_NO_IMPL)
{
	uint64_t (*map_table)(pfn_t) =
	    (uint64_t (*)(pfn_t))(uintptr_t)vmm_gpti_map_table;

	for (int round = 0; round < 2; round++) {
		VT_CHECK(vmm_gpt_init(&ept_pte_impl));
		VT_CHECK_EQ(map_table(5), ept_pte_impl.vpi_map_table(5));
		vmm_gpt_fini();
		VT_CHECK(vmm_gpt_init(&rvi_pte_impl));
		VT_CHECK_EQ(map_table(5), rvi_pte_impl.vpi_map_table(5));
		vmm_gpt_fini();
	}
	VT_CHECK_NE(ept_pte_impl.vpi_map_table(5),
	    rvi_pte_impl.vpi_map_table(5));
}
