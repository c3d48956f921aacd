//! One behaviour suite, run against both [`RocksStore`] and [`MemoryStore`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::*;

fn batch(base_offset: i64, records: i64, max_timestamp: i64) -> StoredBatch {
    StoredBatch {
        base_offset,
        last_offset: base_offset + records - 1,
        max_timestamp,
        bytes: Bytes::from(format!("batch@{base_offset}:{}", "x".repeat(100))),
    }
}

fn append(log: LogId, batch: StoredBatch, index_timestamp: bool) -> WriteOp {
    WriteOp::Append(LogAppend { log, batch, index_timestamp })
}

/// Appends batches of 3 records at offsets 0, 3, 6, ... with the given max
/// timestamps, indexing each one that raises the running max.
fn fill(store: &dyn Store, log: LogId, max_timestamps: &[i64]) {
    let mut running_max = -1;
    for (i, ts) in max_timestamps.iter().enumerate() {
        let raises = *ts > running_max;
        running_max = running_max.max(*ts);
        store.write(&[append(log, batch(i as i64 * 3, 3, *ts), raises)], true).expect("write");
    }
}

fn reads_whole_batches_from_inside_a_batch(store: &dyn Store) {
    fill(store, 1, &[10, 20, 30, 40]);
    fill(store, 2, &[10]);
    let read = store.read(1, 4, usize::MAX).expect("read");
    assert_eq!(read.iter().map(|b| b.base_offset).collect::<Vec<_>>(), vec![3, 6, 9]);
    let one = store.read(1, 0, 1).expect("read");
    assert_eq!(one.len(), 1, "the first batch comes even when larger than max_bytes");
    let two = store.read(1, 0, one[0].bytes.len() + 1).expect("read");
    assert_eq!(two.len(), 1, "a second batch is not split to fit");
    assert!(store.read(1, 12, 1000).expect("read").is_empty());
    assert!(store.read(3, 0, 1000).expect("read").is_empty());
}

fn truncation_drops_the_tail_and_its_time_index(store: &dyn Store) {
    fill(store, 5, &[100, 200, 300, 400]);
    fill(store, 6, &[100]);
    store.write(&[WriteOp::TruncateLog { log: 5, from_offset: 6 }], true).expect("truncate");
    assert_eq!(store.bounds(5).expect("bounds"), LogBounds { log_start_offset: 0, next_offset: 6, max_timestamp: 200 });
    assert_eq!(store.find_by_timestamp(5, 250).expect("lookup"), None, "no index entry points past the cut");
    assert_eq!(store.read(6, 0, 1000).expect("read").len(), 1, "other logs untouched");
    store.write(&[append(5, batch(6, 3, 500), true)], true).expect("append after the cut");
    assert_eq!(store.find_by_timestamp(5, 250).expect("lookup").map(|b| b.base_offset), Some(6));
}

fn bounds_track_the_log_tail(store: &dyn Store) {
    assert_eq!(store.bounds(7).expect("bounds"), LogBounds { log_start_offset: 0, next_offset: 0, max_timestamp: -1 });
    fill(store, 7, &[100, 50, 300]);
    assert_eq!(store.bounds(7).expect("bounds"), LogBounds { log_start_offset: 0, next_offset: 9, max_timestamp: 300 });
}

fn time_index_finds_first_batch_reaching_the_target(store: &dyn Store) {
    // Non-monotonic timestamps, as clients choose them.
    fill(store, 4, &[100, 50, 300, 200, 400]);
    let found = |target| store.find_by_timestamp(4, target).expect("lookup").map(|b| b.base_offset);
    assert_eq!(found(0), Some(0));
    assert_eq!(found(100), Some(0));
    assert_eq!(found(101), Some(6), "batch at 3 has max 50, batch at 6 first reaches 300");
    assert_eq!(found(300), Some(6));
    assert_eq!(found(350), Some(12));
    assert_eq!(found(401), None);
    let max = store.find_max_timestamp(4).expect("lookup").expect("non-empty");
    assert_eq!((max.base_offset, max.max_timestamp), (12, 400));
    assert!(store.find_max_timestamp(5).expect("lookup").is_none());
}

fn producer_state_is_kept_per_log(store: &dyn Store) {
    let state = ProducerState {
        epoch: 2,
        batches: VecDeque::from(vec![ProducerBatch {
            first_sequence: 0,
            last_sequence: 4,
            base_offset: 10,
            append_time_ms: 1,
        }]),
    };
    store.write(&[WriteOp::PutProducer { log: 9, producer_id: 1000, state: state.clone() }], true).expect("write");
    store.write(&[WriteOp::PutProducer { log: 10, producer_id: -5, state: state.clone() }], true).expect("write");
    assert_eq!(store.producer_states(9).expect("states"), vec![(1000, state.clone())]);
    assert_eq!(store.producer_states(10).expect("states"), vec![(-5, state)]);
}

fn topics_are_stored_and_deleted_with_their_logs(store: &dyn Store) {
    let topic = TopicRecord {
        name: "orders".to_owned(),
        id: [7; 16],
        logs: vec![20, 21],
        configs: BTreeMap::from([("cleanup.policy".to_owned(), "delete".to_owned())]),
        created_ms: 5,
    };
    store.write(&[WriteOp::PutTopic(topic.clone())], true).expect("write");
    fill(store, 20, &[1, 2]);
    fill(store, 22, &[1]);
    assert_eq!(store.topics().expect("topics"), vec![topic]);
    store.write(&[WriteOp::DeleteTopic { name: "orders".to_owned(), logs: vec![20, 21] }], true).expect("delete");
    assert!(store.topics().expect("topics").is_empty());
    assert!(store.read(20, 0, 1000).expect("read").is_empty());
    assert!(store.find_by_timestamp(20, 0).expect("lookup").is_none());
    assert_eq!(store.read(22, 0, 1000).expect("read").len(), 1, "other logs untouched");
}

fn meta_values_round_trip(store: &dyn Store) {
    assert_eq!(store.meta("cluster.id").expect("meta"), None);
    store.write(&[WriteOp::PutMeta { key: "cluster.id".to_owned(), value: b"abc".to_vec() }], true).expect("write");
    assert_eq!(store.meta("cluster.id").expect("meta"), Some(b"abc".to_vec()));
    assert!(store.topics().expect("topics").is_empty(), "meta values are not topics");
}

fn raft_log_appends_truncates_and_purges(store: &dyn Store) {
    let entry = |i: u64| WriteOp::RaftAppend { group: 3, index: i, entry: Bytes::from(format!("e{i}")) };
    store.write(&(1..=10).map(entry).collect::<Vec<_>>(), true).expect("append");
    store
        .write(&[WriteOp::RaftAppend { group: 4, index: 1, entry: Bytes::from_static(b"other") }], true)
        .expect("append");
    let indexes =
        |from, to| store.raft_entries(3, from, to).expect("entries").into_iter().map(|(i, _)| i).collect::<Vec<_>>();
    assert_eq!(indexes(3, 6), vec![3, 4, 5]);
    assert_eq!(store.raft_last(3).expect("last"), Some((10, Bytes::from_static(b"e10"))));
    store.write(&[WriteOp::RaftTruncate { group: 3, from: 8 }], true).expect("truncate");
    assert_eq!(store.raft_last(3).expect("last").map(|(i, _)| i), Some(7));
    store.write(&[WriteOp::RaftPurge { group: 3, up_to: 4 }], true).expect("purge");
    assert_eq!(indexes(0, 100), vec![5, 6, 7]);
    assert_eq!(store.raft_last(4).expect("last").map(|(i, _)| i), Some(1), "other groups untouched");
    store.write(&[WriteOp::RaftPurge { group: 3, up_to: 7 }], true).expect("purge all");
    assert_eq!(store.raft_last(3).expect("last"), None);
    store.write(&[WriteOp::PutRaftState { group: 3, field: 1, value: vec![7] }], true).expect("state");
    assert_eq!(store.raft_state(3, 1).expect("state"), Some(vec![7]));
    assert_eq!(store.raft_state(3, 2).expect("state"), None);
    assert_eq!(store.raft_state(4, 1).expect("state"), None);
    store.write(&[WriteOp::PutMeta { key: "k".to_owned(), value: vec![1] }], true).expect("meta");
    store.write(&[WriteOp::DeleteMeta { key: "k".to_owned() }], true).expect("delete meta");
    assert_eq!(store.meta("k").expect("meta"), None);
}

fn coordinator_records_are_kept_per_shard_in_key_order(store: &dyn Store) {
    let put = |shard, key: &[u8], value: &[u8]| WriteOp::PutCoordinatorRecord {
        shard,
        key: key.to_vec(),
        value: value.to_vec(),
    };
    // u32::MAX checks the shard range end does not overflow into nothing.
    let ops = [put(2, b"b", b"2"), put(2, b"a", b"1"), put(3, b"a", b"other"), put(u32::MAX, b"z", b"last")];
    store.write(&ops, true).expect("put");
    let records = store.coordinator_records(2).expect("records");
    assert_eq!(records, vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
    store
        .write(&[put(2, b"a", b"3"), WriteOp::DeleteCoordinatorRecord { shard: 2, key: b"b".to_vec() }], true)
        .expect("update");
    assert_eq!(store.coordinator_records(2).expect("records"), vec![(b"a".to_vec(), b"3".to_vec())]);
    assert_eq!(store.coordinator_records(3).expect("records").len(), 1, "other shards untouched");
    assert_eq!(store.coordinator_records(u32::MAX).expect("records").len(), 1);
    assert!(store.coordinator_records(4).expect("records").is_empty());
}

fn group_commit_writer_preserves_order(store: Arc<dyn Store>) {
    let writer = GroupCommitWriter::start(Arc::clone(&store), SyncPolicy::Always).expect("writer");
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..200i64 {
        let tx = tx.clone();
        writer
            .submit(vec![append(30, batch(i, 1, i), true)], Box::new(move |r| tx.send((i, r.is_ok())).expect("send")));
    }
    let mut completed: Vec<(i64, bool)> = (0..200).map(|_| rx.recv().expect("completion")).collect();
    assert!(completed.iter().all(|(_, ok)| *ok));
    let order: Vec<i64> = completed.iter().map(|(i, _)| *i).collect();
    completed.sort();
    assert_eq!(order, (0..200).collect::<Vec<_>>(), "callbacks run in submission order");
    assert_eq!(store.bounds(30).expect("bounds").next_offset, 200);
    writer.shutdown();
    let (tx, rx) = std::sync::mpsc::channel();
    writer.submit(vec![append(30, batch(200, 1, 1), false)], Box::new(move |r| tx.send(r).expect("send")));
    assert!(matches!(rx.recv().expect("completion"), Err(StorageError::WriterStopped)));
}

fn run_suite(make: impl Fn() -> Arc<dyn Store>) {
    reads_whole_batches_from_inside_a_batch(&*make());
    bounds_track_the_log_tail(&*make());
    truncation_drops_the_tail_and_its_time_index(&*make());
    time_index_finds_first_batch_reaching_the_target(&*make());
    producer_state_is_kept_per_log(&*make());
    topics_are_stored_and_deleted_with_their_logs(&*make());
    meta_values_round_trip(&*make());
    raft_log_appends_truncates_and_purges(&*make());
    coordinator_records_are_kept_per_shard_in_key_order(&*make());
    group_commit_writer_preserves_order(make());
}

#[test]
fn memory_store_conforms() {
    run_suite(|| Arc::new(MemoryStore::new()));
}

#[test]
fn rocks_store_conforms() {
    let dirs = std::sync::Mutex::new(Vec::new());
    run_suite(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RocksStore::open(dir.path()).expect("open");
        dirs.lock().expect("lock").push(dir);
        Arc::new(store)
    });
}

#[test]
fn rocks_store_keeps_everything_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = RocksStore::open(dir.path()).expect("open");
        fill(&store, 1, &[5, 3, 9]);
        store.checkpoint().expect("checkpoint");
        fill(&store, 2, &[1]);
    }
    let store = RocksStore::open(dir.path()).expect("reopen");
    assert_eq!(store.bounds(1).expect("bounds"), LogBounds { log_start_offset: 0, next_offset: 9, max_timestamp: 9 });
    assert_eq!(store.read(1, 0, usize::MAX).expect("read").len(), 3);
    assert_eq!(store.read(2, 0, usize::MAX).expect("read").len(), 1, "writes after a checkpoint survive too");
}
