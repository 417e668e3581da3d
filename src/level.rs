//! Level arithmetic: which entry of a table at a given level covers a guest
//! physical address (GPA), and how much address space one entry covers.
//!
//! The tree has four levels of 512-entry tables.  An entry of a `LEVEL4`
//! (root) table covers 512 GiB, of `LEVEL3` 1 GiB, of `LEVEL2` 2 MiB, of
//! `LEVEL1` (leaf) 4 KiB, so the tree spans the 48-bit guest-physical space.

use crate::abi::{LEVEL1, LEVEL4};

/// Entries in one table (one 4 KiB page of 8-byte entries).
pub const PTE_PER_TABLE: usize = 512;
/// The largest index in a table.
pub const MAX_NODE_IDX: usize = PTE_PER_TABLE - 1;
/// Bytes in a table page (`PAGESIZE`).
pub const PAGESIZE: usize = 4096;
/// Low bits of an address inside its page (`PAGEOFFSET`).
pub const PAGEOFFSET: u64 = PAGESIZE as u64 - 1;
/// The size of the guest-physical space the four levels span: 2^48.
pub const GPA_SPACE_END: u64 = 1 << 48;

/// A level of the tree, known to be one of `LEVEL4` (0) .. `LEVEL1` (3).
///
/// The raw C enum can hold any `int`; a `Level` is only made from a checked
/// value, so indexing per-level arrays with it never goes out of bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Level(u8);

impl Level {
    pub const L4: Level = Level(LEVEL4 as u8);
    pub const L3: Level = Level(LEVEL4 as u8 + 1);
    pub const L2: Level = Level(LEVEL4 as u8 + 2);
    pub const L1: Level = Level(LEVEL1 as u8);

    /// The level for a raw C value, or `None` beyond `LEVEL1`.
    #[inline]
    pub const fn from_raw(raw: u32) -> Option<Level> {
        if raw <= LEVEL1 {
            Some(Level(raw as u8))
        } else {
            None
        }
    }

    /// The value as an index into per-level arrays (`entries[lvl]`).
    #[inline]
    pub const fn idx(self) -> usize {
        self.0 as usize
    }

    /// The level below this one (towards the leaves), if any.
    #[inline]
    pub const fn down(self) -> Option<Level> {
        if self.0 < LEVEL1 as u8 {
            Some(Level(self.0 + 1))
        } else {
            None
        }
    }

    /// The level above this one (towards the root), if any.
    #[inline]
    pub const fn up(self) -> Option<Level> {
        if self.0 > LEVEL4 as u8 {
            Some(Level(self.0 - 1))
        } else {
            None
        }
    }

    /// log2 of the address space one entry of a table at this level covers.
    #[inline]
    pub const fn shift(self) -> u32 {
        // LEVEL4: 39, LEVEL3: 30, LEVEL2: 21, LEVEL1: 12.
        39 - 9 * self.0 as u32
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
    pub const fn index(self, gpa: u64) -> usize {
        ((gpa >> self.shift()) as usize) & MAX_NODE_IDX
    }

    /// Bytes of guest-physical space a whole table at this level covers.
    #[inline]
    pub const fn table_len(self) -> u64 {
        // Only the root's span (2^48) does not fit the entry arithmetic
        // of a level above it, and it still fits a u64.
        self.entry_len() << 9
    }
}

/// All levels from the root down.
pub const LEVELS: [Level; 4] = [Level::L4, Level::L3, Level::L2, Level::L1];

/// The index of an entry in its table, from the entry's address: tables are
/// page-aligned, so it is the offset in the page divided by the entry size
/// (`vmm_gpt_ptep_index()`).
#[inline]
pub fn ptep_index(ptep: *const u64) -> usize {
    (ptep as usize & (PAGESIZE - 1)) / core::mem::size_of::<u64>()
}

/// Is `v` a multiple of the page size?
#[inline]
pub const fn page_aligned(v: u64) -> bool {
    v & PAGEOFFSET == 0
}
