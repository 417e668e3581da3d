//! # vmm-gpt: bhyve's generic page tables, in Rust
//!
//! A drop-in replacement for illumos' `usr/src/uts/intel/io/vmm/vmm_gpt.c`:
//! the nested page tables (Intel EPT, AMD nested paging) that map a guest's
//! physical memory to host memory.  The `vmm` driver links this library in
//! place of `vmm_gpt.o`; it exports exactly the same 21 C symbols with the
//! same signatures and layouts (`include/sys/vmm_gpt.h` and
//! `include/sys/vmm_gpt_impl.h`, generated from [`abi`] and [`abi_impl`]).
//!
//! ## Design
//!
//! A GPT is a four-level radix tree of 512-entry hardware tables, one 4 KiB
//! page each, mirroring x86 paging: the `LEVEL4` root covers the 48-bit
//! guest-physical space, `LEVEL1` leaf entries map 4 KiB guest pages.  Both
//! formats share that shape and differ only in entry bits, so the library
//! is format-agnostic and calls the format ([`abi_impl::vmm_pte_impl`])
//! through three hot-patched stubs ([`hotpatch`]) instead of indirect calls.
//!
//! The consumer (`vmm_vm.c`) populates a range of guest-physical space
//! before it maps pages there, and vacates it after unmapping them
//! ([`region`]).  Populating creates the tables the range needs and counts,
//! in each leaf table, the entries the range covers; vacating takes the
//! counts back and frees tables that no region needs ([`node`]).  Mapping
//! and unmapping pages, the accessed/dirty bits and lookups work on the
//! entries alone ([`pte`]), found by walking the hardware tables
//! ([`walk`]), so they need no locks and run concurrently with the
//! hardware and with each other; every entry access is atomic.
//!
//! | module | holds |
//! | --- | --- |
//! | [`abi`], [`abi_impl`] | the C types of the two headers |
//! | [`ffi`] | the 19 C functions: pointer checks, then a call inward |
//! | [`level`] | level arithmetic: indices, masks, spans |
//! | [`node`] | the node tree: table memory and reference counts |
//! | [`region`] | populate and vacate |
//! | [`walk`] | walks, the iterator, unmapping |
//! | [`pte`] | every PTE read and write, the A/D operations, map_at |
//! | [`hotpatch`] | init/fini: validating and patching the stubs |
//! | [`kernel`] | the kernel services imported, and the panic paths |
//! | `harvest`, `ffi_ext` | the opt-in extension (feature `harvest-dirty`): dirty pages harvested in one call |
//!
//! ## Failure
//!
//! These calls have no error returns.  What they do with input outside the
//! consumer's contract follows the original as illumos ships it
//! (`docs/checks.md` has every check):
//! - a non-DEBUG build never panics where the non-DEBUG original, which
//!   production illumos runs, completes without corrupting memory or the
//!   table tree, and returns what it returns, leaving the same tables and
//!   entries (user space reaches some of these calls with any values);
//! - every build panics where the original would crash or corrupt the
//!   tree, with a kernel `panic()` naming the function and the values;
//! - a DEBUG build (`cfg(vmm_gpt_debug)`, as a DEBUG kernel: build.rs, or
//!   `--cfg` from illumos-build/build.sh) also panics where the original's
//!   `ASSERT`s do.
//!
//! Rust panics are not reachable in practice; the panic handler calls the
//! kernel's `panic()` anyway.  The library never allocates except through
//! `kmem_zalloc`/`kmem_free`, never unwinds, and uses no floating point.
//! Every call that would be a tail call returns through
//! [`kernel::no_tail`], and the only indirect calls go through the
//! retpoline thunk ([`kernel::call_indirect`]), as illumos compiles C.

#![cfg_attr(not(any(test, feature = "hosted")), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod abi;
pub mod abi_impl;
pub mod ffi;
#[cfg(feature = "harvest-dirty")]
pub mod ffi_ext;
#[cfg(feature = "harvest-dirty")]
pub mod harvest;
pub mod hotpatch;
pub mod kernel;
pub mod level;
pub mod node;
pub mod pte;
pub mod region;
pub mod walk;

/// Rust panics (not reachable in practice: every check fails through
/// [`kernel::fail`]) end in the kernel's `panic()` too.  No formatting
/// machinery is pulled in: the message is fixed, the location is not used.
#[cfg(not(any(test, feature = "hosted")))]
#[panic_handler]
fn rust_panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    kernel::fail(c"vmm_gpt", c"Rust panic (a bug in the library)")
}
