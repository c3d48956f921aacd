//! Replication for Skein: how a write becomes *committed*.
//!
//! The broker proposes a group of writes for one partition (or for the
//! cluster metadata) and awaits its commit; it never writes to storage
//! itself. Proposals are submitted synchronously when [`Replicator::propose`]
//! is called, so a caller that proposes in offset order (under its partition
//! lock) gets them applied in that order, and only the waiting is async.
//!
//! Today every group has exactly one member, this node: a proposal commits
//! when it is durable in the local store (per the [`SyncPolicy`]), through
//! the group-commit writer so concurrent partitions share each fsync. The
//! multi-node work replaces the body of `propose` with a Raft round
//! (openraft, one group per partition, Kafka offsets assigned by the leader
//! inside the data entries so non-data Raft entries never consume offsets)
//! without changing this interface.

use std::future::Future;
use std::sync::Arc;

use skein_storage::{GroupCommitWriter, StorageError, Store, SyncPolicy, WriteOp};

pub use skein_storage::SyncPolicy as FsyncPolicy;

/// Why a proposal did not commit.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReplicationError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the replication layer is shutting down")]
    ShuttingDown,
}

/// The node's replication engine.
pub struct Replicator {
    node_id: i32,
    store: Arc<dyn Store>,
    writer: GroupCommitWriter,
}

impl std::fmt::Debug for Replicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicator").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

impl Replicator {
    pub fn start(node_id: i32, store: Arc<dyn Store>, policy: SyncPolicy) -> Result<Self, ReplicationError> {
        let writer = GroupCommitWriter::start(Arc::clone(&store), policy)?;
        Ok(Self { node_id, store, writer })
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The committed state, for reads. Everything in it has committed.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The leader of every group: with one member, this node.
    pub fn leader(&self) -> i32 {
        self.node_id
    }

    /// The leader epoch of every group: with one member and no elections, 0.
    pub fn leader_epoch(&self) -> i32 {
        0
    }

    /// Proposes `ops` as one atomic entry. The proposal is queued before this
    /// returns; the future resolves once it has committed.
    pub fn propose(&self, ops: Vec<WriteOp>) -> impl Future<Output = Result<(), ReplicationError>> + Send + 'static {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.writer.submit(
            ops,
            Box::new(move |result| {
                let _ = sender.send(result);
            }),
        );
        async move {
            match receiver.await {
                Ok(result) => result.map_err(ReplicationError::from),
                Err(_) => Err(ReplicationError::ShuttingDown),
            }
        }
    }

    /// Set when a storage failure has stopped all writes.
    pub fn poisoned(&self) -> Option<StorageError> {
        self.writer.poisoned()
    }

    /// Waits for queued proposals, syncs, and stops the writer.
    pub fn shutdown(&self) {
        self.writer.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use skein_storage::{LogAppend, MemoryStore, StoredBatch};

    #[tokio::test]
    async fn proposals_commit_in_submission_order() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let replicator = Replicator::start(1, Arc::clone(&store), SyncPolicy::Always).expect("start");
        let proposals: Vec<_> = (0..50i64)
            .map(|offset| {
                let batch = StoredBatch {
                    base_offset: offset,
                    last_offset: offset,
                    max_timestamp: 0,
                    bytes: Bytes::from_static(b"x"),
                };
                replicator.propose(vec![WriteOp::Append(LogAppend { log: 1, batch, index_timestamp: false })])
            })
            .collect();
        for proposal in proposals {
            proposal.await.expect("commits");
        }
        assert_eq!(store.bounds(1).expect("bounds").next_offset, 50);
        replicator.shutdown();
        let after = replicator.propose(vec![]).await;
        assert!(after.is_err(), "no proposal commits after shutdown");
    }
}
