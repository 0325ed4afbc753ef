//! The worker against a real `nats-server -js` (its own port and store): replay,
//! NATS going away mid-replay, live capture in network namespaces, and a consumer
//! written in Python with no Reef code.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reef_integration::nats::{NatsServer, decode_all, read_subject};
use reef_integration::{case_dir, corpus_file, dissect_file, flows_of};
use reef_schema::{Entry, entries_from_batch, flows_from_batch};
use reef_worker::{Source, Speed, WorkerConfig};

fn replay_cfg(url: String, node: &str, files: Vec<PathBuf>, speed: Speed) -> WorkerConfig {
    let mut cfg = WorkerConfig::new(url, node, Source::Pcap { files, speed });
    cfg.redactor = None;
    cfg.publish_timeout = Duration::from_secs(30);
    cfg
}

/// What can be compared between `reef dissect` and the worker: everything but the id,
/// the node and the capture source.
fn comparable(mut v: Vec<Entry>) -> Vec<Entry> {
    for e in &mut v {
        e.id.clear();
        e.node = None;
        e.capture_source = reef_schema::CaptureSource::Pcap;
    }
    v.sort_by(|a, b| {
        (
            a.timestamp,
            a.src_port,
            a.dst_port,
            &a.method,
            &a.path,
            a.status_code,
        )
            .cmp(&(
                b.timestamp,
                b.src_port,
                b.dst_port,
                &b.method,
                &b.path,
                b.status_code,
            ))
    });
    v
}

fn files() -> Vec<PathBuf> {
    vec![
        corpus_file("http_zeek_pipelined-requests"),
        corpus_file("http_zeek_bro-org-browse"),
        corpus_file("http_zeek_chunked-body-match"),
        corpus_file("tcp_arkime_wireshark-retrans"),
        corpus_file("mixed_ndpi_1kxun-mobile-http-dns"),
        case_dir("keepalive-1000").join("capture.pcap"),
    ]
}

#[test]
fn replay_publishes_what_dissect_produces() {
    let nats = NatsServer::start();
    let files = files();
    let report = reef_worker::run_until(
        replay_cfg(nats.url(), "node-a", files.clone(), Speed::Max),
        std::future::pending(),
    )
    .expect("replay");

    let msgs = read_subject(&nats.url(), "REEF_RAW", "reef.v1.node.node-a.entries");
    let got = decode_all(&msgs, |b| entries_from_batch(b).expect("entry batch"));
    let want: Vec<Entry> = files.iter().flat_map(|f| dissect_file(f).0).collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(comparable(got.clone()), comparable(want.clone()));
    assert!(
        msgs.len() * 20 < got.len(),
        "{} messages for {} entries",
        msgs.len(),
        got.len()
    );
    let ids: std::collections::HashSet<&str> = got.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "entry ids are unique");
    assert!(got.iter().all(|e| e.node.as_deref() == Some("node-a")));

    // Every message says what it is.
    let mut seqs = Vec::new();
    for m in &msgs {
        let h = m.headers.as_ref().expect("headers");
        assert_eq!(
            h.get("Reef-Schema").map(|v| v.as_str()),
            Some("reef.v1.entry")
        );
        assert_eq!(
            h.get("Content-Type").map(|v| v.as_str()),
            Some("application/vnd.apache.arrow.stream")
        );
        assert!(
            h.get("Reef-Worker")
                .is_some_and(|w| w.as_str().starts_with("node-a-"))
        );
        assert!(h.get("Nats-Msg-Id").is_some());
        seqs.push(
            h.get("Reef-Batch-Seq")
                .expect("seq")
                .as_str()
                .parse::<u64>()
                .unwrap(),
        );
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=msgs.len() as u64).collect::<Vec<_>>());

    let flows = decode_all(
        &read_subject(&nats.url(), "REEF_RAW", "reef.v1.node.node-a.flows"),
        |b| flows_from_batch(b).expect("flow batch"),
    );
    let want_flows: usize = files.iter().map(|f| flows_of(f).len()).sum();
    assert_eq!(flows.len(), want_flows);
    assert_eq!(
        (
            report.produced_entries,
            report.published_entries,
            report.dropped_entries
        ),
        (want.len() as u64, want.len() as u64, 0)
    );
}

#[test]
fn redaction_happens_before_publishing() {
    let nats = NatsServer::start();
    let mut cfg = replay_cfg(
        nats.url(),
        "node-r",
        vec![
            corpus_file("http_ndpi_ua-split-two-pkts"),
            corpus_file("http_zeek_pipelined-requests"),
        ],
        Speed::Max,
    );
    cfg.redactor = Some(reef_redact::Redactor::default());
    reef_worker::run_until(cfg, std::future::pending()).expect("replay");
    let got = decode_all(
        &read_subject(&nats.url(), "REEF_RAW", "reef.v1.node.node-r.entries"),
        |b| entries_from_batch(b).unwrap(),
    );
    let secrets: Vec<&str> = got
        .iter()
        .flat_map(|e| [&e.request_headers, &e.response_headers])
        .flatten()
        .flat_map(|h| h.iter())
        .filter(|(n, _)| {
            ["cookie", "set-cookie", "authorization"].contains(&n.to_ascii_lowercase().as_str())
        })
        .map(|(_, v)| v)
        .collect();
    assert!(
        secrets.len() >= 10,
        "the captures send cookies: {}",
        secrets.len()
    );
    assert!(secrets.iter().all(|c| *c == reef_redact::REDACTED));
}

/// A copy of a capture with its packets spread `step` apart, to make a replay last.
fn stretched(src: &Path, step_ns: i64) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let mut r = reef_pcap::CaptureReader::new(std::io::Cursor::new(bytes)).unwrap();
    let out = std::env::temp_dir().join(format!("reef-stretched-{}.pcap", std::process::id()));
    let mut w = reef_pcap::PcapWriter::new(std::fs::File::create(&out).unwrap(), 1, true).unwrap();
    let mut t = 0;
    while let Some(p) = r.next_packet().unwrap() {
        t += step_ns;
        w.write_packet(1_700_000_000_000_000_000 + t, p.data, p.orig_len)
            .unwrap();
    }
    w.into_inner().unwrap();
    out
}

fn stream_messages(url: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let Ok(c) = async_nats::connect(url).await else {
            return 0;
        };
        let js = async_nats::jetstream::new(c);
        match js.get_stream("REEF_RAW").await {
            Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
            Err(_) => 0,
        }
    })
}

/// NATS dies mid-replay and comes back: the worker keeps going, and every entry is
/// either in the stream exactly once or counted as dropped.
#[test]
fn nats_restart_mid_replay_loses_nothing_uncounted() {
    let mut nats = NatsServer::start();
    let capture = stretched(&case_dir("keepalive-1000").join("capture.pcap"), 1_500_000);
    let mut cfg = replay_cfg(nats.url(), "node-b", vec![capture.clone()], Speed::Realtime);
    cfg.batch.rows = 20;
    // Few publishes in flight, so that the outage fills the worker's own buffer, and a
    // buffer small enough (each message is ~18 KB: the schema and 20 rows) that
    // batches are dropped while NATS is away.
    cfg.in_flight = 4;
    cfg.outbox_bytes = 60_000;
    let worker = std::thread::spawn(move || reef_worker::run_until(cfg, std::future::pending()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while stream_messages(&nats.url()) < 5 {
        assert!(Instant::now() < deadline, "nothing published");
        std::thread::sleep(Duration::from_millis(50));
    }
    nats.stop();
    std::thread::sleep(Duration::from_millis(1500));
    nats.restart();
    let report = worker.join().expect("worker thread").expect("replay");
    let _ = std::fs::remove_file(capture);

    let stored = decode_all(
        &read_subject(&nats.url(), "REEF_RAW", "reef.v1.node.node-b.entries"),
        |b| entries_from_batch(b).unwrap(),
    );
    assert_eq!(report.produced_entries, 1000);
    assert_eq!(
        report.published_entries + report.dropped_entries,
        report.produced_entries,
        "{report:?}"
    );
    assert_eq!(
        stored.len() as u64,
        report.published_entries,
        "no duplicates, no loss"
    );
    assert!(
        report.dropped_entries > 0,
        "the outage overflowed the buffer: {report:?}"
    );
    let ids: std::collections::HashSet<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), stored.len());
}

#[test]
fn replay_fails_clearly_without_nats() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = replay_cfg(
        format!("nats://127.0.0.1:{port}"),
        "node-x",
        vec![corpus_file("http_zeek_vlan")],
        Speed::Max,
    );
    cfg.connect_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = reef_worker::run_until(cfg, std::future::pending()).unwrap_err();
    assert!(err.to_string().contains("cannot reach NATS"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn python_consumer_reads_the_subjects_without_reef() {
    let nats = NatsServer::start();
    let files = vec![
        corpus_file("http_zeek_pipelined-requests"),
        case_dir("keepalive-1000").join("capture.pcap"),
    ];
    let report = reef_worker::run_until(
        replay_cfg(nats.url(), "node-p", files.clone(), Speed::Max),
        std::future::pending(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python/read_entries.py");
    // scripts/test points REEF_PYTHON at a venv with nats-py and pyarrow.
    let python = std::env::var("REEF_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(script)
        .args(["--nats", &nats.url(), "--subject", "reef.v1.node.*.entries"])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["entries"], report.published_entries);
    let want: Vec<Entry> = files.iter().flat_map(|f| dissect_file(f).0).collect();
    let ok = want.iter().filter(|e| e.status_code == Some(200)).count();
    assert_eq!(summary["by_status"]["200"], ok);
    assert_eq!(summary["by_method"]["GET"], want.len());
}

/// A plain HTTP/1.0 GET on loopback (no client library needed for one request).
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics listener");
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Network namespaces joined by a veth pair, removed on drop.
struct Netns {
    names: [String; 2],
    server: Option<Child>,
}

fn ip(args: &[&str]) {
    let st = Command::new("ip")
        .args(args)
        .status()
        .expect("ip (iproute2)");
    assert!(st.success(), "ip {args:?} (the live test needs root)");
}

impl Netns {
    fn new(tag: &str, subnet: u8) -> Netns {
        let names = [
            format!("reef{tag}a{}", std::process::id() % 10000),
            format!("reef{tag}b{}", std::process::id() % 10000),
        ];
        for n in &names {
            // Left over from an interrupted run, perhaps.
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
        }
        ip(&["netns", "add", &names[0]]);
        ip(&["netns", "add", &names[1]]);
        let (va, vb) = (format!("rv{tag}a{subnet}"), format!("rv{tag}b{subnet}"));
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        ip(&["link", "set", &va, "netns", &names[0]]);
        ip(&["link", "set", &vb, "netns", &names[1]]);
        let a = format!("10.79.{subnet}.1/24");
        let b = format!("10.79.{subnet}.2/24");
        ip(&["-n", &names[0], "addr", "add", &a, "dev", &va]);
        ip(&["-n", &names[1], "addr", "add", &b, "dev", &vb]);
        for (ns, dev) in [(&names[0], &va), (&names[1], &vb)] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        Netns {
            names,
            server: None,
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Live capture on a veth: an HTTP server in one namespace, curl in the other, the
/// worker capturing in the server's namespace; the entries come out of NATS.
#[test]
fn live_capture_on_a_veth_reaches_nats() {
    let subnet = (std::process::id() % 200) as u8 + 20;
    let mut ns = Netns::new("w", subnet);
    let nats = NatsServer::start();
    let docroot = std::env::temp_dir().join(format!("reef-docroot-{}", std::process::id()));
    std::fs::create_dir_all(&docroot).unwrap();
    std::fs::write(
        docroot.join("hello.txt"),
        "hello from the server namespace\n",
    )
    .unwrap();
    let server_ip = format!("10.79.{subnet}.1");
    ns.server = Some(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.names[0],
                "python3",
                "-m",
                "http.server",
                "8000",
                "--bind",
                &server_ip,
            ])
            .current_dir(&docroot)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 http.server"),
    );

    let mut cfg = WorkerConfig::new(
        nats.url(),
        "node-live",
        Source::Live(reef_capture::CaptureConfig {
            interfaces: vec![format!("rvwa{subnet}")],
            netns: Some(PathBuf::from(format!("/var/run/netns/{}", ns.names[0]))),
            ..reef_capture::CaptureConfig::default()
        }),
    );
    cfg.redactor = None;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cfg.metrics_listen = Some(([127, 0, 0, 1], metrics_port).into());
    // The worker's reports on reef.v1.status.<node>, as a hub reads them.
    let reports = std::sync::Arc::new(std::sync::Mutex::new(
        Vec::<reef_schema::WorkerStatus>::new(),
    ));
    let status_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut status_sub = status_rt.block_on(async {
        let c = async_nats::connect(nats.url()).await.unwrap();
        let s = c
            .subscribe(reef_schema::subjects::WORKER_STATUS_ALL)
            .await
            .unwrap();
        c.flush().await.unwrap();
        (c, s)
    });
    let status_reader = {
        let reports = reports.clone();
        std::thread::spawn(move || {
            use futures_util::StreamExt;
            status_rt.block_on(async {
                while let Ok(Some(m)) =
                    tokio::time::timeout(Duration::from_secs(30), status_sub.1.next()).await
                {
                    let s: reef_schema::WorkerStatus = serde_json::from_slice(&m.payload).unwrap();
                    let done = s.entries >= 20;
                    reports.lock().unwrap().push(s);
                    if done {
                        return;
                    }
                }
            })
        })
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = std::thread::spawn(move || {
        reef_worker::run_until(cfg, async move {
            let _ = stop_rx.await;
        })
    });

    // The server takes a moment to listen; curl retries until it does.
    let url = format!("http://{server_ip}:8000");
    for i in 0..20 {
        let path = if i % 5 == 4 { "/missing" } else { "/hello.txt" };
        let st = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.names[1],
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--retry",
                "20",
                "--retry-connrefused",
                "--retry-delay",
                "0",
            ])
            .arg(format!("{url}{path}"))
            .status()
            .expect("curl");
        assert!(st.success());
    }
    // Entries are published within the linger; allow for the flow to close too.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    while got.len() < 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        got = decode_all(
            &read_subject(&nats.url(), "REEF_RAW", "reef.v1.node.node-live.entries"),
            |b| entries_from_batch(b).unwrap(),
        );
    }
    // A batch is in the stream before its acknowledgment reaches the worker, which
    // counts it as published only then: read the metrics once that has happened.
    let read = |metrics: &str, name: &str| -> Option<f64> {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    let published = "reef_published_rows_total{kind=\"entries\"}";
    let mut metrics = http_get(metrics_port, "/metrics");
    while read(&metrics, published).unwrap_or(0.0) < 20.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        metrics = http_get(metrics_port, "/metrics");
    }
    status_reader.join().unwrap();
    let _ = stop_tx.send(());
    let report = worker.join().expect("worker thread").expect("live worker");
    let last = reports
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("status reports");
    assert_eq!(last.node, "node-live");
    assert!(last.entries >= 20 && last.packets > 0, "{last:?}");
    assert_eq!(last.kernel_drops, 0);
    let value = |name: &str| -> f64 {
        read(&metrics, name).unwrap_or_else(|| panic!("{name} missing from /metrics:\n{metrics}"))
    };
    assert!(value("reef_entries_total{protocol=\"http\"}") >= 20.0);
    assert!(value("reef_received_packets_total") > 0.0);
    assert_eq!(value("reef_dropped_packets_total"), 0.0);
    assert!(value("reef_matched_pairs_total{protocol=\"http\"}") >= 20.0);
    assert!(value(published) >= 20.0);
    assert!(metrics.contains("reef_buffered_bytes"));
    let _ = std::fs::remove_dir_all(&docroot);

    let hello = got
        .iter()
        .filter(|e| e.path.as_deref() == Some("/hello.txt") && e.status_code == Some(200))
        .count();
    let missing = got
        .iter()
        .filter(|e| e.path.as_deref() == Some("/missing") && e.status_code == Some(404))
        .count();
    assert_eq!(
        (hello, missing),
        (16, 4),
        "{:?}",
        got.iter()
            .map(|e| (&e.path, e.status_code))
            .collect::<Vec<_>>()
    );
    let e = got.iter().find(|e| e.status_code == Some(200)).unwrap();
    assert_eq!(e.method.as_deref(), Some("GET"));
    assert_eq!(e.dst_ip.to_string(), server_ip);
    assert_eq!(e.src_ip.to_string(), format!("10.79.{subnet}.2"));
    assert_eq!(e.capture_source, reef_schema::CaptureSource::AfPacket);
    assert_eq!(report.dropped_entries, 0);
}
