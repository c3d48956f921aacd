//! Mixed groups under simulated time: classic members joining, syncing,
//! heartbeating and leaving a consumer group next to KIP-848 members, and
//! the conversions between classic and consumer groups.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as Owned;
use kafka_protocol::messages::{ConsumerProtocolSubscription, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use uuid::Uuid;

use super::*;
use crate::groups::assignor::TopicPartition;
use crate::groups::consumer::HeartbeatRequest;

const TOPIC: Uuid = Uuid::from_bytes([7; 16]);

fn settings() -> ConsumerSettings {
    ConsumerSettings { session_timeout_ms: 45_000, heartbeat_interval_ms: 5_000, max_size: 10 }
}

fn classic_settings() -> GroupSettings {
    GroupSettings {
        min_session_timeout_ms: 6_000,
        max_session_timeout_ms: 1_800_000,
        initial_rebalance_delay_ms: 0,
        max_size: 10,
    }
}

fn image() -> TopicImage {
    TopicImage { by_name: BTreeMap::from([("orders".to_owned(), (TOPIC, 4))]) }
}

/// A version-1 consumer subscription to `orders`, owning `owned`.
fn metadata(owned: &[i32]) -> Bytes {
    let mut subscription = ConsumerProtocolSubscription::default();
    subscription.topics = vec![StrBytes::from_static_str("orders")];
    if !owned.is_empty() {
        let mut topic = Owned::default();
        topic.topic = TopicName(StrBytes::from_static_str("orders"));
        topic.partitions = owned.to_vec();
        subscription.owned_partitions = vec![topic];
    }
    let mut out = BytesMut::new();
    out.put_i16(1);
    subscription.encode(&mut out, 1).expect("encodes");
    out.freeze()
}

fn classic_join(member_id: &str, owned: &[i32]) -> JoinRequest {
    JoinRequest {
        waiter: 0,
        member_id: member_id.to_owned(),
        new_member_id: "fresh-id".to_owned(),
        instance_id: None,
        client_id: "classic".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".to_owned(),
        protocols: vec![Protocol { name: "range".to_owned(), metadata: metadata(owned) }],
        require_known_member_id: true,
        supports_skip_assignment: true,
    }
}

fn sync(member_id: &str, generation: i32) -> SyncRequest {
    SyncRequest {
        waiter: 0,
        member_id: member_id.to_owned(),
        instance_id: None,
        generation_id: generation,
        protocol_type: Some("consumer".to_owned()),
        protocol_name: Some("range".to_owned()),
        assignments: Vec::new(),
    }
}

fn consumer_join(member: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member.to_owned(),
        member_epoch: 0,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 30_000,
        subscribed_names: Some(vec!["orders".to_owned()]),
        subscribed_regex: None,
        server_assignor: None,
        owned: Some(Vec::new()),
        client_id: "modern".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
    }
}

fn consumer_beat(member: &str, epoch: i32, owned: &BTreeSet<TopicPartition>) -> HeartbeatRequest {
    HeartbeatRequest {
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        subscribed_names: None,
        owned: Some(owned.iter().copied().collect()),
        ..consumer_join(member)
    }
}

fn assigned(outcome: &SyncOutcome) -> Vec<i32> {
    let decoded = embedded::decode_assignment(&outcome.assignment, &image()).expect("assignment decodes");
    decoded.iter().map(|(_, p)| *p).collect()
}

/// A consumer group with one KIP-848 member owning all four partitions.
fn group_with_modern_member() -> (ConsumerGroup, i32) {
    let mut group = ConsumerGroup::default();
    let (outcome, _) = group.heartbeat(consumer_join("modern"), 0, &image(), &settings()).expect("joins");
    assert_eq!(outcome.assignment.map(|a| a.len()), Some(4));
    (group, outcome.member_epoch)
}

#[test]
fn a_classic_member_joins_and_gets_its_share_once_the_other_member_revokes() {
    let (mut group, modern_epoch) = group_with_modern_member();
    let required = group.classic_join(&classic_join("", &[]), 10, &image(), &settings()).expect("answers");
    assert_eq!(required.error, Some(ResponseError::MemberIdRequired));
    assert_eq!(required.member_id, "fresh-id");
    let joined = group.classic_join(&classic_join("fresh-id", &[]), 20, &image(), &settings()).expect("joins");
    assert_eq!(joined.error, None);
    assert_eq!(joined.leader, "", "no client-side leader: the broker assigns");
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    let synced = group.classic_sync(&sync("fresh-id", joined.generation_id), 30, &image()).expect("syncs");
    assert!(assigned(&synced).is_empty(), "the partitions are still the other member's");
    assert_eq!(group.members["fresh-id"].state, MemberState::UnreleasedPartitions);
    // While they are not free, the classic member keeps its generation.
    assert_eq!(group.classic_heartbeat("fresh-id", None, joined.generation_id, 40), Ok(()));

    let all: BTreeSet<TopicPartition> = (0..4).map(|p| (TOPIC, p)).collect();
    let (kept, _) = group
        .heartbeat(consumer_beat("modern", modern_epoch, &all), 50, &image(), &settings())
        .expect("test step succeeds");
    let kept = kept.assignment.expect("told what to keep");
    assert_eq!(kept.len(), 2);
    group.heartbeat(consumer_beat("modern", modern_epoch, &kept), 60, &image(), &settings()).expect("revoked");
    // Its partitions are free now: the classic member is told to rejoin.
    assert_eq!(
        group.classic_heartbeat("fresh-id", None, joined.generation_id, 70),
        Err(ResponseError::RebalanceInProgress)
    );
    let rejoined = group.classic_join(&classic_join("fresh-id", &[]), 80, &image(), &settings()).expect("rejoins");
    let synced = group.classic_sync(&sync("fresh-id", rejoined.generation_id), 90, &image()).expect("syncs");
    let theirs: Vec<i32> = kept.iter().map(|(_, p)| *p).collect();
    let mine = assigned(&synced);
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|p| !theirs.contains(p)), "no partition has two owners: {mine:?} {theirs:?}");
    assert_eq!(group.classic_heartbeat("fresh-id", None, rejoined.generation_id, 100), Ok(()));
    assert_eq!(group.state_name(), "Stable");
}

#[test]
fn a_cooperative_classic_member_revokes_before_the_new_member_gets_partitions() {
    let mut group = ConsumerGroup::default();
    let mut join = classic_join("classic", &[]);
    join.require_known_member_id = false;
    let joined = group.classic_join(&join, 0, &image(), &settings()).expect("joins");
    let synced = group.classic_sync(&sync("classic", joined.generation_id), 1, &image()).expect("syncs");
    assert_eq!(assigned(&synced), vec![0, 1, 2, 3]);

    let (modern, _) = group.heartbeat(consumer_join("modern"), 10, &image(), &settings()).expect("joins");
    assert_eq!(modern.assignment, Some(BTreeSet::new()));
    let generation = joined.generation_id;
    assert_eq!(group.classic_heartbeat("classic", None, generation, 20), Err(ResponseError::RebalanceInProgress));
    // A cooperative member rejoins still owning everything: it is told what to keep.
    let rejoined = group
        .classic_join(&classic_join("classic", &[0, 1, 2, 3]), 30, &image(), &settings())
        .expect("test step succeeds");
    assert_eq!(rejoined.generation_id, generation, "the epoch moves only once it has revoked");
    let kept = assigned(&group.classic_sync(&sync("classic", generation), 40, &image()).expect("syncs"));
    assert_eq!(kept.len(), 2);
    assert_eq!(group.classic_heartbeat("classic", None, generation, 45), Err(ResponseError::RebalanceInProgress));
    let done = group.classic_join(&classic_join("classic", &kept), 50, &image(), &settings()).expect("rejoins");
    assert!(done.generation_id > generation);
    let (modern, _) = group
        .heartbeat(consumer_beat("modern", modern.member_epoch, &BTreeSet::new()), 60, &image(), &settings())
        .expect("test step succeeds");
    assert_eq!(modern.assignment.map(|a| a.len()), Some(2), "the revoked partitions go to the new member");
}

#[test]
fn classic_requests_are_checked_like_kafka_checks_them() {
    let (mut group, _) = group_with_modern_member();
    let mut connect = classic_join("", &[]);
    connect.protocol_type = "connect".to_owned();
    assert_eq!(group.classic_join(&connect, 0, &image(), &settings()), Err(ResponseError::InconsistentGroupProtocol));
    let mut undecodable = classic_join("x", &[]);
    undecodable.require_known_member_id = false;
    undecodable.member_id = String::new();
    undecodable.protocols[0].metadata = Bytes::from_static(b"\x00");
    assert_eq!(
        group.classic_join(&undecodable, 0, &image(), &settings()),
        Err(ResponseError::InconsistentGroupProtocol)
    );
    let mut static_ghost = classic_join("ghost", &[]);
    static_ghost.instance_id = Some("instance-1".to_owned());
    assert_eq!(group.classic_join(&static_ghost, 0, &image(), &settings()), Err(ResponseError::UnknownMemberId));

    let mut first = classic_join("", &[]);
    first.require_known_member_id = false;
    let joined = group.classic_join(&first, 0, &image(), &settings()).expect("v3 joins at once");
    let generation = joined.generation_id;
    let mut other_protocol = classic_join("", &[]);
    other_protocol.protocols[0].name = "roundrobin".to_owned();
    assert_eq!(
        group.classic_join(&other_protocol, 0, &image(), &settings()),
        Err(ResponseError::InconsistentGroupProtocol),
        "a joining classic member must share a protocol with the classic members"
    );
    assert_eq!(
        group.classic_sync(&sync("fresh-id", generation + 7), 1, &image()),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(group.classic_heartbeat("fresh-id", None, generation + 7, 1), Err(ResponseError::IllegalGeneration));
    assert_eq!(group.classic_heartbeat("modern", None, 1, 1), Err(ResponseError::UnknownMemberId));
    let beat = HeartbeatRequest { member_epoch: generation, ..consumer_join("fresh-id") };
    let refused = group.heartbeat(beat, 1, &image(), &settings()).map(|_| ()).map_err(|(e, _)| e);
    assert_eq!(refused, Err(ResponseError::UnknownMemberId), "classic members do not send KIP-848 heartbeats");
    assert_eq!(group.validate_commit("fresh-id", generation + 7), Err(ResponseError::IllegalGeneration));
    assert_eq!(group.validate_commit("fresh-id", generation), Ok(()));

    let left = group.classic_leave(&[("fresh-id".to_owned(), None), ("modern".to_owned(), None)]);
    assert_eq!(left, vec![Ok(()), Err(ResponseError::UnknownMemberId)], "LeaveGroup only removes classic members");
    assert!(!group.members.contains_key("fresh-id"));
}

#[test]
fn a_classic_member_that_never_rejoins_is_removed_after_its_rebalance_timeout() {
    let (mut group, _) = group_with_modern_member();
    let mut join = classic_join("", &[]);
    join.require_known_member_id = false;
    let joined = group.classic_join(&join, 0, &image(), &settings()).expect("joins");
    group.classic_sync(&sync("fresh-id", joined.generation_id), 1, &image()).expect("syncs");
    group.heartbeat(consumer_join("late"), 2, &image(), &settings()).expect("a third member joins");
    // Told to rejoin at 10; it keeps heartbeating but never does.
    for now in [10, 5_000, 10_000, 15_000, 20_000, 25_000] {
        let result = group.classic_heartbeat("fresh-id", None, joined.generation_id, now);
        assert_eq!(result, Err(ResponseError::RebalanceInProgress));
        assert!(!group.tick(now));
    }
    assert!(group.tick(30_010), "the join timeout (rebalance timeout) passed");
    assert!(!group.members.contains_key("fresh-id"));
}

#[test]
fn groups_convert_online_in_both_directions_keeping_assignments() {
    let (mut group, _) = group_with_modern_member();
    let mut join = classic_join("", &[]);
    join.require_known_member_id = false;
    group.classic_join(&join, 0, &image(), &settings()).expect("joins");
    assert!(group.has_classic_members() && !group.all_members_classic());
    group.members.remove("modern");
    group.group_epoch += 1;
    // Only classic members remain: back to a classic group, rebalancing.
    let classic_epoch = group.group_epoch;
    let (classic, _) = group.to_classic(&image(), 100, &classic_settings()).expect("downgrades");
    assert_eq!(classic.generation(), classic_epoch);
    assert_eq!(classic.protocol_type(), Some("consumer"));
    assert_eq!(classic.protocol(), Some("range"));
    assert_eq!(classic.state(), crate::groups::classic::GroupState::PreparingRebalance);
    assert_eq!(classic.members().len(), 1);

    // And up again: members keep what their last assignment gave them.
    let mut stable = ClassicGroup::restored(
        5,
        Some("consumer".to_owned()),
        Some("range".to_owned()),
        Some("a".to_owned()),
        vec![Member::restored(
            "a".to_owned(),
            None,
            ("c".to_owned(), "/h".to_owned()),
            (10_000, 30_000),
            vec![Protocol { name: "range".to_owned(), metadata: metadata(&[]) }],
            embedded::encode_assignment(&[(TOPIC, 1), (TOPIC, 3)].into(), 1, &image()),
            0,
        )],
    );
    let upgraded = ConsumerGroup::from_classic(&stable, &image(), 0).expect("upgrades");
    assert_eq!((upgraded.group_epoch, upgraded.assignment_epoch), (5, 5));
    let member = &upgraded.members["a"];
    assert_eq!(member.epoch, 5);
    assert_eq!(member.assigned, [(TOPIC, 1), (TOPIC, 3)].into());
    assert_eq!(member.subscribed_names, vec!["orders"]);
    assert!(member.classic.is_some());
    assert_eq!(upgraded.state_name(), "Stable");
    let mut actions = Vec::new();
    stable.abort_waiting(ResponseError::RebalanceInProgress, &mut actions);
    assert!(actions.is_empty(), "a stable group has nobody waiting");
}
