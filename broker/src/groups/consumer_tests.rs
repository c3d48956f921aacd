//! KIP-848 groups under simulated time: joins, reconciliation through
//! revocation, fencing, leaving, session expiry, static replacement.

use super::*;

const TOPIC: Uuid = Uuid::from_bytes([7; 16]);

fn settings() -> ConsumerSettings {
    ConsumerSettings { session_timeout_ms: 45_000, heartbeat_interval_ms: 5_000, max_size: 10 }
}

fn image(partitions: i32) -> TopicImage {
    TopicImage { by_name: BTreeMap::from([("orders".to_owned(), (TOPIC, partitions))]) }
}

fn join(member: &str) -> HeartbeatRequest {
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
        client_id: "client".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
    }
}

fn beat(member: &str, epoch: i32, owned: &BTreeSet<TopicPartition>) -> HeartbeatRequest {
    HeartbeatRequest {
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        subscribed_names: None,
        owned: Some(owned.iter().copied().collect()),
        ..join(member)
    }
}

fn partitions(set: &BTreeSet<TopicPartition>) -> Vec<i32> {
    set.iter().map(|(_, p)| *p).collect()
}

#[test]
fn a_second_member_gets_partitions_only_after_the_first_revokes_them() {
    let (s, img) = (settings(), image(4));
    let mut group = ConsumerGroup::default();
    let (a, _) = group.heartbeat(join("a"), 0, &img, &s).expect("a joins");
    let a_owned = a.assignment.expect("assignment on join");
    assert_eq!(partitions(&a_owned), vec![0, 1, 2, 3]);
    let (b, _) = group.heartbeat(join("b"), 10, &img, &s).expect("b joins");
    assert_eq!(b.assignment, Some(BTreeSet::new()), "b's partitions are still a's");
    // a learns it must give two up; its epoch stays until it has.
    let (a2, _) = group.heartbeat(beat("a", a.member_epoch, &a_owned), 20, &img, &s).expect("a beats");
    assert_eq!(a2.member_epoch, a.member_epoch);
    let a_kept = a2.assignment.expect("a is told what to keep");
    assert_eq!(a_kept.len(), 2);
    assert_eq!(group.state_name(), "Reconciling");
    // b asks again before a has revoked: still nothing.
    let (b2, _) = group.heartbeat(beat("b", b.member_epoch, &BTreeSet::new()), 30, &img, &s).expect("b beats");
    assert_eq!(b2.assignment, None, "unchanged");
    // a acknowledges the revocation; then b gets the released partitions.
    let (a3, _) = group.heartbeat(beat("a", a2.member_epoch, &a_kept), 40, &img, &s).expect("a revoked");
    assert!(a3.member_epoch > a.member_epoch, "a moves to the new epoch");
    let (b3, _) = group.heartbeat(beat("b", b2.member_epoch, &BTreeSet::new()), 50, &img, &s).expect("b beats");
    let b_owned = b3.assignment.expect("b's partitions");
    assert_eq!(b_owned.len(), 2);
    assert!(b_owned.is_disjoint(&a_kept));
    group.heartbeat(beat("b", b3.member_epoch, &b_owned), 60, &img, &s).expect("b stable");
    assert_eq!(group.state_name(), "Stable");
}

#[test]
fn stale_and_future_epochs_are_fenced_and_unknown_members_refused() {
    let (s, img) = (settings(), image(2));
    let mut group = ConsumerGroup::default();
    let (a, _) = group.heartbeat(join("a"), 0, &img, &s).expect("join");
    let owned = a.assignment.expect("assignment");
    let future = group.heartbeat(beat("a", a.member_epoch + 1, &owned), 1, &img, &s);
    assert_eq!(future.map(|_| ()).map_err(|e| e.0), Err(ResponseError::FencedMemberEpoch));
    let unknown = group.heartbeat(beat("ghost", 1, &owned), 1, &img, &s);
    assert_eq!(unknown.map(|_| ()).map_err(|e| e.0), Err(ResponseError::UnknownMemberId));
    assert_eq!(group.validate_member_epoch("a", a.member_epoch), Ok(()));
    assert_eq!(group.validate_member_epoch("a", a.member_epoch - 1), Err(ResponseError::StaleMemberEpoch));
    assert_eq!(group.validate_member_epoch("", -1), Err(ResponseError::UnknownMemberId), "not while members exist");
}

#[test]
fn leaving_and_expiring_members_free_their_partitions() {
    let (s, img) = (settings(), image(2));
    let mut group = ConsumerGroup::default();
    group.heartbeat(join("a"), 0, &img, &s).expect("a");
    let (b, _) = group.heartbeat(join("b"), 0, &img, &s).expect("b");
    let (left, changed) = group.heartbeat(beat("a", -1, &BTreeSet::new()), 5, &img, &s).expect("a leaves");
    assert_eq!((left.member_epoch, changed), (-1, true));
    let (b2, _) = group.heartbeat(beat("b", b.member_epoch, &BTreeSet::new()), 6, &img, &s).expect("b beats");
    assert_eq!(partitions(&b2.assignment.expect("all partitions")), vec![0, 1]);
    assert!(!group.tick(6 + 44_999));
    assert!(group.tick(6 + 45_000), "b's session expired");
    assert_eq!(group.state_name(), "Empty");
    assert_eq!(group.validate_member_epoch("", -1), Ok(()), "admin commits to an empty group");
}

#[test]
fn a_static_member_replaced_within_its_session_keeps_its_partitions() {
    let (s, img) = (settings(), image(2));
    let mut group = ConsumerGroup::default();
    let mut first = join("old");
    first.instance_id = Some("host-1".to_owned());
    let (old, _) = group.heartbeat(first.clone(), 0, &img, &s).expect("join");
    let mut clash = first.clone();
    clash.member_id = "thief".to_owned();
    let refused = group.heartbeat(clash, 1, &img, &s).map(|_| ()).map_err(|e| e.0);
    assert_eq!(refused, Err(ResponseError::UnreleasedInstanceId), "the instance id is still in use");
    let epoch = group.group_epoch;
    let (gone, _) = group.heartbeat(beat("old", -2, &BTreeSet::new()), 2, &img, &s).expect("static leave");
    assert_eq!(gone.member_epoch, -2);
    let mut again = first;
    again.member_id = "new".to_owned();
    let (new, _) = group.heartbeat(again, 3, &img, &s).expect("replacement");
    assert_eq!((new.member_epoch, new.assignment), (old.member_epoch, old.assignment), "same epoch, same partitions");
    assert!(group.members.contains_key("new") && !group.members.contains_key("old"));
    assert_eq!(group.group_epoch, epoch, "no rebalance");
}

#[test]
fn bad_heartbeats_are_refused_with_kafkas_errors() {
    let (s, img) = (settings(), image(1));
    let mut group = ConsumerGroup::default();
    let code = |group: &mut ConsumerGroup, request| group.heartbeat(request, 0, &img, &s).map(|_| ()).map_err(|e| e.0);
    assert_eq!(code(&mut group, join("")), Err(ResponseError::InvalidRequest));
    let mut no_subscription = join("a");
    no_subscription.subscribed_names = None;
    assert_eq!(code(&mut group, no_subscription), Err(ResponseError::InvalidRequest));
    let mut assignor = join("a");
    assignor.server_assignor = Some("sticky-magic".to_owned());
    assert_eq!(code(&mut group, assignor), Err(ResponseError::UnsupportedAssignor));
    let mut regex = join("a");
    regex.subscribed_names = None;
    regex.subscribed_regex = Some("orders(".to_owned());
    assert_eq!(code(&mut group, regex), Err(ResponseError::InvalidRegularExpression));
}

#[test]
fn a_regex_subscription_follows_matching_topics() {
    let s = settings();
    let mut img = image(1);
    let mut group = ConsumerGroup::default();
    let mut request = join("a");
    request.subscribed_names = None;
    request.subscribed_regex = Some("ord.*".to_owned());
    let (a, _) = group.heartbeat(request, 0, &img, &s).expect("join");
    assert_eq!(a.assignment.as_ref().map(BTreeSet::len), Some(1));
    let other = Uuid::from_bytes([9; 16]);
    img.by_name.insert("ordinals".to_owned(), (other, 2));
    img.by_name.insert("unrelated".to_owned(), (Uuid::from_bytes([3; 16]), 2));
    let owned = a.assignment.expect("owned");
    let (a2, _) = group.heartbeat(beat("a", a.member_epoch, &owned), 1, &img, &s).expect("beat");
    let assigned = a2.assignment.expect("a new topic matched");
    assert_eq!(assigned.len(), 3);
    assert!(assigned.iter().all(|(t, _)| *t == TOPIC || *t == other));
}
