//! `reef worker`: capture (or replay) on one node and publish to NATS JetStream.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, ValueEnum};
use reef_capture::{CaptureConfig, FilterSpec, RingConfig};
use reef_worker::config::{self as defaults, BatchLimits, StreamLimits};
use reef_worker::{Source, Speed, WorkerConfig};

#[derive(Clone, Copy, ValueEnum)]
pub enum SpeedArg {
    /// As fast as possible.
    Max,
    /// At the pace the packets were captured.
    Realtime,
}

#[derive(ClapArgs)]
pub struct Args {
    /// NATS server URL(s), comma-separated.
    #[arg(long, env = "REEF_NATS", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Node name, used in subjects and on every entry [default: $NODE_NAME or the host name].
    #[arg(long, env = "REEF_NODE")]
    node: Option<String>,
    /// Capture live on these interfaces (`any` for all of them).
    #[arg(long = "interface", value_name = "IF", conflicts_with = "pcap")]
    interfaces: Vec<String>,
    /// Replay these capture files instead (repeatable).
    #[arg(long, value_name = "FILE")]
    pcap: Vec<PathBuf>,
    /// Replay speed.
    #[arg(long, value_enum, default_value = "max")]
    speed: SpeedArg,
    /// Capture threads; flows are spread over them by a symmetric hash.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Put the interfaces in promiscuous mode.
    #[arg(long)]
    promiscuous: bool,
    /// Capture in this network namespace (e.g. /var/run/netns/NAME).
    #[arg(long, value_name = "PATH")]
    netns: Option<PathBuf>,
    /// Capture only traffic from or to these addresses (changeable at runtime on
    /// reef.v1.control.<node>.targets).
    #[arg(long = "target", value_name = "IP")]
    targets: Vec<IpAddr>,
    /// Serve Prometheus metrics here (e.g. 0.0.0.0:9100); off by default.
    #[arg(long, env = "REEF_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Turn redaction off (secrets leave the node as captured).
    #[arg(long)]
    no_redact: bool,
    /// Also redact these header fields (Authorization, Proxy-Authorization, Cookie and
    /// Set-Cookie always are).
    #[arg(long = "redact-header", value_name = "NAME")]
    redact_headers: Vec<String>,
    /// Also redact these JSON keys in bodies (password, token, secret... always are).
    #[arg(long = "redact-json-key", value_name = "KEY")]
    redact_json_keys: Vec<String>,
    /// Rows per batch at most.
    #[arg(long, default_value_t = defaults::DEFAULT_BATCH_ROWS)]
    batch_rows: usize,
    /// A batch is published at most this many milliseconds after its first row.
    #[arg(long, default_value_t = defaults::DEFAULT_LINGER.as_millis() as u64)]
    linger_ms: u64,
    /// Compression of the Arrow buffers in each batch: lz4 or none. Every Arrow reader
    /// decodes both without being told.
    #[arg(long, env = "REEF_COMPRESSION", default_value = "lz4")]
    compression: reef_schema::ipc::Compression,
    /// Bytes of batches held while NATS is slow or away; the oldest go beyond.
    #[arg(long, env = "REEF_BUFFER_BYTES", default_value_t = defaults::DEFAULT_OUTBOX_BYTES)]
    buffer_bytes: usize,
    /// REEF_RAW retention: seconds.
    #[arg(long, env = "REEF_STREAM_MAX_AGE", default_value_t = defaults::DEFAULT_STREAM_MAX_AGE.as_secs())]
    stream_max_age: u64,
    /// REEF_RAW retention: bytes.
    #[arg(long, env = "REEF_STREAM_MAX_BYTES", default_value_t = defaults::DEFAULT_STREAM_MAX_BYTES)]
    stream_max_bytes: i64,
    /// Replay: give up when NATS acknowledged nothing for this many seconds.
    #[arg(long, default_value_t = defaults::DEFAULT_PUBLISH_TIMEOUT.as_secs())]
    publish_timeout: u64,
    /// Capture ring: bytes per block.
    #[arg(long, default_value_t = reef_capture::RingConfig::default().block_size)]
    ring_block_size: u32,
    /// Capture ring: blocks per socket.
    #[arg(long, default_value_t = reef_capture::RingConfig::default().block_count)]
    ring_blocks: u32,
    /// Body bytes kept per message.
    #[arg(long, default_value_t = reef_dissect::DEFAULT_MAX_BODY_BYTES)]
    max_body: usize,
}

pub(crate) fn default_node() -> String {
    std::env::var("NODE_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "node".to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logs();
    let source = if !args.pcap.is_empty() {
        Source::Pcap {
            files: args.pcap.clone(),
            speed: match args.speed {
                SpeedArg::Max => Speed::Max,
                SpeedArg::Realtime => Speed::Realtime,
            },
        }
    } else if !args.interfaces.is_empty() {
        Source::Live(CaptureConfig {
            interfaces: args.interfaces.clone(),
            threads: args.threads,
            promiscuous: args.promiscuous,
            ring: RingConfig {
                block_size: args.ring_block_size,
                block_count: args.ring_blocks,
                ..RingConfig::default()
            },
            filter: FilterSpec {
                exclude: Vec::new(),
                targets: args.targets.clone(),
            },
            netns: args.netns.clone(),
        })
    } else {
        anyhow::bail!(
            "say what to capture: --interface IF (or any) for live traffic, or --pcap FILE to replay"
        );
    };
    let mut cfg = WorkerConfig::new(
        args.nats.clone(),
        args.node.clone().unwrap_or_else(default_node),
        source,
    );
    cfg.batch = BatchLimits {
        rows: args.batch_rows.max(1),
        linger: Duration::from_millis(args.linger_ms),
        compression: args.compression,
        ..BatchLimits::default()
    };
    cfg.outbox_bytes = args.buffer_bytes;
    cfg.stream = StreamLimits {
        max_age: Duration::from_secs(args.stream_max_age),
        max_bytes: args.stream_max_bytes,
        ..StreamLimits::default()
    };
    cfg.redactor = (!args.no_redact).then(|| {
        reef_redact::Redactor::with_defaults_and(&args.redact_headers, &args.redact_json_keys)
    });
    cfg.metrics_listen = args.metrics_listen;
    cfg.publish_timeout = Duration::from_secs(args.publish_timeout);
    cfg.engine.dissect.max_body_bytes = args.max_body;
    let report = reef_worker::run(cfg)?;
    tracing::info!(
        produced = report.produced_entries,
        published = report.published_entries,
        dropped = report.dropped_entries,
        flows = report.published_flows,
        batches = report.published_batches,
        "done"
    );
    eprintln!(
        "reef worker: {} entries produced, {} published, {} dropped; {} flow records published; {} batches",
        report.produced_entries,
        report.published_entries,
        report.dropped_entries,
        report.published_flows,
        report.published_batches
    );
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr; `REEF_LOG` (e.g. `debug`, `reef_worker=trace`) sets the level.
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REEF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
