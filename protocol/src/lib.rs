//! The Kafka wire format as Skein speaks it. This crate does no I/O: it turns
//! bytes into typed requests and typed responses back into bytes.
//!
//! - [`frame`]: length-prefixed frame splitting with size caps.
//! - [`request`]: request header and body decoding into `kafka-protocol` types.
//! - [`response`]: response framing (header version chosen per API and version).
//! - [`versions`]: the one table of supported APIs and versions; the
//!   ApiVersions answer is generated from it.
//! - [`record_batch`]: a zero-copy view of RecordBatch v2 (CRC-32C check,
//!   header fields, base-offset rewrite in place).
//! - [`alloc_guard`]: the global allocator binaries decoding untrusted input
//!   install, so wire-sized array counts cannot abort the process.

pub mod alloc_guard;
pub mod frame;
pub mod record_batch;
pub mod request;
pub mod response;
pub mod versions;

pub use kafka_protocol;
