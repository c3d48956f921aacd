//! The Skein broker: sockets, connections, the dispatch table with one
//! handler per Kafka API, the cluster and partition layer, configuration,
//! metrics and the HTTP endpoint. See ARCHITECTURE.md for the map.

pub mod cluster;
pub mod config;
pub mod connection;
pub mod groups;
pub mod handlers;
pub mod http;
pub mod metrics;
pub mod partition;
pub mod producer_state;
pub mod server;

use std::sync::Arc;

use anyhow::Context as _;
use skein_replication::{FsyncPolicy, Replicator};
use skein_storage::{RocksStore, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::config::BrokerConfig;
use crate::groups::classic::GroupSettings;
use crate::groups::consumer::ConsumerSettings;
use crate::groups::coordinator::TopicSource;
use crate::groups::retention::RetentionSettings;
use crate::groups::{CoordinatorSettings, GroupCoordinator};
use crate::handlers::Context;
use crate::metrics::Metrics;

/// A running broker: its bound addresses and the handle that stops it.
pub struct Running {
    pub kafka_address: std::net::SocketAddr,
    pub http_address: Option<std::net::SocketAddr>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    replicator: Arc<Replicator>,
}

/// Binds the Kafka listener with the configured accept backlog (tokio's
/// `bind` uses a fixed one, which bursts of connects overflowed: clients
/// then wait a full SYN retry).
async fn listen(address: &str, backlog: u32) -> anyhow::Result<TcpListener> {
    let address = tokio::net::lookup_host(address).await?.next().context("the host name has no address")?;
    let socket = if address.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    Ok(socket.listen(backlog)?)
}

/// Opens storage, recovers the cluster state and starts the listeners.
pub async fn start(mut config: BrokerConfig) -> anyhow::Result<Running> {
    // Bind first: a busy port fails the start before any state is opened,
    // and port 0 (any free port) is known before it is advertised.
    let kafka_bind = format!("{}:{}", config.listener.host, config.listener.port);
    let listener =
        listen(&kafka_bind, config.listen_backlog).await.with_context(|| format!("cannot listen on {kafka_bind}"))?;
    let kafka_address = listener.local_addr()?;
    if config.advertised.port == 0 {
        config.advertised.port = kafka_address.port();
    }
    let http_listener = match &config.http_listener {
        Some(address) => {
            Some(TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address} (HTTP)"))?)
        }
        None => None,
    };
    let config = Arc::new(config);
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let phase = std::time::Instant::now();
    skein_replication::warm_up();
    let store_path = config.data_dir.join("store");
    let store: Arc<dyn Store> = Arc::new(
        RocksStore::open(&store_path).with_context(|| format!("cannot open the store in {}", store_path.display()))?,
    );
    tracing::debug!(ms = phase.elapsed().as_millis() as u64, "store opened");
    let policy = match config.fsync_interval {
        None => FsyncPolicy::Always,
        Some(every) => FsyncPolicy::Interval(every),
    };
    let replicator = Arc::new(Replicator::start(config.node_id, store, policy).await?);
    tracing::debug!(ms = phase.elapsed().as_millis() as u64, "metadata group open");
    let cluster = Cluster::open(Arc::clone(&config), Arc::clone(&replicator)).await?;
    tracing::debug!(ms = phase.elapsed().as_millis() as u64, "partitions open");
    let topic_source = Arc::clone(&cluster);
    let topics: TopicSource = Arc::new(move || topic_source.topic_image());
    let groups = GroupCoordinator::open(Arc::clone(&replicator), coordinator_settings(&config), topics).await?;
    tracing::debug!(ms = phase.elapsed().as_millis() as u64, "coordinator shards open");
    let metrics = Metrics::new()?;
    let sync_metrics = metrics.clone();
    replicator.observe_syncs(Arc::new(move |took, waiting| sync_metrics.record_journal_sync(took, waiting)));
    let http_address = match http_listener {
        Some(http) => {
            let bound = http.local_addr()?;
            tokio::spawn(http::serve(http, metrics.clone(), Arc::clone(&cluster)));
            Some(bound)
        }
        None => None,
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let grace = config.shutdown_grace;
    let ctx = Context { cluster, groups, config, metrics };
    let server = tokio::spawn(server::serve(listener, ctx, shutdown_rx, grace));
    Ok(Running { kafka_address, http_address, shutdown, server, replicator })
}

fn coordinator_settings(config: &BrokerConfig) -> CoordinatorSettings {
    let groups = &config.groups;
    CoordinatorSettings {
        groups: GroupSettings {
            min_session_timeout_ms: groups.min_session_timeout_ms,
            max_session_timeout_ms: groups.max_session_timeout_ms,
            initial_rebalance_delay_ms: groups.initial_rebalance_delay_ms,
            max_size: groups.max_size,
        },
        consumer: ConsumerSettings {
            session_timeout_ms: groups.consumer_session_timeout_ms,
            heartbeat_interval_ms: groups.consumer_heartbeat_interval_ms,
            max_size: groups.consumer_max_size,
        },
        migration_policy: groups.consumer_migration_policy,
        shard_count: groups.shard_count,
        retention: RetentionSettings {
            retention_ms: groups.offsets_retention_ms,
            check_interval_ms: groups.offsets_retention_check_interval_ms,
        },
        offset_metadata_max_bytes: groups.offset_metadata_max_bytes,
    }
}

impl Running {
    /// Stops accepting, drains in-flight requests (bounded by the grace
    /// period), then makes every write durable and stops the writer.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        self.replicator.shutdown().await;
    }
}
