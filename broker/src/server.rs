//! The Kafka listener: accepts connections up to `max.connections` and
//! serves each on its own task; on shutdown stops accepting, tells
//! connections to stop reading, and waits (bounded) for in-flight requests.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::connection;
use crate::handlers::Context;

pub async fn serve(listener: TcpListener, ctx: Context, mut shutdown: watch::Receiver<bool>, grace: Duration) {
    let permits = Arc::new(Semaphore::new(ctx.config.max_connections));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    tracing::warn!(%peer, limit = ctx.config.max_connections, "refusing connection: max.connections reached");
                    drop(stream);
                    continue;
                };
                let ctx = ctx.clone();
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    ctx.metrics.connections.inc();
                    connection::serve(stream, ctx.clone(), shutdown).await;
                    ctx.metrics.connections.dec();
                    drop(permit);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(remaining = connections.len(), "shutdown grace expired with requests in flight");
        connections.abort_all();
    }
}
