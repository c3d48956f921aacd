//! Skein's own byte layout for Raft entries, votes, log ids and memberships
//! (openraft's serde output is not a stable format across its versions).
//! Decoding is bounds-checked; proposal payloads decode zero-copy.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use bytes::{BufMut, Bytes};
use openraft::impls::leader_id_adv::LeaderId;
use openraft::type_config::alias::{EntryOf, LogIdOf, StoredMembershipOf, VoteOf};
use openraft::{BasicNode, EntryPayload, LogId, Membership, StoredMembership, Vote};
use skein_storage::{decode_ops, encode_ops, LogAppend, StoredBatch, WriteOp};

use crate::types::{Proposal, C};

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("corrupt replication {what}"))
}

struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or_else(|| invalid("record"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> io::Result<u64> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(raw))
    }
    fn rest(&mut self) -> Bytes {
        let rest = self.bytes.slice(self.at..);
        self.at = self.bytes.len();
        rest
    }
}

fn put_log_id(out: &mut Vec<u8>, log_id: &LogIdOf<C>) {
    out.put_u64(log_id.leader_id.term);
    out.put_u64(log_id.leader_id.node_id);
    out.put_u64(log_id.index);
}

fn read_log_id(reader: &mut Reader<'_>) -> io::Result<LogIdOf<C>> {
    let (term, node_id, index) = (reader.u64()?, reader.u64()?, reader.u64()?);
    Ok(LogId { leader_id: LeaderId { term, node_id }, index })
}

pub(crate) fn encode_log_id(log_id: Option<&LogIdOf<C>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(25);
    match log_id {
        Some(log_id) => {
            out.put_u8(1);
            put_log_id(&mut out, log_id);
        }
        None => out.put_u8(0),
    }
    out
}

pub(crate) fn decode_log_id(bytes: &Bytes) -> io::Result<Option<LogIdOf<C>>> {
    let mut reader = Reader { bytes, at: 0 };
    match reader.u8()? {
        0 => Ok(None),
        _ => read_log_id(&mut reader).map(Some),
    }
}

pub(crate) fn encode_vote(vote: &VoteOf<C>) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    out.put_u64(vote.leader_id.term);
    out.put_u64(vote.leader_id.node_id);
    out.put_u8(u8::from(vote.committed));
    out
}

pub(crate) fn decode_vote(bytes: &Bytes) -> io::Result<VoteOf<C>> {
    let mut reader = Reader { bytes, at: 0 };
    let (term, node_id, committed) = (reader.u64()?, reader.u64()?, reader.u8()? != 0);
    Ok(Vote { leader_id: LeaderId { term, node_id }, committed })
}

fn put_membership(out: &mut Vec<u8>, membership: &Membership<u64, BasicNode>) {
    let configs = membership.get_joint_config();
    out.put_u32(configs.len() as u32);
    for config in configs {
        out.put_u32(config.len() as u32);
        config.iter().for_each(|id| out.put_u64(*id));
    }
    let nodes: Vec<_> = membership.nodes().collect();
    out.put_u32(nodes.len() as u32);
    for (id, node) in nodes {
        out.put_u64(*id);
        out.put_u32(node.addr.len() as u32);
        out.extend_from_slice(node.addr.as_bytes());
    }
}

fn read_membership(reader: &mut Reader<'_>) -> io::Result<Membership<u64, BasicNode>> {
    let mut configs = Vec::new();
    for _ in 0..reader.u32()? {
        let count = reader.u32()?;
        configs.push((0..count).map(|_| reader.u64()).collect::<io::Result<BTreeSet<_>>>()?);
    }
    let mut nodes = BTreeMap::new();
    for _ in 0..reader.u32()? {
        let id = reader.u64()?;
        let len = reader.u32()? as usize;
        let addr = String::from_utf8(reader.take(len)?.to_vec()).map_err(|_| invalid("node address"))?;
        nodes.insert(id, BasicNode { addr });
    }
    Membership::new(configs, nodes).map_err(|_| invalid("membership"))
}

pub(crate) fn encode_stored_membership(stored: &StoredMembershipOf<C>) -> Vec<u8> {
    let mut out = encode_log_id(stored.log_id().as_ref());
    put_membership(&mut out, stored.membership());
    out
}

pub(crate) fn decode_stored_membership(bytes: &Bytes) -> io::Result<StoredMembershipOf<C>> {
    let log_id = decode_log_id(bytes)?;
    let mut reader = Reader { bytes, at: if log_id.is_some() { 25 } else { 1 } };
    Ok(StoredMembership::new(log_id, read_membership(&mut reader)?))
}

const BLANK: u8 = 0;
const NORMAL: u8 = 1;
const MEMBERSHIP: u8 = 2;
/// A Normal entry whose batches live in their partition logs: it keeps a
/// reference (log, base offset, time-index flag) per `Append` op.
const NORMAL_STORED: u8 = 3;

/// Reads a batch an entry refers to: (log, base offset) to the batch.
pub(crate) type BatchSource<'a> = &'a dyn Fn(skein_storage::LogId, i64) -> io::Result<StoredBatch>;

/// Encodes an entry for the Raft log without copying batch bytes into it:
/// the `Append` ops of a Normal entry come back, to be written to their
/// partition logs in the same atomic write, and the entry refers to them.
pub(crate) fn encode_entry_for_log(entry: &EntryOf<C>) -> (Bytes, Vec<WriteOp>) {
    let EntryPayload::Normal(proposal) = &entry.payload else { return (encode_entry(entry), Vec::new()) };
    let (appends, others): (Vec<WriteOp>, Vec<WriteOp>) =
        proposal.ops.iter().cloned().partition(|op| matches!(op, WriteOp::Append(_)));
    if appends.is_empty() {
        return (encode_entry(entry), Vec::new());
    }
    let mut out = Vec::with_capacity(64 + 13 * appends.len());
    put_log_id(&mut out, &entry.log_id);
    out.put_u8(NORMAL_STORED);
    out.put_u32(appends.len() as u32);
    for op in &appends {
        if let WriteOp::Append(append) = op {
            out.put_u32(append.log);
            out.put_u64(append.batch.base_offset as u64);
            out.put_u8(u8::from(append.index_timestamp));
        }
    }
    encode_ops(&others, &mut out);
    (Bytes::from(out), appends)
}

/// The log id of an encoded entry, without decoding the rest.
pub(crate) fn decode_entry_log_id(bytes: &Bytes) -> io::Result<LogIdOf<C>> {
    read_log_id(&mut Reader { bytes, at: 0 })
}

/// Rebuilds the `Append` ops a stored entry refers to.
fn read_stored_appends(reader: &mut Reader<'_>, batches: BatchSource<'_>) -> io::Result<Vec<WriteOp>> {
    let count = reader.u32()? as usize;
    // Each reference takes 13 bytes: a corrupt count cannot allocate much.
    let mut appends = Vec::with_capacity(count.min(reader.bytes.len() / 13));
    for _ in 0..count {
        let (log, base_offset, index_timestamp) = (reader.u32()?, reader.u64()? as i64, reader.u8()? != 0);
        let batch = batches(log, base_offset)?;
        appends.push(WriteOp::Append(LogAppend { log, batch, index_timestamp }));
    }
    Ok(appends)
}

pub(crate) fn encode_entry(entry: &EntryOf<C>) -> Bytes {
    let mut out = Vec::with_capacity(64);
    put_log_id(&mut out, &entry.log_id);
    match &entry.payload {
        EntryPayload::Blank => out.put_u8(BLANK),
        EntryPayload::Normal(proposal) => {
            out.put_u8(NORMAL);
            encode_ops(&proposal.ops, &mut out);
        }
        EntryPayload::Membership(membership) => {
            out.put_u8(MEMBERSHIP);
            put_membership(&mut out, membership);
        }
    }
    Bytes::from(out)
}

/// Decodes an entry; the batches of a stored entry come from `batches`.
pub(crate) fn decode_entry(bytes: &Bytes, batches: BatchSource<'_>) -> io::Result<EntryOf<C>> {
    let mut reader = Reader { bytes, at: 0 };
    let log_id = read_log_id(&mut reader)?;
    let payload = match reader.u8()? {
        BLANK => EntryPayload::Blank,
        NORMAL => {
            let ops = decode_ops(&reader.rest()).map_err(|e| invalid(&e.to_string()))?;
            EntryPayload::Normal(Proposal::new(ops))
        }
        NORMAL_STORED => {
            let mut ops = read_stored_appends(&mut reader, batches)?;
            ops.extend(decode_ops(&reader.rest()).map_err(|e| invalid(&e.to_string()))?);
            EntryPayload::Normal(Proposal { appends_stored: true, ..Proposal::new(ops) })
        }
        MEMBERSHIP => EntryPayload::Membership(read_membership(&mut reader)?),
        _ => return Err(invalid("entry type")),
    };
    Ok(openraft::Entry { log_id, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use skein_storage::WriteOp;

    fn log_id(term: u64, index: u64) -> LogIdOf<C> {
        LogId { leader_id: LeaderId { term, node_id: 1 }, index }
    }

    #[test]
    fn entries_votes_and_memberships_round_trip() {
        let membership = Membership::new(
            vec![BTreeSet::from([1, 2])],
            BTreeMap::from([(1, BasicNode { addr: "a:1".to_owned() }), (2, BasicNode { addr: "b:2".to_owned() })]),
        )
        .expect("valid");
        let entries = vec![
            openraft::Entry { log_id: log_id(1, 1), payload: EntryPayload::Blank },
            openraft::Entry {
                log_id: log_id(1, 2),
                payload: EntryPayload::Normal(Proposal::new(vec![WriteOp::PutMeta {
                    key: "k".to_owned(),
                    value: vec![1],
                }])),
            },
            openraft::Entry { log_id: log_id(2, 3), payload: EntryPayload::Membership(membership.clone()) },
        ];
        for entry in entries {
            let decoded = decode_entry(&encode_entry(&entry), &no_batches).expect("decodes");
            assert_eq!(format!("{entry:?}"), format!("{decoded:?}"));
        }
        let vote = Vote { leader_id: LeaderId { term: 7, node_id: 3 }, committed: true };
        assert_eq!(decode_vote(&Bytes::from(encode_vote(&vote))).expect("vote"), vote);
        let stored = StoredMembership::new(Some(log_id(2, 3)), membership);
        let decoded = decode_stored_membership(&Bytes::from(encode_stored_membership(&stored))).expect("membership");
        assert_eq!(format!("{stored:?}"), format!("{decoded:?}"));
        assert_eq!(decode_log_id(&Bytes::from(encode_log_id(None))).expect("none"), None);
        assert!(decode_entry(&Bytes::from_static(&[0, 1, 2]), &no_batches).is_err());
    }

    fn no_batches(_: skein_storage::LogId, _: i64) -> io::Result<StoredBatch> {
        Err(io::Error::other("no batch expected"))
    }

    #[test]
    fn stored_entries_refer_to_their_batches_instead_of_copying_them() {
        let batch = StoredBatch { base_offset: 40, last_offset: 44, max_timestamp: 9, bytes: Bytes::from_static(b"b") };
        let producer = WriteOp::PutMeta { key: "p".to_owned(), value: vec![2] };
        let append = WriteOp::Append(LogAppend { log: 5, batch: batch.clone(), index_timestamp: true });
        let entry = openraft::Entry {
            log_id: log_id(3, 9),
            payload: EntryPayload::Normal(Proposal::new(vec![append.clone(), producer.clone()])),
        };
        let (encoded, appends) = encode_entry_for_log(&entry);
        assert_eq!(format!("{appends:?}"), format!("{:?}", vec![append.clone()]));
        assert!(encoded.len() < 100, "no batch bytes in the entry");
        assert_eq!(decode_entry_log_id(&encoded).expect("log id"), log_id(3, 9));
        let source = |log, offset| {
            assert_eq!((log, offset), (5, 40));
            Ok(batch.clone())
        };
        let decoded = decode_entry(&encoded, &source).expect("decodes");
        let EntryPayload::Normal(proposal) = decoded.payload else { panic!("normal entry expected") };
        assert!(proposal.appends_stored);
        assert_eq!(format!("{:?}", proposal.ops), format!("{:?}", vec![append, producer]));
        for cut in 0..encoded.len() {
            assert!(decode_entry(&encoded.slice(..cut), &source).is_err(), "cut at {cut}");
        }
    }
}
