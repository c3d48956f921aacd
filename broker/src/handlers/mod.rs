//! The dispatch table: one handler file per Kafka API. The match below is
//! exhaustive over [`Api`], the same enum whose table generates the
//! ApiVersions answer, so an advertised API without a handler does not
//! compile.
//!
//! Handlers translate between wire types and domain calls on the cluster
//! and its partitions; they never touch storage or replication directly.

mod api_versions;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_topics;
mod delete_groups;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod produce;
mod sync_group;

pub use api_versions::unsupported_version_response;

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{FetchResponse, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use skein_protocol::request::Request;
use skein_protocol::versions::Api;
use tokio::sync::OwnedMutexGuard;

use crate::cluster::Cluster;
use crate::config::BrokerConfig;
use crate::groups::GroupCoordinator;
use crate::metrics::Metrics;

/// What handlers may use: the cluster (topics, partitions, replication),
/// the group coordinator, the configuration and the metrics. Nothing else.
#[derive(Debug, Clone)]
pub struct Context {
    pub cluster: Arc<Cluster>,
    pub groups: Arc<GroupCoordinator>,
    pub config: Arc<BrokerConfig>,
    pub metrics: Metrics,
}

/// Held by a Produce request until its batches are staged, so that requests
/// pipelined on one connection are appended in the order they were sent
/// (what idempotent producers with several in-flight requests rely on).
pub type OrderingGuard = OwnedMutexGuard<()>;

/// A handler's answer: a message body, or for Fetch the body and its record
/// sets apart (per partition, the stored batches it is made of), which the
/// connection writes as they are instead of joining them into one buffer.
pub enum Response {
    Body(ResponseKind),
    Fetch(FetchResponse, Vec<Vec<Bytes>>),
}

/// Handles one request from `client_host` (Kafka's `/address` form). `None`
/// means no response is sent (Produce with acks=0).
pub async fn handle(
    ctx: &Context,
    request: Request,
    ordering: Option<OrderingGuard>,
    client_host: &str,
) -> Option<Response> {
    let version = request.version;
    let client_id = request.header.client_id.as_deref().unwrap_or_default().to_owned();
    let body = request.body;
    macro_rules! body {
        ($variant:ident) => {
            match body {
                RequestKind::$variant(inner) => inner,
                // The decoder picks the variant from the same API key, so this
                // cannot happen; answer nothing rather than panic.
                _ => return None,
            }
        };
    }
    let response = match request.api {
        Api::Produce => {
            let response = produce::handle(ctx, body!(Produce), version, ordering).await;
            return response.map(|body| Response::Body(ResponseKind::Produce(body)));
        }
        Api::Fetch => {
            let (body, record_sets) = fetch::handle(ctx, body!(Fetch), version).await;
            return Some(Response::Fetch(body, record_sets));
        }
        Api::ListOffsets => ResponseKind::ListOffsets(list_offsets::handle(ctx, body!(ListOffsets), version)),
        Api::Metadata => ResponseKind::Metadata(metadata::handle(ctx, body!(Metadata), version).await),
        Api::ApiVersions => ResponseKind::ApiVersions(api_versions::handle(&body!(ApiVersions), version)),
        Api::CreateTopics => ResponseKind::CreateTopics(create_topics::handle(ctx, body!(CreateTopics), version).await),
        Api::DeleteTopics => ResponseKind::DeleteTopics(delete_topics::handle(ctx, body!(DeleteTopics), version).await),
        Api::InitProducerId => ResponseKind::InitProducerId(init_producer_id::handle(ctx, body!(InitProducerId)).await),
        Api::DescribeConfigs => {
            ResponseKind::DescribeConfigs(describe_configs::handle(ctx, body!(DescribeConfigs), version))
        }
        Api::DescribeCluster => {
            ResponseKind::DescribeCluster(describe_cluster::handle(ctx, body!(DescribeCluster), version))
        }
        Api::FindCoordinator => {
            ResponseKind::FindCoordinator(find_coordinator::handle(ctx, body!(FindCoordinator), version))
        }
        Api::JoinGroup => {
            ResponseKind::JoinGroup(join_group::handle(ctx, body!(JoinGroup), version, &client_id, client_host).await)
        }
        Api::SyncGroup => ResponseKind::SyncGroup(sync_group::handle(ctx, body!(SyncGroup), version).await),
        Api::Heartbeat => ResponseKind::Heartbeat(heartbeat::handle(ctx, body!(Heartbeat))),
        Api::LeaveGroup => ResponseKind::LeaveGroup(leave_group::handle(ctx, body!(LeaveGroup), version).await),
        Api::OffsetCommit => ResponseKind::OffsetCommit(offset_commit::handle(ctx, body!(OffsetCommit)).await),
        Api::OffsetFetch => ResponseKind::OffsetFetch(offset_fetch::handle(ctx, body!(OffsetFetch), version)),
        Api::ListGroups => ResponseKind::ListGroups(list_groups::handle(ctx, body!(ListGroups), version)),
        Api::DescribeGroups => {
            ResponseKind::DescribeGroups(describe_groups::handle(ctx, body!(DescribeGroups), version))
        }
        Api::DeleteGroups => ResponseKind::DeleteGroups(delete_groups::handle(ctx, body!(DeleteGroups)).await),
        Api::OffsetDelete => ResponseKind::OffsetDelete(offset_delete::handle(ctx, body!(OffsetDelete)).await),
        Api::ConsumerGroupHeartbeat => ResponseKind::ConsumerGroupHeartbeat(
            consumer_group_heartbeat::handle(ctx, body!(ConsumerGroupHeartbeat), version, &client_id, client_host)
                .await,
        ),
        Api::ConsumerGroupDescribe => ResponseKind::ConsumerGroupDescribe(consumer_group_describe::handle(
            ctx,
            body!(ConsumerGroupDescribe),
            version,
        )),
    };
    Some(Response::Body(response))
}

fn str_bytes(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}
