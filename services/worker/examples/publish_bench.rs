//! Entries per second through JetStream: batched (the worker's way) against one
//! message per entry, in the same run, through the worker's own batcher, outbox and
//! publisher, acknowledgments included.
//!
//!     nats-server -js -p 14222 -sd /tmp/bench-store &
//!     cargo run --release -p reef-worker --example publish_bench -- \
//!         --nats nats://127.0.0.1:14222 [--pcap bench/out/http-large.pcap] [--entries 1000000]
//!
//! `bench/publish.sh` starts a server of its own and runs this.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reef_schema::ipc::Compression;
use reef_schema::{Entry, EntryBatchBuilder};
use reef_worker::batch::Batcher;
use reef_worker::config::{BatchLimits, WorkerConfig};
use reef_worker::outbox::{Kind, Outbox};
use reef_worker::publish::{Publisher, ensure_stream};
use reef_worker::{Source, Speed};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Realistic entries: those of a capture if given (up to 20 000), else made up. They are
/// published over and over to reach the count, by reference: making entries is the
/// dissector's cost, not the publisher's.
fn entries() -> Vec<Entry> {
    let mut base = Vec::new();
    if let Some(p) = arg("--pcap") {
        let bytes = std::fs::read(&p).expect("capture");
        let mut r = reef_pcap::CaptureReader::new(std::io::Cursor::new(bytes)).expect("pcap");
        let mut e = reef_engine::Engine::new(reef_engine::Config::default());
        while let Ok(Some(pk)) = r.next_packet() {
            e.packet(pk.ts_ns, pk.link_type, pk.data);
            if base.len() < 20_000 {
                base.extend(e.drain_entries());
            } else {
                e.drain_entries().for_each(drop);
            }
        }
    }
    if base.is_empty() {
        base = (0..1000)
            .map(|i| Entry {
                id: format!("b-{i}"),
                method: Some("GET".into()),
                path: Some(format!("/api/v1/items/{i}")),
                status_code: Some(200),
                http_version: Some("1.1".into()),
                request_size: Some(180),
                response_size: Some(600),
                summary: Some(format!("GET /api/v1/items/{i} → 200 OK")),
                ..Entry::default()
            })
            .collect();
    }
    base
}

fn run(
    url: &str,
    base: &Arc<Vec<Entry>>,
    count: usize,
    rows: usize,
    compression: Compression,
) -> (Duration, u64, u64, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cfg = WorkerConfig::new(
        url,
        "bench",
        Source::Pcap {
            files: vec![],
            speed: Speed::Max,
        },
    );
    rt.block_on(async {
        let client = async_nats::connect(url).await.expect("NATS");
        let js = async_nats::jetstream::new(client.clone());
        ensure_stream(&js, &cfg.stream).await.expect("stream");
        let max_payload = client.server_info().max_payload;
        let outbox = Arc::new(Outbox::new(usize::MAX));
        let publisher = Publisher::new(js, &cfg, format!("bench-{rows}"), max_payload);
        let started = Instant::now();
        // Batching and encoding on a thread of their own, as capture threads do.
        let producer = {
            let (outbox, base) = (outbox.clone(), base.clone());
            let limits = BatchLimits {
                rows,
                bytes: max_payload * 9 / 10,
                linger: Duration::from_secs(3600),
                compression,
            };
            std::thread::spawn(move || {
                let mut b = Batcher::new(
                    EntryBatchBuilder::with_capacity(rows.min(4096)),
                    Kind::Entries,
                    limits,
                );
                let now = Instant::now();
                for e in base.iter().cycle().take(count) {
                    b.push(e, now, &outbox);
                }
                b.flush(&outbox);
                outbox.close();
            })
        };
        let (_tx, rx) = tokio::sync::watch::channel(false);
        publisher
            .run(outbox.clone(), Some(Duration::from_secs(60)), rx)
            .await
            .expect("publish");
        producer.join().expect("producer thread");
        let c = outbox.count(Kind::Entries);
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        (
            started.elapsed(),
            ld(&c.published_rows),
            ld(&c.published_batches),
            ld(&c.published_bytes),
        )
    })
}

/// Batching and Arrow IPC encoding alone, on this thread: the worker's share of the cost.
fn encode_only(
    base: &[Entry],
    count: usize,
    rows: usize,
    compression: Compression,
) -> (Duration, u64, u64) {
    let started = Instant::now();
    let mut b = EntryBatchBuilder::with_capacity(rows);
    let (mut msgs, mut bytes) = (0u64, 0u64);
    for e in base.iter().cycle().take(count) {
        b.push(e);
        if b.len() >= rows {
            let batch = b.finish();
            bytes += reef_schema::ipc::encode(&batch, compression)
                .expect("encode")
                .len() as u64;
            msgs += 1;
        }
    }
    if !b.is_empty() {
        bytes += reef_schema::ipc::encode(&b.finish(), compression)
            .expect("encode")
            .len() as u64;
        msgs += 1;
    }
    (started.elapsed(), msgs, bytes)
}

/// The columns of a full batch by the bytes they hold, largest first: where an entry's
/// bytes go.
fn columns(base: &[Entry], rows: usize) {
    let mut b = EntryBatchBuilder::with_capacity(rows);
    for e in base.iter().cycle().take(rows) {
        b.push(e);
    }
    let batch = b.finish();
    let schema = batch.schema();
    let mut sizes: Vec<(usize, &str)> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            (
                c.to_data().get_slice_memory_size().unwrap_or(0),
                f.name().as_str(),
            )
        })
        .collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let total: usize = sizes.iter().map(|s| s.0).sum();
    println!(
        "{} columns, {} bytes per row in memory:",
        sizes.len(),
        total / rows
    );
    for (n, name) in sizes.iter().take(25) {
        println!("  {:<28} {:>6.1} bytes/row", name, *n as f64 / rows as f64);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--columns") {
        columns(&entries(), 4096);
        return;
    }
    let url = arg("--nats").unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let n: usize = arg("--entries")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let one_by_one: usize = arg("--single-entries")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let base = Arc::new(entries());
    println!(
        "{:<34} {:>10} {:>10} {:>12} {:>10} {:>14} {:>10}",
        "mode", "entries", "messages", "bytes/entry", "seconds", "entries/s", "MB/s"
    );
    let line = |label: &str, entries: u64, msgs: u64, bytes: u64, t: Duration| {
        let secs = t.as_secs_f64();
        println!(
            "{:<34} {:>10} {:>10} {:>12} {:>10.2} {:>14.0} {:>10.0}",
            label,
            entries,
            msgs,
            bytes / entries.max(1),
            secs,
            entries as f64 / secs,
            bytes as f64 / secs / 1e6
        );
    };
    for c in [Compression::Lz4, Compression::None] {
        let (t, msgs, bytes) = encode_only(&base, n, 4096, c);
        line(
            &format!("encode only, {}", c.as_str()),
            n as u64,
            msgs,
            bytes,
            t,
        );
    }
    let runs = [
        ("batched, lz4", 4096, n, Compression::Lz4),
        ("batched, none", 4096, n, Compression::None),
        (
            "one message per entry, none",
            1,
            one_by_one,
            Compression::None,
        ),
    ];
    for (label, rows, count, c) in runs {
        let (t, rows_out, msgs, bytes) = run(&url, &base, count, rows, c);
        assert_eq!(rows_out as usize, count, "every entry acknowledged");
        line(label, rows_out, msgs, bytes, t);
    }
}
