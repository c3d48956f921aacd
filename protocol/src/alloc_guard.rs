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
//! This is the only `unsafe` code in Skein: a `GlobalAlloc` cannot be
//! written without it, nor `mallopt` called.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

const HUGE_ALLOCATION_BYTES: usize = 1 << 30;
const PAGE_BYTES: usize = 4096;

pub struct GuardedAllocator;

fn is_huge(layout: Layout) -> bool {
    layout.size() >= HUGE_ALLOCATION_BYTES && layout.align() <= PAGE_BYTES
}

// SAFETY: every method forwards to `System` except for huge layouts, which
// get page-aligned (so any alignment up to a page holds) fresh mappings of at
// least `size` bytes, released with the same size they were mapped with.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(layout) {
            map_huge(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
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
