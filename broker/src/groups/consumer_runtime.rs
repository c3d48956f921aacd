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

    /// One ConsumerGroupHeartbeat. A classic group with members cannot take
    /// consumer-protocol members (mixed groups are not supported yet); an
    /// empty one becomes a consumer group, keeping its offsets.
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
        let (outcome, write) = {
            let mut state = shard.lock();
            let now = self.now_ms();
            let group = state.groups.entry(group_id.to_owned()).or_default();
            if group.consumer.is_none() {
                if !group.classic.is_empty() {
                    return Err((
                        ResponseError::GroupIdNotFound,
                        format!(
                            "Group {group_id} is a classic group with members; mixed groups are not supported yet."
                        ),
                    ));
                }
                group.consumer = Some(ConsumerGroup::default());
            }
            let consumer = group.consumer.as_mut().ok_or((ResponseError::UnknownServerError, String::new()))?;
            let (outcome, changed) = consumer.heartbeat(request, now, image, &self.consumer_settings)?;
            let write = changed.then(|| self.persist_consumer(shard, group_id, consumer));
            shard.rearm(group.next_deadline_ms());
            (outcome, write)
        };
        if let Some(write) = write {
            write.await.map_err(|error| {
                tracing::warn!(%error, group_id, "consumer group write failed");
                (ResponseError::CoordinatorNotAvailable, "The group state could not be written.".to_owned())
            })?;
        }
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
