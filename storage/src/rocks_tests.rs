//! The journal under the real store: replay after a crash (a drop without
//! a checkpoint loses the memtables, as `kill -9` does), torn tails, file
//! deletion, and stores written before the journal existed.

use std::io::Write;
use std::os::unix::fs::FileExt;

use bytes::Bytes;

use super::*;
use crate::codec::encode_batch_value;
use crate::LogAppend;

fn batch(base_offset: i64, fill: u8, len: usize) -> StoredBatch {
    StoredBatch {
        base_offset,
        last_offset: base_offset + 1,
        max_timestamp: base_offset * 10,
        bytes: Bytes::from(vec![fill; len]),
    }
}

fn append(log: LogId, batch: StoredBatch) -> WriteOp {
    WriteOp::Append(LogAppend { log, batch, index_timestamp: true })
}

fn tiny_files() -> StoreTuning {
    StoreTuning {
        journal_file_bytes: 4 << 10,
        flush_after_journal_bytes: 16 << 10,
        flush_after_index_bytes: 1 << 20,
        relocate_log_max_bytes: 8 << 20,
    }
}

/// Writes `count` 1 KiB batches to each of `logs`, interleaved, one write each.
fn fill(store: &RocksStore, logs: &[LogId], count: i64) {
    for n in 0..count {
        for log in logs {
            store.write(&[append(*log, batch(n * 2, (n % 251) as u8, 1024))], false).expect("write");
        }
    }
}

fn assert_filled(store: &RocksStore, log: LogId, count: i64) {
    let read = store.read(log, 0, usize::MAX).expect("read");
    assert_eq!(read.len() as i64, count, "log {log}");
    for (n, stored) in read.iter().enumerate() {
        assert_eq!(stored, &batch(n as i64 * 2, (n % 251) as u8, 1024), "log {log} batch {n}");
    }
}

fn newest_journal_file(dir: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> =
        std::fs::read_dir(dir.join("journal")).expect("list").map(|e| e.expect("entry").path()).collect();
    files.sort();
    files.pop().expect("a journal file")
}

#[test]
fn a_crash_loses_nothing_written_with_flushes_between() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = RocksStore::open_tuned(dir.path(), tiny_files()).expect("open");
        store.write(&[WriteOp::PutMeta { key: "before".into(), value: b"1".to_vec() }], false).expect("write");
        fill(&store, &[1, 2, 3], 40);
        store.write(&[WriteOp::PutMeta { key: "after".into(), value: b"2".to_vec() }], false).expect("write");
        assert!(store.lock_writes().requested_replay_start > Position { file: 1, offset: 0 }, "flushes happened");
        // Dropped without a checkpoint: the memtables are lost, as in a crash.
    }
    let store = RocksStore::open_tuned(dir.path(), tiny_files()).expect("reopen");
    for log in [1, 2, 3] {
        assert_filled(&store, log, 40);
    }
    assert_eq!(store.meta("before").expect("meta"), Some(b"1".to_vec()));
    assert_eq!(store.meta("after").expect("meta"), Some(b"2".to_vec()), "written after the last flush: replayed");
}

#[test]
fn a_torn_journal_tail_is_dropped_and_writing_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = RocksStore::open(dir.path()).expect("open");
        fill(&store, &[1], 10);
    }
    let newest = newest_journal_file(dir.path());
    let good_len = std::fs::metadata(&newest).expect("stat").len();
    let mut file = std::fs::OpenOptions::new().append(true).open(&newest).expect("open journal file");
    file.write_all(b"SKJ1 half a record that never finished").expect("tear");
    drop(file);
    {
        let store = RocksStore::open(dir.path()).expect("reopen");
        assert_filled(&store, 1, 10);
        assert_eq!(std::fs::metadata(&newest).expect("stat").len(), good_len, "the torn bytes are cut");
        store.write(&[append(1, batch(20, 10, 1024))], true).expect("write after the cut");
    }
    let store = RocksStore::open(dir.path()).expect("reopen again");
    assert_filled(&store, 1, 11);
}

#[test]
fn journal_files_go_once_no_batch_points_into_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let no_moves = StoreTuning { relocate_log_max_bytes: 0, ..tiny_files() };
    let store = RocksStore::open_tuned(dir.path(), no_moves).expect("open");
    fill(&store, &[1], 8);
    fill(&store, &[2], 40);
    store.checkpoint().expect("checkpoint");
    let ids = store.journal.ids();
    assert_eq!(ids[0], 1, "log 1's batches keep the first files: {ids:?}");
    store.write(&[WriteOp::DeleteTopic { name: "gone".into(), logs: vec![1] }], false).expect("delete log 1");
    store.checkpoint().expect("checkpoint");
    let first_of_log_2 = match store.value_at_or_before(2, 0).expect("read").expect("a batch") {
        BatchValue::InJournal { at, .. } => at.file,
        BatchValue::Inline(_) => panic!("new batches are pointers"),
    };
    assert_eq!(store.journal.ids()[0], first_of_log_2, "older files are deleted, the one log 2 starts in is kept");
    assert!(store.journal.ids().len() < ids.len());
    assert_filled(&store, 2, 40);
    drop(store);
    let store = RocksStore::open_tuned(dir.path(), no_moves).expect("reopen");
    assert_filled(&store, 2, 40);
    assert!(store.read(1, 0, usize::MAX).expect("read").is_empty());
}

#[test]
fn batches_stored_inline_by_older_versions_are_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RocksStore::open(dir.path()).expect("open");
    let old = batch(0, 7, 200);
    let logs = store.family(LOGS).expect("family");
    store.db.put_cf(logs, batch_key(4, 0), encode_batch_value(&old)).expect("legacy put");
    store.write(&[append(4, batch(2, 8, 300))], true).expect("new append");
    let read = store.read(4, 0, usize::MAX).expect("read");
    assert_eq!(read, vec![old, batch(2, 8, 300)]);
    assert_eq!(store.bounds(4).expect("bounds").next_offset, 4);
}

#[test]
fn a_corrupted_journal_byte_is_reported_not_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RocksStore::open(dir.path()).expect("open");
    store.write(&[append(1, batch(0, 1, 1024))], true).expect("write");
    let at = match store.value_at_or_before(1, 0).expect("read").expect("a batch") {
        BatchValue::InJournal { at, .. } => at,
        BatchValue::Inline(_) => panic!("new batches are pointers"),
    };
    store.journal.file(at.file).expect("file").write_all_at(&[0xee], at.offset + 100).expect("corrupt");
    let error = store.read(1, 0, usize::MAX).expect_err("refused");
    assert!(matches!(error, StorageError::Corrupt { log: 1, offset: 0, .. }), "{error}");
}

#[test]
fn a_small_log_that_alone_keeps_old_files_is_rewritten_so_they_can_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tuning = StoreTuning { relocate_log_max_bytes: 4 << 10, ..tiny_files() };
    let store = RocksStore::open_tuned(dir.path(), tuning).expect("open");
    fill(&store, &[1], 2);
    fill(&store, &[2], 40);
    store.checkpoint().expect("checkpoint");
    assert_eq!(store.journal.ids()[0], 1, "log 2 (too large to move) needs every file");
    assert!(
        matches!(store.value_at_or_before(1, 0).expect("read"), Some(BatchValue::InJournal { at, .. }) if at.file == 1),
        "log 1 is not moved while the files it keeps are live"
    );
    store.write(&[WriteOp::DeleteTopic { name: "big".into(), logs: vec![2] }], false).expect("delete log 2");
    store.checkpoint().expect("checkpoint");
    let ids = store.journal.ids();
    // The newest file before the move, and the one the moved log went to.
    assert!(ids.len() <= 2, "log 1 was rewritten at the end and every older file deleted: {ids:?}");
    assert_filled(&store, 1, 2);
    drop(store);
    let store = RocksStore::open_tuned(dir.path(), tuning).expect("reopen");
    assert_filled(&store, 1, 2);
    store.write(&[append(1, batch(4, 2, 1024))], false).expect("append after the move");
    assert_eq!(store.read(1, 0, usize::MAX).expect("read").len(), 3);
}

#[test]
fn a_log_still_holding_inline_batches_keeps_journal_files_until_it_moves_into_the_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let too_big_to_move = StoreTuning { relocate_log_max_bytes: 0, ..tiny_files() };
    {
        let store = RocksStore::open_tuned(dir.path(), too_big_to_move).expect("open");
        let logs = store.family(LOGS).expect("family");
        store.db.put_cf(logs, batch_key(3, -2), encode_batch_value(&batch(-2, 0, 1024))).expect("legacy put");
        fill(&store, &[3], 20);
        let first_pointer_file = match store.value_at_or_before(3, 2).expect("read").expect("a batch") {
            BatchValue::InJournal { at, .. } => at.file,
            BatchValue::Inline(_) => panic!("the second batch is a pointer"),
        };
        assert_eq!(first_pointer_file, 1);
        store.checkpoint().expect("checkpoint");
        assert_eq!(store.journal.ids()[0], 1, "an inline first batch hides where the log's journal batches start");
        let read = store.read(3, -2, usize::MAX).expect("read");
        assert_eq!(read.len(), 21, "nothing the log points at was deleted");
    }
    let store = RocksStore::open_tuned(dir.path(), tiny_files()).expect("reopen");
    store.checkpoint().expect("checkpoint");
    assert_eq!(store.journal.ids()[0], 1, "not moved while the files it keeps are live");
    fill(&store, &[4], 100);
    store.write(&[WriteOp::DeleteTopic { name: "big".into(), logs: vec![4] }], false).expect("delete log 4");
    store.checkpoint().expect("checkpoint");
    let read = store.read(3, -2, usize::MAX).expect("read");
    assert_eq!(read.len(), 21);
    assert_eq!(read[0], batch(-2, 0, 1024));
    assert!(
        matches!(store.value_at_or_before(3, -2).expect("read"), Some(BatchValue::InJournal { .. })),
        "the small log was moved into the journal, inline batch included"
    );
    assert!(store.journal.ids().len() <= 2, "then the old files went: {:?}", store.journal.ids());
}
