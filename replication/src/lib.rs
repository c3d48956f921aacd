//! Replication for Skein: how a write becomes *committed*.
//!
//! Every partition is an openraft group, and so is the cluster metadata
//! ([`METADATA_GROUP`]). The broker proposes writes to a group and awaits
//! their commit; it never writes to storage itself. [`Replicator::propose`]
//! queues synchronously, so a caller proposing in offset order (under its
//! partition lock) gets its writes into the Raft log in that order; only the
//! waiting is async.
//!
//! Today each group has one member, this node: an entry commits once it is
//! durable in the local Raft log. Adding nodes means a real network in place
//! of [`network::NoNetwork`] and membership changes, not another write path.
//!
//! Kafka offsets are assigned by the leader inside the proposed writes, so
//! Raft's own entries (blank, membership) never consume Kafka offsets.
//!
//! Only this crate names openraft.

mod entry_codec;
mod group;
mod log_store;
mod network;
mod state_machine;
mod types;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, RwLock};

use openraft::{Config, SnapshotPolicy, StepDownPolicy};
use skein_storage::{GroupCommitWriter, GroupId, StorageError, Store, SyncPolicy, WriteOp};
use tokio::sync::oneshot;

pub use skein_storage::SyncPolicy as FsyncPolicy;

use crate::group::{Group, Queued};

/// The group holding topics and other cluster metadata. Partition groups
/// use their log id, which is always smaller.
pub const METADATA_GROUP: GroupId = u32::MAX;

/// The group of coordinator shard `shard` (consumer groups and offsets).
/// Counted down from below [`METADATA_GROUP`], far above any partition's
/// log id, which count up from 0.
pub const fn coordinator_group(shard: u32) -> GroupId {
    METADATA_GROUP - 1 - shard
}

/// Entries between snapshots; a snapshot syncs the store and lets the Raft
/// log behind it be purged, which bounds the log.
const ENTRIES_PER_SNAPSHOT: u64 = 1024;

/// Why a proposal did not commit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReplicationError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("raft: {0}")]
    Raft(String),
    #[error("replication group {0} is not open on this node")]
    UnknownGroup(GroupId),
    #[error("the replication layer is shutting down")]
    ShuttingDown,
}

/// The two answers of [`Replicator::propose_written`].
pub struct Proposed {
    pub written: ProposalFuture,
    pub applied: ProposalFuture,
}

pub type ProposalFuture = std::pin::Pin<Box<dyn Future<Output = Result<(), ReplicationError>> + Send>>;

/// The node's replication engine: its groups and the shared writer.
pub struct Replicator {
    node_id: i32,
    store: Arc<dyn Store>,
    writer: Arc<GroupCommitWriter>,
    config: Arc<Config>,
    groups: RwLock<HashMap<GroupId, Arc<Group>>>,
}

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

/// Queues `ops` on the writer and waits until they are durable.
pub(crate) async fn write(writer: &GroupCommitWriter, ops: Vec<WriteOp>) -> io::Result<()> {
    let (sender, receiver) = oneshot::channel();
    writer.submit(
        ops,
        Box::new(move |result| {
            let _ = sender.send(result);
        }),
    );
    receiver.await.map_err(|_| io::Error::other("storage writer stopped"))?.map_err(io::Error::other)
}

/// Waits until everything written so far is durable.
pub(crate) async fn flush(writer: &GroupCommitWriter) -> io::Result<()> {
    let (sender, receiver) = oneshot::channel();
    writer.flush(Box::new(move |result| {
        let _ = sender.send(result);
    }));
    receiver.await.map_err(|_| io::Error::other("storage writer stopped"))?.map_err(io::Error::other)
}

/// Settings for single-member groups: no ticks (nothing to heartbeat or
/// elect against, so thousands of idle groups cost no CPU), no step-down,
/// periodic snapshots that only mark durability.
fn group_config() -> Result<Config, ReplicationError> {
    Config {
        cluster_name: "skein".to_owned(),
        enable_tick: false,
        heartbeat_interval: 500,
        election_timeout_min: 1500,
        election_timeout_max: 3000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(ENTRIES_PER_SNAPSHOT),
        max_in_snapshot_log_to_keep: 0,
        removed_leader_step_down: StepDownPolicy::Never,
        ..Default::default()
    }
    .validate()
    .map_err(|e| ReplicationError::Raft(e.to_string()))
}

/// Builds, on a thread of its own, the lookup tables openraft's runtime
/// statistics share process-wide (its histogram crate fills them on first
/// use: ~20 ms of one core, measured). Started before the store opens, that
/// work overlaps the open instead of delaying the first group's start.
pub fn warm_up() {
    let spawned = std::thread::Builder::new().name("skein-raft-warm-up".to_owned()).spawn(|| {
        let _ = base2histogram::Histogram::<()>::new();
    });
    if let Err(error) = spawned {
        tracing::debug!(%error, "no warm-up thread; the first group builds the tables");
    }
}

impl Replicator {
    /// Starts the writer and opens the metadata group.
    pub async fn start(node_id: i32, store: Arc<dyn Store>, policy: SyncPolicy) -> Result<Self, ReplicationError> {
        let writer = Arc::new(GroupCommitWriter::start(Arc::clone(&store), policy)?);
        let replicator =
            Self { node_id, store, writer, config: Arc::new(group_config()?), groups: RwLock::new(HashMap::new()) };
        replicator.open_group(METADATA_GROUP).await?;
        Ok(replicator)
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The committed state, for reads.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Opens (creating on first use) a group on this node. On return the
    /// group leads and everything in its log is applied.
    pub async fn open_group(&self, group: GroupId) -> Result<(), ReplicationError> {
        let opened = self.start_group(group).await?;
        self.groups.write().unwrap_or_else(|p| p.into_inner()).insert(group, Arc::new(opened));
        Ok(())
    }

    fn start_group(&self, group: GroupId) -> impl Future<Output = Result<Group, ReplicationError>> + Send + 'static {
        let node = u64::try_from(self.node_id).unwrap_or_default();
        let (config, store, writer) = (Arc::clone(&self.config), Arc::clone(&self.store), Arc::clone(&self.writer));
        Group::open(node, group, config, store, writer)
    }

    /// Opens many groups at once, each on a task of its own: opening is
    /// mostly CPU (reading the group's state, starting its Raft core), so
    /// the runtime's workers share it, and the few writes the opens make
    /// share the writer's fsyncs. A restart with hundreds of partitions costs
    /// a few fsyncs, not one each.
    pub async fn open_groups(&self, groups: &[GroupId]) -> Result<(), ReplicationError> {
        let tasks: Vec<_> = groups.iter().map(|group| (*group, tokio::spawn(self.start_group(*group)))).collect();
        let mut first_error = None;
        for (group, task) in tasks {
            match task.await {
                Ok(Ok(opened)) => {
                    self.groups.write().unwrap_or_else(|p| p.into_inner()).insert(group, Arc::new(opened));
                }
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(join_error) => {
                    first_error.get_or_insert(ReplicationError::Raft(format!("opening group {group}: {join_error}")));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops a group on this node (its data stays until deleted).
    pub async fn close_group(&self, group: GroupId) {
        let removed = self.groups.write().unwrap_or_else(|p| p.into_inner()).remove(&group);
        if let Some(removed) = removed {
            removed.shutdown().await;
        }
    }

    fn group(&self, group: GroupId) -> Option<Arc<Group>> {
        self.groups.read().unwrap_or_else(|p| p.into_inner()).get(&group).cloned()
    }

    /// The leader of a group: with one member, this node.
    pub fn leader(&self, _group: GroupId) -> i32 {
        self.node_id
    }

    /// The Kafka leader epoch of a group: its Raft term.
    pub fn leader_epoch(&self, group: GroupId) -> i32 {
        self.group(group).map_or(0, |g| i32::try_from(g.term()).unwrap_or(i32::MAX))
    }

    /// Proposes `ops` as one atomic write to `group`. Queued before this
    /// returns; the future resolves once the write is committed and applied.
    pub fn propose(
        &self,
        group: GroupId,
        ops: Vec<WriteOp>,
    ) -> impl Future<Output = Result<(), ReplicationError>> + Send + 'static {
        let (done, receiver) = oneshot::channel();
        self.enqueue(group, Queued { ops, written: None, done });
        async move { receiver.await.unwrap_or(Err(ReplicationError::ShuttingDown)) }
    }

    /// Like [`propose`](Self::propose), with a second signal: `written`
    /// resolves once this node's log holds the entry (written, not yet
    /// fsynced, not yet committed), which is all a produce with acks=1
    /// promises. `applied` resolves as `propose`'s future does.
    pub fn propose_written(&self, group: GroupId, ops: Vec<WriteOp>) -> Proposed {
        let (done, applied) = oneshot::channel();
        let (written_tx, written) = oneshot::channel();
        self.enqueue(group, Queued { ops, written: Some(written_tx), done });
        Proposed {
            written: Box::pin(async move {
                match written.await {
                    Ok(result) => result.map_err(ReplicationError::from),
                    Err(_) => Err(ReplicationError::ShuttingDown),
                }
            }),
            applied: Box::pin(async move { applied.await.unwrap_or(Err(ReplicationError::ShuttingDown)) }),
        }
    }

    fn enqueue(&self, group: GroupId, queued: Queued) {
        match self.group(group) {
            Some(open) => open.enqueue(queued),
            None => {
                let _ = queued.done.send(Err(ReplicationError::UnknownGroup(group)));
            }
        }
    }

    /// Sets who is told about each journal sync: its duration and how many
    /// writes waited for it (metrics).
    pub fn observe_syncs(&self, observer: skein_storage::SyncObserver) {
        self.writer.observe_syncs(observer);
    }

    /// Set when a storage failure has stopped all writes.
    pub fn poisoned(&self) -> Option<StorageError> {
        self.writer.poisoned()
    }

    /// Stops every group, then syncs and stops the writer.
    pub async fn shutdown(&self) {
        let groups: Vec<Arc<Group>> =
            self.groups.write().unwrap_or_else(|p| p.into_inner()).drain().map(|(_, g)| g).collect();
        futures_util::future::join_all(groups.iter().map(|group| group.shutdown())).await;
        let (writer, store) = (Arc::clone(&self.writer), Arc::clone(&self.store));
        let _ = tokio::task::spawn_blocking(move || {
            writer.shutdown();
            if let Err(error) = store.checkpoint() {
                tracing::warn!(%error, "could not move the write-ahead log into table files; the next start replays it");
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use skein_storage::{LogAppend, MemoryStore, RocksStore, StoredBatch};

    fn append(offset: i64) -> Vec<WriteOp> {
        let batch =
            StoredBatch { base_offset: offset, last_offset: offset, max_timestamp: 0, bytes: Bytes::from_static(b"x") };
        vec![WriteOp::Append(LogAppend { log: 1, batch, index_timestamp: false })]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn proposals_commit_in_submission_order() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let replicator = Replicator::start(1, Arc::clone(&store), SyncPolicy::Always).await.expect("start");
        replicator.open_group(1).await.expect("open");
        let proposals: Vec<_> = (0..3000i64).map(|offset| replicator.propose(1, append(offset))).collect();
        for proposal in proposals {
            proposal.await.expect("commits");
        }
        let read = store.read(1, 0, usize::MAX).expect("read");
        assert_eq!(read.iter().map(|b| b.base_offset).collect::<Vec<_>>(), (0..3000).collect::<Vec<_>>());
        assert!(store.raft_state(1, types::field::APPLIED).expect("state").is_some(), "applied position recorded");
        assert!(replicator.leader_epoch(1) >= 1);
        assert!(matches!(replicator.propose(9, vec![]).await, Err(ReplicationError::UnknownGroup(9))));
        replicator.shutdown().await;
        assert!(replicator.propose(1, vec![]).await.is_err(), "no proposal commits after shutdown");
    }

    fn store_has_purged(store: &dyn Store) -> bool {
        store.raft_state(1, types::field::PURGED).expect("state").is_some()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restarted_group_keeps_its_state_and_leads_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store: Arc<dyn Store> = Arc::new(RocksStore::open(dir.path()).expect("open"));
            let replicator = Replicator::start(1, store, SyncPolicy::Always).await.expect("start");
            replicator.open_group(1).await.expect("open");
            // Sequential proposals are one entry each: enough for snapshots
            // and purges of the Raft log before the restart.
            for offset in 0..2500 {
                replicator.propose(1, append(offset)).await.expect("commits");
            }
            assert!(store_has_purged(&*replicator.store), "the Raft log was purged after a snapshot");
            replicator.shutdown().await;
        }
        let store: Arc<dyn Store> = Arc::new(RocksStore::open(dir.path()).expect("reopen"));
        let replicator = Replicator::start(1, Arc::clone(&store), SyncPolicy::Always).await.expect("restart");
        replicator.open_group(1).await.expect("reopen group");
        replicator.propose(1, append(2500)).await.expect("commits after restart");
        assert_eq!(store.bounds(1).expect("bounds").next_offset, 2501);
        replicator.shutdown().await;
    }

    /// A crash can lose applied state (it is written unsynced) while the
    /// Raft log keeps the entries: reopening must apply them again before
    /// the group serves, even though a clean restart skips that step.
    #[tokio::test]
    async fn a_reopened_group_reapplies_entries_whose_applied_state_was_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let put = |value: u8| vec![WriteOp::PutMeta { key: "k".to_owned(), value: vec![value] }];
        let applied_after_first;
        {
            let store: Arc<dyn Store> = Arc::new(RocksStore::open(dir.path()).expect("open"));
            let replicator = Replicator::start(1, Arc::clone(&store), SyncPolicy::Always).await.expect("start");
            replicator.open_group(1).await.expect("open");
            replicator.propose(1, put(1)).await.expect("commits");
            applied_after_first = store.raft_state(1, types::field::APPLIED).expect("read").expect("applied");
            for value in 2..=5 {
                replicator.propose(1, put(value)).await.expect("commits");
            }
            replicator.shutdown().await;
            // What a crash could leave: the commit point, applied position and
            // state of the first entry, the later entries only in the Raft log.
            let rewind = vec![
                WriteOp::PutRaftState { group: 1, field: types::field::COMMITTED, value: applied_after_first.clone() },
                WriteOp::PutRaftState { group: 1, field: types::field::APPLIED, value: applied_after_first },
                WriteOp::PutMeta { key: "k".to_owned(), value: vec![1] },
            ];
            store.write(&rewind, true).expect("rewind");
        }
        let store: Arc<dyn Store> = Arc::new(RocksStore::open(dir.path()).expect("reopen"));
        let replicator = Replicator::start(1, Arc::clone(&store), SyncPolicy::Always).await.expect("restart");
        replicator.open_group(1).await.expect("reopen group");
        assert_eq!(store.meta("k").expect("read"), Some(vec![5]), "entries 2-5 applied again on open");
        replicator.shutdown().await;
    }
}
