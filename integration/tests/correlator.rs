//! The correlator against a real `nats-server -js`: a corpus capture replayed by the
//! worker and enriched with a Kubernetes index, two replicas sharing the work exactly
//! once, poison messages, and OS events naming processes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use reef_correlator::{CorrelatorConfig, Report};
use reef_integration::corpus_file;
use reef_integration::dissect_file;
use reef_integration::nats::{NatsServer, decode_all, read_subject};
use reef_k8s_index::{
    Controller, Endpoint, EndpointSlice, Event, Object, OwnerRef, Pod, TargetRef,
};
use reef_schema::ipc::{self, Compression};
use reef_schema::{
    Entry, OS_ACCEPT, OS_CONNECT, OsEvent, OsEventBatchBuilder, Protocol, entries_from_batch,
    subjects,
};
use tokio::sync::{mpsc, oneshot};

const DURABLE: &str = "reef-correlator";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A correlator replica running on `rt` until the returned sender is used or dropped.
fn start(
    rt: &tokio::runtime::Runtime,
    cfg: CorrelatorConfig,
    k8s: Option<mpsc::Receiver<Event>>,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<Report>>,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let handle = rt.spawn(reef_correlator::run(cfg, k8s, async move {
        let _ = rx.await;
    }));
    (tx, handle)
}

fn stop(
    rt: &tokio::runtime::Runtime,
    (tx, handle): (
        oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<Report>>,
    ),
) -> Report {
    let _ = tx.send(());
    rt.block_on(handle).unwrap().unwrap()
}

/// Waits until the shared consumer exists and has nothing pending or unacknowledged.
fn wait_consumed(rt: &tokio::runtime::Runtime, url: &str) {
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "the correlators did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Ok(raw) = js.get_stream(subjects::RAW_STREAM).await else {
                continue;
            };
            if let Ok(info) = raw.consumer_info(DURABLE).await
                && info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence > 0
            {
                return;
            }
        }
    });
}

/// REEF_RAW as the worker makes it, for tests that publish entries themselves.
fn publish_raw(rt: &tokio::runtime::Runtime, url: &str, msgs: Vec<(String, Vec<u8>)>) {
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.unwrap());
        reef_worker::publish::ensure_stream(&js, &reef_worker::config::StreamLimits::default())
            .await
            .unwrap();
        let mut acks = Vec::new();
        for (subject, payload) in msgs {
            acks.push(js.publish(subject, payload.into()).await.unwrap());
        }
        for a in acks {
            a.await.unwrap();
        }
    });
}

fn enriched(url: &str) -> Vec<(String, Entry)> {
    let msgs = read_subject(url, subjects::ENRICHED_STREAM, subjects::ENRICHED_SUBJECTS);
    msgs.iter()
        .flat_map(|m| {
            let subject = m.subject.to_string();
            ipc::decode(&m.payload)
                .unwrap()
                .iter()
                .flat_map(|b| entries_from_batch(b).unwrap())
                .map(move |e| (subject.clone(), e))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn cfg(url: String) -> CorrelatorConfig {
    let mut c = CorrelatorConfig::new(url);
    // Tests publish their OS events before starting the correlator, at capture times.
    c.os_lookback = None;
    c
}

fn owner(kind: &str, name: &str, uid: &str) -> Option<OwnerRef> {
    Some(OwnerRef {
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
    })
}

fn pod(uid: String, ns: &str, name: String, ip: IpAddr, owner: Option<OwnerRef>) -> Pod {
    Pod {
        uid,
        resource_version: 1,
        namespace: ns.into(),
        name,
        node: Some("node-a".into()),
        ips: vec![ip],
        labels: [("team".to_string(), ns.to_string())].into(),
        owner,
        created: 0,
        ..Pod::default()
    }
}

#[test]
fn replayed_capture_is_enriched_with_kubernetes_context() {
    let nats = NatsServer::start();
    let files: Vec<PathBuf> = vec![
        corpus_file("http_zeek_pipelined-requests"),
        corpus_file("mixed_ndpi_1kxun-mobile-http-dns"),
    ];
    let mut wcfg = reef_worker::WorkerConfig::new(
        nats.url(),
        "node-a",
        reef_worker::Source::Pcap {
            files: files.clone(),
            speed: reef_worker::Speed::Max,
        },
    );
    wcfg.redactor = None;
    reef_worker::run_until(wcfg, std::future::pending()).expect("replay");
    let want: Vec<Entry> = files.iter().flat_map(|f| dissect_file(f).0).collect();
    assert!(want.len() > 50, "{} entries", want.len());

    // Servers are pods of Deployment shop/web behind service web; clients are pods of
    // StatefulSet tools/loadgen.
    let servers: Vec<IpAddr> = want
        .iter()
        .map(|e| e.dst_ip)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let clients: Vec<IpAddr> = want
        .iter()
        .map(|e| e.src_ip)
        .filter(|ip| !servers.contains(ip))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let server_pod: HashMap<IpAddr, String> = servers
        .iter()
        .enumerate()
        .map(|(i, ip)| (*ip, format!("web-5d9-{i}")))
        .collect();
    let client_pod: HashMap<IpAddr, String> = clients
        .iter()
        .enumerate()
        .map(|(i, ip)| (*ip, format!("loadgen-{i}")))
        .collect();
    let mut events = vec![Event::Upsert(Object::ReplicaSet(Controller {
        uid: "rs-web".into(),
        resource_version: 1,
        namespace: "shop".into(),
        name: "web-5d9".into(),
        owner: owner("Deployment", "web", "d-web"),
        deleted: None,
    }))];
    let mut endpoints = Vec::new();
    for (i, ip) in servers.iter().enumerate() {
        let uid = format!("ps-{i}");
        events.push(Event::Upsert(Object::Pod(pod(
            uid.clone(),
            "shop",
            server_pod[ip].clone(),
            *ip,
            owner("ReplicaSet", "web-5d9", "rs-web"),
        ))));
        endpoints.push(Endpoint {
            ips: vec![*ip],
            target: Some(TargetRef {
                name: server_pod[ip].clone(),
                uid,
            }),
        });
    }
    events.push(Event::Upsert(Object::EndpointSlice(EndpointSlice {
        uid: "slice-web".into(),
        resource_version: 1,
        namespace: "shop".into(),
        name: "web-x1".into(),
        service: "web".into(),
        endpoints,
        created: 0,
        deleted: None,
    })));
    for (i, ip) in clients.iter().enumerate() {
        events.push(Event::Upsert(Object::Pod(pod(
            format!("pc-{i}"),
            "tools",
            client_pod[ip].clone(),
            *ip,
            owner("StatefulSet", "loadgen", "ss-1"),
        ))));
    }
    let n_events = events.len();
    let (tx, rx) = mpsc::channel(n_events + 1);
    for ev in events {
        tx.try_send(ev).unwrap();
    }

    let rt = runtime();
    let mut summaries = rt.block_on(async {
        let c = async_nats::connect(nats.url()).await.unwrap();
        let s = c.subscribe(subjects::K8S_EVENTS).await.unwrap();
        c.flush().await.unwrap();
        (c, s)
    });
    let replica = start(&rt, cfg(nats.url()), Some(rx));
    wait_consumed(&rt, &nats.url());
    let report = stop(&rt, replica);
    drop(tx);

    let got = enriched(&nats.url());
    assert_eq!(got.len(), want.len());
    assert_eq!(report.entries_out, want.len() as u64);
    assert_eq!(report.poison, 0);
    let ids: HashSet<&str> = got.iter().map(|(_, e)| e.id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "each entry once");
    let mut subjects_seen = BTreeMap::<String, usize>::new();
    for (subject, e) in &got {
        *subjects_seen.entry(subject.clone()).or_default() += 1;
        assert_eq!(
            subject,
            &format!("reef.v1.enriched.shop.{}", e.protocol.as_str()),
            "{}",
            e.id
        );
        assert_eq!(e.dst_pod.as_deref(), Some(server_pod[&e.dst_ip].as_str()));
        assert_eq!(e.dst_namespace.as_deref(), Some("shop"));
        assert_eq!(e.dst_service.as_deref(), Some("web"));
        assert_eq!(e.dst_workload.as_deref(), Some("web"));
        assert_eq!(e.dst_workload_kind.as_deref(), Some("Deployment"));
        assert_eq!(e.dst_node.as_deref(), Some("node-a"));
        assert_eq!(
            e.dst_labels
                .as_ref()
                .and_then(|l| l.get("team"))
                .map(String::as_str),
            Some("shop")
        );
        if let Some(name) = client_pod.get(&e.src_ip) {
            assert_eq!(e.src_pod.as_deref(), Some(name.as_str()));
            assert_eq!(e.src_namespace.as_deref(), Some("tools"));
            assert_eq!(e.src_workload.as_deref(), Some("loadgen"));
            assert_eq!(e.src_workload_kind.as_deref(), Some("StatefulSet"));
        } else {
            assert_eq!(
                e.src_namespace.as_deref(),
                Some("shop"),
                "a server as client"
            );
        }
        // The worker's columns are untouched.
        assert_eq!(e.node.as_deref(), Some("node-a"));
    }
    assert!(subjects_seen.contains_key("reef.v1.enriched.shop.http"));
    assert!(subjects_seen.contains_key("reef.v1.enriched.shop.dns"));

    // Every Kubernetes event was summarised on reef.v1.k8s.events.
    let seen = rt.block_on(async {
        use futures_util::StreamExt;
        let mut n = 0;
        while let Ok(Some(m)) =
            tokio::time::timeout(Duration::from_millis(500), summaries.1.next()).await
        {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            assert_eq!(v["op"], "upsert");
            n += 1;
        }
        n
    });
    assert_eq!(seen, n_events);
}

fn synthetic(node: &str, batch: usize, rows: usize) -> Vec<Entry> {
    (0..rows)
        .map(|i| Entry {
            id: format!("{node}-{batch}-{i}"),
            node: Some(node.into()),
            timestamp: 1_700_000_000_000_000_000 + i as i64,
            protocol: if i % 3 == 0 {
                Protocol::Redis
            } else {
                Protocol::Http
            },
            src_ip: "10.1.0.1".parse().unwrap(),
            src_port: Some(40000 + i as u16),
            dst_ip: "10.1.0.2".parse().unwrap(),
            dst_port: Some(80),
            method: Some("GET".into()),
            ..Entry::default()
        })
        .collect()
}

fn entry_msg(node: &str, entries: &[Entry]) -> (String, Vec<u8>) {
    (
        subjects::node_entries(node),
        ipc::encode(&Entry::batch(entries), Compression::Lz4).unwrap(),
    )
}

#[test]
fn two_replicas_enrich_every_entry_exactly_once() {
    let nats = NatsServer::start();
    let rt = runtime();
    let (batches, rows) = (120, 40);
    let mut msgs = Vec::new();
    for b in 0..batches {
        let node = if b % 2 == 0 { "n1" } else { "n2" };
        msgs.push(entry_msg(node, &synthetic(node, b, rows)));
    }
    publish_raw(&rt, &nats.url(), msgs);
    let mut c = cfg(nats.url());
    // Small windows, so that both replicas get work.
    c.in_flight = 4;
    // The synthetic entries' IPs are in no index: nothing to wait for.
    c.unresolved_wait = Duration::ZERO;
    // Both replicas watch the same Kubernetes: each publishes every change, and the
    // stream keeps one copy of each (same message id).
    let mut changes: Vec<Event> = (0..5u8)
        .map(|i| {
            let ip = IpAddr::from([10, 9, 0, i]);
            Event::Upsert(Object::Pod(pod(
                format!("uid-{i}"),
                "k",
                format!("p{i}"),
                ip,
                None,
            )))
        })
        .collect();
    if let Some(Event::Upsert(object)) = changes.first().cloned() {
        changes.push(Event::Delete { object, at: 1_000 });
    }
    let feeds: Vec<_> = (0..2)
        .map(|_| {
            let (tx, rx) = mpsc::channel(16);
            for ev in &changes {
                tx.try_send(ev.clone()).unwrap();
            }
            (tx, rx)
        })
        .collect();
    let mut feeds = feeds.into_iter();
    let (tx_a, rx_a) = feeds.next().unwrap();
    let (tx_b, rx_b) = feeds.next().unwrap();
    let a = start(&rt, c.clone(), Some(rx_a));
    let b = start(&rt, c, Some(rx_b));
    wait_consumed(&rt, &nats.url());
    let (ra, rb) = (stop(&rt, a), stop(&rt, b));
    drop((tx_a, tx_b));
    let stored = read_subject(&nats.url(), subjects::K8S_STREAM, subjects::K8S_EVENTS);
    assert_eq!(stored.len(), changes.len(), "one stored copy per change");

    let got = enriched(&nats.url());
    let total = batches * rows;
    let mut count = HashMap::<String, usize>::new();
    for (subject, e) in &got {
        assert_eq!(
            subject,
            &format!("reef.v1.enriched._.{}", e.protocol.as_str())
        );
        *count.entry(e.id.clone()).or_default() += 1;
    }
    assert_eq!(count.len(), total, "every entry");
    assert!(count.values().all(|n| *n == 1), "no entry twice");
    assert_eq!(ra.entries_out + rb.entries_out, total as u64);
    assert_eq!(ra.poison + rb.poison, 0);
    assert!(
        ra.batches_in > 0 && rb.batches_in > 0,
        "both replicas worked: {ra:?} {rb:?}"
    );
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn poison_messages_are_terminated_and_counted() {
    let nats = NatsServer::start();
    let rt = runtime();
    let flows = reef_schema::FlowBatchBuilder::with_capacity(1).finish();
    publish_raw(
        &rt,
        &nats.url(),
        vec![
            entry_msg("n1", &synthetic("n1", 0, 10)),
            (subjects::node_entries("n1"), b"not arrow at all".to_vec()),
            // Arrow, but flow records on the entries subject.
            (
                subjects::node_entries("n1"),
                ipc::encode(&flows, Compression::None).unwrap(),
            ),
            entry_msg("n1", &synthetic("n1", 1, 10)),
        ],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = cfg(nats.url());
    c.metrics_listen = Some(([127, 0, 0, 1], port).into());
    let replica = start(&rt, c, None);
    wait_consumed(&rt, &nats.url());
    let metrics = http_get(port, "/metrics");
    let report = stop(&rt, replica);

    assert_eq!(report.poison, 2);
    assert_eq!(
        report.entries_out, 20,
        "the batch after the poison went through"
    );
    assert_eq!(enriched(&nats.url()).len(), 20);
    assert!(
        metrics.contains("reef_correlator_poison_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("reef_correlator_batches_in_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("reef_correlator_unresolved_total{side=\"dst\"} 20"),
        "{metrics}"
    );
    // Terminated, not waiting for redelivery.
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        let raw = js.get_stream(subjects::RAW_STREAM).await.unwrap();
        let info = raw.consumer_info(DURABLE).await.unwrap();
        assert_eq!((info.num_ack_pending, info.num_redelivered), (0, 0));
    });
}

#[test]
fn os_events_name_the_processes_on_both_sides() {
    let nats = NatsServer::start();
    let rt = runtime();
    let entries = synthetic("n1", 0, 6);
    let t0 = entries[0].timestamp;
    let mut b = OsEventBatchBuilder::with_capacity(4);
    // Connections of rows 0 and 1 (client ports 40000, 40001) were traced; the others
    // were not. A process on another node does not count.
    for (node, sport, client, server) in [
        ("n1", 40000u16, (101u32, "curl"), (201u32, "nginx")),
        ("n1", 40001, (102, "python3"), (202, "gunicorn")),
    ] {
        for (kind, (pid, comm)) in [(OS_CONNECT, client), (OS_ACCEPT, server)] {
            b.push(&OsEvent {
                timestamp: t0 - 1_000_000,
                node: Some(node.into()),
                kind: kind.into(),
                pid: Some(pid),
                tgid: Some(pid),
                comm: Some(comm.into()),
                src_ip: "10.1.0.1".parse().unwrap(),
                src_port: Some(sport),
                dst_ip: "10.1.0.2".parse().unwrap(),
                dst_port: Some(80),
                ..OsEvent::default()
            });
        }
    }
    let os_batch = b.finish();
    let mut other = OsEventBatchBuilder::with_capacity(1);
    other.push(&OsEvent {
        timestamp: t0,
        kind: OS_CONNECT.into(),
        pid: Some(999),
        comm: Some("elsewhere".into()),
        src_ip: "10.1.0.1".parse().unwrap(),
        src_port: Some(40002),
        dst_ip: "10.1.0.2".parse().unwrap(),
        dst_port: Some(80),
        ..OsEvent::default()
    });
    publish_raw(
        &rt,
        &nats.url(),
        vec![
            (
                subjects::node_os("n1"),
                ipc::encode(&os_batch, Compression::Lz4).unwrap(),
            ),
            (
                subjects::node_os("n2"),
                ipc::encode(&other.finish(), Compression::Lz4).unwrap(),
            ),
            entry_msg("n1", &entries),
        ],
    );
    let replica = start(&rt, cfg(nats.url()), None);
    wait_consumed(&rt, &nats.url());
    stop(&rt, replica);

    let got: HashMap<u16, Entry> = enriched(&nats.url())
        .into_iter()
        .map(|(_, e)| (e.src_port.unwrap(), e))
        .collect();
    assert_eq!(got.len(), 6);
    let procs = |port: u16| {
        let e = &got[&port];
        (
            e.src_process.clone(),
            e.src_pid,
            e.dst_process.clone(),
            e.dst_pid,
        )
    };
    assert_eq!(
        procs(40000),
        (
            Some("curl".into()),
            Some(101),
            Some("nginx".into()),
            Some(201)
        )
    );
    assert_eq!(
        procs(40001),
        (
            Some("python3".into()),
            Some(102),
            Some("gunicorn".into()),
            Some(202)
        )
    );
    assert_eq!(procs(40002), (None, None, None, None), "n2's event is n2's");
    assert_eq!(procs(40005), (None, None, None, None));
}

#[test]
fn decode_all_reads_enriched_batches() {
    // The enriched stream is plain Arrow: the shared helper reads it too.
    let nats = NatsServer::start();
    let rt = runtime();
    publish_raw(
        &rt,
        &nats.url(),
        vec![entry_msg("n9", &synthetic("n9", 0, 3))],
    );
    let replica = start(&rt, cfg(nats.url()), None);
    wait_consumed(&rt, &nats.url());
    stop(&rt, replica);
    let msgs = read_subject(&nats.url(), "REEF_ENRICHED", "reef.v1.enriched._.http");
    let rows = decode_all(&msgs, |b| entries_from_batch(b).unwrap());
    assert_eq!(rows.len(), 2);
    let h = msgs[0].headers.as_ref().unwrap();
    assert_eq!(
        h.get("Reef-Schema").map(|v| v.as_str()),
        Some("reef.v1.entry")
    );
    assert!(h.get("Nats-Msg-Id").is_some());
}

#[test]
fn batches_wait_a_bounded_time_for_the_index() {
    let nats = NatsServer::start();
    let rt = runtime();
    // Rows 0..4 go to a pod the index learns late; row 4 to an address it never knows.
    let mut entries = synthetic("n1", 0, 5);
    entries[4].dst_ip = "192.0.2.50".parse().unwrap();
    publish_raw(&rt, &nats.url(), vec![entry_msg("n1", &entries)]);
    let (tx, rx) = mpsc::channel(4);
    let mut c = cfg(nats.url());
    c.unresolved_wait = Duration::from_millis(1500);
    let started = Instant::now();
    let replica = start(&rt, c, Some(rx));
    std::thread::sleep(Duration::from_millis(400));
    tx.try_send(Event::Upsert(Object::Pod(pod(
        "p-late".into(),
        "late",
        "late-0".into(),
        "10.1.0.2".parse().unwrap(),
        None,
    ))))
    .unwrap();
    wait_consumed(&rt, &nats.url());
    let waited = started.elapsed();
    let report = stop(&rt, replica);
    let got = enriched(&nats.url());
    assert_eq!(got.len(), 5);
    assert_eq!(report.entries_out, 5);
    for (subject, e) in &got {
        if e.dst_ip.to_string() == "10.1.0.2" {
            assert_eq!(e.dst_pod.as_deref(), Some("late-0"), "learnt while held");
            assert!(subject.starts_with("reef.v1.enriched.late."), "{subject}");
        } else {
            assert_eq!(e.dst_pod, None);
            assert!(subject.starts_with("reef.v1.enriched._."), "{subject}");
        }
    }
    // Held for the unknown address up to the wait, not forever.
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}

#[test]
fn a_stopping_replica_gives_held_batches_to_another() {
    let nats = NatsServer::start();
    let rt = runtime();
    publish_raw(
        &rt,
        &nats.url(),
        vec![entry_msg("n1", &synthetic("n1", 0, 8))],
    );
    // Replica A holds the batch (nothing resolves) far longer than the test runs...
    let (tx, rx) = mpsc::channel(1);
    let mut c = cfg(nats.url());
    c.unresolved_wait = Duration::from_secs(60);
    let a = start(&rt, c, Some(rx));
    let deadline = Instant::now() + Duration::from_secs(20);
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        loop {
            assert!(Instant::now() < deadline, "replica A never took the batch");
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Ok(raw) = js.get_stream(subjects::RAW_STREAM).await
                && let Ok(info) = raw.consumer_info(DURABLE).await
                && info.num_ack_pending == 1
            {
                break;
            }
        }
    });
    // ...and gives it back when stopped; replica B (no Kubernetes: no wait) publishes it.
    let ra = stop(&rt, a);
    drop(tx);
    assert_eq!((ra.redelivered, ra.entries_out), (1, 0));
    let b = start(&rt, cfg(nats.url()), None);
    wait_consumed(&rt, &nats.url());
    let rb = stop(&rt, b);
    assert_eq!(rb.entries_out, 8);
    let got = enriched(&nats.url());
    let ids: HashSet<String> = got.iter().map(|(_, e)| e.id.clone()).collect();
    assert_eq!((got.len(), ids.len()), (8, 8));
}

/// A pod for the stand-in API server, in namespace prod on node n1, with its times as
/// seconds after `t0`: created at `created`, running from `created + 1`, and (when given)
/// marked for deletion at `deleted`.
fn kube_pod(
    t0: u64,
    name: &str,
    ip: &str,
    created: u64,
    deleted: Option<u64>,
) -> serde_json::Value {
    use reef_integration::kube_api::rfc3339;
    let mut meta = serde_json::json!({
        "name": name, "namespace": "prod", "uid": format!("uid-{name}"),
        "creationTimestamp": rfc3339(t0 + created),
        "labels": {"app": name},
    });
    if let Some(d) = deleted {
        meta["deletionTimestamp"] = serde_json::json!(rfc3339(t0 + d));
    }
    serde_json::json!({
        "kind": "Pod", "metadata": meta,
        "spec": {"nodeName": "n1", "containers": [{"name": "app"}]},
        "status": {"phase": "Running", "startTime": rfc3339(t0 + created + 1),
                   "podIP": ip, "podIPs": [{"ip": ip}]},
    })
}

/// The summaries the correlator published on reef.v1.k8s.events, once applied.
type Summaries = std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

/// Waits until the correlator has applied (and summarised) `op` on pod `name`.
fn wait_applied(summaries: &Summaries, op: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if summaries
            .lock()
            .unwrap()
            .iter()
            .any(|v| v["op"] == op && v["kind"] == "Pod" && v["name"] == name)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the correlator never applied {op} of pod {name}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pods_recycled_while_traffic_flows_resolve_by_time_through_the_api_server() {
    use reef_integration::kube_api::KubeApi;
    use reef_k8s_watch::{Counters, Kind};
    use std::sync::{Arc, Mutex};

    // Object times are whole seconds after t0, a quarter of an hour ago: in the past, yet
    // well within what the correlator's index keeps of closed pods (its housekeeping
    // prunes with the wall clock).
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 900;
    // Entry k of second s: inside the second, away from its boundaries.
    let at = |s: u64, k: u64| ((t0 + s) * 1_000_000_000 + 50_000_000 + k * 100_000_000) as i64;
    let (recycled, c_ip, client_ip) = ("10.1.0.5", "10.1.0.6", "10.1.9.9");
    // Who owned the recycled address when: a over [10, 20), b over [30, 60), d from 70.
    let owner_of = |s: u64| match s {
        10..20 => "a",
        30..60 => "b",
        70.. => "d",
        _ => panic!("no owner at second {s}"),
    };

    let nats = NatsServer::start();
    let rt = runtime();
    let api = rt.block_on(KubeApi::start_with(Duration::from_millis(300)));
    let summaries: Summaries = Arc::new(Mutex::new(Vec::new()));
    {
        let sub = rt.block_on(async {
            let c = async_nats::connect(nats.url()).await.unwrap();
            let s = c.subscribe(subjects::K8S_EVENTS).await.unwrap();
            c.flush().await.unwrap();
            (c, s)
        });
        let seen = summaries.clone();
        rt.spawn(async move {
            use futures_util::StreamExt;
            let (_client, mut sub) = sub;
            while let Some(m) = sub.next().await {
                let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
                seen.lock().unwrap().push(v);
            }
        });
    }
    let counters = Arc::new(Counters::default());
    let (tx, rx) = mpsc::channel(1024);
    {
        let _g = rt.enter();
        let client = api.client();
        let c = counters.clone();
        rt.spawn(async move { reef_k8s_watch::run(client, tx, &c).await });
    }
    let mut c = cfg(nats.url());
    // A safety net only: every batch is published once the correlator knows its pods.
    c.unresolved_wait = Duration::from_secs(5);
    // The correlator applies Kubernetes events once the workers' stream exists.
    publish_raw(&rt, &nats.url(), Vec::new());
    let replica = start(&rt, c, Some(rx));

    // (id → (destination pod, second)) for every entry published.
    let mut want: HashMap<String, (&str, u64)> = HashMap::new();
    let mut port = 30000u16;
    let mut batch = |want: &mut HashMap<String, (&str, u64)>,
                     phase: &str,
                     traffic: &[(&str, std::ops::Range<u64>)]| {
        let mut entries = Vec::new();
        for (dst, secs) in traffic {
            for s in secs.clone() {
                for k in 0..3 {
                    port += 1;
                    let id = format!("{phase}-{dst}-{s}-{k}");
                    let pod = if *dst == recycled { owner_of(s) } else { "c" };
                    want.insert(id.clone(), (pod, s));
                    entries.push(Entry {
                        id,
                        node: Some("n1".into()),
                        timestamp: at(s, k),
                        protocol: Protocol::Http,
                        src_ip: client_ip.parse().unwrap(),
                        src_port: Some(port),
                        dst_ip: dst.parse().unwrap(),
                        dst_port: Some(8080),
                        method: Some("GET".into()),
                        ..Entry::default()
                    });
                }
            }
        }
        (subjects::node_entries("n1"), {
            ipc::encode(&Entry::batch(&entries), Compression::Lz4).unwrap()
        })
    };

    // The client, and a: traffic within a's life, while a runs.
    api.apply(kube_pod(t0, "client", client_ip, 0, None));
    api.apply(kube_pod(t0, "a", recycled, 9, None));
    wait_applied(&summaries, "upsert", "client");
    wait_applied(&summaries, "upsert", "a");
    let m = batch(&mut want, "p1", &[(recycled, 10..20)]);
    publish_raw(&rt, &nats.url(), vec![m]);

    // a goes (gracefully), b comes with the same address; late traffic of a's time and
    // b's own interleave in one batch.
    api.apply(kube_pod(t0, "a", recycled, 9, Some(20)));
    api.delete("Pod", "prod", "a").unwrap();
    api.apply(kube_pod(t0, "b", recycled, 29, None));
    wait_applied(&summaries, "delete", "a");
    wait_applied(&summaries, "upsert", "b");
    let m = batch(&mut want, "p2", &[(recycled, 12..18), (recycled, 30..40)]);
    publish_raw(&rt, &nats.url(), vec![m]);

    // 410 Gone: c appears while the watch cannot see it, and the history it was in is
    // compacted away; the watchers relist.
    rt.block_on(api.down());
    api.apply(kube_pod(t0, "c", c_ip, 44, None));
    api.compact();
    api.close_watches();
    rt.block_on(api.up());
    wait_applied(&summaries, "upsert", "c");
    let m = batch(
        &mut want,
        "p3",
        &[(c_ip, 45..50), (recycled, 40..50), (recycled, 15..17)],
    );
    publish_raw(&rt, &nats.url(), vec![m]);

    // The API server goes away for 2 s; meanwhile b goes and d takes its address.
    rt.block_on(async {
        api.down().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    api.apply(kube_pod(t0, "b", recycled, 29, Some(60)));
    api.delete("Pod", "prod", "b").unwrap();
    api.apply(kube_pod(t0, "d", recycled, 69, None));
    // Traffic of b's time, published during the outage: resolved with what is known.
    let m = batch(&mut want, "p4", &[(recycled, 50..55)]);
    publish_raw(&rt, &nats.url(), vec![m]);
    rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        api.up().await;
    });
    wait_applied(&summaries, "delete", "b");
    wait_applied(&summaries, "upsert", "d");
    // After the outage: every owner's time at once, and c's.
    let m = batch(
        &mut want,
        "p5",
        &[
            (recycled, 70..80),
            (recycled, 55..60),
            (recycled, 10..12),
            (recycled, 30..32),
            (c_ip, 50..52),
        ],
    );
    publish_raw(&rt, &nats.url(), vec![m]);

    // Every entry out, then stopped.
    let deadline = Instant::now() + Duration::from_secs(90);
    while enriched(&nats.url()).len() < want.len() {
        assert!(Instant::now() < deadline, "not every entry was enriched");
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_consumed(&rt, &nats.url());
    let report = stop(&rt, replica);
    let pods = counters.get(Kind::Pod);
    // What `reef correlator` appends to its /metrics says the same.
    let text = counters.prometheus_text();
    assert!(
        text.contains("reef_k8s_watch_relists_total{kind=\"Pod\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE reef_k8s_watch_errors_total counter"));
    let got = enriched(&nats.url());

    let mut count = HashMap::<String, usize>::new();
    let mut wrong = Vec::new();
    for (subject, e) in &got {
        *count.entry(e.id.clone()).or_default() += 1;
        let Some((pod, s)) = want.get(&e.id) else {
            panic!("an entry never published: {}", e.id);
        };
        if e.dst_pod.as_deref() != Some(*pod)
            || e.src_pod.as_deref() != Some("client")
            || e.dst_namespace.as_deref() != Some("prod")
            || subject != "reef.v1.enriched.prod.http"
        {
            wrong.push((
                e.id.clone(),
                *s,
                e.dst_pod.clone(),
                e.src_pod.clone(),
                subject.clone(),
            ));
        }
    }
    wrong.sort();
    assert!(
        wrong.is_empty(),
        "{} of {} wrong (id, second, dst_pod, src_pod, subject): {wrong:?}",
        wrong.len(),
        got.len()
    );
    assert_eq!(count.len(), want.len(), "every entry");
    assert!(count.values().all(|n| *n == 1), "no entry twice");
    assert_eq!(report.entries_out, want.len() as u64);
    assert_eq!((report.poison, report.redelivered), (0, 0));
    // Per owner: a's, b's, c's and d's traffic all came through.
    let mut per_pod = BTreeMap::<&str, usize>::new();
    for (pod, _) in want.values() {
        *per_pod.entry(pod).or_default() += 1;
    }
    assert_eq!(
        per_pod.into_iter().collect::<Vec<_>>(),
        [
            ("a", 30 + 18 + 6 + 6),
            ("b", 30 + 30 + 15 + 15 + 6),
            ("c", 15 + 6),
            ("d", 30)
        ]
    );
    assert_eq!(pods.relists, 1, "one relist after the 410: {pods:?}");
    assert!(
        pods.errors > 0,
        "the watcher saw the server go away: {pods:?}"
    );
    assert_eq!(pods.deletes, 2, "a's and b's deletions watched: {pods:?}");
    drop(api);
}
