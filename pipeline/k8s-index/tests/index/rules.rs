//! One test per rule of the index (see the crate docs).

use std::collections::BTreeMap;
use std::net::IpAddr;

use reef_k8s_index::limits::{MAX_VERSIONS_PER_IP, RETAIN_CLOSED_NS, TOMBSTONE_RETAIN_NS};
use reef_k8s_index::{
    Controller, Endpoint, EndpointSlice, Event, K8sIndex, Node, Object, OwnerRef, Pod, Resolved,
    Service, TargetRef,
};

const S: i64 = 1_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP literal")
}

fn pod(uid: &str, name: &str, addr: &str, started: i64) -> Pod {
    Pod {
        uid: uid.into(),
        resource_version: 1,
        namespace: "shop".into(),
        name: name.into(),
        node: Some("node-1".into()),
        ips: vec![ip(addr)],
        created: started - S,
        started: Some(started),
        ..Pod::default()
    }
}

fn owned(mut p: Pod, kind: &str, name: &str, uid: &str) -> Pod {
    p.owner = Some(OwnerRef {
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
    });
    p
}

fn up(o: Object) -> Event {
    Event::Upsert(o)
}

fn del(o: Object, at: i64) -> Event {
    Event::Delete { object: o, at }
}

fn pod_name(r: Option<&Resolved>) -> Option<&str> {
    r.and_then(|r| r.pod.as_deref())
}

fn workload(idx: &K8sIndex, addr: &str, ts: i64) -> (String, String) {
    let r = idx.lookup(ip(addr), ts).expect("resolved");
    (
        r.workload.as_deref().expect("workload").to_owned(),
        r.workload_kind.as_deref().expect("kind").to_owned(),
    )
}

fn rs(uid: &str, name: &str, deployment: Option<&str>) -> Controller {
    Controller {
        uid: uid.into(),
        resource_version: 1,
        namespace: "shop".into(),
        name: name.into(),
        owner: deployment.map(|d| OwnerRef {
            kind: "Deployment".into(),
            name: d.into(),
            uid: format!("{d}-uid"),
        }),
        deleted: None,
    }
}

#[test]
fn pod_ip_resolves_inside_its_interval_only() {
    let mut idx = K8sIndex::new();
    let mut p = pod("a", "api-0", "10.0.0.1", 100 * S);
    p.labels = BTreeMap::from([("app".into(), "api".into())]);
    idx.apply(up(Object::Pod(p.clone())));
    idx.apply(del(Object::Pod(p), 200 * S));

    assert_eq!(idx.lookup(ip("10.0.0.1"), 99 * S), None);
    let r = idx.lookup(ip("10.0.0.1"), 150 * S).unwrap();
    assert_eq!(r.pod.as_deref(), Some("api-0"));
    assert_eq!(r.namespace.as_deref(), Some("shop"));
    assert_eq!(r.node.as_deref(), Some("node-1"));
    assert_eq!(r.workload.as_deref(), Some("api-0"));
    assert_eq!(r.workload_kind.as_deref(), Some("Pod"));
    assert_eq!(r.labels.get("app").map(String::as_str), Some("api"));
    assert_eq!(idx.lookup(ip("10.0.0.1"), 200 * S), None);
}

#[test]
fn unknown_ip_resolves_to_nothing() {
    let mut idx = K8sIndex::new();
    idx.apply(up(Object::Pod(pod("a", "api-0", "10.0.0.1", 100 * S))));
    assert_eq!(idx.lookup(ip("10.9.9.9"), 150 * S), None);
    assert_eq!(idx.lookup(ip("fd00::1"), 150 * S), None);
}

#[test]
fn ipv4_mapped_ipv6_is_the_same_address() {
    let mut idx = K8sIndex::new();
    idx.apply(up(Object::Pod(pod("a", "api-0", "10.0.0.1", 100 * S))));
    assert_eq!(
        pod_name(idx.lookup(ip("::ffff:10.0.0.1"), 150 * S)),
        Some("api-0")
    );
}

#[test]
fn recycled_ip_gives_old_traffic_the_old_pod() {
    let mut idx = K8sIndex::new();
    let a = pod("a", "api-0", "10.0.0.1", 100 * S);
    let b = pod("b", "web-0", "10.0.0.1", 300 * S);
    idx.apply(up(Object::Pod(a.clone())));
    idx.apply(del(Object::Pod(a), 200 * S));
    idx.apply(up(Object::Pod(b)));

    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 150 * S)), Some("api-0"));
    assert_eq!(idx.lookup(ip("10.0.0.1"), 250 * S), None);
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 350 * S)), Some("web-0"));
}

#[test]
fn overlap_cuts_the_older_pod_at_the_newer_start() {
    // B started on A's IP before A's deletion was observed: A lost the IP at B's start.
    let mut idx = K8sIndex::new();
    idx.apply(up(Object::Pod(pod("a", "api-0", "10.0.0.1", 100 * S))));
    idx.apply(up(Object::Pod(pod("b", "web-0", "10.0.0.1", 300 * S))));
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 299 * S)), Some("api-0"));
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 300 * S)), Some("web-0"));

    // A's deletion arriving late, with a time after B's start, changes nothing.
    idx.apply(del(
        Object::Pod(pod("a", "api-0", "10.0.0.1", 100 * S)),
        400 * S,
    ));
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 350 * S)), Some("web-0"));
}

#[test]
fn validity_uses_object_times_not_arrival() {
    // A replay: everything arrives long after the fact, newest first.
    let mut idx = K8sIndex::new();
    let a = pod("a", "api-0", "10.0.0.1", 100 * S);
    let b = pod("b", "web-0", "10.0.0.1", 300 * S);
    let mut a_gone = a.clone();
    a_gone.deleted = Some(200 * S);
    a_gone.resource_version = 5;
    idx.apply(up(Object::Pod(b)));
    idx.apply(del(Object::Pod(a_gone), 9_000 * S));
    idx.apply(up(Object::Pod(a)));
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 150 * S)), Some("api-0"));
    assert_eq!(idx.lookup(ip("10.0.0.1"), 250 * S), None);
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 350 * S)), Some("web-0"));
}

#[test]
fn pod_without_start_time_starts_at_creation() {
    let mut idx = K8sIndex::new();
    let mut p = pod("a", "api-0", "10.0.0.1", 100 * S);
    p.started = None;
    idx.apply(up(Object::Pod(p)));
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 99 * S)), Some("api-0"));
}

#[test]
fn finished_pod_releases_its_ip() {
    let mut idx = K8sIndex::new();
    let mut p = pod("a", "job-x", "10.0.0.1", 100 * S);
    p.finished = Some(150 * S);
    idx.apply(up(Object::Pod(p)));
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 149 * S)), Some("job-x"));
    assert_eq!(idx.lookup(ip("10.0.0.1"), 150 * S), None);
}

#[test]
fn stale_version_after_relist_is_harmless() {
    let mut idx = K8sIndex::new();
    let mut v1 = pod("a", "api-0", "10.0.0.1", 100 * S);
    v1.labels = BTreeMap::from([("v".into(), "1".into())]);
    let mut v2 = v1.clone();
    v2.resource_version = 2;
    v2.labels = BTreeMap::from([("v".into(), "2".into())]);
    idx.apply(up(Object::Pod(v2.clone())));
    idx.apply(up(Object::Pod(v1)));
    idx.apply(up(Object::Pod(v2)));
    let r = idx.lookup(ip("10.0.0.1"), 150 * S).unwrap();
    assert_eq!(r.labels.get("v").map(String::as_str), Some("2"));
    assert_eq!(idx.stats().stale, 1);
    assert_eq!(idx.stats().duplicates, 1);
}

#[test]
fn stale_upsert_after_delete_does_not_reopen() {
    let mut idx = K8sIndex::new();
    let a = pod("a", "api-0", "10.0.0.1", 100 * S);
    let mut gone = a.clone();
    gone.resource_version = 3;
    idx.apply(del(Object::Pod(gone), 200 * S));
    idx.apply(up(Object::Pod(a)));
    assert_eq!(idx.lookup(ip("10.0.0.1"), 250 * S), None);
}

#[test]
fn delete_event_prefers_the_earlier_deletion_timestamp() {
    let mut idx = K8sIndex::new();
    let mut a = pod("a", "api-0", "10.0.0.1", 100 * S);
    a.deleted = Some(180 * S);
    idx.apply(del(Object::Pod(a), 500 * S));
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 179 * S)), Some("api-0"));
    assert_eq!(idx.lookup(ip("10.0.0.1"), 180 * S), None);
}

#[test]
fn ips_learned_in_a_later_version_are_kept_when_delete_lacks_status() {
    let mut idx = K8sIndex::new();
    let a = pod("a", "api-0", "10.0.0.1", 100 * S);
    let mut gone = a.clone();
    gone.ips.clear();
    gone.resource_version = 2;
    idx.apply(del(Object::Pod(gone), 200 * S));
    idx.apply(up(Object::Pod(a)));
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 150 * S)), Some("api-0"));
    assert_eq!(idx.lookup(ip("10.0.0.1"), 250 * S), None);
}

#[test]
fn deployment_via_replicaset_in_either_order() {
    let p = owned(
        pod("a", "api-7d9f-x1", "10.0.0.1", 100 * S),
        "ReplicaSet",
        "api-7d9f",
        "rs1",
    );
    for rs_first in [true, false] {
        let mut idx = K8sIndex::new();
        if rs_first {
            idx.apply(up(Object::ReplicaSet(rs("rs1", "api-7d9f", Some("api")))));
        }
        idx.apply(up(Object::Pod(p.clone())));
        if !rs_first {
            // Before the ReplicaSet arrives the pod names the ReplicaSet itself.
            assert_eq!(
                workload(&idx, "10.0.0.1", 150 * S),
                ("api-7d9f".into(), "ReplicaSet".into())
            );
            idx.apply(up(Object::ReplicaSet(rs("rs1", "api-7d9f", Some("api")))));
        }
        assert_eq!(
            workload(&idx, "10.0.0.1", 150 * S),
            ("api".into(), "Deployment".into())
        );
    }
}

#[test]
fn deployment_guessed_from_pod_template_hash_before_replicaset() {
    let mut p = owned(
        pod("a", "api-7d9f-x1", "10.0.0.1", 100 * S),
        "ReplicaSet",
        "api-7d9f",
        "rs1",
    );
    p.labels = BTreeMap::from([("pod-template-hash".into(), "7d9f".into())]);
    let mut idx = K8sIndex::new();
    idx.apply(up(Object::Pod(p)));
    assert_eq!(
        workload(&idx, "10.0.0.1", 150 * S),
        ("api".into(), "Deployment".into())
    );
}

#[test]
fn bare_replicaset_is_the_workload() {
    let mut idx = K8sIndex::new();
    idx.apply(up(Object::ReplicaSet(rs("rs1", "lonely", None))));
    idx.apply(up(Object::Pod(owned(
        pod("a", "lonely-x", "10.0.0.1", 100 * S),
        "ReplicaSet",
        "lonely",
        "rs1",
    ))));
    assert_eq!(
        workload(&idx, "10.0.0.1", 150 * S),
        ("lonely".into(), "ReplicaSet".into())
    );
}

#[test]
fn statefulset_and_daemonset_are_direct_owners() {
    let mut idx = K8sIndex::new();
    idx.apply(up(Object::Pod(owned(
        pod("a", "db-0", "10.0.0.1", 100 * S),
        "StatefulSet",
        "db",
        "ss1",
    ))));
    idx.apply(up(Object::Pod(owned(
        pod("b", "agent-x", "10.0.0.2", 100 * S),
        "DaemonSet",
        "agent",
        "ds1",
    ))));
    assert_eq!(
        workload(&idx, "10.0.0.1", 150 * S),
        ("db".into(), "StatefulSet".into())
    );
    assert_eq!(
        workload(&idx, "10.0.0.2", 150 * S),
        ("agent".into(), "DaemonSet".into())
    );
}

#[test]
fn cronjob_via_job_and_plain_job() {
    let mut idx = K8sIndex::new();
    idx.apply(up(Object::Pod(owned(
        pod("a", "backup-2900-x", "10.0.0.1", 100 * S),
        "Job",
        "backup-2900",
        "j1",
    ))));
    idx.apply(up(Object::Job(Controller {
        uid: "j1".into(),
        resource_version: 1,
        namespace: "shop".into(),
        name: "backup-2900".into(),
        owner: Some(OwnerRef {
            kind: "CronJob".into(),
            name: "backup".into(),
            uid: "cj1".into(),
        }),
        deleted: None,
    })));
    idx.apply(up(Object::Job(Controller {
        uid: "j2".into(),
        resource_version: 1,
        namespace: "shop".into(),
        name: "migrate".into(),
        owner: None,
        deleted: None,
    })));
    idx.apply(up(Object::Pod(owned(
        pod("b", "migrate-x", "10.0.0.2", 100 * S),
        "Job",
        "migrate",
        "j2",
    ))));
    assert_eq!(
        workload(&idx, "10.0.0.1", 150 * S),
        ("backup".into(), "CronJob".into())
    );
    assert_eq!(
        workload(&idx, "10.0.0.2", 150 * S),
        ("migrate".into(), "Job".into())
    );
}

#[test]
fn static_pod_owned_by_node_is_its_own_workload() {
    let mut idx = K8sIndex::new();
    idx.apply(up(Object::Pod(owned(
        pod("a", "etcd-node-1", "10.0.0.1", 100 * S),
        "Node",
        "node-1",
        "n1",
    ))));
    assert_eq!(
        workload(&idx, "10.0.0.1", 150 * S),
        ("etcd-node-1".into(), "Pod".into())
    );
}

#[test]
fn host_network_pod_resolves_to_its_node() {
    let mut idx = K8sIndex::new();
    idx.apply(up(Object::Node(Node {
        uid: "n1".into(),
        resource_version: 1,
        name: "node-1".into(),
        ips: vec![ip("192.168.1.10")],
        created: 10 * S,
        deleted: None,
    })));
    let mut p = pod("a", "kube-proxy-x", "192.168.1.10", 100 * S);
    p.host_network = true;
    idx.apply(up(Object::Pod(p)));
    let mut q = pod("b", "node-exporter-x", "192.168.1.10", 120 * S);
    q.host_network = true;
    idx.apply(up(Object::Pod(q)));
    let r = idx.lookup(ip("192.168.1.10"), 150 * S).unwrap();
    assert_eq!(r.node.as_deref(), Some("node-1"));
    assert_eq!(r.pod, None);
    assert_eq!(r.workload, None);
}

#[test]
fn service_cluster_ip_resolves_to_the_service() {
    let mut idx = K8sIndex::new();
    let svc = Service {
        uid: "s1".into(),
        resource_version: 1,
        namespace: "shop".into(),
        name: "cart".into(),
        cluster_ips: vec![ip("10.96.0.10")],
        created: 10 * S,
        deleted: None,
    };
    idx.apply(up(Object::Service(svc.clone())));
    let r = idx.lookup(ip("10.96.0.10"), 150 * S).unwrap();
    assert_eq!(r.service.as_deref(), Some("cart"));
    assert_eq!(r.namespace.as_deref(), Some("shop"));
    assert_eq!(r.pod, None);
    idx.apply(del(Object::Service(svc), 200 * S));
    assert_eq!(idx.lookup(ip("10.96.0.10"), 250 * S), None);
    assert!(idx.lookup(ip("10.96.0.10"), 150 * S).is_some());
}

fn slice(uid: &str, service: &str, rv: u64, pods: &[(&str, &str, &str)]) -> EndpointSlice {
    EndpointSlice {
        uid: uid.into(),
        resource_version: rv,
        namespace: "shop".into(),
        name: format!("{service}-{uid}"),
        service: service.into(),
        endpoints: pods
            .iter()
            .map(|(uid, name, addr)| Endpoint {
                ips: vec![ip(addr)],
                target: Some(TargetRef {
                    name: (*name).into(),
                    uid: (*uid).into(),
                }),
            })
            .collect(),
        created: 10 * S,
        deleted: None,
    }
}

#[test]
fn endpointslice_gives_a_pod_its_service_in_either_order() {
    for slice_first in [true, false] {
        let mut idx = K8sIndex::new();
        let s = slice("es1", "cart", 1, &[("a", "cart-x", "10.0.0.1")]);
        if slice_first {
            idx.apply(up(Object::EndpointSlice(s.clone())));
        }
        idx.apply(up(Object::Pod(pod("a", "cart-x", "10.0.0.1", 100 * S))));
        idx.apply(up(Object::Pod(pod("b", "other", "10.0.0.2", 100 * S))));
        if !slice_first {
            idx.apply(up(Object::EndpointSlice(s)));
        }
        let r = idx.lookup(ip("10.0.0.1"), 150 * S).unwrap();
        assert_eq!(r.service.as_deref(), Some("cart"));
        assert_eq!(r.pod.as_deref(), Some("cart-x"));
        assert_eq!(idx.lookup(ip("10.0.0.2"), 150 * S).unwrap().service, None);
    }
}

#[test]
fn pod_keeps_its_service_after_leaving_the_slice() {
    let mut idx = K8sIndex::new();
    idx.apply(up(Object::Pod(pod("a", "cart-x", "10.0.0.1", 100 * S))));
    idx.apply(up(Object::EndpointSlice(slice(
        "es1",
        "cart",
        1,
        &[("a", "cart-x", "10.0.0.1")],
    ))));
    idx.apply(up(Object::EndpointSlice(slice("es1", "cart", 2, &[]))));
    let r = idx.lookup(ip("10.0.0.1"), 150 * S).unwrap();
    assert_eq!(r.service.as_deref(), Some("cart"));
}

#[test]
fn several_services_pick_the_smallest_name_whatever_the_order() {
    for flip in [false, true] {
        let mut idx = K8sIndex::new();
        let mut slices = vec![
            slice("es1", "zeta", 1, &[("a", "x", "10.0.0.1")]),
            slice("es2", "alpha", 1, &[("a", "x", "10.0.0.1")]),
        ];
        if flip {
            slices.reverse();
        }
        idx.apply(up(Object::Pod(pod("a", "x", "10.0.0.1", 100 * S))));
        for s in slices {
            idx.apply(up(Object::EndpointSlice(s)));
        }
        let r = idx.lookup(ip("10.0.0.1"), 150 * S).unwrap();
        assert_eq!(r.service.as_deref(), Some("alpha"));
    }
}

#[test]
fn batch_matches_single_lookups() {
    let mut idx = K8sIndex::new();
    let a = pod("a", "api-0", "10.0.0.1", 100 * S);
    idx.apply(up(Object::Pod(a.clone())));
    idx.apply(del(Object::Pod(a), 200 * S));
    idx.apply(up(Object::Pod(pod("b", "web-0", "10.0.0.1", 300 * S))));
    idx.apply(up(Object::Pod(pod("c", "db-0", "10.0.0.2", 100 * S))));
    let rows = [
        (ip("10.0.0.1"), 150 * S),
        (ip("10.0.0.1"), 250 * S),
        (ip("10.0.0.1"), 350 * S),
        (ip("10.0.0.2"), 350 * S),
        (ip("10.0.0.3"), 350 * S),
        (ip("10.0.0.1"), 150 * S),
    ];
    let mut out = Vec::new();
    idx.resolve_batch(rows.iter().copied(), &mut out);
    let names: Vec<_> = out.iter().map(|r| pod_name(*r)).collect();
    assert_eq!(
        names,
        [
            Some("api-0"),
            None,
            Some("web-0"),
            Some("db-0"),
            None,
            Some("api-0")
        ]
    );
    for (got, (addr, ts)) in out.iter().zip(rows) {
        assert_eq!(*got, idx.lookup(addr, ts));
    }
    // Reusing the buffer clears it.
    idx.resolve_batch([(ip("10.0.0.2"), 150 * S)], &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn versions_per_ip_are_bounded_and_counted() {
    let mut idx = K8sIndex::new();
    let n = MAX_VERSIONS_PER_IP as i64 + 10;
    for i in 0..n {
        let mut p = pod(
            &format!("p{i}"),
            &format!("pod-{i}"),
            "10.0.0.1",
            (i + 1) * 100 * S,
        );
        p.deleted = Some((i + 1) * 100 * S + 50 * S);
        idx.apply(up(Object::Pod(p)));
    }
    assert_eq!(idx.stats().versions_evicted, 10);
    // The oldest are gone, the newest resolve.
    assert_eq!(idx.lookup(ip("10.0.0.1"), 110 * S), None);
    assert_eq!(
        pod_name(idx.lookup(ip("10.0.0.1"), n * 100 * S + S)),
        Some(&*format!("pod-{}", n - 1))
    );
}

#[test]
fn prune_forgets_closed_intervals_and_keeps_open_ones() {
    let mut idx = K8sIndex::new();
    let a = pod("a", "api-0", "10.0.0.1", 100 * S);
    idx.apply(del(Object::Pod(a.clone()), 200 * S));
    idx.apply(up(Object::Pod(pod("b", "web-0", "10.0.0.2", 100 * S))));
    idx.apply(up(Object::Service(Service {
        uid: "s1".into(),
        resource_version: 1,
        namespace: "shop".into(),
        name: "gone".into(),
        cluster_ips: vec![ip("10.96.0.1")],
        created: 10 * S,
        deleted: Some(150 * S),
    })));

    // Not old enough yet.
    idx.prune(200 * S + RETAIN_CLOSED_NS - 1);
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 150 * S)), Some("api-0"));
    assert_eq!(idx.stats().pruned, 1);

    let now = 200 * S + RETAIN_CLOSED_NS + 1;
    idx.prune(now);
    assert_eq!(idx.lookup(ip("10.0.0.1"), 150 * S), None);
    assert_eq!(idx.lookup(ip("10.96.0.1"), 100 * S), None);
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.2"), now)), Some("web-0"));
    assert_eq!(idx.stats().pruned, 2);
    assert_eq!(idx.tracked_ips(), 1);

    // A stale copy re-delivered after pruning does not come back to life.
    idx.apply(up(Object::Pod(a.clone())));
    assert_eq!(idx.lookup(ip("10.0.0.1"), 150 * S), None);
    assert_eq!(idx.stats().after_prune, 1);

    // Once the tombstone expires, the uid is unknown again.
    idx.prune(now + TOMBSTONE_RETAIN_NS + 1);
    idx.apply(up(Object::Pod(a)));
    assert_eq!(pod_name(idx.lookup(ip("10.0.0.1"), 150 * S)), Some("api-0"));
}

#[test]
fn duplicate_delivery_is_idempotent() {
    let events = vec![
        up(Object::ReplicaSet(rs("rs1", "api-7d9f", Some("api")))),
        up(Object::Pod(owned(
            pod("a", "api-x", "10.0.0.1", 100 * S),
            "ReplicaSet",
            "api-7d9f",
            "rs1",
        ))),
        up(Object::EndpointSlice(slice(
            "es1",
            "api",
            1,
            &[("a", "api-x", "10.0.0.1")],
        ))),
    ];
    let mut once = K8sIndex::new();
    let mut twice = K8sIndex::new();
    for e in &events {
        once.apply(e.clone());
        twice.apply(e.clone());
    }
    for e in events.into_iter().rev() {
        twice.apply(e);
    }
    assert_eq!(
        once.lookup(ip("10.0.0.1"), 150 * S),
        twice.lookup(ip("10.0.0.1"), 150 * S)
    );
    assert_eq!(twice.stats().duplicates, 3);
    assert_eq!(once.tracked_objects(), twice.tracked_objects());
}
