//! The hub end to end: a real nats-server, the worker replaying captures, a correlator,
//! two hubs, and WebSocket clients (tokio-tungstenite) with their own filters.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reef_integration::nats::NatsServer;
use reef_integration::{case_dir, corpus_file, dissect_file};
use reef_schema::Entry;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A hub on its own runtime, so that killing it (dropping the runtime) ends every task
/// and connection at once, like a process dying.
pub struct HubProc {
    rt: Option<tokio::runtime::Runtime>,
    pub addr: SocketAddr,
}

impl HubProc {
    pub fn start(nats_url: &str, config: reef_hub::HubConfig) -> HubProc {
        let rt = runtime();
        let url = nats_url.to_string();
        let addr = rt.block_on(async move {
            let client = async_nats::connect(url).await.unwrap();
            let hub = reef_hub::Hub::new(
                Arc::new(reef_hub::JetStreamSource::new(client.clone())),
                config,
            );
            tokio::spawn(reef_hub::follow_worker_status(hub.clone(), client));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(hub.serve(listener, std::future::pending()));
            addr
        });
        HubProc { rt: Some(rt), addr }
    }

    pub fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for HubProc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn replay(url: &str, node: &str, files: &[PathBuf]) {
    let mut cfg = reef_worker::WorkerConfig::new(
        url.to_string(),
        node,
        reef_worker::Source::Pcap {
            files: files.to_vec(),
            speed: reef_worker::Speed::Max,
        },
    );
    cfg.redactor = None;
    reef_worker::run_until(cfg, std::future::pending()).expect("replay");
}

/// What identifies an entry across the pipeline (ids are per worker run).
type Key = (i64, Option<u16>, Option<u16>, String, String, Option<i32>);

fn key_of_entry(e: &Entry) -> Key {
    (
        e.timestamp,
        e.src_port,
        e.dst_port,
        e.method.clone().unwrap_or_default(),
        e.path.clone().unwrap_or_default(),
        e.status_code,
    )
}

fn key_of_json(v: &Value) -> Key {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let port = |k: &str| v[k].as_u64().map(|p| p as u16);
    (
        v["timestamp"].as_i64().unwrap(),
        port("src_port"),
        port("dst_port"),
        s("method"),
        s("path"),
        v["status_code"].as_i64().map(|c| c as i32),
    )
}

/// A filter and the same condition written in Rust, to check the hub independently.
struct Case {
    filter: &'static str,
    matches: fn(&Entry) -> bool,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            filter: "",
            matches: |_| true,
        },
        Case {
            filter: "status_code >= 400",
            matches: |e| e.status_code.is_some_and(|s| s >= 400),
        },
        Case {
            filter: "protocol = 'dns' OR method = 'POST'",
            matches: |e| {
                e.protocol == reef_schema::Protocol::Dns || e.method.as_deref() == Some("POST")
            },
        },
        Case {
            filter: "method = 'GET' AND status_code = 200 AND path LIKE '/%'",
            matches: |e| {
                e.method.as_deref() == Some("GET")
                    && e.status_code == Some(200)
                    && e.path.as_deref().is_some_and(|p| p.starts_with('/'))
            },
        },
    ]
}

fn expected(files: &[PathBuf], f: fn(&Entry) -> bool) -> Vec<Key> {
    let mut keys: Vec<Key> = files
        .iter()
        .flat_map(|p| dissect_file(p).0)
        .filter(f)
        .map(|e| key_of_entry(&e))
        .collect();
    keys.sort();
    keys
}

/// A WebSocket client that remembers what it received.
pub struct Client {
    ws: Ws,
    sub: Option<u64>,
    pub entries: Vec<Value>,
    pub cursor: Option<String>,
    pub lost: u64,
    pub completed: Option<String>,
    pub errors: Vec<Value>,
    pub stats: Option<Value>,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client {
            ws,
            sub: None,
            entries: Vec::new(),
            cursor: None,
            lost: 0,
            completed: None,
            errors: Vec::new(),
            stats: None,
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    /// Sends a subscribe and waits for `subscribed` (or an error).
    pub async fn subscribe(&mut self, v: Value) -> Result<Value, Value> {
        self.send(v).await;
        loop {
            let m = self
                .next_json(Duration::from_secs(10))
                .await
                .expect("an answer");
            match m["type"].as_str() {
                Some("subscribed") => {
                    self.sub = m["sub"].as_u64();
                    self.completed = None;
                    return Ok(m);
                }
                Some("error") => return Err(m),
                _ => {}
            }
        }
    }

    async fn next_json(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(wait, self.ws.next()).await.ok()??;
            match msg {
                Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).unwrap()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Handles one message; false when the connection ended or nothing came in `wait`.
    pub async fn pump(&mut self, wait: Duration) -> bool {
        let Some(m) = self.next_json(wait).await else {
            return false;
        };
        let mine = m["sub"].as_u64() == self.sub;
        match m["type"].as_str() {
            Some("entries") if mine => {
                self.entries
                    .extend(m["entries"].as_array().unwrap().iter().cloned());
                self.cursor = m["cursor"].as_str().map(str::to_string);
            }
            Some("lost") if mine => self.lost += m["count"].as_u64().unwrap(),
            Some("complete") if mine => self.completed = m["reason"].as_str().map(str::to_string),
            Some("stats") if mine => self.stats = Some(m),
            Some("error") => self.errors.push(m),
            _ => {}
        }
        true
    }

    /// Reads until `n` entries in all, the subscription completes, or `timeout`.
    pub async fn read_until(&mut self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.entries.len() < n && self.completed.is_none() && Instant::now() < deadline {
            self.pump(Duration::from_millis(500)).await;
        }
    }

    /// Reads whatever else comes within `quiet`.
    /// Reads until no entries (stats do not count) came for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) {
        let mut last = (self.entries.len(), self.lost, Instant::now());
        while last.2.elapsed() < quiet {
            if !self.pump(quiet - last.2.elapsed().min(quiet)).await {
                break;
            }
            if (self.entries.len(), self.lost) != (last.0, last.1) {
                last = (self.entries.len(), self.lost, Instant::now());
            }
        }
    }

    pub fn keys(&self) -> Vec<Key> {
        let mut k: Vec<Key> = self.entries.iter().map(key_of_json).collect();
        k.sort();
        k
    }

    pub fn assert_no_repeats(&self) {
        let mut cursors: Vec<&str> = self
            .entries
            .iter()
            .map(|e| e["cursor"].as_str().unwrap())
            .collect();
        let n = cursors.len();
        cursors.sort_unstable();
        cursors.dedup();
        assert_eq!(cursors.len(), n, "an entry was delivered twice");
    }
}

fn hub_config() -> reef_hub::HubConfig {
    reef_hub::HubConfig::default()
}

#[test]
fn two_hubs_filter_history_live_and_failover_without_loss_or_repeat() {
    let nats = NatsServer::start();
    let url = nats.url();
    let rt = runtime();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let correlator = rt.spawn(reef_correlator::run(
        reef_correlator::CorrelatorConfig::new(url.clone()),
        None,
        async move {
            let _ = stop_rx.await;
        },
    ));

    let phase1 = vec![
        corpus_file("mixed_ndpi_1kxun-mobile-http-dns"),
        corpus_file("http_zeek_methods"),
    ];
    let phase2 = vec![case_dir("keepalive-1000").join("capture.pcap")];
    let phase3 = vec![
        corpus_file("http_zeek_bro-org-browse"),
        corpus_file("dns_arkime_wireshark-sample"),
    ];
    let phase4 = vec![
        corpus_file("http_zeek_post-large"),
        corpus_file("http_zeek_get-gzip"),
    ];
    let phases = [&phase1, &phase2, &phase3, &phase4];
    let cases = cases();
    // want[case][phase]
    let want: Vec<Vec<Vec<Key>>> = cases
        .iter()
        .map(|c| phases.iter().map(|p| expected(p, c.matches)).collect())
        .collect();
    let upto = |c: usize, p: usize| -> usize { (0..=p).map(|i| want[c][i].len()).sum() };
    assert!(want[0][1].len() >= 1000 && want[1][0].len() + want[1][1].len() > 10);

    // Phase 1 is stored before any hub runs: clients get it as history.
    replay(&url, "node-a", &phase1);
    let mut hub_a = HubProc::start(&url, hub_config());
    let hub_b = HubProc::start(&url, hub_config());
    let t0 = Instant::now();

    // Clients 0..4 on hub A, 4..8 on hub B: every filter on both hubs.
    let mut clients: Vec<(usize, Client)> = rt.block_on(async {
        let mut v = Vec::new();
        for i in 0..cases.len() * 2 {
            let c = i % cases.len();
            let hub = if i < cases.len() { &hub_a } else { &hub_b };
            let mut client = Client::connect(&hub.ws_url()).await;
            client
                .subscribe(
                    json!({"type": "subscribe", "filter": cases[c].filter, "since": "start"}),
                )
                .await
                .unwrap();
            v.push((c, client));
        }
        for (c, client) in v.iter_mut() {
            client
                .read_until(upto(*c, 0), Duration::from_secs(30))
                .await;
            assert_eq!(
                client.entries.len(),
                upto(*c, 0),
                "history for {:?}",
                cases[*c].filter
            );
        }
        v
    });
    eprintln!("history delivered to 8 clients in {:?}", t0.elapsed());

    // Phase 2 live; hub A dies after its clients have read one more message.
    replay(&url, "node-b", &phase2);
    rt.block_on(async {
        for (i, (c, client)) in clients.iter_mut().enumerate() {
            if i < cases.len() {
                let before = client.entries.len();
                let deadline = Instant::now() + Duration::from_secs(30);
                while client.entries.len() == before && upto(*c, 1) > before {
                    assert!(
                        Instant::now() < deadline,
                        "no live entries on hub A: {:?}",
                        client.stats
                    );
                    client.pump(Duration::from_millis(500)).await;
                }
            } else {
                client
                    .read_until(upto(*c, 1), Duration::from_secs(30))
                    .await;
                assert_eq!(client.entries.len(), upto(*c, 1));
            }
        }
    });
    let partial: Vec<usize> = clients[..cases.len()]
        .iter()
        .map(|(_, c)| c.entries.len())
        .collect();
    hub_a.kill();

    // Phase 3 is stored while A's clients are away; stores times bound it for `since`.
    let t3 = reef_hub::session::now_ns();
    replay(&url, "node-a", &phase3);
    rt.block_on(async {
        for (i, (c, client)) in clients.iter_mut().enumerate() {
            if i < cases.len() {
                // Reconnect to the other hub, after the last cursor seen.
                let mut fresh = Client::connect(&hub_b.ws_url()).await;
                fresh.entries = std::mem::take(&mut client.entries);
                let after = client.cursor.clone();
                fresh
                    .subscribe(
                        json!({"type": "subscribe", "filter": cases[*c].filter, "after": after}),
                    )
                    .await
                    .unwrap();
                *client = fresh;
            }
            client
                .read_until(upto(*c, 2), Duration::from_secs(30))
                .await;
            assert_eq!(
                client.entries.len(),
                upto(*c, 2),
                "client {i} {:?}: {:?} {:?}",
                cases[*c].filter,
                client.stats,
                client.errors
            );
        }
    });
    let t4 = reef_hub::session::now_ns();

    // Phase 4 live on B for everyone.
    replay(&url, "node-c", &phase4);
    rt.block_on(async {
        for (c, client) in clients.iter_mut() {
            client
                .read_until(upto(*c, 3), Duration::from_secs(30))
                .await;
            client.drain(Duration::from_millis(1500)).await;
        }
    });
    for (i, (c, client)) in clients.iter().enumerate() {
        let mut all: Vec<Key> = want[*c].iter().flatten().cloned().collect();
        all.sort();
        assert_eq!(client.lost, 0, "client {i}");
        assert!(client.errors.is_empty(), "client {i}: {:?}", client.errors);
        client.assert_no_repeats();
        assert_eq!(client.keys(), all, "client {i} with {:?}", cases[*c].filter);
    }
    eprintln!(
        "hub A's clients had {partial:?} entries when it was killed; each then got the rest from hub B"
    );

    // History by store time: exactly phase 3, then `complete`.
    rt.block_on(async {
        for (c, case) in cases.iter().enumerate() {
            let mut client = Client::connect(&hub_b.ws_url()).await;
            let ok = client
                .subscribe(json!({
                    "type": "subscribe", "filter": case.filter,
                    "since": reef_hub::api::rfc3339(t3), "until": reef_hub::api::rfc3339(t4),
                }))
                .await
                .unwrap();
            assert_eq!(ok["filter"], case.filter);
            client.read_until(usize::MAX, Duration::from_secs(30)).await;
            assert_eq!(client.completed.as_deref(), Some("until"));
            assert_eq!(
                client.keys(),
                want[c][2],
                "{:?} between t3 and t4",
                case.filter
            );
        }
        // `limit` ends a subscription after that many matches.
        let mut client = Client::connect(&hub_b.ws_url()).await;
        client
            .subscribe(json!({"type": "subscribe", "filter": "", "since": "start", "limit": 7}))
            .await
            .unwrap();
        client.read_until(usize::MAX, Duration::from_secs(30)).await;
        assert_eq!(client.completed.as_deref(), Some("limit"));
        assert_eq!(client.entries.len(), 7);
    });

    // REST over the same stream.
    let total: usize = upto(0, 3);
    let body = http(
        hub_b.addr,
        "GET",
        "/api/entries?since=start&limit=10000",
        "",
    );
    assert_eq!(body.0, 200);
    assert_eq!(body.1.lines().count(), total);
    let (status, body) = http(
        hub_b.addr,
        "GET",
        "/api/entries?since=start&limit=10000&filter=status_code%20%3E%3D%20400",
        "",
    );
    assert_eq!(status, 200);
    let mut keys: Vec<Key> = body
        .lines()
        .map(|l| key_of_json(&serde_json::from_str(l).unwrap()))
        .collect();
    keys.sort();
    let mut all4xx: Vec<Key> = want[1].iter().flatten().cloned().collect();
    all4xx.sort();
    assert_eq!(keys, all4xx);
    // One entry in full, by id and cursor, from a hub: headers and bodies included.
    let first: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    let (status, full) = http(
        hub_b.addr,
        "GET",
        &format!(
            "/api/entries/{}?cursor={}",
            first["id"].as_str().unwrap(),
            first["cursor"].as_str().unwrap()
        ),
        "",
    );
    assert_eq!(status, 200, "{full}");
    let full: Value = serde_json::from_str(&full).unwrap();
    assert_eq!(full["id"], first["id"]);
    assert!(full["request_headers"].is_object(), "{full}");
    // SQL and the service map over the window.
    let (status, sql) = http(
        hub_b.addr,
        "POST",
        "/api/sql",
        r#"{"sql": "SELECT count(*) AS n FROM entries WHERE status_code >= 400"}"#,
    );
    assert_eq!(status, 200, "{sql}");
    let sql: Value = serde_json::from_str(&sql).unwrap();
    assert_eq!(sql["rows"][0][0], json!(all4xx.len()));
    let (status, map) = http(hub_b.addr, "GET", "/api/servicemap", "");
    assert_eq!(status, 200);
    let map: Value = serde_json::from_str(&map).unwrap();
    assert_eq!(map["entries"], json!(total));
    assert!(!map["edges"].as_array().unwrap().is_empty());
    // The dashboard's time range: by store time, as `since`/`until` of /ws.
    let (status, map) = http(
        hub_b.addr,
        "GET",
        &format!("/api/servicemap?since={t3}&until={t4}"),
        "",
    );
    assert_eq!(status, 200, "{map}");
    let map: Value = serde_json::from_str(&map).unwrap();
    assert_eq!(
        map["entries"],
        json!(want[0][2].len()),
        "case 0 takes everything"
    );
    let (status, metrics) = http(hub_b.addr, "GET", "/metrics", "");
    assert_eq!(status, 200);
    assert!(metrics.contains("reef_hub_delivered_entries_total"));
    assert_eq!(http(hub_b.addr, "GET", "/readyz", "").0, 200);

    let _ = stop_tx.send(());
    rt.block_on(correlator).unwrap().unwrap();
}

/// A plain HTTP/1.1 request; (status, body).
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text[9..12].parse().unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Bad filters and messages get `error` and the connection and hub go on serving.
#[test]
fn bad_filters_get_errors_and_the_hub_keeps_serving() {
    let nats = NatsServer::start();
    let url = nats.url();
    let rt = runtime();
    // An enriched stream with a few entries, published directly.
    publish_enriched(&rt, &url, 3, 100);
    let hub = HubProc::start(&url, hub_config());
    let bad = [
        ("stauts_code = 200", "did you mean 'status_code'"),
        ("status_code >= ", "syntax"),
        ("status_code = 'abc'", ""),
        ("method = 200", ""),
        ("1; DROP TABLE entries", ""),
        ("status_code = 1; DELETE FROM entries", ""),
        ("' OR 1=1 --", ""),
        ("path = '' OR '1'='1' -- comment", ""),
        ("(SELECT 1) = 1", "subquer"),
        (
            "status_code IN (SELECT status_code FROM entries)",
            "subquer",
        ),
        ("count(*) > 1", "aggregate"),
        ("random() > 0.5", ""),
        ("now() > timestamp", ""),
        ("row_number() OVER () > 1", ""),
        ("status_code", "boolean"),
        ("method", "boolean"),
        ("((((((status_code = 1", ""),
        ("status_code = 1 AND", ""),
        ("nosuchfunc(path) = 'x'", ""),
        ("path LIKE", ""),
        ("$1 = 1", ""),
        ("status_code = ?", ""),
        ("src_labels['app'] = 1 +", ""),
        ("pg_sleep(10) IS NULL", ""),
        ("elapsed_time > 'slow'", ""),
        ("protocol = 'http' ORDER BY 1", ""),
        ("protocol = 'htpp'", "did you mean 'http'"),
    ];
    rt.block_on(async {
        let mut c = Client::connect(&hub.ws_url()).await;
        for (filter, hint) in bad {
            let err = c
                .subscribe(json!({"type": "subscribe", "filter": filter, "since": "start"}))
                .await
                .expect_err(filter);
            let msg = err["message"].as_str().unwrap();
            assert!(!msg.is_empty(), "{filter}");
            assert!(
                msg.to_lowercase().contains(hint),
                "{filter:?}: {msg:?} should mention {hint:?}"
            );
        }
        // A filter longer than the limit.
        let long = format!("path = '{}'", "x".repeat(4096));
        assert!(
            c.subscribe(json!({"type": "subscribe", "filter": long}))
                .await
                .is_err()
        );
        // Messages that are not the protocol.
        for m in [
            json!({"type": "launch"}),
            json!({"type": "subscribe", "filter": 5}),
            json!({"type": "subscribe", "since": "yesterday"}),
            json!({"type": "subscribe", "limit": 0}),
            json!({"type": "subscribe", "after": "not-a-cursor"}),
            json!({"type": "pause"}),
        ] {
            c.send(m.clone()).await;
            let r = c.next_json(Duration::from_secs(5)).await.unwrap();
            assert_eq!(r["type"], "error", "{m}");
        }
        c.ws.send(Message::Text("not json".into())).await.unwrap();
        assert_eq!(
            c.next_json(Duration::from_secs(5)).await.unwrap()["type"],
            "error"
        );
        // The same connection still works.
        let ok = c
            .subscribe(
                json!({"type": "subscribe", "filter": "status_code = 200", "since": "start"}),
            )
            .await
            .unwrap();
        assert_eq!(ok["type"], "subscribed");
        // 3 batches of 100, one in ten a 503.
        c.read_until(270, Duration::from_secs(20)).await;
        c.drain(Duration::from_millis(500)).await;
        assert_eq!(c.entries.len(), 270);
    });
    // REST: 4xx with a reason, never 5xx.
    for (method, path, body) in [
        ("GET", "/api/entries?filter=stauts_code%3D1", ""),
        ("GET", "/api/entries?limit=0", ""),
        ("GET", "/api/entries?limit=abc", ""),
        ("GET", "/api/entries?since=never", ""),
        ("GET", "/api/entries?bogus=1", ""),
        ("GET", "/api/entries?after=zz", ""),
        ("GET", "/api/entries/nope?cursor=bad", ""),
        ("GET", "/api/entries/nope?cursor=99999.0", ""),
        ("GET", "/api/servicemap?filter=1%3B", ""),
        ("GET", "/api/servicemap?since=yesterday", ""),
        ("GET", "/api/servicemap?since=now&until=-1h", ""),
        ("POST", "/api/validate", "not json"),
        ("POST", "/api/validate", r#"{"filtre": "x"}"#),
        ("POST", "/api/sql", r#"{"sql": "DROP TABLE entries"}"#),
        (
            "POST",
            "/api/sql",
            r#"{"sql": "INSERT INTO entries SELECT * FROM entries"}"#,
        ),
        (
            "POST",
            "/api/sql",
            r#"{"sql": "SELECT * FROM '/etc/passwd'"}"#,
        ),
        ("POST", "/api/sql", r#"{"sql": "SELECT nope FROM entries"}"#),
        ("POST", "/api/sql", "{}"),
    ] {
        let (status, text) = http(hub.addr, method, path, body);
        assert!(
            (400..500).contains(&status),
            "{method} {path} {body}: {status} {text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}"));
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{text}");
    }
    let (status, v) = http(
        hub.addr,
        "POST",
        "/api/validate",
        r#"{"filter": "stauts_code = 1"}"#,
    );
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["position"], json!({"line": 1, "column": 1}));
    let (_, v) = http(
        hub.addr,
        "POST",
        "/api/validate",
        r#"{"filter": "status_code >= 500"}"#,
    );
    assert_eq!(serde_json::from_str::<Value>(&v).unwrap()["ok"], true);
    assert_eq!(http(hub.addr, "GET", "/healthz", "").0, 200);
}

/// Publishes `batches` enriched batches of `rows` synthetic entries, straight to
/// REEF_ENRICHED (as a correlator would).
pub fn publish_enriched(rt: &tokio::runtime::Runtime, url: &str, batches: usize, rows: usize) {
    publish_enriched_paced(rt, url, batches, rows, Duration::ZERO);
}

/// Like [`publish_enriched`], one batch every `every` at most; returns when the last
/// batch was acknowledged.
pub fn publish_enriched_paced(
    rt: &tokio::runtime::Runtime,
    url: &str,
    batches: usize,
    rows: usize,
    every: Duration,
) -> Instant {
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
        reef_correlator::service::ensure_stream(
            &js,
            &reef_correlator::config::StreamLimits::default(),
        )
        .await
        .unwrap();
        let start = tokio::time::Instant::now();
        let mut acks = Vec::new();
        for b in 0..batches {
            tokio::time::sleep_until(start + every * b as u32).await;
            let entries = synthetic(b, rows);
            let payload = reef_schema::ipc::encode(
                &Entry::batch(&entries),
                reef_schema::ipc::Compression::Lz4,
            )
            .unwrap();
            acks.push(
                js.publish("reef.v1.enriched.shop.http", payload.into())
                    .await
                    .unwrap(),
            );
        }
        for a in acks {
            a.await.unwrap();
        }
        Instant::now()
    })
}

fn synthetic(batch: usize, rows: usize) -> Vec<Entry> {
    (0..rows)
        .map(|i| Entry {
            id: format!("s-{batch}-{i}"),
            timestamp: 1_700_000_000_000_000_000 + (batch * rows + i) as i64,
            method: Some("GET".into()),
            path: Some(format!("/item/{i}")),
            status_code: Some(if i % 10 == 0 { 503 } else { 200 }),
            elapsed_time: Some(100 + i as i64),
            src_ip: "10.0.0.1".parse().unwrap(),
            dst_ip: "10.0.0.2".parse().unwrap(),
            src_port: Some(40000),
            dst_port: Some(80),
            dst_service: Some("api".into()),
            dst_namespace: Some("shop".into()),
            ..Entry::default()
        })
        .collect()
}

/// A client that never reads does not delay the others: they get every entry as soon
/// as they would alone, while it gets `lost` for what its queue could not hold.
#[test]
fn a_client_that_never_reads_does_not_delay_the_others() {
    let nats = NatsServer::start();
    let url = nats.url();
    let rt = runtime();
    // The default queue (64 messages): the slow client overflows it and its socket's
    // buffers with 200 messages of 1000 entries.
    let hub = HubProc::start(&url, hub_config());
    const BATCHES: usize = 200;
    const ROWS: usize = 1000;
    const MATCHING: usize = BATCHES * ROWS / 10;
    // 40 000 entries/s in: the fast clients (debug builds, on a busy machine) need to
    // keep up with their tenth of it, which is what the test is about; the publisher
    // is paced so that their speed, not a burst, decides.
    const EVERY: Duration = Duration::from_millis(25);
    // Returns how long after the last publish the last fast client had everything.
    let measure = |with_slow: bool| -> (Duration, u64) {
        let (slow, readers) = rt.block_on(async {
            let mut slow = None;
            if with_slow {
                let mut s = Client::connect(&hub.ws_url()).await;
                s.subscribe(json!({"type": "subscribe", "filter": ""}))
                    .await
                    .unwrap();
                slow = Some(s);
            }
            let mut readers = Vec::new();
            for _ in 0..3 {
                let mut c = Client::connect(&hub.ws_url()).await;
                c.subscribe(json!({"type": "subscribe", "filter": "status_code >= 500"}))
                    .await
                    .unwrap();
                // Every fast client reads all the time, each in its own task.
                readers.push(tokio::spawn(async move {
                    c.read_until(MATCHING, Duration::from_secs(120)).await;
                    (c, Instant::now())
                }));
            }
            (slow, readers)
        });
        let url = url.clone();
        let published = std::thread::spawn(move || {
            publish_enriched_paced(&runtime(), &url, BATCHES, ROWS, EVERY)
        })
        .join()
        .unwrap();
        let mut last = published;
        for r in rt.block_on(futures_util::future::join_all(readers)) {
            let (c, done) = r.unwrap();
            assert_eq!(
                (c.entries.len(), c.lost),
                (MATCHING, 0),
                "a fast client got everything and lost nothing"
            );
            c.assert_no_repeats();
            last = last.max(done);
        }
        let tail = last - published;
        let mut lost = 0;
        if let Some(mut s) = slow {
            // Now it reads: what it gets plus what it lost is everything.
            rt.block_on(s.drain(Duration::from_secs(3)));
            lost = s.lost;
            assert!(s.lost > 0, "the slow client was told what it lost");
            assert_eq!(s.entries.len() as u64 + s.lost, (BATCHES * ROWS) as u64);
            s.assert_no_repeats();
        }
        (tail, lost)
    };
    let (alone, _) = measure(false);
    let (with_slow, lost) = measure(true);
    eprintln!(
        "3 clients × {MATCHING} matching entries at {} entries/s in: the last arrived {alone:?} after the last publish alone, {with_slow:?} beside a client that never reads ({lost} entries dropped for it)",
        ROWS as u128 * 1000 / EVERY.as_millis()
    );
}
