//! Times writing entries as JSON lines: the serde path against the hand-written writer.
//!
//!     cargo run --release -p reef-schema --example json_bench [entries [serde|fast]]
//!
//! With `serde` or `fast`, only that writer runs (ten passes), for profiling.
//!
//! The entries look like Kubernetes API traffic: GET and POST exchanges with about eight
//! header fields each way and bodies of 0 to 20 KB: JSON (most), protobuf (binary, so
//! base64), log text with newlines and HTML with non-ASCII text and the odd U+2028.
//! Lines go to a 1 MiB `BufWriter` over `io::sink()`, as `reef dissect` writes them.

use std::hint::black_box;
use std::io::{self, BufWriter, Write};
use std::time::{Duration, Instant};

use reef_schema::{
    Body, CaptureSource, Entry, Flags, Headers, Protocol, Transport, write_json_line,
    write_json_line_serde,
};

/// xorshift64*: deterministic, so every run times the same entries.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }
}

const NAMES: &[&str] = &[
    "web", "api", "worker", "redis", "postgres", "nginx", "checkout", "cart", "auth",
];
const NAMESPACES: &[&str] = &["default", "kube-system", "shop", "monitoring", "payments"];

/// A Kubernetes-style JSON document of about `size` bytes.
fn json_body(rng: &mut Rng, size: usize) -> String {
    let mut s = String::from(
        r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"123456"},"items":["#,
    );
    let mut first = true;
    while s.len() < size {
        if !first {
            s.push(',');
        }
        first = false;
        let name = rng.pick(NAMES);
        let ns = rng.pick(NAMESPACES);
        s.push_str(&format!(
            r#"{{"metadata":{{"name":"{name}-{}","namespace":"{ns}","uid":"{}","labels":{{"app":"{name}","pod-template-hash":"{}"}},"annotations":{{"kubectl.kubernetes.io/last-applied-configuration":"{{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}}\n"}}}},"spec":{{"containers":[{{"name":"{name}","image":"registry.example.com/{name}:1.{}.{}","ports":[{{"containerPort":{},"protocol":"TCP"}}],"resources":{{"limits":{{"cpu":"500m","memory":"256Mi"}}}}}}],"nodeName":"node-{}"}},"status":{{"phase":"Running","podIP":"10.0.{}.{}","startTime":"2024-05-0{}T12:00:00Z"}}}}"#,
            rng.hex(5),
            rng.hex(32),
            rng.hex(10),
            rng.below(30),
            rng.below(10),
            8000 + rng.below(100),
            rng.below(8),
            rng.below(256),
            rng.below(256),
            1 + rng.below(9),
        ));
    }
    s.push_str("]}");
    s
}

/// Container log lines.
fn log_body(rng: &mut Rng, size: usize) -> String {
    let mut s = String::new();
    while s.len() < size {
        s.push_str(&format!(
            "2024-05-01T12:{:02}:{:02}.{:06}Z\tINFO\t{}\trequest served\tpath=/api/v1/items/{} status=200 duration={}ms user_agent=\"Mozilla/5.0\"\n",
            rng.below(60),
            rng.below(60),
            rng.below(1_000_000),
            rng.pick(NAMES),
            rng.below(10_000),
            rng.below(500),
        ));
    }
    s
}

/// HTML and minified JavaScript with non-ASCII text and an occasional U+2028.
fn html_body(rng: &mut Rng, size: usize) -> String {
    let mut s = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Café — Übersicht</title></head><body>",
    );
    while s.len() < size {
        match rng.below(4) {
            0 => s.push_str("<p class=\"lead\">Prix : 12,50 € — livraison gratuite à partir de 50 €. Überraschung für Kunden…</p>"),
            1 => s.push_str("<script>var t=\"line\u{2028}separated\";function f(a,b){return a+b}window.x=f(1,2);</script>"),
            2 => s.push_str("<div><a href=\"/products?id=42&amp;ref=home\">Product catalogue page with a long description of the items</a></div>"),
            _ => s.push_str("<ul><li>日本語のテキスト</li><li>Ελληνικά</li><li>Русский текст</li></ul>"),
        }
    }
    s.push_str("</body></html>");
    s
}

/// Protobuf-like bytes: not UTF-8.
fn binary_body(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut b = vec![0x6b, 0x38, 0x73, 0x00, 0xff];
    while b.len() < size {
        b.extend_from_slice(&rng.next().to_le_bytes());
    }
    b.truncate(size.max(5));
    b
}

fn body(rng: &mut Rng, max: u64) -> Option<Body> {
    let size = rng.below(max + 1) as usize;
    if size == 0 {
        return None;
    }
    Some(Body(match rng.below(10) {
        0..=4 => json_body(rng, size).into_bytes(),
        5 | 6 => binary_body(rng, size),
        7 | 8 => log_body(rng, size).into_bytes(),
        _ => html_body(rng, size).into_bytes(),
    }))
}

fn entry(rng: &mut Rng, i: u64) -> Entry {
    let post = rng.below(3) == 0;
    let ns = rng.pick(NAMESPACES);
    let name = rng.pick(NAMES);
    let path = format!(
        "/api/v1/namespaces/{ns}/pods?labelSelector=app%3D{name}&limit={}",
        rng.below(500)
    );
    let mut req = Headers::new();
    req.push("Host", "10.96.0.1:443");
    req.push(
        "User-Agent",
        "kubectl/v1.30.1 (linux/amd64) kubernetes/6911225",
    );
    req.push(
        "Accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    );
    req.push(
        "Authorization",
        format!("Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6I{}", rng.hex(120)),
    );
    req.push("Accept-Encoding", "gzip");
    req.push("Kubectl-Command", "kubectl get");
    req.push("Kubectl-Session", rng.hex(36));
    if post {
        req.push("Content-Type", "application/json");
    }
    if rng.below(5) == 0 {
        req.push("accept", "*/*");
    }
    let request_body = if post { body(rng, 5_000) } else { None };
    let response_body = body(rng, 20_000);
    let mut resp = Headers::new();
    resp.push("Audit-Id", rng.hex(36));
    resp.push("Cache-Control", "no-cache, private");
    resp.push("Content-Type", "application/json");
    resp.push(
        "Content-Length",
        response_body.as_ref().map_or(0, |b| b.0.len()).to_string(),
    );
    resp.push("Date", "Wed, 01 May 2024 12:00:00 GMT");
    resp.push("X-Kubernetes-Pf-Flowschema-Uid", rng.hex(36));
    resp.push("X-Kubernetes-Pf-Prioritylevel-Uid", rng.hex(36));
    if rng.below(4) == 0 {
        resp.push("Set-Cookie", "session=abc; Path=/; HttpOnly");
        resp.push(
            "Set-Cookie",
            "theme=dark; Expires=Wed, 01 May 2025 12:00:00 GMT",
        );
    }
    let status = if rng.below(10) == 0 { 404 } else { 200 };
    Entry {
        id: format!("f0-{i}"),
        node: Some("node-a".into()),
        timestamp: 1_714_564_800_000_000_000 + (i as i64) * 1_234_567,
        elapsed_time: Some(rng.below(200_000) as i64),
        protocol: Protocol::Http,
        transport: Transport::Tcp,
        src_ip: format!("10.0.{}.{}", rng.below(256), rng.below(256))
            .parse()
            .expect("an IPv4 address"),
        src_port: Some(30_000 + rng.below(30_000) as u16),
        dst_ip: if rng.below(4) == 0 {
            "fd00:10:96::1".parse().expect("an IPv6 address")
        } else {
            "10.96.0.1".parse().expect("an IPv4 address")
        },
        dst_port: Some(443),
        capture_source: CaptureSource::Pcap,
        method: Some(if post { "POST" } else { "GET" }.into()),
        summary: Some(format!(
            "{} {path} → {status}",
            if post { "POST" } else { "GET" }
        )),
        path: Some(path),
        status_code: Some(status),
        http_version: Some("1.1".into()),
        request_size: Some(400 + request_body.as_ref().map_or(0, |b| b.0.len() as u64)),
        response_size: Some(300 + response_body.as_ref().map_or(0, |b| b.0.len() as u64)),
        request_body_size: request_body.as_ref().map(|b| b.0.len() as u64),
        response_body_size: response_body.as_ref().map(|b| b.0.len() as u64),
        request_headers: Some(req),
        response_headers: Some(resp),
        request_body,
        response_body,
        flags: if rng.below(20) == 0 {
            Flags::RESPONSE_BODY_TRUNCATED
        } else {
            Flags::empty()
        },
        src_pod: Some(format!("{name}-{}", rng.hex(5))),
        src_namespace: Some(ns.into()),
        src_workload: Some(name.into()),
        src_workload_kind: Some("Deployment".into()),
        dst_service: Some("kubernetes".into()),
        dst_namespace: Some("default".into()),
        src_labels: Some(
            [
                ("app".to_string(), name.to_string()),
                ("pod-template-hash".to_string(), rng.hex(10)),
            ]
            .into(),
        ),
        ..Entry::default()
    }
}

type Writer = fn(&mut BufWriter<io::Sink>, &Entry) -> io::Result<()>;

/// One pass over all entries.
fn time(entries: &[Entry], write: Writer) -> Duration {
    let mut out = BufWriter::with_capacity(1 << 20, io::sink());
    let started = Instant::now();
    for e in entries {
        write(&mut out, black_box(e)).expect("writing to a sink");
    }
    out.flush().expect("flushing a sink");
    started.elapsed()
}

struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("the number of entries"))
        .unwrap_or(100_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let entries: Vec<Entry> = (0..n).map(|i| entry(&mut rng, i)).collect();
    eprintln!(
        "built {n} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Both writers must write the same bytes.
    for e in &entries {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_json_line_serde(&mut a, e).expect("serde line");
        write_json_line(&mut b, e).expect("fast line");
        assert!(a == b, "the writers differ on entry {}", e.id);
    }
    let mut total = Counter(0);
    for e in &entries {
        write_json_line(&mut total, e).expect("counting");
    }
    let mb = total.0 as f64 / 1e6;
    println!(
        "{n} entries, {mb:.0} MB of JSON lines ({:.1} KB per line)",
        total.0 as f64 / n as f64 / 1e3
    );

    let report = |what: &str, d: Duration| {
        println!(
            "{what:<14} {:>8.1} ms  {:>7.0} ns/entry  {:>6.0} MB/s",
            d.as_secs_f64() * 1e3,
            d.as_secs_f64() * 1e9 / n as f64,
            mb / d.as_secs_f64()
        );
    };
    match std::env::args().nth(2).as_deref() {
        Some("serde") => {
            let best = (0..10).map(|_| time(&entries, write_json_line_serde)).min();
            report("serde", best.unwrap_or_default());
            return;
        }
        Some("fast") => {
            let best = (0..10).map(|_| time(&entries, write_json_line)).min();
            report("hand-written", best.unwrap_or_default());
            return;
        }
        _ => {}
    }
    // Best of five passes each, alternating, so that a busy machine slows both alike.
    let (mut serde, mut fast) = (Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        serde = serde.min(time(&entries, write_json_line_serde));
        fast = fast.min(time(&entries, write_json_line));
    }
    report("serde", serde);
    report("hand-written", fast);
    println!(
        "speed-up      {:>8.2}×",
        serde.as_secs_f64() / fast.as_secs_f64()
    );
}
