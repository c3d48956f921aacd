//! The classic group state machine under simulated time: every scenario
//! drives `join`/`sync`/`heartbeat`/`leave`/`tick` with explicit clock
//! values and checks the actions that come out.

use super::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

fn settings(initial_delay_ms: i32) -> GroupSettings {
    GroupSettings {
        min_session_timeout_ms: 1_000,
        max_session_timeout_ms: 60_000,
        initial_rebalance_delay_ms: initial_delay_ms,
        max_size: 10,
    }
}

fn join_request(waiter: WaiterId, member_id: &str, new_id: &str) -> JoinRequest {
    JoinRequest {
        waiter,
        member_id: member_id.to_owned(),
        new_member_id: new_id.to_owned(),
        instance_id: None,
        client_id: "client".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".to_owned(),
        protocols: vec![
            Protocol { name: "range".to_owned(), metadata: Bytes::from(format!("sub-{new_id}{member_id}")) },
            Protocol { name: "roundrobin".to_owned(), metadata: Bytes::new() },
        ],
        require_known_member_id: true,
        supports_skip_assignment: false,
    }
}

fn sync_request(waiter: WaiterId, member_id: &str, generation: i32, assignments: &[(&str, &str)]) -> SyncRequest {
    SyncRequest {
        waiter,
        member_id: member_id.to_owned(),
        instance_id: None,
        generation_id: generation,
        protocol_type: Some("consumer".to_owned()),
        protocol_name: Some("range".to_owned()),
        assignments: assignments.iter().map(|(m, a)| ((*m).to_owned(), Bytes::from((*a).to_owned()))).collect(),
    }
}

fn joins(actions: &[Action]) -> Vec<(WaiterId, JoinOutcome)> {
    actions.iter().filter_map(|a| if let Action::Join(w, o) = a { Some((*w, o.clone())) } else { None }).collect()
}

fn syncs(actions: &[Action]) -> Vec<(WaiterId, SyncOutcome)> {
    actions.iter().filter_map(|a| if let Action::Sync(w, o) = a { Some((*w, o.clone())) } else { None }).collect()
}

/// Two dynamic members join (with the KIP-394 member-id round trip), the
/// leader assigns, both get their part: the group is stable at generation 1.
fn stable_pair(group: &mut ClassicGroup, s: &GroupSettings) {
    let mut out = Vec::new();
    group.join(join_request(1, "", "a"), 0, s, &mut out);
    group.join(join_request(2, "", "b"), 0, s, &mut out);
    assert_eq!(
        joins(&out).iter().map(|(_, o)| (o.error, o.member_id.as_str())).collect::<Vec<_>>(),
        vec![(Some(ResponseError::MemberIdRequired), "a"), (Some(ResponseError::MemberIdRequired), "b")]
    );
    out.clear();
    group.join(join_request(3, "a", "x"), 1, s, &mut out);
    assert!(out.is_empty(), "the join waits for the other pending member");
    group.join(join_request(4, "b", "x"), 2, s, &mut out);
    let answered = joins(&out);
    assert_eq!(answered.len(), 2);
    let leader = &answered.iter().find(|(w, _)| *w == 3).expect("leader answer").1;
    assert_eq!((leader.generation_id, leader.leader.as_str(), leader.members.len()), (1, "a", 2));
    assert_eq!(leader.protocol_name.as_deref(), Some("range"));
    let follower = &answered.iter().find(|(w, _)| *w == 4).expect("follower answer").1;
    assert!(follower.members.is_empty(), "only the leader gets the member list");
    out.clear();
    group.sync(sync_request(5, "b", 1, &[]), 3, &mut out);
    assert!(out.is_empty(), "followers wait for the leader's assignment");
    group.sync(sync_request(6, "a", 1, &[("a", "pa"), ("b", "pb")]), 4, &mut out);
    assert_eq!(out.first(), Some(&Action::Persist), "persisted before anyone is answered");
    let assigned: Vec<_> = syncs(&out).into_iter().map(|(w, o)| (w, o.assignment)).collect();
    assert_eq!(assigned, vec![(6, Bytes::from("pa")), (5, Bytes::from("pb"))]);
    assert_eq!(group.state(), GroupState::Stable);
}

#[test]
fn members_join_sync_and_get_their_assignment() {
    let mut group = ClassicGroup::new();
    stable_pair(&mut group, &settings(0));
    assert_eq!(group.generation(), 1);
    assert_eq!(group.heartbeat("a", None, 1, 5), Ok(()));
    let mut out = Vec::new();
    group.sync(sync_request(7, "b", 1, &[]), 6, &mut out);
    assert_eq!(syncs(&out)[0].1.assignment, Bytes::from("pb"), "a stable group answers SyncGroup at once");
}

#[test]
fn the_initial_delay_collects_members_before_the_first_rebalance() {
    let s = settings(3_000);
    let mut group = ClassicGroup::new();
    let mut out = Vec::new();
    let mut request = join_request(1, "", "a");
    request.require_known_member_id = false;
    group.join(request, 0, &s, &mut out);
    assert!(out.is_empty());
    assert_eq!(group.next_deadline_ms(), Some(3_000));
    let mut second = join_request(2, "", "b");
    second.require_known_member_id = false;
    group.join(second, 2_000, &s, &mut out);
    assert_eq!(group.next_deadline_ms(), Some(5_000), "a join during the delay extends it");
    group.tick(4_999, &s, &mut out);
    assert!(out.is_empty());
    group.tick(5_000, &s, &mut out);
    assert_eq!(joins(&out).len(), 2);
    assert_eq!(group.state(), GroupState::CompletingRebalance);
}

#[test]
fn an_expired_session_removes_the_member_and_rebalances_the_rest() {
    let s = settings(0);
    let mut group = ClassicGroup::new();
    stable_pair(&mut group, &s);
    assert_eq!(group.heartbeat("a", None, 1, 9_000), Ok(()));
    let mut out = Vec::new();
    group.tick(10_004, &s, &mut out);
    assert_eq!(group.state(), GroupState::PreparingRebalance, "b's session (renewed at 3) expired");
    assert_eq!(group.members().len(), 1);
    assert_eq!(group.heartbeat("a", None, 1, 10_005), Err(ResponseError::RebalanceInProgress));
    group.join(join_request(8, "a", "x"), 10_006, &s, &mut out);
    let answered = joins(&out);
    assert_eq!(answered.len(), 1);
    assert_eq!((answered[0].1.generation_id, answered[0].1.members.len()), (2, 1));
}

#[test]
fn a_member_that_does_not_rejoin_in_time_is_dropped() {
    let s = settings(0);
    let mut group = ClassicGroup::new();
    stable_pair(&mut group, &s);
    let mut out = Vec::new();
    // a's metadata changes: rebalance; b never rejoins within the rebalance timeout.
    let mut changed = join_request(9, "a", "x");
    changed.protocols.reverse();
    group.join(changed, 100, &s, &mut out);
    assert!(out.is_empty());
    group.heartbeat("b", None, 1, 5_000).expect_err("b is told to rejoin");
    group.tick(100 + i64::from(REBALANCE_MS), &s, &mut out);
    let answered = joins(&out);
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].1.members.len(), 1, "b was dropped");
    assert_eq!(answered[0].1.protocol_name.as_deref(), Some("roundrobin"), "the only member's first choice");
}

#[test]
fn leaving_members_trigger_a_rebalance_and_the_last_one_empties_the_group() {
    let s = settings(0);
    let mut group = ClassicGroup::new();
    stable_pair(&mut group, &s);
    let mut out = Vec::new();
    let results = group.leave(&[("b".to_owned(), None), ("nobody".to_owned(), None)], 10, &s, &mut out);
    assert_eq!(results, vec![Ok(()), Err(ResponseError::UnknownMemberId)]);
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    group.leave(&[("a".to_owned(), None)], 11, &s, &mut out);
    assert_eq!(group.state(), GroupState::Empty);
    assert_eq!(group.generation(), 2);
    assert!(out.contains(&Action::Persist), "the empty group is persisted");
    assert!(group.is_empty());
}

#[test]
fn a_static_member_rejoining_a_stable_group_keeps_its_assignment_without_a_rebalance() {
    let s = settings(0);
    let mut group = ClassicGroup::new();
    let mut out = Vec::new();
    let mut first = join_request(1, "", "old");
    first.instance_id = Some("host-1".to_owned());
    group.join(first.clone(), 0, &s, &mut out);
    assert_eq!(joins(&out)[0].1.error, None, "static members need no member-id round trip");
    group.sync(sync_request(2, "old", 1, &[("old", "p0")]), 1, &mut out);
    out.clear();
    let mut again = first;
    again.waiter = 3;
    again.new_member_id = "new".to_owned();
    group.join(again, 500, &s, &mut out);
    let answered = joins(&out);
    assert_eq!((answered[0].1.member_id.as_str(), answered[0].1.generation_id), ("new", 1));
    assert_eq!(group.state(), GroupState::Stable, "no rebalance");
    assert_eq!(group.heartbeat("old", Some("host-1"), 1, 600), Err(ResponseError::FencedInstanceId));
    out.clear();
    group.sync(sync_request(4, "new", 1, &[]), 700, &mut out);
    assert_eq!(syncs(&out)[0].1.assignment, Bytes::from("p0"));
}

#[test]
fn requests_with_wrong_identity_get_kafkas_errors() {
    let s = settings(0);
    let mut group = ClassicGroup::new();
    stable_pair(&mut group, &s);
    assert_eq!(group.heartbeat("zzz", None, 1, 10), Err(ResponseError::UnknownMemberId));
    assert_eq!(group.heartbeat("a", None, 7, 10), Err(ResponseError::IllegalGeneration));
    let mut out = Vec::new();
    group.join(join_request(9, "zzz", "x"), 10, &s, &mut out);
    assert_eq!(joins(&out)[0].1.error, Some(ResponseError::UnknownMemberId));
    out.clear();
    let mut other_type = join_request(10, "", "c");
    other_type.protocol_type = "connect".to_owned();
    group.join(other_type, 10, &s, &mut out);
    assert_eq!(joins(&out)[0].1.error, Some(ResponseError::InconsistentGroupProtocol));
    out.clear();
    let mut bad_timeout = join_request(11, "", "c");
    bad_timeout.session_timeout_ms = 100;
    group.join(bad_timeout, 10, &s, &mut out);
    assert_eq!(joins(&out)[0].1.error, Some(ResponseError::InvalidSessionTimeout));
    out.clear();
    group.sync(sync_request(12, "a", 0, &[]), 10, &mut out);
    assert_eq!(syncs(&out)[0].1.error, Some(ResponseError::IllegalGeneration));
}

#[test]
fn commits_are_checked_against_membership_and_generation() {
    let s = settings(0);
    let mut empty = ClassicGroup::new();
    assert_eq!(empty.validate_commit("", None, -1, 0), Ok(()), "anyone may commit to an empty group");
    let mut group = ClassicGroup::new();
    stable_pair(&mut group, &s);
    assert_eq!(group.validate_commit("", None, -1, 10), Err(ResponseError::UnknownMemberId));
    assert_eq!(group.validate_commit("a", None, 0, 10), Err(ResponseError::IllegalGeneration));
    assert_eq!(group.validate_commit("a", None, 1, 10), Ok(()));
    let mut out = Vec::new();
    let mut changed = join_request(9, "a", "x");
    changed.protocols.reverse();
    group.join(changed, 20, &s, &mut out);
    assert_eq!(group.validate_commit("b", None, 1, 21), Ok(()), "commits are allowed while members rejoin");
}

#[test]
fn a_leader_that_never_syncs_is_dropped_after_the_rebalance_timeout() {
    let s = settings(0);
    let mut group = ClassicGroup::new();
    let mut out = Vec::new();
    for (waiter, id) in [(1, "a"), (2, "b")] {
        let mut request = join_request(waiter, "", id);
        request.require_known_member_id = false;
        group.join(request, 0, &s, &mut out);
    }
    // The first member joined alone, so it formed generation 1; b's join
    // started generation 2's rebalance, which a must rejoin.
    group.join(join_request(3, "a", "x"), 1, &s, &mut out);
    assert_eq!(group.state(), GroupState::CompletingRebalance);
    let generation = group.generation();
    out.clear();
    group.sync(sync_request(4, "b", generation, &[]), 2, &mut out);
    // a (the leader) heartbeats but never sends SyncGroup.
    for at in [9_000, 18_000, 27_000] {
        group.heartbeat("a", None, generation, at).expect("a is in good standing");
    }
    group.tick(1 + i64::from(REBALANCE_MS), &s, &mut out);
    assert_eq!(syncs(&out)[0].1.error, Some(ResponseError::RebalanceInProgress));
    assert_eq!(group.members().iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), vec!["b"]);
}
