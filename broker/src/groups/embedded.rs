//! The consumer protocol embedded in classic JoinGroup and SyncGroup
//! payloads (protocol type `consumer`): a version-prefixed
//! ConsumerProtocolSubscription in each member's metadata and a
//! version-prefixed ConsumerProtocolAssignment in SyncGroup. The broker
//! reads these only where it must: mixed groups, online migration between
//! group types, and OffsetDelete's subscription check.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use super::assignor::TopicPartition;
use super::consumer::TopicImage;

/// The highest embedded-protocol version the broker decodes or writes.
const MAX_VERSION: i16 = 3;

/// What a classic member's metadata says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub version: i16,
    pub topics: Vec<String>,
    /// Partitions the member owns (cooperative members, version 1+), by name.
    pub owned: Vec<(String, i32)>,
    pub rack_id: Option<String>,
}

/// Splits the version prefix; versions above ours decode as ours (the
/// format only ever appends fields, as Kafka's own decoder assumes).
fn split_version(payload: &Bytes) -> Option<(i16, Bytes)> {
    if payload.len() < 2 {
        return None;
    }
    let mut body = payload.clone();
    let version = body.get_i16();
    (version >= 0).then_some((version.min(MAX_VERSION), body))
}

pub fn decode_subscription(metadata: &Bytes) -> Option<Subscription> {
    let (version, mut body) = split_version(metadata)?;
    let decoded = ConsumerProtocolSubscription::decode(&mut body, version).ok()?;
    Some(Subscription {
        version,
        topics: decoded.topics.iter().map(|t| t.to_string()).collect(),
        owned: decoded
            .owned_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p)))
            .collect(),
        rack_id: decoded.rack_id.map(|r| r.to_string()),
    })
}

/// Whether the subscription in `metadata` names `topic`. Undecodable
/// metadata counts as subscribed: keeping offsets is the safe side.
pub fn subscribes_to(metadata: &Bytes, topic: &str) -> bool {
    decode_subscription(metadata).is_none_or(|s| s.topics.iter().any(|t| t == topic))
}

/// The embedded-protocol version a member's metadata announces.
pub fn version_of(metadata: &Bytes) -> i16 {
    split_version(metadata).map_or(0, |(version, _)| version)
}

/// Partition ids by topic id, from names; unknown topics are left out.
pub fn to_ids(partitions: &[(String, i32)], image: &TopicImage) -> Vec<TopicPartition> {
    partitions.iter().filter_map(|(name, p)| image.by_name.get(name).map(|(id, _)| (*id, *p))).collect()
}

/// Decodes an assignment (empty payload: nothing assigned) into partition ids.
pub fn decode_assignment(payload: &Bytes, image: &TopicImage) -> Option<BTreeSet<TopicPartition>> {
    if payload.is_empty() {
        return Some(BTreeSet::new());
    }
    let (version, mut body) = split_version(payload)?;
    let decoded = ConsumerProtocolAssignment::decode(&mut body, version).ok()?;
    let named: Vec<(String, i32)> = decoded
        .assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.to_string(), *p)))
        .collect();
    Some(to_ids(&named, image).into_iter().collect())
}

/// Encodes partitions (by id) as a version-prefixed assignment, in the
/// version the member's subscription used. Topics deleted since drop out.
pub fn encode_assignment(partitions: &BTreeSet<TopicPartition>, version: i16, image: &TopicImage) -> Bytes {
    let names: HashMap<Uuid, &str> = image.by_name.iter().map(|(name, (id, _))| (*id, name.as_str())).collect();
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        if let Some(name) = names.get(topic) {
            by_topic.entry(name).or_default().push(*partition);
        }
    }
    let mut assignment = ConsumerProtocolAssignment::default();
    assignment.assigned_partitions = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            let mut topic = AssignedTopic::default();
            topic.topic = TopicName(StrBytes::from_string(name.to_owned()));
            topic.partitions = partitions;
            topic
        })
        .collect();
    let version = version.clamp(0, MAX_VERSION);
    let mut out = BytesMut::new();
    out.put_i16(version);
    // Encoding a default-built assignment into memory cannot fail.
    let _ = assignment.encode(&mut out, version);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> TopicImage {
        let mut image = TopicImage::default();
        image.by_name.insert("a".into(), (Uuid::from_u128(1), 3));
        image.by_name.insert("b".into(), (Uuid::from_u128(2), 1));
        image
    }

    fn subscription_bytes(version: i16, topics: &[&str], owned: &[(&str, i32)]) -> Bytes {
        use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as Owned;
        let mut subscription = ConsumerProtocolSubscription::default();
        subscription.topics = topics.iter().map(|t| StrBytes::from_string((*t).to_owned())).collect();
        subscription.owned_partitions = owned
            .iter()
            .map(|(t, p)| {
                let mut owned = Owned::default();
                owned.topic = TopicName(StrBytes::from_string((*t).to_owned()));
                owned.partitions = vec![*p];
                owned
            })
            .collect();
        let mut out = BytesMut::new();
        out.put_i16(version);
        subscription.encode(&mut out, version).expect("test step succeeds");
        out.freeze()
    }

    #[test]
    fn subscriptions_decode_with_owned_partitions() {
        let decoded =
            decode_subscription(&subscription_bytes(1, &["a", "b"], &[("a", 2)])).expect("test step succeeds");
        assert_eq!(decoded.topics, vec!["a", "b"]);
        assert_eq!(decoded.owned, vec![("a".to_owned(), 2)]);
        assert_eq!(to_ids(&decoded.owned, &image()), vec![(Uuid::from_u128(1), 2)]);
        assert!(subscribes_to(&subscription_bytes(0, &["a"], &[]), "a"));
        assert!(!subscribes_to(&subscription_bytes(0, &["a"], &[]), "b"));
        assert!(subscribes_to(&Bytes::from_static(b"\x00"), "b"), "undecodable counts as subscribed");
        assert_eq!(decode_subscription(&Bytes::from_static(b"\x00\x00\x00\x00\x00\x05ab")), None);
    }

    #[test]
    fn assignments_round_trip_by_topic_id() {
        let partitions: BTreeSet<TopicPartition> =
            [(Uuid::from_u128(1), 0), (Uuid::from_u128(1), 2), (Uuid::from_u128(2), 0), (Uuid::from_u128(9), 0)].into();
        let encoded = encode_assignment(&partitions, 3, &image());
        assert_eq!(version_of(&encoded), 3);
        let decoded = decode_assignment(&encoded, &image()).expect("test step succeeds");
        let expected: BTreeSet<TopicPartition> =
            [(Uuid::from_u128(1), 0), (Uuid::from_u128(1), 2), (Uuid::from_u128(2), 0)].into();
        assert_eq!(decoded, expected, "a topic unknown to the image drops out");
        assert_eq!(decode_assignment(&Bytes::new(), &image()), Some(BTreeSet::new()));
    }
}
