//! Expiry of committed offsets (Kafka's `offsets.retention.minutes`,
//! KIP-211): the offsets of a group without members expire once the group
//! has been empty, and its newest commit has been made, for the retention
//! period; the group is then deleted with them. A group with members keeps
//! its offsets however old they are. Checked every
//! `offsets.retention.check.interval.ms`.
//!
//! When a group became empty is tracked in memory only: after a restart
//! the clock starts again, which can keep offsets longer, never shorter.
//!
//! Offsets of a deleted topic go at once, as in Kafka, so a topic created
//! again under that name starts with no committed positions.

use std::sync::Arc;
use std::time::Duration;

use skein_storage::WriteOp;

use super::coordinator::{wall_clock_ms, GroupCoordinator};
use super::records;

#[derive(Debug, Clone, Copy)]
pub struct RetentionSettings {
    pub retention_ms: i64,
    pub check_interval_ms: u64,
}

/// Whether an empty group's offsets have expired at `now_ms`.
fn expired(empty_since_ms: i64, newest_commit_ms: Option<i64>, now_ms: i64, retention_ms: i64) -> bool {
    let since = newest_commit_ms.map_or(empty_since_ms, |commit| commit.max(empty_since_ms));
    now_ms.saturating_sub(since) >= retention_ms
}

impl GroupCoordinator {
    /// One pass over every shard: notes when groups became empty and
    /// deletes those whose offsets expired. Returns how many were deleted.
    pub(super) fn expire_groups(&self, now_ms: i64, retention_ms: i64) -> usize {
        let mut deleted = 0;
        for shard in self.shards() {
            let mut state = shard.lock();
            let mut ops = Vec::new();
            state.groups.retain(|group_id, group| {
                let empty = group.classic.is_empty() && group.consumer.as_ref().is_none_or(|c| c.members.is_empty());
                if !empty {
                    group.empty_since_ms = None;
                    return true;
                }
                let since = *group.empty_since_ms.get_or_insert(now_ms);
                let newest = group.offsets.values().map(|o| o.commit_timestamp_ms).max();
                if !expired(since, newest, now_ms, retention_ms) {
                    return true;
                }
                let keys = [records::group_key(group_id), records::consumer_group_key(group_id)].into_iter().chain(
                    group.offsets.keys().map(|(topic, partition)| records::offset_key(group_id, topic, *partition)),
                );
                ops.extend(keys.map(|key| WriteOp::DeleteCoordinatorRecord { shard: shard.number, key }));
                tracing::info!(group = %group_id, "deleted an empty group whose offsets expired");
                deleted += 1;
                false
            });
            if !ops.is_empty() {
                // Queued in order with every other write of the shard; a
                // failure poisons the store, which every later write reports.
                drop(self.replicator.propose(shard.raft_group, ops));
            }
        }
        deleted
    }
}

impl GroupCoordinator {
    /// Deletes every group's committed offsets of a deleted topic.
    pub fn forget_topic(&self, topic: &str) {
        for shard in self.shards() {
            let mut state = shard.lock();
            let mut ops = Vec::new();
            for (group_id, group) in state.groups.iter_mut() {
                group.offsets.retain(|(name, partition), _| {
                    if name != topic {
                        return true;
                    }
                    let key = records::offset_key(group_id, name, *partition);
                    ops.push(WriteOp::DeleteCoordinatorRecord { shard: shard.number, key });
                    false
                });
            }
            if !ops.is_empty() {
                drop(self.replicator.propose(shard.raft_group, ops));
            }
        }
    }
}

/// Runs the expiry check forever, every `check_interval_ms`.
pub(super) async fn run_expiry(coordinator: Arc<GroupCoordinator>, settings: RetentionSettings) {
    let mut interval = tokio::time::interval(Duration::from_millis(settings.check_interval_ms.max(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        coordinator.expire_groups(wall_clock_ms(), settings.retention_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_expire_a_retention_after_the_later_of_emptiness_and_the_last_commit() {
        let day = 86_400_000;
        assert!(!expired(0, Some(0), 7 * day - 1, 7 * day));
        assert!(expired(0, Some(0), 7 * day, 7 * day));
        // A commit after the group became empty (an admin reset) restarts the clock.
        assert!(!expired(0, Some(3 * day), 7 * day, 7 * day));
        // Commits long ago count from when the group became empty.
        assert!(!expired(5 * day, Some(0), 7 * day, 7 * day));
        assert!(expired(5 * day, None, 12 * day, 7 * day));
    }
}
