//! Arbitrary bytes as a produced record set and as stored batches: header
//! parsing, validation, iteration and record decoding never panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

// The broker's allocator: wire-sized reservations stay virtual, as in production.
#[global_allocator]
static ALLOCATOR: skein_protocol::alloc_guard::GuardedAllocator = skein_protocol::alloc_guard::GuardedAllocator;
use skein_protocol::record_batch::{batches, first_record_at_or_after, validate_single_batch};

fuzz_target!(|data: &[u8]| {
    let _ = validate_single_batch(data);
    let stored = Bytes::copy_from_slice(data);
    for (_, batch) in batches(&stored) {
        let _ = first_record_at_or_after(&batch, 0);
    }
});
