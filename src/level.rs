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

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;

    /// A GPA from its four table indices and its page offset.
    fn gpa(i4: u64, i3: u64, i2: u64, i1: u64, off: u64) -> u64 {
        i4 * 512 * GIB + i3 * GIB + i2 * 2 * MIB + i1 * 4 * KIB + off
    }

    #[test]
    fn entry_lengths_are_the_x86_page_sizes() {
        assert_eq!(Level::L4.entry_len(), 512 * GIB);
        assert_eq!(Level::L3.entry_len(), GIB);
        assert_eq!(Level::L2.entry_len(), 2 * MIB);
        assert_eq!(Level::L1.entry_len(), 4 * KIB);
        assert_eq!(Level::L1.entry_len(), PAGESIZE as u64);
        // 512 entries of the root cover the 48-bit space.
        assert_eq!(512 * Level::L4.entry_len(), GPA_SPACE_END);
        assert_eq!(GPA_SPACE_END, 256 * 1024 * GIB);
    }

    #[test]
    fn shifts() {
        let shifts: [u32; 4] = LEVELS.map(Level::shift);
        assert_eq!(shifts, [39, 30, 21, 12]);
    }

    #[test]
    fn masks_keep_the_bits_above_an_entry() {
        assert_eq!(Level::L4.mask(), 0xffff_ff80_0000_0000);
        assert_eq!(Level::L3.mask(), 0xffff_ffff_c000_0000);
        assert_eq!(Level::L2.mask(), 0xffff_ffff_ffe0_0000);
        assert_eq!(Level::L1.mask(), 0xffff_ffff_ffff_f000);
        assert_eq!(Level::L1.mask(), PAGEMASK);
        let a = gpa(3, 5, 7, 11, 0x123);
        assert_eq!(a & Level::L4.mask(), gpa(3, 0, 0, 0, 0));
        assert_eq!(a & Level::L3.mask(), gpa(3, 5, 0, 0, 0));
        assert_eq!(a & Level::L2.mask(), gpa(3, 5, 7, 0, 0));
        assert_eq!(a & Level::L1.mask(), gpa(3, 5, 7, 11, 0));
    }

    #[test]
    fn indices_of_composed_addresses() {
        for (i4, i3, i2, i1) in [
            (0, 0, 0, 0),
            (1, 2, 3, 4),
            (511, 511, 511, 511),
            (256, 0, 511, 1),
            (17, 300, 64, 63),
        ] {
            let a = gpa(i4, i3, i2, i1, 0xfff);
            let got = LEVELS.map(|l| l.index(a).get() as u64);
            assert_eq!(got, [i4, i3, i2, i1], "gpa {a:#x}");
        }
    }

    #[test]
    fn indices_at_edges() {
        // The last page of the 48-bit space: every index is 511.
        for l in LEVELS {
            assert_eq!(l.index(GPA_SPACE_END - 1).get(), 511);
            assert_eq!(l.index(0xffff_ffff_f000).get(), 511);
        }
        // 2 MiB: LEVEL2 index 1, LEVEL1 index 0; one page below: 0 and 511.
        assert_eq!(Level::L2.index(2 * MIB).get(), 1);
        assert_eq!(Level::L1.index(2 * MIB).get(), 0);
        assert_eq!(Level::L2.index(2 * MIB - 4 * KIB).get(), 0);
        assert_eq!(Level::L1.index(2 * MIB - 4 * KIB).get(), 511);
        // 1 GiB: LEVEL3 index 1, the rest 0.
        assert_eq!(LEVELS.map(|l| l.index(GIB).get()), [0, 1, 0, 0]);
        assert_eq!(LEVELS.map(|l| l.index(GIB - 1).get()), [0, 0, 511, 511]);
        // 512 GiB.
        assert_eq!(LEVELS.map(|l| l.index(512 * GIB).get()), [1, 0, 0, 0]);
    }

    #[test]
    fn indices_above_the_48_bit_space_alias() {
        // As the hardware takes them: only the nine bits of each level.
        assert_eq!(LEVELS.map(|l| l.index(GPA_SPACE_END).get()), [0, 0, 0, 0]);
        assert_eq!(LEVELS.map(|l| l.index(u64::MAX).get()), [511; 4]);
        let a = gpa(5, 6, 7, 8, 0);
        assert_eq!(
            LEVELS.map(|l| l.index(a | (0xabcd << 48))),
            LEVELS.map(|l| l.index(a))
        );
    }

    #[test]
    fn levels_from_raw() {
        assert_eq!(Level::from_raw(0), Some(Level::L4));
        assert_eq!(Level::from_raw(1), Some(Level::L3));
        assert_eq!(Level::from_raw(2), Some(Level::L2));
        assert_eq!(Level::from_raw(3), Some(Level::L1));
        assert_eq!(Level::from_raw(4), None);
        assert_eq!(Level::from_raw(u32::MAX), None);
        // The raw values are the C enum's.
        assert_eq!(crate::abi::LEVEL4, 0);
        assert_eq!(crate::abi::LEVEL1, 3);
        for (raw, l) in LEVELS.iter().enumerate() {
            assert_eq!(l.idx(), raw);
            assert_eq!(Level::from_raw(raw as u32), Some(*l));
        }
        assert_eq!(MAX_GPT_LEVEL, 4);
    }

    #[test]
    fn down_and_up_walk_the_levels_in_order() {
        let mut l = Level::L4;
        let mut seen = std::vec![l];
        while let Some(d) = l.down() {
            assert_eq!(d.up(), Some(l));
            assert_eq!(d.shift() + 9, l.shift());
            l = d;
            seen.push(l);
        }
        assert_eq!(seen, LEVELS);
        assert_eq!(Level::L4.up(), None);
        assert_eq!(Level::L1.down(), None);
        assert!(Level::L4 < Level::L1);
    }

    #[test]
    fn idx_wraps_to_nine_bits() {
        assert_eq!(Idx::wrap(0).get(), 0);
        assert_eq!(Idx::wrap(511).get(), 511);
        assert_eq!(Idx::wrap(512).get(), 0);
        assert_eq!(Idx::wrap(513).get(), 1);
        assert_eq!(Idx::wrap(usize::MAX).get(), 511);
        assert_eq!(MAX_NODE_IDX, 511);
    }

    #[test]
    fn idx_all_and_range() {
        let all: std::vec::Vec<usize> = Idx::all().map(Idx::get).collect();
        assert_eq!(all, (0..512).collect::<std::vec::Vec<_>>());
        let r: std::vec::Vec<usize> = Idx::range(Idx::wrap(62), Idx::wrap(65))
            .map(Idx::get)
            .collect();
        assert_eq!(r, [62, 63, 64, 65]);
        assert_eq!(Idx::range(Idx::wrap(7), Idx::wrap(7)).count(), 1);
        assert_eq!(Idx::range(Idx::wrap(8), Idx::wrap(7)).count(), 0);
        assert_eq!(Idx::range(Idx::wrap(0), Idx::wrap(511)).count(), 512);
    }

    #[test]
    fn tables_are_indexed_by_idx() {
        let mut t = [0u32; PTE_PER_TABLE];
        for (i, v) in t.iter_mut().enumerate() {
            *v = i as u32 * 3;
        }
        assert_eq!(t[Idx::wrap(0)], 0);
        assert_eq!(t[Idx::wrap(100)], 300);
        assert_eq!(t[Idx::wrap(511)], 1533);
        assert_eq!(t[Idx::wrap(512 + 100)], 300);
        t[Idx::wrap(77)] = 9;
        assert_eq!(t[77], 9);
        assert_eq!(t[76], 228);
        assert_eq!(t[78], 234);
    }

    #[test]
    fn ptep_index_is_the_offset_in_the_page() {
        #[repr(C, align(4096))]
        struct Page([u64; 1024]);
        let page = Page([0; 1024]);
        let base = page.0.as_ptr();
        for i in [0usize, 1, 63, 64, 511] {
            assert_eq!(ptep_index(base.wrapping_add(i)).get(), i);
        }
        // The next page starts again at 0.
        assert_eq!(ptep_index(base.wrapping_add(512)).get(), 0);
        assert_eq!(ptep_index(base.wrapping_add(513)).get(), 1);
        assert_eq!(
            ptep_index(0xffff_8000_0000_0ff8usize as *const u64).get(),
            511
        );
    }

    #[test]
    fn page_alignment() {
        assert_eq!(PAGEOFFSET, 0xfff);
        assert_eq!(PAGEMASK, 0xffff_ffff_ffff_f000);
        for v in [0, 4096, 8192, GPA_SPACE_END, u64::MAX - 4095] {
            assert!(page_aligned(v), "{v:#x}");
        }
        for v in [1, 4095, 4097, 2 * MIB - 1, u64::MAX] {
            assert!(!page_aligned(v), "{v:#x}");
        }
    }

    #[test]
    fn debug_assert_range_passes_aligned_ranges() {
        debug_assert_range(c"f", 0, 0);
        debug_assert_range(c"f", GPA_SPACE_END - 4096, 4096);
        debug_assert_range(c"f", u64::MAX - 4095, 1 << 63);
    }

    #[test]
    #[cfg_attr(
        vmm_gpt_debug,
        should_panic(expected = "f: addr 0x1001 is not page-aligned")
    )]
    fn debug_assert_range_unaligned_addr() {
        debug_assert_range(c"f", 0x1001, 0x1000);
    }

    #[test]
    #[cfg_attr(
        vmm_gpt_debug,
        should_panic(expected = "g: len 0x10 is not page-aligned")
    )]
    fn debug_assert_range_unaligned_len() {
        debug_assert_range(c"g", 0x1000, 0x10);
    }
}
