//! The storage and replication halves of the produce path, measured without
//! fsync (the disk's fsync latency is the side-by-side benchmark's subject):
//! - `storage/append`: one atomic RocksDB write of a 16 KiB batch with its
//!   Raft entry, as `LogStore::append` issues it;
//! - `storage/read`: a fetch's read of 1 MiB from a partition log;
//! - `raft/propose`: a proposal through openraft (entry, commit, apply)
//!   until its future resolves, one at a time and 16 in flight.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafka_protocol::records::Compression;
use skein_benches::producer_batch;
use skein_replication::{FsyncPolicy, Replicator};
use skein_storage::{LogAppend, RocksStore, Store, StoredBatch, WriteOp};

const BATCH_RECORDS: i64 = 16;

fn append(log: u32, base_offset: i64, bytes: &Bytes) -> WriteOp {
    WriteOp::Append(LogAppend {
        log,
        batch: StoredBatch {
            base_offset,
            last_offset: base_offset + BATCH_RECORDS - 1,
            max_timestamp: base_offset,
            bytes: bytes.clone(),
        },
        index_timestamp: true,
    })
}

fn storage(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RocksStore::open(dir.path()).expect("store opens");
    let batch = producer_batch(BATCH_RECORDS as usize, 1024, Compression::None);
    let mut group = c.benchmark_group("storage");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    let mut next_offset = 0;
    group.bench_function("append/16KiB", |b| {
        b.iter(|| {
            let entry =
                WriteOp::RaftAppend { group: 1, index: next_offset as u64, entry: Bytes::from_static(&[0; 64]) };
            store.write(&[append(1, next_offset, &batch), entry], false).expect("write");
            next_offset += BATCH_RECORDS;
        })
    });
    let filled = next_offset;
    group.throughput(Throughput::Bytes(1 << 20));
    let mut from = 0;
    group.bench_function("read/1MiB", |b| {
        b.iter(|| {
            let read = store.read(1, from, 1 << 20).expect("read");
            from = (from + 64 * BATCH_RECORDS) % filled.max(1);
            read.len()
        })
    });
    group.finish();
}

fn raft(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(RocksStore::open(dir.path()).expect("store opens"));
    // Interval: no fsync per write, so the figure is the path's own cost.
    let policy = FsyncPolicy::Interval(std::time::Duration::from_secs(3600));
    let replicator = runtime.block_on(Replicator::start(1, store, policy)).expect("replicator");
    runtime.block_on(replicator.open_group(7)).expect("group opens");
    let batch = producer_batch(BATCH_RECORDS as usize, 1024, Compression::None);
    let mut group = c.benchmark_group("raft");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    let mut next_offset = 0;
    group.bench_function("propose/16KiB", |b| {
        b.iter(|| {
            let proposed = replicator.propose(7, vec![append(7, next_offset, &batch)]);
            next_offset += BATCH_RECORDS;
            runtime.block_on(proposed).expect("committed")
        })
    });
    group.throughput(Throughput::Bytes(16 * batch.len() as u64));
    group.bench_function("propose/16KiB x16 in flight", |b| {
        b.iter_batched(
            || (),
            |()| {
                let proposals: Vec<_> = (0..16)
                    .map(|_| {
                        let proposed = replicator.propose(7, vec![append(7, next_offset, &batch)]);
                        next_offset += BATCH_RECORDS;
                        proposed
                    })
                    .collect();
                runtime.block_on(async {
                    for proposed in proposals {
                        proposed.await.expect("committed");
                    }
                })
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    runtime.block_on(replicator.shutdown());
}

criterion_group!(benches, storage, raft);
criterion_main!(benches);
