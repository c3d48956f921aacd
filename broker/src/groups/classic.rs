//! The classic consumer-group protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) as a state machine without I/O: requests and clock ticks go
//! in, [`Action`]s come out. The runtime in `coordinator.rs` owns sockets,
//! timers and persistence; everything here is tested with simulated time.
//!
//! States follow Kafka's: `Empty` → `PreparingRebalance` (members (re)join)
//! → `CompletingRebalance` (the leader computes the assignment) → `Stable`
//! (SyncGroup delivered it). The broker only relays the assignment the
//! client leader chose, so eager and cooperative assignors both work.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

pub use super::classic_messages::{
    Action, GroupSettings, GroupState, JoinOutcome, JoinRequest, JoinedMember, Protocol, SyncOutcome, SyncRequest,
    WaiterId,
};

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<Protocol>,
    pub assignment: Bytes,
    pending_join: Option<WaiterId>,
    pending_sync: Option<WaiterId>,
    session_deadline_ms: i64,
}

impl Member {
    /// A member restored from storage, whose session starts now.
    pub fn restored(
        id: String,
        instance_id: Option<String>,
        client: (String, String),
        timeouts_ms: (i32, i32),
        protocols: Vec<Protocol>,
        assignment: Bytes,
        now_ms: i64,
    ) -> Self {
        Self {
            id,
            instance_id,
            client_id: client.0,
            client_host: client.1,
            session_timeout_ms: timeouts_ms.0,
            rebalance_timeout_ms: timeouts_ms.1,
            protocols,
            assignment,
            pending_join: None,
            pending_sync: None,
            session_deadline_ms: now_ms + i64::from(timeouts_ms.0),
        }
    }

    pub fn metadata_for(&self, protocol: Option<&str>) -> Bytes {
        self.protocols
            .iter()
            .find(|p| Some(p.name.as_str()) == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }
}

/// One classic group: membership, generation and the relayed assignment.
#[derive(Debug, Clone)]
pub struct ClassicGroup {
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// In join order, so the longest-standing member leads when the leader leaves.
    members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until their session
    /// timeout: a rebalance waits for them to join.
    pending_members: HashMap<String, i64>,
    join_deadline_ms: Option<i64>,
    /// Set while the initial rebalance delay runs: joins extend the delay up
    /// to this bound (Kafka's `group.initial.rebalance.delay.ms`).
    initial_delay_bound_ms: Option<i64>,
    sync_deadline_ms: Option<i64>,
}

impl Default for ClassicGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl ClassicGroup {
    pub fn new() -> Self {
        Self {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending_members: HashMap::new(),
            join_deadline_ms: None,
            initial_delay_bound_ms: None,
            sync_deadline_ms: None,
        }
    }

    /// A group as persisted: stable with its members, or empty.
    pub fn restored(
        generation: i32,
        protocol_type: Option<String>,
        protocol: Option<String>,
        leader: Option<String>,
        members: Vec<Member>,
    ) -> Self {
        let state = if members.is_empty() { GroupState::Empty } else { GroupState::Stable };
        Self { state, generation, protocol_type, protocol, leader, members, ..Self::new() }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }
    pub fn generation(&self) -> i32 {
        self.generation
    }
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }
    pub fn members(&self) -> &[Member] {
        &self.members
    }
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    /// Marks a deleted group: later requests for it are refused.
    pub fn mark_dead(&mut self) {
        self.state = GroupState::Dead;
    }

    fn member_index(&self, member_id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == member_id)
    }

    fn static_member_index(&self, instance_id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// FENCED_INSTANCE_ID when `instance_id` belongs to another member id.
    fn check_fencing(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), ResponseError> {
        match instance_id.and_then(|id| self.static_member_index(id)) {
            Some(index) if self.members[index].id != member_id => Err(ResponseError::FencedInstanceId),
            _ => Ok(()),
        }
    }

    /// The member a generation-scoped request (SyncGroup, Heartbeat, commit) names.
    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<usize, ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        self.check_fencing(member_id, instance_id)?;
        let index = self.member_index(member_id).ok_or(ResponseError::UnknownMemberId)?;
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(index)
    }

    pub fn join(&mut self, request: JoinRequest, now_ms: i64, settings: &GroupSettings, out: &mut Vec<Action>) {
        if let Err(error) = self.validate_join(&request, settings) {
            out.push(Action::Join(request.waiter, JoinOutcome::error(error, &request.member_id)));
            return;
        }
        if request.member_id.is_empty() {
            self.join_unknown_member(request, now_ms, settings, out);
        } else {
            self.join_known_member(request, now_ms, settings, out);
        }
    }

    fn validate_join(&self, request: &JoinRequest, settings: &GroupSettings) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let timeout = request.session_timeout_ms;
        if timeout < settings.min_session_timeout_ms || timeout > settings.max_session_timeout_ms {
            return Err(ResponseError::InvalidSessionTimeout);
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        let others: Vec<&Member> = self.members.iter().filter(|m| m.id != request.member_id).collect();
        if others.is_empty() {
            return Ok(());
        }
        let same_type = self.protocol_type.as_deref() == Some(request.protocol_type.as_str());
        let shared = request.protocols.iter().any(|p| others.iter().all(|m| m.supports(&p.name)));
        if !same_type || !shared {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        Ok(())
    }

    fn join_unknown_member(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        settings: &GroupSettings,
        out: &mut Vec<Action>,
    ) {
        let new_id = request.new_member_id.clone();
        if let Some(instance_id) = request.instance_id.as_deref() {
            if let Some(index) = self.static_member_index(instance_id) {
                self.replace_static_member(index, request, now_ms, settings, out);
                return;
            }
            self.add_member(request, new_id, now_ms, settings, out);
        } else if request.require_known_member_id {
            if self.members.len() + self.pending_members.len() >= settings.max_size {
                out.push(Action::Join(request.waiter, JoinOutcome::error(ResponseError::GroupMaxSizeReached, "")));
                return;
            }
            self.pending_members.insert(new_id.clone(), now_ms + i64::from(request.session_timeout_ms));
            out.push(Action::Join(request.waiter, JoinOutcome::error(ResponseError::MemberIdRequired, &new_id)));
        } else {
            self.add_member(request, new_id, now_ms, settings, out);
        }
    }

    fn join_known_member(
        &mut self,
        request: JoinRequest,
        now_ms: i64,
        settings: &GroupSettings,
        out: &mut Vec<Action>,
    ) {
        let member_id = request.member_id.clone();
        if self.pending_members.remove(&member_id).is_some() {
            self.add_member(request, member_id, now_ms, settings, out);
            return;
        }
        if let Err(error) = self.check_fencing(&member_id, request.instance_id.as_deref()) {
            out.push(Action::Join(request.waiter, JoinOutcome::error(error, &member_id)));
            return;
        }
        let Some(index) = self.member_index(&member_id) else {
            out.push(Action::Join(request.waiter, JoinOutcome::error(ResponseError::UnknownMemberId, &member_id)));
            return;
        };
        let unchanged = self.members[index].protocols == request.protocols;
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member(index, &request, now_ms, out);
                self.maybe_complete_join(now_ms, out);
            }
            GroupState::CompletingRebalance if unchanged => {
                self.members[index].session_deadline_ms = now_ms + i64::from(request.session_timeout_ms);
                out.push(Action::Join(request.waiter, self.join_outcome(index, false)));
            }
            GroupState::Stable if unchanged && !is_leader => {
                self.members[index].session_deadline_ms = now_ms + i64::from(request.session_timeout_ms);
                out.push(Action::Join(request.waiter, self.join_outcome(index, false)));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(index, &request, now_ms, out);
                self.prepare_rebalance(now_ms, settings, out);
            }
            GroupState::Empty | GroupState::Dead => {
                out.push(Action::Join(request.waiter, JoinOutcome::error(ResponseError::UnknownMemberId, &member_id)));
            }
        }
    }

    /// A static member rejoining under its `group.instance.id` with no member
    /// id: it takes a new member id, and the old one is fenced. A stable
    /// group whose member kept its subscription does not rebalance.
    fn replace_static_member(
        &mut self,
        index: usize,
        request: JoinRequest,
        now_ms: i64,
        settings: &GroupSettings,
        out: &mut Vec<Action>,
    ) {
        let old_id = std::mem::replace(&mut self.members[index].id, request.new_member_id.clone());
        let member = &mut self.members[index];
        if let Some(waiter) = member.pending_join.take() {
            out.push(Action::Join(waiter, JoinOutcome::error(ResponseError::FencedInstanceId, &old_id)));
        }
        if let Some(waiter) = member.pending_sync.take() {
            out.push(Action::Sync(waiter, SyncOutcome::error(ResponseError::FencedInstanceId)));
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(request.new_member_id.clone());
        }
        let unchanged = self.members[index].protocols == request.protocols;
        if self.state == GroupState::Stable && unchanged {
            let member = &mut self.members[index];
            member.client_id.clone_from(&request.client_id);
            member.client_host.clone_from(&request.client_host);
            member.session_timeout_ms = request.session_timeout_ms;
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            member.session_deadline_ms = now_ms + i64::from(request.session_timeout_ms);
            out.push(Action::Persist);
            let is_leader = self.leader.as_deref() == Some(request.new_member_id.as_str());
            let skip = is_leader && request.supports_skip_assignment;
            out.push(Action::Join(request.waiter, self.join_outcome(index, skip)));
            return;
        }
        self.update_member(index, &request, now_ms, out);
        match self.state {
            GroupState::PreparingRebalance => self.maybe_complete_join(now_ms, out),
            _ => self.prepare_rebalance(now_ms, settings, out),
        }
    }

    fn add_member(
        &mut self,
        request: JoinRequest,
        member_id: String,
        now_ms: i64,
        settings: &GroupSettings,
        out: &mut Vec<Action>,
    ) {
        if self.members.len() >= settings.max_size {
            out.push(Action::Join(request.waiter, JoinOutcome::error(ResponseError::GroupMaxSizeReached, &member_id)));
            return;
        }
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        self.members.push(Member {
            id: member_id,
            instance_id: request.instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocols: request.protocols,
            assignment: Bytes::new(),
            pending_join: Some(request.waiter),
            pending_sync: None,
            session_deadline_ms: now_ms + i64::from(request.session_timeout_ms),
        });
        if self.state == GroupState::PreparingRebalance {
            if let (Some(bound), Some(deadline)) = (self.initial_delay_bound_ms, self.join_deadline_ms.as_mut()) {
                *deadline = (now_ms + i64::from(settings.initial_rebalance_delay_ms)).min(bound);
            }
            self.maybe_complete_join(now_ms, out);
        } else {
            self.prepare_rebalance(now_ms, settings, out);
        }
    }

    /// Records a member's (re)join: new metadata and a waiting JoinGroup.
    fn update_member(&mut self, index: usize, request: &JoinRequest, now_ms: i64, out: &mut Vec<Action>) {
        let member = &mut self.members[index];
        if let Some(previous) = member.pending_join.replace(request.waiter) {
            // The client gave up on its earlier JoinGroup and sent another.
            out.push(Action::Join(previous, JoinOutcome::error(ResponseError::RebalanceInProgress, &member.id)));
        }
        member.client_id.clone_from(&request.client_id);
        member.client_host.clone_from(&request.client_host);
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.protocols.clone_from(&request.protocols);
        member.session_deadline_ms = now_ms + i64::from(request.session_timeout_ms);
    }

    fn rebalance_timeout_ms(&self) -> i64 {
        self.members.iter().map(|m| i64::from(m.rebalance_timeout_ms)).max().unwrap_or(0)
    }

    /// Starts a rebalance: every member must rejoin (used after an online
    /// downgrade from a consumer group).
    pub fn request_rebalance(&mut self, now_ms: i64, settings: &GroupSettings, out: &mut Vec<Action>) {
        self.prepare_rebalance(now_ms, settings, out);
    }

    /// Answers every waiting JoinGroup and SyncGroup with `error` (the
    /// group is about to become a consumer group: an online upgrade).
    pub fn abort_waiting(&mut self, error: ResponseError, out: &mut Vec<Action>) {
        for member in &mut self.members {
            if let Some(waiter) = member.pending_join.take() {
                out.push(Action::Join(waiter, JoinOutcome::error(error, &member.id)));
            }
            // The assignment stays: it is what the member owns now.
            if let Some(waiter) = member.pending_sync.take() {
                out.push(Action::Sync(waiter, SyncOutcome::error(error)));
            }
        }
    }

    fn prepare_rebalance(&mut self, now_ms: i64, settings: &GroupSettings, out: &mut Vec<Action>) {
        if self.state == GroupState::CompletingRebalance {
            self.fail_pending_syncs(ResponseError::RebalanceInProgress, out);
        }
        let was_empty = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        self.sync_deadline_ms = None;
        let rebalance_ms = self.rebalance_timeout_ms();
        let delay_ms = i64::from(settings.initial_rebalance_delay_ms);
        if was_empty && delay_ms > 0 {
            self.join_deadline_ms = Some(now_ms + delay_ms.min(rebalance_ms));
            self.initial_delay_bound_ms = Some(now_ms + rebalance_ms);
        } else {
            self.join_deadline_ms = Some(now_ms + rebalance_ms);
            self.initial_delay_bound_ms = None;
        }
        self.maybe_complete_join(now_ms, out);
    }

    fn fail_pending_syncs(&mut self, error: ResponseError, out: &mut Vec<Action>) {
        for member in &mut self.members {
            member.assignment = Bytes::new();
            if let Some(waiter) = member.pending_sync.take() {
                out.push(Action::Sync(waiter, SyncOutcome::error(error)));
            }
        }
    }

    /// Completes the join phase once every member has rejoined and no
    /// member id handed out is still expected (and no initial delay runs).
    fn maybe_complete_join(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        if self.state != GroupState::PreparingRebalance || self.initial_delay_bound_ms.is_some() {
            return;
        }
        if self.members.iter().all(|m| m.pending_join.is_some()) && self.pending_members.is_empty() {
            self.complete_join(now_ms, out);
        }
    }

    fn complete_join(&mut self, now_ms: i64, out: &mut Vec<Action>) {
        // Dynamic members that did not rejoin in time are gone; static ones
        // stay until their session expires.
        self.members.retain(|m| m.pending_join.is_some() || m.instance_id.is_some());
        self.join_deadline_ms = None;
        self.initial_delay_bound_ms = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            out.push(Action::Persist);
            return;
        }
        self.protocol = self.select_protocol();
        let leader_rejoined = self
            .leader
            .as_deref()
            .and_then(|id| self.member_index(id))
            .is_some_and(|index| self.members[index].pending_join.is_some());
        if !leader_rejoined {
            let first = self.members.iter().find(|m| m.pending_join.is_some()).unwrap_or(&self.members[0]);
            self.leader = Some(first.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        self.sync_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
        for index in 0..self.members.len() {
            if let Some(waiter) = self.members[index].pending_join.take() {
                let member = &mut self.members[index];
                member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                out.push(Action::Join(waiter, self.join_outcome(index, false)));
            }
        }
    }

    /// The protocol every member supports that most members list first.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.iter().all(|m| m.supports(name)))
            .collect();
        let votes = |name: &str| {
            self.members
                .iter()
                .filter(|m| m.protocols.iter().map(|p| p.name.as_str()).find(|n| candidates.contains(n)) == Some(name))
                .count()
        };
        // max_by_key keeps the last maximum; reversing keeps the first-listed one on ties.
        candidates.iter().rev().max_by_key(|name| votes(name)).map(|name| (*name).to_owned())
    }

    fn join_outcome(&self, index: usize, skip_assignment: bool) -> JoinOutcome {
        let member = &self.members[index];
        let leader = self.leader.clone().unwrap_or_default();
        let is_leader = leader == member.id;
        let members = if is_leader && (skip_assignment || self.state == GroupState::CompletingRebalance) {
            self.members
                .iter()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(self.protocol.as_deref()),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinOutcome {
            error: None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader,
            member_id: member.id.clone(),
            members,
            skip_assignment,
        }
    }

    pub fn sync(&mut self, request: SyncRequest, now_ms: i64, out: &mut Vec<Action>) {
        let waiter = request.waiter;
        match self.validate_sync(&request) {
            Err(error) => out.push(Action::Sync(waiter, SyncOutcome::error(error))),
            Ok(index) => {
                let member = &mut self.members[index];
                member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
                if self.state == GroupState::Stable {
                    out.push(Action::Sync(waiter, self.sync_outcome(index)));
                    return;
                }
                member.pending_sync = Some(waiter);
                if self.leader.as_deref() == Some(request.member_id.as_str()) {
                    self.install_assignment(request.assignments, out);
                }
            }
        }
    }

    fn validate_sync(&self, request: &SyncRequest) -> Result<usize, ResponseError> {
        let index = self.check_member(&request.member_id, request.instance_id.as_deref(), request.generation_id)?;
        let type_matches = request.protocol_type.as_ref().is_none_or(|t| Some(t) == self.protocol_type.as_ref());
        let name_matches = request.protocol_name.as_ref().is_none_or(|n| Some(n) == self.protocol.as_ref());
        if !type_matches || !name_matches {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(index),
        }
    }

    /// The leader's SyncGroup: every member gets its part (empty if the
    /// leader gave none), the group becomes stable and is persisted first.
    fn install_assignment(&mut self, assignments: Vec<(String, Bytes)>, out: &mut Vec<Action>) {
        let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
        for member in &mut self.members {
            member.assignment = by_member.remove(&member.id).unwrap_or_default();
        }
        self.state = GroupState::Stable;
        self.sync_deadline_ms = None;
        out.push(Action::Persist);
        for index in 0..self.members.len() {
            if let Some(waiter) = self.members[index].pending_sync.take() {
                out.push(Action::Sync(waiter, self.sync_outcome(index)));
            }
        }
    }

    fn sync_outcome(&self, index: usize) -> SyncOutcome {
        SyncOutcome {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self.members[index].assignment.clone(),
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Result<(), ResponseError> {
        let index = self.check_member(member_id, instance_id, generation)?;
        let member = &mut self.members[index];
        member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        match self.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
        }
    }

    /// Whether a member of this generation may commit offsets (an empty
    /// group takes commits from anyone, e.g. admin tools and assign-mode
    /// consumers with generation -1). Counts as a heartbeat.
    pub fn validate_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now_ms: i64,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation < 0 && self.members.is_empty() {
            return Ok(());
        }
        let index = self.check_member(member_id, instance_id, generation)?;
        let member = &mut self.members[index];
        member.session_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
        if self.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Removes members (LeaveGroup); one result per member, in order.
    pub fn leave(
        &mut self,
        leaving: &[(String, Option<String>)],
        now_ms: i64,
        settings: &GroupSettings,
        out: &mut Vec<Action>,
    ) -> Vec<Result<(), ResponseError>> {
        let mut removed_any = false;
        let results = leaving
            .iter()
            .map(|(member_id, instance_id)| {
                let result = self.remove_leaving_member(member_id, instance_id.as_deref(), out);
                removed_any |= result.is_ok();
                result
            })
            .collect();
        if removed_any {
            self.after_members_removed(now_ms, settings, out);
        }
        results
    }

    fn remove_leaving_member(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        out: &mut Vec<Action>,
    ) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let index = match instance_id {
            Some(instance_id) => {
                let index = self.static_member_index(instance_id).ok_or(ResponseError::UnknownMemberId)?;
                if !member_id.is_empty() && self.members[index].id != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                index
            }
            None => {
                if self.pending_members.remove(member_id).is_some() {
                    return Ok(());
                }
                self.member_index(member_id).ok_or(ResponseError::UnknownMemberId)?
            }
        };
        self.remove_member(index, out);
        Ok(())
    }

    fn remove_member(&mut self, index: usize, out: &mut Vec<Action>) {
        let member = self.members.remove(index);
        if let Some(waiter) = member.pending_join {
            out.push(Action::Join(waiter, JoinOutcome::error(ResponseError::UnknownMemberId, &member.id)));
        }
        if let Some(waiter) = member.pending_sync {
            out.push(Action::Sync(waiter, SyncOutcome::error(ResponseError::UnknownMemberId)));
        }
    }

    fn after_members_removed(&mut self, now_ms: i64, settings: &GroupSettings, out: &mut Vec<Action>) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now_ms, settings, out),
            GroupState::PreparingRebalance => self.maybe_complete_join(now_ms, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// The earliest time at which [`Self::tick`] has something to do.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let sessions = self
            .members
            .iter()
            .filter(|m| m.pending_join.is_none() && m.pending_sync.is_none())
            .map(|m| m.session_deadline_ms);
        let pending = self.pending_members.values().copied();
        sessions.chain(pending).chain(self.join_deadline_ms).chain(self.sync_deadline_ms).min()
    }

    /// Applies what time has made due: expired sessions, a join phase past
    /// its deadline, members that never sent SyncGroup.
    pub fn tick(&mut self, now_ms: i64, settings: &GroupSettings, out: &mut Vec<Action>) {
        let pending_before = self.pending_members.len();
        self.pending_members.retain(|_, deadline| *deadline > now_ms);
        let mut removed_any = self.pending_members.len() != pending_before;
        while let Some(index) = self
            .members
            .iter()
            .position(|m| m.pending_join.is_none() && m.pending_sync.is_none() && m.session_deadline_ms <= now_ms)
        {
            tracing::info!(member = %self.members[index].id, "group member session expired");
            self.remove_member(index, out);
            removed_any = true;
        }
        if removed_any {
            self.after_members_removed(now_ms, settings, out);
        }
        if self.state == GroupState::PreparingRebalance && self.join_deadline_ms.is_some_and(|d| d <= now_ms) {
            self.complete_join(now_ms, out);
        }
        if self.state == GroupState::CompletingRebalance && self.sync_deadline_ms.is_some_and(|d| d <= now_ms) {
            // Members that never sent SyncGroup are dropped; the rest rejoin.
            self.members.retain(|m| m.pending_sync.is_some());
            self.prepare_rebalance(now_ms, settings, out);
        }
    }
}

#[cfg(test)]
#[path = "classic_tests.rs"]
mod tests;
