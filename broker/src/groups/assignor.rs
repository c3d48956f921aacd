//! Broker-side partition assignors for KIP-848 consumer groups: `uniform`
//! (the default: balanced and sticky) and `range` (contiguous ranges per
//! topic, like the classic client-side range assignor). Pure functions:
//! members and their subscriptions in, a target assignment out.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// A topic-partition, by topic id.
pub type TopicPartition = (Uuid, i32);

/// What an assignor needs to know about one member.
#[derive(Debug, Clone)]
pub struct AssignorMember<'a> {
    pub member_id: &'a str,
    /// Subscribed topic ids.
    pub topics: BTreeSet<Uuid>,
    /// The member's previous target, so `uniform` can keep partitions in place.
    pub previous: &'a BTreeSet<TopicPartition>,
}

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";
pub const ASSIGNORS: [&str; 2] = [UNIFORM, RANGE];

/// The target assignment: member id to partitions.
pub type Target = BTreeMap<String, BTreeSet<TopicPartition>>;

pub fn assign(assignor: &str, members: &[AssignorMember<'_>], partitions: &BTreeMap<Uuid, i32>) -> Target {
    if assignor == RANGE {
        range(members, partitions)
    } else {
        uniform(members, partitions)
    }
}

/// Per topic, the subscribed members in id order get contiguous ranges;
/// the first `partitions % members` get one more.
fn range(members: &[AssignorMember<'_>], partitions: &BTreeMap<Uuid, i32>) -> Target {
    let mut target: Target = members.iter().map(|m| (m.member_id.to_owned(), BTreeSet::new())).collect();
    for (topic, count) in partitions {
        let mut subscribers: Vec<&str> =
            members.iter().filter(|m| m.topics.contains(topic)).map(|m| m.member_id).collect();
        subscribers.sort_unstable();
        if subscribers.is_empty() {
            continue;
        }
        let n = subscribers.len() as i32;
        let (base, extra) = (count / n, count % n);
        let mut next = 0;
        for (index, member) in subscribers.iter().enumerate() {
            let take = base + i32::from((index as i32) < extra);
            let owned = target.entry((*member).to_owned()).or_default();
            owned.extend((next..next + take).map(|p| (*topic, p)));
            next += take;
        }
    }
    target
}

/// Balanced and sticky: per topic, each subscribed member gets its fair
/// share (counts differ by at most one), keeping the partitions it had in
/// the previous target where the share allows.
fn uniform(members: &[AssignorMember<'_>], partitions: &BTreeMap<Uuid, i32>) -> Target {
    let mut target: Target = members.iter().map(|m| (m.member_id.to_owned(), BTreeSet::new())).collect();
    // Total load per member across topics, so that with many single-partition
    // topics the partitions spread over members instead of piling on the first.
    let mut load: BTreeMap<&str, usize> = members.iter().map(|m| (m.member_id, 0)).collect();
    for (topic, count) in partitions {
        let mut subscribers: Vec<&AssignorMember<'_>> = members.iter().filter(|m| m.topics.contains(topic)).collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort_by_key(|m| (load[m.member_id], m.member_id));
        let n = subscribers.len();
        let (base, extra) = (*count as usize / n, *count as usize % n);
        // The least loaded members take the extra partitions.
        let quota: BTreeMap<&str, usize> =
            subscribers.iter().enumerate().map(|(i, m)| (m.member_id, base + usize::from(i < extra))).collect();
        let mut taken: BTreeSet<i32> = BTreeSet::new();
        let mut granted: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for member in &subscribers {
            let keep = member.previous.iter().filter(|(t, p)| t == topic && *p < *count).map(|(_, p)| *p);
            let mine = granted.entry(member.member_id).or_default();
            for partition in keep {
                if mine.len() < quota[member.member_id] && taken.insert(partition) {
                    mine.push(partition);
                }
            }
        }
        let mut free = (0..*count).filter(|p| !taken.contains(p));
        for member in &subscribers {
            let mine = granted.entry(member.member_id).or_default();
            while mine.len() < quota[member.member_id] {
                match free.next() {
                    Some(partition) => mine.push(partition),
                    None => break,
                }
            }
        }
        for (member, owned) in granted {
            *load.entry(member).or_default() += owned.len();
            target.entry(member.to_owned()).or_default().extend(owned.into_iter().map(|p| (*topic, p)));
        }
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn members<'a>(
        ids: &[&'a str],
        topics: &[Uuid],
        previous: &'a BTreeSet<TopicPartition>,
    ) -> Vec<AssignorMember<'a>> {
        ids.iter()
            .map(|id| AssignorMember { member_id: id, topics: topics.iter().copied().collect(), previous })
            .collect()
    }

    fn exclusive_and_complete(target: &Target, partitions: &BTreeMap<Uuid, i32>) {
        let mut all: Vec<TopicPartition> = target.values().flatten().copied().collect();
        all.sort();
        let expected: Vec<TopicPartition> =
            partitions.iter().flat_map(|(t, n)| (0..*n).map(move |p| (*t, p))).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn range_gives_contiguous_ranges_per_topic() {
        let none = BTreeSet::new();
        let partitions = BTreeMap::from([(topic(1), 7)]);
        let target = range(&members(&["a", "b", "c"], &[topic(1)], &none), &partitions);
        exclusive_and_complete(&target, &partitions);
        assert_eq!(target["a"].iter().map(|(_, p)| *p).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(target["c"].iter().map(|(_, p)| *p).collect::<Vec<_>>(), vec![5, 6]);
    }

    #[test]
    fn uniform_balances_and_keeps_partitions_in_place() {
        let none = BTreeSet::new();
        let partitions = BTreeMap::from([(topic(1), 6), (topic(2), 1), (topic(3), 1)]);
        let first = uniform(&members(&["a", "b"], &[topic(1), topic(2), topic(3)], &none), &partitions);
        exclusive_and_complete(&first, &partitions);
        assert_eq!((first["a"].len(), first["b"].len()), (4, 4));
        // A third member joins: a and b each give up partitions but keep the rest.
        let (a_before, b_before) = (first["a"].clone(), first["b"].clone());
        let mut with_c = members(&["a"], &[topic(1), topic(2), topic(3)], &a_before);
        with_c.extend(members(&["b"], &[topic(1), topic(2), topic(3)], &b_before));
        with_c.extend(members(&["c"], &[topic(1), topic(2), topic(3)], &none));
        let second = uniform(&with_c, &partitions);
        exclusive_and_complete(&second, &partitions);
        let sizes: Vec<usize> = second.values().map(BTreeSet::len).collect();
        assert!(sizes.iter().max().expect("sizes") - sizes.iter().min().expect("sizes") <= 1, "{second:?}");
        assert!(second["a"].is_subset(&a_before) && second["b"].is_subset(&b_before), "sticky: {second:?}");
    }

    #[test]
    fn members_get_only_topics_they_subscribe_to() {
        let none = BTreeSet::new();
        let partitions = BTreeMap::from([(topic(1), 2), (topic(2), 2)]);
        let mut list = members(&["a"], &[topic(1)], &none);
        list.extend(members(&["b"], &[topic(1), topic(2)], &none));
        for target in [uniform(&list, &partitions), range(&list, &partitions)] {
            exclusive_and_complete(&target, &partitions);
            assert!(target["a"].iter().all(|(t, _)| *t == topic(1)));
        }
    }
}
