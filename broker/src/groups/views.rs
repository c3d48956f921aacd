//! Read-only views of the coordinator's groups for ListGroups and
//! DescribeGroups (KIP-848 groups are described by ConsumerGroupDescribe,
//! `consumer_runtime.rs`).

use super::classic::GroupState;
use super::coordinator::GroupCoordinator;

/// A group as ListGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: bytes::Bytes,
    pub assignment: bytes::Bytes,
}

impl GroupCoordinator {
    /// Every group of every shard, by group id.
    pub fn list(&self) -> Vec<GroupListing> {
        let mut listed = Vec::new();
        for shard in &self.shards {
            let state = shard.lock();
            listed.extend(state.groups.iter().map(|(id, group)| match &group.consumer {
                Some(consumer) => GroupListing {
                    group_id: id.clone(),
                    protocol_type: "consumer".to_owned(),
                    state: consumer.state_name(),
                    group_type: "consumer",
                },
                None => GroupListing {
                    group_id: id.clone(),
                    protocol_type: group.classic.protocol_type().unwrap_or_default().to_owned(),
                    state: group.classic.state().name(),
                    group_type: "classic",
                },
            }));
        }
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listed
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let state = self.shard(group_id).lock();
        let entry = state.groups.get(group_id)?;
        if let Some(consumer) = &entry.consumer {
            // Its members are described by ConsumerGroupDescribe.
            return Some(GroupDescription {
                state: consumer.state_name(),
                protocol_type: "consumer".to_owned(),
                protocol: String::new(),
                members: Vec::new(),
            });
        }
        let group = &entry.classic;
        let stable = group.state() == GroupState::Stable;
        let members = group
            .members()
            .iter()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable { m.metadata_for(group.protocol()) } else { Default::default() },
                assignment: if stable { m.assignment.clone() } else { Default::default() },
            })
            .collect();
        Some(GroupDescription {
            state: group.state().name(),
            protocol_type: group.protocol_type().unwrap_or_default().to_owned(),
            protocol: group.protocol().unwrap_or_default().to_owned(),
            members,
        })
    }
}
