//! The coordinator's side of KIP-848 consumer groups: runs a heartbeat
//! through the group's state machine (`consumer.rs`) under the shard lock,
//! persists the group when it changed, and answers once that write is
//! committed; describes groups for ConsumerGroupDescribe.

use kafka_protocol::error::ResponseError;
use skein_storage::WriteOp;

use super::consumer::{ConsumerGroup, ConsumerMember, HeartbeatOutcome, HeartbeatRequest, Refusal, TopicImage};
use super::coordinator::{validate_group_id, GroupCoordinator, Shard, Write};
use super::records;

/// A consumer group as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct ConsumerGroupView {
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<(ConsumerMember, std::collections::BTreeSet<super::assignor::TopicPartition>)>,
}

impl GroupCoordinator {
    pub(super) fn persist_consumer(&self, shard: &Shard, group_id: &str, consumer: &ConsumerGroup) -> Write {
        let op = WriteOp::PutCoordinatorRecord {
            shard: shard.number,
            key: records::consumer_group_key(group_id),
            value: records::encode_consumer_group(consumer),
        };
        Box::pin(self.replicator.propose(shard.raft_group, vec![op]))
    }

    /// The heartbeat interval members are told to keep.
    pub fn consumer_heartbeat_interval_ms(&self) -> i32 {
        self.consumer_settings.heartbeat_interval_ms
    }

    /// One ConsumerGroupHeartbeat. A joining member converts a classic
    /// group with members into a consumer group (online upgrade, when the
    /// migration policy allows); an empty classic group simply becomes one,
    /// keeping its offsets. When the last consumer-protocol member leaves a
    /// mixed group, it may go back to classic (`after_consumer_change`).
    pub async fn consumer_heartbeat(
        &self,
        group_id: &str,
        request: HeartbeatRequest,
        image: &TopicImage,
    ) -> Result<HeartbeatOutcome, Refusal> {
        validate_group_id(group_id).map_err(|_| {
            (ResponseError::InvalidRequest, "GroupId can't be empty or longer than 1024 bytes.".to_owned())
        })?;
        let shard = self.shard(group_id);
        self.ensure_open(shard).await.map_err(|e| (e, "The coordinator shard is not available.".to_owned()))?;
        let (result, completion) = {
            let mut state = shard.lock();
            let state = &mut *state;
            let now = self.now_ms();
            let group = state.groups.entry(group_id.to_owned()).or_default();
            let mut aborted = Vec::new();
            if group.consumer.is_none() {
                if !group.classic.is_empty() && request.member_epoch == 0 {
                    aborted = self.upgrade(shard, group_id, group, image, now)?;
                } else if !group.classic.is_empty() {
                    return Err((ResponseError::GroupIdNotFound, format!("Group {group_id} is not a consumer group.")));
                } else {
                    group.consumer = Some(ConsumerGroup::default());
                }
            }
            let consumer = group.consumer.as_mut().ok_or((ResponseError::UnknownServerError, String::new()))?;
            let result = consumer.heartbeat(request, now, image, &self.consumer_settings);
            let mut completion = self.take_actions(shard, state, group_id, aborted);
            if let (Ok((_, true)), Some(group)) = (&result, state.groups.get_mut(group_id)) {
                completion.writes.extend(self.after_consumer_change(shard, group_id, group, now).writes);
            }
            (result, completion)
        };
        // Answers requests an upgrade aborted even when this one is refused.
        let written = completion.finish().await;
        let (outcome, _) = result?;
        written.map_err(|error| {
            tracing::warn!(?error, group_id, "consumer group write failed");
            (ResponseError::CoordinatorNotAvailable, "The group state could not be written.".to_owned())
        })?;
        Ok(outcome)
    }

    /// GROUP_ID_NOT_FOUND for unknown groups and classic ones (the admin
    /// client then describes those with DescribeGroups).
    pub fn consumer_describe(&self, group_id: &str) -> Result<ConsumerGroupView, ResponseError> {
        validate_group_id(group_id)?;
        let state = self.shard(group_id).lock();
        let consumer =
            state.groups.get(group_id).and_then(|g| g.consumer.as_ref()).ok_or(ResponseError::GroupIdNotFound)?;
        Ok(ConsumerGroupView {
            state: consumer.state_name(),
            group_epoch: consumer.group_epoch,
            assignment_epoch: consumer.assignment_epoch,
            assignor: consumer.assignor.clone(),
            members: consumer
                .members
                .values()
                .map(|m| (m.clone(), consumer.target.get(&m.id).cloned().unwrap_or_default()))
                .collect(),
        })
    }
}
