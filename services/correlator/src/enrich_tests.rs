#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use reef_k8s_index::{
    Controller, Endpoint, EndpointSlice, Event, K8sIndex, Object, OwnerRef, Pod, Service, TargetRef,
};
use reef_schema::{Entry, OS_ACCEPT, OS_CONNECT, OsEvent, Protocol, entries_from_batch};

use crate::enrich::{Enricher, split_by_subject};
use crate::os_index::OsIndex;

const S: i64 = 1_000_000_000;

fn pod(uid: &str, ns: &str, name: &str, ip: &str, owner: Option<OwnerRef>) -> Pod {
    Pod {
        uid: uid.into(),
        resource_version: 1,
        namespace: ns.into(),
        name: name.into(),
        node: Some("node-a".into()),
        ips: vec![ip.parse().unwrap()],
        labels: [("app".to_string(), name.to_string())].into(),
        owner,
        created: 0,
        ..Pod::default()
    }
}

fn index() -> K8sIndex {
    let mut idx = K8sIndex::new();
    let rs = OwnerRef {
        kind: "ReplicaSet".into(),
        name: "web-5d9".into(),
        uid: "rs1".into(),
    };
    idx.apply(Event::Upsert(Object::ReplicaSet(Controller {
        uid: "rs1".into(),
        resource_version: 1,
        namespace: "shop".into(),
        name: "web-5d9".into(),
        owner: Some(OwnerRef {
            kind: "Deployment".into(),
            name: "web".into(),
            uid: "d1".into(),
        }),
        deleted: None,
    })));
    idx.apply(Event::Upsert(Object::Pod(pod(
        "p1",
        "shop",
        "web-5d9-x",
        "10.0.0.2",
        Some(rs),
    ))));
    idx.apply(Event::Upsert(Object::Pod(pod(
        "p2", "tools", "client", "10.0.0.1", None,
    ))));
    idx.apply(Event::Upsert(Object::EndpointSlice(EndpointSlice {
        uid: "s1".into(),
        resource_version: 1,
        namespace: "shop".into(),
        name: "web-abc".into(),
        service: "web".into(),
        endpoints: vec![Endpoint {
            ips: vec!["10.0.0.2".parse().unwrap()],
            target: Some(TargetRef {
                name: "web-5d9-x".into(),
                uid: "p1".into(),
            }),
        }],
        created: 0,
        deleted: None,
    })));
    idx.apply(Event::Upsert(Object::Service(Service {
        uid: "svc1".into(),
        resource_version: 1,
        namespace: "shop".into(),
        name: "web".into(),
        cluster_ips: vec!["10.96.0.10".parse().unwrap()],
        created: 0,
        deleted: None,
    })));
    idx
}

fn entry(src: &str, sport: u16, dst: &str, protocol: Protocol) -> Entry {
    Entry {
        id: format!("{src}:{sport}-{dst}"),
        timestamp: 100 * S,
        protocol,
        src_ip: src.parse().unwrap(),
        src_port: Some(sport),
        dst_ip: dst.parse().unwrap(),
        dst_port: Some(80),
        method: Some("GET".into()),
        path: Some("/".into()),
        ..Entry::default()
    }
}

#[test]
fn fills_both_sides_and_keeps_the_rest() {
    let idx = index();
    let mut os = OsIndex::new();
    let ev = |kind: &str, pid: u32, comm: &str| OsEvent {
        timestamp: 99 * S,
        kind: kind.into(),
        pid: Some(pid),
        comm: Some(comm.into()),
        src_ip: "10.0.0.1".parse().unwrap(),
        src_port: Some(4000),
        dst_ip: "10.0.0.2".parse().unwrap(),
        dst_port: Some(80),
        ..OsEvent::default()
    };
    os.apply("node-a", &ev(OS_CONNECT, 11, "curl"));
    os.apply("node-a", &ev(OS_ACCEPT, 22, "nginx"));

    let mut known = entry("10.0.0.1", 4000, "10.0.0.2", Protocol::Http);
    known.src_process = Some("from-worker".into());
    let mut outside = entry("192.0.2.1", 5000, "10.96.0.10", Protocol::Http);
    outside.src_labels = Some([("kept".to_string(), "yes".to_string())].into());
    outside.src_pid = Some(5);
    let input = vec![known.clone(), outside.clone()];
    let batch = Entry::batch(&input);
    let mut e = Enricher::new();
    let (out, stats) = e.enrich(&batch, "node-a", &idx, &os).unwrap();
    assert_eq!(out.schema(), batch.schema());
    assert_eq!(stats.rows, 2);
    assert_eq!(stats.resolved, [1, 2]);
    assert_eq!(stats.unresolved, [1, 0]);
    assert_eq!(stats.process, [1, 1]);
    let got = entries_from_batch(&out).unwrap();

    let a = &got[0];
    assert_eq!(a.src_pod.as_deref(), Some("client"));
    assert_eq!(a.src_namespace.as_deref(), Some("tools"));
    assert_eq!(a.src_workload.as_deref(), Some("client"));
    assert_eq!(a.src_workload_kind.as_deref(), Some("Pod"));
    assert_eq!(a.src_node.as_deref(), Some("node-a"));
    assert_eq!(a.src_process.as_deref(), Some("curl"), "the index wins");
    assert_eq!(a.src_pid, Some(11));
    assert_eq!(a.dst_pod.as_deref(), Some("web-5d9-x"));
    assert_eq!(a.dst_namespace.as_deref(), Some("shop"));
    assert_eq!(a.dst_service.as_deref(), Some("web"));
    assert_eq!(a.dst_workload.as_deref(), Some("web"));
    assert_eq!(a.dst_workload_kind.as_deref(), Some("Deployment"));
    assert_eq!(
        (a.dst_process.as_deref(), a.dst_pid),
        (Some("nginx"), Some(22))
    );
    assert_eq!(
        a.dst_labels,
        Some(BTreeMap::from([(
            "app".to_string(),
            "web-5d9-x".to_string()
        )]))
    );
    // Everything else is as it was.
    let mut back = a.clone();
    {
        let e = &mut back;
        e.src_pod = None;
        e.src_namespace = None;
        e.src_workload = None;
        e.src_workload_kind = None;
        e.src_node = None;
        e.src_process = known.src_process.clone();
        e.src_pid = None;
        e.src_labels = None;
        e.dst_pod = None;
        e.dst_namespace = None;
        e.dst_service = None;
        e.dst_workload = None;
        e.dst_workload_kind = None;
        e.dst_node = None;
        e.dst_process = None;
        e.dst_pid = None;
        e.dst_labels = None;
    }
    assert_eq!(back, known);

    // Unknown client: what the batch had stays; a cluster IP names its service only.
    let b = &got[1];
    assert_eq!(b.src_pod, None);
    assert_eq!(b.src_labels, outside.src_labels);
    assert_eq!(b.src_pid, Some(5));
    assert_eq!(b.dst_service.as_deref(), Some("web"));
    assert_eq!(b.dst_namespace.as_deref(), Some("shop"));
    assert_eq!((b.dst_pod.as_deref(), b.dst_labels.as_ref()), (None, None));

    // Another node's OS events do not apply.
    let (_, stats) = e.enrich(&batch, "node-b", &idx, &os).unwrap();
    assert_eq!(stats.process, [0, 0]);
}

#[test]
fn empty_indexes_pass_entries_through() {
    let input = vec![
        entry("10.0.0.1", 1, "10.0.0.2", Protocol::Dns),
        entry("192.0.2.7", 1, "10.0.0.2", Protocol::Dns),
    ];
    let batch = Entry::batch(&input);
    let (out, stats) = Enricher::new()
        .enrich(&batch, "n", &K8sIndex::new(), &OsIndex::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.unresolved, [2, 2]);
    assert_eq!(entries_from_batch(&out).unwrap().len(), 2);
    assert_eq!(out.columns()[0].to_data(), batch.columns()[0].to_data());

    let mut bad = batch.clone();
    bad.remove_column(batch.schema().index_of("src_ip").unwrap());
    assert!(
        Enricher::new()
            .enrich(&bad, "n", &K8sIndex::new(), &OsIndex::new())
            .is_err()
    );
}

#[test]
fn splits_by_server_namespace_and_protocol() {
    let idx = index();
    let input = vec![
        entry("10.0.0.1", 1, "10.0.0.2", Protocol::Http),
        entry("10.0.0.1", 2, "192.0.2.9", Protocol::Http),
        entry("10.0.0.1", 3, "10.0.0.2", Protocol::Http),
        entry("10.0.0.1", 4, "10.0.0.2", Protocol::Redis),
    ];
    let (out, _) = Enricher::new()
        .enrich(&Entry::batch(&input), "n", &idx, &OsIndex::new())
        .unwrap();
    let parts = split_by_subject(&out).unwrap();
    let got: Vec<(String, Vec<u16>)> = parts
        .iter()
        .map(|(s, b)| {
            let ports = entries_from_batch(b)
                .unwrap()
                .iter()
                .map(|e| e.src_port.unwrap())
                .collect();
            (s.clone(), ports)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("reef.v1.enriched.shop.http".to_string(), vec![1, 3]),
            ("reef.v1.enriched._.http".to_string(), vec![2]),
            ("reef.v1.enriched.shop.redis".to_string(), vec![4]),
        ]
    );
    let one = split_by_subject(&Entry::batch(&input[..1])).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        one[0].0, "reef.v1.enriched._.http",
        "not enriched: no namespace"
    );
}
