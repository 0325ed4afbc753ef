//! Fan-out of the hub: N WebSocket clients, each with its own SQL filter, reading live
//! entries published to JetStream at a fixed rate.
//!
//!     cargo run --release -p reef-hub --example fanout_bench -- \
//!         [--clients 100] [--rate 10000] [--seconds 30] [--batch 500] [--warmup 5]
//!
//! (`bench/hub-fanout.sh` runs this.) It starts a nats-server of its own (free loopback
//! port, temporary store; killed at the end, on errors and on Ctrl-C), a hub in-process
//! on its own tokio runtime (threads named `hub`), the clients on another runtime
//! (`bench-client`) and a publisher on a third (`bench-pub`). The clients connect and
//! subscribe (`since: now`) first; then the publisher sends synthetic enriched batches
//! (`--batch` entries every batch/rate seconds, acknowledgments awaited off the publish
//! path) for `--warmup` seconds, then `--seconds` seconds that are measured. Each
//! entry's `timestamp` is the wall clock when its batch was encoded and published, so a
//! client's latency is receipt time − timestamp: encoding, JetStream, the hub's ingest,
//! filtering and rendering, the WebSocket and the client's own reading.
//!
//! Reported: entries delivered to clients per second, publish→client latency
//! (p50/p90/p99/max) over the entries published in the measured period, entries lost,
//! CPU of the hub's threads, the clients', the publisher's and nats-server's, and the
//! process's RSS. Every client must have received exactly the entries its filter
//! selects (the same predicate written in Rust, checked by count and an
//! order-independent checksum of the ids), or the run fails (exit status 1).
//!
//! Everything runs on one machine: the clients and nats-server compete with the hub
//! for CPU, so the figures are a floor for the hub alone.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use memchr::memmem;
use reef_schema::{Body, CaptureSource, Entry, Headers, Protocol, Transport};
use serde_json::{Value, json};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug, Clone)]
#[command(about = "Fan-out benchmark of the hub: N WebSocket clients with their own filters")]
struct Args {
    /// WebSocket clients, each with its own filter.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Entries published per second.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Entries per published batch (one JetStream message).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Seconds published before measuring.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Worker threads of the hub's runtime.
    #[arg(long, default_value_t = 2)]
    hub_threads: usize,
    /// Worker threads of the clients' runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// How clients read `entries` messages: `scan` finds each entry's id and timestamp
    /// in the text (cheap, so that the clients take little CPU from the hub); `json`
    /// parses every message into a serde_json::Value, as a generic client would.
    #[arg(long, value_enum, default_value_t = ParseMode::Scan)]
    parse: ParseMode,
    /// Print one line per client.
    #[arg(long)]
    per_client: bool,
    /// The nats-server binary.
    #[arg(long, default_value = "nats-server")]
    nats_server: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ParseMode {
    Scan,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match main_inner(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("FAIL: some clients did not receive exactly what their filter selects");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn main_inner(args: &Args) -> anyhow::Result<bool> {
    if args.clients == 0 || args.rate == 0 || args.batch == 0 || args.seconds == 0 {
        bail!("--clients, --rate, --batch and --seconds must be at least 1");
    }
    let rss_before = rss_kib();
    // Declared first, dropped last: the runtimes (and with them every connection) end
    // before the server is killed, on every path out of here, panics included.
    let nats = Nats::start(&args.nats_server)?;
    let hub_rt = runtime("hub", args.hub_threads)?;
    let client_rt = runtime("bench-client", args.client_threads)?;
    let pub_rt = runtime("bench-pub", 1)?;
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("control runtime")?;
    let rts = Runtimes {
        hub: hub_rt.handle().clone(),
        client: client_rt.handle().clone(),
        publisher: pub_rt.handle().clone(),
    };
    let result = control.block_on(async {
        tokio::select! {
            r = run(args, &nats, &rts, rss_before) => r,
            _ = interrupted() => Err(anyhow!("interrupted")),
        }
    });
    drop(control);
    hub_rt.shutdown_background();
    client_rt.shutdown_background();
    pub_rt.shutdown_background();
    drop(nats);
    result
}

async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn runtime(name: &str, threads: usize) -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("{name} runtime"))
}

struct Runtimes {
    hub: Handle,
    client: Handle,
    publisher: Handle,
}

// ---------------------------------------------------------------------------------
// nats-server of our own

struct Nats {
    child: Child,
    port: u16,
    dir: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Nats {
    fn start(bin: &str) -> anyhow::Result<Nats> {
        let port = free_port()?;
        let dir =
            std::env::temp_dir().join(format!("reef-fanout-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let child = match Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                bail!("cannot start {bin}: {e} (apt-get install nats-server)");
            }
        };
        // From here on, Drop kills it.
        let mut nats = Nats { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = nats.child.try_wait()? {
                bail!("{bin} exited at start: {status}");
            }
            if Instant::now() > deadline {
                bail!("{bin} did not listen on port {port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nats)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------
// Synthetic entries: a deterministic function of their number, so that the expected
// matches are computed afterwards without keeping them.

fn mix(mut x: u64) -> u64 {
    // splitmix64
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The checksum term of entry `n` (sums of these are order-independent).
fn check_term(n: u64) -> u64 {
    mix(n ^ 0x5eed_f00d_cafe_d00d)
}

const NAMESPACES: u64 = 20;
const SERVICES: u64 = 50;
const NODES: u64 = 5;
const ID_PREFIX: &str = "bench-";

fn ns_of(svc: u64) -> String {
    format!("ns-{}", svc % NAMESPACES)
}

fn ip_of(svc: u64, pod: u64) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(
        10,
        (svc % NAMESPACES) as u8,
        svc as u8,
        (pod % 250) as u8 + 2,
    ))
}

/// Entry `n`: 75 % HTTP, 20 % gRPC, 5 % DNS among 50 services in 20 namespaces on 5
/// nodes; log-uniform latencies from 100 µs to 1 s.
fn make_entry(n: u64, timestamp: i64) -> Entry {
    let h = mix(n);
    let h2 = mix(h ^ 0xa5a5);
    let src = (h >> 8) % SERVICES;
    let mut dst = (h >> 16) % SERVICES;
    if dst == src {
        dst = (dst + 1) % SERVICES;
    }
    let node = (h >> 24) % NODES;
    let src_podn = (h2 >> 4) % 4;
    let dst_podn = (h2 >> 8) % 4;
    let u = (h2 >> 11) as f64 / (1u64 << 53) as f64;
    let elapsed = (100.0 * 10_000f64.powf(u)) as i64;
    let pod = |svc: u64, k: u64| format!("svc-{svc}-6d8f9c7b5-{:05x}", (svc * 7919 + k) & 0xfffff);
    let mut e = Entry {
        id: format!("{ID_PREFIX}{n}"),
        node: Some(format!("node-{node}")),
        timestamp,
        elapsed_time: Some(elapsed),
        transport: Transport::Tcp,
        src_ip: ip_of(src, src_podn),
        src_port: Some(32768 + ((h >> 32) % 28000) as u16),
        dst_ip: ip_of(dst, dst_podn),
        dst_port: Some(8080),
        capture_source: CaptureSource::AfPacket,
        src_pod: Some(pod(src, src_podn)),
        src_namespace: Some(ns_of(src)),
        src_service: Some(format!("svc-{src}")),
        src_workload: Some(format!("svc-{src}")),
        src_workload_kind: Some("Deployment".into()),
        src_node: Some(format!("node-{}", (src + src_podn) % NODES)),
        dst_pod: Some(pod(dst, dst_podn)),
        dst_namespace: Some(ns_of(dst)),
        dst_service: Some(format!("svc-{dst}")),
        dst_workload: Some(format!("svc-{dst}")),
        dst_workload_kind: Some("Deployment".into()),
        dst_node: Some(format!("node-{node}")),
        ..Entry::default()
    };
    let roll = h % 100;
    if roll < 75 {
        let method = match (h >> 28) % 100 {
            0..60 => "GET",
            60..85 => "POST",
            85..93 => "PUT",
            _ => "DELETE",
        };
        let item = (h >> 35) % 100_000;
        let path = if (h >> 52).is_multiple_of(4) {
            format!("/api/v1/items/{item}?page={}", (h >> 54) % 10)
        } else {
            format!("/api/v1/items/{item}")
        };
        let status = match (h >> 40) % 1000 {
            0..800 => 200,
            800..850 => 201,
            850..880 => 204,
            880..900 => 304,
            900..950 => 404,
            950..970 => 429,
            970..985 => 500,
            985..995 => 503,
            _ => 502,
        };
        let body = (method == "GET" && status == 200).then(|| {
            format!(
                r#"{{"id":{item},"name":"item {item}","price":{}.{:02},"tags":["a","b"]}}"#,
                h2 % 500,
                h2 % 100
            )
        });
        let response_size = 180 + body.as_ref().map_or(0, |b| b.len() as u64);
        e.protocol = Protocol::Http;
        e.http_version = Some("1.1".into());
        e.summary = Some(format!("{method} {path} → {status}"));
        e.request_size = Some(150 + (h2 % 400));
        e.response_size = Some(response_size);
        e.request_headers = Some(Headers(vec![
            ("host".into(), format!("svc-{dst}.{}:8080", ns_of(dst))),
            ("user-agent".into(), "reef-bench/1.0".into()),
            ("accept".into(), "application/json".into()),
            ("x-request-id".into(), format!("{:016x}", h2)),
        ]));
        e.response_headers = Some(Headers(vec![
            ("content-type".into(), "application/json".into()),
            (
                "content-length".into(),
                body.as_ref().map_or(0, |b| b.len()).to_string(),
            ),
        ]));
        e.response_body = body.map(|b| Body(b.into_bytes()));
        e.method = Some(method.into());
        e.path = Some(path);
        e.status_code = Some(status);
    } else if roll < 95 {
        let grpc_status = match (h >> 40) % 100 {
            0..90 => 0,
            90..94 => 5,
            94..97 => 14,
            _ => 2,
        };
        let rpc = ["Get", "List", "Create", "Watch"][((h >> 44) % 4) as usize];
        e.protocol = Protocol::Grpc;
        e.http_version = Some("2".into());
        e.method = Some("POST".into());
        e.path = Some(format!("/reef.bench.v1.Items/{rpc}"));
        e.grpc_method = e.path.clone();
        e.grpc_status = Some(grpc_status);
        e.status_code = Some(grpc_status);
        e.summary = Some(format!("/reef.bench.v1.Items/{rpc} → {grpc_status}"));
        e.request_size = Some(90 + (h2 % 200));
        e.response_size = Some(120 + (h2 % 900));
        e.dst_port = Some(9090);
    } else {
        let nx = (h >> 40).is_multiple_of(10);
        let name = format!("svc-{dst}.{}.svc.cluster.local", ns_of(dst));
        e.protocol = Protocol::Dns;
        e.transport = Transport::Udp;
        e.dst_port = Some(53);
        e.method = Some("QUERY".into());
        e.path = Some(format!("{name} A"));
        e.status_code = Some(if nx { 3 } else { 0 });
        e.dns_rcode = Some(if nx { "NXDOMAIN" } else { "NOERROR" }.into());
        e.dns_questions = Some(vec![format!("{name} A")]);
        e.summary = Some(format!(
            "{name} A → {}",
            e.dns_rcode.as_deref().unwrap_or("")
        ));
        e.request_size = Some(60);
        e.response_size = Some(if nx { 60 } else { 120 });
        e.elapsed_time = Some(elapsed / 20 + 50);
    }
    e
}

// ---------------------------------------------------------------------------------
// Filters: the SQL each client sends, and the same condition in Rust.

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    All,
    ServerErrors { min_elapsed: i64 },
    DstService { svc: u64, not_src: Option<u64> },
    PathLike { digits: String },
    SlowPost { over: i64 },
    GrpcFailed { over: i64 },
    NamespacesOk { a: u64, b: u64 },
    NodeWrites { node: u64, over: u64 },
    DnsFailed { min_elapsed: i64 },
}

const TEMPLATES: usize = 8;

impl Filter {
    /// Client `i`'s filter: clients 0, 25, 50 and 75 take everything; the others cycle
    /// through eight templates, each with a parameter that makes every text different.
    fn for_client(i: usize) -> Filter {
        if i < 100 && i.is_multiple_of(25) {
            return Filter::All;
        }
        let alls_before = i.min(100).div_ceil(25);
        let j = i - alls_before;
        let p = (j / TEMPLATES) as u64;
        match j % TEMPLATES {
            0 => Filter::ServerErrors {
                min_elapsed: p as i64 * 200,
            },
            1 => Filter::DstService {
                svc: (17 + p) % SERVICES,
                not_src: (p >= SERVICES).then(|| p / SERVICES - 1),
            },
            2 => Filter::PathLike {
                digits: (3 + 37 * p).to_string(),
            },
            3 => Filter::SlowPost {
                over: 5000 + 1000 * p as i64,
            },
            4 => Filter::GrpcFailed {
                over: 100 * p as i64,
            },
            5 => {
                let a = (1 + p) % NAMESPACES;
                Filter::NamespacesOk {
                    a,
                    b: (a + 1 + p / NAMESPACES) % NAMESPACES,
                }
            }
            6 => Filter::NodeWrites {
                node: p % NODES,
                over: p * 10,
            },
            _ => Filter::DnsFailed {
                min_elapsed: p as i64 * 10,
            },
        }
    }

    fn group(&self) -> &'static str {
        match self {
            Filter::All => "'' (everything)",
            Filter::ServerErrors { .. } => "status_code >= 500 …",
            Filter::DstService { .. } => "dst_service = 'svc-K' …",
            Filter::PathLike { .. } => "path LIKE '/api/v1/items/%D%'",
            Filter::SlowPost { .. } => "method = 'POST' AND elapsed_time > T",
            Filter::GrpcFailed { .. } => "protocol = 'grpc' AND grpc_status <> 0 …",
            Filter::NamespacesOk { .. } => "dst_namespace IN (…) AND status_code < 400",
            Filter::NodeWrites { .. } => "node = … AND method IN ('PUT','DELETE') …",
            Filter::DnsFailed { .. } => "protocol = 'dns' AND dns_rcode <> 'NOERROR' …",
        }
    }

    fn sql(&self) -> String {
        match self {
            Filter::All => String::new(),
            Filter::ServerErrors { min_elapsed: 0 } => "status_code >= 500".into(),
            Filter::ServerErrors { min_elapsed } => {
                format!("status_code >= 500 AND elapsed_time >= {min_elapsed}")
            }
            Filter::DstService { svc, not_src: None } => format!("dst_service = 'svc-{svc}'"),
            Filter::DstService {
                svc,
                not_src: Some(s),
            } => format!("dst_service = 'svc-{svc}' AND src_service <> 'svc-{s}'"),
            Filter::PathLike { digits } => format!("path LIKE '/api/v1/items/%{digits}%'"),
            Filter::SlowPost { over } => format!("method = 'POST' AND elapsed_time > {over}"),
            Filter::GrpcFailed { over: 0 } => "protocol = 'grpc' AND grpc_status <> 0".into(),
            Filter::GrpcFailed { over } => {
                format!("protocol = 'grpc' AND grpc_status <> 0 AND elapsed_time > {over}")
            }
            Filter::NamespacesOk { a, b } => {
                format!("dst_namespace IN ('ns-{a}', 'ns-{b}') AND status_code < 400")
            }
            Filter::NodeWrites { node, over } => format!(
                "node = 'node-{node}' AND method IN ('PUT', 'DELETE') AND response_size > {over}"
            ),
            Filter::DnsFailed { min_elapsed: 0 } => {
                "protocol = 'dns' AND dns_rcode <> 'NOERROR'".into()
            }
            Filter::DnsFailed { min_elapsed } => format!(
                "protocol = 'dns' AND dns_rcode <> 'NOERROR' AND elapsed_time >= {min_elapsed}"
            ),
        }
    }

    /// SQL's three-valued logic: a comparison with NULL is not true.
    fn matches(&self, e: &Entry) -> bool {
        let elapsed = |f: &dyn Fn(i64) -> bool| e.elapsed_time.is_some_and(f);
        let eq = |v: &Option<String>, s: &str| v.as_deref() == Some(s);
        match self {
            Filter::All => true,
            Filter::ServerErrors { min_elapsed } => {
                e.status_code.is_some_and(|s| s >= 500)
                    && (*min_elapsed == 0 || elapsed(&|t| t >= *min_elapsed))
            }
            Filter::DstService { svc, not_src } => {
                eq(&e.dst_service, &format!("svc-{svc}"))
                    && not_src.is_none_or(|s| {
                        e.src_service
                            .as_deref()
                            .is_some_and(|v| v != format!("svc-{s}"))
                    })
            }
            Filter::PathLike { digits } => e.path.as_deref().is_some_and(|p| {
                p.strip_prefix("/api/v1/items/")
                    .is_some_and(|rest| rest.contains(digits.as_str()))
            }),
            Filter::SlowPost { over } => eq(&e.method, "POST") && elapsed(&|t| t > *over),
            Filter::GrpcFailed { over } => {
                e.protocol == Protocol::Grpc
                    && e.grpc_status.is_some_and(|s| s != 0)
                    && (*over == 0 || elapsed(&|t| t > *over))
            }
            Filter::NamespacesOk { a, b } => {
                (eq(&e.dst_namespace, &format!("ns-{a}"))
                    || eq(&e.dst_namespace, &format!("ns-{b}")))
                    && e.status_code.is_some_and(|s| s < 400)
            }
            Filter::NodeWrites { node, over } => {
                eq(&e.node, &format!("node-{node}"))
                    && (eq(&e.method, "PUT") || eq(&e.method, "DELETE"))
                    && e.response_size.is_some_and(|s| s > *over)
            }
            Filter::DnsFailed { min_elapsed } => {
                e.protocol == Protocol::Dns
                    && e.dns_rcode.as_deref().is_some_and(|r| r != "NOERROR")
                    && (*min_elapsed == 0 || elapsed(&|t| t >= *min_elapsed))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Expect {
    count: u64,
    checksum: u64,
    measured: u64,
}

/// What each filter selects among entries `0..total` (entries from `warm_n` on are in
/// the measured period), on every core.
fn expected(filters: &[Filter], total: u64, warm_n: u64) -> Vec<Expect> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let chunk = total.div_ceil(threads).max(1);
    let parts: Vec<Vec<Expect>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut out = vec![Expect::default(); filters.len()];
                    for n in (t * chunk)..((t + 1) * chunk).min(total) {
                        let e = make_entry(n, 0);
                        let term = check_term(n);
                        for (x, f) in out.iter_mut().zip(filters) {
                            if f.matches(&e) {
                                x.count += 1;
                                x.checksum = x.checksum.wrapping_add(term);
                                x.measured += u64::from(n >= warm_n);
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("the expectation threads do not panic"))
            .collect()
    });
    let mut total_out = vec![Expect::default(); filters.len()];
    for part in parts {
        for (t, p) in total_out.iter_mut().zip(part) {
            t.count += p.count;
            t.checksum = t.checksum.wrapping_add(p.checksum);
            t.measured += p.measured;
        }
    }
    total_out
}

// ---------------------------------------------------------------------------------
// Latency histogram: log-linear buckets (128 per power of two, < 0.8 % error), in µs.

const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;

#[derive(Clone)]
struct Hist {
    counts: Vec<u64>,
    n: u64,
    max: u64,
}

impl Hist {
    fn new() -> Hist {
        Hist {
            counts: vec![0; SUB * 40],
            n: 0,
            max: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let shift = (63 - v.leading_zeros()) - SUB_BITS;
        let top = (v >> shift) as usize; // SUB..2*SUB
        SUB + shift as usize * SUB + (top - SUB)
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let shift = ((i - SUB) / SUB) as u32;
        let top = ((i - SUB) % SUB + SUB) as u64;
        (top << shift) + ((1u64 << shift) >> 1)
    }

    fn record(&mut self, v: u64) {
        let i = Hist::index(v).min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.n += 1;
        self.max = self.max.max(v);
    }

    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.n += o.n;
        self.max = self.max.max(o.max);
    }

    fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Hist::value(i).min(self.max);
            }
        }
        self.max
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

// ---------------------------------------------------------------------------------
// CPU and memory from /proc

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// utime + stime (clock ticks) of a /proc/…/stat line.
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields from 3 (state) on: utime is field 14, stime 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

#[derive(Debug, Clone)]
struct CpuSample {
    at: Instant,
    /// By thread group (hub, clients, publisher, other), for live threads.
    groups: BTreeMap<&'static str, u64>,
    process: u64,
    nats: u64,
}

fn group_of(comm: &str) -> &'static str {
    if comm.starts_with("hub") {
        "hub"
    } else if comm.starts_with("bench-client") {
        "clients"
    } else if comm.starts_with("bench-pub") {
        "publisher"
    } else {
        "other"
    }
}

fn cpu_sample(nats_pid: u32) -> CpuSample {
    let mut groups = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            let p = t.path();
            let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
            let ticks = std::fs::read_to_string(p.join("stat"))
                .ok()
                .and_then(|s| stat_ticks(&s))
                .unwrap_or(0);
            *groups.entry(group_of(comm.trim())).or_insert(0) += ticks;
        }
    }
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| stat_ticks(&s))
            .unwrap_or(0)
    };
    CpuSample {
        at: Instant::now(),
        groups,
        process: read("/proc/self/stat"),
        nats: read(&format!("/proc/{nats_pid}/stat")),
    }
}

/// (VmRSS, VmHWM) of this process in KiB.
fn rss_kib() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ---------------------------------------------------------------------------------
// Clients

/// Shared by all clients, for the quiet check and the delivered rate.
#[derive(Default)]
struct Progress {
    entries: AtomicU64,
    bytes: AtomicU64,
    last_ns: AtomicI64,
}

#[derive(Default)]
struct ClientOut {
    received: u64,
    checksum: u64,
    measured: u64,
    hist: Option<Hist>,
    lost: u64,
    lost_reasons: Vec<String>,
    errors: Vec<String>,
    other_subs: u64,
    malformed: u64,
    messages: u64,
    bytes: u64,
    stats_matched: Option<u64>,
    ended: Option<String>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

struct Scanner {
    id: memmem::Finder<'static>,
    ts: memmem::Finder<'static>,
}

const ENTRIES_PREFIX: &str = "{\"type\":\"entries\",\"sub\":";

fn digits(b: &[u8]) -> (u64, usize) {
    let mut v: u64 = 0;
    let mut k = 0;
    while k < b.len() && b[k].is_ascii_digit() {
        v = v.wrapping_mul(10).wrapping_add(u64::from(b[k] - b'0'));
        k += 1;
    }
    (v, k)
}

impl ClientOut {
    fn entry(&mut self, n: u64, ts: i64, now: i64, warm_n: u64) {
        self.received += 1;
        self.checksum = self.checksum.wrapping_add(check_term(n));
        if n >= warm_n {
            self.measured += 1;
            let us = ((now - ts).max(0) / 1000) as u64;
            self.hist.get_or_insert_with(Hist::new).record(us);
        }
    }

    /// An `entries` message: the id number and timestamp of each entry, found in the
    /// text (the hub writes `{"cursor":…,"id":"bench-N",…,"timestamp":T,…}`).
    fn scan(&mut self, sc: &Scanner, text: &str, sub: u64, now: i64, warm_n: u64) -> u64 {
        let b = text.as_bytes();
        let (s, k) = digits(&b[ENTRIES_PREFIX.len()..]);
        if k == 0 || s != sub {
            self.other_subs += 1;
            return 0;
        }
        let mut pos = 0;
        let mut count = 0;
        while let Some(at) = sc.id.find(&b[pos..]) {
            pos += at + sc.id.needle().len();
            let (n, k) = digits(&b[pos..]);
            if k == 0 {
                self.malformed += 1;
                continue;
            }
            pos += k;
            let Some(at) = sc.ts.find(&b[pos..]) else {
                self.malformed += 1;
                break;
            };
            pos += at + sc.ts.needle().len();
            let (ts, k) = digits(&b[pos..]);
            if k == 0 {
                self.malformed += 1;
                continue;
            }
            pos += k;
            self.entry(n, ts as i64, now, warm_n);
            count += 1;
        }
        count
    }

    /// Any message, parsed fully.
    fn json(&mut self, v: &Value, sub: u64, now: i64, warm_n: u64) -> u64 {
        let mine = v["sub"].as_u64() == Some(sub);
        match v["type"].as_str() {
            Some("entries") if mine => {
                let mut count = 0;
                for e in v["entries"].as_array().map_or(&[][..], |a| a.as_slice()) {
                    let n = e["id"]
                        .as_str()
                        .and_then(|id| id.strip_prefix(ID_PREFIX))
                        .and_then(|n| n.parse().ok());
                    match (n, e["timestamp"].as_i64()) {
                        (Some(n), Some(ts)) => {
                            self.entry(n, ts, now, warm_n);
                            count += 1;
                        }
                        _ => self.malformed += 1,
                    }
                }
                return count;
            }
            Some("lost") if mine => {
                self.lost += v["count"].as_u64().unwrap_or(0);
                if self.lost_reasons.len() < 3 {
                    self.lost_reasons
                        .push(v["reason"].as_str().unwrap_or("").to_string());
                }
            }
            Some("stats") if mine => self.stats_matched = v["matched"].as_u64(),
            Some("complete") if mine => {
                self.ended = Some(format!("complete: {}", v["reason"]));
            }
            Some("error") => self.errors.push(v["message"].to_string()),
            _ => self.other_subs += 1,
        }
        0
    }
}

struct ClientCfg {
    url: String,
    filter: String,
    parse: ParseMode,
    warm_n: u64,
    /// Limits the clients connecting and subscribing at once.
    connecting: Arc<Semaphore>,
    /// Told once subscribed.
    ready: mpsc::Sender<()>,
    stop: watch::Receiver<bool>,
    progress: Arc<Progress>,
}

async fn client(cfg: ClientCfg) -> anyhow::Result<ClientOut> {
    let ClientCfg {
        url,
        filter,
        parse,
        warm_n,
        connecting,
        ready,
        mut stop,
        progress,
    } = cfg;
    let permit = connecting.acquire().await?;
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let subscribe = json!({"type": "subscribe", "filter": filter, "since": "now"});
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    let sub = loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .map_err(|_| anyhow!("no answer to subscribe {filter:?} within 30 s"))?
            .ok_or_else(|| anyhow!("the hub closed the connection"))??;
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t)?;
            match v["type"].as_str() {
                Some("subscribed") => {
                    break v["sub"].as_u64().context("subscribed without a sub")?;
                }
                Some("error") => bail!("filter {filter:?} refused: {}", v["message"]),
                _ => {}
            }
        }
    };
    drop(permit);
    let _ = ready.send(()).await;
    drop(ready);

    let sc = Scanner {
        id: memmem::Finder::new(b"\"id\":\"bench-").into_owned(),
        ts: memmem::Finder::new(b"\"timestamp\":").into_owned(),
    };
    let mut out = ClientOut::default();
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(c))) => {
                out.ended = Some(format!("closed by the hub: {c:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                out.ended = Some(format!("read error: {e}"));
                break;
            }
            None => {
                out.ended = Some("the connection ended".into());
                break;
            }
        };
        let now = now_ns();
        out.messages += 1;
        out.bytes += text.len() as u64;
        let got = if parse == ParseMode::Scan && text.starts_with(ENTRIES_PREFIX) {
            out.scan(&sc, &text, sub, now, warm_n)
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => out.json(&v, sub, now, warm_n),
                Err(e) => {
                    out.errors.push(format!("not JSON: {e}"));
                    0
                }
            }
        };
        progress
            .bytes
            .fetch_add(text.len() as u64, Ordering::Relaxed);
        if got > 0 {
            progress.entries.fetch_add(got, Ordering::Relaxed);
            progress.last_ns.store(now, Ordering::Relaxed);
        }
    }
    let _ = ws.close(None).await;
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Publisher

/// The state of things at a phase change of the publisher.
struct Snap {
    cpu: CpuSample,
    entries: u64,
    bytes: u64,
    wall_ns: i64,
    rss_kib: u64,
    window: reef_hub::window::WindowStats,
}

enum Phase {
    Measuring,
    Done,
}

struct PubOut {
    batches: u64,
    entries: u64,
    bytes: u64,
    /// How late the publisher was on its schedule, at worst.
    max_late: Duration,
    /// From the entries' timestamp to the message handed to the NATS client (building
    /// the Arrow batch and encoding it): the publisher's part of the latency, in µs.
    encode: Hist,
    ack_errors: u64,
    first_ack_error: Option<String>,
}

struct Plan {
    batch: usize,
    interval: Duration,
    warm_batches: u64,
    total_batches: u64,
}

impl Plan {
    fn new(args: &Args) -> Plan {
        let per_s = args.rate as f64 / args.batch as f64;
        let warm_batches = (args.warmup as f64 * per_s).ceil() as u64;
        let measured = ((args.seconds as f64 * per_s).round() as u64).max(1);
        Plan {
            batch: args.batch,
            interval: Duration::from_secs_f64(args.batch as f64 / args.rate as f64),
            warm_batches,
            total_batches: warm_batches + measured,
        }
    }

    fn warm_n(&self) -> u64 {
        self.warm_batches * self.batch as u64
    }

    fn total_n(&self) -> u64 {
        self.total_batches * self.batch as u64
    }
}

async fn publish(
    js: async_nats::jetstream::Context,
    plan: Plan,
    phases: mpsc::UnboundedSender<Phase>,
) -> anyhow::Result<PubOut> {
    let (ack_tx, mut ack_rx) =
        mpsc::channel::<async_nats::jetstream::context::PublishAckFuture>(4096);
    let acks = tokio::spawn(async move {
        let (mut errors, mut first) = (0u64, None);
        while let Some(a) = ack_rx.recv().await {
            if let Err(e) = a.await {
                errors += 1;
                first.get_or_insert_with(|| e.to_string());
            }
        }
        (errors, first)
    });
    let start = tokio::time::Instant::now();
    let mut out = PubOut {
        batches: 0,
        entries: 0,
        bytes: 0,
        max_late: Duration::ZERO,
        encode: Hist::new(),
        ack_errors: 0,
        first_ack_error: None,
    };
    let b = plan.batch as u64;
    for k in 0..plan.total_batches {
        let mut entries: Vec<Entry> = (k * b..(k + 1) * b).map(|n| make_entry(n, 0)).collect();
        let due = start + plan.interval.mul_f64(k as f64);
        tokio::time::sleep_until(due).await;
        out.max_late = out.max_late.max(due.elapsed());
        if k == plan.warm_batches {
            let _ = phases.send(Phase::Measuring);
        }
        let ts = now_ns();
        for e in &mut entries {
            e.timestamp = ts;
        }
        let payload =
            reef_schema::ipc::encode(&Entry::batch(&entries), reef_schema::ipc::Compression::Lz4)?;
        out.bytes += payload.len() as u64;
        let subject = format!("reef.v1.enriched.ns-{}.http", k % NAMESPACES);
        let ack = js
            .publish(subject, payload.into())
            .await
            .map_err(|e| anyhow!("publishing batch {k}: {e}"))?;
        out.encode.record(((now_ns() - ts).max(0) / 1000) as u64);
        ack_tx
            .send(ack)
            .await
            .map_err(|_| anyhow!("the acknowledgment task ended"))?;
        out.batches += 1;
        out.entries += b;
    }
    // The measured period ends when the next batch would be due.
    tokio::time::sleep_until(start + plan.interval.mul_f64(plan.total_batches as f64)).await;
    let _ = phases.send(Phase::Done);
    drop(ack_tx);
    (out.ack_errors, out.first_ack_error) = acks.await?;
    Ok(out)
}

// ---------------------------------------------------------------------------------
// The run

async fn run(
    args: &Args,
    nats: &Nats,
    rts: &Runtimes,
    rss_before: (u64, u64),
) -> anyhow::Result<bool> {
    let url = nats.url();
    let plan = Plan::new(args);
    let (warm_n, total_n) = (plan.warm_n(), plan.total_n());

    // The stream, as a correlator creates it (retried while JetStream starts).
    let js = {
        let url = url.clone();
        rts.publisher
            .spawn(async move {
                let client = async_nats::connect(url).await?;
                let js = async_nats::jetstream::new(client);
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    match reef_correlator::service::ensure_stream(
                        &js,
                        &reef_correlator::config::StreamLimits::default(),
                    )
                    .await
                    {
                        Ok(()) => break,
                        Err(e) if Instant::now() > deadline => return Err(e),
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                anyhow::Ok(js)
            })
            .await??
    };

    // The hub, in-process on its own runtime.
    let (hub, addr) = {
        let url = url.clone();
        rts.hub
            .spawn(async move {
                let client = async_nats::connect(url).await?;
                let hub = reef_hub::Hub::new(
                    Arc::new(reef_hub::JetStreamSource::new(client)),
                    reef_hub::HubConfig::default(),
                );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?;
                tokio::spawn(hub.clone().serve(listener, std::future::pending()));
                anyhow::Ok((hub, addr))
            })
            .await??
    };
    let rss_hub_idle = rss_kib().0;

    // The clients: connected and subscribed before anything is published.
    let filters: Vec<Filter> = (0..args.clients).map(Filter::for_client).collect();
    let progress = Arc::new(Progress::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(args.clients);
    let connecting = Arc::new(Semaphore::new(64));
    let ws_url = format!("ws://{addr}/ws");
    let t_connect = Instant::now();
    let tasks: Vec<_> = filters
        .iter()
        .map(|f| {
            rts.client.spawn(client(ClientCfg {
                url: ws_url.clone(),
                filter: f.sql(),
                parse: args.parse,
                warm_n,
                connecting: Arc::clone(&connecting),
                ready: ready_tx.clone(),
                stop: stop_rx.clone(),
                progress: Arc::clone(&progress),
            }))
        })
        .collect();
    drop(ready_tx);
    let mut subscribed = 0;
    while subscribed < args.clients {
        match tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await {
            Ok(Some(())) => subscribed += 1,
            // A client ended before subscribing: its task holds the error.
            Ok(None) | Err(_) => break,
        }
    }
    if subscribed < args.clients {
        let _ = stop_tx.send(true);
        for t in tasks {
            if let Ok(Err(e)) = t.await {
                return Err(e.context("a client failed"));
            }
        }
        bail!("only {subscribed} of {} clients subscribed", args.clients);
    }
    let connect_time = t_connect.elapsed();
    // Ingest follows the stream (it starts with the first client).
    let deadline = Instant::now() + Duration::from_secs(15);
    while !hub.0.activity.ingesting.load(Ordering::Relaxed) {
        if Instant::now() > deadline {
            bail!("the hub's ingest did not start within 15 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!(
        "fan-out: {} clients ({} subscribed in {:.2} s), {} entries/s in batches of {} every {:.1} ms, {} s warm-up + {} s measured, clients parse: {:?}",
        args.clients,
        subscribed,
        connect_time.as_secs_f64(),
        args.rate,
        args.batch,
        plan.interval.as_secs_f64() * 1000.0,
        args.warmup,
        args.seconds,
        args.parse,
    );

    // Publish.
    let nats_pid = nats.pid();
    let (phase_tx, mut phase_rx) = mpsc::unbounded_channel();
    let publisher = rts.publisher.spawn(publish(
        js,
        Plan {
            batch: plan.batch,
            interval: plan.interval,
            warm_batches: plan.warm_batches,
            total_batches: plan.total_batches,
        },
        phase_tx,
    ));
    let snap = || Snap {
        cpu: cpu_sample(nats_pid),
        entries: progress.entries.load(Ordering::Relaxed),
        bytes: progress.bytes.load(Ordering::Relaxed),
        wall_ns: now_ns(),
        rss_kib: rss_kib().0,
        window: hub.0.window.stats(),
    };
    let mut s0 = None;
    let mut s1 = None;
    let c_start = cpu_sample(nats_pid);
    while let Some(p) = phase_rx.recv().await {
        match p {
            Phase::Measuring => s0 = Some(snap()),
            Phase::Done => {
                s1 = Some(snap());
                break;
            }
        }
    }
    let pub_out = publisher.await??;
    let (Some(s0), Some(s1)) = (s0, s1) else {
        bail!("the publisher ended early");
    };

    // Drain: until no client received anything for 2 s (at most 120 s).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = progress.entries.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = progress.entries.load(Ordering::Relaxed);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    // The last batch was published one interval before the end of the measured period.
    let last_batch_ns = s1.wall_ns - plan.interval.as_nanos() as i64;
    let drain_ms = (progress.last_ns.load(Ordering::Relaxed) - last_batch_ns) as f64 / 1e6;
    let c_end = cpu_sample(nats_pid);
    let _ = stop_tx.send(true);
    let mut outs = Vec::with_capacity(tasks.len());
    for t in tasks {
        outs.push(t.await??);
    }
    let rss_end = rss_kib();
    let hub_delivered = hub.0.metrics.delivered.get();
    let hub_lost = hub.0.metrics.lost.get();
    let hub_ingested = hub.0.metrics.ingest_entries.get();
    // The window's bytes split into the Arrow data and the JSON summaries rendered for
    // WebSocket clients (kept with each batch); both count against its limit.
    let (mut arrow_bytes, mut summary_rows) = (0usize, 0usize);
    for b in hub.0.window.all() {
        arrow_bytes += b.bytes;
        summary_rows += b.summaries().map_or(0, <[Box<str>]>::len);
    }

    // What each client should have received.
    let t_expect = Instant::now();
    let expect = expected(&filters, total_n, warm_n);
    let expect_time = t_expect.elapsed();

    // Report.
    let measured_s = (s1.cpu.at - s0.cpu.at).as_secs_f64();
    let delivered_measured = s1.entries - s0.entries;
    let expected_measured: u64 = expect.iter().map(|e| e.measured).sum();
    let expected_all: u64 = expect.iter().map(|e| e.count).sum();
    let received_all: u64 = outs.iter().map(|o| o.received).sum();
    let lost_all: u64 = outs.iter().map(|o| o.lost).sum();
    let mut overall = Hist::new();
    let mut ok = true;
    let mut bad = Vec::new();
    struct Group {
        clients: usize,
        expected: u64,
        received: u64,
        lost: u64,
        failed: usize,
        hist: Hist,
        example: String,
    }
    let mut groups: BTreeMap<&'static str, Group> = BTreeMap::new();
    for (i, ((f, o), x)) in filters.iter().zip(&outs).zip(&expect).enumerate() {
        let exact = o.received == x.count
            && o.checksum == x.checksum
            && o.lost == 0
            && o.errors.is_empty()
            && o.malformed == 0
            && o.ended.is_none();
        if !exact {
            ok = false;
            bad.push(i);
        }
        let g = groups.entry(f.group()).or_insert_with(|| Group {
            clients: 0,
            expected: 0,
            received: 0,
            lost: 0,
            failed: 0,
            hist: Hist::new(),
            example: f.sql(),
        });
        g.clients += 1;
        g.expected += x.count;
        g.received += o.received;
        g.lost += o.lost;
        g.failed += usize::from(!exact);
        if let Some(h) = &o.hist {
            g.hist.merge(h);
            overall.merge(h);
        }
    }

    println!(
        "published: {} entries in {} batches ({} warm-up + {} measured), {:.1} MB of Arrow IPC (LZ4), publisher at most {:.1} ms behind schedule, {} ack errors{}",
        pub_out.entries,
        pub_out.batches,
        warm_n,
        total_n - warm_n,
        pub_out.bytes as f64 / 1e6,
        pub_out.max_late.as_secs_f64() * 1000.0,
        pub_out.ack_errors,
        pub_out
            .first_ack_error
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default(),
    );
    println!();
    println!(
        "{:<46} {:>7} {:>11} {:>11} {:>7} {:>6} {:>8} {:>8} {:>8}",
        "filter", "clients", "expected", "received", "lost", "ok", "p50 ms", "p99 ms", "max ms"
    );
    for (name, g) in &groups {
        println!(
            "{:<46} {:>7} {:>11} {:>11} {:>7} {:>6} {:>8} {:>8} {:>8}",
            name,
            g.clients,
            g.expected,
            g.received,
            g.lost,
            format!("{}/{}", g.clients - g.failed, g.clients),
            ms(g.hist.quantile(0.5)),
            ms(g.hist.quantile(0.99)),
            ms(g.hist.max),
        );
    }
    println!(
        "{:<46} {:>7} {:>11} {:>11} {:>7} {:>6} {:>8} {:>8} {:>8}",
        "all",
        args.clients,
        expected_all,
        received_all,
        lost_all,
        format!("{}/{}", args.clients - bad.len(), args.clients),
        ms(overall.quantile(0.5)),
        ms(overall.quantile(0.99)),
        ms(overall.max),
    );
    println!("the first filter of each group:");
    for g in groups.values() {
        println!("  {:?}", g.example);
    }
    println!();
    println!(
        "selectivity: the filters select {:.2} entries per published entry on average over {} clients ({:.1} % each)",
        expected_all as f64 / total_n as f64,
        args.clients,
        expected_all as f64 / total_n as f64 / args.clients as f64 * 100.0,
    );
    println!(
        "delivered (measured {:.2} s): {} entries = {:.0} entries/s (expected {:.0}/s), {:.1} MB/s of WebSocket text",
        measured_s,
        delivered_measured,
        delivered_measured as f64 / measured_s,
        expected_measured as f64 / measured_s,
        (s1.bytes - s0.bytes) as f64 / 1e6 / measured_s,
    );
    println!(
        "latency publish→client (entries of the measured period, all clients, {} samples): p50 {} ms, p90 {} ms, p99 {} ms, p99.9 {} ms, max {} ms",
        overall.n,
        ms(overall.quantile(0.5)),
        ms(overall.quantile(0.9)),
        ms(overall.quantile(0.99)),
        ms(overall.quantile(0.999)),
        ms(overall.max),
    );
    println!(
        "of which the publisher's part (timestamp → batch encoded and handed to the NATS client): p50 {} ms, p99 {} ms, max {} ms",
        ms(pub_out.encode.quantile(0.5)),
        ms(pub_out.encode.quantile(0.99)),
        ms(pub_out.encode.max),
    );
    println!("drain: the last entry was received {drain_ms:.0} ms after the last batch was due");
    let tck = clock_ticks() as f64;
    let cpu_line = |label: &str, a: &CpuSample, b: &CpuSample| {
        let secs = (b.at - a.at).as_secs_f64();
        let pct = |t: u64| t as f64 / tck / secs * 100.0;
        let ticks = |s: &CpuSample, k: &str| s.groups.get(k).copied().unwrap_or(0);
        let g = |k: &str| ticks(b, k).saturating_sub(ticks(a, k));
        println!(
            "CPU {label} ({secs:.1} s, % of one core): hub {:.0} %, clients {:.0} %, publisher {:.0} %, whole process {:.0} %, nats-server {:.0} %",
            pct(g("hub")),
            pct(g("clients")),
            pct(g("publisher")),
            pct(b.process.saturating_sub(a.process)),
            pct(b.nats.saturating_sub(a.nats)),
        );
    };
    cpu_line("measured", &s0.cpu, &s1.cpu);
    cpu_line("whole run incl. warm-up and drain", &c_start, &c_end);
    let w = s1.window;
    println!(
        "memory: RSS {} MiB before the hub, {} MiB with the hub idle, {} MiB at the end of publishing, {} MiB at the end (peak {} MiB)",
        rss_before.0 / 1024,
        rss_hub_idle / 1024,
        s1.rss_kib / 1024,
        rss_end.0 / 1024,
        rss_end.1 / 1024,
    );
    println!(
        "the hub's window: {} entries in {} batches, {:.1} MiB of its {:.0} MiB limit ({:.1} MiB Arrow, {:.1} MiB JSON summaries of {} rows)",
        w.entries,
        w.batches,
        mib(w.bytes),
        mib(w.max_bytes),
        mib(arrow_bytes),
        mib(w.bytes.saturating_sub(arrow_bytes)),
        summary_rows,
    );
    println!(
        "hub counters: ingested {hub_ingested} entries, delivered {hub_delivered}, lost {hub_lost}; expectations computed in {:.1} s",
        expect_time.as_secs_f64()
    );
    if pub_out.ack_errors > 0 || hub_ingested != total_n {
        ok = false;
        println!(
            "problem: the hub ingested {hub_ingested} of {total_n} entries published ({} ack errors)",
            pub_out.ack_errors
        );
    }
    let show: Vec<usize> = if args.per_client {
        (0..args.clients).collect()
    } else {
        bad.iter().copied().take(20).collect()
    };
    if !show.is_empty() {
        println!();
        println!(
            "{:>5} {:>9} {:>9} {:>6} {:>9} {:>8} {:>8}  filter / problems",
            "#", "expected", "received", "lost", "checksum", "p50 ms", "p99 ms"
        );
    }
    for i in show {
        let (o, x) = (&outs[i], &expect[i]);
        let h = o.hist.clone().unwrap_or_else(Hist::new);
        let mut problems = Vec::new();
        if let Some(m) = o.stats_matched {
            problems.push(format!("hub says matched {m}"));
        }
        problems.extend(o.lost_reasons.iter().map(|r| format!("lost: {r}")));
        problems.extend(o.errors.iter().map(|e| format!("error: {e}")));
        if o.malformed > 0 {
            problems.push(format!("{} entries not understood", o.malformed));
        }
        if let Some(e) = &o.ended {
            problems.push(e.clone());
        }
        println!(
            "{:>5} {:>9} {:>9} {:>6} {:>9} {:>8} {:>8}  {:?} {}",
            i,
            x.count,
            o.received,
            o.lost,
            if o.checksum == x.checksum {
                "ok"
            } else {
                "DIFFERS"
            },
            ms(h.quantile(0.5)),
            ms(h.quantile(0.99)),
            filters[i].sql(),
            problems.join("; "),
        );
    }
    if bad.len() > 20 && !args.per_client {
        println!("… and {} more clients with problems", bad.len() - 20);
    }
    println!();
    println!(
        "{}",
        if ok {
            "OK: every client received exactly the entries its filter selects"
        } else {
            "FAIL"
        }
    );
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_round_trip() {
        for v in [0u64, 1, 127, 128, 129, 255, 256, 1000, 12_345, 1 << 30] {
            let i = Hist::index(v);
            let back = Hist::value(i);
            assert!(
                back.abs_diff(v) as f64 <= (v as f64 * 0.008).max(1.0),
                "{v} -> {back}"
            );
        }
    }

    #[test]
    fn filters_are_distinct() {
        let texts: std::collections::BTreeSet<String> =
            (0..1000).map(|i| Filter::for_client(i).sql()).collect();
        assert_eq!(
            texts.len(),
            1000 - 3,
            "four clients take everything (one text)"
        );
    }
}
