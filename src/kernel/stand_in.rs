//! The kernel services of [`super`], for the library's own unit tests
//! (`cargo test -p vmm-gpt --lib`) only: this module exists in no other
//! build.  The declarations in `kernel.rs` stay as they are; the symbols
//! they name are defined here, in Rust, so the unit tests need no C and no
//! userland harness (that is `harness/`, for the C surface).
//!
//! - `kmem_zalloc`/`kmem_free`: std's allocator, with the alignment illumos
//!   guarantees (page-aligned from `PAGESIZE` up, 8 bytes below) and a
//!   per-thread ledger of live allocations that checks every free (known
//!   address, same size) and that tests read through [`kmem::usage`].
//!   Tests run on threads of their own, so each sees only its own memory.
//! - `hat_getpfnum`/`hat_kpm_pfn2va`: identity: a "physical" page number is
//!   the virtual address shifted by 12 (user addresses fit in 47 bits).
//! - `vmm_gpti_*`: the Intel EPT test format of `harness/c/pte_ept.c`
//!   (read/write/execute in bits 0..2, the address in 12..51), called
//!   directly: nothing is hot-patched here.
//! - `panic`: formats the message as the kernel would (`%s`, `%lx`, ...)
//!   and panics in Rust with it, so tests can expect a kernel panic with
//!   `#[should_panic(expected = "...")]`.  `cmn_err` formats and records
//!   ([`take_messages`]).  Both are variadic in C, which stable Rust can
//!   declare but not define, so each is a one-instruction assembly
//!   trampoline into a Rust function taking the integer argument registers.
//! - `__x86_indirect_thunk_rax`: `jmp rax`.
//! - `hot_patch_kernel_text` aborts (no test may patch text here);
//!   `modgetsymname` knows no symbols.

use core::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr};
use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::string::String;
use std::vec::Vec;

use super::{KernelAs, KM_SLEEP};
use crate::abi::{pfn_t, uint_t};
use crate::level::PAGESIZE;

/// The stand-in `struct hat *` of `kas`: any recognizable non-NULL value.
const KAS_HAT: usize = 0x4a5_0000;

/// The kernel address space, as far as the library reads it.
#[no_mangle]
static mut kas: KernelAs = KernelAs {
    a_contents: core::ptr::null_mut(),
    a_flags: 0,
    a_vbits: 0,
    a_cv: 0,
    a_hat: KAS_HAT as *mut c_void,
};

thread_local! {
    /// This thread's live allocations: address -> size.
    static LIVE: RefCell<BTreeMap<usize, usize>> = const { RefCell::new(BTreeMap::new()) };
    /// This thread's `cmn_err` messages, formatted.
    static MESSAGES: RefCell<Vec<(c_int, String)>> = const { RefCell::new(Vec::new()) };
}

/// The layout of a `kmem_zalloc(size)`: the alignment illumos promises.
fn layout(size: usize) -> Layout {
    let align = if size >= PAGESIZE { PAGESIZE } else { 8 };
    match Layout::from_size_align(size, align) {
        Ok(l) => l,
        Err(_) => std::process::abort(),
    }
}

/// Fails a kernel-service contract: this runs inside `extern "C"`
/// functions, which cannot unwind, so it reports and aborts the test
/// binary (a library bug of that kind must not pass quietly).
fn contract(what: std::fmt::Arguments<'_>) -> ! {
    std::eprintln!("kernel stand-in: {what}");
    std::process::abort()
}

#[no_mangle]
extern "C" fn kmem_zalloc(size: usize, flags: c_int) -> *mut c_void {
    if flags != KM_SLEEP || size == 0 {
        contract(format_args!(
            "kmem_zalloc({size}, {flags}): only KM_SLEEP, size > 0"
        ));
    }
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc::alloc_zeroed(layout(size)) };
    if p.is_null() {
        alloc::handle_alloc_error(layout(size));
    }
    LIVE.with(|l| l.borrow_mut().insert(p as usize, size));
    p.cast()
}

#[no_mangle]
extern "C" fn kmem_free(buf: *mut c_void, size: usize) {
    let had = LIVE.with(|l| l.borrow_mut().remove(&(buf as usize)));
    match had {
        Some(s) if s == size => {}
        Some(s) => contract(format_args!(
            "kmem_free({buf:p}, {size}): allocated with size {s}"
        )),
        None => contract(format_args!(
            "kmem_free({buf:p}, {size}): not a live allocation of this thread"
        )),
    }
    // SAFETY: `buf` is a live allocation of exactly this layout (checked
    // in the ledger above, from which it is gone now).
    unsafe { alloc::dealloc(buf.cast(), layout(size)) };
}

#[no_mangle]
extern "C" fn hat_getpfnum(hat: *mut c_void, addr: *mut c_char) -> pfn_t {
    let a = addr as usize;
    let live_page = LIVE.with(|l| l.borrow().get(&a).is_some_and(|&s| s >= PAGESIZE));
    if hat as usize != KAS_HAT || a % PAGESIZE != 0 || !live_page {
        contract(format_args!(
            "hat_getpfnum({hat:p}, {addr:p}): not kas or not a live kmem page"
        ));
    }
    (a / PAGESIZE) as pfn_t
}

#[no_mangle]
extern "C" fn hat_kpm_pfn2va(pfn: pfn_t) -> *mut c_char {
    (pfn as usize * PAGESIZE) as *mut c_char
}

#[no_mangle]
extern "C" fn hot_patch_kernel_text(addr: *mut c_char, new_instr: u32, size: c_uint) {
    contract(format_args!(
        "hot_patch_kernel_text({addr:p}, {new_instr:#x}, {size}): not in unit tests"
    ))
}

#[no_mangle]
extern "C" fn modgetsymname(_addr: usize, _offset: *mut c_ulong) -> *const c_char {
    core::ptr::null()
}

/// EPT: read, write, execute.
pub const EPT_RWX: u64 = 0x7;
/// EPT: the physical address bits.
pub const EPT_PA_MASK: u64 = 0x000f_ffff_ffff_f000;

#[no_mangle]
extern "C" fn vmm_gpti_map_table(pfn: u64) -> u64 {
    (pfn << 12) | EPT_RWX
}

#[no_mangle]
extern "C" fn vmm_gpti_map_page(pfn: u64, prot: uint_t, attr: u8) -> u64 {
    (pfn << 12) | (u64::from(prot) & EPT_RWX) | (u64::from(attr & 0x7) << 3)
}

#[no_mangle]
extern "C" fn vmm_gpti_parse(pte: u64, pfnp: *mut pfn_t, protp: *mut uint_t) -> bool {
    if pte & EPT_RWX == 0 {
        return false;
    }
    if !pfnp.is_null() {
        // SAFETY: non-NULL out-pointers are valid for a write (the
        // library's promise to the format).
        unsafe { *pfnp = ((pte & EPT_PA_MASK) >> 12) as pfn_t };
    }
    if !protp.is_null() {
        // SAFETY: as above.
        unsafe { *protp = (pte & EPT_RWX) as uint_t };
    }
    true
}

// The variadic functions and the retpoline thunk.  `panic` and `cmn_err`
// jump (keeping the caller's return address and every argument register)
// to Rust functions that take the six integer argument registers: on
// x86-64 a variadic call passes its integer arguments exactly as a
// non-variadic one does, and the functions read only as many as the
// format's conversions say were passed.
core::arch::global_asm!(
    ".pushsection .text.vmm_gpt_stand_in, \"ax\", @progbits",
    ".globl panic",
    ".type panic, @function",
    "panic:",
    "jmp {panic}",
    ".size panic, . - panic",
    ".globl cmn_err",
    ".type cmn_err, @function",
    "cmn_err:",
    "jmp {cmn_err}",
    ".size cmn_err, . - cmn_err",
    ".globl __x86_indirect_thunk_rax",
    ".type __x86_indirect_thunk_rax, @function",
    "__x86_indirect_thunk_rax:",
    "jmp rax",
    ".size __x86_indirect_thunk_rax, . - __x86_indirect_thunk_rax",
    ".popsection",
    panic = sym stand_in_panic,
    cmn_err = sym stand_in_cmn_err,
);

/// `panic(fmt, ...)`: a Rust panic with the formatted message.  It unwinds
/// (`kernel.rs` declares `panic` "C-unwind" in test builds), so a test can
/// expect it.
extern "C-unwind" fn stand_in_panic(
    fmt: *const c_char,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
) -> ! {
    // SAFETY: the library passes a literal format whose conversions match
    // the arguments that follow it (kernel.rs's `fail_*` and hotpatch.rs).
    let msg = unsafe { format(fmt, &[a1, a2, a3, a4, a5]) };
    std::panic!("{msg}")
}

/// `cmn_err(level, fmt, ...)`: formats and records the message.
extern "C" fn stand_in_cmn_err(
    level: c_int,
    fmt: *const c_char,
    a2: u64,
    a3: u64,
    a4: u64,
    a5: u64,
) {
    // SAFETY: as for stand_in_panic.
    let msg = unsafe { format(fmt, &[a2, a3, a4, a5]) };
    std::eprintln!("cmn_err({level}): {msg}");
    MESSAGES.with(|m| m.borrow_mut().push((level, msg)));
}

/// The `cmn_err` messages of this thread so far (level, text), taken.
pub fn take_messages() -> Vec<(c_int, String)> {
    MESSAGES.with(|m| core::mem::take(&mut *m.borrow_mut()))
}

/// The kernel's `printf` formatting, as far as the library uses it: `%s`
/// (NULL prints `<null>`), `%d`, `%u`, `%x`, `%p`, `%c`, with `l` or `ll`,
/// and `%%`.  The arguments are the integer argument registers, in order;
/// a format asking for more panics.
///
/// # Safety
/// `fmt` is a NUL-terminated string, and each of its `%s` conversions
/// takes an argument that is NULL or a NUL-terminated string.
pub unsafe fn format(fmt: *const c_char, args: &[u64]) -> String {
    use core::fmt::Write;
    // SAFETY: the caller's promise.
    let fmt = unsafe { CStr::from_ptr(fmt) }.to_bytes();
    let mut out = String::new();
    let mut args = args.iter().copied();
    let mut bytes = fmt.iter().copied();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(char::from(b));
            continue;
        }
        let mut long = false;
        let conv = loop {
            match bytes.next() {
                Some(b'l') => long = true,
                Some(c) => break c,
                None => std::panic!("stand-in format: a lone % at the end"),
            }
        };
        if conv == b'%' {
            out.push('%');
            continue;
        }
        let Some(v) = args.next() else {
            std::panic!("stand-in format: more conversions than argument registers");
        };
        let _ = match (conv, long) {
            (b's', _) if v == 0 => write!(out, "<null>"),
            (b's', _) => {
                // SAFETY: the caller's promise: a %s argument is a C string.
                let s = unsafe { CStr::from_ptr(v as *const c_char) };
                write!(out, "{}", s.to_string_lossy())
            }
            (b'd', true) => write!(out, "{}", v as i64),
            (b'd', false) => write!(out, "{}", v as u32 as i32),
            (b'u', true) => write!(out, "{v}"),
            (b'u', false) => write!(out, "{}", v as u32),
            (b'x', true) => write!(out, "{v:x}"),
            (b'x', false) => write!(out, "{:x}", v as u32),
            (b'p', _) => write!(out, "{v:#x}"),
            (b'c', _) => write!(out, "{}", char::from(v as u8)),
            _ => std::panic!("stand-in format: unknown conversion %{}", char::from(conv)),
        };
    }
    out
}

/// The kernel memory of this thread, as the stand-in's ledger has it.
pub mod kmem {
    use super::{LIVE, PAGESIZE};

    /// Live `kmem_zalloc` allocations of this thread.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Usage {
        /// Allocations.
        pub allocs: usize,
        /// Bytes in them.
        pub bytes: usize,
        /// Allocations of exactly `PAGESIZE`: the table pages.
        pub pages: usize,
    }

    /// What this thread has allocated and not freed.
    pub fn usage() -> Usage {
        LIVE.with(|l| {
            let l = l.borrow();
            Usage {
                allocs: l.len(),
                bytes: l.values().sum(),
                pages: l.values().filter(|&&s| s == PAGESIZE).count(),
            }
        })
    }

    /// Is `addr` the start of a live allocation of this thread?
    pub fn is_live(addr: usize) -> bool {
        LIVE.with(|l| l.borrow().contains_key(&addr))
    }
}
