//! Prometheus metrics, behind one small type so handlers record facts
//! without knowing the library. Labels are bounded: API names and versions
//! come from the version table; topic and partition labels grow with the
//! topics that exist.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use skein_protocol::alloc_guard::allocation_totals;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    bytes_in: IntCounterVec,
    bytes_out: IntCounterVec,
    pub connections: IntGauge,
    high_watermark: IntGaugeVec,
    allocations: IntCounter,
    allocated_bytes: IntCounter,
    /// Serialises bringing the allocation counters up to date, so two
    /// scrapes at once cannot both add the same difference.
    allocation_sync: Arc<Mutex<()>>,
    journal_fsync_seconds: Histogram,
    journal_fsync_waiting_writes: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("skein".to_owned()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("requests_total", "Requests handled, by API and version."),
            &["api", "version"],
        )?;
        let buckets =
            vec![0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("request_duration_seconds", "Time from decoded request to encoded response.")
                .buckets(buckets),
            &["api", "version"],
        )?;
        let bytes_in =
            IntCounterVec::new(Opts::new("topic_bytes_in_total", "Record batch bytes appended."), &["topic"])?;
        let bytes_out =
            IntCounterVec::new(Opts::new("topic_bytes_out_total", "Record batch bytes fetched."), &["topic"])?;
        let connections = IntGauge::new("connections", "Open client connections.")?;
        let high_watermark = IntGaugeVec::new(
            Opts::new("partition_high_watermark", "High watermark per partition."),
            &["topic", "partition"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_seconds.clone()))?;
        registry.register(Box::new(bytes_in.clone()))?;
        registry.register(Box::new(bytes_out.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(high_watermark.clone()))?;
        let allocations = IntCounter::new(
            "allocations_total",
            "Heap allocations (and reallocations) by the broker's Rust code; RocksDB's are not counted.",
        )?;
        let allocated_bytes =
            IntCounter::new("allocated_bytes_total", "Bytes asked for by the allocations in allocations_total.")?;
        registry.register(Box::new(allocations.clone()))?;
        registry.register(Box::new(allocated_bytes.clone()))?;
        let (journal_fsync_seconds, journal_fsync_waiting_writes) = journal_sync_metrics(&registry)?;
        Ok(Self {
            registry,
            requests,
            request_seconds,
            bytes_in,
            bytes_out,
            connections,
            high_watermark,
            allocations,
            allocated_bytes,
            allocation_sync: Arc::default(),
            journal_fsync_seconds,
            journal_fsync_waiting_writes,
        })
    }

    /// Records one fdatasync of the storage journal and the writes (Raft
    /// log appends) whose acknowledgement waited for it.
    pub fn record_journal_sync(&self, took: Duration, waiting_writes: usize) {
        self.journal_fsync_seconds.observe(took.as_secs_f64());
        self.journal_fsync_waiting_writes.inc_by(waiting_writes as u64);
    }

    pub fn record_request(&self, api: &str, version: i16, seconds: f64) {
        let version = version.to_string();
        self.requests.with_label_values(&[api, &version]).inc();
        self.request_seconds.with_label_values(&[api, &version]).observe(seconds);
    }

    pub fn record_bytes_in(&self, topic: &str, bytes: usize) {
        self.bytes_in.with_label_values(&[topic]).inc_by(bytes as u64);
    }

    pub fn record_bytes_out(&self, topic: &str, bytes: usize) {
        self.bytes_out.with_label_values(&[topic]).inc_by(bytes as u64);
    }

    pub fn set_high_watermark(&self, topic: &str, partition: i32, offset: i64) {
        self.high_watermark.with_label_values(&[topic, &partition.to_string()]).set(offset);
    }

    pub fn forget_topic(&self, topic: &str, partitions: usize) {
        let _ = self.bytes_in.remove_label_values(&[topic]);
        let _ = self.bytes_out.remove_label_values(&[topic]);
        for partition in 0..partitions {
            let _ = self.high_watermark.remove_label_values(&[topic, &partition.to_string()]);
        }
    }

    /// The text exposition format for `/metrics`.
    pub fn render(&self) -> String {
        // The allocator keeps its own totals; bring the counters up to them.
        {
            let _sync = self.allocation_sync.lock().unwrap_or_else(|p| p.into_inner());
            let (allocations, bytes) = allocation_totals();
            self.allocations.inc_by(allocations.saturating_sub(self.allocations.get()));
            self.allocated_bytes.inc_by(bytes.saturating_sub(self.allocated_bytes.get()));
        }
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// The journal's fsync metrics: how long each takes, and how many writes
/// share one (group commit), i.e. waiting writes ÷ fsyncs.
fn journal_sync_metrics(registry: &Registry) -> Result<(Histogram, IntCounter), prometheus::Error> {
    let buckets = vec![0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
    let seconds = Histogram::with_opts(
        HistogramOpts::new(
            "journal_fsync_seconds",
            "fdatasync of the storage journal: what an acks=all produce waits for (skein.fsync=always) \
             or the periodic sync (interval).",
        )
        .buckets(buckets),
    )?;
    let waiting = IntCounter::new(
        "journal_fsync_waiting_writes_total",
        "Writes (Raft log appends of any partition, group or coordinator) whose acknowledgement waited for a \
         journal fsync; divided by journal_fsync_seconds_count, the writes sharing each fsync. With \
         skein.fsync=interval only writes queued together with a periodic sync wait for it.",
    )?;
    registry.register(Box::new(seconds.clone()))?;
    registry.register(Box::new(waiting.clone()))?;
    Ok((seconds, waiting))
}
