//! Arbitrary bytes through frame splitting and request decoding: no panic,
//! no allocation sized by the input beyond the frame cap.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

// The broker's allocator: wire-sized reservations stay virtual, as in production.
#[global_allocator]
static ALLOCATOR: skein_protocol::alloc_guard::GuardedAllocator = skein_protocol::alloc_guard::GuardedAllocator;
use skein_protocol::frame::split_frame;
use skein_protocol::request::decode_request;

const MAX_FRAME_BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // As one connection's byte stream.
    let mut stream = BytesMut::from(data);
    while let Ok(Some(frame)) = split_frame(&mut stream, MAX_FRAME_BYTES) {
        let _ = decode_request(frame.freeze());
    }
    // And as one frame body.
    let _ = decode_request(bytes::Bytes::copy_from_slice(data));
});
