//! The worker's configuration: typed, with every default named here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use reef_capture::CaptureConfig;
use reef_redact::Redactor;
use reef_schema::ipc::Compression;

/// Rows per published batch at most.
pub const DEFAULT_BATCH_ROWS: usize = 4096;
/// Encoded bytes per batch at most; NATS servers refuse messages over their
/// `max_payload` (1 MiB by default), and the worker lowers this to fit the server's.
pub const DEFAULT_BATCH_BYTES: usize = 768 * 1024;
/// A batch is published at the latest this long after its first row.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(20);
/// Encoded batches held while NATS is slow or away; beyond it the oldest are dropped.
pub const DEFAULT_OUTBOX_BYTES: usize = 256 * 1024 * 1024;
/// Publishes awaiting their JetStream acknowledgment at once.
pub const DEFAULT_IN_FLIGHT: usize = 256;
/// REEF_RAW keeps messages this long...
pub const DEFAULT_STREAM_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// ...and at most this many bytes.
pub const DEFAULT_STREAM_MAX_BYTES: i64 = 10 * 1024 * 1024 * 1024;
/// Replay gives up when NATS has acknowledged nothing for this long.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for NATS when a replay starts.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speed {
    /// As fast as the worker goes.
    Max,
    /// At the pace the packets were captured.
    Realtime,
}

#[derive(Debug, Clone)]
pub enum Source {
    Live(CaptureConfig),
    Pcap { files: Vec<PathBuf>, speed: Speed },
}

#[derive(Debug, Clone)]
pub struct StreamLimits {
    pub max_age: Duration,
    pub max_bytes: i64,
    pub replicas: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_age: DEFAULT_STREAM_MAX_AGE,
            max_bytes: DEFAULT_STREAM_MAX_BYTES,
            replicas: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BatchLimits {
    pub rows: usize,
    pub bytes: usize,
    pub linger: Duration,
    /// How the Arrow buffers of a batch are compressed (readers need not be told).
    pub compression: Compression,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            rows: DEFAULT_BATCH_ROWS,
            bytes: DEFAULT_BATCH_BYTES,
            linger: DEFAULT_LINGER,
            compression: Compression::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub nats_url: String,
    /// Node name: in subjects, on entries, and in the worker id.
    pub node: String,
    pub source: Source,
    pub batch: BatchLimits,
    pub outbox_bytes: usize,
    pub in_flight: usize,
    pub stream: StreamLimits,
    /// None: nothing is redacted.
    pub redactor: Option<Redactor>,
    pub metrics_listen: Option<SocketAddr>,
    pub engine: reef_engine::Config,
    pub publish_timeout: Duration,
    pub connect_timeout: Duration,
}

impl WorkerConfig {
    pub fn new(nats_url: impl Into<String>, node: impl Into<String>, source: Source) -> Self {
        WorkerConfig {
            nats_url: nats_url.into(),
            node: node.into(),
            source,
            batch: BatchLimits::default(),
            outbox_bytes: DEFAULT_OUTBOX_BYTES,
            in_flight: DEFAULT_IN_FLIGHT,
            stream: StreamLimits::default(),
            redactor: Some(Redactor::default()),
            metrics_listen: None,
            engine: reef_engine::Config::default(),
            publish_timeout: DEFAULT_PUBLISH_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}
