//! The pure core of the correlator: a time-versioned index from IP address to Kubernetes
//! context (pod, namespace, workload, service, node, labels).
//!
//! Watchers feed it [`Event`]s built from plain structs ([`model`]); entries are resolved
//! with [`K8sIndex::lookup`] or, per Arrow batch, [`K8sIndex::resolve_batch`]. No I/O, no
//! async, no kube: mapping kube-rs objects onto the model is the service's job.
//!
//! Rules (each has a test in `tests/rules.rs`):
//! - **Validity comes from the objects' own timestamps**, never from when an event
//!   arrived: a pod holds its IPs from `started` (else `created`) until the earliest of
//!   `deleted` and `finished`; a service its cluster IPs and a node its addresses from
//!   `created` to `deleted`. So a replayed capture resolves as it did live.
//! - **Recycled IPs**: on one IP, the claim with the latest start at or before `t` wins if
//!   it has not ended; an earlier claim still open is cut at the later one's start (its
//!   end was not observed yet). Equal starts are ordered by claim key (node, service,
//!   pod, then uid).
//! - **Any order, any number of times**: the highest resource version supplies the
//!   descriptive fields, timestamps are merged (earliest wins) from every version, IPs are
//!   the union over versions; an equal version is a no-op, a lower one only adds timestamp
//!   evidence. Delete events set `deleted` to the earliest of the object's
//!   `deletionTimestamp` and the time the caller saw it gone.
//! - **Workload** = top controller: Deployment (via its ReplicaSet), StatefulSet,
//!   DaemonSet, CronJob (via its Job), Job, any other controlling owner; else the pod,
//!   kind "Pod". Until a ReplicaSet arrives, its pods find their Deployment through the
//!   `pod-template-hash` label, and are re-resolved when it does.
//! - **Service**: a cluster IP resolves to its service (no pod); a pod resolves with the
//!   service whose EndpointSlices listed it (by `targetRef.uid`) in any version, the
//!   smallest name when several did. Endpoints without a pod target are not used.
//! - **hostNetwork** pods claim nothing: their IP is the node's and resolves to the node.
//! - **Bounded**: see [`limits`]; `prune(now)` forgets what closed long ago, counters in
//!   [`Stats`] say what limits dropped.

mod index;
pub mod limits;
pub mod model;
mod resolved;
mod timeline;
mod workload;

pub use index::K8sIndex;
pub use limits::Stats;
pub use model::{
    Controller, Endpoint, EndpointSlice, Event, Namespace, Nanos, Node, Object, OwnerRef, Pod,
    Service, TargetRef,
};
pub use resolved::Resolved;

#[cfg(test)]
mod unit_tests;
