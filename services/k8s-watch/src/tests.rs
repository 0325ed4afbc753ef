#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

fn pod_json() -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-7d4b9-abcde", "namespace": "prod", "uid": "u-1",
            "resourceVersion": "42",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "deletionTimestamp": "2026-01-01T01:00:00Z",
            "labels": {"app": "web"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Other", "name": "gc-only", "uid": "g"},
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9",
                 "uid": "rs-1", "controller": true}
            ]
        },
        "spec": {"nodeName": "n1", "hostNetwork": false, "containers": [{"name": "c"}]},
        "status": {
            "phase": "Succeeded",
            "startTime": "2026-01-01T00:00:01Z",
            "podIP": "10.0.0.9",
            "podIPs": [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}],
            "containerStatuses": [{
                "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0,
                    "startedAt": "2026-01-01T00:00:02Z",
                    "finishedAt": "2026-01-01T00:30:00Z"}}
            }]
        }
    }))
    .unwrap()
}

const T0: i64 = 1_767_225_600 * 1_000_000_000; // 2026-01-01T00:00:00Z

#[test]
fn maps_a_pod() {
    let p = map::pod(&pod_json()).unwrap();
    assert_eq!(p.uid, "u-1");
    assert_eq!(p.resource_version, 42);
    assert_eq!(p.namespace, "prod");
    assert_eq!(p.node.as_deref(), Some("n1"));
    assert_eq!(
        p.ips,
        vec![
            "10.0.0.9".parse::<std::net::IpAddr>().unwrap(),
            "fd00::9".parse().unwrap()
        ]
    );
    assert_eq!(p.created, T0);
    assert_eq!(p.started, Some(T0 + 1_000_000_000));
    assert_eq!(p.finished, Some(T0 + 1_800 * 1_000_000_000));
    assert_eq!(p.deleted, Some(T0 + 3_600 * 1_000_000_000));
    let owner = p.owner.unwrap();
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("ReplicaSet", "rs-1")
    );
    assert_eq!(p.labels.get("app").map(String::as_str), Some("web"));
}

#[test]
fn odd_fields() {
    let mut p = pod_json();
    p.metadata.resource_version = Some("not-a-number".into());
    p.status.as_mut().unwrap().phase = Some("Running".into());
    p.status.as_mut().unwrap().pod_ips = None;
    let m = map::pod(&p).unwrap();
    assert_eq!(m.resource_version, 0);
    assert_eq!(m.finished, None, "only a terminal phase ends a pod");
    assert_eq!(m.ips, vec!["10.0.0.9".parse::<std::net::IpAddr>().unwrap()]);
    p.metadata.uid = None;
    assert!(map::pod(&p).is_none());

    let s: Service = serde_json::from_value(json!({
        "metadata": {"name": "db", "namespace": "prod", "uid": "s"},
        "spec": {"clusterIP": "None", "clusterIPs": ["None"]}
    }))
    .unwrap();
    assert!(map::service(&s).unwrap().cluster_ips.is_empty(), "headless");

    let n: Node = serde_json::from_value(json!({
        "metadata": {"name": "n1", "uid": "n"},
        "status": {"addresses": [
            {"type": "InternalIP", "address": "192.168.1.5"},
            {"type": "Hostname", "address": "n1"},
            {"type": "ExternalIP", "address": "203.0.113.5"}
        ]}
    }))
    .unwrap();
    assert_eq!(map::node(&n).unwrap().ips.len(), 2);

    let es: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "db-x", "namespace": "prod", "uid": "e",
                     "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.0.0.9"], "targetRef": {"kind": "Pod", "name": "p", "uid": "u-1"}},
            {"addresses": ["10.9.9.9"], "targetRef": {"kind": "Node", "name": "n", "uid": "n"}},
            {"addresses": ["10.9.9.8"]}
        ]
    }))
    .unwrap();
    let m = map::endpoint_slice(&es).unwrap();
    assert_eq!(m.service, "db");
    let targets: Vec<_> = m.endpoints.iter().map(|e| e.target.is_some()).collect();
    assert_eq!(targets, [true, false, false]);
}

fn named(uid: &str) -> Pod {
    let mut p = pod_json();
    p.metadata.uid = Some(uid.into());
    p
}

/// Drives `apply` by hand: a relist deletes what it no longer lists, at the relist time,
/// and only that.
#[test]
fn relist_deletes_what_vanished() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = mpsc::channel(100);
        let c = KindCounters::default();
        let mut known = Known::default();
        let f = |p: &Pod| map::pod(p).map(Object::Pod);
        for e in [
            watcher::Event::Init,
            watcher::Event::InitApply(named("a")),
            watcher::Event::InitApply(named("b")),
            watcher::Event::InitDone,
            watcher::Event::Apply(named("c")),
            watcher::Event::Delete(named("c")),
            // 410: relist without "a".
            watcher::Event::Init,
            watcher::Event::InitApply(named("b")),
            watcher::Event::InitDone,
        ] {
            apply(Kind::Pod, e, &f, &mut known, &tx, &c)
                .await
                .ok()
                .unwrap();
        }
        drop(tx);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        let summary: Vec<String> = events
            .iter()
            .map(|e| match e {
                Event::Upsert(o) => format!("+{}", map::object_uid(o)),
                Event::Delete { object, .. } => format!("-{}", map::object_uid(object)),
            })
            .collect();
        assert_eq!(summary, ["+a", "+b", "+c", "-c", "+b", "-a"]);
        assert_eq!(c.relists.load(Ordering::Relaxed), 1);
        assert_eq!(c.relist_deletes.load(Ordering::Relaxed), 1);
        assert_eq!(c.deletes.load(Ordering::Relaxed), 1);
        assert_eq!(known.objects.len(), 1);
    });
}

#[test]
fn counters_render_as_prometheus_text() {
    let c = Counters::default();
    inc(&c.kind(Kind::Pod).relists);
    inc(&c.kind(Kind::Pod).upserts);
    inc(&c.kind(Kind::Pod).upserts);
    let text = c.prometheus_text();
    assert!(text.contains("# TYPE reef_k8s_watch_upserts_total counter\n"));
    assert!(text.contains("reef_k8s_watch_upserts_total{kind=\"Pod\"} 2\n"));
    assert!(text.contains("reef_k8s_watch_relists_total{kind=\"Pod\"} 1\n"));
    assert!(text.contains("reef_k8s_watch_errors_total{kind=\"Job\"} 0\n"));
    // Six series, each with its two comment lines and one line per kind.
    assert_eq!(text.lines().count(), 6 * (2 + Kind::ALL.len()));
}

#[test]
fn maps_a_namespace() {
    let n: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(json!({
        "metadata": {"name": "prod", "uid": "uid-ns", "resourceVersion": "42",
                     "labels": {"team": "shop"},
                     "creationTimestamp": "2026-01-01T00:00:00Z"}
    }))
    .unwrap();
    let m = map::namespace(&n).unwrap();
    assert_eq!(
        (m.name.as_str(), m.uid.as_str(), m.resource_version),
        ("prod", "uid-ns", 42)
    );
    assert_eq!(m.labels.get("team").map(String::as_str), Some("shop"));
    assert_eq!(m.created, 1_767_225_600_000_000_000);
    assert_eq!(m.deleted, None);
}
