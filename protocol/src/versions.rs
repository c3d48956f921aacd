//! The one table of the Kafka APIs Skein implements. The broker's dispatch
//! matches exhaustively on [`Api`], and the ApiVersions answer is generated
//! from [`Api::ALL`], so what is advertised cannot drift from what is handled.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiKey;

/// Every API the broker handles. Adding one costs a variant here, a row in
/// [`Api::ALL`], a handler file and a match arm in the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Produce,
    Fetch,
    ListOffsets,
    Metadata,
    ApiVersions,
    CreateTopics,
    DeleteTopics,
    InitProducerId,
    DescribeConfigs,
    DescribeCluster,
    FindCoordinator,
    JoinGroup,
    SyncGroup,
    Heartbeat,
    LeaveGroup,
    OffsetCommit,
    OffsetFetch,
    ListGroups,
    DescribeGroups,
    DeleteGroups,
    OffsetDelete,
    ConsumerGroupHeartbeat,
    ConsumerGroupDescribe,
}

/// The versions of one API: what ApiVersions advertises and what is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionSupport {
    pub api: Api,
    pub key: ApiKey,
    /// The lowest version ApiVersions advertises.
    pub advertised_min: i16,
    /// The lowest version a request may use. Differs from `advertised_min` only
    /// for Produce: Kafka 4.x advertises v0 (librdkafka stops compressing
    /// otherwise, KAFKA-18659) yet refuses v0-v2 (KIP-896).
    pub accepted_min: i16,
    pub max: i16,
}

const fn row(api: Api, key: ApiKey, min: i16, max: i16) -> VersionSupport {
    VersionSupport { api, key, advertised_min: min, accepted_min: min, max }
}

impl Api {
    /// The supported-version table. Minima follow Kafka 4.x (KIP-896).
    pub const ALL: [VersionSupport; 23] = [
        VersionSupport { api: Api::Produce, key: ApiKey::Produce, advertised_min: 0, accepted_min: 3, max: 13 },
        row(Api::Fetch, ApiKey::Fetch, 4, 18),
        row(Api::ListOffsets, ApiKey::ListOffsets, 1, 10),
        row(Api::Metadata, ApiKey::Metadata, 0, 13),
        row(Api::ApiVersions, ApiKey::ApiVersions, 0, 4),
        row(Api::CreateTopics, ApiKey::CreateTopics, 2, 7),
        row(Api::DeleteTopics, ApiKey::DeleteTopics, 1, 6),
        row(Api::InitProducerId, ApiKey::InitProducerId, 0, 5),
        row(Api::DescribeConfigs, ApiKey::DescribeConfigs, 1, 4),
        row(Api::DescribeCluster, ApiKey::DescribeCluster, 0, 2),
        row(Api::FindCoordinator, ApiKey::FindCoordinator, 0, 6),
        row(Api::JoinGroup, ApiKey::JoinGroup, 0, 9),
        row(Api::SyncGroup, ApiKey::SyncGroup, 0, 5),
        row(Api::Heartbeat, ApiKey::Heartbeat, 0, 4),
        row(Api::LeaveGroup, ApiKey::LeaveGroup, 0, 5),
        row(Api::OffsetCommit, ApiKey::OffsetCommit, 2, 9),
        row(Api::OffsetFetch, ApiKey::OffsetFetch, 1, 9),
        row(Api::ListGroups, ApiKey::ListGroups, 0, 5),
        row(Api::DescribeGroups, ApiKey::DescribeGroups, 0, 6),
        row(Api::DeleteGroups, ApiKey::DeleteGroups, 0, 2),
        row(Api::OffsetDelete, ApiKey::OffsetDelete, 0, 0),
        row(Api::ConsumerGroupHeartbeat, ApiKey::ConsumerGroupHeartbeat, 0, 1),
        row(Api::ConsumerGroupDescribe, ApiKey::ConsumerGroupDescribe, 0, 1),
    ];

    /// Finds the table row for a wire API key, if Skein implements it.
    pub fn support_for_key(api_key: i16) -> Option<&'static VersionSupport> {
        Self::ALL.iter().find(|row| row.key as i16 == api_key)
    }

    pub fn support(self) -> &'static VersionSupport {
        // Every variant has a row; the unit test below keeps it that way.
        Self::ALL.iter().find(|row| row.api == self).unwrap_or(&Self::ALL[0])
    }

    pub fn name(self) -> &'static str {
        match self {
            Api::Produce => "Produce",
            Api::Fetch => "Fetch",
            Api::ListOffsets => "ListOffsets",
            Api::Metadata => "Metadata",
            Api::ApiVersions => "ApiVersions",
            Api::CreateTopics => "CreateTopics",
            Api::DeleteTopics => "DeleteTopics",
            Api::InitProducerId => "InitProducerId",
            Api::DescribeConfigs => "DescribeConfigs",
            Api::DescribeCluster => "DescribeCluster",
            Api::FindCoordinator => "FindCoordinator",
            Api::JoinGroup => "JoinGroup",
            Api::SyncGroup => "SyncGroup",
            Api::Heartbeat => "Heartbeat",
            Api::LeaveGroup => "LeaveGroup",
            Api::OffsetCommit => "OffsetCommit",
            Api::OffsetFetch => "OffsetFetch",
            Api::ListGroups => "ListGroups",
            Api::DescribeGroups => "DescribeGroups",
            Api::DeleteGroups => "DeleteGroups",
            Api::OffsetDelete => "OffsetDelete",
            Api::ConsumerGroupHeartbeat => "ConsumerGroupHeartbeat",
            Api::ConsumerGroupDescribe => "ConsumerGroupDescribe",
        }
    }
}

impl VersionSupport {
    pub fn accepts(&self, version: i16) -> bool {
        (self.accepted_min..=self.max).contains(&version)
    }
}

/// The `api_keys` array of an ApiVersions response, generated from the table.
pub fn advertised_api_versions() -> Vec<ApiVersion> {
    Api::ALL
        .iter()
        .map(|row| {
            let mut version = ApiVersion::default();
            version.api_key = row.key as i16;
            version.min_version = row.advertised_min;
            version.max_version = row.max;
            version
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_within_what_kafka_protocol_can_decode() {
        for row in Api::ALL {
            let crate_range = row.key.valid_versions();
            assert!(row.accepted_min >= crate_range.min, "{row:?} below {crate_range:?}");
            assert!(row.max <= crate_range.max, "{row:?} above {crate_range:?}");
            assert!(row.advertised_min <= row.accepted_min);
            assert_eq!(row.api.support(), &row, "rows are unique per API");
        }
    }

    #[test]
    fn produce_is_advertised_from_zero_but_accepted_from_three() {
        let produce = Api::Produce.support();
        assert_eq!(produce.advertised_min, 0);
        assert!(!produce.accepts(2));
        assert!(produce.accepts(3));
        let advertised = advertised_api_versions();
        assert!(advertised.iter().any(|v| v.api_key == 0 && v.min_version == 0));
    }

    #[test]
    fn unknown_keys_are_not_supported() {
        assert!(Api::support_for_key(9999).is_none());
        assert!(Api::support_for_key(ApiKey::EndTxn as i16).is_none());
        assert_eq!(Api::support_for_key(18).map(|row| row.api), Some(Api::ApiVersions));
    }
}
