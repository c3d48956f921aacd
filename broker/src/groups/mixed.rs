//! Mixed consumer groups, as Kafka 4 defines them (KIP-848's online
//! migration): classic-protocol members (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) inside a consumer-protocol group, and the conversions
//! between the two group types that `group.consumer.migration.policy`
//! allows. Without I/O, like `consumer.rs`.
//!
//! A classic member is an ordinary consumer-group member whose
//! subscription and owned partitions come from its JoinGroup metadata. The
//! broker's assignor decides its partitions, reconciled at each JoinGroup
//! (its owned partitions say what it has revoked) and handed over in the
//! SyncGroup answer. It learns that it must rejoin from Heartbeat's
//! REBALANCE_IN_PROGRESS: whenever the group epoch moved past its own, it
//! still holds partitions it must give up, or partitions it waited for are
//! free. The JoinGroup answer names no leader, so the client never runs a
//! client-side assignor.

use kafka_protocol::error::ResponseError;

use super::classic::{
    ClassicGroup, GroupSettings, JoinOutcome, JoinRequest, Member, Protocol, SyncOutcome, SyncRequest,
};
use super::consumer::{ConsumerGroup, ConsumerMember, ConsumerSettings, MemberState, TopicImage};
use super::embedded;

/// The only classic protocol type that can live in a consumer group.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Kafka's `group.consumer.migration.policy`: which online conversions
/// between classic and consumer groups are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    Disabled,
    Upgrade,
    Downgrade,
    Bidirectional,
}

impl MigrationPolicy {
    pub const NAMES: [&'static str; 4] = ["disabled", "upgrade", "downgrade", "bidirectional"];

    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "disabled" => Some(Self::Disabled),
            "upgrade" => Some(Self::Upgrade),
            "downgrade" => Some(Self::Downgrade),
            "bidirectional" => Some(Self::Bidirectional),
            _ => None,
        }
    }
    pub fn upgrades(self) -> bool {
        matches!(self, Self::Upgrade | Self::Bidirectional)
    }
    pub fn downgrades(self) -> bool {
        matches!(self, Self::Downgrade | Self::Bidirectional)
    }
}

/// What a classic member adds to a consumer-group member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMembership {
    pub session_timeout_ms: i32,
    /// As in its last JoinGroup; the first one names the protocol it uses.
    pub protocols: Vec<Protocol>,
    /// Join or sync timeout: a member told to rejoin (or to sync) that does
    /// not within its rebalance timeout is removed. Not persisted.
    pub deadline_ms: Option<i64>,
}

impl ClassicMembership {
    fn protocol_name(&self) -> &str {
        self.protocols.first().map_or("", |p| p.name.as_str())
    }
    fn embedded_version(&self) -> i16 {
        self.protocols.first().map_or(0, |p| embedded::version_of(&p.metadata))
    }
}

impl ConsumerGroup {
    pub fn has_classic_members(&self) -> bool {
        self.members.values().any(|m| m.classic.is_some())
    }

    /// Whether every member speaks the classic protocol (the group may then
    /// go back to being a classic group).
    pub fn all_members_classic(&self) -> bool {
        self.members.values().all(|m| m.classic.is_some())
    }

    /// Kafka's rule: a joining classic member must share a protocol name
    /// with every classic member already in the group.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if protocol_type != CONSUMER_PROTOCOL_TYPE || protocols.is_empty() {
            return false;
        }
        let classic: Vec<&ClassicMembership> = self.members.values().filter_map(|m| m.classic.as_ref()).collect();
        protocols.iter().any(|p| classic.iter().all(|c| c.protocols.iter().any(|q| q.name == p.name)))
    }

    /// The member a classic request names: by instance id for static
    /// members (a different member id is a fenced zombie), else by id.
    fn classic_member_id(&self, member_id: &str, instance_id: Option<&str>) -> Result<String, ResponseError> {
        let member = match instance_id {
            Some(instance) => {
                let member = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(instance))
                    .ok_or(ResponseError::UnknownMemberId)?;
                if member.id != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                member
            }
            None => self.members.get(member_id).ok_or(ResponseError::UnknownMemberId)?,
        };
        // A consumer-protocol member cannot use classic requests.
        member.classic.as_ref().ok_or(ResponseError::UnknownMemberId)?;
        Ok(member.id.clone())
    }

    /// JoinGroup from a classic member. Returns the answer (MEMBER_ID_REQUIRED
    /// included) or the error to answer with.
    pub fn classic_join(
        &mut self,
        request: &JoinRequest,
        now_ms: i64,
        image: &TopicImage,
        settings: &ConsumerSettings,
    ) -> Result<JoinOutcome, ResponseError> {
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        let unknown = request.member_id.is_empty();
        let member_id = if unknown { request.new_member_id.clone() } else { request.member_id.clone() };
        if unknown && request.instance_id.is_none() && request.require_known_member_id {
            return Ok(JoinOutcome {
                error: Some(ResponseError::MemberIdRequired),
                ..JoinOutcome::error_free(&member_id)
            });
        }
        let subscription = request
            .protocols
            .first()
            .and_then(|p| embedded::decode_subscription(&p.metadata))
            .ok_or(ResponseError::InconsistentGroupProtocol)?;
        self.admit_classic_member(request, &member_id, unknown, now_ms, settings)?;
        let member = self.members.get_mut(&member_id).ok_or(ResponseError::UnknownMemberId)?;
        let mut topics = subscription.topics.clone();
        topics.sort();
        topics.dedup();
        if topics != member.subscribed_names {
            member.subscribed_names = topics;
            self.group_epoch += 1;
        }
        let member = self.members.get_mut(&member_id).ok_or(ResponseError::UnknownMemberId)?;
        member.subscribed_regex = None;
        member.server_assignor = None;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        if subscription.rack_id.is_some() {
            member.rack_id = subscription.rack_id.clone();
        }
        member.client_id.clone_from(&request.client_id);
        member.client_host.clone_from(&request.client_host);
        member.session_deadline_ms = now_ms + i64::from(request.session_timeout_ms);
        member.classic = Some(ClassicMembership {
            session_timeout_ms: request.session_timeout_ms,
            protocols: request.protocols.clone(),
            // The sync timeout: SyncGroup must follow within the rebalance timeout.
            deadline_ms: Some(now_ms + i64::from(request.rebalance_timeout_ms.max(0))),
        });
        self.refresh_subscriptions(image);
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(image);
        }
        let owned = embedded::to_ids(&subscription.owned, image);
        self.reconcile(&member_id, Some(&owned), now_ms);
        let member = &self.members[&member_id];
        Ok(JoinOutcome {
            generation_id: member.epoch,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_owned()),
            protocol_name: request.protocols.first().map(|p| p.name.clone()),
            ..JoinOutcome::error_free(&member_id)
        })
    }

    /// Finds or creates the joining member; a static member joining without
    /// a member id takes over its predecessor's place and partitions.
    fn admit_classic_member(
        &mut self,
        request: &JoinRequest,
        member_id: &str,
        unknown: bool,
        now_ms: i64,
        settings: &ConsumerSettings,
    ) -> Result<(), ResponseError> {
        let holder = request
            .instance_id
            .as_deref()
            .and_then(|instance| self.members.values().find(|m| m.instance_id.as_deref() == Some(instance)))
            .map(|m| m.id.clone());
        match holder {
            Some(holder) if holder == member_id => return Ok(()),
            Some(holder) if unknown => {
                let mut inherited = self.members.remove(&holder).ok_or(ResponseError::UnknownMemberId)?;
                inherited.id = member_id.to_owned();
                inherited.left_static = false;
                self.members.insert(member_id.to_owned(), inherited);
                return Ok(());
            }
            Some(_) => return Err(ResponseError::FencedInstanceId),
            // A static member must first join without an id.
            None if !unknown && request.instance_id.is_some() => return Err(ResponseError::UnknownMemberId),
            // A dynamic member joins with the id MEMBER_ID_REQUIRED gave it
            // (the broker keeps no list of ids it handed out, as Kafka).
            None if self.members.contains_key(member_id) => return Ok(()),
            None => {}
        }
        if self.members.len() >= settings.max_size {
            return Err(ResponseError::GroupMaxSizeReached);
        }
        self.members.insert(member_id.to_owned(), new_member(member_id, request, now_ms));
        self.group_epoch += 1;
        Ok(())
    }

    /// SyncGroup from a classic member: its current assignment, encoded in
    /// the embedded-protocol version it speaks.
    pub fn classic_sync(
        &mut self,
        request: &SyncRequest,
        now_ms: i64,
        image: &TopicImage,
    ) -> Result<SyncOutcome, ResponseError> {
        let id = self.classic_member_id(&request.member_id, request.instance_id.as_deref())?;
        let group_epoch = self.group_epoch;
        let member = self.members.get_mut(&id).ok_or(ResponseError::UnknownMemberId)?;
        if request.generation_id != member.epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        let (epoch, state, rebalance_ms) = (member.epoch, member.state, member.rebalance_timeout_ms);
        let classic = member.classic.as_mut().ok_or(ResponseError::UnknownMemberId)?;
        let type_differs = request.protocol_type.as_deref().is_some_and(|t| t != CONSUMER_PROTOCOL_TYPE);
        let name_differs = request.protocol_name.as_deref().is_some_and(|n| n != classic.protocol_name());
        if type_differs || name_differs {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        // A newer epoch means another rebalance already started; a member
        // still revoking finishes that first (its next join catches up).
        if group_epoch > epoch && state != MemberState::UnrevokedPartitions {
            classic.deadline_ms.get_or_insert(now_ms + i64::from(rebalance_ms.max(0)));
            return Err(ResponseError::RebalanceInProgress);
        }
        classic.deadline_ms = None;
        member.session_deadline_ms = now_ms + i64::from(classic.session_timeout_ms);
        let assignment = embedded::encode_assignment(&member.assigned, classic.embedded_version(), image);
        Ok(SyncOutcome {
            error: None,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_owned()),
            protocol_name: Some(classic.protocol_name().to_owned()),
            assignment,
        })
    }

    /// Heartbeat from a classic member: REBALANCE_IN_PROGRESS when it must
    /// rejoin to move towards its target.
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Result<(), ResponseError> {
        let id = self.classic_member_id(member_id, instance_id)?;
        let waiting = self.waiting_on_unreleased(&id);
        let group_epoch = self.group_epoch;
        let member = self.members.get_mut(&id).ok_or(ResponseError::UnknownMemberId)?;
        if generation != member.epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        let (epoch, state, rebalance_ms) = (member.epoch, member.state, member.rebalance_timeout_ms);
        let classic = member.classic.as_mut().ok_or(ResponseError::UnknownMemberId)?;
        member.session_deadline_ms = now_ms + i64::from(classic.session_timeout_ms);
        let must_rejoin = epoch < group_epoch
            || state == MemberState::UnrevokedPartitions
            || (state == MemberState::UnreleasedPartitions && !waiting);
        if must_rejoin {
            classic.deadline_ms.get_or_insert(now_ms + i64::from(rebalance_ms.max(0)));
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// OffsetCommit by a member: classic members commit with their
    /// generation (the member epoch), so a stale one is ILLEGAL_GENERATION.
    pub fn validate_commit(&self, member_id: &str, generation: i32) -> Result<(), ResponseError> {
        match self.members.get(member_id) {
            Some(member) if member.classic.is_some() && member.epoch != generation => {
                Err(ResponseError::IllegalGeneration)
            }
            _ => self.validate_member_epoch(member_id, generation),
        }
    }

    /// Whether another member still holds a partition this member's target has.
    fn waiting_on_unreleased(&self, member_id: &str) -> bool {
        let Some(member) = self.members.get(member_id) else { return false };
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        target.difference(&member.assigned).any(|tp| self.owned_elsewhere(member_id, tp))
    }

    /// LeaveGroup of classic members (by member id, or by instance id for
    /// static members); per-member results. Moves the epoch once.
    pub fn classic_leave(&mut self, leaving: &[(String, Option<String>)]) -> Vec<Result<(), ResponseError>> {
        let mut removed_any = false;
        let results = leaving
            .iter()
            .map(|(member_id, instance_id)| {
                let id = match instance_id {
                    // Admin tools remove static members by instance id alone.
                    Some(instance) if member_id.is_empty() => self
                        .members
                        .values()
                        .find(|m| m.instance_id.as_deref() == Some(instance.as_str()) && m.classic.is_some())
                        .map(|m| m.id.clone())
                        .ok_or(ResponseError::UnknownMemberId)?,
                    _ => self.classic_member_id(member_id, instance_id.as_deref())?,
                };
                self.members.remove(&id);
                removed_any = true;
                Ok(())
            })
            .collect();
        if removed_any {
            self.group_epoch += 1;
        }
        results
    }

    /// Online upgrade: the consumer group a classic group becomes when a
    /// consumer-protocol member joins it. Members keep their partitions and
    /// the generation becomes the epoch; `None` when a member's embedded
    /// protocol cannot be read.
    pub fn from_classic(classic: &ClassicGroup, image: &TopicImage, now_ms: i64) -> Option<ConsumerGroup> {
        let generation = classic.generation();
        let mut group =
            ConsumerGroup::restored(generation, generation, String::new(), Default::default(), Default::default());
        for member in classic.members() {
            let protocol = classic.protocol().or_else(|| member.protocols.first().map(|p| p.name.as_str()));
            let subscription = embedded::decode_subscription(&member.metadata_for(protocol))?;
            let assigned = embedded::decode_assignment(&member.assignment, image)?;
            let mut converted = new_member(&member.id, &join_of(member), now_ms);
            converted.subscribed_names = subscription.topics;
            converted.subscribed_names.sort();
            converted.subscribed_names.dedup();
            converted.rack_id = subscription.rack_id;
            converted.epoch = generation;
            converted.previous_epoch = generation;
            converted.assigned = assigned.clone();
            if let Some(protocol) = protocol {
                // The protocol in use goes first: it names the one the member speaks.
                if let Some(classic) = converted.classic.as_mut() {
                    classic.protocols.sort_by_key(|p| p.name != protocol);
                }
            }
            group.target.insert(member.id.clone(), assigned);
            group.members.insert(member.id.clone(), converted);
        }
        group.refresh_subscriptions(image);
        Some(group)
    }

    /// Online downgrade: the classic group this group becomes once only
    /// classic members remain. It starts a rebalance, so the members rejoin
    /// and their client-side leader assigns again.
    pub fn to_classic(
        &self,
        image: &TopicImage,
        now_ms: i64,
        settings: &GroupSettings,
    ) -> Option<(ClassicGroup, Vec<super::classic::Action>)> {
        let members: Vec<&ConsumerMember> = self.members.values().collect();
        let first = members.first()?.classic.as_ref()?;
        let protocol = first
            .protocols
            .iter()
            .find(|p| {
                members.iter().all(|m| m.classic.as_ref().is_some_and(|c| c.protocols.iter().any(|q| q.name == p.name)))
            })?
            .name
            .clone();
        let converted: Vec<Member> = members
            .iter()
            .filter_map(|m| {
                let classic = m.classic.as_ref()?;
                let assignment = embedded::encode_assignment(&m.assigned, classic.embedded_version(), image);
                Some(Member::restored(
                    m.id.clone(),
                    m.instance_id.clone(),
                    (m.client_id.clone(), m.client_host.clone()),
                    (classic.session_timeout_ms, m.rebalance_timeout_ms),
                    classic.protocols.clone(),
                    assignment,
                    now_ms,
                ))
            })
            .collect();
        let leader = converted.first().map(|m| m.id.clone());
        let mut group = ClassicGroup::restored(
            self.group_epoch,
            Some(CONSUMER_PROTOCOL_TYPE.to_owned()),
            Some(protocol),
            leader,
            converted,
        );
        let mut actions = Vec::new();
        group.request_rebalance(now_ms, settings, &mut actions);
        Some((group, actions))
    }
}

/// A fresh member as a classic JoinGroup describes it.
fn new_member(member_id: &str, request: &JoinRequest, now_ms: i64) -> ConsumerMember {
    let mut member = ConsumerMember::new(
        member_id,
        request.instance_id.clone(),
        (request.client_id.clone(), request.client_host.clone()),
        request.rebalance_timeout_ms,
        now_ms + i64::from(request.session_timeout_ms),
    );
    member.classic = Some(ClassicMembership {
        session_timeout_ms: request.session_timeout_ms,
        protocols: request.protocols.clone(),
        deadline_ms: None,
    });
    member
}

/// A classic group member's fields in the shape of the JoinGroup that made it.
fn join_of(member: &Member) -> JoinRequest {
    JoinRequest {
        waiter: 0,
        member_id: member.id.clone(),
        new_member_id: String::new(),
        instance_id: member.instance_id.clone(),
        client_id: member.client_id.clone(),
        client_host: member.client_host.clone(),
        session_timeout_ms: member.session_timeout_ms,
        rebalance_timeout_ms: member.rebalance_timeout_ms,
        protocol_type: CONSUMER_PROTOCOL_TYPE.to_owned(),
        protocols: member.protocols.clone(),
        require_known_member_id: false,
        supports_skip_assignment: false,
    }
}

#[cfg(test)]
#[path = "mixed_tests.rs"]
mod tests;
