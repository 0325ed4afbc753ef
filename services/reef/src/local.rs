//! `reef local`: worker, correlator and hub in one process on one machine (reef-local), on the
//! embedded local bus (a segment log on disk, so `since` and replay work), with no NATS
//! server and no cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args as ClapArgs;
use reef_capture::{CaptureConfig, FilterSpec, RingConfig};
use reef_local::{LocalConfig, Progress};
use reef_local_bus::Limits;
use reef_worker::{Source, Speed, WorkerConfig};

use crate::hub::HubArgs;
use crate::worker::SpeedArg;

#[derive(ClapArgs)]
pub struct Args {
    /// Replay these capture files (pcap or pcapng; repeatable).
    #[arg(long, value_name = "FILE")]
    pcap: Vec<PathBuf>,
    /// Capture live on these interfaces (`any` for all; needs root or CAP_NET_RAW).
    #[arg(long = "interface", value_name = "IF", conflicts_with = "pcap")]
    interfaces: Vec<String>,
    /// Capture in this network namespace (e.g. /var/run/netns/NAME).
    #[arg(long, value_name = "PATH")]
    netns: Option<PathBuf>,
    /// Replay speed.
    #[arg(long, value_enum, default_value = "max")]
    speed: SpeedArg,
    /// Where to serve the dashboard, /ws and /api.
    #[arg(long, env = "REEF_HUB_LISTEN", default_value = reef_hub::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Where the local bus keeps entries [default: $XDG_DATA_HOME/reef/local or
    /// ~/.local/share/reef/local].
    #[arg(long, env = "REEF_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep at most this many MiB of entries on disk.
    #[arg(long, default_value_t = reef_local_bus::DEFAULT_MAX_BYTES >> 20)]
    retention_mib: u64,
    /// Keep entries at most this many hours.
    #[arg(long, default_value_t = reef_local_bus::DEFAULT_MAX_AGE.as_secs() / 3600)]
    retention_hours: u64,
    /// Node name on every entry [default: the host name].
    #[arg(long, env = "REEF_NODE")]
    node: Option<String>,
    /// Turn redaction off (secrets are kept as captured).
    #[arg(long)]
    no_redact: bool,
    #[command(flatten)]
    hub: HubArgs,
}

fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("reef/local");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/share/reef/local"),
        None => PathBuf::from("reef-data"),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::worker::init_logs();
    let source = if !args.pcap.is_empty() {
        for p in &args.pcap {
            anyhow::ensure!(p.is_file(), "{}: no such capture file", p.display());
        }
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
            threads: 1,
            promiscuous: false,
            ring: RingConfig::default(),
            filter: FilterSpec::default(),
            netns: args.netns.clone(),
        })
    } else {
        anyhow::bail!(
            "say what to capture: --pcap FILE to replay a capture \
             (e.g. --pcap integration/cases/keepalive-1000/capture.pcap), \
             or --interface IF (or any) to capture live, as root"
        );
    };
    let node = args
        .node
        .clone()
        .unwrap_or_else(crate::worker::default_node);
    let mut wcfg = WorkerConfig::new(String::new(), node.clone(), source);
    wcfg.redactor = (!args.no_redact).then(|| reef_redact::Redactor::with_defaults_and(&[], &[]));

    let dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let cfg = LocalConfig {
        worker: wcfg,
        data_dir: dir.clone(),
        retention: Limits {
            max_bytes: args.retention_mib << 20,
            max_age: Duration::from_secs(args.retention_hours * 3600),
            ..Limits::default()
        },
        hub: args.hub.config()?,
    };
    let live = args.pcap.is_empty();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}: {e} (is Reef already running? use --listen)",
                args.listen
            )
        })?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            crate::hub::shutdown_signal().await;
            eprintln!("reef local: stopping");
            let _ = stop_tx.send(true);
        });
        reef_local::run(cfg, listener, stop_rx, move |p| match p {
            Progress::Serving(addr) => eprintln!(
                "reef local: dashboard and API on http://{addr} ({} entries kept in {})",
                if live { "captured" } else { "replayed" },
                dir.display()
            ),
            Progress::Replayed { entries, batches } => eprintln!(
                "reef local: replay done, {entries} entries in {batches} batches stored; serving until Ctrl-C"
            ),
        })
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}
