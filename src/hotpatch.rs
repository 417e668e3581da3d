//! Hot-patching: installing a PTE format.
//!
//! Indirect calls are expensive since Spectre, so the library calls the
//! three per-entry format operations (`map_table`, `map_page`, `parse`)
//! through stubs, `vmm_gpti_map_table`, `vmm_gpti_map_page` and
//! `vmm_gpti_parse` (in illumos' `vmm_gpt_indirect.S`).  Each stub is one
//! 5-byte near `jmp` (opcode `0xE9`, then a signed 32-bit displacement from
//! the end of the instruction).  Until a format is installed they jump to
//! [`vmm_gpt_impl_panic`]; `vmm_gpt_init()` rewrites the three displacements
//! to jump straight to the format's functions, and `vmm_gpt_fini()` puts
//! them back.
//!
//! Patching is all-or-nothing: every stub is validated first (it must be a
//! near `jmp`, aimed at the installed format's function, and the new target
//! must be within reach of a 32-bit displacement); on the first failure the
//! library warns through `cmn_err`, naming the symbols, patches nothing and
//! refuses.
//!
//! The format's two A/D bits, `vpi_get_pmtp` and `vpi_hw_ad_supported` are
//! used through the installed `vmm_pte_impl` itself.

use core::ffi::{c_char, c_ulong, CStr};
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::abi::{pfn_t, uint_t};
use crate::abi_impl::vmm_pte_impl;
use crate::kernel::{self, verify};

const JMP_NEAR_OPCODE: u8 = 0xe9;
/// Bytes of a near `jmp`: the opcode and a 32-bit displacement.
const JMP_NEAR_LEN: usize = 5;

/// The target of every stub before a format is installed.
#[no_mangle]
pub extern "C" fn vmm_gpt_impl_panic() {
    // SAFETY: a literal format without conversions.
    unsafe { kernel::panic(c"Indirect function not hot-patched".as_ptr()) }
}

/// `vmm_gpt_impl_panic` retyped as the function-pointer type of one field
/// of [`vmm_pte_impl`], as the original's `(void *)vmm_gpt_impl_panic`.
macro_rules! impl_panic_as {
    ($ty:ty) => {
        // SAFETY: both types are function pointers, of one size and
        // representation.  Calling vmm_gpt_impl_panic with arguments is
        // harmless: the C ABI lets a callee ignore them, and it never
        // returns, so no result is read.
        Some(unsafe { core::mem::transmute::<extern "C" fn(), $ty>(vmm_gpt_impl_panic) })
    };
}

/// The "no format" implementation: every function is
/// [`vmm_gpt_impl_panic`], both bits are 0.
#[no_mangle]
pub static vmm_pte_uninit_impl: vmm_pte_impl = vmm_pte_impl {
    vpi_map_table: impl_panic_as!(unsafe extern "C" fn(pfn_t) -> u64),
    vpi_map_page: impl_panic_as!(unsafe extern "C" fn(pfn_t, uint_t, u8) -> u64),
    vpi_pte_parse: impl_panic_as!(unsafe extern "C" fn(u64, *mut pfn_t, *mut uint_t) -> bool),
    vpi_bit_accessed: 0,
    vpi_bit_dirty: 0,
    vpi_get_pmtp: impl_panic_as!(unsafe extern "C" fn(pfn_t, bool) -> u64),
    vpi_hw_ad_supported: impl_panic_as!(unsafe extern "C" fn() -> bool),
};

/// The installed format (`vmm_pte_uninit_impl` when none).
static INSTALLED: AtomicPtr<vmm_pte_impl> =
    AtomicPtr::new(&vmm_pte_uninit_impl as *const vmm_pte_impl as *mut vmm_pte_impl);

/// The installed format.
#[inline]
pub fn installed() -> &'static vmm_pte_impl {
    // SAFETY: INSTALLED only ever holds &vmm_pte_uninit_impl or a pointer
    // passed to vmm_gpt_init(), whose contract is that the implementation
    // (a kernel `const` object) outlives its installation.
    unsafe { &*INSTALLED.load(Ordering::Relaxed) }
}

fn uninit() -> *const vmm_pte_impl {
    &vmm_pte_uninit_impl
}

/// One stub and the function it jumps to before and after patching.
struct Patch {
    site: *mut u8,
    old_target: usize,
    new_target: usize,
}

/// Address of a format function (0 if NULL).
fn fn_addr<F: Copy>(f: Option<F>) -> usize {
    match f {
        // SAFETY: F is a function-pointer type, the size of a usize.
        Some(f) => unsafe { core::mem::transmute_copy::<F, usize>(&f) },
        None => 0,
    }
}

/// The three patches that turn the stubs from `old` to `new`.
fn patches(old: &vmm_pte_impl, new: &vmm_pte_impl) -> [Patch; 3] {
    [
        Patch {
            site: kernel::vmm_gpti_map_table as *mut u8,
            old_target: fn_addr(old.vpi_map_table),
            new_target: fn_addr(new.vpi_map_table),
        },
        Patch {
            site: kernel::vmm_gpti_map_page as *mut u8,
            old_target: fn_addr(old.vpi_map_page),
            new_target: fn_addr(new.vpi_map_page),
        },
        Patch {
            site: kernel::vmm_gpti_parse as *mut u8,
            old_target: fn_addr(old.vpi_pte_parse),
            new_target: fn_addr(new.vpi_pte_parse),
        },
    ]
}

/// The instruction at a stub: its opcode and its displacement.
fn read_jmp(site: *const u8) -> (u8, i32) {
    // SAFETY: the sites are the three stubs in kernel text, 5 readable
    // bytes each; the displacement is unaligned, hence the byte reads.
    unsafe {
        let opcode = ptr::read_volatile(site);
        let mut disp = [0u8; 4];
        for (i, b) in disp.iter_mut().enumerate() {
            *b = ptr::read_volatile(site.add(1 + i));
        }
        (opcode, i32::from_le_bytes(disp))
    }
}

/// Where a near `jmp` at `site` with displacement `disp` lands.
fn jmp_target(site: *const u8, disp: i32) -> usize {
    (site as usize + JMP_NEAR_LEN).wrapping_add(disp as isize as usize)
}

/// The displacement a near `jmp` at `site` needs to land on `target`, or
/// `None` when `target` is out of 32-bit reach.
fn jmp_disp(site: *const u8, target: usize) -> Option<i32> {
    let off = target.wrapping_sub(site as usize + JMP_NEAR_LEN) as isize;
    i32::try_from(off).ok()
}

/// A symbol name for an address, for warnings ("<null>" when unknown).
fn sym(addr: usize) -> *const c_char {
    let mut offset: c_ulong = 0;
    // SAFETY: modgetsymname only reads the module symbol tables; it returns
    // NULL or a NUL-terminated name that lives as long as the module.
    let name = unsafe { kernel::modgetsymname(addr, &mut offset) };
    if name.is_null() {
        c"<null>".as_ptr()
    } else {
        name
    }
}

/// Validates every stub, then, only if all are valid, retargets them from
/// the functions of `old` to those of `new`.  Returns false (having warned
/// and patched nothing) on the first invalid stub.
fn patch_indirection(old: &vmm_pte_impl, new: &vmm_pte_impl) -> bool {
    let patches = patches(old, new);

    for p in &patches {
        let (opcode, disp) = read_jmp(p.site);
        if opcode != JMP_NEAR_OPCODE {
            // SAFETY: literal format, one string argument.
            unsafe {
                kernel::cmn_err(
                    kernel::CE_WARN,
                    c"vmm: non-JMP instruction found when attempting to hotpatch %s".as_ptr(),
                    sym(p.site as usize),
                );
            }
            return false;
        }
        let target = jmp_target(p.site, disp);
        if target != p.old_target {
            // SAFETY: literal format, three string arguments.
            unsafe {
                kernel::cmn_err(
                    kernel::CE_WARN,
                    c"vmm: JMP instr @ %s has unexpected target %s != %s".as_ptr(),
                    sym(p.site as usize),
                    sym(target),
                    sym(p.old_target),
                );
            }
            return false;
        }
        if jmp_disp(p.site, p.new_target).is_none() {
            // SAFETY: literal format, two string arguments.
            unsafe {
                kernel::cmn_err(
                    kernel::CE_WARN,
                    c"vmm: near-JMP to new target %s is too far for site %s".as_ptr(),
                    sym(p.new_target),
                    sym(p.site as usize),
                );
            }
            return false;
        }
    }

    for p in &patches {
        let disp = jmp_disp(p.site, p.new_target);
        verify!(c"vmm_gpt_init", disp.is_some());
        let disp = disp.unwrap_or(0);
        // SAFETY: the site is a validated stub; its displacement is the 4
        // bytes after the opcode.  hot_patch_kernel_text() wants the patch
        // aligned to its size, which the stubs' displacements are not; on
        // x86-64 that is harmless as long as no other CPU executes the stub
        // meanwhile, which the callers guarantee: this runs at module load
        // and unload only (the original makes the same argument).
        unsafe {
            kernel::hot_patch_kernel_text(p.site.add(1) as *mut c_char, disp as u32, 4);
        }
    }
    true
}

/// `vmm_gpt_init()`: installs `new`, which must not be NULL and must have
/// the three functions the stubs jump to; a format must not be installed
/// already.
///
/// # Safety
/// `new` is NULL or points to a `vmm_pte_impl` that stays valid for as long
/// as it is installed (the kernel passes a `const` global).
pub unsafe fn init(new: *const vmm_pte_impl) -> bool {
    const FUNC: &CStr = c"vmm_gpt_init";
    let cur = INSTALLED.load(Ordering::Relaxed) as *const vmm_pte_impl;
    if cur != uninit() {
        kernel::fail_value(FUNC, c"a PTE format is already installed at", cur as u64);
    }
    if new.is_null() {
        kernel::fail(FUNC, c"NULL vmm_pte_impl");
    }
    // SAFETY: non-NULL, and the caller passes a kernel `const struct
    // vmm_pte_impl` that outlives its installation.
    let new_ref = unsafe { &*new };
    // A NULL stub target: in the kernel, whose text lies in the top 2 GiB,
    // address 0 is within reach of a near jmp, so the original would patch
    // the stubs to jump to address 0 and the first table operation would
    // jump there.  Refuse it instead, in every build.  NULL `vpi_get_pmtp`
    // or `vpi_hw_ad_supported` are not called until `vmm_gpt_get_pmtp` and
    // `vmm_gpt_can_track_dirty`, which panic then (the original calls NULL
    // there), so installing such a format succeeds, as in the original.
    let stubs = [
        new_ref.vpi_map_table.is_some(),
        new_ref.vpi_map_page.is_some(),
        new_ref.vpi_pte_parse.is_some(),
    ];
    if stubs.contains(&false) {
        kernel::fail_value(FUNC, c"vmm_pte_impl has a NULL stub target at", new as u64);
    }

    if patch_indirection(installed(), new_ref) {
        INSTALLED.store(new as *mut vmm_pte_impl, Ordering::Relaxed);
        true
    } else {
        false
    }
}

/// `vmm_gpt_fini()`: puts the stubs back to `vmm_gpt_impl_panic` and
/// uninstalls the format.  All callers are excluded (module unload).
pub fn fini() {
    let ok = patch_indirection(installed(), &vmm_pte_uninit_impl);
    verify!(c"vmm_gpt_fini", ok);
    INSTALLED.store(uninit() as *mut vmm_pte_impl, Ordering::Relaxed);
}

/// Before `vmm_gpt_init()` the format's functions are all
/// `vmm_gpt_impl_panic`, retyped; calling it through another signature
/// would be undefined behaviour in Rust, so call it as itself.
fn panic_if_uninstalled() {
    if ptr::eq(installed(), uninit()) {
        vmm_gpt_impl_panic();
    }
}

/// The installed format's EPTP / nCR3 for a root table.
pub fn get_pmtp(root_pfn: pfn_t, track_dirty: bool) -> u64 {
    panic_if_uninstalled();
    match installed().vpi_get_pmtp {
        // SAFETY: a function of the installed format (a format is
        // installed: checked above) taking a pfn_t and a bool (passed
        // zero-extended, as C passes it) and returning a uint64_t.
        Some(f) => unsafe { kernel::call_indirect(f as usize, root_pfn, u64::from(track_dirty)) },
        None => kernel::fail(c"vmm_gpt_get_pmtp", c"vpi_get_pmtp is NULL"),
    }
}

/// Does the installed format's hardware keep A/D bits?
pub fn hw_ad_supported() -> bool {
    panic_if_uninstalled();
    match installed().vpi_hw_ad_supported {
        // SAFETY: as for get_pmtp(): a function of the installed format
        // taking nothing and returning a bool in %al (the rest of %rax is
        // unspecified, hence the mask).
        Some(f) => (unsafe { kernel::call_indirect(f as usize, 0, 0) } & 0xff) != 0,
        None => kernel::fail(c"vmm_gpt_can_track_dirty", c"vpi_hw_ad_supported is NULL"),
    }
}
