//! The openraft type configuration shared by every group.

use std::fmt;
use std::sync::{Arc, Mutex};

use skein_storage::{StorageError, WriteOp};
use tokio::sync::oneshot;

/// The application data of one Raft entry: writes to apply atomically. The
/// leader assigned every Kafka offset inside them before proposing, so Raft
/// indexes never become Kafka offsets (blank and membership entries consume
/// indexes, not offsets).
#[derive(Clone, Debug)]
pub(crate) struct Proposal {
    pub(crate) ops: Vec<WriteOp>,
    /// Set once the Raft log store wrote the batches of the `Append` ops to
    /// their partition logs (with the entry, in one atomic write): applying
    /// the entry then skips them, so each batch is written once.
    pub(crate) appends_stored: bool,
    /// Told once the entry has reached the store, before its fsync; not
    /// part of the entry's encoding (a restarted node has no one to tell).
    pub(crate) written: WrittenWaiters,
}

impl Proposal {
    pub(crate) fn new(ops: Vec<WriteOp>) -> Self {
        Self { ops, appends_stored: false, written: WrittenWaiters::default() }
    }
}

/// Told the result of writing an entry locally (acks=1 produces wait on it).
pub(crate) type WrittenSender = oneshot::Sender<Result<(), StorageError>>;

/// Whoever waits for an entry to be written locally. Shared by the entry's
/// clones; the log store takes them once. Entries nobody waits on (acks=all
/// produces, decoded entries) hold nothing, so they cost no allocation.
#[derive(Clone, Default)]
pub(crate) struct WrittenWaiters(Option<Arc<Mutex<Vec<WrittenSender>>>>);

impl WrittenWaiters {
    pub(crate) fn new(waiters: Vec<WrittenSender>) -> Self {
        Self((!waiters.is_empty()).then(|| Arc::new(Mutex::new(waiters))))
    }

    pub(crate) fn take(&self) -> Vec<WrittenSender> {
        self.0
            .as_ref()
            .map(|waiters| std::mem::take(&mut *waiters.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default()
    }
}

impl fmt::Debug for WrittenWaiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrittenWaiters")
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proposal({} ops)", self.ops.len())
    }
}

/// The answer to a proposal once applied (nothing beyond success).
#[derive(Clone, Debug, Default)]
pub(crate) struct Applied;

openraft::declare_raft_types!(
    pub(crate) TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
);

pub(crate) type C = TypeConfig;
/// Snapshots carry no data: the state lives in the store, a snapshot only
/// marks how far it is durable so the Raft log can be purged.
pub(crate) type SnapshotData = Vec<u8>;

/// Fields of the per-group replication state in storage.
pub(crate) mod field {
    pub(crate) const VOTE: u8 = 1;
    pub(crate) const COMMITTED: u8 = 2;
    pub(crate) const PURGED: u8 = 3;
    pub(crate) const APPLIED: u8 = 4;
    pub(crate) const MEMBERSHIP: u8 = 5;
}
