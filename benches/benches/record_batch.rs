//! The produce hot path's per-batch work: validating a RecordBatch v2
//! (header parse + CRC-32C over the whole batch) and rewriting its base
//! offset, for uncompressed and lz4 batches of 16 x 1 KiB records.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::records::Compression;
use skein_benches::producer_batch;
use skein_protocol::record_batch::{set_base_offset, validate_single_batch};

fn validate_and_rewrite(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_batch");
    for (name, compression) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        let batch = producer_batch(16, 1024, compression);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_function(format!("validate/{name}"), |b| {
            b.iter(|| validate_single_batch(&batch).map(|h| h.record_count))
        });
        group.bench_function(format!("copy_and_rewrite_offset/{name}"), |b| {
            b.iter(|| {
                let mut copy = BytesMut::from(&batch[..]);
                set_base_offset(&mut copy, 1_000_000);
                copy.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, validate_and_rewrite);
criterion_main!(benches);
