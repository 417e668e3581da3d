//! The implementations behind one table of C functions each, and the
//! kernel stand-in's test hooks (from `vmm-gpt-harness`).
//!
//! | table | what | build | present with |
//! | --- | --- | --- | --- |
//! | [`LIB`] | the library linked as a Rust crate (`vmm_gpt::ffi`) | DEBUG (`cfg(vmm_gpt_debug)`) with `VMM_GPT_DEBUG=1`, or unset and debug assertions on (the test profile); else non-DEBUG | always |
//! | [`reference`] | the original `vmm_gpt.c`, `-DDEBUG` (`ref_*`) | DEBUG | `cfg(vmm_gpt_reference)` (`ILLUMOS_GATE`) |
//! | [`reference_ndebug`] | the original without `DEBUG` (`ref_ndebug_*`) | non-DEBUG | the same |
//! | [`kernel_object`] | `target/kernel/vmm_gpt.o` (`kobj_*`) | non-DEBUG | `VMM_GPT_KERNEL_OBJECT` |
//! | [`kernel_object_debug`] | `target/kernel/vmm_gpt.debug.o` (`kobj_debug_*`) | DEBUG | `VMM_GPT_KERNEL_OBJECT_DEBUG` |
//! | [`staticlib`] | `target/release/libvmm_gpt.a`'s object (`rel_*`) | non-DEBUG | `VMM_GPT_RELEASE_STATICLIB` |
//! | [`harvest_staticlib`] | the staticlib built with the feature `harvest-dirty` (`hv_*`) | non-DEBUG | `VMM_GPT_HARVEST_STATICLIB` |
//! | [`kernel_object_harvest`] | `target/kernel/vmm_gpt.harvest.o` (`kobj_hv_*`) | non-DEBUG | `VMM_GPT_KERNEL_OBJECT_HARVEST` |
//! | [`kernel_object_harvest_debug`] | `target/kernel/vmm_gpt.harvest.debug.o` (`kobj_hv_debug_*`) | DEBUG | `VMM_GPT_KERNEL_OBJECT_HARVEST_DEBUG` |
//!
//! The opt-in copies' extension, `vmm_gpt_harvest_dirty`, is in
//! [`Harvest`] ([`harvests`] lists those linked).
//!
//! The runner compares the implementation [`select`]ed (default [`LIB`])
//! with the original of the same build ([`reference_for`]): a DEBUG build
//! with the DEBUG original, a non-DEBUG one with the non-DEBUG original.
//! The prefixed tables are made by [`implementation!`] from one list of
//! the 19 declarations, each symbol named `concat!(prefix, name)`; their
//! types are the [`Api`] fields', which [`LIB`] checks against the
//! library's own functions.

use std::sync::atomic::{AtomicPtr, Ordering};

pub use vmm_gpt_harness::{
    domain_stats, ktest_kmem_domain, ktest_kmem_domain_reclaim, ktest_kmem_set_domain,
    ktest_set_hw_ad_supported, ktest_set_panic_hook, KmemStats,
};

pub use vmm_gpt_harness::api::{Api, LIB, LIB_DOMAIN, REF_DOMAIN};

/// An [`Api`] of the copy whose 21 symbols build.rs renamed
/// `<prefix><name>`: one extern block of the 19 functions, each
/// `#[link_name = concat!(prefix, name)]`, and the table of them.
macro_rules! implementation {
    ($(#[doc = $doc:literal])* #[cfg($cfg:ident)] fn $get:ident, static $table:ident
     = $prefix:literal, $name:expr, $domain:expr, debug: $debug:expr;) => {
        $(#[doc = $doc])*
        #[doc = ""]
        #[doc = concat!("Present when build.rs linked it: `cfg(", stringify!($cfg), ")`.")]
        pub fn $get() -> Option<&'static Api> {
            #[cfg($cfg)]
            {
                Some(&$table)
            }
            #[cfg(not($cfg))]
            {
                None
            }
        }

        #[cfg($cfg)]
        static $table: Api = {
            use std::ffi::c_uint;
            use vmm_gpt::abi::{
                pfn_t, uint_t, vmm_gpt_entry_t, vmm_gpt_iter_entry_t, vmm_gpt_iter_t, vmm_gpt_t,
            };
            use vmm_gpt::abi_impl::vmm_pte_impl;
            // vmm_gpt_t is the library's opaque Rust struct; only pointers
            // to it cross, never dereferenced here (each implementation's
            // GPT is its own).
            #[allow(improper_ctypes)]
            extern "C" {
                #[link_name = concat!($prefix, "vmm_gpt_init")]
                fn init(imp: *const vmm_pte_impl) -> bool;
                #[link_name = concat!($prefix, "vmm_gpt_fini")]
                fn fini();
                #[link_name = concat!($prefix, "vmm_gpt_alloc")]
                fn alloc() -> *mut vmm_gpt_t;
                #[link_name = concat!($prefix, "vmm_gpt_free")]
                fn free(gpt: *mut vmm_gpt_t);
                #[link_name = concat!($prefix, "vmm_gpt_walk")]
                fn walk(
                    gpt: *mut vmm_gpt_t,
                    gpa: u64,
                    entries: *mut *mut vmm_gpt_entry_t,
                    depth: c_uint,
                ) -> u64;
                #[link_name = concat!($prefix, "vmm_gpt_iter_init")]
                fn iter_init(iter: *mut vmm_gpt_iter_t, gpt: *mut vmm_gpt_t, addr: u64, len: u64);
                #[link_name = concat!($prefix, "vmm_gpt_iter_next")]
                fn iter_next(iter: *mut vmm_gpt_iter_t, entry: *mut vmm_gpt_iter_entry_t) -> bool;
                #[link_name = concat!($prefix, "vmm_gpt_populate_region")]
                fn populate_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64);
                #[link_name = concat!($prefix, "vmm_gpt_map_at")]
                fn map_at(
                    gpt: *mut vmm_gpt_t,
                    ptep: *mut vmm_gpt_entry_t,
                    pfn: pfn_t,
                    prot: uint_t,
                    attr: u8,
                ) -> bool;
                #[link_name = concat!($prefix, "vmm_gpt_vacate_region")]
                fn vacate_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64);
                #[link_name = concat!($prefix, "vmm_gpt_unmap")]
                fn unmap(gpt: *mut vmm_gpt_t, gpa: u64) -> bool;
                #[link_name = concat!($prefix, "vmm_gpt_unmap_region")]
                fn unmap_region(gpt: *mut vmm_gpt_t, addr: u64, len: u64) -> usize;
                #[link_name = concat!($prefix, "vmm_gpt_get_pmtp")]
                fn get_pmtp(gpt: *mut vmm_gpt_t, track_dirty: bool) -> u64;
                #[link_name = concat!($prefix, "vmm_gpte_is_mapped")]
                fn is_mapped(
                    ptep: *const vmm_gpt_entry_t,
                    pfnp: *mut pfn_t,
                    protp: *mut uint_t,
                ) -> bool;
                #[link_name = concat!($prefix, "vmm_gpte_reset_accessed")]
                fn reset_accessed(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool;
                #[link_name = concat!($prefix, "vmm_gpte_reset_dirty")]
                fn reset_dirty(ptep: *mut vmm_gpt_entry_t, on: bool) -> bool;
                #[link_name = concat!($prefix, "vmm_gpte_query_accessed")]
                fn query_accessed(ptep: *const vmm_gpt_entry_t) -> bool;
                #[link_name = concat!($prefix, "vmm_gpte_query_dirty")]
                fn query_dirty(ptep: *const vmm_gpt_entry_t) -> bool;
                #[link_name = concat!($prefix, "vmm_gpt_can_track_dirty")]
                fn can_track_dirty(gpt: *mut vmm_gpt_t) -> bool;
            }
            Api {
                name: $name,
                domain: $domain,
                debug: $debug,
                init,
                fini,
                alloc,
                free,
                walk,
                iter_init,
                iter_next,
                populate_region,
                map_at,
                vacate_region,
                unmap,
                unmap_region,
                get_pmtp,
                is_mapped,
                reset_accessed,
                reset_dirty,
                query_accessed,
                query_dirty,
                can_track_dirty,
            }
        };
    };
}

implementation! {
    /// The original `vmm_gpt.c`, `-DDEBUG` (`ILLUMOS_GATE`).
    #[cfg(vmm_gpt_reference)]
    fn reference, static REF = "ref_", "original (DEBUG)", REF_DOMAIN, debug: true;
}
implementation! {
    /// The original compiled without DEBUG (ASSERTs off, as production
    /// kernels are; `ILLUMOS_GATE`): the reference of non-DEBUG builds, and
    /// the benchmarks'.  Its allocations are charged to `REF_DOMAIN`, like
    /// the DEBUG original's.
    #[cfg(vmm_gpt_reference_ndebug)]
    fn reference_ndebug, static REF_NDEBUG = "ref_ndebug_", "original (non-DEBUG)", REF_DOMAIN,
        debug: false;
}
implementation! {
    /// The non-DEBUG kernel object (illumos-build/build.sh,
    /// `VMM_GPT_KERNEL_OBJECT`).
    #[cfg(vmm_gpt_kernel_object)]
    fn kernel_object, static KOBJ = "kobj_", "kernel object (non-DEBUG)", LIB_DOMAIN,
        debug: false;
}
implementation! {
    /// The DEBUG kernel object (illumos-build/build.sh,
    /// `VMM_GPT_KERNEL_OBJECT_DEBUG`).
    #[cfg(vmm_gpt_kernel_object_debug)]
    fn kernel_object_debug, static KOBJ_DEBUG = "kobj_debug_", "kernel object (DEBUG)",
        LIB_DOMAIN, debug: true;
}
implementation! {
    /// The release staticlib's object (`VMM_GPT_RELEASE_STATICLIB`).
    #[cfg(vmm_gpt_staticlib)]
    fn staticlib, static STATICLIB = "rel_", "release staticlib (non-DEBUG)", LIB_DOMAIN,
        debug: false;
}

implementation! {
    /// The release staticlib built with the extension (`cargo build
    /// --release --features harvest-dirty`, `VMM_GPT_HARVEST_STATICLIB`).
    #[cfg(vmm_gpt_harvest_staticlib)]
    fn harvest_staticlib_api, static HV = "hv_", "opt-in staticlib (non-DEBUG)", LIB_DOMAIN,
        debug: false;
}
implementation! {
    /// The opt-in kernel object (`build.sh --harvest`,
    /// `VMM_GPT_KERNEL_OBJECT_HARVEST`).
    #[cfg(vmm_gpt_kernel_object_harvest)]
    fn kernel_object_harvest_api, static KOBJ_HV = "kobj_hv_", "opt-in kernel object (non-DEBUG)",
        LIB_DOMAIN, debug: false;
}
implementation! {
    /// The opt-in DEBUG kernel object (`build.sh --harvest`,
    /// `VMM_GPT_KERNEL_OBJECT_HARVEST_DEBUG`).
    #[cfg(vmm_gpt_kernel_object_harvest_debug)]
    fn kernel_object_harvest_debug_api, static KOBJ_HV_DEBUG = "kobj_hv_debug_",
        "opt-in kernel object (DEBUG)", LIB_DOMAIN, debug: true;
}

/// `vmm_gpt_harvest_dirty(gpt, gpa, len, bitmap, flags)` of
/// `include/sys/vmm_gpt_ext.h`.
pub type HarvestFn = unsafe extern "C" fn(
    *mut vmm_gpt::abi::vmm_gpt_t,
    u64,
    usize,
    *mut u8,
    std::ffi::c_uint,
) -> usize;

/// An opt-in build: its C surface and its extension.
pub struct Harvest {
    pub api: &'static Api,
    pub harvest_dirty: HarvestFn,
}

/// The [`Harvest`] of the opt-in copy `$api` linked as `$prefix*`.
macro_rules! harvest {
    ($(#[doc = $doc:literal])* #[cfg($cfg:ident)] fn $get:ident = $api:ident, $prefix:literal) => {
        $(#[doc = $doc])*
        pub fn $get() -> Option<Harvest> {
            #[cfg($cfg)]
            {
                #[allow(improper_ctypes)]
                extern "C" {
                    #[link_name = concat!($prefix, "vmm_gpt_harvest_dirty")]
                    fn harvest_dirty(
                        gpt: *mut vmm_gpt::abi::vmm_gpt_t,
                        gpa: u64,
                        len: usize,
                        bitmap: *mut u8,
                        flags: std::ffi::c_uint,
                    ) -> usize;
                }
                $api().map(|api| Harvest { api, harvest_dirty })
            }
            #[cfg(not($cfg))]
            {
                None
            }
        }
    };
}

harvest! {
    /// The opt-in staticlib (`hv_*`).
    #[cfg(vmm_gpt_harvest_staticlib)]
    fn harvest_staticlib = harvest_staticlib_api, "hv_"
}
harvest! {
    /// The opt-in kernel object (`kobj_hv_*`).
    #[cfg(vmm_gpt_kernel_object_harvest)]
    fn kernel_object_harvest = kernel_object_harvest_api, "kobj_hv_"
}
harvest! {
    /// The opt-in DEBUG kernel object (`kobj_hv_debug_*`).
    #[cfg(vmm_gpt_kernel_object_harvest_debug)]
    fn kernel_object_harvest_debug = kernel_object_harvest_debug_api, "kobj_hv_debug_"
}

/// Every opt-in copy linked.
pub fn harvests() -> Vec<Harvest> {
    [
        harvest_staticlib(),
        kernel_object_harvest(),
        kernel_object_harvest_debug(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Where the opt-in copies came from (empty when not linked).
pub const HARVEST_STATICLIB_PATH: &str = env!("VMM_GPT_IMPLS_HARVEST_STATICLIB");
pub const KERNEL_OBJECT_HARVEST_PATH: &str = env!("VMM_GPT_IMPLS_KERNEL_OBJECT_HARVEST");
pub const KERNEL_OBJECT_HARVEST_DEBUG_PATH: &str =
    env!("VMM_GPT_IMPLS_KERNEL_OBJECT_HARVEST_DEBUG");

/// The original of the same build as `api`: DEBUG for DEBUG.
pub fn reference_for(api: &Api) -> Option<&'static Api> {
    if api.debug {
        reference()
    } else {
        reference_ndebug()
    }
}

/// Where the original was compiled from, and the prebuilt implementations
/// came from (empty when not linked).
pub const ORIGINAL_PATH: &str = env!("VMM_GPT_IMPLS_ORIGINAL");
pub const KERNEL_OBJECT_PATH: &str = env!("VMM_GPT_IMPLS_KERNEL_OBJECT");
pub const KERNEL_OBJECT_DEBUG_PATH: &str = env!("VMM_GPT_IMPLS_KERNEL_OBJECT_DEBUG");
pub const STATICLIB_PATH: &str = env!("VMM_GPT_IMPLS_STATICLIB");

static SELECTED: AtomicPtr<Api> = AtomicPtr::new(std::ptr::null_mut());

/// From now on in this process (and the children it forks), the runner
/// compares `api` (whose allocations must be charged to [`LIB_DOMAIN`])
/// with the original of its build, instead of [`LIB`].
pub fn select(api: &'static Api) {
    assert_eq!(
        api.domain, LIB_DOMAIN,
        "{} is not an implementation under test",
        api.name
    );
    SELECTED.store(api as *const Api as *mut Api, Ordering::SeqCst);
}

/// What the runner compares with the original: [`LIB`], or what was
/// [`select`]ed.
pub fn library() -> &'static Api {
    let p = SELECTED.load(Ordering::SeqCst);
    if p.is_null() {
        &LIB
    } else {
        // SAFETY: only `select` stores, and only `&'static Api`s.
        unsafe { &*p }
    }
}
