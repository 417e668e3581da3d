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
