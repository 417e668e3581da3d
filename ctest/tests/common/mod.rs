//! Facts shared by the Rust-side tests: illumos-build's lists of names
//! (one a line, `#` comments).

/// The kernel object's 21 exports: the 19 functions of illumos'
/// `sys/vmm_gpt.h` in header order, then the stubs' panic target and the
/// "no format" implementation.
pub const EXPORTS: &str = include_str!("../../../illumos-build/exports.txt");
/// What the kernel object may import.
#[allow(dead_code)] // headers.rs does not need it
pub const IMPORTS: &str = include_str!("../../../illumos-build/imports.txt");

/// The names of one of the lists, in order.
pub fn names(list: &'static str) -> Vec<&'static str> {
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}
