//! Level arithmetic: which entry of a table at a given level covers a guest
//! physical address (GPA), and how much address space one entry covers.
//!
//! The tree has four levels of 512-entry tables.  An entry of a `LEVEL4`
//! (root) table covers 512 GiB, of `LEVEL3` 1 GiB, of `LEVEL2` 2 MiB, of
//! `LEVEL1` (leaf) 4 KiB, so the tree spans the 48-bit guest-physical space.
//!
//! Indices are typed so that they cannot be out of bounds: a [`Level`] is
//! one of four values and an [`Idx`] is below 512 by construction.  Arrays
//! indexed by them need no bounds checks, so no Rust panic path (and none
//! of `core::fmt`) is compiled into the library.

use core::ops::{Index, IndexMut};

use crate::abi::MAX_GPT_LEVEL;

/// Entries in one table (one 4 KiB page of 8-byte entries).
pub const PTE_PER_TABLE: usize = 512;
/// The largest index in a table.
pub const MAX_NODE_IDX: usize = PTE_PER_TABLE - 1;
/// Bytes in a table page (`PAGESIZE`).
pub const PAGESIZE: usize = 4096;
/// Low bits of an address inside its page (`PAGEOFFSET`).
pub const PAGEOFFSET: u64 = PAGESIZE as u64 - 1;
/// The page-number bits of an address (`PAGEMASK`).
pub const PAGEMASK: u64 = !PAGEOFFSET;
/// The size of the guest-physical space the four levels span: 2^48.
pub const GPA_SPACE_END: u64 = 1 << 48;

/// A level of the tree.  The raw C enum can hold any `int`; a `Level` is
/// only made from a checked value.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    L4 = 0,
    L3 = 1,
    L2 = 2,
    L1 = 3,
}

impl Level {
    /// The level for a raw C value, or `None` beyond `LEVEL1`.
    #[inline]
    pub const fn from_raw(raw: u32) -> Option<Level> {
        match raw {
            0 => Some(Level::L4),
            1 => Some(Level::L3),
            2 => Some(Level::L2),
            3 => Some(Level::L1),
            _ => None,
        }
    }

    /// The value as an index into per-level arrays (`entries[lvl]`).  The
    /// mask changes nothing (a level is at most 3) and shows the compiler
    /// that the index is in bounds.
    #[inline]
    pub const fn idx(self) -> usize {
        (self as usize) & (MAX_GPT_LEVEL - 1)
    }

    /// The level below this one (towards the leaves), if any.
    #[inline]
    pub const fn down(self) -> Option<Level> {
        match self {
            Level::L4 => Some(Level::L3),
            Level::L3 => Some(Level::L2),
            Level::L2 => Some(Level::L1),
            Level::L1 => None,
        }
    }

    /// The level above this one (towards the root), if any.
    #[inline]
    pub const fn up(self) -> Option<Level> {
        match self {
            Level::L4 => None,
            Level::L3 => Some(Level::L4),
            Level::L2 => Some(Level::L3),
            Level::L1 => Some(Level::L2),
        }
    }

    /// log2 of the address space one entry of a table at this level covers.
    #[inline]
    pub const fn shift(self) -> u32 {
        // LEVEL4: 39, LEVEL3: 30, LEVEL2: 21, LEVEL1: 12.
        39 - 9 * (self as u32)
    }

    /// Bytes of guest-physical space one entry at this level covers
    /// (`vmm_gpt_lvl_len()`).
    #[inline]
    pub const fn entry_len(self) -> u64 {
        1 << self.shift()
    }

    /// Mask of the address bits that select an entry at this level and
    /// above (`vmm_gpt_lvl_mask()`): `gpa & mask` is the first address the
    /// entry covering `gpa` maps.
    #[inline]
    pub const fn mask(self) -> u64 {
        !(self.entry_len() - 1)
    }

    /// The index of the entry covering `gpa` in a table at this level
    /// (`vmm_gpt_lvl_index()`).
    #[inline]
    pub const fn index(self, gpa: u64) -> Idx {
        Idx::wrap((gpa >> self.shift()) as usize)
    }
}

/// All levels from the root down.
pub const LEVELS: [Level; 4] = [Level::L4, Level::L3, Level::L2, Level::L1];

/// An index into a 512-entry table: always below 512.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Idx(usize);

impl Idx {
    /// The index `i mod 512`: the low 9 bits, as the hardware takes them.
    #[inline]
    pub const fn wrap(i: usize) -> Idx {
        Idx(i & MAX_NODE_IDX)
    }

    /// The index as a number.
    #[inline]
    pub const fn get(self) -> usize {
        self.0
    }

    /// All indices of a table, in order.
    pub fn all() -> impl Iterator<Item = Idx> {
        (0..PTE_PER_TABLE).map(Idx)
    }

    /// The indices from `first` to `last`, inclusive.
    pub fn range(first: Idx, last: Idx) -> impl Iterator<Item = Idx> {
        (first.0..=last.0).map(Idx)
    }
}

impl<T> Index<Idx> for [T; PTE_PER_TABLE] {
    type Output = T;
    #[inline]
    fn index(&self, i: Idx) -> &T {
        // An Idx is below 512, so this never fails; `get` keeps the proof
        // visible without unsafe code.
        match self.get(i.0 & MAX_NODE_IDX) {
            Some(v) => v,
            None => unreachable_index(),
        }
    }
}

impl<T> IndexMut<Idx> for [T; PTE_PER_TABLE] {
    #[inline]
    fn index_mut(&mut self, i: Idx) -> &mut T {
        match self.get_mut(i.0 & MAX_NODE_IDX) {
            Some(v) => v,
            None => unreachable_index(),
        }
    }
}

#[cold]
fn unreachable_index() -> ! {
    crate::kernel::fail(c"vmm_gpt", c"table index out of bounds")
}

/// The index of an entry in its table, from the entry's address: tables are
/// page-aligned, so it is the offset in the page divided by the entry size
/// (`vmm_gpt_ptep_index()`).
#[inline]
pub fn ptep_index(ptep: *const u64) -> Idx {
    Idx::wrap((ptep as usize & (PAGESIZE - 1)) / core::mem::size_of::<u64>())
}

/// Is `v` a multiple of the page size?
#[inline]
pub const fn page_aligned(v: u64) -> bool {
    v & PAGEOFFSET == 0
}

/// `ASSERT0(addr & PAGEOFFSET); ASSERT0(len & PAGEOFFSET);`, which the
/// original's range functions open with: in DEBUG builds a range that is
/// not page-aligned panics, naming the function and the value.  In other
/// builds the range goes on as the non-DEBUG original takes it (the
/// callers say how).
#[inline]
pub fn debug_assert_range(func: &core::ffi::CStr, addr: u64, len: u64) {
    if cfg!(vmm_gpt_debug) {
        if !page_aligned(addr) {
            crate::kernel::fail_named(func, c"addr", addr, c"is not page-aligned");
        }
        if !page_aligned(len) {
            crate::kernel::fail_named(func, c"len", len, c"is not page-aligned");
        }
    }
}
