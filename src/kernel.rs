//! Kernel imports: the illumos services the library uses, exactly those the
//! original `vmm_gpt.c` uses, and the kernel-panic paths built on `panic()`.
//!
//! Nothing else is imported (`memcpy` and friends aside, which the compiler
//! may emit and genunix provides).  In the userland test harness these are
//! provided by the kernel stand-in in `harness/c/kernel.c`, in the unit
//! tests of `src/` (`cargo test -p vmm-gpt --lib`) by `stand_in`.

use core::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr};

use crate::abi::{pfn_t, uint_t};

/// `KM_SLEEP`: block until memory is available; `kmem_zalloc` never fails.
pub const KM_SLEEP: c_int = 0;
/// `CE_WARN` severity for `cmn_err`.
pub const CE_WARN: c_int = 2;

/// The head of the kernel's `struct as` (`<vm/as.h>`), as far as `a_hat`,
/// the only field used.  On amd64 `kmutex_t` is one pointer and
/// `kcondvar_t` one `ushort_t`, so `a_hat` sits at offset 16, not 0.
#[repr(C)]
pub struct KernelAs {
    /// `kmutex_t a_contents`
    pub a_contents: *mut c_void,
    /// `uchar_t a_flags`
    pub a_flags: u8,
    /// `uchar_t a_vbits`
    pub a_vbits: u8,
    /// `kcondvar_t a_cv`
    pub a_cv: u16,
    /// `struct hat *a_hat`
    pub a_hat: *mut c_void,
}

const _: () = assert!(core::mem::offset_of!(KernelAs, a_hat) == 16);

extern "C" {
    /// `void *kmem_zalloc(size_t, int)`: zeroed memory; with `KM_SLEEP`
    /// never NULL; a `PAGESIZE` request is page-aligned.
    pub fn kmem_zalloc(size: usize, flags: c_int) -> *mut c_void;
    /// `void kmem_free(void *, size_t)`: the size must be the allocation's.
    pub fn kmem_free(buf: *mut c_void, size: usize);
    /// `pfn_t hat_getpfnum(struct hat *, caddr_t)`.
    pub fn hat_getpfnum(hat: *mut c_void, addr: *mut c_char) -> pfn_t;
    /// `caddr_t hat_kpm_pfn2va(pfn_t)`.
    pub fn hat_kpm_pfn2va(pfn: pfn_t) -> *mut c_char;
    /// The kernel's address space.
    pub static kas: KernelAs;
    /// `void hot_patch_kernel_text(caddr_t, uint32_t, uint_t)`.
    pub fn hot_patch_kernel_text(addr: *mut c_char, new_instr: u32, size: c_uint);
    /// `const char *modgetsymname(uintptr_t, ulong_t *)`.
    pub fn modgetsymname(addr: usize, offset: *mut c_ulong) -> *const c_char;
    /// `void cmn_err(int, const char *, ...)`.
    pub fn cmn_err(level: c_int, fmt: *const c_char, ...);
    /// `void panic(const char *, ...)`: never returns.
    #[cfg(not(test))]
    pub fn panic(fmt: *const c_char, ...) -> !;

    /// The hot-patched indirection stubs (`vmm_gpt_indirect.S`): each a
    /// 5-byte `jmp` to the installed format's function.
    pub fn vmm_gpti_map_table(pfn: u64) -> u64;
    pub fn vmm_gpti_map_page(pfn: u64, prot: uint_t, attr: u8) -> u64;
    pub fn vmm_gpti_parse(pte: u64, pfnp: *mut pfn_t, protp: *mut uint_t) -> bool;
}

// In the unit tests `panic()` is a Rust panic that unwinds to the test
// (`stand_in`), so it is declared as a function that may unwind.
#[cfg(test)]
extern "C-unwind" {
    /// `void panic(const char *, ...)`: never returns.
    pub fn panic(fmt: *const c_char, ...) -> !;
}

/// The kernel services above, defined for the unit tests.
#[cfg(test)]
pub mod stand_in;

extern "C" {
    /// The kernel's retpoline thunk for an indirect transfer to `%rax`
    /// (illumos `uts/intel/ml/retpoline.S`).  illumos builds all kernel code
    /// with retpolines (`-mindirect-branch=thunk-extern`) and patches the
    /// thunks at boot into a full retpoline or a plain `jmp *%rax`, as the
    /// CPU needs: a raw indirect branch in the hypervisor would be a Spectre
    /// v2 gadget that guests can train.
    pub fn __x86_indirect_thunk_rax();
}

/// Calls the C function at `f` with up to two integer-class arguments and
/// returns its integer-class result (`%rax`), through the retpoline thunk
/// instead of a raw `call *`.  The library's only indirect calls, to the
/// installed format's `vpi_get_pmtp` and `vpi_hw_ad_supported`, go through
/// here.
///
/// # Safety
/// `f` is a C function that takes (at most) these two arguments in this
/// order and returns a value in `%rax` (or nothing that is then read).
#[inline(always)]
pub unsafe fn call_indirect(f: usize, arg0: u64, arg1: u64) -> u64 {
    let ret: u64;
    // SAFETY: a call as the C ABI makes it: arguments in %rdi and %rsi,
    // the target in %rax (where the thunk takes it), every caller-saved
    // register clobbered, the stack aligned (no `nostack`: the compiler
    // keeps it aligned for a call and clear of any red zone).  The callee
    // is the caller's promise.
    unsafe {
        core::arch::asm!(
            "call {thunk}",
            thunk = sym __x86_indirect_thunk_rax,
            inout("rax") f as u64 => ret,
            in("rdi") arg0,
            in("rsi") arg1,
            clobber_abi("C"),
        );
    }
    ret
}

/// Returns `v` only after everything before it: a call whose result (or
/// whose completion) passes through here cannot become a tail call.
///
/// illumos compiles kernel C with `-fno-optimize-sibling-calls`: every
/// function returns through a `ret` of its own, where DTrace's fbt places
/// its return probe, and keeps its frame in stack traces.  rustc has no such
/// switch, so the library ends each call that would otherwise be a tail
/// call (`jmp` to the callee after popping the frame) with this: an empty
/// `asm!` block, which the compiler must assume has effects, so the call
/// must return here first.  `illumos-build/objcheck` fails the kernel
/// object if any tail call is left.
#[inline(always)]
pub fn no_tail<T>(v: T) -> T {
    no_tail_here();
    v
}

/// [`no_tail`] for a call made as a statement: put right after it, the
/// call returns here before the function goes on to its own `ret`.
#[inline(always)]
pub fn no_tail_here() {
    // SAFETY: an empty instruction sequence: it touches no register,
    // memory or flag.
    unsafe { core::arch::asm!("", options(nomem, nostack, preserves_flags)) };
}

/// Ends in a kernel panic with `"<func>: <msg>"`.
///
/// Every failure path of the library goes through one of these `fail_*`
/// functions.  They are cold and out of line so that checks cost one
/// compare and branch on the hot paths, and they pass all data through
/// `%s`/`%lx` conversions: nothing but a literal is ever used as a format.
#[cold]
#[inline(never)]
pub fn fail(func: &CStr, msg: &CStr) -> ! {
    // SAFETY: the format is a literal whose conversions match the
    // arguments: two NUL-terminated strings.
    unsafe { panic(c"%s: %s".as_ptr(), func.as_ptr(), msg.as_ptr()) }
}

/// Ends in a kernel panic with `"<func>: <msg> 0x<value>"`.
#[cold]
#[inline(never)]
pub fn fail_value(func: &CStr, msg: &CStr, value: u64) -> ! {
    // SAFETY: the literal format takes two strings and an unsigned long,
    // which is 64 bits on the LP64 kernel.
    unsafe {
        panic(
            c"%s: %s 0x%lx".as_ptr(),
            func.as_ptr(),
            msg.as_ptr(),
            value as c_ulong,
        )
    }
}

/// Ends in a kernel panic with `"<func>: <what> 0x<value> <msg>"`, e.g.
/// `vmm_gpt_populate_region: addr 0x1234 is not page-aligned`.
#[cold]
#[inline(never)]
pub fn fail_named(func: &CStr, what: &CStr, value: u64, msg: &CStr) -> ! {
    // SAFETY: the literal format takes a string, a string, an unsigned long
    // and a string, in that order, and gets exactly those.
    unsafe {
        panic(
            c"%s: %s 0x%lx %s".as_ptr(),
            func.as_ptr(),
            what.as_ptr(),
            value as c_ulong,
            msg.as_ptr(),
        )
    }
}

/// Ends in a kernel panic about a range:
/// `"<func>: range 0x<addr> + 0x<len> <msg>"`.
#[cold]
#[inline(never)]
pub fn fail_range(func: &CStr, addr: u64, len: u64, msg: &CStr) -> ! {
    // SAFETY: the literal format takes a string, two unsigned longs and a
    // string, and gets exactly those.
    unsafe {
        panic(
            c"%s: range 0x%lx + 0x%lx %s".as_ptr(),
            func.as_ptr(),
            addr as c_ulong,
            len as c_ulong,
            msg.as_ptr(),
        )
    }
}

/// `VERIFY(cond)`: checked in every build; a failure is a kernel panic
/// naming the function and the condition.
macro_rules! verify {
    ($func:expr, $cond:expr) => {
        if !$cond {
            $crate::kernel::fail(
                $func,
                $crate::kernel::concat_cstr!("VERIFY failed: ", stringify!($cond)),
            )
        }
    };
}

/// `ASSERT(cond)`: checked in DEBUG builds (`cfg(vmm_gpt_debug)`, the DEBUG
/// kernel), compiled out of release builds, like illumos' `ASSERT`.
macro_rules! debug_verify {
    ($func:expr, $cond:expr) => {
        if cfg!(vmm_gpt_debug) && !$cond {
            $crate::kernel::fail(
                $func,
                $crate::kernel::concat_cstr!("ASSERT failed: ", stringify!($cond)),
            )
        }
    };
}

/// A C string literal from pieces known at compile time.
macro_rules! concat_cstr {
    ($($s:expr),+ $(,)?) => {
        // Evaluated at compile time: no runtime check, no panic path.
        const {
            match ::core::ffi::CStr::from_bytes_with_nul(concat!($($s),+, "\0").as_bytes()) {
                Ok(s) => s,
                Err(_) => panic!("not a C string"),
            }
        }
    };
}

pub(crate) use {concat_cstr, debug_verify, verify};

#[cfg(test)]
mod tests {
    use super::stand_in::{format, take_messages};
    use super::*;

    #[test]
    #[should_panic(expected = "vmm_gpt_x: bad thing")]
    fn fail_formats_function_and_message() {
        fail(c"vmm_gpt_x", c"bad thing")
    }

    #[test]
    #[should_panic(expected = "f: msg 0xdeadbeef00000001")]
    fn fail_value_prints_all_64_bits_in_hex() {
        fail_value(c"f", c"msg", 0xdead_beef_0000_0001)
    }

    #[test]
    #[should_panic(expected = "vmm_gpt_populate_region: addr 0x1234 is not page-aligned")]
    fn fail_named_puts_the_value_between_name_and_message() {
        fail_named(
            c"vmm_gpt_populate_region",
            c"addr",
            0x1234,
            c"is not page-aligned",
        )
    }

    #[test]
    #[should_panic(expected = "f: range 0xffff00000000 + 0x0 wraps")]
    fn fail_range_prints_address_then_length() {
        fail_range(c"f", 0xffff_0000_0000, 0, c"wraps")
    }

    #[test]
    #[should_panic(expected = "g: VERIFY failed: 1 + 1 == 3")]
    fn verify_names_the_condition() {
        verify!(c"g", 1 + 1 == 3);
    }

    #[test]
    fn verify_of_a_true_condition_does_nothing() {
        verify!(c"g", 1 + 1 == 2);
        debug_verify!(c"g", 2 > 1);
    }

    #[test]
    #[cfg_attr(
        vmm_gpt_debug,
        should_panic(expected = "h: ASSERT failed: u64::MAX == 0")
    )]
    fn debug_verify_checks_only_in_debug_builds() {
        debug_verify!(c"h", u64::MAX == 0);
    }

    #[test]
    fn concat_cstr_is_nul_terminated() {
        let s = concat_cstr!("a", "bc", stringify!(x == y));
        assert_eq!(s.to_bytes_with_nul(), b"abcx == y\0");
    }

    #[test]
    fn stand_in_format_conversions() {
        let s = c"str";
        // SAFETY: integer conversions only.
        let out = unsafe { format(c"%d %ld %u".as_ptr(), &[u64::MAX, u64::MAX, u64::MAX]) };
        assert_eq!(out, "-1 -1 4294967295");
        // SAFETY: a string, NULL, and two integers.
        let out = unsafe {
            format(
                c"%s %s %lx %x %%".as_ptr(),
                &[s.as_ptr() as u64, 0, 0x1_0000_0000, 0x1_0000_00ff],
            )
        };
        assert_eq!(out, "str <null> 100000000 ff %");
    }

    #[test]
    #[should_panic(expected = "more conversions than argument registers")]
    fn stand_in_format_refuses_arguments_it_was_not_given() {
        // SAFETY: integer conversions only.
        unsafe { format(c"%lx %lx".as_ptr(), &[1]) };
    }

    #[test]
    fn cmn_err_records_the_formatted_message() {
        take_messages();
        // SAFETY: the format takes a string and an unsigned long, and
        // gets them.
        unsafe {
            cmn_err(
                CE_WARN,
                c"vmm: hotpatch %s, %lx".as_ptr(),
                c"site".as_ptr(),
                0x2au64,
            )
        };
        assert_eq!(
            take_messages(),
            std::vec![(CE_WARN, std::string::String::from("vmm: hotpatch site, 2a"))]
        );
        assert!(take_messages().is_empty());
    }

    #[test]
    fn no_tail_returns_its_argument() {
        assert_eq!(no_tail(0x1234_5678_u64), 0x1234_5678);
        no_tail_here();
    }
}
