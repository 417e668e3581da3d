//! The node tree: the kernel memory behind a GPT, and the bookkeeping that
//! says which tables exist and why.
//!
//! The hardware sees only the page tables: one zeroed 4 KiB page per table,
//! from `kmem_zalloc(PAGESIZE)`, linked by format-specific PTEs.  Beside them
//! the library keeps one *directory* per interior table (`LEVEL4`, `LEVEL3`,
//! `LEVEL2`) that points at the table's children, so populating and vacating
//! find a child in O(1) by its index instead of walking a sibling list as
//! the original does:
//!
//! ```text
//!   Gpt ──> Dir<L3Dir>  (LEVEL4: the root table + up to 512 LEVEL3 dirs)
//!             └─> Dir<L2Dir>  (LEVEL3 table + up to 512 LEVEL2 dirs)
//!                   └─> L2Dir  (LEVEL2 table + up to 512 leaf tables,
//!                                and per leaf table its reference count)
//! ```
//!
//! Leaf (`LEVEL1`) tables need no directory: all the library knows about
//! one is its address and its reference count, kept in its parent's
//! `L2Dir`.
//!
//! A directory's child pointers are kept in [`Slots`]: eight chunks of 64,
//! each allocated when a child first lands in it, so a lookup is still two
//! loads, and a directory with few children (a guest's root, a sparse
//! layout) does not carry a 4 KiB array of mostly NULL pointers.
//!
//! Reference counts, as in the original:
//! - a leaf table counts its entries that populated regions cover
//!   (maintained by populate/vacate, never by mapping or unmapping pages);
//! - an interior table counts its present children.
//!
//! A table lives exactly as long as its count is non-zero (the root: as long
//! as the GPT).  All memory comes from `kmem_zalloc` and goes back through
//! `kmem_free` with the same size.  All unsafe code about the tree's memory
//! is in this module: the rest of the library sees directories through
//! `&`/`&mut` references whose validity the tree's ownership guarantees (a
//! parent exclusively owns its children; populate, vacate and free of one
//! GPT are serialized by the caller).

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr;

use crate::abi::{pfn_t, vmm_gpt_t};
use crate::kernel::{self, verify, KM_SLEEP};
use crate::level::{Idx, PAGESIZE, PTE_PER_TABLE};
use crate::pte::{self, Pte};

/// A hardware page table: 512 entries in one page.
#[repr(C, align(4096))]
pub struct Table {
    pub entries: [Pte; PTE_PER_TABLE],
}

const _: () = assert!(size_of::<Table>() == PAGESIZE);

/// Allocates a zeroed value of `T` from the kernel.
///
/// # Safety
/// All-zero bytes must be a valid `T`.
unsafe fn kzalloc<T>() -> *mut T {
    // SAFETY: kmem_zalloc with KM_SLEEP never fails and returns zeroed
    // memory of the requested size, aligned for any type of that size (a
    // PAGESIZE request is page-aligned, which Table's alignment needs).
    let p = unsafe { kernel::kmem_zalloc(size_of::<T>(), KM_SLEEP) } as *mut T;
    verify!(c"kmem_zalloc", !p.is_null());
    p
}

/// Returns a value of `T` from [`kzalloc`] to the kernel.
///
/// # Safety
/// `p` came from `kzalloc::<T>()` and is not used afterwards.
unsafe fn kfree<T>(p: *mut T) {
    // SAFETY: the caller passes an allocation of exactly size_of::<T>().
    unsafe { kernel::kmem_free(p as *mut c_void, size_of::<T>()) };
    kernel::no_tail_here();
}

/// A table page owned by the tree, with its host PFN.
pub struct TablePage {
    table: *mut Table,
    pfn: pfn_t,
}

impl TablePage {
    /// Allocates a zeroed table (`kmem_zalloc(PAGESIZE)`) and looks up its
    /// host PFN.
    fn alloc() -> TablePage {
        // SAFETY: all-zero entries are valid (and empty) PTEs.
        let table = unsafe { kzalloc::<Table>() };
        // SAFETY: `kas` is the kernel address space, and the table a live
        // kernel allocation in it.
        let pfn = unsafe { kernel::hat_getpfnum(kernel::kas.a_hat, table as *mut _) };
        TablePage { table, pfn }
    }

    /// The entries of the table.
    pub fn table(&self) -> &Table {
        // SAFETY: the page is live until `free`, which consumes self.
        unsafe { &*self.table }
    }

    /// The host PFN of the table.
    pub fn pfn(&self) -> pfn_t {
        self.pfn
    }

    /// Entry `i` of the table.
    pub fn entry(&self, i: Idx) -> &Pte {
        &self.table().entries[i]
    }

    fn free(self) {
        // SAFETY: the page came from kzalloc::<Table>() and nothing links it
        // any more (its parent's entry was cleared, or the GPT is going).
        unsafe { kfree(self.table) }
    }
}

/// Slots per chunk of [`Slots`].
const CHUNK: usize = 64;
/// Chunks of [`Slots`]: 512 slots in all.
const CHUNKS: usize = PTE_PER_TABLE / CHUNK;

/// One chunk of [`Slots`].
#[repr(C)]
struct Chunk<T> {
    slots: [*mut T; CHUNK],
}

/// 512 pointers, one per entry of a table, NULL where the entry links no
/// child: in [`CHUNKS`] chunks of [`CHUNK`], each allocated (zeroed, from
/// `kmem_zalloc`) when a pointer is first stored in it and freed with the
/// directory ([`Slots::free`]).
///
/// Memory: this replaces a plain `[*mut T; 512]` (4 KiB in every
/// directory), which cost more kernel memory per mapped GiB than the
/// original's 64-byte nodes for sparse layouts, e.g. 2.4% more for 10 000
/// two-page regions 8 KiB apart (79 leaf tables under one `LEVEL2` table;
/// benches/README.md).  Now the pointers cost 64 bytes plus 512 per chunk
/// in use; a full `LEVEL2` directory 64 bytes more than before.
///
/// A bitmap of the non-NULL slots (64 bytes more) finds the next present
/// child after a slot in at most eight word tests: vacate walks from table
/// to next table as the original does through its sibling pointers, and
/// without it a directory with few children cost a scan of up to 512
/// slots per step (7.8 times the original's time for vacating 10 000
/// small regions, benches/README.md).
#[repr(C)]
pub struct Slots<T> {
    chunks: [*mut Chunk<T>; CHUNKS],
    present: [u64; CHUNKS],
}

/// Where slot `i` is: its chunk and its place in the chunk (both masked,
/// so that they are visibly in bounds and no panic path is compiled).
#[inline]
fn chunk_of(i: Idx) -> (usize, usize) {
    ((i.get() / CHUNK) & (CHUNKS - 1), i.get() & (CHUNK - 1))
}

#[cold]
fn slot_out_of_bounds() -> ! {
    kernel::fail(c"vmm_gpt", c"directory slot out of bounds")
}

impl<T> Slots<T> {
    /// The pointer in slot `i` (NULL if none).
    #[inline]
    fn get(&self, i: Idx) -> *mut T {
        let (c, k) = chunk_of(i);
        let Some(&chunk) = self.chunks.get(c) else {
            slot_out_of_bounds()
        };
        if chunk.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: a non-null chunk pointer is a live chunk this directory
        // owns (allocated in `set`, freed only by `free`).
        let slots = unsafe { &(*chunk).slots };
        match slots.get(k) {
            Some(&p) => p,
            None => slot_out_of_bounds(),
        }
    }

    /// Stores `p` in slot `i`, allocating its chunk if needed.
    fn set(&mut self, i: Idx, p: *mut T) {
        let (c, k) = chunk_of(i);
        let (Some(chunk), Some(bits)) = (self.chunks.get_mut(c), self.present.get_mut(c)) else {
            slot_out_of_bounds()
        };
        if chunk.is_null() {
            if p.is_null() {
                return;
            }
            // SAFETY: an all-NULL chunk is valid.
            *chunk = unsafe { kzalloc::<Chunk<T>>() };
        }
        // SAFETY: a live chunk this directory owns, exclusively borrowed
        // through `&mut self`.
        let slots = unsafe { &mut (**chunk).slots };
        match slots.get_mut(k) {
            Some(s) => *s = p,
            None => slot_out_of_bounds(),
        }
        if p.is_null() {
            *bits &= !(1 << k);
        } else {
            *bits |= 1 << k;
        }
    }

    /// The first non-NULL slot at index `from` or above, if any: the
    /// original's next sibling.
    fn first_from(&self, from: usize) -> Option<Idx> {
        let mut c = from / CHUNK;
        // The slots below `from` in its chunk do not count.
        let mut below = (from % CHUNK) as u32;
        while let Some(&word) = self.present.get(c) {
            let bits = word & (u64::MAX << below);
            if bits != 0 {
                return Some(Idx::wrap(c * CHUNK + bits.trailing_zeros() as usize));
            }
            c += 1;
            below = 0;
        }
        None
    }

    /// The first non-NULL slot after `i`, if any.
    #[inline]
    fn next_after(&self, i: Idx) -> Option<Idx> {
        self.first_from(i.get() + 1)
    }

    /// Frees every chunk (the slots must all be NULL by now: the children
    /// are gone).
    fn free(&mut self) {
        for chunk in self.chunks.iter_mut() {
            if !chunk.is_null() {
                // SAFETY: allocated by kzalloc::<Chunk<T>>() in `set`, and
                // forgotten right after.
                unsafe { kfree(*chunk) };
                *chunk = ptr::null_mut();
            }
        }
    }
}

/// A directory: an interior table and its children.
///
/// `C` is the kind of child: [`L3Dir`]'s and [`L2Dir`]'s children are
/// directories, an [`L2Dir`]'s are leaf tables (see there).
#[repr(C)]
pub struct Dir<C> {
    page: TablePage,
    /// Present children, the table's reference count.
    present: u32,
    children: Slots<C>,
}

/// A `LEVEL2` directory: the children are leaf tables, and each has its
/// reference count here: entries covered by populated regions, as the
/// original's `uint32_t vgn_ref_cnt`.  Regions populated over each other
/// count each time, so a count can exceed 512 (the original asserts
/// against that only in DEBUG kernels, and production ones carry on); a
/// table can also be present with a count of 0 (an empty populate leaves
/// one, as the original's does).
#[repr(C)]
pub struct L2Dir {
    page: TablePage,
    present: u32,
    leaves: Slots<Table>,
    leaf_refs: [u32; PTE_PER_TABLE],
}

/// A `LEVEL3` directory.
pub type L3Dir = Dir<L2Dir>;
/// The `LEVEL4` (root) directory.
pub type L4Dir = Dir<L3Dir>;

/// What every directory has: its own table and a count of its children.
pub trait Directory {
    fn page(&self) -> &TablePage;
    fn present(&self) -> u32;
}

impl<C> Directory for Dir<C> {
    fn page(&self) -> &TablePage {
        &self.page
    }
    fn present(&self) -> u32 {
        self.present
    }
}

impl Directory for L2Dir {
    fn page(&self) -> &TablePage {
        &self.page
    }
    fn present(&self) -> u32 {
        self.present
    }
}

/// Kinds of directory that can be made empty and freed.
pub trait NewDir: Directory + Sized {
    /// The place of the directory's table page, in a fresh allocation.
    ///
    /// # Safety
    /// `d` points to an allocation of `Self`.
    unsafe fn page_place(d: *mut Self) -> *mut TablePage;

    /// Frees the memory of the child slots (all NULL by now).
    fn free_slots(&mut self);

    /// Allocates an empty directory with a fresh zeroed table.
    fn alloc() -> *mut Self {
        // SAFETY: null children and zero counts are a valid empty
        // directory; the page is filled in before anyone sees it.
        let d = unsafe { kzalloc::<Self>() };
        // SAFETY: `d` is a fresh, exclusively owned allocation of Self;
        // `write` does not drop the zeroed placeholder.
        unsafe { Self::page_place(d).write(TablePage::alloc()) };
        d
    }

    /// Frees an empty directory and its table.
    ///
    /// # Safety
    /// `dir` came from `alloc()`, is unlinked, and is not used afterwards.
    unsafe fn free(dir: *mut Self) {
        // SAFETY: the caller passes a live, unlinked directory it owns.
        let d = unsafe { &mut *dir };
        verify!(c"vmm_gpt_node_free", d.present() == 0);
        d.free_slots();
        // SAFETY: the table page leaves the directory exactly once here.
        unsafe { ptr::read(d.page()) }.free();
        // SAFETY: allocated by kzalloc::<Self>() in alloc().
        unsafe { kfree(dir) }
    }
}

impl<C> NewDir for Dir<C> {
    unsafe fn page_place(d: *mut Self) -> *mut TablePage {
        // SAFETY: the caller's promise; only the field's address is taken.
        unsafe { ptr::addr_of_mut!((*d).page) }
    }
    fn free_slots(&mut self) {
        self.children.free();
    }
}

impl NewDir for L2Dir {
    unsafe fn page_place(d: *mut Self) -> *mut TablePage {
        // SAFETY: as for Dir.
        unsafe { ptr::addr_of_mut!((*d).page) }
    }
    fn free_slots(&mut self) {
        self.leaves.free();
    }
}

impl<C> Dir<C> {
    /// The child directory at index `i`, if present, for reading.
    pub fn get(&self, i: Idx) -> Option<&C> {
        // SAFETY: a non-null child pointer is a live directory that this
        // directory owns; `&self` keeps it from changing meanwhile.
        unsafe { self.children.get(i).as_ref() }
    }

    /// The index of the first child after index `i`, if any (the
    /// original's next sibling).
    pub fn next_child(&self, i: Idx) -> Option<Idx> {
        self.children.next_after(i)
    }

    /// The index of the first child, if any.
    pub fn first_child(&self) -> Option<Idx> {
        self.children.first_from(0)
    }
}

impl<C: NewDir> Dir<C> {
    /// The child directory at index `i`, if present.
    pub fn child(&mut self, i: Idx) -> Option<&mut C> {
        // SAFETY: a non-null child pointer is a live directory that this
        // directory exclusively owns; `&mut self` makes the borrow unique.
        unsafe { self.children.get(i).as_mut() }
    }

    /// The child directory at index `i`, created and linked (the parent's
    /// entry written with the format's `map_table`) if it was missing.
    pub fn child_or_create(&mut self, i: Idx) -> &mut C {
        let mut child = self.children.get(i);
        if child.is_null() {
            child = C::alloc();
            // SAFETY: just allocated, exclusively ours.
            let pfn = unsafe { (*child).page().pfn() };
            self.children.set(i, child);
            self.present += 1;
            // Publish the link last: a walker that sees it sees a zeroed table.
            pte::store(self.page.entry(i), pte::map_table(pfn));
        }
        // SAFETY: non-null now, live and exclusively owned, as in child().
        unsafe { &mut *child }
    }

    /// Unlinks and frees the child at index `i`, which must be present and
    /// empty.
    pub fn remove_child(&mut self, i: Idx) {
        let child = self.children.get(i);
        verify!(c"vmm_gpt_node_remove", !child.is_null());
        pte::store(self.page.entry(i), 0);
        self.children.set(i, ptr::null_mut());
        self.present -= 1;
        // SAFETY: the child is unlinked from both the hardware table and the
        // directory, and was allocated by C::alloc().
        unsafe { C::free(child) };
        kernel::no_tail_here();
    }

    /// Unlinks and hands out every child, for tearing the tree down.
    pub fn drain_children(&mut self, mut f: impl FnMut(*mut C)) {
        for i in Idx::all() {
            let child = self.children.get(i);
            if !child.is_null() {
                pte::store(self.page.entry(i), 0);
                self.children.set(i, ptr::null_mut());
                self.present -= 1;
                f(child);
            }
        }
    }
}

impl L2Dir {
    /// Is the leaf table at index `i` present?
    pub fn has_leaf(&self, i: Idx) -> bool {
        !self.leaves.get(i).is_null()
    }

    /// The reference count of the leaf table at index `i`.
    pub fn leaf_refs(&self, i: Idx) -> u32 {
        self.leaf_refs[i]
    }

    /// Sets the reference count of the (present) leaf table at index `i`.
    pub fn set_leaf_refs(&mut self, i: Idx, refs: u32) {
        self.leaf_refs[i] = refs;
    }

    /// The index of the first leaf table after index `i`, if any.
    pub fn next_leaf(&self, i: Idx) -> Option<Idx> {
        self.leaves.next_after(i)
    }

    /// The index of the first leaf table, if any.
    pub fn first_leaf(&self) -> Option<Idx> {
        self.leaves.first_from(0)
    }

    /// Creates and links the leaf table at index `i` if it is missing.
    pub fn leaf_or_create(&mut self, i: Idx) {
        if self.leaves.get(i).is_null() {
            let page = TablePage::alloc();
            self.leaves.set(i, page.table);
            self.present += 1;
            pte::store(self.page.entry(i), pte::map_table(page.pfn()));
        }
    }

    /// Unlinks and frees the leaf table at index `i`, which must be present.
    pub fn remove_leaf(&mut self, i: Idx) {
        let table = self.leaves.get(i);
        verify!(c"vmm_gpt_node_remove", !table.is_null());
        pte::store(self.page.entry(i), 0);
        self.leaves.set(i, ptr::null_mut());
        self.leaf_refs[i] = 0;
        self.present -= 1;
        // SAFETY: unlinked from the hardware table and the directory; it
        // came from kzalloc::<Table>() in TablePage::alloc().
        unsafe { kfree(table) }
    }

    /// Unlinks and frees every leaf table, for tearing the tree down.
    pub fn drain_leaves(&mut self) {
        for i in Idx::all() {
            if self.has_leaf(i) {
                self.remove_leaf(i);
            }
        }
    }
}

/// The GPT itself (`vmm_gpt_t` to C).
///
/// It never changes after `alloc()`: it holds the root directory, and a
/// copy of the root table's address and PFN for the lock-free readers
/// (walks, `get_pmtp`), which thus never touch directory memory that
/// populate and vacate change.
pub struct Gpt {
    root: *mut L4Dir,
    root_table: *const Table,
    root_pfn: pfn_t,
}

impl Gpt {
    /// `vmm_gpt_alloc()`: a GPT with an empty root table.
    pub fn alloc() -> *mut Gpt {
        let root = L4Dir::alloc();
        // SAFETY: `root` is a fresh directory we own.
        let (root_table, root_pfn) =
            unsafe { ((*root).page.table as *const Table, (*root).page.pfn) };
        // SAFETY: any bytes are overwritten right away.
        let gpt = unsafe { kzalloc::<Gpt>() };
        // SAFETY: `gpt` is a fresh allocation we own; `write` drops nothing.
        unsafe {
            gpt.write(Gpt {
                root,
                root_table,
                root_pfn,
            })
        };
        gpt
    }

    /// The root directory, for changing the tree.
    ///
    /// # Safety
    /// The caller has exclusive use of the directories: populate, vacate
    /// and free of one GPT never run concurrently (the consumer, vmspace,
    /// serializes them under its lock).  Concurrent walks are fine: they
    /// read only the hardware tables, through atomics.
    #[allow(clippy::mut_from_ref)] // the directories are not part of `self`
    pub unsafe fn root_mut(&self) -> &mut L4Dir {
        // SAFETY: the root is live for the GPT's lifetime; exclusivity is
        // the caller's promise.
        unsafe { &mut *self.root }
    }

    /// The root table, for walks.
    pub fn root_table(&self) -> &Table {
        // SAFETY: the root table lives as long as the GPT; its entries are
        // atomics, so shared access is sound while others change them.
        unsafe { &*self.root_table }
    }

    /// The C handle of this GPT (`vmm_gpt_t *`): the `Gpt` itself, which
    /// C sees as an incomplete type.
    pub fn handle(&self) -> *mut vmm_gpt_t {
        self as *const Gpt as *mut vmm_gpt_t
    }

    /// The host PFN of the root table.
    pub fn root_pfn(&self) -> pfn_t {
        self.root_pfn
    }

    /// `vmm_gpt_free()`: frees every table and directory, whatever is
    /// still populated or mapped, and the GPT itself.
    ///
    /// # Safety
    /// `gpt` came from `Gpt::alloc()`, nobody else uses it any more, and it
    /// is not used afterwards.
    pub unsafe fn free(gpt: *mut Gpt) {
        // SAFETY: the caller hands over a live GPT, exclusively.
        let root = unsafe { (*gpt).root_mut() };
        root.drain_children(|l3| {
            // SAFETY: drained children are live, unlinked and ours.
            let l3d = unsafe { &mut *l3 };
            l3d.drain_children(|l2| {
                // SAFETY: as above.
                let l2d = unsafe { &mut *l2 };
                l2d.drain_leaves();
                // SAFETY: emptied, unlinked, not used again.
                unsafe { L2Dir::free(l2) };
            });
            // SAFETY: emptied, unlinked, not used again.
            unsafe { L3Dir::free(l3) };
        });
        // SAFETY: the root is empty now and goes with the GPT.
        unsafe { L4Dir::free((*gpt).root) };
        // SAFETY: allocated by kzalloc::<Gpt>() in alloc().
        unsafe { kfree(gpt) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::stand_in::{kmem, EPT_PA_MASK, EPT_RWX};
    use std::vec::Vec;

    fn idx(i: usize) -> Idx {
        Idx::wrap(i)
    }

    fn empty_slots<T>() -> Slots<T> {
        Slots {
            chunks: [ptr::null_mut(); CHUNKS],
            present: [0; CHUNKS],
        }
    }

    /// A distinct non-NULL pointer for slot contents (never dereferenced).
    fn fake(i: usize) -> *mut u64 {
        (0x10_0000 + 8 * i) as *mut u64
    }

    /// The present slots, from the bitmap, by repeated `first_from`.
    fn present_slots<T>(s: &Slots<T>) -> Vec<usize> {
        let mut out = Vec::new();
        let mut at = s.first_from(0);
        while let Some(i) = at {
            out.push(i.get());
            at = s.next_after(i);
        }
        out
    }

    #[test]
    fn sizes() {
        assert_eq!(CHUNK * CHUNKS, 512);
        assert_eq!(size_of::<Chunk<u8>>(), 512);
        // Eight chunk pointers and eight bitmap words.
        assert_eq!(size_of::<Slots<u8>>(), 128);
        assert_eq!(size_of::<Table>(), 4096);
        assert_eq!(core::mem::align_of::<Table>(), 4096);
    }

    #[test]
    fn chunk_of_splits_an_index() {
        assert_eq!(chunk_of(idx(0)), (0, 0));
        assert_eq!(chunk_of(idx(63)), (0, 63));
        assert_eq!(chunk_of(idx(64)), (1, 0));
        assert_eq!(chunk_of(idx(200)), (3, 8));
        assert_eq!(chunk_of(idx(448)), (7, 0));
        assert_eq!(chunk_of(idx(511)), (7, 63));
    }

    #[test]
    fn slots_allocate_chunks_as_children_arrive() {
        let before = kmem::usage();
        let mut s = empty_slots::<u64>();
        assert_eq!(s.get(idx(0)), ptr::null_mut());
        assert_eq!(s.first_from(0), None);
        // Storing NULL in an absent chunk allocates nothing.
        s.set(idx(5), ptr::null_mut());
        assert_eq!(kmem::usage(), before);
        for i in [0, 63, 64, 130, 511] {
            s.set(idx(i), fake(i));
        }
        // Chunks 0, 1, 2 and 7: four of 512 bytes.
        let now = kmem::usage();
        assert_eq!(now.allocs - before.allocs, 4);
        assert_eq!(now.bytes - before.bytes, 4 * 512);
        let allocated: Vec<bool> = s.chunks.iter().map(|c| !c.is_null()).collect();
        assert_eq!(
            allocated,
            [true, true, true, false, false, false, false, true]
        );
        for i in [0, 63, 64, 130, 511] {
            assert_eq!(s.get(idx(i)), fake(i), "slot {i}");
        }
        for i in [1, 62, 65, 129, 131, 200, 510] {
            assert_eq!(s.get(idx(i)), ptr::null_mut(), "slot {i}");
        }
        s.set(idx(0), ptr::null_mut());
        s.set(idx(511), ptr::null_mut());
        // Clearing keeps the chunks until free.
        assert_eq!(kmem::usage(), now);
        s.free();
        assert_eq!(kmem::usage(), before);
        assert!(s.chunks.iter().all(|c| c.is_null()));
    }

    #[test]
    fn presence_bitmap_follows_the_slots() {
        let before = kmem::usage();
        let mut s = empty_slots::<u64>();
        for i in [0, 63, 64, 130, 511] {
            s.set(idx(i), fake(i));
        }
        assert_eq!(s.present, [1 | 1 << 63, 1, 1 << 2, 0, 0, 0, 0, 1 << 63]);
        s.set(idx(63), ptr::null_mut());
        // Setting a present slot again changes nothing in the bitmap.
        s.set(idx(64), fake(1000));
        assert_eq!(s.present, [1, 1, 1 << 2, 0, 0, 0, 0, 1 << 63]);
        assert_eq!(s.get(idx(64)), fake(1000));
        s.free();
        assert_eq!(kmem::usage(), before);
    }

    #[test]
    fn first_from_and_next_after_find_the_next_present_slot() {
        let mut s = empty_slots::<u64>();
        for i in [0, 63, 64, 130, 511] {
            s.set(idx(i), fake(i));
        }
        let first = |from| s.first_from(from).map(Idx::get);
        assert_eq!(first(0), Some(0));
        assert_eq!(first(1), Some(63));
        assert_eq!(first(63), Some(63));
        assert_eq!(first(64), Some(64));
        assert_eq!(first(65), Some(130));
        // Across the empty chunks 3 to 6.
        assert_eq!(first(131), Some(511));
        assert_eq!(first(511), Some(511));
        assert_eq!(first(512), None);
        assert_eq!(first(10_000), None);
        assert_eq!(s.next_after(idx(511)), None);
        assert_eq!(s.next_after(idx(130)).map(Idx::get), Some(511));
        assert_eq!(present_slots(&s), [0, 63, 64, 130, 511]);
        s.free();
    }

    #[test]
    fn every_slot_round_trips() {
        let before = kmem::usage();
        let mut s = empty_slots::<u64>();
        // Every third slot, then their removal in another order.
        let chosen: Vec<usize> = (0..512).step_by(3).collect();
        for &i in &chosen {
            s.set(idx(i), fake(i));
        }
        assert_eq!(present_slots(&s), chosen);
        let ones: u32 = s.present.iter().map(|w| w.count_ones()).sum();
        assert_eq!(ones as usize, chosen.len());
        for &i in chosen.iter().filter(|&&i| i % 2 == 0) {
            s.set(idx(i), ptr::null_mut());
        }
        let odd: Vec<usize> = chosen.iter().copied().filter(|i| i % 2 == 1).collect();
        assert_eq!(present_slots(&s), odd);
        for i in 0..512 {
            let want = if i % 3 == 0 && i % 2 == 1 {
                fake(i)
            } else {
                ptr::null_mut()
            };
            assert_eq!(s.get(idx(i)), want, "slot {i}");
        }
        s.free();
        assert_eq!(kmem::usage(), before);
    }

    /// The table an entry links, per the EPT test format and the
    /// identity "physical" mapping of the stand-in.
    fn linked(e: &Pte) -> Option<usize> {
        let v = pte::load(e);
        (v & EPT_RWX == EPT_RWX).then_some((v & EPT_PA_MASK) as usize)
    }

    #[test]
    fn table_pages_are_zeroed_aligned_and_know_their_pfn() {
        let before = kmem::usage();
        let page = TablePage::alloc();
        let addr = page.table as usize;
        assert_eq!(addr % 4096, 0);
        assert_eq!(page.pfn() as usize, addr >> 12);
        assert!(Idx::all().all(|i| pte::load(page.entry(i)) == 0));
        assert_eq!(kmem::usage().pages, before.pages + 1);
        page.free();
        assert_eq!(kmem::usage(), before);
    }

    #[test]
    fn children_are_linked_in_table_and_directory() {
        let before = kmem::usage();
        let d = L3Dir::alloc();
        // SAFETY: a fresh directory, ours alone until freed below.
        let dir = unsafe { &mut *d };
        assert_eq!(dir.present(), 0);
        assert_eq!(dir.first_child(), None);
        let child = dir.child_or_create(idx(300)) as *mut L2Dir;
        // Asking again returns the same child, creates nothing.
        let usage = kmem::usage();
        assert_eq!(dir.child_or_create(idx(300)) as *mut L2Dir, child);
        assert_eq!(kmem::usage(), usage);
        assert_eq!(dir.present(), 1);
        // SAFETY: the child is live while linked.
        let child_table = unsafe { (*child).page().table as usize };
        assert_eq!(linked(dir.page().entry(idx(300))), Some(child_table));
        assert_eq!(pte::load(dir.page().entry(idx(299))), 0);
        dir.child_or_create(idx(2));
        dir.child_or_create(idx(511));
        assert_eq!(dir.present(), 3);
        assert_eq!(dir.first_child().map(Idx::get), Some(2));
        assert_eq!(dir.next_child(idx(2)).map(Idx::get), Some(300));
        assert_eq!(dir.next_child(idx(300)).map(Idx::get), Some(511));
        assert_eq!(dir.next_child(idx(511)), None);
        assert!(dir.get(idx(3)).is_none());
        assert!(dir.child(idx(300)).is_some());
        // Three LEVEL2 directories, each one table page; the LEVEL3 one too.
        assert_eq!(kmem::usage().pages, before.pages + 4);

        dir.remove_child(idx(300));
        assert_eq!(dir.present(), 2);
        assert_eq!(pte::load(dir.page().entry(idx(300))), 0);
        assert!(dir.get(idx(300)).is_none());
        assert_eq!(dir.next_child(idx(2)).map(Idx::get), Some(511));
        let mut drained = Vec::new();
        dir.drain_children(|c| drained.push(c));
        assert_eq!(drained.len(), 2);
        assert_eq!(dir.present(), 0);
        assert!(Idx::all().all(|i| pte::load(dir.page().entry(i)) == 0));
        for c in drained {
            // SAFETY: drained children are unlinked, empty and ours.
            unsafe { L2Dir::free(c) };
        }
        // SAFETY: empty now, not used again.
        unsafe { L3Dir::free(d) };
        assert_eq!(kmem::usage(), before);
    }

    #[test]
    fn leaf_tables_and_their_counts() {
        let before = kmem::usage();
        let d = L2Dir::alloc();
        // SAFETY: a fresh directory, ours alone until freed below.
        let l2 = unsafe { &mut *d };
        l2.leaf_or_create(idx(64));
        l2.leaf_or_create(idx(64));
        l2.leaf_or_create(idx(0));
        assert_eq!(l2.present(), 2);
        assert!(l2.has_leaf(idx(0)) && l2.has_leaf(idx(64)) && !l2.has_leaf(idx(63)));
        assert_eq!(l2.first_leaf().map(Idx::get), Some(0));
        assert_eq!(l2.next_leaf(idx(0)).map(Idx::get), Some(64));
        assert_eq!(l2.next_leaf(idx(64)), None);
        // The entry links the leaf table the directory keeps.
        let leaf = l2.leaves.get(idx(64)) as usize;
        assert_eq!(linked(l2.page().entry(idx(64))), Some(leaf));
        assert!(kmem::is_live(leaf));
        assert_eq!(l2.leaf_refs(idx(64)), 0);
        l2.set_leaf_refs(idx(64), 700);
        assert_eq!(l2.leaf_refs(idx(64)), 700);
        assert_eq!(l2.leaf_refs(idx(0)), 0);
        // The directory's page, two leaf tables.
        assert_eq!(kmem::usage().pages, before.pages + 3);

        l2.remove_leaf(idx(64));
        assert!(!l2.has_leaf(idx(64)));
        assert_eq!(l2.leaf_refs(idx(64)), 0);
        assert_eq!(pte::load(l2.page().entry(idx(64))), 0);
        assert!(!kmem::is_live(leaf));
        l2.leaf_or_create(idx(511));
        l2.drain_leaves();
        assert_eq!(l2.present(), 0);
        assert_eq!(l2.first_leaf(), None);
        // SAFETY: empty now, not used again.
        unsafe { L2Dir::free(d) };
        assert_eq!(kmem::usage(), before);
    }

    #[test]
    #[should_panic(expected = "vmm_gpt_node_remove: VERIFY failed: !table.is_null()")]
    fn removing_a_missing_leaf_panics() {
        let l2 = L2Dir::alloc();
        // SAFETY: a fresh directory (leaked by the panic).
        unsafe { (*l2).remove_leaf(idx(9)) };
    }

    #[test]
    #[should_panic(expected = "vmm_gpt_node_free: VERIFY failed: d.present() == 0")]
    fn freeing_a_directory_with_children_panics() {
        let d = L3Dir::alloc();
        // SAFETY: a fresh directory, ours; the panic leaks it.
        unsafe {
            (*d).child_or_create(idx(1));
            L3Dir::free(d);
        }
    }

    #[test]
    fn a_gpt_has_a_root_table_and_frees_everything() {
        let before = kmem::usage();
        let g = Gpt::alloc();
        // SAFETY: a fresh GPT, ours alone.
        let gpt = unsafe { &*g };
        assert_eq!(kmem::usage().pages, before.pages + 1);
        let root = gpt.root_table() as *const Table as usize;
        assert_eq!(gpt.root_pfn() as usize, root >> 12);
        assert_eq!(gpt.handle() as usize, g as usize);
        // SAFETY: nothing else uses the GPT.
        let l4 = unsafe { gpt.root_mut() };
        assert_eq!(l4.page().table as usize, root);
        // A few branches, one of them full at the bottom.
        let l2 = l4.child_or_create(idx(0)).child_or_create(idx(1));
        for i in Idx::all() {
            l2.leaf_or_create(i);
        }
        l4.child_or_create(idx(511))
            .child_or_create(idx(511))
            .leaf_or_create(idx(511));
        assert_eq!(kmem::usage().pages, before.pages + 1 + 2 + 2 + 512 + 1);
        // Freeing a populated GPT frees every table and directory.
        // SAFETY: ours, not used again.
        unsafe { Gpt::free(g) };
        assert_eq!(kmem::usage(), before);
    }
}
