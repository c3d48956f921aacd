//! KIP-848 consumer groups (`group.protocol=consumer`) as a state machine
//! without I/O. The broker owns the assignment: every membership or
//! subscription change bumps the group epoch, the assignor computes a
//! target assignment for that epoch, and each member is reconciled towards
//! its target one heartbeat at a time: partitions another member still owns
//! are not handed out until that member has revoked them (acknowledged by
//! leaving them out of its owned partitions), so no partition ever has two
//! owners. Member epochs fence zombies: a heartbeat from an epoch the
//! broker no longer knows gets FENCED_MEMBER_EPOCH.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::assignor::{self, AssignorMember, Target, TopicPartition};
pub use super::mixed::ClassicMembership;

/// The topics a heartbeat may subscribe to: name to (id, partition count).
#[derive(Debug, Clone, Default)]
pub struct TopicImage {
    pub by_name: BTreeMap<String, (Uuid, i32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Waiting for the member to give up partitions its target no longer has.
    UnrevokedPartitions,
    /// Waiting for other members to release partitions of this member's target.
    UnreleasedPartitions,
}

impl MemberState {
    pub fn code(self) -> u8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(MemberState::Stable),
            1 => Some(MemberState::UnrevokedPartitions),
            2 => Some(MemberState::UnreleasedPartitions),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_names: Vec<String>,
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub assigned: BTreeSet<TopicPartition>,
    pub pending_revocation: BTreeSet<TopicPartition>,
    /// A static member that left with epoch -2 keeps its place (and
    /// partitions) until its session expires, for its replacement.
    pub left_static: bool,
    pub session_deadline_ms: i64,
    pub revocation_deadline_ms: Option<i64>,
    /// Set for a member that speaks the classic protocol (JoinGroup and
    /// SyncGroup) in this group (`mixed.rs`).
    pub classic: Option<ClassicMembership>,
}

impl ConsumerMember {
    /// A member that just joined: epoch 0, nothing assigned or subscribed yet.
    pub fn new(
        id: &str,
        instance_id: Option<String>,
        client: (String, String),
        rebalance_timeout_ms: i32,
        session_deadline_ms: i64,
    ) -> Self {
        Self {
            id: id.to_owned(),
            instance_id,
            rack_id: None,
            client_id: client.0,
            client_host: client.1,
            subscribed_names: Vec::new(),
            subscribed_regex: None,
            server_assignor: None,
            rebalance_timeout_ms,
            epoch: 0,
            previous_epoch: -1,
            state: MemberState::Stable,
            assigned: BTreeSet::new(),
            pending_revocation: BTreeSet::new(),
            left_static: false,
            session_deadline_ms,
            revocation_deadline_ms: None,
            classic: None,
        }
    }
}

/// Broker settings for consumer groups (Kafka's `group.consumer.*`).
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    pub max_size: usize,
}

#[derive(Debug, Clone)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_names: Option<Vec<String>>,
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Vec<TopicPartition>>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    pub member_epoch: i32,
    /// The partitions the member may own now, when they changed.
    pub assignment: Option<BTreeSet<TopicPartition>>,
}

/// A refusal: the error code and Kafka's message for it.
pub type Refusal = (ResponseError, String);

fn refuse(error: ResponseError, message: impl Into<String>) -> Refusal {
    (error, message.into())
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub target: Target,
    pub members: BTreeMap<String, ConsumerMember>,
    /// Subscribed topic ids and partition counts when the epoch last moved:
    /// a topic created or grown later moves it again.
    subscribed_partitions: BTreeMap<Uuid, i32>,
    /// False for a group restored from storage until its first heartbeat
    /// recomputes `subscribed_partitions`, which must not move the epoch.
    subscriptions_known: bool,
}

/// Whether a subscription regex (RE2 syntax, as Kafka uses) is valid.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, Refusal> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| refuse(ResponseError::InvalidRegularExpression, format!("Invalid regular expression: {e}")))
}

impl ConsumerGroup {
    pub fn restored(
        group_epoch: i32,
        assignment_epoch: i32,
        assignor: String,
        target: Target,
        members: BTreeMap<String, ConsumerMember>,
    ) -> Self {
        Self {
            group_epoch,
            assignment_epoch,
            assignor,
            target,
            members,
            subscribed_partitions: BTreeMap::new(),
            subscriptions_known: false,
        }
    }

    /// Kafka's state names for consumer groups.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|m| m.state != MemberState::Stable || m.epoch != self.assignment_epoch) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Handles one ConsumerGroupHeartbeat. Returns the answer and whether
    /// the group's persisted state changed.
    pub fn heartbeat(
        &mut self,
        request: HeartbeatRequest,
        now_ms: i64,
        image: &TopicImage,
        settings: &ConsumerSettings,
    ) -> Result<(HeartbeatOutcome, bool), Refusal> {
        validate(&request)?;
        let epoch_before = self.group_epoch;
        let classic = self.members.get(&request.member_id).is_some_and(|m| m.classic.is_some());
        if classic && request.member_epoch != 0 {
            // A classic member of a mixed group speaks JoinGroup, not this.
            return Err(unknown_member(&request.member_id));
        }
        match request.member_epoch {
            -1 | -2 => return self.leave(&request),
            0 => self.join(&request, now_ms, settings)?,
            _ => self.check_epoch(&request)?,
        }
        let member = self.members.get_mut(&request.member_id).ok_or_else(|| unknown_member(&request.member_id))?;
        let before = (member.epoch, member.state, member.assigned.clone());
        if update_member(member, &request) {
            self.group_epoch += 1;
        }
        member.session_deadline_ms = now_ms + i64::from(settings.session_timeout_ms);
        self.refresh_subscriptions(image);
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(image);
        }
        self.reconcile(&request.member_id, request.owned.as_deref(), now_ms);
        let member = &self.members[&request.member_id];
        let changed = before != (member.epoch, member.state, member.assigned.clone());
        let owned_differs = request
            .owned
            .as_ref()
            .is_some_and(|owned| owned.iter().copied().collect::<BTreeSet<_>>() != member.assigned);
        let send_assignment = request.member_epoch == 0 || changed || owned_differs;
        let outcome = HeartbeatOutcome {
            member_epoch: member.epoch,
            assignment: send_assignment.then(|| member.assigned.clone()),
        };
        Ok((outcome, changed || self.group_epoch != epoch_before))
    }

    fn join(&mut self, request: &HeartbeatRequest, now_ms: i64, settings: &ConsumerSettings) -> Result<(), Refusal> {
        if let Some(instance_id) = &request.instance_id {
            let holder = self
                .members
                .values()
                .find(|m| m.instance_id.as_ref() == Some(instance_id) && m.id != request.member_id);
            if let Some(holder) = holder {
                if !holder.left_static {
                    return Err(refuse(
                        ResponseError::UnreleasedInstanceId,
                        format!("Static member with instance id {instance_id} is still in the group."),
                    ));
                }
                // The replacement takes the departed static member's place,
                // epoch and partitions: no rebalance.
                let mut inherited = self.members.remove(&holder.id.clone()).ok_or_else(|| unknown_member(""))?;
                inherited.id.clone_from(&request.member_id);
                inherited.left_static = false;
                self.members.insert(request.member_id.clone(), inherited);
                return Ok(());
            }
        }
        if self.members.remove(&request.member_id).is_some() {
            // A known member rejoining with epoch 0 abandoned its partitions.
            self.group_epoch += 1;
        }
        if self.members.len() >= settings.max_size {
            return Err(refuse(ResponseError::GroupMaxSizeReached, "The consumer group has reached its maximum size."));
        }
        let mut member = ConsumerMember::new(
            &request.member_id,
            request.instance_id.clone(),
            (request.client_id.clone(), request.client_host.clone()),
            request.rebalance_timeout_ms,
            now_ms + i64::from(settings.session_timeout_ms),
        );
        member.rack_id.clone_from(&request.rack_id);
        self.members.insert(request.member_id.clone(), member);
        self.group_epoch += 1;
        Ok(())
    }

    fn leave(&mut self, request: &HeartbeatRequest) -> Result<(HeartbeatOutcome, bool), Refusal> {
        let member = self.members.get_mut(&request.member_id).ok_or_else(|| unknown_member(&request.member_id))?;
        if request.member_epoch == -2 && member.instance_id.is_some() {
            member.left_static = true;
            return Ok((HeartbeatOutcome { member_epoch: -2, assignment: None }, true));
        }
        self.members.remove(&request.member_id);
        self.group_epoch += 1;
        Ok((HeartbeatOutcome { member_epoch: -1, assignment: None }, true))
    }

    /// A heartbeat must carry the member's epoch, or the previous one when
    /// the answer that moved it may have been lost (its owned partitions
    /// then must be a subset of what it was assigned).
    fn check_epoch(&self, request: &HeartbeatRequest) -> Result<(), Refusal> {
        let member = self.members.get(&request.member_id).ok_or_else(|| unknown_member(&request.member_id))?;
        let fenced = || {
            refuse(
                ResponseError::FencedMemberEpoch,
                format!(
                    "The consumer group member has a member epoch ({}) different from the one known by the group \
                     coordinator ({}). The member must abandon all its partitions and rejoin.",
                    request.member_epoch, member.epoch
                ),
            )
        };
        if request.member_epoch > member.epoch {
            return Err(fenced());
        }
        if request.member_epoch < member.epoch {
            let owned_subset =
                request.owned.as_ref().is_some_and(|owned| owned.iter().all(|tp| member.assigned.contains(tp)));
            if request.member_epoch != member.previous_epoch || !owned_subset {
                return Err(fenced());
            }
        }
        Ok(())
    }

    /// Subscribed topic ids (by name or regex) with their partition counts.
    fn subscribed_topics(member: &ConsumerMember, image: &TopicImage) -> BTreeMap<Uuid, i32> {
        let mut topics: BTreeMap<Uuid, i32> = member
            .subscribed_names
            .iter()
            .filter_map(|name| image.by_name.get(name))
            .map(|(id, n)| (*id, *n))
            .collect();
        if let Some(regex) = member.subscribed_regex.as_deref().and_then(|p| compile_regex(p).ok()) {
            topics.extend(image.by_name.iter().filter(|(name, _)| regex.is_match(name)).map(|(_, (id, n))| (*id, *n)));
        }
        topics
    }

    /// Moves the group epoch when a subscribed topic appeared, vanished or grew.
    pub(super) fn refresh_subscriptions(&mut self, image: &TopicImage) {
        let mut all = BTreeMap::new();
        for member in self.members.values() {
            all.extend(Self::subscribed_topics(member, image));
        }
        if all != self.subscribed_partitions {
            self.subscribed_partitions = all;
            if self.subscriptions_known {
                self.group_epoch += 1;
            }
        }
        self.subscriptions_known = true;
    }

    /// The assignor most members prefer (ties: the first listed), else `uniform`.
    fn select_assignor(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for preferred in self.members.values().filter_map(|m| m.server_assignor.as_deref()) {
            *votes.entry(preferred).or_default() += 1;
        }
        let best = assignor::ASSIGNORS.iter().rev().max_by_key(|name| votes.get(*name).copied().unwrap_or(0));
        best.filter(|name| votes.contains_key(**name)).map_or(assignor::UNIFORM, |name| name).to_owned()
    }

    pub(super) fn compute_target(&mut self, image: &TopicImage) {
        self.assignor = self.select_assignor();
        let empty = BTreeSet::new();
        let inputs: Vec<AssignorMember<'_>> = self
            .members
            .values()
            .map(|m| AssignorMember {
                member_id: &m.id,
                topics: Self::subscribed_topics(m, image).into_keys().collect(),
                previous: self.target.get(&m.id).unwrap_or(&empty),
            })
            .collect();
        self.target = assignor::assign(&self.assignor, &inputs, &self.subscribed_partitions);
        self.assignment_epoch = self.group_epoch;
    }

    /// Whether another member than `member_id` still owns the partition.
    pub(super) fn owned_elsewhere(&self, member_id: &str, tp: &TopicPartition) -> bool {
        self.members
            .values()
            .any(|m| m.id != member_id && (m.assigned.contains(tp) || m.pending_revocation.contains(tp)))
    }

    /// Moves one member towards its target (Kafka's reconciliation): first
    /// it revokes what its target lost, then it gets what is free.
    pub(super) fn reconcile(&mut self, member_id: &str, owned: Option<&[TopicPartition]>, now_ms: i64) {
        let target_epoch = self.assignment_epoch;
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let Some(member) = self.members.get(member_id) else { return };
        let still_owns = |revoking: &BTreeSet<TopicPartition>| match owned {
            None => true,
            Some(owned) => owned.iter().any(|tp| revoking.contains(tp)),
        };
        let up_to_date = member.epoch == target_epoch && member.state == MemberState::Stable;
        if up_to_date || (member.state == MemberState::UnrevokedPartitions && still_owns(&member.pending_revocation)) {
            return;
        }
        let keep: BTreeSet<TopicPartition> = member.assigned.intersection(&target).copied().collect();
        let revoke: BTreeSet<TopicPartition> = member.assigned.difference(&keep).copied().collect();
        let (epoch, rebalance_ms) = (member.epoch, member.rebalance_timeout_ms);
        if !revoke.is_empty() && still_owns(&revoke) {
            let member = self.members.get_mut(member_id).expect("checked above");
            member.state = MemberState::UnrevokedPartitions;
            member.assigned = keep;
            member.pending_revocation = revoke;
            member.revocation_deadline_ms = Some(now_ms + i64::from(rebalance_ms.max(0)));
            return;
        }
        let wanted: Vec<TopicPartition> = target.difference(&keep).copied().collect();
        let (free, unreleased): (Vec<TopicPartition>, Vec<TopicPartition>) =
            wanted.into_iter().partition(|tp| !self.owned_elsewhere(member_id, tp));
        let member = self.members.get_mut(member_id).expect("checked above");
        member.assigned = keep.into_iter().chain(free).collect();
        member.pending_revocation.clear();
        member.revocation_deadline_ms = None;
        member.state = if unreleased.is_empty() { MemberState::Stable } else { MemberState::UnreleasedPartitions };
        if epoch != target_epoch {
            member.previous_epoch = epoch;
            member.epoch = target_epoch;
        }
    }

    /// Whether an offset commit (or fetch) by this member and epoch is
    /// current. Epoch -1 with no member id is an admin client's, accepted
    /// only while the group has no members.
    pub fn validate_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
        if epoch < 0 && member_id.is_empty() {
            return if self.members.is_empty() { Ok(()) } else { Err(ResponseError::UnknownMemberId) };
        }
        let member = self.members.get(member_id).ok_or(ResponseError::UnknownMemberId)?;
        if member.epoch != epoch {
            return Err(ResponseError::StaleMemberEpoch);
        }
        Ok(())
    }

    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.members
            .values()
            .flat_map(|m| {
                let classic = m.classic.as_ref().and_then(|c| c.deadline_ms);
                std::iter::once(m.session_deadline_ms).chain(m.revocation_deadline_ms).chain(classic)
            })
            .min()
    }

    /// Removes members whose session expired or who did not revoke in
    /// time. Returns whether anything changed.
    pub fn tick(&mut self, now_ms: i64) -> bool {
        let before = self.members.len();
        self.members.retain(|id, m| {
            let passed = |deadline: Option<i64>| deadline.is_some_and(|d| d <= now_ms);
            let classic_deadline = m.classic.as_ref().and_then(|c| c.deadline_ms);
            let expired =
                m.session_deadline_ms <= now_ms || passed(m.revocation_deadline_ms) || passed(classic_deadline);
            if expired {
                tracing::info!(member = %id, "consumer group member removed (session, revocation, join or sync timeout)");
            }
            !expired
        });
        let changed = self.members.len() != before;
        if changed {
            self.group_epoch += 1;
        }
        changed
    }
}

fn unknown_member(member_id: &str) -> Refusal {
    refuse(ResponseError::UnknownMemberId, format!("Member {member_id} is not a member of the group."))
}

fn validate(request: &HeartbeatRequest) -> Result<(), Refusal> {
    let invalid = |message: &str| Err(refuse(ResponseError::InvalidRequest, message));
    if request.member_id.is_empty() {
        return invalid("MemberId can't be empty.");
    }
    if request.member_epoch < -2 {
        return invalid("MemberEpoch is invalid.");
    }
    if request.member_epoch == 0 {
        if request.rebalance_timeout_ms == -1 {
            return invalid("RebalanceTimeoutMs must be provided in first request.");
        }
        if request.owned.as_ref().is_none_or(|owned| !owned.is_empty()) {
            return invalid("TopicPartitions must be empty when (re-)joining.");
        }
        if request.subscribed_names.is_none() && request.subscribed_regex.is_none() {
            return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
        }
    }
    if let Some(name) = request.server_assignor.as_deref() {
        if !assignor::ASSIGNORS.contains(&name) {
            return Err(refuse(
                ResponseError::UnsupportedAssignor,
                format!("ServerAssignor {name} is not supported. Supported assignors: uniform, range."),
            ));
        }
    }
    if let Some(pattern) = request.subscribed_regex.as_deref() {
        compile_regex(pattern)?;
    }
    Ok(())
}

/// Applies the fields a heartbeat carries (null = unchanged). Returns
/// whether the subscription changed, which moves the group epoch.
fn update_member(member: &mut ConsumerMember, request: &HeartbeatRequest) -> bool {
    let mut subscription_changed = false;
    if let Some(names) = &request.subscribed_names {
        let mut names = names.clone();
        names.sort();
        names.dedup();
        subscription_changed |= names != member.subscribed_names;
        member.subscribed_names = names;
    }
    if let Some(regex) = &request.subscribed_regex {
        let regex = Some(regex.clone()).filter(|r| !r.is_empty());
        subscription_changed |= regex != member.subscribed_regex;
        member.subscribed_regex = regex;
    }
    if let Some(assignor) = &request.server_assignor {
        subscription_changed |= member.server_assignor.as_ref() != Some(assignor);
        member.server_assignor = Some(assignor.clone());
    }
    if request.rebalance_timeout_ms != -1 {
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
    }
    if request.rack_id.is_some() {
        member.rack_id.clone_from(&request.rack_id);
    }
    member.client_id.clone_from(&request.client_id);
    member.client_host.clone_from(&request.client_host);
    subscription_changed
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;
