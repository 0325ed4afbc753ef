//! Enriched entries per second on one core: 4096-row batches of realistic HTTP entries
//! between 10 000 pods (behind 1 000 services), with a process index for half of the
//! connections.
//!
//! `cargo run --release -p reef-correlator --example enrich_bench`

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use reef_correlator::{Enricher, OsIndex, split_by_subject};
use reef_k8s_index::{
    Controller, Endpoint, EndpointSlice, Event, K8sIndex, Object, OwnerRef, Pod, TargetRef,
};
use reef_schema::{Entry, Headers, OS_ACCEPT, OS_CONNECT, OsEvent, Protocol};

const PODS: u32 = 10_000;
const ROWS: usize = 4096;
const BATCHES: usize = 64;
const S: i64 = 1_000_000_000;

fn pod_ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

fn main() {
    let mut k8s = K8sIndex::new();
    for i in 0..PODS {
        let ns = format!("ns-{}", i % 20);
        let deploy = format!("app-{}", i % 1000);
        let rs_uid = format!("rs-{}", i % 1000);
        if i < 1000 {
            k8s.apply(Event::Upsert(Object::ReplicaSet(Controller {
                uid: rs_uid.clone(),
                resource_version: 1,
                namespace: ns.clone(),
                name: format!("{deploy}-5d9f"),
                owner: Some(OwnerRef {
                    kind: "Deployment".into(),
                    name: deploy.clone(),
                    uid: format!("d-{i}"),
                }),
                deleted: None,
            })));
        }
        let name = format!("{deploy}-5d9f-{i:05}");
        k8s.apply(Event::Upsert(Object::Pod(Pod {
            uid: format!("p-{i}"),
            resource_version: 1,
            namespace: ns.clone(),
            name: name.clone(),
            node: Some(format!("node-{}", i % 50)),
            ips: vec![pod_ip(i)],
            labels: [
                ("app".to_string(), deploy.clone()),
                ("pod-template-hash".to_string(), "5d9f".to_string()),
                ("tier".to_string(), "backend".to_string()),
            ]
            .into(),
            owner: Some(OwnerRef {
                kind: "ReplicaSet".into(),
                name: format!("{deploy}-5d9f"),
                uid: rs_uid,
            }),
            created: 0,
            ..Pod::default()
        })));
        k8s.apply(Event::Upsert(Object::EndpointSlice(EndpointSlice {
            uid: format!("s-{i}"),
            resource_version: 1,
            namespace: ns,
            name: format!("{deploy}-{i}"),
            service: deploy,
            endpoints: vec![Endpoint {
                ips: vec![pod_ip(i)],
                target: Some(TargetRef {
                    name,
                    uid: format!("p-{i}"),
                }),
            }],
            created: 0,
            deleted: None,
        })));
    }

    // Batches: runs of 4 entries per connection (keep-alive), random-ish pod pairs.
    let mut os = OsIndex::new();
    let mut batches = Vec::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for b in 0..BATCHES {
        let mut rows = Vec::with_capacity(ROWS);
        while rows.len() < ROWS {
            let (c, s) = ((next() % PODS as u64) as u32, (next() % PODS as u64) as u32);
            let sport = 30000 + (next() % 30000) as u16;
            let ts = (1000 + b as i64) * S;
            if next() % 2 == 0 {
                for (kind, comm) in [(OS_CONNECT, "python3"), (OS_ACCEPT, "gunicorn")] {
                    os.apply(
                        "node-a",
                        &OsEvent {
                            timestamp: ts - S,
                            kind: kind.into(),
                            pid: Some(1234),
                            comm: Some(comm.into()),
                            src_ip: pod_ip(c),
                            src_port: Some(sport),
                            dst_ip: pod_ip(s),
                            dst_port: Some(8080),
                            ..OsEvent::default()
                        },
                    );
                }
            }
            for k in 0..4 {
                let mut h = Headers::new();
                h.push("Host", "app.example");
                h.push("User-Agent", "python-requests/2.31");
                h.push("Accept", "*/*");
                rows.push(Entry {
                    id: format!("w-{b}-{}", rows.len()),
                    node: Some("node-a".into()),
                    timestamp: ts + k,
                    elapsed_time: Some(1200),
                    protocol: Protocol::Http,
                    src_ip: pod_ip(c),
                    src_port: Some(sport),
                    dst_ip: pod_ip(s),
                    dst_port: Some(8080),
                    method: Some("GET".into()),
                    path: Some(format!("/api/items/{}", next() % 1000)),
                    status_code: Some(200),
                    http_version: Some("1.1".into()),
                    request_headers: Some(h),
                    request_size: Some(120),
                    response_size: Some(512),
                    ..Entry::default()
                });
            }
        }
        rows.truncate(ROWS);
        batches.push(Entry::batch(&rows));
    }

    let mut e = Enricher::new();
    // Warm up (buffers grow once).
    for b in &batches {
        let _ = e.enrich(b, "node-a", &k8s, &os);
    }
    let rounds = 10;
    let start = Instant::now();
    let mut rows = 0usize;
    let mut resolved = [0usize; 2];
    let mut procs = [0usize; 2];
    for _ in 0..rounds {
        for b in &batches {
            match e.enrich(b, "node-a", &k8s, &os) {
                Ok((out, stats)) => {
                    rows += out.num_rows();
                    for s in 0..2 {
                        resolved[s] += stats.resolved[s];
                        procs[s] += stats.process[s];
                    }
                }
                Err(err) => panic!("{err}"),
            }
        }
    }
    let enrich_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut parts = 0usize;
    for b in &batches {
        if let Ok((out, _)) = e.enrich(b, "node-a", &k8s, &os) {
            parts += split_by_subject(&out).map_or(0, |p| p.len());
        }
    }
    let split_s = start.elapsed().as_secs_f64();
    let split_rows = BATCHES * ROWS;
    println!(
        "enrich: {rows} rows in {enrich_s:.3} s = {:.2} M entries/s on one core \
         ({ROWS}-row batches, {PODS} pods; resolved src {} dst {}, process src {} dst {})",
        rows as f64 / enrich_s / 1e6,
        resolved[0],
        resolved[1],
        procs[0],
        procs[1],
    );
    println!(
        "enrich + split by subject (20 namespaces): {split_rows} rows into {parts} parts in \
         {split_s:.3} s = {:.2} M entries/s",
        split_rows as f64 / split_s / 1e6
    );
}
