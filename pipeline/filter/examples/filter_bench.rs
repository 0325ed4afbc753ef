//! Filter throughput on one thread over 4096-row entry batches, and compile time.
//!
//! `cargo run --release -p reef-filter --example filter_bench`
//! Targets: evaluation ≥ 5 M entries/s per core, compile ≤ 5 ms per subscription.

use std::hint::black_box;
use std::time::{Duration, Instant};

use reef_filter::Filter;
use reef_schema::{Entry, Flags, Protocol, entry_schema};

const BATCH_ROWS: usize = 4096;
const BATCHES: usize = 16;

fn batch(seed: usize) -> arrow_array::RecordBatch {
    let methods = ["GET", "POST", "PUT", "DELETE"];
    let paths = [
        "/api/users",
        "/api/orders/7",
        "/healthz",
        "/",
        "/static/app.js",
    ];
    let namespaces = ["prod", "staging", "kube-system"];
    let protocols = [
        Protocol::Http,
        Protocol::Grpc,
        Protocol::Dns,
        Protocol::Http,
    ];
    let entries: Vec<Entry> = (0..BATCH_ROWS)
        .map(|i| {
            let k = i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 3;
            let mut flags = Flags::empty();
            if k % 9 == 0 {
                flags.insert(Flags::RESPONSE_GAP);
            }
            Entry {
                id: format!("b{seed}-{i}"),
                timestamp: 1_700_000_000_000_000_000 + i as i64,
                elapsed_time: Some((k % 5000) as i64),
                protocol: protocols[k % 4],
                src_ip: "10.0.0.1".parse().expect("ip"),
                dst_ip: "10.0.0.2".parse().expect("ip"),
                method: Some(methods[k % 4].to_string()),
                path: Some(paths[(k / 4) % 5].to_string()),
                status_code: Some([200, 201, 404, 500, 503][(k / 3) % 5]),
                grpc_status: Some((k % 3) as i32),
                dst_namespace: Some(namespaces[(k / 7) % 3].to_string()),
                dst_labels: Some([("app".to_string(), ["web", "db"][k % 2].to_string())].into()),
                flags,
                ..Entry::default()
            }
        })
        .collect();
    Entry::batch(&entries)
}

fn main() {
    let schema = entry_schema();
    let batches: Vec<_> = (0..BATCHES).map(batch).collect();
    let filters = [
        "status_code >= 500 AND dst_namespace = 'prod'",
        "method IN ('GET','POST')",
        "path LIKE '/api/%'",
        "elapsed_time > 1000",
        "protocol = 'grpc' AND grpc_status <> 0",
        "protocol = 'http' AND status_code >= 500 AND path LIKE '/api/%'",
        "dst_labels['app'] = 'web'",
        "array_has(flags, 'response_gap')",
    ];
    println!("{BATCHES} batches of {BATCH_ROWS} rows, one thread");
    for text in filters {
        // Compile time: the median of many compiles.
        let mut times: Vec<Duration> = (0..200)
            .map(|_| {
                let t = Instant::now();
                black_box(Filter::compile(text, &schema).expect("compile"));
                t.elapsed()
            })
            .collect();
        times.sort();
        let compile = times[times.len() / 2];

        let filter = Filter::compile(text, &schema).expect("compile");
        let mut rows = 0usize;
        let mut matched = 0usize;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(500) {
            for b in &batches {
                matched += filter.evaluate(b).expect("evaluate").true_count();
                rows += b.num_rows();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:>9.1} M entries/s  compile {:>7.3} ms  selectivity {:>5.1} %  {text}",
            rows as f64 / secs / 1e6,
            compile.as_secs_f64() * 1e3,
            100.0 * matched as f64 / rows as f64,
        );
    }
}
