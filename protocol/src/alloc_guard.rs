//! The global allocator, with one difference from the system allocator:
//! allocations of 1 GiB or more are served by anonymous `mmap` with
//! `MAP_NORESERVE`, which reserves address space without committing memory.
//!
//! Why: `kafka-protocol` sizes a `Vec` from an array count read off the wire
//! before checking that the bytes behind it exist. A frame claiming 2^31
//! elements would make the system allocator refuse a ~100 GiB request, and
//! Rust aborts the process on allocation failure, which would let any client
//! crash the broker with 14 bytes (the CVE-2022-34917 pattern). With this
//! guard the reservation succeeds, no page is touched, the decoder fails on
//! the missing bytes, the mapping is released and the connection is closed.
//! Legitimate allocations this large do not occur in the broker (frames are
//! capped by `socket.request.max.bytes`).
//!
//! It lives beside the decoder whose weakness it covers: every binary that
//! decodes untrusted requests (the broker, the fuzz targets) installs it with
//! `#[global_allocator]`. Allocating memory is not I/O; this crate still does
//! none.
//!
//! [`keep_freed_memory`] tunes the C allocator beneath (RocksDB allocates
//! through it too) so freed memory is reused rather than returned to the
//! kernel and faulted back in, zeroed, on the next allocation: on the fetch
//! path that churn was a third of the broker's CPU.
//!
//! It also counts allocations ([`allocation_totals`], exported as
//! `skein_allocations_total`), so the benchmarks can show what a request
//! costs in allocations and that it does not grow with the records in it.
//! RocksDB allocates through C++ directly and is not counted.
//!
//! This is the only `unsafe` code in Skein: a `GlobalAlloc` cannot be
//! written without it, nor `mallopt` called.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

const HUGE_ALLOCATION_BYTES: usize = 1 << 30;
const PAGE_BYTES: usize = 4096;

pub struct GuardedAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Allocations (including reallocations) served by [`GuardedAllocator`]
/// since the process started, and the bytes they asked for. Both stay zero
/// in a binary that does not install it.
pub fn allocation_totals() -> (u64, u64) {
    (ALLOCATIONS.load(Ordering::Relaxed), ALLOCATED_BYTES.load(Ordering::Relaxed))
}

fn count(bytes: usize) {
    // Relaxed: these are statistics, read long after; no ordering needed.
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    ALLOCATED_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

fn is_huge(layout: Layout) -> bool {
    layout.size() >= HUGE_ALLOCATION_BYTES && layout.align() <= PAGE_BYTES
}

// SAFETY: every method forwards to `System` except for huge layouts, which
// get page-aligned (so any alignment up to a page holds) fresh mappings of at
// least `size` bytes, released with the same size they were mapped with.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        if is_huge(layout) {
            map_huge(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        if is_huge(layout) {
            // Anonymous mappings are zero-filled already; writing zeros
            // would commit every page.
            map_huge(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(layout) {
            // SAFETY: `ptr` came from `map_huge(layout.size())`.
            unsafe {
                libc::munmap(ptr.cast(), layout.size());
            }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    /// `System`'s realloc (which may grow in place) unless either side is
    /// huge; the trait's default would allocate, copy and free every time.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align(new_size, layout.align());
        match new_layout {
            Ok(new_layout) if !is_huge(layout) && !is_huge(new_layout) => {
                count(new_size);
                // SAFETY: forwarded with the caller's guarantees; neither
                // the old nor the new block is one of our mappings.
                unsafe { System.realloc(ptr, layout, new_size) }
            }
            _ => {
                // SAFETY: the caller's guarantees are those of `realloc`,
                // which the trait's own fallback path relies on too.
                unsafe { realloc_by_copy(self, ptr, layout, new_size) }
            }
        }
    }
}

/// Allocate, copy, free: the path for blocks that are (or become) mappings.
///
/// # Safety
/// The caller upholds `GlobalAlloc::realloc`'s contract.
unsafe fn realloc_by_copy(allocator: &GuardedAllocator, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `new_layout` has a non-zero size (realloc's contract).
    let new_ptr = unsafe { allocator.alloc(new_layout) };
    if !new_ptr.is_null() {
        // SAFETY: both blocks are valid for the smaller size and distinct;
        // `ptr` was allocated with `layout` by this allocator.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
            allocator.dealloc(ptr, layout);
        }
    }
    new_ptr
}

fn map_huge(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping touches no existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        ptr.cast()
    }
}

/// Kept by the C allocator rather than returned to the kernel: up to this
/// much free memory at the top of its heaps.
const TRIM_THRESHOLD_BYTES: libc::c_int = 16 << 20;
/// Served from the heaps (reusable) rather than from fresh mappings: every
/// allocation below this size (fetch responses and RocksDB's blob reads).
const MMAP_THRESHOLD_BYTES: libc::c_int = 32 << 20;

/// Heaps glibc may create; its default (8 per core) lets each thread that
/// frees memory keep up to the trim threshold of it in a heap of its own.
const ARENA_COUNT: libc::c_int = 2;

/// Makes glibc's malloc keep and reuse freed memory (see the module docs).
/// Call once, first thing in `main`. Returns whether glibc took both settings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() -> bool {
    // SAFETY: `mallopt` only changes allocator parameters; it takes plain
    // integers and touches no memory of ours. Setting M_TRIM_THRESHOLD and
    // M_MMAP_THRESHOLD is what glibc documents them for.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
            && libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            && libc::mallopt(libc::M_ARENA_MAX, ARENA_COUNT) == 1
    }
}

/// Other C libraries have no `mallopt` with these settings.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realloc_keeps_contents_across_small_and_huge_blocks_and_counts_them() {
        let allocator = GuardedAllocator;
        let (calls_before, bytes_before) = allocation_totals();
        let small = Layout::from_size_align(64, 8).expect("layout");
        // SAFETY: each block is used within its size and freed once with
        // the layout it has at that point.
        unsafe {
            let ptr = allocator.alloc(small);
            assert!(!ptr.is_null());
            std::ptr::write_bytes(ptr, 0xab, 64);
            let grown = allocator.realloc(ptr, small, 4096);
            assert!(!grown.is_null());
            assert!(std::slice::from_raw_parts(grown, 64).iter().all(|b| *b == 0xab));
            let medium = Layout::from_size_align(4096, 8).expect("layout");
            let huge = allocator.realloc(grown, medium, HUGE_ALLOCATION_BYTES);
            assert!(!huge.is_null(), "a huge block is a fresh mapping");
            assert!(std::slice::from_raw_parts(huge, 64).iter().all(|b| *b == 0xab));
            let huge_layout = Layout::from_size_align(HUGE_ALLOCATION_BYTES, 8).expect("layout");
            let shrunk = allocator.realloc(huge, huge_layout, 128);
            assert!(std::slice::from_raw_parts(shrunk, 64).iter().all(|b| *b == 0xab));
            allocator.dealloc(shrunk, Layout::from_size_align(128, 8).expect("layout"));
        }
        let (calls, bytes) = allocation_totals();
        assert!(calls - calls_before >= 4, "alloc and three reallocs are counted");
        assert!(bytes - bytes_before >= (64 + 4096 + HUGE_ALLOCATION_BYTES + 128) as u64);
    }
}
