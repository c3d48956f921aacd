//! How group state is persisted: keys and values of the coordinator records
//! a shard stores (Kafka keeps the same two kinds in `__consumer_offsets`).
//!
//! - classic group metadata: key `[1][group id]`, value: generation,
//!   protocol type and name, leader, members with their subscriptions and
//!   assignments;
//! - consumer (KIP-848) group: key `[3][group id]`, value: group and
//!   assignment epochs, assignor, target assignment, members with their
//!   subscriptions, epochs and reconciliation state, and for classic
//!   members of a mixed group their session timeout and protocols (V1);
//! - committed offset: key `[2][u16 len][group id][u16 len][topic][i32 partition]`,
//!   value: offset, leader epoch, commit time, metadata.
//!
//! Values start with a format version byte. Decoding is bounds-checked: a
//! corrupt record is an error, never a panic.

use bytes::{BufMut, Bytes};

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::assignor::TopicPartition;
use super::classic::{ClassicGroup, Member, Protocol};
use super::consumer::{ClassicMembership, ConsumerGroup, ConsumerMember, MemberState};

const GROUP_KEY: u8 = 1;
const OFFSET_KEY: u8 = 2;
const CONSUMER_GROUP_KEY: u8 = 3;
const FORMAT_V0: u8 = 0;
/// Consumer groups: V0 plus each member's classic-protocol metadata.
const FORMAT_V1: u8 = 1;

/// A committed offset as Kafka's OffsetFetch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// A decoded record key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Group(String),
    Offset { group: String, topic: String, partition: i32 },
    ConsumerGroup(String),
}

pub fn group_key(group: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + group.len());
    key.put_u8(GROUP_KEY);
    key.extend_from_slice(group.as_bytes());
    key
}

pub fn consumer_group_key(group: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + group.len());
    key.put_u8(CONSUMER_GROUP_KEY);
    key.extend_from_slice(group.as_bytes());
    key
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + group.len() + topic.len());
    key.put_u8(OFFSET_KEY);
    put_short_str(&mut key, group);
    put_short_str(&mut key, topic);
    key.put_i32(partition);
    key
}

pub fn decode_key(key: &[u8]) -> Option<RecordKey> {
    let mut reader = Reader { source: key, at: 1 };
    match *key.first()? {
        GROUP_KEY => Some(RecordKey::Group(String::from_utf8(key[1..].to_vec()).ok()?)),
        CONSUMER_GROUP_KEY => Some(RecordKey::ConsumerGroup(String::from_utf8(key[1..].to_vec()).ok()?)),
        OFFSET_KEY => {
            let group = reader.short_str()?;
            let topic = reader.short_str()?;
            let partition = reader.i32()?;
            reader.at_end().then_some(RecordKey::Offset { group, topic, partition })
        }
        _ => None,
    }
}

pub fn encode_offset(offset: &CommittedOffset) -> Vec<u8> {
    let mut value = Vec::with_capacity(25 + offset.metadata.len());
    value.put_u8(FORMAT_V0);
    value.put_i64(offset.offset);
    value.put_i32(offset.leader_epoch);
    value.put_i64(offset.commit_timestamp_ms);
    put_str(&mut value, &offset.metadata);
    value
}

pub fn decode_offset(value: &[u8]) -> Option<CommittedOffset> {
    let mut reader = Reader { source: value, at: 0 };
    (reader.u8()? == FORMAT_V0).then_some(())?;
    let offset = CommittedOffset {
        offset: reader.i64()?,
        leader_epoch: reader.i32()?,
        commit_timestamp_ms: reader.i64()?,
        metadata: reader.str()?,
    };
    reader.at_end().then_some(offset)
}

pub fn encode_group(group: &ClassicGroup) -> Vec<u8> {
    let mut value = Vec::new();
    value.put_u8(FORMAT_V0);
    value.put_i32(group.generation());
    put_opt_str(&mut value, group.protocol_type());
    put_opt_str(&mut value, group.protocol());
    put_opt_str(&mut value, group.leader());
    value.put_u32(group.members().len() as u32);
    for member in group.members() {
        put_str(&mut value, &member.id);
        put_opt_str(&mut value, member.instance_id.as_deref());
        put_str(&mut value, &member.client_id);
        put_str(&mut value, &member.client_host);
        value.put_i32(member.session_timeout_ms);
        value.put_i32(member.rebalance_timeout_ms);
        put_protocols(&mut value, &member.protocols);
        put_bytes(&mut value, &member.assignment);
    }
    value
}

/// Restores a persisted group; its members' sessions start at `now_ms`.
pub fn decode_group(value: &[u8], now_ms: i64) -> Option<ClassicGroup> {
    let mut reader = Reader { source: value, at: 0 };
    (reader.u8()? == FORMAT_V0).then_some(())?;
    let generation = reader.i32()?;
    let protocol_type = reader.opt_str()?;
    let protocol = reader.opt_str()?;
    let leader = reader.opt_str()?;
    let count = reader.u32()? as usize;
    let mut members = Vec::with_capacity(count.min(value.len()));
    for _ in 0..count {
        members.push(decode_member(&mut reader, now_ms)?);
    }
    reader.at_end().then(|| ClassicGroup::restored(generation, protocol_type, protocol, leader, members))
}

fn decode_member(reader: &mut Reader<'_>, now_ms: i64) -> Option<Member> {
    let id = reader.str()?;
    let instance_id = reader.opt_str()?;
    let client = (reader.str()?, reader.str()?);
    let timeouts = (reader.i32()?, reader.i32()?);
    let protocols = reader.protocols()?;
    let assignment = reader.bytes()?;
    Some(Member::restored(id, instance_id, client, timeouts, protocols, assignment, now_ms))
}

pub fn encode_consumer_group(group: &ConsumerGroup) -> Vec<u8> {
    let mut value = Vec::new();
    value.put_u8(FORMAT_V1);
    value.put_i32(group.group_epoch);
    value.put_i32(group.assignment_epoch);
    put_str(&mut value, &group.assignor);
    value.put_u32(group.target.len() as u32);
    for (member, partitions) in &group.target {
        put_str(&mut value, member);
        put_partitions(&mut value, partitions);
    }
    value.put_u32(group.members.len() as u32);
    for member in group.members.values() {
        put_str(&mut value, &member.id);
        put_opt_str(&mut value, member.instance_id.as_deref());
        put_opt_str(&mut value, member.rack_id.as_deref());
        put_str(&mut value, &member.client_id);
        put_str(&mut value, &member.client_host);
        value.put_u32(member.subscribed_names.len() as u32);
        member.subscribed_names.iter().for_each(|name| put_str(&mut value, name));
        put_opt_str(&mut value, member.subscribed_regex.as_deref());
        put_opt_str(&mut value, member.server_assignor.as_deref());
        value.put_i32(member.rebalance_timeout_ms);
        value.put_i32(member.epoch);
        value.put_i32(member.previous_epoch);
        value.put_u8(member.state.code());
        put_partitions(&mut value, &member.assigned);
        put_partitions(&mut value, &member.pending_revocation);
        value.put_u8(u8::from(member.left_static));
        match &member.classic {
            None => value.put_u8(0),
            Some(classic) => {
                value.put_u8(1);
                value.put_i32(classic.session_timeout_ms);
                put_protocols(&mut value, &classic.protocols);
            }
        }
    }
    value
}

fn put_protocols(out: &mut Vec<u8>, protocols: &[Protocol]) {
    out.put_u32(protocols.len() as u32);
    for protocol in protocols {
        put_str(out, &protocol.name);
        put_bytes(out, &protocol.metadata);
    }
}

/// Restores a persisted consumer group; sessions (and any revocation
/// deadline) start over at `session_deadline_ms`.
pub fn decode_consumer_group(value: &[u8], session_deadline_ms: i64) -> Option<ConsumerGroup> {
    let mut reader = Reader { source: value, at: 0 };
    let format = reader.u8()?;
    (format == FORMAT_V0 || format == FORMAT_V1).then_some(())?;
    let group_epoch = reader.i32()?;
    let assignment_epoch = reader.i32()?;
    let assignor = reader.str()?;
    let mut target = BTreeMap::new();
    for _ in 0..reader.u32()? {
        target.insert(reader.str()?, reader.partitions()?);
    }
    let mut members = BTreeMap::new();
    for _ in 0..reader.u32()? {
        let member = decode_consumer_member(&mut reader, format, session_deadline_ms)?;
        members.insert(member.id.clone(), member);
    }
    reader.at_end().then(|| ConsumerGroup::restored(group_epoch, assignment_epoch, assignor, target, members))
}

fn decode_consumer_member(reader: &mut Reader<'_>, format: u8, session_deadline_ms: i64) -> Option<ConsumerMember> {
    let id = reader.str()?;
    let instance_id = reader.opt_str()?;
    let rack_id = reader.opt_str()?;
    let client_id = reader.str()?;
    let client_host = reader.str()?;
    let mut subscribed_names = Vec::new();
    for _ in 0..reader.u32()? {
        subscribed_names.push(reader.str()?);
    }
    let subscribed_regex = reader.opt_str()?;
    let server_assignor = reader.opt_str()?;
    let rebalance_timeout_ms = reader.i32()?;
    let epoch = reader.i32()?;
    let previous_epoch = reader.i32()?;
    let state = MemberState::from_code(reader.u8()?)?;
    let assigned = reader.partitions()?;
    let pending_revocation = reader.partitions()?;
    let left_static = reader.u8()? != 0;
    let revocation_deadline_ms = (!pending_revocation.is_empty()).then_some(session_deadline_ms);
    let classic = match format {
        FORMAT_V0 => None,
        _ => match reader.u8()? {
            0 => None,
            _ => Some(ClassicMembership {
                session_timeout_ms: reader.i32()?,
                protocols: reader.protocols()?,
                deadline_ms: None,
            }),
        },
    };
    Some(ConsumerMember {
        id,
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_names,
        subscribed_regex,
        server_assignor,
        rebalance_timeout_ms,
        epoch,
        previous_epoch,
        state,
        assigned,
        pending_revocation,
        left_static,
        session_deadline_ms,
        revocation_deadline_ms,
        classic,
    })
}

fn put_partitions(out: &mut Vec<u8>, partitions: &BTreeSet<TopicPartition>) {
    out.put_u32(partitions.len() as u32);
    for (topic, partition) in partitions {
        out.extend_from_slice(topic.as_bytes());
        out.put_i32(*partition);
    }
}

fn put_short_str(out: &mut Vec<u8>, value: &str) {
    // Group ids and topic names are bounded well below 64 KiB by validation.
    out.put_u16(value.len().min(u16::MAX as usize) as u16);
    out.extend_from_slice(&value.as_bytes()[..value.len().min(u16::MAX as usize)]);
}

fn put_bytes(out: &mut Vec<u8>, value: &[u8]) {
    out.put_u32(value.len() as u32);
    out.extend_from_slice(value);
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    put_bytes(out, value.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => out.put_u8(0),
        Some(value) => {
            out.put_u8(1);
            put_str(out, value);
        }
    }
}

struct Reader<'a> {
    source: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.source.len())?;
        let slice = &self.source[self.at..end];
        self.at = end;
        Some(slice)
    }
    fn remaining(&self) -> usize {
        self.source.len() - self.at
    }
    fn at_end(&self) -> bool {
        self.at == self.source.len()
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Bytes> {
        let len = self.u32()? as usize;
        Some(Bytes::copy_from_slice(self.take(len)?))
    }
    fn str(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
    fn short_str(&mut self) -> Option<String> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
    fn partitions(&mut self) -> Option<BTreeSet<TopicPartition>> {
        let mut partitions = BTreeSet::new();
        for _ in 0..self.u32()? {
            let topic = Uuid::from_bytes(self.take(16)?.try_into().ok()?);
            partitions.insert((topic, self.i32()?));
        }
        Some(partitions)
    }
    fn protocols(&mut self) -> Option<Vec<Protocol>> {
        let count = self.u32()? as usize;
        let mut protocols = Vec::with_capacity(count.min(self.remaining()));
        for _ in 0..count {
            protocols.push(Protocol { name: self.str()?, metadata: self.bytes()? });
        }
        Some(protocols)
    }

    fn opt_str(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.str()?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_key(&group_key("g")), Some(RecordKey::Group("g".to_owned())));
        let key = offset_key("group", "topic", 7);
        assert_eq!(
            decode_key(&key),
            Some(RecordKey::Offset { group: "group".to_owned(), topic: "topic".to_owned(), partition: 7 })
        );
        for cut in 1..key.len() {
            assert_eq!(decode_key(&key[..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode_key(&[9, 1, 2]), None);
        assert_eq!(decode_key(&[]), None);
    }

    #[test]
    fn offsets_round_trip_and_truncation_is_refused() {
        let offset =
            CommittedOffset { offset: 42, leader_epoch: 3, metadata: "meta".to_owned(), commit_timestamp_ms: 1234 };
        let value = encode_offset(&offset);
        assert_eq!(decode_offset(&value), Some(offset));
        for cut in 0..value.len() {
            assert_eq!(decode_offset(&value[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn consumer_groups_round_trip() {
        let topic = Uuid::from_bytes([5; 16]);
        let mut group = ConsumerGroup::restored(
            4,
            4,
            "uniform".to_owned(),
            BTreeMap::from([("m".to_owned(), BTreeSet::from([(topic, 0), (topic, 1)]))]),
            BTreeMap::new(),
        );
        group.members.insert(
            "m".to_owned(),
            ConsumerMember {
                id: "m".to_owned(),
                instance_id: None,
                rack_id: Some("rack".to_owned()),
                client_id: "c".to_owned(),
                client_host: "/h".to_owned(),
                subscribed_names: vec!["orders".to_owned()],
                subscribed_regex: Some("ord.*".to_owned()),
                server_assignor: None,
                rebalance_timeout_ms: 300_000,
                epoch: 4,
                previous_epoch: 3,
                state: MemberState::UnrevokedPartitions,
                assigned: BTreeSet::from([(topic, 0)]),
                pending_revocation: BTreeSet::from([(topic, 1)]),
                left_static: false,
                session_deadline_ms: 0,
                revocation_deadline_ms: None,
                classic: Some(ClassicMembership {
                    session_timeout_ms: 10_000,
                    protocols: vec![Protocol { name: "range".to_owned(), metadata: Bytes::from_static(b"sub") }],
                    deadline_ms: None,
                }),
            },
        );
        let value = encode_consumer_group(&group);
        let restored = decode_consumer_group(&value, 99).expect("decodes");
        assert_eq!(encode_consumer_group(&restored), value);
        assert_eq!(restored.members["m"].session_deadline_ms, 99);
        assert_eq!(decode_key(&consumer_group_key("g")), Some(RecordKey::ConsumerGroup("g".to_owned())));
        for cut in 0..value.len() {
            assert!(decode_consumer_group(&value[..cut], 0).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn groups_round_trip_with_their_members() {
        let member = Member::restored(
            "m-1".to_owned(),
            Some("instance".to_owned()),
            ("client".to_owned(), "/127.0.0.1".to_owned()),
            (10_000, 30_000),
            vec![Protocol { name: "range".to_owned(), metadata: Bytes::from_static(b"sub") }],
            Bytes::from_static(b"assigned"),
            0,
        );
        let group = ClassicGroup::restored(
            5,
            Some("consumer".to_owned()),
            Some("range".to_owned()),
            Some("m-1".to_owned()),
            vec![member],
        );
        let value = encode_group(&group);
        let restored = decode_group(&value, 100).expect("decodes");
        assert_eq!(restored.generation(), 5);
        assert_eq!(restored.protocol(), Some("range"));
        assert_eq!(restored.leader(), Some("m-1"));
        let member = &restored.members()[0];
        assert_eq!(member.instance_id.as_deref(), Some("instance"));
        assert_eq!(member.assignment, Bytes::from_static(b"assigned"));
        assert_eq!(member.protocols[0].metadata, Bytes::from_static(b"sub"));
        for cut in 0..value.len() {
            assert!(decode_group(&value[..cut], 0).is_none(), "cut at {cut}");
        }
    }
}
