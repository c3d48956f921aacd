//! openraft's state machine: applying an entry performs its writes (the
//! partition appends, producer state, topic records) in the store, in one
//! atomic write together with the new applied position, so the applied
//! position never runs ahead of the applied state.
//!
//! Applied writes are not synced on their own: the Raft log already holds
//! them durably, and a restart re-applies what was lost. Before a snapshot
//! lets openraft purge the log, the store is synced.

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StoredMembership};
use skein_storage::{GroupCommitWriter, GroupId, Store, WriteOp};

use crate::entry_codec::{decode_log_id, decode_stored_membership, encode_log_id, encode_stored_membership};
use crate::flush;
use crate::log_store::Tail;
use crate::types::{field, Applied, SnapshotData, C};

#[derive(Clone)]
pub(crate) struct StateMachine {
    group: GroupId,
    store: Arc<dyn Store>,
    writer: Arc<GroupCommitWriter>,
    /// The log store's unapplied entries: applied ones leave it here.
    tail: Tail,
    snapshot: Arc<Mutex<Option<SnapshotMetaOf<C>>>>,
}

impl StateMachine {
    pub(crate) fn new(group: GroupId, store: Arc<dyn Store>, writer: Arc<GroupCommitWriter>, tail: Tail) -> Self {
        Self { group, store, writer, tail, snapshot: Arc::default() }
    }

    fn applied(&self) -> io::Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>)> {
        let state = |field| -> io::Result<Option<Bytes>> {
            Ok(self.store.raft_state(self.group, field).map_err(io::Error::other)?.map(Bytes::from))
        };
        let applied = match state(field::APPLIED)? {
            Some(bytes) => decode_log_id(&bytes)?,
            None => None,
        };
        let membership = match state(field::MEMBERSHIP)? {
            Some(bytes) => decode_stored_membership(&bytes)?,
            None => StoredMembership::default(),
        };
        Ok((applied, membership))
    }
}

impl RaftSnapshotBuilder<C> for StateMachine {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, SnapshotData>, io::Error> {
        // Everything applied so far must be durable before the log behind it goes.
        flush(&self.writer).await?;
        let (last_log_id, last_membership) = self.applied()?;
        let meta = SnapshotMeta { last_log_id, last_membership };
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(meta.clone());
        Ok(Snapshot { meta, snapshot: Vec::new() })
    }
}

impl RaftStateMachine<C> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>), io::Error> {
        self.applied()
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + OptionalSend,
    {
        let mut ops = Vec::new();
        let mut responders = Vec::new();
        let mut last_applied = None;
        while let Some((entry, responder)) = entries.try_next().await? {
            last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                // Batches the log store already wrote are not written again.
                EntryPayload::Normal(proposal) if proposal.appends_stored => {
                    ops.extend(proposal.ops.into_iter().filter(|op| !matches!(op, WriteOp::Append(_))));
                }
                EntryPayload::Normal(proposal) => ops.extend(proposal.ops),
                EntryPayload::Membership(membership) => {
                    let stored = StoredMembership::new(Some(entry.log_id), membership);
                    ops.push(WriteOp::PutRaftState {
                        group: self.group,
                        field: field::MEMBERSHIP,
                        value: encode_stored_membership(&stored),
                    });
                }
            }
            responders.extend(responder);
        }
        let Some(last_applied) = last_applied else { return Ok(()) };
        ops.push(WriteOp::PutRaftState {
            group: self.group,
            field: field::APPLIED,
            value: encode_log_id(Some(&last_applied)),
        });
        // Directly, not through the writer thread: the entries are durable in
        // the Raft log already, so this needs no fsync and must not wait for one.
        self.writer.write_volatile(&ops).map_err(io::Error::other)?;
        self.tail.applied_up_to(last_applied.index);
        for responder in responders {
            responder.send(Applied);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(&mut self, _meta: &SnapshotMetaOf<C>, _snapshot: SnapshotData) -> Result<(), io::Error> {
        // Only a lagging follower installs snapshots; groups have one member
        // until the node-to-node transport exists.
        Err(io::Error::other("snapshot installation needs the multi-node transport, which is not built yet"))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<C, SnapshotData>>, io::Error> {
        let meta = self.snapshot.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(meta.map(|meta| Snapshot { meta, snapshot: Vec::new() }))
    }
}
