//! The coordinator's side of mixed groups (`mixed.rs`): classic requests
//! routed to consumer groups, and the online upgrade and downgrade between
//! group types. A conversion is one write that deletes one group record
//! and puts the other, so a restart finds exactly one of them.

use kafka_protocol::error::ResponseError;
use skein_storage::WriteOp;

use super::classic::{Action, JoinOutcome, JoinRequest};
use super::consumer::{ConsumerGroup, Refusal, TopicImage};
use super::coordinator::{Completion, Group, GroupCoordinator, Shard, Write};
use super::mixed::CONSUMER_PROTOCOL_TYPE;
use super::records;

impl GroupCoordinator {
    /// JoinGroup from a classic member into a consumer group with members.
    pub(super) fn join_consumer_group(
        &self,
        shard: &Shard,
        group_id: &str,
        group: &mut Group,
        request: &JoinRequest,
        now_ms: i64,
    ) -> (JoinOutcome, Option<Write>) {
        let Some(consumer) = group.consumer.as_mut() else {
            return (JoinOutcome::error(ResponseError::UnknownServerError, &request.member_id), None);
        };
        match consumer.classic_join(request, now_ms, &(self.topics)(), &self.consumer_settings) {
            Err(error) => (JoinOutcome::error(error, &request.member_id), None),
            Ok(outcome) => {
                // MEMBER_ID_REQUIRED changes nothing.
                let write = outcome.error.is_none().then(|| self.persist_consumer(shard, group_id, consumer));
                shard.rearm(group.next_deadline_ms());
                (outcome, write)
            }
        }
    }

    /// LeaveGroup of classic members of a consumer group.
    pub(super) fn leave_consumer_group(
        &self,
        shard: &Shard,
        group_id: &str,
        group: &mut Group,
        leaving: &[(String, Option<String>)],
        now_ms: i64,
    ) -> (Vec<Result<(), ResponseError>>, Completion) {
        let Some(consumer) = group.consumer.as_mut() else {
            return (vec![Err(ResponseError::UnknownMemberId); leaving.len()], Completion::from_writes(Vec::new()));
        };
        let results = consumer.classic_leave(leaving);
        let completion = if results.iter().any(Result::is_ok) {
            self.after_consumer_change(shard, group_id, group, now_ms)
        } else {
            Completion::from_writes(Vec::new())
        };
        (results, completion)
    }

    /// Persists a consumer group that changed, or converts it to a classic
    /// group when only classic members remain and the policy allows it.
    pub(super) fn after_consumer_change(
        &self,
        shard: &Shard,
        group_id: &str,
        group: &mut Group,
        now_ms: i64,
    ) -> Completion {
        let write = match self.maybe_downgrade(shard, group_id, group, now_ms) {
            Some(write) => write,
            None => match &group.consumer {
                Some(consumer) => self.persist_consumer(shard, group_id, consumer),
                None => return Completion::from_writes(Vec::new()),
            },
        };
        shard.rearm(group.next_deadline_ms());
        Completion::from_writes(vec![write])
    }

    fn maybe_downgrade(&self, shard: &Shard, group_id: &str, group: &mut Group, now_ms: i64) -> Option<Write> {
        let consumer = group.consumer.as_ref()?;
        let eligible = !consumer.members.is_empty()
            && consumer.all_members_classic()
            && self.migration_policy.downgrades()
            && consumer.members.len() <= self.settings.max_size;
        if !eligible {
            return None;
        }
        let (classic, actions) = consumer.to_classic(&(self.topics)(), now_ms, &self.settings)?;
        // A converted group has no waiting requests, so starting its
        // rebalance answers nothing; its record is written below.
        debug_assert!(actions.iter().all(|a| matches!(a, Action::Persist)));
        tracing::info!(group_id, generation = classic.generation(), "online downgrade: consumer group becomes classic");
        group.classic = classic;
        group.consumer = None;
        let ops = vec![
            WriteOp::DeleteCoordinatorRecord { shard: shard.number, key: records::consumer_group_key(group_id) },
            WriteOp::PutCoordinatorRecord {
                shard: shard.number,
                key: records::group_key(group_id),
                value: records::encode_group(&group.classic),
            },
        ];
        Some(Box::pin(self.replicator.propose(shard.raft_group, ops)))
    }

    /// Online upgrade: a consumer-protocol member joins a classic group with
    /// members. Waiting JoinGroup/SyncGroup requests are answered
    /// REBALANCE_IN_PROGRESS (their members rejoin the converted group);
    /// those answers are returned as actions for the caller to deliver.
    pub(super) fn upgrade(
        &self,
        shard: &Shard,
        group_id: &str,
        group: &mut Group,
        image: &TopicImage,
        now_ms: i64,
    ) -> Result<Vec<Action>, Refusal> {
        let refuse = |why: &str| {
            Err((
                ResponseError::GroupIdNotFound,
                format!("Cannot upgrade classic group {group_id} to a consumer group: {why}."),
            ))
        };
        if !self.migration_policy.upgrades() {
            return refuse("the online upgrade is disabled (group.consumer.migration.policy)");
        }
        if group.classic.protocol_type() != Some(CONSUMER_PROTOCOL_TYPE) {
            return refuse("the group does not use the consumer embedded protocol");
        }
        if group.classic.members().len() > self.consumer_settings.max_size {
            return refuse("the group is larger than group.consumer.max.size");
        }
        let Some(consumer) = ConsumerGroup::from_classic(&group.classic, image, now_ms) else {
            return refuse("a member's embedded consumer protocol is malformed");
        };
        let mut actions = Vec::new();
        group.classic.abort_waiting(ResponseError::RebalanceInProgress, &mut actions);
        tracing::info!(
            group_id,
            epoch = consumer.group_epoch,
            "online upgrade: classic group becomes a consumer group"
        );
        let ops = vec![
            WriteOp::DeleteCoordinatorRecord { shard: shard.number, key: records::group_key(group_id) },
            WriteOp::PutCoordinatorRecord {
                shard: shard.number,
                key: records::consumer_group_key(group_id),
                value: records::encode_consumer_group(&consumer),
            },
        ];
        // Queued now (ordered before the heartbeat's own write); the
        // heartbeat's answer waits for that later write.
        drop(self.replicator.propose(shard.raft_group, ops));
        group.classic = Default::default();
        group.consumer = Some(consumer);
        Ok(actions)
    }
}
