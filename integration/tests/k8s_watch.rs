//! The kube-rs watchers (`reef-k8s-watch`) against the stand-in API server
//! (`reef_integration::kube_api`, since no real one can run here), feeding a real
//! `K8sIndex`: recycled pod IPs, workload chains, services, 410 Gone relists, the API
//! server going away, and no polling.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reef_integration::kube_api::{KubeApi, rfc3339};
use reef_k8s_index::{K8sIndex, Resolved};
use reef_k8s_watch::{Counters, Kind};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

/// 2026-01-01T00:00:00Z: object times are seconds after it, far in the past of "now".
const T0: u64 = 1_767_225_600;

fn ts(s: u64) -> String {
    rfc3339(T0 + s)
}

/// Half a second into second `s`, away from every boundary.
fn at(s: u64) -> i64 {
    ((T0 + s) * 1_000_000_000 + 500_000_000) as i64
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Rig {
    rt: Runtime,
    api: KubeApi,
    index: Arc<Mutex<K8sIndex>>,
    counters: Arc<Counters>,
}

fn rig() -> Rig {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let api = rt.block_on(KubeApi::start_with(Duration::from_millis(300)));
    let index = Arc::new(Mutex::new(K8sIndex::new()));
    let counters = Arc::new(Counters::default());
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    {
        let _g = rt.enter();
        let client = api.client();
        let c = counters.clone();
        rt.spawn(async move { reef_k8s_watch::run(client, tx, &c).await });
    }
    let idx = index.clone();
    rt.spawn(async move {
        while let Some(e) = rx.recv().await {
            idx.lock().unwrap().apply(e);
        }
    });
    Rig {
        rt,
        api,
        index,
        counters,
    }
}

impl Rig {
    fn wait(&self, what: &str, cond: impl Fn(&K8sIndex) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond(&self.index.lock().unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lookup(&self, addr: &str, t: i64) -> Option<Resolved> {
        self.index.lock().unwrap().lookup(ip(addr), t).cloned()
    }

    fn pod_at(&self, addr: &str, t: i64) -> Option<String> {
        self.lookup(addr, t)
            .and_then(|r| r.pod.map(|p| p.to_string()))
    }

    fn lists(&self) -> Vec<u64> {
        WATCHED.iter().map(|k| self.api.lists(k)).collect()
    }

    /// Every watcher has made its first list (they start concurrently).
    fn wait_listed(&self) {
        self.wait("every kind listed", |_| self.lists() == [1; 7]);
    }
}

const WATCHED: [&str; 7] = [
    "Pod",
    "Service",
    "EndpointSlice",
    "Node",
    "ReplicaSet",
    "Job",
    "Namespace",
];

struct PodSpec<'a> {
    name: &'a str,
    ip: &'a str,
    created: u64,
    deleted: Option<u64>,
    owner: Option<(&'a str, &'a str, &'a str)>,
    host_network: bool,
}

impl<'a> PodSpec<'a> {
    fn new(name: &'a str, ip: &'a str, created: u64) -> Self {
        PodSpec {
            name,
            ip,
            created,
            deleted: None,
            owner: None,
            host_network: false,
        }
    }

    fn json(&self) -> Value {
        let mut meta = json!({
            "name": self.name, "namespace": "prod", "uid": format!("uid-{}", self.name),
            "creationTimestamp": ts(self.created),
            "labels": {"app": self.name},
        });
        if let Some(d) = self.deleted {
            meta["deletionTimestamp"] = json!(ts(d));
        }
        if let Some((kind, name, uid)) = self.owner {
            meta["ownerReferences"] = json!([{
                "apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid,
                "controller": true
            }]);
        }
        json!({
            "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": "n1", "hostNetwork": self.host_network,
                     "containers": [{"name": "app"}]},
            "status": {"phase": "Running", "startTime": ts(self.created + 1),
                       "podIP": self.ip, "podIPs": [{"ip": self.ip}]},
        })
    }
}

/// A graceful deletion as the API server does it: the deletion timestamp is set first
/// (MODIFIED), the object goes away later (DELETED).
fn delete_pod(api: &KubeApi, mut p: PodSpec, deleted: u64) {
    p.deleted = Some(deleted);
    api.apply(p.json());
    api.delete("Pod", "prod", p.name).unwrap();
}

#[test]
fn recycled_pod_ip_resolves_per_time() {
    let r = rig();
    let addr = "10.1.0.5";
    // a holds the IP over [10, 20), b over [30, 40), c from 50 on.
    r.api.apply(PodSpec::new("a", addr, 9).json());
    r.wait("pod a", |i| i.lookup(ip(addr), at(15)).is_some());
    delete_pod(&r.api, PodSpec::new("a", addr, 9), 20);
    r.api.apply(PodSpec::new("b", addr, 29).json());
    delete_pod(&r.api, PodSpec::new("b", addr, 29), 40);
    r.api.apply(PodSpec::new("c", addr, 49).json());
    r.wait("pod c", |i| i.lookup(ip(addr), at(55)).is_some());
    r.wait("both deletes", |_| r.counters.get(Kind::Pod).deletes == 2);
    r.wait_listed();

    let mut wrong = Vec::new();
    for s in 0..=70 {
        let want = match s {
            10..20 => Some("a"),
            30..40 => Some("b"),
            50.. => Some("c"),
            _ => None,
        };
        let got = r.pod_at(addr, at(s));
        if got.as_deref() != want {
            wrong.push((s, got, want));
        }
    }
    assert!(
        wrong.is_empty(),
        "wrong owners (second, got, want): {wrong:?}"
    );
    assert_eq!(r.pod_at(addr, now()).as_deref(), Some("c"));
    // One list per kind at start, then watches only.
    assert_eq!(r.lists(), [1; 7]);
}

#[test]
fn workload_service_and_slice() {
    let r = rig();
    // Deployment web → ReplicaSet web-5d8f → pod; the pod first, as watches may deliver.
    let mut p = PodSpec::new("web-5d8f-x1", "10.1.1.1", 5);
    p.owner = Some(("ReplicaSet", "web-5d8f", "uid-rs"));
    r.api.apply(p.json());
    r.api.apply(json!({
        "kind": "ReplicaSet",
        "metadata": {"name": "web-5d8f", "namespace": "prod", "uid": "uid-rs",
            "creationTimestamp": ts(4),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                "name": "web", "uid": "uid-dep", "controller": true}]},
        "spec": {"selector": {}},
    }));
    // CronJob nightly → Job nightly-123 → pod.
    let mut p = PodSpec::new("nightly-123-z", "10.1.1.2", 5);
    p.owner = Some(("Job", "nightly-123", "uid-job"));
    r.api.apply(p.json());
    r.api.apply(json!({
        "kind": "Job",
        "metadata": {"name": "nightly-123", "namespace": "prod", "uid": "uid-job",
            "creationTimestamp": ts(4),
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                "name": "nightly", "uid": "uid-cj", "controller": true}]},
        "spec": {"template": {}},
    }));
    r.api.apply(json!({
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "prod", "uid": "uid-svc",
            "creationTimestamp": ts(3)},
        "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"]},
    }));
    r.api.apply(json!({
        "kind": "EndpointSlice",
        "metadata": {"name": "web-abcde", "namespace": "prod", "uid": "uid-es",
            "creationTimestamp": ts(6),
            "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.1.1"],
            "targetRef": {"kind": "Pod", "name": "web-5d8f-x1", "namespace": "prod",
                          "uid": "uid-web-5d8f-x1"}}],
    }));
    r.api.apply(json!({
        "kind": "Node",
        "metadata": {"name": "n1", "uid": "uid-n1", "creationTimestamp": ts(1)},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.2"},
                                 {"type": "Hostname", "address": "n1"}]},
    }));
    let mut hn = PodSpec::new("node-exporter-q", "192.168.0.2", 5);
    hn.host_network = true;
    r.api.apply(hn.json());
    // Namespaces are watched for the change stream; no address resolves to them.
    r.api.apply(json!({"kind": "Namespace",
        "metadata": {"name": "prod", "creationTimestamp": ts(0)}}));

    let t = at(10);
    r.wait("everything resolved", |i| {
        let web = i.lookup(ip("10.1.1.1"), t);
        web.and_then(|w| w.workload.as_deref()) == Some("web")
            && web.and_then(|w| w.service.as_deref()) == Some("web")
            && i.lookup(ip("10.1.1.2"), t)
                .and_then(|w| w.workload.as_deref())
                == Some("nightly")
            && i.lookup(ip("10.96.0.10"), t).is_some()
            && i.lookup(ip("192.168.0.2"), t).is_some()
    });
    let web = r.lookup("10.1.1.1", t).unwrap();
    assert_eq!(web.workload_kind.as_deref(), Some("Deployment"));
    assert_eq!(web.pod.as_deref(), Some("web-5d8f-x1"));
    assert_eq!(web.namespace.as_deref(), Some("prod"));
    assert_eq!(web.node.as_deref(), Some("n1"));
    assert_eq!(
        web.labels.get("app").map(String::as_str),
        Some("web-5d8f-x1")
    );
    let job = r.lookup("10.1.1.2", t).unwrap();
    assert_eq!(job.workload_kind.as_deref(), Some("CronJob"));
    let svc = r.lookup("10.96.0.10", t).unwrap();
    assert_eq!(
        (
            svc.service.as_deref(),
            svc.namespace.as_deref(),
            svc.pod.as_deref()
        ),
        (Some("web"), Some("prod"), None)
    );
    let node = r.lookup("192.168.0.2", t).unwrap();
    assert_eq!(
        (node.node.as_deref(), node.pod.as_deref()),
        (Some("n1"), None)
    );
    assert!(
        r.lookup("10.96.0.10", at(1)).is_none(),
        "before the service existed"
    );

    // Several bookmark periods later: still one list per kind, and a watch each.
    r.wait_listed();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(r.lists(), [1; 7]);
    assert_eq!(
        r.counters.get(Kind::Namespace).upserts,
        1,
        "the namespace came through"
    );
    for k in WATCHED {
        assert_eq!(r.api.watches(k), 1, "{k}: one watch, no re-watch loop");
    }
}

#[test]
fn gone_410_relists_and_deletes_missed() {
    let r = rig();
    r.api.apply(PodSpec::new("x", "10.1.2.7", 10).json());
    r.api.apply(PodSpec::new("y", "10.1.2.8", 10).json());
    r.wait("x and y", |i| {
        i.lookup(ip("10.1.2.7"), at(20)).is_some() && i.lookup(ip("10.1.2.8"), at(20)).is_some()
    });
    r.wait_listed();
    // Changes the watch cannot see: x goes without a deletion timestamp (as a force
    // delete), z appears; then the history they were in is compacted away.
    r.rt.block_on(r.api.down());
    let before_relist = now();
    r.api.delete("Pod", "prod", "x").unwrap();
    r.api.apply(PodSpec::new("z", "10.1.2.9", 30).json());
    r.api.compact();
    r.rt.block_on(r.api.up());

    r.wait("x gone, z there", |i| {
        i.lookup(ip("10.1.2.7"), now()).is_none() && i.lookup(ip("10.1.2.9"), at(40)).is_some()
    });
    let pods = r.counters.get(Kind::Pod);
    assert_eq!(pods.relists, 1);
    assert_eq!(pods.relist_deletes, 1);
    assert_eq!(pods.deletes, 0, "the watch never saw the delete");
    // Every kind's resume point predates the compaction: each relisted once.
    r.wait("all kinds relisted", |_| r.lists() == [2; 7]);
    // x is cut at the relist, not before: it was live until the watch lost sight of it.
    assert_eq!(r.pod_at("10.1.2.7", at(20)).as_deref(), Some("x"));
    assert_eq!(r.pod_at("10.1.2.7", before_relist).as_deref(), Some("x"));
    assert_eq!(r.pod_at("10.1.2.8", now()).as_deref(), Some("y"));
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(r.lists(), [2; 7], "no further lists");
}

#[test]
fn api_down_backoff_catches_up() {
    let r = rig();
    r.api.apply(PodSpec::new("p1", "10.1.3.1", 10).json());
    r.wait("p1", |i| i.lookup(ip("10.1.3.1"), at(20)).is_some());
    r.wait_listed();

    r.rt.block_on(async {
        r.api.down().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    // Made while the server is away, kept in its history: the watch resumes past them.
    delete_pod(&r.api, PodSpec::new("p1", "10.1.3.1", 10), 30);
    r.api.apply(PodSpec::new("p2", "10.1.3.2", 35).json());
    r.rt.block_on(async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        r.api.up().await;
    });
    let pods_errors = r.counters.get(Kind::Pod).errors;
    assert!(pods_errors > 0, "the watcher saw the server go away");

    r.wait("caught up", |i| {
        i.lookup(ip("10.1.3.2"), at(40)).is_some() && i.lookup(ip("10.1.3.1"), at(32)).is_none()
    });
    assert_eq!(r.pod_at("10.1.3.1", at(25)).as_deref(), Some("p1"));
    let pods = r.counters.get(Kind::Pod);
    assert_eq!(
        (pods.relists, pods.deletes),
        (0, 1),
        "resumed, not relisted"
    );
    // Backoff, not a hot loop: a handful of attempts over three seconds.
    assert!(pods.errors <= 10, "{} errors in 3 s", pods.errors);
    assert_eq!(r.lists(), [1; 7], "a resumed watch does not list again");
    assert!(r.api.watches("Pod") >= 2);
}
