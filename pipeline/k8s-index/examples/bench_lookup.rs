//! Rough throughput of `resolve_batch`: `cargo run --release -p reef-k8s-index --example
//! bench_lookup`. 50 000 pod IPs, each recycled four times, looked up in batches of 8192
//! rows shaped like entries (runs of a few rows per IP, random times).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use reef_k8s_index::{Event, K8sIndex, Object, OwnerRef, Pod};

const IPS: u32 = 50_000;
const GENERATIONS: i64 = 4;
const LIFE: i64 = 1_000_000_000_000;
const ROWS: usize = 4_000_000;
const BATCH: usize = 8_192;

fn addr(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

fn main() {
    let mut idx = K8sIndex::new();
    let built = Instant::now();
    for g in 0..GENERATIONS {
        for n in 0..IPS {
            let start = g * LIFE;
            let pod = Pod {
                uid: format!("{g}-{n}"),
                resource_version: 1,
                namespace: format!("ns{}", n % 20),
                name: format!("app{}-{g}-{n}", n % 500),
                node: Some(format!("node{}", n % 100)),
                ips: vec![addr(n)],
                owner: Some(OwnerRef {
                    kind: "StatefulSet".into(),
                    name: format!("app{}", n % 500),
                    uid: format!("ss{}", n % 500),
                }),
                created: start,
                started: Some(start),
                deleted: Some(start + LIFE - 1),
                ..Pod::default()
            };
            idx.apply(Event::Upsert(Object::Pod(pod)));
        }
    }
    eprintln!(
        "built {} pods in {:?}",
        IPS as i64 * GENERATIONS,
        built.elapsed()
    );

    // A cheap deterministic generator (xorshift), so no dependency is needed.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut rows = Vec::with_capacity(ROWS);
    while rows.len() < ROWS {
        let ip = addr((next() % u64::from(IPS)) as u32);
        let run = 1 + next() % 4;
        for _ in 0..run {
            let ts = (next() % (GENERATIONS * LIFE) as u64) as i64;
            rows.push((ip, ts));
        }
    }
    rows.truncate(ROWS);

    let mut out = Vec::with_capacity(BATCH);
    let mut hits = 0usize;
    let t = Instant::now();
    for chunk in rows.chunks(BATCH) {
        idx.resolve_batch(chunk.iter().copied(), &mut out);
        hits += out.iter().filter(|r| r.is_some()).count();
    }
    let el = t.elapsed();
    eprintln!(
        "{} rows in {:?}: {:.1} M rows/s ({} resolved)",
        ROWS,
        el,
        ROWS as f64 / el.as_secs_f64() / 1e6,
        hits
    );
}
