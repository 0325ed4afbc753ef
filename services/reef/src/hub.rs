//! `reef hub`: serve the dashboard, /ws and /api from REEF_ENRICHED.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args as ClapArgs;
use reef_hub::{Hub, HubConfig, JetStreamSource};

#[derive(ClapArgs)]
pub struct Args {
    /// NATS server URL(s), comma-separated.
    #[arg(long, env = "REEF_NATS", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Where to serve the dashboard, /ws, /api and /metrics.
    #[arg(long, env = "REEF_HUB_LISTEN", default_value = reef_hub::DEFAULT_LISTEN)]
    listen: SocketAddr,
    #[command(flatten)]
    common: HubArgs,
}

/// Options shared by `reef hub` and `reef local`.
#[derive(ClapArgs)]
pub struct HubArgs {
    /// Require this bearer token on /ws and /api (Authorization: Bearer, or ?token=).
    #[arg(long, env = "REEF_HUB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Memory for the window of recent entries, in MiB.
    #[arg(long, default_value_t = (reef_hub::window::DEFAULT_WINDOW_BYTES >> 20) as u64)]
    window_mib: u64,
    /// When the window is empty, ingest starts this many seconds back.
    #[arg(long, default_value_t = reef_hub::DEFAULT_BACKFILL.as_secs())]
    backfill_secs: u64,
    /// The dashboard's built files (default: web/dist next to the binary's workspace or
    /// in the working directory).
    #[arg(long, value_name = "DIR")]
    web: Option<PathBuf>,
}

impl HubArgs {
    pub fn config(&self) -> anyhow::Result<HubConfig> {
        let web_dir = match &self.web {
            Some(d) if d.join("index.html").is_file() => Some(d.clone()),
            Some(d) => anyhow::bail!(
                "{} has no index.html: build the dashboard (npm ci && npm run build in web/) or point --web at web/dist",
                d.display()
            ),
            None => reef_hub::web::find_web_dir(),
        };
        if web_dir.is_none() {
            tracing::warn!(
                "the dashboard is not built (web/dist): the API works, / explains how to build it"
            );
        }
        Ok(HubConfig {
            window_bytes: (self.window_mib.max(1) << 20) as usize,
            backfill: Duration::from_secs(self.backfill_secs),
            token: self.token.clone().filter(|t| !t.is_empty()),
            web_dir,
            ..HubConfig::default()
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::worker::init_logs();
    let config = args.common.config()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let client = async_nats::ConnectOptions::new()
            .name("reef-hub")
            .retry_on_initial_connect()
            .event_callback(|ev| async move {
                match ev {
                    async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                    async_nats::Event::Connected => tracing::info!("connected to NATS"),
                    other => tracing::debug!(event = %other, "NATS"),
                }
            })
            .connect(args.nats.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach NATS at {}: {e}", args.nats))?;
        let hub = Hub::new(Arc::new(JetStreamSource::new(client.clone())), config);
        tokio::spawn(reef_hub::follow_worker_status(hub.clone(), client));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {}: {e} (is another hub running? use --listen)",
                    args.listen
                )
            })?;
        eprintln!("reef hub: serving on http://{}", listener.local_addr()?);
        hub.serve(listener, shutdown_signal()).await
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
