//! k8s-openapi objects → the index's plain model. Pure functions: what a field means for
//! the index is decided here, the watch loop only moves events.

use std::net::IpAddr;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use reef_k8s_index::model;

/// The label the EndpointSlice controller puts on every slice it manages.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

fn nanos(t: &Time) -> model::Nanos {
    // i64 nanoseconds reach year 2262; a timestamp past that is garbage, not a time.
    i64::try_from(t.0.as_nanosecond()).unwrap_or(i64::MAX)
}

fn opt_nanos(t: Option<&Time>) -> Option<model::Nanos> {
    t.map(nanos)
}

/// Every real API server's resourceVersion is an etcd revision; anything else (an
/// aggregated or fake server) becomes 0, which makes all versions compare equal.
fn resource_version(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn created(meta: &ObjectMeta) -> model::Nanos {
    // An object without a creation timestamp has never been stored by an API server;
    // 0 makes it valid from the beginning of time, which the deletion time still bounds.
    opt_nanos(meta.creation_timestamp.as_ref()).unwrap_or(0)
}

fn ips<'a>(addrs: impl IntoIterator<Item = &'a str>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = addrs
        .into_iter()
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    out.dedup();
    out
}

/// The controlling owner (`controller: true`), which is what decides the workload; other
/// owners (garbage-collection only) are not the workload.
fn owner(meta: &ObjectMeta) -> Option<model::OwnerRef> {
    meta.owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|o: &&OwnerReference| o.controller == Some(true))
        .map(|o| model::OwnerRef {
            kind: o.kind.clone(),
            name: o.name.clone(),
            uid: o.uid.clone(),
        })
}

fn uid(meta: &ObjectMeta) -> Option<String> {
    // Without a uid the index could not tell two objects apart; such an object cannot
    // come from a real API server, so it is skipped rather than guessed at.
    meta.uid.clone().filter(|u| !u.is_empty())
}

pub fn pod(p: &Pod) -> Option<model::Pod> {
    let meta = &p.metadata;
    let spec = p.spec.as_ref();
    let status = p.status.as_ref();
    let mut pod_ips = status
        .and_then(|s| s.pod_ips.as_deref())
        .map(|v| ips(v.iter().map(|i| i.ip.as_str())))
        .unwrap_or_default();
    if pod_ips.is_empty() {
        // Older kubelets (and some fakes) fill only the singular field.
        pod_ips = ips(status.and_then(|s| s.pod_ip.as_deref()));
    }
    Some(model::Pod {
        uid: uid(meta)?,
        resource_version: resource_version(meta),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        node: spec.and_then(|s| s.node_name.clone()),
        ips: pod_ips,
        host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
        labels: meta.labels.clone().unwrap_or_default(),
        owner: owner(meta),
        created: created(meta),
        started: opt_nanos(status.and_then(|s| s.start_time.as_ref())),
        finished: finished(p),
        deleted: opt_nanos(meta.deletion_timestamp.as_ref()),
    })
}

/// When a pod in a terminal phase stopped: the latest container termination. The phase
/// has no timestamp of its own, and the sandbox (so the IP) is released once the last
/// container is gone. Without any termination time the pod is left open; its deletion or
/// a successor on the IP ends it.
fn finished(p: &Pod) -> Option<model::Nanos> {
    let status = p.status.as_ref()?;
    match status.phase.as_deref() {
        Some("Succeeded" | "Failed") => {}
        _ => return None,
    }
    status
        .container_statuses
        .iter()
        .flatten()
        // Init containers end before the app containers, so `max` picks the latter when
        // they reported; the former still bound the end when they did not.
        .chain(status.init_container_statuses.iter().flatten())
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(nanos)
        .max()
}

pub fn service(s: &Service) -> Option<model::Service> {
    let meta = &s.metadata;
    let spec = s.spec.as_ref();
    let mut cluster_ips = spec
        .and_then(|s| s.cluster_ips.as_deref())
        .map(|v| ips(v.iter().map(String::as_str)))
        .unwrap_or_default();
    if cluster_ips.is_empty() {
        // "None" (headless) does not parse and so is dropped here too.
        cluster_ips = ips(spec.and_then(|s| s.cluster_ip.as_deref()));
    }
    Some(model::Service {
        uid: uid(meta)?,
        resource_version: resource_version(meta),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        cluster_ips,
        created: created(meta),
        deleted: opt_nanos(meta.deletion_timestamp.as_ref()),
    })
}

pub fn endpoint_slice(s: &EndpointSlice) -> Option<model::EndpointSlice> {
    let meta = &s.metadata;
    let endpoints = s
        .endpoints
        .iter()
        .map(|e| model::Endpoint {
            ips: ips(e.addresses.iter().map(String::as_str)),
            // Only pod targets name a workload; the index ignores the others anyway.
            target: e.target_ref.as_ref().and_then(|t| {
                if t.kind.as_deref().is_some_and(|k| k != "Pod") {
                    return None;
                }
                Some(model::TargetRef {
                    name: t.name.clone().unwrap_or_default(),
                    uid: t.uid.clone()?,
                })
            }),
        })
        .collect();
    Some(model::EndpointSlice {
        uid: uid(meta)?,
        resource_version: resource_version(meta),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        service: meta
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned()
            .unwrap_or_default(),
        endpoints,
        created: created(meta),
        deleted: opt_nanos(meta.deletion_timestamp.as_ref()),
    })
}

pub fn node(n: &Node) -> Option<model::Node> {
    let meta = &n.metadata;
    let addrs = n
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_deref())
        .unwrap_or_default();
    Some(model::Node {
        uid: uid(meta)?,
        resource_version: resource_version(meta),
        name: meta.name.clone().unwrap_or_default(),
        // Hostnames and DNS names are not addresses traffic comes from.
        ips: ips(addrs
            .iter()
            .filter(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
            .map(|a| a.address.as_str())),
        created: created(meta),
        deleted: opt_nanos(meta.deletion_timestamp.as_ref()),
    })
}

fn controller(meta: &ObjectMeta) -> Option<model::Controller> {
    Some(model::Controller {
        uid: uid(meta)?,
        resource_version: resource_version(meta),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        owner: owner(meta),
        deleted: opt_nanos(meta.deletion_timestamp.as_ref()),
    })
}

pub fn replica_set(r: &ReplicaSet) -> Option<model::Controller> {
    controller(&r.metadata)
}

pub fn job(j: &Job) -> Option<model::Controller> {
    controller(&j.metadata)
}

pub fn namespace(n: &Namespace) -> Option<model::Namespace> {
    let meta = &n.metadata;
    Some(model::Namespace {
        uid: uid(meta)?,
        resource_version: resource_version(meta),
        name: meta.name.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        created: created(meta),
        deleted: opt_nanos(meta.deletion_timestamp.as_ref()),
    })
}

/// The uid of a mapped object, the key of the per-kind known set.
pub fn object_uid(o: &model::Object) -> &str {
    match o {
        model::Object::Pod(p) => &p.uid,
        model::Object::Service(s) => &s.uid,
        model::Object::EndpointSlice(s) => &s.uid,
        model::Object::Node(n) => &n.uid,
        model::Object::ReplicaSet(c) | model::Object::Job(c) => &c.uid,
        model::Object::Namespace(n) => &n.uid,
    }
}
