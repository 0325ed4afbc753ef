//! kube-rs watchers that feed the correlator's IP → workload index
//! ([`reef_k8s_index::K8sIndex`]).
//!
//! One `kube::runtime::watcher` per kind (pods, services, EndpointSlices, nodes,
//! ReplicaSets, Jobs): list, then watch with bookmarks from the list's resourceVersion;
//! relist on `410 Gone`; back off (`default_backoff`) while the API server is away. No
//! polling: a kind is listed once at start and again only when its watch cannot resume.
//!
//! Each k8s-openapi object is mapped onto the index's plain model ([`map`]) and sent as an
//! [`Event`]. A watch cannot see what was deleted while it was away, so after every
//! relist the objects known before but absent from the new list are sent as deletes, with
//! the relist's time.
//!
//! Deployments, StatefulSets, DaemonSets and CronJobs are not watched: the index only
//! needs their names, which the owner references of ReplicaSets, Jobs and pods carry.
//! Namespaces are watched for the change stream (their coming and going, their labels);
//! the index resolves no address to them, since every namespaced object carries its
//! namespace's name.

pub mod map;

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use reef_k8s_index::Event;
use reef_k8s_index::model::{Nanos, Object};
use tokio::sync::mpsc;

// Re-exported so that callers (and the integration tests) build against the same
// versions without naming them twice.
pub use k8s_openapi;
pub use kube;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes configuration: {0}")]
    Config(#[from] kube::config::InferConfigError),
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// A client from the in-cluster service account, else `$KUBECONFIG` / `~/.kube/config`.
/// `Ok(None)` when none of them is there, so that a caller without a cluster (replaying
/// captures on a laptop) can say so once and go on; a configuration that is there but
/// broken is an error.
pub async fn client() -> Result<Option<Client>, Error> {
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let kubeconfig = std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty());
    let home_config = std::env::var_os("HOME")
        .map(|h| std::path::Path::new(&h).join(".kube").join("config"))
        .is_some_and(|p| p.exists());
    if !in_cluster && !kubeconfig && !home_config {
        return Ok(None);
    }
    let config = kube::Config::infer().await?;
    Ok(Some(Client::try_from(config)?))
}

/// The kinds watched, in the order of [`Counters`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    Service,
    EndpointSlice,
    Node,
    ReplicaSet,
    Job,
    Namespace,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Pod,
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Node,
        Kind::ReplicaSet,
        Kind::Job,
        Kind::Namespace,
    ];

    /// The Kubernetes kind name, for metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Node => "Node",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Job => "Job",
            Kind::Namespace => "Namespace",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Per-kind counters, for metrics. Relaxed atomics: they are read by a scraper, never
/// used to order anything.
#[derive(Debug, Default)]
pub struct KindCounters {
    /// Added / modified / listed objects sent as upserts.
    pub upserts: AtomicU64,
    /// Deletes the watch reported.
    pub deletes: AtomicU64,
    /// Deletes inferred after a relist: known before, absent from the new list.
    pub relist_deletes: AtomicU64,
    /// Lists after the first one (a 410 Gone or a watch that could not resume).
    pub relists: AtomicU64,
    /// Watch or list errors; each is followed by a backoff.
    pub errors: AtomicU64,
    /// Objects that could not be mapped (no uid).
    pub skipped: AtomicU64,
}

/// A metric's name, its help text and how to read it from a kind's counters.
type Series = (&'static str, &'static str, fn(&KindStats) -> u64);

/// A copy of one kind's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindStats {
    pub upserts: u64,
    pub deletes: u64,
    pub relist_deletes: u64,
    pub relists: u64,
    pub errors: u64,
    pub skipped: u64,
}

#[derive(Debug, Default)]
pub struct Counters {
    kinds: [KindCounters; 7],
}

impl Counters {
    pub fn kind(&self, kind: Kind) -> &KindCounters {
        &self.kinds[kind.index()]
    }

    /// The counters in Prometheus text format, per kind of object (the correlator
    /// appends them to its `/metrics`).
    pub fn prometheus_text(&self) -> String {
        let series: [Series; 6] = [
            (
                "reef_k8s_watch_upserts_total",
                "Objects added or changed, from lists and watches.",
                |s| s.upserts,
            ),
            (
                "reef_k8s_watch_deletes_total",
                "Objects deleted, seen by the watch.",
                |s| s.deletes,
            ),
            (
                "reef_k8s_watch_relist_deletes_total",
                "Objects missing from a relist: deleted while the watch was away.",
                |s| s.relist_deletes,
            ),
            (
                "reef_k8s_watch_relists_total",
                "Lists after the first (410 Gone, reconnects).",
                |s| s.relists,
            ),
            (
                "reef_k8s_watch_errors_total",
                "API errors, each followed by a backoff.",
                |s| s.errors,
            ),
            (
                "reef_k8s_watch_skipped_total",
                "Objects that could not be mapped (no uid).",
                |s| s.skipped,
            ),
        ];
        let mut out = String::new();
        for (name, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for kind in Kind::ALL {
                let _ = writeln!(
                    out,
                    "{name}{{kind=\"{}\"}} {}",
                    kind.name(),
                    get(&self.get(kind))
                );
            }
        }
        out
    }

    pub fn get(&self, kind: Kind) -> KindStats {
        let c = self.kind(kind);
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        KindStats {
            upserts: r(&c.upserts),
            deletes: r(&c.deletes),
            relist_deletes: r(&c.relist_deletes),
            relists: r(&c.relists),
            errors: r(&c.errors),
            skipped: r(&c.skipped),
        }
    }
}

fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

fn now_nanos() -> Nanos {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Runs one watcher per kind until `tx`'s receiver is dropped (or the future is
/// dropped). API errors never end it: each is counted and backed off, then the watch
/// resumes or relists.
pub async fn run(client: Client, tx: mpsc::Sender<Event>, counters: &Counters) {
    tokio::join!(
        watch_kind(
            Api::<Pod>::all(client.clone()),
            Kind::Pod,
            |p| map::pod(p).map(Object::Pod),
            &tx,
            counters,
        ),
        watch_kind(
            Api::<Service>::all(client.clone()),
            Kind::Service,
            |s| map::service(s).map(Object::Service),
            &tx,
            counters,
        ),
        watch_kind(
            Api::<EndpointSlice>::all(client.clone()),
            Kind::EndpointSlice,
            |s| map::endpoint_slice(s).map(Object::EndpointSlice),
            &tx,
            counters,
        ),
        watch_kind(
            Api::<Node>::all(client.clone()),
            Kind::Node,
            |n| map::node(n).map(Object::Node),
            &tx,
            counters,
        ),
        watch_kind(
            Api::<ReplicaSet>::all(client.clone()),
            Kind::ReplicaSet,
            |r| map::replica_set(r).map(Object::ReplicaSet),
            &tx,
            counters,
        ),
        watch_kind(
            Api::<Job>::all(client.clone()),
            Kind::Job,
            |j| map::job(j).map(Object::Job),
            &tx,
            counters,
        ),
        watch_kind(
            Api::<Namespace>::all(client),
            Kind::Namespace,
            |n| map::namespace(n).map(Object::Namespace),
            &tx,
            counters,
        ),
    );
}

/// The receiver is gone: the caller is shutting down.
struct Closed;

/// What one kind's watcher knows: every live object's last mapped state (a relist's
/// inferred delete needs the object) and, during a relist, the uids listed so far.
#[derive(Default)]
struct Known {
    objects: HashMap<String, Object>,
    relisting: Option<Relist>,
    lists: u64,
}

struct Relist {
    at: Nanos,
    seen: HashSet<String>,
}

async fn watch_kind<K>(
    api: Api<K>,
    kind: Kind,
    to_model: impl Fn(&K) -> Option<Object>,
    tx: &mpsc::Sender<Event>,
    counters: &Counters,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let c = counters.kind(kind);
    // Bookmarks are on by default: they move the resume point forward on quiet kinds, so
    // that a reconnect resumes instead of hitting 410 and relisting everything.
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut known = Known::default();
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(e) => e,
            Err(e) => {
                // The stream backs off before its next attempt (default_backoff).
                inc(&c.errors);
                tracing::debug!(kind = kind.name(), error = %e, "watch error");
                continue;
            }
        };
        if apply(kind, event, &to_model, &mut known, tx, c)
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn apply<K>(
    kind: Kind,
    event: watcher::Event<K>,
    to_model: &impl Fn(&K) -> Option<Object>,
    known: &mut Known,
    tx: &mpsc::Sender<Event>,
    c: &KindCounters,
) -> Result<(), Closed> {
    match event {
        watcher::Event::Init => {
            known.lists += 1;
            if known.lists > 1 {
                inc(&c.relists);
                tracing::info!(kind = kind.name(), "relisting");
            }
            // The list is a snapshot taken about now: whatever it lacks was gone by then.
            known.relisting = Some(Relist {
                at: now_nanos(),
                seen: HashSet::new(),
            });
        }
        watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
            let Some(o) = to_model(&obj) else {
                inc(&c.skipped);
                return Ok(());
            };
            let uid = map::object_uid(&o).to_string();
            if let Some(r) = known.relisting.as_mut() {
                r.seen.insert(uid.clone());
            }
            known.objects.insert(uid, o.clone());
            inc(&c.upserts);
            send(tx, Event::Upsert(o)).await?;
        }
        watcher::Event::Delete(obj) => {
            let Some(o) = to_model(&obj) else {
                inc(&c.skipped);
                return Ok(());
            };
            known.objects.remove(map::object_uid(&o));
            inc(&c.deletes);
            send(
                tx,
                Event::Delete {
                    object: o,
                    at: now_nanos(),
                },
            )
            .await?;
        }
        watcher::Event::InitDone => {
            let Some(r) = known.relisting.take() else {
                return Ok(());
            };
            let gone: Vec<String> = known
                .objects
                .keys()
                .filter(|u| !r.seen.contains(*u))
                .cloned()
                .collect();
            for uid in gone {
                if let Some(object) = known.objects.remove(&uid) {
                    inc(&c.relist_deletes);
                    send(tx, Event::Delete { object, at: r.at }).await?;
                }
            }
        }
    }
    Ok(())
}

async fn send(tx: &mpsc::Sender<Event>, e: Event) -> Result<(), Closed> {
    // Awaiting a full channel is the backpressure: the watch stream is not read meanwhile,
    // and the API server holds the events (or answers 410 and we relist).
    tx.send(e).await.map_err(|_| Closed)
}

#[cfg(test)]
mod tests;
