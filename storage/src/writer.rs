//! Group commit: one writer thread in front of a [`Store`]. Callers submit
//! write groups with a completion callback; the thread takes everything that
//! queued up while the previous write was in flight, applies it as one
//! atomic write with one fsync, then completes every callback. Under load
//! many producers (and partitions) share each fsync; alone, a writer pays one.
//!
//! Order is preserved: groups are written in submission order, so offsets a
//! partition assigned in order reach the log in order.
//!
//! An I/O failure poisons the writer: the state on disk is unknown, so every
//! later write is refused (Kafka's answer to a failed log dir is likewise to
//! stop serving it) until a restart recovers from the WAL.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{StorageError, Store, WriteOp};

/// Called once the write is durable (per the [`SyncPolicy`]) or has failed.
pub type WriteDone = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

/// When writes reach stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync (WAL sync) before any write of the group is acknowledged.
    Always,
    /// Acknowledge after the write reaches the OS; fsync every interval.
    Interval(Duration),
}

/// Upper bound on one group, so one commit's latency stays bounded.
const MAX_GROUP_BYTES: usize = 32 << 20;
const MAX_GROUP_OPS: usize = 4096;

struct Pending {
    ops: Vec<WriteOp>,
    bytes: usize,
    /// Called once the group is written, before its sync (see `submit_written`).
    written: Option<WriteDone>,
    done: WriteDone,
}

enum Command {
    Write(Pending),
    Sync(WriteDone),
    /// Ends the writer thread. Needed because the interval flusher holds a
    /// sender of its own, so the channel never closes while it lives.
    Stop,
}

pub struct GroupCommitWriter {
    store: Arc<dyn Store>,
    sender: Mutex<Option<Sender<Command>>>,
    poison: Arc<Mutex<Option<StorageError>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for GroupCommitWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommitWriter").finish_non_exhaustive()
    }
}

fn op_bytes(op: &WriteOp) -> usize {
    match op {
        WriteOp::Append(append) => append.batch.bytes.len() + 64,
        _ => 256,
    }
}

impl GroupCommitWriter {
    pub fn start(store: Arc<dyn Store>, policy: SyncPolicy) -> Result<Self, StorageError> {
        let (sender, receiver) = mpsc::channel::<Command>();
        let poison = Arc::new(Mutex::new(None));
        let sync_each_group = policy == SyncPolicy::Always;
        let thread_store = Arc::clone(&store);
        let thread_poison = Arc::clone(&poison);
        let writer = std::thread::Builder::new()
            .name("skein-storage-writer".to_owned())
            .spawn(move || run_writer(&*thread_store, &receiver, sync_each_group, &thread_poison))
            .map_err(|e| StorageError::Io(e.to_string()))?;
        let mut threads = vec![writer];
        if let SyncPolicy::Interval(every) = policy {
            let flush_sender = sender.clone();
            let flusher = std::thread::Builder::new()
                .name("skein-storage-flusher".to_owned())
                .spawn(move || loop {
                    std::thread::sleep(every);
                    // Fails once the writer thread has stopped.
                    if flush_sender.send(Command::Sync(Box::new(|_| {}))).is_err() {
                        return;
                    }
                })
                .map_err(|e| StorageError::Io(e.to_string()))?;
            threads.push(flusher);
        }
        Ok(Self { store, sender: Mutex::new(Some(sender)), poison, threads: Mutex::new(threads) })
    }

    /// Queues `ops` as one atomic group; `done` runs on the writer thread
    /// once the group is durable (per the [`SyncPolicy`]).
    pub fn submit(&self, ops: Vec<WriteOp>, done: WriteDone) {
        self.queue(ops, None, done);
    }

    /// Like [`submit`](Self::submit), and `written` runs as soon as the
    /// group has reached the store, before the sync that makes it durable:
    /// for answers that promise only a local write (a produce with acks=1).
    pub fn submit_written(&self, ops: Vec<WriteOp>, written: WriteDone, done: WriteDone) {
        self.queue(ops, Some(written), done);
    }

    fn queue(&self, ops: Vec<WriteOp>, written: Option<WriteDone>, done: WriteDone) {
        let refuse = |error: StorageError, written: Option<WriteDone>, done: WriteDone| {
            if let Some(written) = written {
                written(Err(error.clone()));
            }
            done(Err(error));
        };
        if let Some(error) = self.poisoned() {
            return refuse(StorageError::Poisoned(error.to_string()), written, done);
        }
        let bytes = ops.iter().map(op_bytes).sum();
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        match sender.as_ref() {
            Some(sender) => {
                if let Err(mpsc::SendError(Command::Write(pending))) =
                    sender.send(Command::Write(Pending { ops, bytes, written, done }))
                {
                    refuse(StorageError::WriterStopped, pending.written, pending.done);
                }
            }
            None => refuse(StorageError::WriterStopped, written, done),
        }
    }

    /// Writes `ops` now, on the caller's thread, without a sync: for state
    /// that can be rebuilt from a durable log after a crash (applied Raft
    /// entries, the commit point). It becomes durable with the next sync.
    /// Not ordered with queued writes: callers write only what depends on
    /// writes that have already completed. A failure poisons the writer.
    pub fn write_volatile(&self, ops: &[WriteOp]) -> Result<(), StorageError> {
        if let Some(error) = self.poisoned() {
            return Err(StorageError::Poisoned(error.to_string()));
        }
        // After shutdown the store has been checkpointed: nothing more lands.
        if self.sender.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
            return Err(StorageError::WriterStopped);
        }
        let result = self.store.write(ops, false);
        if let Err(error) = &result {
            poison_with(&self.poison, error);
        }
        result
    }

    /// Makes everything submitted so far durable, then calls `done`.
    pub fn flush(&self, done: WriteDone) {
        let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner());
        match sender.as_ref() {
            Some(sender) => {
                if let Err(mpsc::SendError(Command::Sync(done))) = sender.send(Command::Sync(done)) {
                    done(Err(StorageError::WriterStopped));
                }
            }
            None => done(Err(StorageError::WriterStopped)),
        }
    }

    /// Stops accepting writes, lets queued ones finish (with a final sync)
    /// and joins the writer thread.
    pub fn shutdown(&self) {
        let (done_tx, done_rx) = mpsc::channel();
        self.flush(Box::new(move |result| {
            let _ = done_tx.send(result);
        }));
        let _ = done_rx.recv();
        if let Some(sender) = self.sender.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = sender.send(Command::Stop);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(writer) = threads.into_iter().next() {
            let _ = writer.join();
        }
    }

    pub fn poisoned(&self) -> Option<StorageError> {
        self.poison.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn run_writer(
    store: &dyn Store,
    receiver: &Receiver<Command>,
    sync_each_group: bool,
    poison: &Mutex<Option<StorageError>>,
) {
    let mut stopping = false;
    while !stopping {
        let Ok(first) = receiver.recv() else { return };
        let mut group = Vec::new();
        let mut syncs = Vec::new();
        let (mut group_bytes, mut group_ops) = (0usize, 0usize);
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                Command::Write(pending) => {
                    group_bytes += pending.bytes;
                    group_ops += pending.ops.len();
                    group.push(pending);
                }
                Command::Sync(done) => syncs.push(done),
                Command::Stop => stopping = true,
            }
            if !stopping && group_bytes < MAX_GROUP_BYTES && group_ops < MAX_GROUP_OPS {
                next = receiver.try_recv().ok();
            }
        }
        commit_group(store, group, syncs, sync_each_group, poison);
    }
}

fn commit_group(
    store: &dyn Store,
    mut group: Vec<Pending>,
    syncs: Vec<WriteDone>,
    sync_each_group: bool,
    poison: &Mutex<Option<StorageError>>,
) {
    let mut result = match poison.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        Some(error) => Err(StorageError::Poisoned(error.to_string())),
        None => Ok(()),
    };
    if result.is_ok() && !group.is_empty() {
        let ops: Vec<WriteOp> = group.iter().flat_map(|p| p.ops.iter().cloned()).collect();
        result = store.write(&ops, false);
    }
    for pending in &mut group {
        if let Some(written) = pending.written.take() {
            written(result.clone());
        }
    }
    // The write above reached the OS; the WAL sync is separate so that
    // direct volatile writes (`write_volatile`) from other threads never
    // queue behind an fsync inside the store.
    let sync = !syncs.is_empty() || (sync_each_group && !group.is_empty());
    if result.is_ok() && sync {
        result = store.sync();
    }
    if let Err(error) = &result {
        poison_with(poison, error);
    }
    for pending in group {
        (pending.done)(result.clone());
    }
    for done in syncs {
        done(result.clone());
    }
}

/// Records the first failure: the state on disk is unknown from here on.
fn poison_with(poison: &Mutex<Option<StorageError>>, error: &StorageError) {
    if matches!(error, StorageError::Poisoned(_)) {
        return;
    }
    let mut poison = poison.lock().unwrap_or_else(|p| p.into_inner());
    if poison.is_none() {
        tracing::error!(%error, "storage write failed; refusing all further writes");
        *poison = Some(error.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::MemoryStore;

    #[test]
    fn shutdown_returns_with_the_interval_flusher_running_and_later_writes_are_refused() {
        let writer = Arc::new(
            GroupCommitWriter::start(Arc::new(MemoryStore::new()), SyncPolicy::Interval(Duration::from_millis(5)))
                .expect("starts"),
        );
        let (written_tx, written_rx) = mpsc::channel();
        let op = WriteOp::PutMeta { key: "k".to_owned(), value: vec![1] };
        writer.submit(vec![op], Box::new(move |result| written_tx.send(result).expect("send")));
        assert!(written_rx.recv_timeout(Duration::from_secs(5)).expect("written").is_ok());
        let direct = WriteOp::PutMeta { key: "direct".to_owned(), value: vec![3] };
        writer.write_volatile(&[direct]).expect("a direct write lands at once");
        let (stopped_tx, stopped_rx) = mpsc::channel();
        let stopping = Arc::clone(&writer);
        std::thread::spawn(move || {
            stopping.shutdown();
            let _ = stopped_tx.send(());
        });
        assert!(stopped_rx.recv_timeout(Duration::from_secs(5)).is_ok(), "shutdown hung");
        let (late_tx, late_rx) = mpsc::channel();
        writer.submit(Vec::new(), Box::new(move |result| late_tx.send(result).expect("send")));
        assert!(matches!(late_rx.recv_timeout(Duration::from_secs(5)), Ok(Err(StorageError::WriterStopped))));
        let late_op = WriteOp::PutMeta { key: "late".to_owned(), value: vec![2] };
        assert!(matches!(writer.write_volatile(&[late_op]), Err(StorageError::WriterStopped)));
    }

    /// A store that records the order of writes and syncs.
    struct Recording {
        inner: MemoryStore,
        events: Arc<Mutex<Vec<&'static str>>>,
    }

    impl Recording {
        fn note(&self, event: &'static str) {
            self.events.lock().expect("events").push(event);
        }
    }

    impl Store for Recording {
        fn write(&self, ops: &[WriteOp], sync: bool) -> Result<(), StorageError> {
            self.note("write");
            self.inner.write(ops, sync)
        }
        fn sync(&self) -> Result<(), StorageError> {
            self.note("sync");
            self.inner.sync()
        }
        fn checkpoint(&self) -> Result<(), StorageError> {
            self.inner.checkpoint()
        }
        fn read(&self, log: crate::LogId, from: i64, max: usize) -> Result<Vec<crate::StoredBatch>, StorageError> {
            self.inner.read(log, from, max)
        }
        fn bounds(&self, log: crate::LogId) -> Result<crate::LogBounds, StorageError> {
            self.inner.bounds(log)
        }
        fn find_by_timestamp(&self, log: crate::LogId, ts: i64) -> Result<Option<crate::StoredBatch>, StorageError> {
            self.inner.find_by_timestamp(log, ts)
        }
        fn find_max_timestamp(&self, log: crate::LogId) -> Result<Option<crate::StoredBatch>, StorageError> {
            self.inner.find_max_timestamp(log)
        }
        fn producer_states(&self, log: crate::LogId) -> Result<Vec<(i64, crate::ProducerState)>, StorageError> {
            self.inner.producer_states(log)
        }
        fn topics(&self) -> Result<Vec<crate::TopicRecord>, StorageError> {
            self.inner.topics()
        }
        fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
            self.inner.meta(key)
        }
        fn raft_entries(
            &self,
            group: crate::GroupId,
            from: u64,
            to: u64,
        ) -> Result<Vec<(u64, bytes::Bytes)>, StorageError> {
            self.inner.raft_entries(group, from, to)
        }
        fn raft_state(&self, group: crate::GroupId, field: u8) -> Result<Option<Vec<u8>>, StorageError> {
            self.inner.raft_state(group, field)
        }
        fn raft_last(&self, group: crate::GroupId) -> Result<Option<(u64, bytes::Bytes)>, StorageError> {
            self.inner.raft_last(group)
        }
        fn coordinator_records(
            &self,
            shard: crate::CoordinatorShard,
        ) -> Result<Vec<crate::CoordinatorRecord>, StorageError> {
            self.inner.coordinator_records(shard)
        }
    }

    #[test]
    fn the_written_callback_runs_after_the_write_and_before_the_sync_done_after_it() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::new(Recording { inner: MemoryStore::new(), events: Arc::clone(&events) });
        let writer = GroupCommitWriter::start(store, SyncPolicy::Always).expect("starts");
        let (done_tx, done_rx) = mpsc::channel();
        let (written_events, done_events) = (Arc::clone(&events), Arc::clone(&events));
        let op = WriteOp::PutMeta { key: "k".to_owned(), value: vec![1] };
        writer.submit_written(
            vec![op],
            Box::new(move |result| {
                assert!(result.is_ok());
                written_events.lock().expect("events").push("written");
            }),
            Box::new(move |result| {
                done_events.lock().expect("events").push("done");
                done_tx.send(result).expect("send");
            }),
        );
        assert!(done_rx.recv_timeout(Duration::from_secs(5)).expect("done").is_ok());
        assert_eq!(*events.lock().expect("events"), vec!["write", "written", "sync", "done"]);
        writer.shutdown();
    }
}
