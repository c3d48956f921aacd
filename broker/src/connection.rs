//! One client connection: frames in, responses out, in request order.
//!
//! The reader splits frames (capped at `socket.request.max.bytes` before
//! anything is buffered), decodes them and spawns one task per request, so
//! pipelined requests are processed concurrently. Each task's response goes
//! through a oneshot whose receiver is queued in arrival order; the writer
//! awaits them in that order. The queue is bounded (`queued.max.requests`),
//! which stops reading when a client has too many requests in flight.
//!
//! Before a request is dispatched it reserves its frame's size from the
//! broker-wide [`RequestBytes`] budget; while it waits, this connection
//! reads nothing more, which bounds the memory requests can hold.
//!
//! Produce requests additionally take the connection's ordering lock until
//! their batches are staged, so their appends keep request order.
//!
//! Malformed frames, unknown API keys and unsupported versions close the
//! connection, as Kafka does; the exception is ApiVersions, which is answered
//! with UNSUPPORTED_VERSION and the version table (KIP-511).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseKind};
use skein_protocol::frame::split_frame;
use skein_protocol::request::{decode_request, DecodeError};
use skein_protocol::response::{encode_fetch_response_chunks, encode_response_chunks, EncodeError, ResponseChunks};
use skein_protocol::versions::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Mutex};

use crate::handlers::{self, unsupported_version_response, Context, Response};
use crate::server::RequestBytes;

const READ_BUFFER_BYTES: usize = 64 * 1024;

type PendingResponse = oneshot::Receiver<Option<ResponseChunks>>;

/// Slices handed to one vectored write.
const MAX_WRITE_SLICES: usize = 64;

pub async fn serve(
    stream: TcpStream,
    ctx: Context,
    mut shutdown: watch::Receiver<bool>,
    request_bytes: Option<RequestBytes>,
) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    // Kafka reports a member's host as `/address` (DescribeGroups, tools).
    let client_host: Arc<str> = stream.peer_addr().map(|a| format!("/{}", a.ip())).unwrap_or_default().into();
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (queue, mut pending) = mpsc::channel::<PendingResponse>(ctx.config.max_inflight_per_connection);
    let write_task = tokio::spawn(async move {
        while let Some(response) = pending.recv().await {
            match response.await {
                Ok(Some(response)) => {
                    if write_chunks(&mut writer, response.chunks).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                Err(_) => return,
            }
        }
        let _ = writer.shutdown().await;
    });
    let ordering = Arc::new(Mutex::new(()));
    let mut buffer = BytesMut::with_capacity(READ_BUFFER_BYTES);
    'connection: loop {
        loop {
            match split_frame(&mut buffer, ctx.config.max_frame_bytes) {
                Ok(Some(frame)) => {
                    let connection =
                        Connection { queue: &queue, ordering: &ordering, peer: &peer, client_host: &client_host };
                    if !submit(&ctx, frame, &connection, request_bytes.as_ref()).await {
                        break 'connection;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%peer, %error, "closing connection: bad frame");
                    break 'connection;
                }
            }
        }
        if buffer.capacity() - buffer.len() < 4096 {
            buffer.reserve(READ_BUFFER_BYTES);
        }
        tokio::select! {
            read = reader.read_buf(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = shutdown.changed() => break,
        }
    }
    // Responses already queued are still written before the socket closes.
    drop(queue);
    let _ = write_task.await;
}

/// What one connection's requests share.
struct Connection<'a> {
    queue: &'a mpsc::Sender<PendingResponse>,
    ordering: &'a Arc<Mutex<()>>,
    peer: &'a str,
    client_host: &'a Arc<str>,
}

/// Decodes and dispatches one frame. Returns false when the connection must close.
async fn submit(
    ctx: &Context,
    frame: BytesMut,
    connection: &Connection<'_>,
    request_bytes: Option<&RequestBytes>,
) -> bool {
    let Connection { queue, ordering, peer, client_host } = *connection;
    let (reply, response) = oneshot::channel();
    let frame_bytes = frame.len();
    // A decoder panic (a bug in a dependency, triggered by hostile bytes)
    // must cost only this connection.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_request(frame.freeze())));
    let Ok(decoded) = decoded else {
        tracing::warn!(%peer, "closing connection: request decoder panicked");
        return false;
    };
    let request = match decoded {
        Ok(request) => request,
        Err(DecodeError::UnsupportedVersion { prefix, support }) if support.api == Api::ApiVersions => {
            let body = ResponseKind::ApiVersions(unsupported_version_response());
            let encoded = encode_response_chunks(ApiKey::ApiVersions, 0, prefix.correlation_id, body);
            let _ = reply.send(encoded.ok());
            return queue.send(response).await.is_ok();
        }
        Err(error) => {
            tracing::warn!(%peer, %error, "closing connection: undecodable request");
            return false;
        }
    };
    // Reserved before the ordering lock, so no lock is held while waiting.
    let reserved = match request_bytes {
        Some(budget) => Some(budget.reserve(frame_bytes).await),
        None => None,
    };
    let guard = if request.api == Api::Produce { Some(Arc::clone(ordering).lock_owned().await) } else { None };
    if queue.send(response).await.is_err() {
        return false;
    }
    let ctx = ctx.clone();
    let client_host = Arc::clone(client_host);
    tokio::spawn(async move {
        let started = Instant::now();
        let (api, version, correlation_id) = (request.api, request.version, request.header.correlation_id);
        let body = handlers::handle(&ctx, request, guard, &client_host).await;
        let encoded = body.and_then(|body| match encode(api.support().key, version, correlation_id, body) {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                tracing::error!(%error, "cannot encode response");
                None
            }
        });
        ctx.metrics.record_request(api.name(), version, started.elapsed().as_secs_f64());
        drop(reserved);
        let _ = reply.send(encoded);
    });
    true
}

fn encode(key: ApiKey, version: i16, correlation_id: i32, response: Response) -> Result<ResponseChunks, EncodeError> {
    match response {
        Response::Body(body) => encode_response_chunks(key, version, correlation_id, body),
        Response::Fetch(body, record_sets) => encode_fetch_response_chunks(version, correlation_id, body, record_sets),
    }
}

/// Writes a response's chunks in order with vectored writes: a Fetch
/// response's stored batches go from their buffers to the socket without
/// being gathered into one frame first.
async fn write_chunks(writer: &mut OwnedWriteHalf, chunks: Vec<Bytes>) -> std::io::Result<()> {
    let mut chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
    while !chunks.is_empty() {
        let slices: Vec<IoSlice<'_>> = chunks.iter().take(MAX_WRITE_SLICES).map(|c| IoSlice::new(c)).collect();
        let mut written = writer.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while let Some(front) = chunks.front_mut() {
            if written < front.len() {
                front.advance(written);
                break;
            }
            written -= front.len();
            chunks.pop_front();
        }
    }
    Ok(())
}
