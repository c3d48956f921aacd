//! The Kafka listener: accepts connections up to `max.connections` and
//! serves each on its own task; on shutdown stops accepting, tells
//! connections to stop reading, and waits (bounded) for in-flight requests.
//! It also owns the broker-wide budget of request bytes in flight
//! (`queued.max.request.bytes`) that every connection draws from.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::connection;
use crate::handlers::Context;

pub async fn serve(listener: TcpListener, ctx: Context, mut shutdown: watch::Receiver<bool>, grace: Duration) {
    let permits = Arc::new(Semaphore::new(ctx.config.max_connections));
    let request_bytes = ctx.config.max_inflight_request_bytes.map(RequestBytes::new);
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
                let request_bytes = request_bytes.clone();
                connections.spawn(async move {
                    ctx.metrics.connections.inc();
                    connection::serve(stream, ctx.clone(), shutdown, request_bytes).await;
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

/// The bytes of requests being handled, across all connections. A request
/// holds its frame's size in permits from decode until its handler is done
/// (the frame's memory, which a Produce's batches share, lives that long);
/// a connection that cannot get them stops reading until others finish.
#[derive(Clone)]
pub struct RequestBytes {
    permits: Arc<Semaphore>,
    limit: u32,
}

impl RequestBytes {
    pub fn new(limit: usize) -> Self {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX).max(1);
        Self { permits: Arc::new(Semaphore::new(limit as usize)), limit }
    }

    /// Waits until `frame_bytes` fit. A frame larger than the whole budget
    /// takes all of it, so it runs alone rather than never.
    pub async fn reserve(&self, frame_bytes: usize) -> OwnedSemaphorePermit {
        let wanted = u32::try_from(frame_bytes).unwrap_or(u32::MAX).clamp(1, self.limit);
        Arc::clone(&self.permits).acquire_many_owned(wanted).await.expect("the semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::RequestBytes;

    #[tokio::test]
    async fn a_request_waits_until_the_bytes_before_it_are_released_and_a_huge_one_runs_alone() {
        let budget = RequestBytes::new(1000);
        let first = budget.reserve(600).await;
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(600).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "1,200 bytes fit in a budget of 1,000");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("released").expect("task");
        drop(second);
        let huge = tokio::time::timeout(Duration::from_secs(5), budget.reserve(10_000)).await;
        assert!(huge.is_ok(), "a frame larger than the budget takes all of it instead of waiting forever");
    }
}
