//! The group coordinator's runtime: the thin I/O shell around the state
//! machines in `classic.rs`. It keeps groups in shards (Kafka's
//! `__consumer_offsets` partitions: a group lives in shard
//! `abs(java_hash(group id)) % shards`), each shard a Raft group whose
//! committed writes hold the group records and offsets, so state survives
//! restarts and, with more nodes, fails over with the shard's leader.
//!
//! Concurrency: one std mutex per shard, held only for the synchronous
//! step (run the state machine, queue its writes); never across an await.
//! Delayed answers (JoinGroup, SyncGroup) are oneshot channels keyed by
//! waiter id. One timer task per shard sleeps until the earliest deadline
//! of its groups and runs their `tick`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use skein_replication::{coordinator_group, ReplicationError, Replicator, METADATA_GROUP};
use skein_storage::{CoordinatorShard, GroupId, StorageError, WriteOp};
use tokio::sync::{oneshot, Notify};

use super::classic::{
    Action, ClassicGroup, GroupSettings, GroupState, JoinOutcome, JoinRequest, SyncOutcome, SyncRequest, WaiterId,
};
use super::consumer::{compile_regex, ConsumerGroup, ConsumerSettings, TopicImage};
use super::mixed::MigrationPolicy;
use super::records::{self, CommittedOffset, RecordKey};
use super::retention::{run_expiry, RetentionSettings};

/// Persisted on first start: changing `offsets.topic.num.partitions` later
/// would move groups to other shards and lose them, so the stored count wins.
const META_SHARD_COUNT: &str = "coordinator.shards";
/// Longest group id accepted (Kafka sets none; a bound keeps keys small).
pub const MAX_GROUP_ID_BYTES: usize = 1024;

pub(super) type Write = Pin<Box<dyn Future<Output = Result<(), ReplicationError>> + Send>>;

/// Where the coordinator reads the current topics from.
pub type TopicSource = Arc<dyn Fn() -> TopicImage + Send + Sync>;

/// A group: classic protocol state, or (KIP-848) consumer protocol state
/// when `consumer` is set, and its committed offsets.
#[derive(Debug, Default)]
pub(super) struct Group {
    pub(super) classic: ClassicGroup,
    pub(super) consumer: Option<ConsumerGroup>,
    pub(super) offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Wall-clock time the group was first seen without members (retention.rs).
    pub(super) empty_since_ms: Option<i64>,
}

impl Group {
    pub(super) fn next_deadline_ms(&self) -> Option<i64> {
        match &self.consumer {
            Some(consumer) => consumer.next_deadline_ms(),
            None => self.classic.next_deadline_ms(),
        }
    }

    /// Whether a member subscribes to `topic` (its offsets must stay).
    fn subscribes_to(&self, topic: &str, classic_check: &dyn Fn(&[bytes::Bytes], &str) -> bool) -> bool {
        if let Some(consumer) = &self.consumer {
            return consumer.members.values().any(|m| {
                m.subscribed_names.iter().any(|t| t == topic)
                    || m.subscribed_regex
                        .as_deref()
                        .and_then(|r| compile_regex(r).ok())
                        .is_some_and(|r| r.is_match(topic))
            });
        }
        let classic = &self.classic;
        let subscriptions: Vec<bytes::Bytes> = match classic.state() {
            GroupState::Empty | GroupState::Dead => Vec::new(),
            _ => classic.members().iter().map(|m| m.metadata_for(classic.protocol())).collect(),
        };
        classic_check(&subscriptions, topic)
    }
}

enum Reply {
    Join(oneshot::Sender<JoinOutcome>, JoinOutcome),
    Sync(oneshot::Sender<SyncOutcome>, SyncOutcome),
}

enum Waiter {
    Join(oneshot::Sender<JoinOutcome>),
    Sync(oneshot::Sender<SyncOutcome>),
}

#[derive(Default)]
pub(super) struct ShardState {
    pub(super) groups: HashMap<String, Group>,
    waiters: HashMap<WaiterId, Waiter>,
}

pub(super) struct Shard {
    pub(super) number: CoordinatorShard,
    pub(super) raft_group: GroupId,
    state: Mutex<ShardState>,
    /// Set once the shard's Raft group is open on this node. Only requests
    /// that create state (JoinGroup, OffsetCommit) need it: a shard that was
    /// never opened holds no group, which every other request handles.
    opened: tokio::sync::OnceCell<()>,
    /// The deadline the timer task sleeps towards; a new, earlier one wakes it.
    armed_ms: AtomicI64,
    wake: Notify,
}

impl Shard {
    pub(super) fn lock(&self) -> MutexGuard<'_, ShardState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn rearm(&self, deadline_ms: Option<i64>) {
        if deadline_ms.is_some_and(|d| d < self.armed_ms.load(Ordering::Acquire)) {
            self.wake.notify_one();
        }
    }
}

/// What runs after the shard lock is released: wait for the queued writes,
/// then answer (a failed write turns answers into retriable errors).
#[must_use]
pub(super) struct Completion {
    pub(super) writes: Vec<Write>,
    replies: Vec<Reply>,
}

impl Completion {
    pub(super) fn from_writes(writes: Vec<Write>) -> Self {
        Self { writes, replies: Vec::new() }
    }

    pub(super) async fn finish(self) -> Result<(), ResponseError> {
        let mut failed = false;
        for write in self.writes {
            if let Err(error) = write.await {
                tracing::warn!(%error, "group state write failed");
                failed = true;
            }
        }
        for reply in self.replies {
            match reply {
                Reply::Join(sender, outcome) if failed => {
                    let _ = sender.send(JoinOutcome::error(ResponseError::CoordinatorNotAvailable, &outcome.member_id));
                }
                Reply::Join(sender, outcome) => {
                    let _ = sender.send(outcome);
                }
                Reply::Sync(sender, outcome) if failed => {
                    let _ = sender.send(SyncOutcome { error: Some(ResponseError::CoordinatorNotAvailable), ..outcome });
                }
                Reply::Sync(sender, outcome) => {
                    let _ = sender.send(outcome);
                }
            }
        }
        if failed {
            Err(ResponseError::CoordinatorNotAvailable)
        } else {
            Ok(())
        }
    }
}

/// Who commits offsets: a group member of a generation, or (generation -1)
/// anyone, while the group has no members.
#[derive(Debug, Clone)]
pub struct Committer {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
}

/// Limits and timeouts of the coordinator (Kafka's names in the config).
#[derive(Debug, Clone)]
pub struct CoordinatorSettings {
    pub groups: GroupSettings,
    pub consumer: ConsumerSettings,
    pub migration_policy: MigrationPolicy,
    pub shard_count: u32,
    pub offset_metadata_max_bytes: usize,
    pub retention: RetentionSettings,
}

pub struct GroupCoordinator {
    pub(super) replicator: Arc<Replicator>,
    pub(super) settings: GroupSettings,
    pub(super) consumer_settings: ConsumerSettings,
    pub(super) migration_policy: MigrationPolicy,
    /// The topics as the cluster knows them now (mixed groups translate
    /// between the topic names of the classic protocol and topic ids).
    pub(super) topics: TopicSource,
    offset_metadata_max_bytes: usize,
    pub(super) shards: Vec<Arc<Shard>>,
    next_waiter: AtomicU64,
    started: Instant,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator").field("shards", &self.shards.len()).finish_non_exhaustive()
    }
}

pub(super) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Java's `String.hashCode` (over UTF-16 code units), so groups land in
/// the same shard numbers as in Kafka.
fn java_string_hash(value: &str) -> i32 {
    value.encode_utf16().fold(0i32, |hash, unit| hash.wrapping_mul(31).wrapping_add(i32::from(unit as i16 as u16)))
}

pub fn shard_for(group_id: &str, shard_count: u32) -> u32 {
    let hash = java_string_hash(group_id);
    let positive = if hash == i32::MIN { 0 } else { hash.unsigned_abs() };
    positive % shard_count.max(1)
}

/// INVALID_GROUP_ID for an empty or over-long group id.
pub fn validate_group_id(group_id: &str) -> Result<(), ResponseError> {
    if group_id.is_empty() || group_id.len() > MAX_GROUP_ID_BYTES {
        return Err(ResponseError::InvalidGroupId);
    }
    Ok(())
}

fn storage(error: impl std::fmt::Display) -> StorageError {
    StorageError::Io(error.to_string())
}

impl GroupCoordinator {
    /// Opens the Raft group of every shard that holds state, loads the
    /// persisted groups and offsets, and starts the shard timers. Shards
    /// never used stay closed until a group first needs one, which keeps
    /// start-up fast (an open group costs a barrier write).
    pub async fn open(
        replicator: Arc<Replicator>,
        settings: CoordinatorSettings,
        topics: TopicSource,
    ) -> Result<Arc<Self>, StorageError> {
        let shard_count = Self::shard_count(&replicator, settings.shard_count).await?;
        let store = Arc::clone(replicator.store());
        let mut in_use = Vec::new();
        for number in 0..shard_count {
            let has_log = store.raft_last(coordinator_group(number))?.is_some();
            if has_log || !store.coordinator_records(number)?.is_empty() {
                in_use.push(number);
            }
        }
        let opening: Vec<_> = in_use
            .iter()
            .map(|number| {
                let replicator = Arc::clone(&replicator);
                let group = coordinator_group(*number);
                tokio::spawn(async move { replicator.open_group(group).await })
            })
            .collect();
        for opened in opening {
            opened.await.map_err(storage)?.map_err(storage)?;
        }
        let started = Instant::now();
        let mut shards = Vec::with_capacity(shard_count as usize);
        for number in 0..shard_count {
            // Loaded after opening: opening applies whatever the log holds.
            let groups = load_shard(&replicator, number, i64::from(settings.consumer.session_timeout_ms))?;
            let opened = tokio::sync::OnceCell::new();
            if in_use.contains(&number) {
                let _ = opened.set(());
            }
            shards.push(Arc::new(Shard {
                number,
                raft_group: coordinator_group(number),
                state: Mutex::new(ShardState { groups, waiters: HashMap::new() }),
                opened,
                armed_ms: AtomicI64::new(i64::MAX),
                wake: Notify::new(),
            }));
        }
        let coordinator = Arc::new(Self {
            replicator,
            settings: settings.groups,
            consumer_settings: settings.consumer,
            migration_policy: settings.migration_policy,
            topics,
            offset_metadata_max_bytes: settings.offset_metadata_max_bytes,
            shards,
            next_waiter: AtomicU64::new(1),
            started,
        });
        for shard in &coordinator.shards {
            tokio::spawn(run_timer(Arc::clone(&coordinator), Arc::clone(shard)));
        }
        tokio::spawn(run_expiry(Arc::clone(&coordinator), settings.retention));
        Ok(coordinator)
    }

    async fn shard_count(replicator: &Replicator, configured: u32) -> Result<u32, StorageError> {
        let stored = replicator.store().meta(META_SHARD_COUNT)?;
        match stored.and_then(|v| String::from_utf8(v).ok()).and_then(|v| v.parse::<u32>().ok()) {
            Some(count) => {
                if count != configured {
                    tracing::warn!(
                        stored = count,
                        configured,
                        "offsets.topic.num.partitions differs from the count this data directory was created \
                         with; keeping {count} so that no group moves"
                    );
                }
                Ok(count)
            }
            None => {
                let op = WriteOp::PutMeta { key: META_SHARD_COUNT.to_owned(), value: configured.to_string().into() };
                replicator.propose(METADATA_GROUP, vec![op]).await.map_err(storage)?;
                Ok(configured)
            }
        }
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    pub(super) fn shards(&self) -> &[Arc<Shard>] {
        &self.shards
    }

    pub(super) fn shard(&self, group_id: &str) -> &Arc<Shard> {
        &self.shards[shard_for(group_id, self.shards.len() as u32) as usize]
    }

    /// The node leading the group's shard (the coordinator clients talk to).
    pub fn coordinator_node(&self, group_id: &str) -> i32 {
        self.replicator.leader(self.shard(group_id).raft_group)
    }

    /// Opens the shard's Raft group on first use.
    pub(super) async fn ensure_open(&self, shard: &Shard) -> Result<(), ResponseError> {
        let open = || async {
            self.replicator.open_group(shard.raft_group).await.map_err(|error| {
                tracing::warn!(%error, shard = shard.number, "cannot open a coordinator shard");
                ResponseError::CoordinatorNotAvailable
            })
        };
        shard.opened.get_or_try_init(open).await.map(|_| ())
    }

    fn waiter_id(&self) -> WaiterId {
        self.next_waiter.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs the actions of one group's event with the shard lock held:
    /// queues writes (in order, so they commit in order) and collects answers.
    pub(super) fn take_actions(
        &self,
        shard: &Shard,
        state: &mut ShardState,
        group_id: &str,
        actions: Vec<Action>,
    ) -> Completion {
        let mut completion = Completion { writes: Vec::new(), replies: Vec::new() };
        for action in actions {
            match action {
                Action::Persist => {
                    let Some(group) = state.groups.get(group_id) else { continue };
                    let op = WriteOp::PutCoordinatorRecord {
                        shard: shard.number,
                        key: records::group_key(group_id),
                        value: records::encode_group(&group.classic),
                    };
                    completion.writes.push(Box::pin(self.replicator.propose(shard.raft_group, vec![op])));
                }
                Action::Join(waiter, outcome) => match state.waiters.remove(&waiter) {
                    Some(Waiter::Join(sender)) => completion.replies.push(Reply::Join(sender, outcome)),
                    _ => tracing::debug!(waiter, "join answer for a request no longer waiting"),
                },
                Action::Sync(waiter, outcome) => match state.waiters.remove(&waiter) {
                    Some(Waiter::Sync(sender)) => completion.replies.push(Reply::Sync(sender, outcome)),
                    _ => tracing::debug!(waiter, "sync answer for a request no longer waiting"),
                },
            }
        }
        if let Some(group) = state.groups.get(group_id) {
            shard.rearm(group.next_deadline_ms());
        }
        completion
    }

    pub async fn join(&self, group_id: &str, mut request: JoinRequest) -> JoinOutcome {
        if let Err(error) = validate_group_id(group_id) {
            return JoinOutcome::error(error, &request.member_id);
        }
        let (sender, receiver) = oneshot::channel();
        request.waiter = self.waiter_id();
        request.new_member_id = format!("{}-{}", request.client_id, uuid::Uuid::new_v4());
        let member_id = request.member_id.clone();
        let shard = self.shard(group_id);
        if let Err(error) = self.ensure_open(shard).await {
            return JoinOutcome::error(error, &member_id);
        }
        let completion = {
            let mut state = shard.lock();
            let now = self.now_ms();
            let group = state.groups.entry(group_id.to_owned()).or_default();
            if group.consumer.as_ref().is_some_and(|c| !c.members.is_empty()) {
                let (outcome, write) = self.join_consumer_group(shard, group_id, group, &request, now);
                Completion { writes: write.into_iter().collect(), replies: vec![Reply::Join(sender, outcome)] }
            } else {
                self.join_classic_group(shard, &mut state, group_id, request, sender, now)
            }
        };
        let _ = completion.finish().await;
        receiver.await.unwrap_or_else(|_| JoinOutcome::error(ResponseError::CoordinatorNotAvailable, &member_id))
    }

    fn join_classic_group(
        &self,
        shard: &Shard,
        state: &mut ShardState,
        group_id: &str,
        request: JoinRequest,
        sender: oneshot::Sender<JoinOutcome>,
        now: i64,
    ) -> Completion {
        let group = state.groups.entry(group_id.to_owned()).or_default();
        if group.consumer.take().is_some() {
            // An empty consumer-protocol group becomes a classic one. The
            // delete is queued now; its future only reports the commit.
            let op =
                WriteOp::DeleteCoordinatorRecord { shard: shard.number, key: records::consumer_group_key(group_id) };
            drop(self.replicator.propose(shard.raft_group, vec![op]));
        }
        let (waiter, mut actions) = (request.waiter, Vec::new());
        group.classic.join(request, now, &self.settings, &mut actions);
        state.waiters.insert(waiter, Waiter::Join(sender));
        self.take_actions(shard, state, group_id, actions)
    }

    pub async fn sync(&self, group_id: &str, mut request: SyncRequest) -> SyncOutcome {
        if let Err(error) = validate_group_id(group_id) {
            return SyncOutcome::error(error);
        }
        let (sender, receiver) = oneshot::channel();
        request.waiter = self.waiter_id();
        let shard = self.shard(group_id);
        let completion = {
            let mut state = shard.lock();
            let now = self.now_ms();
            let state = &mut *state;
            let Some(group) = state.groups.get_mut(group_id) else {
                return SyncOutcome::error(ResponseError::UnknownMemberId);
            };
            if let Some(consumer) = group.consumer.as_mut() {
                let outcome = consumer.classic_sync(&request, now, &(self.topics)());
                shard.rearm(group.next_deadline_ms());
                return outcome.unwrap_or_else(SyncOutcome::error);
            }
            state.waiters.insert(request.waiter, Waiter::Sync(sender));
            let mut actions = Vec::new();
            group.classic.sync(request, now, &mut actions);
            self.take_actions(shard, state, group_id, actions)
        };
        let _ = completion.finish().await;
        receiver.await.unwrap_or_else(|_| SyncOutcome::error(ResponseError::CoordinatorNotAvailable))
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        validate_group_id(group_id)?;
        let shard = self.shard(group_id);
        let mut state = shard.lock();
        let group = state.groups.get_mut(group_id).ok_or(ResponseError::UnknownMemberId)?;
        match group.consumer.as_mut() {
            Some(consumer) => {
                let result = consumer.classic_heartbeat(member_id, instance_id, generation, self.now_ms());
                // A member told to rejoin gets a join deadline the timer must see.
                shard.rearm(group.next_deadline_ms());
                result
            }
            None => group.classic.heartbeat(member_id, instance_id, generation, self.now_ms()),
        }
    }

    /// Removes members; per-member results, or a group-level error.
    pub async fn leave(
        &self,
        group_id: &str,
        leaving: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        validate_group_id(group_id)?;
        let shard = self.shard(group_id);
        let (results, completion) = {
            let mut state = shard.lock();
            let now = self.now_ms();
            let group = state.groups.get_mut(group_id).ok_or(ResponseError::UnknownMemberId)?;
            if group.consumer.is_some() {
                self.leave_consumer_group(shard, group_id, group, leaving, now)
            } else {
                let mut actions = Vec::new();
                let results = group.classic.leave(leaving, now, &self.settings, &mut actions);
                (results, self.take_actions(shard, &mut state, group_id, actions))
            }
        };
        completion.finish().await?;
        Ok(results)
    }

    /// Commits offsets for partitions the caller has checked exist. Either
    /// all are committed or the group-level error says why none were;
    /// per-partition refusals (metadata too large) come back by index.
    pub async fn commit_offsets(
        &self,
        group_id: &str,
        committer: &Committer,
        offsets: Vec<(String, i32, i64, i32, String)>,
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        validate_group_id(group_id)?;
        let shard = self.shard(group_id);
        self.ensure_open(shard).await?;
        let now_wall = wall_clock_ms();
        let (results, write) = {
            let mut state = shard.lock();
            let now = self.now_ms();
            let group = match state.groups.get_mut(group_id) {
                Some(group) => group,
                None if committer.generation < 0 => state.groups.entry(group_id.to_owned()).or_default(),
                None => return Err(ResponseError::IllegalGeneration),
            };
            let member = (committer.member_id.as_str(), committer.instance_id.as_deref());
            match &group.consumer {
                Some(consumer) => consumer.validate_commit(member.0, committer.generation)?,
                None => group.classic.validate_commit(member.0, member.1, committer.generation, now)?,
            }
            let mut ops = Vec::new();
            let mut results = Vec::with_capacity(offsets.len());
            for (topic, partition, offset, leader_epoch, metadata) in offsets {
                if metadata.len() > self.offset_metadata_max_bytes {
                    results.push(Err(ResponseError::OffsetMetadataTooLarge));
                    continue;
                }
                let committed = CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms: now_wall };
                ops.push(WriteOp::PutCoordinatorRecord {
                    shard: shard.number,
                    key: records::offset_key(group_id, &topic, partition),
                    value: records::encode_offset(&committed),
                });
                // Visible to OffsetFetch as soon as queued: the write is
                // ordered before any later one, and a failed write poisons
                // the store (every later request fails) rather than diverge.
                group.offsets.insert((topic, partition), committed);
                results.push(Ok(()));
            }
            let write = (!ops.is_empty()).then(|| self.replicator.propose(shard.raft_group, ops));
            (results, write)
        };
        if let Some(write) = write {
            write.await.map_err(|error| {
                tracing::warn!(%error, group_id, "offset commit write failed");
                ResponseError::CoordinatorNotAvailable
            })?;
        }
        Ok(results)
    }

    /// Committed offsets of the given partitions (`None`: all committed).
    /// `member` (OffsetFetch v9: member id and epoch) is checked against
    /// consumer-protocol groups, as Kafka does.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
        member: Option<(&str, i32)>,
    ) -> Result<Vec<(String, i32, Option<CommittedOffset>)>, ResponseError> {
        validate_group_id(group_id)?;
        let state = self.shard(group_id).lock();
        let group = state.groups.get(group_id);
        if let (Some(consumer), Some((member_id, epoch))) = (group.and_then(|g| g.consumer.as_ref()), member) {
            if epoch >= 0 {
                consumer.validate_member_epoch(member_id, epoch)?;
            }
        }
        let offsets = group.map(|g| &g.offsets);
        Ok(match partitions {
            Some(wanted) => wanted
                .into_iter()
                .map(|(topic, partition)| {
                    let committed = offsets.and_then(|o| o.get(&(topic.clone(), partition))).cloned();
                    (topic, partition, committed)
                })
                .collect(),
            None => offsets
                .into_iter()
                .flatten()
                .map(|((topic, partition), committed)| (topic.clone(), *partition, Some(committed.clone())))
                .collect(),
        })
    }

    /// Deletes an empty group with its offsets (DeleteGroups).
    pub async fn delete_group(&self, group_id: &str) -> Result<(), ResponseError> {
        validate_group_id(group_id)?;
        let shard = self.shard(group_id);
        let write = {
            let mut state = shard.lock();
            let group = state.groups.get_mut(group_id).ok_or(ResponseError::GroupIdNotFound)?;
            if !group.classic.is_empty() || group.consumer.as_ref().is_some_and(|c| !c.members.is_empty()) {
                return Err(ResponseError::NonEmptyGroup);
            }
            group.classic.mark_dead();
            let mut ops = vec![
                WriteOp::DeleteCoordinatorRecord { shard: shard.number, key: records::group_key(group_id) },
                WriteOp::DeleteCoordinatorRecord { shard: shard.number, key: records::consumer_group_key(group_id) },
            ];
            ops.extend(group.offsets.keys().map(|(topic, partition)| WriteOp::DeleteCoordinatorRecord {
                shard: shard.number,
                key: records::offset_key(group_id, topic, *partition),
            }));
            state.groups.remove(group_id);
            self.replicator.propose(shard.raft_group, ops)
        };
        write.await.map_err(|_| ResponseError::CoordinatorNotAvailable)
    }

    /// Deletes committed offsets (OffsetDelete). `subscribed` tells whether
    /// the group's members subscribe to a topic (then its offsets stay).
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
        subscribed: impl Fn(&[bytes::Bytes], &str) -> bool,
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        validate_group_id(group_id)?;
        let shard = self.shard(group_id);
        let (results, write) = {
            let mut state = shard.lock();
            let group = state.groups.get_mut(group_id).ok_or(ResponseError::GroupIdNotFound)?;
            let mut ops = Vec::new();
            let results = partitions
                .iter()
                .map(|(topic, partition)| {
                    if group.subscribes_to(topic, &subscribed) {
                        return Err(ResponseError::GroupSubscribedToTopic);
                    }
                    if group.offsets.remove(&(topic.clone(), *partition)).is_some() {
                        ops.push(WriteOp::DeleteCoordinatorRecord {
                            shard: shard.number,
                            key: records::offset_key(group_id, topic, *partition),
                        });
                    }
                    Ok(())
                })
                .collect();
            (results, (!ops.is_empty()).then(|| self.replicator.propose(shard.raft_group, ops)))
        };
        if let Some(write) = write {
            write.await.map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        }
        Ok(results)
    }

    /// Runs the due `tick`s of one shard's groups.
    fn tick_shard(&self, shard: &Shard) -> (Vec<Completion>, Option<i64>) {
        let mut state = shard.lock();
        let now = self.now_ms();
        let due: Vec<String> = state
            .groups
            .iter()
            .filter(|(_, g)| g.next_deadline_ms().is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        let mut completions = Vec::with_capacity(due.len());
        for group_id in due {
            let mut actions = Vec::new();
            if let Some(group) = state.groups.get_mut(&group_id) {
                match group.consumer.as_mut() {
                    Some(consumer) => {
                        if consumer.tick(now) {
                            completions.push(self.after_consumer_change(shard, &group_id, group, now));
                        }
                        continue;
                    }
                    None => group.classic.tick(now, &self.settings, &mut actions),
                }
            }
            completions.push(self.take_actions(shard, &mut state, &group_id, actions));
        }
        let next = state.groups.values().filter_map(Group::next_deadline_ms).min();
        shard.armed_ms.store(next.unwrap_or(i64::MAX), Ordering::Release);
        (completions, next)
    }
}

/// Loads one shard's persisted groups and offsets.
/// Consumer-group members' sessions restart: they end `session_ms` from now (0).
fn load_shard(
    replicator: &Replicator,
    number: CoordinatorShard,
    session_ms: i64,
) -> Result<HashMap<String, Group>, StorageError> {
    let mut groups: HashMap<String, Group> = HashMap::new();
    let corrupt = |what: &str| StorageError::CorruptMetadata {
        key: format!("coordinator shard {number}"),
        reason: format!("undecodable {what}"),
    };
    for (key, value) in replicator.store().coordinator_records(number)? {
        match records::decode_key(&key).ok_or_else(|| corrupt("key"))? {
            RecordKey::Group(id) => {
                let classic = records::decode_group(&value, 0).ok_or_else(|| corrupt("group"))?;
                groups.entry(id).or_default().classic = classic;
            }
            RecordKey::ConsumerGroup(id) => {
                let consumer =
                    records::decode_consumer_group(&value, session_ms).ok_or_else(|| corrupt("consumer group"))?;
                groups.entry(id).or_default().consumer = Some(consumer);
            }
            RecordKey::Offset { group, topic, partition } => {
                let offset = records::decode_offset(&value).ok_or_else(|| corrupt("offset"))?;
                groups.entry(group).or_default().offsets.insert((topic, partition), offset);
            }
        }
    }
    Ok(groups)
}

/// Sleeps until the shard's earliest deadline (or a wake-up for an
/// earlier one), then ticks the groups that are due.
async fn run_timer(coordinator: Arc<GroupCoordinator>, shard: Arc<Shard>) {
    loop {
        let (completions, next) = coordinator.tick_shard(&shard);
        for completion in completions {
            let _ = completion.finish().await;
        }
        let sleep_ms = next.map_or(60_000, |deadline| (deadline - coordinator.now_ms()).clamp(0, 60_000));
        tokio::select! {
            () = shard.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(sleep_ms as u64)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_match_kafkas_placement() {
        // Java: "my-group".hashCode() == -1906497762; abs % 50 == 12.
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        assert_eq!(shard_for("my-group", 50), 12);
        assert_eq!(java_string_hash(""), 0);
        assert!(shard_for("any", 1) == 0);
    }

    #[test]
    fn group_ids_are_validated() {
        assert_eq!(validate_group_id(""), Err(ResponseError::InvalidGroupId));
        assert_eq!(validate_group_id(&"g".repeat(MAX_GROUP_ID_BYTES + 1)), Err(ResponseError::InvalidGroupId));
        assert_eq!(validate_group_id("orders"), Ok(()));
    }
}
