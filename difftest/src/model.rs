//! The populated regions of a GPT, as vmspace keeps them: non-overlapping,
//! page-aligned, non-empty ranges below 2^48.  Both the generator and the
//! runner keep one (the runner to skip operations a shrunk or hand-written
//! sequence makes invalid).

use crate::{GPA_END, PAGE};

#[derive(Clone, Debug, Default)]
pub struct Regions {
    /// `(start, len)`, in no particular order (there are few).
    list: Vec<(u64, u64)>,
    live: u64,
}

impl Regions {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Live populated bytes.
    pub fn live_bytes(&self) -> u64 {
        self.live
    }

    pub fn get(&self, i: usize) -> (u64, u64) {
        self.list[i]
    }

    /// Can `[addr, addr + len)` be populated as a new region?
    pub fn fits(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        addr.is_multiple_of(PAGE)
            && len.is_multiple_of(PAGE)
            && len > 0
            && end <= GPA_END
            && self.list.iter().all(|&(s, l)| end <= s || s + l <= addr)
    }

    pub fn insert(&mut self, addr: u64, len: u64) {
        debug_assert!(self.fits(addr, len));
        self.list.push((addr, len));
        self.live += len;
    }

    /// Removes the region starting at `addr`; returns its length.
    pub fn remove(&mut self, addr: u64) -> Option<u64> {
        let i = self.list.iter().position(|&(s, _)| s == addr)?;
        let (_, len) = self.list.swap_remove(i);
        self.live -= len;
        Some(len)
    }

    /// The region containing `gpa`.
    pub fn containing(&self, gpa: u64) -> Option<(u64, u64)> {
        self.list
            .iter()
            .copied()
            .find(|&(s, l)| s <= gpa && gpa < s + l)
    }

    /// The end of the highest region (0 without one).
    pub fn end(&self) -> u64 {
        self.list.iter().map(|&(s, l)| s + l).max().unwrap_or(0)
    }

    /// Every region, by address.
    pub fn sorted(&self) -> Vec<(u64, u64)> {
        let mut v = self.list.clone();
        v.sort_unstable();
        v
    }

    pub fn clear(&mut self) {
        self.list.clear();
        self.live = 0;
    }
}
