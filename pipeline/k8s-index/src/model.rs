//! What the watchers feed the index: plain structs, one per Kubernetes kind, holding only
//! the fields the correlator needs. A later step maps kube-rs / k8s-openapi objects onto
//! them; keeping kube out of here keeps this crate pure and testable from literals.
//!
//! All times are Unix nanoseconds. `resource_version` is the object's
//! `metadata.resourceVersion` parsed as an integer (it is an etcd revision in every real
//! API server; the mapping step should pass 0 when it does not parse, which makes every
//! version of that object compare equal and the first one seen win).

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Unix time in nanoseconds.
pub type Nanos = i64;

/// `metadata.ownerReferences[controller=true]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pod {
    pub uid: String,
    pub resource_version: u64,
    pub namespace: String,
    pub name: String,
    /// `spec.nodeName`, once scheduled.
    pub node: Option<String>,
    /// `status.podIPs` (both families on dual-stack clusters).
    pub ips: Vec<IpAddr>,
    pub host_network: bool,
    pub labels: BTreeMap<String, String>,
    /// The controlling owner, if any.
    pub owner: Option<OwnerRef>,
    /// `metadata.creationTimestamp`.
    pub created: Nanos,
    /// `status.startTime`: the kubelet accepted the pod, before its sandbox got the IP.
    pub started: Option<Nanos>,
    /// When the pod reached a terminal phase (Succeeded / Failed): its sandbox, and so its
    /// IP, is released then even though the object lives on.
    pub finished: Option<Nanos>,
    /// `metadata.deletionTimestamp`, or when the watch saw the pod gone; whichever the
    /// caller has. The index keeps the earliest it is told. For a graceful deletion the
    /// API server sets the deletion timestamp to the request time plus the grace period,
    /// the latest the pod can still be running, so it is a safe end; a pod that stops
    /// sooner is cut anyway when a successor starts on its IP (see the crate docs).
    pub deleted: Option<Nanos>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Service {
    pub uid: String,
    pub resource_version: u64,
    pub namespace: String,
    pub name: String,
    /// `spec.clusterIPs`, without the `None` of headless services.
    pub cluster_ips: Vec<IpAddr>,
    pub created: Nanos,
    pub deleted: Option<Nanos>,
}

/// The pod an endpoint points at (`targetRef` of kind Pod).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetRef {
    pub name: String,
    pub uid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub ips: Vec<IpAddr>,
    pub target: Option<TargetRef>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSlice {
    pub uid: String,
    pub resource_version: u64,
    pub namespace: String,
    pub name: String,
    /// The `kubernetes.io/service-name` label.
    pub service: String,
    pub endpoints: Vec<Endpoint>,
    pub created: Nanos,
    pub deleted: Option<Nanos>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    pub uid: String,
    pub resource_version: u64,
    pub name: String,
    /// `status.addresses` of type InternalIP / ExternalIP.
    pub ips: Vec<IpAddr>,
    pub created: Nanos,
    pub deleted: Option<Nanos>,
}

/// A namespace. It names no address, so the index only takes note of it; consumers
/// of the correlator's change stream learn of namespaces coming and going (and their
/// labels) from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespace {
    pub uid: String,
    pub resource_version: u64,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub created: Nanos,
    pub deleted: Option<Nanos>,
}

/// A ReplicaSet or a Job: the intermediate controllers between a pod and its top-level
/// workload (Deployment, CronJob). Deployments, StatefulSets, DaemonSets and CronJobs are
/// only ever needed by name, which owner references already carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Controller {
    pub uid: String,
    pub resource_version: u64,
    pub namespace: String,
    pub name: String,
    pub owner: Option<OwnerRef>,
    pub deleted: Option<Nanos>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    Pod(Pod),
    Service(Service),
    EndpointSlice(EndpointSlice),
    Node(Node),
    ReplicaSet(Controller),
    Job(Controller),
    Namespace(Namespace),
}

/// One watch event. Events may arrive in any order, late, or again after a relist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Added or Modified (or an item of a relist).
    Upsert(Object),
    /// Deleted, with the object's last state. `at` is when the caller saw it gone; it is
    /// used as the deletion time when the object carries none.
    Delete { object: Object, at: Nanos },
}
