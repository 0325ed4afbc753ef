//! The correlator's configuration: typed, with every default named here.

use std::net::SocketAddr;
use std::time::Duration;

use reef_schema::ipc::Compression;

/// Name of the durable consumer on REEF_RAW that every replica shares, so that each
/// entry batch is enriched by one replica.
pub const DEFAULT_DURABLE: &str = "reef-correlator";
/// Entry batches held, being enriched or awaiting publication per replica at once;
/// beyond it the replica stops pulling (the others take the work).
pub const DEFAULT_IN_FLIGHT: usize = 64;
/// A batch with an IP the Kubernetes index does not know waits at most this long (from
/// its arrival) for the index to learn it, then goes out unresolved: watch events lag
/// behind a new pod's first traffic by up to a second or so.
pub const UNRESOLVED_WAIT: Duration = Duration::from_secs(2);
/// How often held batches are looked at again (only re-enriched when the index changed).
pub const UNRESOLVED_RETRY: Duration = Duration::from_millis(100);
/// JetStream redelivers an unacknowledged batch after this long (to any replica): well
/// above `UNRESOLVED_WAIT` plus a publish.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// REEF_ENRICHED keeps messages this long...
pub const DEFAULT_STREAM_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// ...and at most this many bytes.
pub const DEFAULT_STREAM_MAX_BYTES: i64 = 10 * 1024 * 1024 * 1024;
/// REEF_K8S keeps Kubernetes changes this long (they are small and few next to
/// entries)...
pub const K8S_STREAM_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// ...and at most this many bytes.
pub const K8S_STREAM_MAX_BYTES: i64 = 1 << 30;
/// JetStream's de-duplication window on REEF_ENRICHED: a batch redelivered (after a
/// replica died, or a publish was retried) within it is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// OS events are read from this long before the start: connections opened earlier
/// and still carrying traffic need their connect/accept.
pub const DEFAULT_OS_LOOKBACK: Duration = Duration::from_secs(600);
/// At start, OS events are read until caught up, or until none came for this long.
pub const OS_CATCH_UP_IDLE: Duration = Duration::from_millis(500);
/// Attempts at publishing one enriched part before the input batch is given back
/// (nak) for redelivery.
pub const PUBLISH_ATTEMPTS: u32 = 5;
/// Pause after a failed publish, doubling per attempt.
pub const PUBLISH_RETRY: Duration = Duration::from_millis(100);
/// A stopping correlator finishes the batches in flight for at most this long.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);
/// How long to wait for NATS at start.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the consumer's lag is read for `/metrics`, and the Kubernetes index pruned.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(5);

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
pub struct CorrelatorConfig {
    pub nats_url: String,
    /// Durable consumer shared by the replicas.
    pub durable: String,
    pub in_flight: usize,
    pub unresolved_wait: Duration,
    pub ack_wait: Duration,
    /// REEF_ENRICHED retention.
    pub stream: StreamLimits,
    /// Compression of the published batches.
    pub compression: Compression,
    /// OS events read from this long before the start; None: all of them.
    pub os_lookback: Option<Duration>,
    pub metrics_listen: Option<SocketAddr>,
    pub connect_timeout: Duration,
    /// More metrics in Prometheus text format, appended to `/metrics` (the Kubernetes
    /// watchers' counters, which live outside this crate).
    pub extra_metrics: Option<ExtraMetrics>,
}

/// Renders metrics kept elsewhere, in Prometheus text format.
#[derive(Clone)]
pub struct ExtraMetrics(pub std::sync::Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for ExtraMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtraMetrics")
    }
}

impl CorrelatorConfig {
    pub fn new(nats_url: impl Into<String>) -> Self {
        CorrelatorConfig {
            nats_url: nats_url.into(),
            durable: DEFAULT_DURABLE.to_string(),
            in_flight: DEFAULT_IN_FLIGHT,
            unresolved_wait: UNRESOLVED_WAIT,
            ack_wait: DEFAULT_ACK_WAIT,
            stream: StreamLimits::default(),
            compression: Compression::default(),
            os_lookback: Some(DEFAULT_OS_LOOKBACK),
            metrics_listen: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            extra_metrics: None,
        }
    }
}
