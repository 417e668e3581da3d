//! Facts shared by the Rust-side tests.

/// The 19 functions of illumos' `sys/vmm_gpt.h`, in header order.
pub const FUNCTIONS: [&str; 19] = [
    "vmm_gpt_init",
    "vmm_gpt_fini",
    "vmm_gpt_alloc",
    "vmm_gpt_free",
    "vmm_gpt_walk",
    "vmm_gpt_iter_init",
    "vmm_gpt_iter_next",
    "vmm_gpt_populate_region",
    "vmm_gpt_map_at",
    "vmm_gpt_vacate_region",
    "vmm_gpt_unmap",
    "vmm_gpt_unmap_region",
    "vmm_gpt_get_pmtp",
    "vmm_gpte_is_mapped",
    "vmm_gpte_reset_accessed",
    "vmm_gpte_reset_dirty",
    "vmm_gpte_query_accessed",
    "vmm_gpte_query_dirty",
    "vmm_gpt_can_track_dirty",
];
