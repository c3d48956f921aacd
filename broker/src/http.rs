//! A minimal HTTP/1.1 listener for `/metrics` (Prometheus text format) and
//! `/health`. Requests are tiny GETs; anything else gets 404 or 400.
//! Hand-written to avoid an HTTP framework dependency for two routes.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cluster::Cluster;
use crate::metrics::Metrics;

const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn serve(listener: TcpListener, metrics: Metrics, cluster: Arc<Cluster>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        let cluster = Arc::clone(&cluster);
        tokio::spawn(async move {
            if let Err(error) = answer(stream, &metrics, &cluster).await {
                tracing::debug!(%error, "http connection failed");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, metrics: &Metrics, cluster: &Cluster) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD_BYTES {
        let read =
            tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk)).await.map_err(std::io::Error::other)??;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let line = String::from_utf8_lossy(head.split(|b| *b == b'\n').next().unwrap_or_default()).into_owned();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => {
            for topic in cluster.topics() {
                for partition in &topic.partitions {
                    metrics.set_high_watermark(&topic.name, partition.index, partition.high_watermark());
                }
            }
            ("200 OK", "text/plain; version=0.0.4", metrics.render())
        }
        ("GET", "/health") => match cluster.replicator.poisoned() {
            None => ("200 OK", "application/json", "{\"status\":\"ok\"}\n".to_owned()),
            Some(error) => (
                "503 Service Unavailable",
                "application/json",
                format!("{{\"status\":\"storage failed\",\"error\":{:?}}}\n", error.to_string()),
            ),
        },
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        _ => ("400 Bad Request", "text/plain", "bad request\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
