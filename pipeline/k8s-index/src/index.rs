//! The index: object stores fed by events, and per-IP timelines derived from them.
//!
//! Events are folded so that the final state does not depend on their order:
//! - the version with the highest resource version supplies the descriptive fields
//!   (name, labels, owner, node); an equal one is a duplicate and changes nothing;
//! - timestamps are evidence merged from every version, stale ones included: the earliest
//!   `started`, `finished` and `deleted` win (a deletion time is an upper bound on when
//!   the object was alive, so the earliest is the tightest);
//! - IPs are the union over versions (pod and service IPs never change once assigned, and
//!   a delete event may carry an object without status);
//! - an object pruned less than `TOMBSTONE_RETAIN_NS` ago ignores every event.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::limits::{
    MAX_IPS_PER_OBJECT, MAX_PODS_PER_SLICE, MAX_TOMBSTONES, RETAIN_CLOSED_NS, Stats,
    TOMBSTONE_RETAIN_NS,
};
use crate::model::{Controller, EndpointSlice, Event, Nanos, Node, Object, Pod, Service};
use crate::resolved::{Interner, Resolved};
use crate::timeline::{self, Claim, ClaimKey, Segment, SetOutcome, Timeline};
use crate::workload::top_controller;

/// Object kinds, as indexes into the per-kind tombstone maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Pod,
    Service,
    Slice,
    Node,
    Controller,
}

#[derive(Debug)]
struct PodState {
    pod: Pod,
    key: Arc<str>,
    resolved: Arc<Resolved>,
}

#[derive(Debug)]
struct ServiceState {
    svc: Service,
    key: Arc<str>,
    resolved: Arc<Resolved>,
}

#[derive(Debug)]
struct NodeState {
    node: Node,
    key: Arc<str>,
    resolved: Arc<Resolved>,
}

#[derive(Debug)]
struct SliceState {
    resource_version: u64,
    service: Arc<str>,
    deleted: Option<Nanos>,
    /// Pod uids listed by any version seen. Kept after they leave the slice so that old
    /// traffic of a pod that was scaled away still names its service.
    members: BTreeSet<String>,
}

/// Time-versioned IP → Kubernetes context index. See the crate docs for the rules.
#[derive(Debug, Default)]
pub struct K8sIndex {
    pods: FxHashMap<String, PodState>,
    services: FxHashMap<String, ServiceState>,
    nodes: FxHashMap<String, NodeState>,
    slices: FxHashMap<String, SliceState>,
    /// ReplicaSets and Jobs by uid.
    controllers: FxHashMap<String, Controller>,
    /// Owner uid → uids of the pods it owns, to re-resolve them when the owner arrives.
    children: FxHashMap<String, FxHashSet<String>>,
    /// Pod uid → service name → how many stored slices list the pod.
    pod_services: FxHashMap<String, BTreeMap<Arc<str>, u32>>,
    ips: FxHashMap<IpAddr, Timeline>,
    /// Per `Kind`: uid → when it was pruned.
    tombstones: [FxHashMap<String, Nanos>; 5],
    strings: Interner,
    no_labels: Arc<BTreeMap<String, String>>,
    stats: Stats,
}

/// How an incoming version compares with the stored one.
fn version_cmp(stats: &mut Stats, stored: u64, incoming: u64) -> bool {
    match incoming.cmp(&stored) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => {
            stats.duplicates += 1;
            false
        }
        std::cmp::Ordering::Less => {
            stats.stale += 1;
            false
        }
    }
}

fn earliest(a: Option<Nanos>, b: Option<Nanos>) -> Option<Nanos> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Adds `more` to `ips` (canonical forms, no duplicates, at most `MAX_IPS_PER_OBJECT`).
fn union_ips(stats: &mut Stats, ips: &mut Vec<IpAddr>, more: &[IpAddr]) {
    for ip in more.iter().map(IpAddr::to_canonical) {
        if ips.contains(&ip) {
            continue;
        }
        if ips.len() >= MAX_IPS_PER_OBJECT {
            stats.ips_ignored += 1;
            continue;
        }
        ips.push(ip);
    }
}

fn canonical_ips(stats: &mut Stats, ips: &[IpAddr]) -> Vec<IpAddr> {
    let mut out = Vec::with_capacity(ips.len().min(MAX_IPS_PER_OBJECT));
    union_ips(stats, &mut out, ips);
    out
}

fn pod_window(pod: &Pod) -> (Nanos, Nanos) {
    let start = pod.started.unwrap_or(pod.created);
    let end = earliest(pod.deleted, pod.finished).unwrap_or(Nanos::MAX);
    (start, end)
}

impl K8sIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// IPs with at least one claim.
    pub fn tracked_ips(&self) -> usize {
        self.ips.len()
    }

    /// Pods, services, nodes, slices and controllers held.
    pub fn tracked_objects(&self) -> usize {
        self.pods.len()
            + self.services.len()
            + self.nodes.len()
            + self.slices.len()
            + self.controllers.len()
    }

    pub fn apply(&mut self, event: Event) {
        self.stats.events += 1;
        let (object, gone_at) = match event {
            Event::Upsert(object) => (object, None),
            Event::Delete { object, at } => (object, Some(at)),
        };
        match object {
            Object::Pod(p) => self.apply_pod(p, gone_at),
            Object::Service(s) => self.apply_service(s, gone_at),
            Object::EndpointSlice(s) => self.apply_slice(s, gone_at),
            Object::Node(n) => self.apply_node(n, gone_at),
            Object::ReplicaSet(c) | Object::Job(c) => self.apply_controller(c, gone_at),
            // No address belongs to a namespace: every object names its own.
            Object::Namespace(_) => {}
        }
    }

    fn tombstoned(&mut self, kind: Kind, uid: &str) -> bool {
        let dead = self.tombstones[kind as usize].contains_key(uid);
        if dead {
            self.stats.after_prune += 1;
        }
        dead
    }

    fn apply_pod(&mut self, mut pod: Pod, gone_at: Option<Nanos>) {
        if self.tombstoned(Kind::Pod, &pod.uid) {
            return;
        }
        pod.deleted = earliest(pod.deleted, gone_at);
        let uid = pod.uid.clone();
        match self.pods.get_mut(&uid) {
            Some(st) => {
                let old = &mut st.pod;
                let started = earliest(old.started, pod.started);
                let finished = earliest(old.finished, pod.finished);
                let deleted = earliest(old.deleted, pod.deleted);
                let mut ips = std::mem::take(&mut old.ips);
                union_ips(&mut self.stats, &mut ips, &pod.ips);
                if version_cmp(&mut self.stats, old.resource_version, pod.resource_version) {
                    if let Some(o) = &pod.owner {
                        self.children
                            .entry(o.uid.clone())
                            .or_default()
                            .insert(uid.clone());
                    }
                    *old = pod;
                }
                old.started = started;
                old.finished = finished;
                old.deleted = deleted;
                old.ips = ips;
            }
            None => {
                pod.ips = canonical_ips(&mut self.stats, &pod.ips);
                if let Some(o) = &pod.owner {
                    self.children
                        .entry(o.uid.clone())
                        .or_default()
                        .insert(uid.clone());
                }
                let key = self.strings.get(&uid);
                self.pods.insert(
                    uid.clone(),
                    PodState {
                        pod,
                        key,
                        resolved: Arc::default(),
                    },
                );
            }
        }
        self.refresh_pod(&uid);
    }

    /// Recomputes what a pod resolves to and re-states its claims.
    fn refresh_pod(&mut self, uid: &str) {
        let Some(st) = self.pods.get(uid) else {
            return;
        };
        let pod = &st.pod;
        let (workload, workload_kind) = top_controller(pod, &self.controllers);
        // Several services may select one pod; the smallest name is the one answer that
        // does not depend on the order slices arrived in.
        let service = self
            .pod_services
            .get(uid)
            .and_then(|m| m.keys().next().cloned());
        let labels = if pod.labels.is_empty() {
            self.no_labels.clone()
        } else if *st.resolved.labels == pod.labels {
            st.resolved.labels.clone()
        } else {
            Arc::new(pod.labels.clone())
        };
        let fresh = Resolved {
            pod: Some(self.strings.get(&pod.name)),
            namespace: Some(self.strings.get(&pod.namespace)),
            workload: Some(self.strings.get(workload)),
            workload_kind: Some(self.strings.get(workload_kind)),
            service,
            node: pod.node.as_deref().map(|n| self.strings.get(n)),
            labels,
        };
        let (start, end) = pod_window(pod);
        let host_network = pod.host_network;
        let ips = pod.ips.clone();
        let key = ClaimKey::Pod(st.key.clone());
        let resolved = if *st.resolved == fresh {
            st.resolved.clone()
        } else {
            let r = Arc::new(fresh);
            if let Some(st) = self.pods.get_mut(uid) {
                st.resolved = r.clone();
            }
            r
        };
        // A hostNetwork pod's IP is its node's: it names the node (through the Node
        // object's claim), never one of the many pods sharing it.
        if host_network {
            return;
        }
        self.claim(
            &ips,
            Claim {
                key,
                start,
                end,
                resolved,
            },
        );
    }

    /// Puts `claim` on each of `ips`.
    fn claim(&mut self, ips: &[IpAddr], claim: Claim) {
        for ip in ips {
            let outcome = self.ips.entry(*ip).or_default().set(claim.clone());
            if let SetOutcome::ChangedEvicted(_) = outcome {
                self.stats.versions_evicted += 1;
            }
        }
    }

    fn unclaim(&mut self, ips: &[IpAddr], key: &ClaimKey) {
        for ip in ips {
            if let Some(t) = self.ips.get_mut(ip) {
                t.remove(key);
                if t.is_empty() {
                    self.ips.remove(ip);
                }
            }
        }
    }

    fn apply_service(&mut self, mut svc: Service, gone_at: Option<Nanos>) {
        if self.tombstoned(Kind::Service, &svc.uid) {
            return;
        }
        svc.deleted = earliest(svc.deleted, gone_at);
        let uid = svc.uid.clone();
        match self.services.get_mut(&uid) {
            Some(st) => {
                let deleted = earliest(st.svc.deleted, svc.deleted);
                let mut ips = std::mem::take(&mut st.svc.cluster_ips);
                union_ips(&mut self.stats, &mut ips, &svc.cluster_ips);
                if version_cmp(
                    &mut self.stats,
                    st.svc.resource_version,
                    svc.resource_version,
                ) {
                    st.svc = svc;
                }
                st.svc.deleted = deleted;
                st.svc.cluster_ips = ips;
            }
            None => {
                svc.cluster_ips = canonical_ips(&mut self.stats, &svc.cluster_ips);
                let resolved = Arc::new(Resolved {
                    namespace: Some(self.strings.get(&svc.namespace)),
                    service: Some(self.strings.get(&svc.name)),
                    labels: self.no_labels.clone(),
                    ..Resolved::default()
                });
                let key = self.strings.get(&uid);
                self.services
                    .insert(uid.clone(), ServiceState { svc, key, resolved });
            }
        }
        let Some(st) = self.services.get(&uid) else {
            return;
        };
        let (start, end) = (st.svc.created, st.svc.deleted.unwrap_or(Nanos::MAX));
        let (key, resolved, ips) = (
            ClaimKey::Service(st.key.clone()),
            st.resolved.clone(),
            st.svc.cluster_ips.clone(),
        );
        self.claim(
            &ips,
            Claim {
                key,
                start,
                end,
                resolved,
            },
        );
    }

    fn apply_node(&mut self, mut node: Node, gone_at: Option<Nanos>) {
        if self.tombstoned(Kind::Node, &node.uid) {
            return;
        }
        node.deleted = earliest(node.deleted, gone_at);
        let uid = node.uid.clone();
        match self.nodes.get_mut(&uid) {
            Some(st) => {
                let deleted = earliest(st.node.deleted, node.deleted);
                let mut ips = std::mem::take(&mut st.node.ips);
                union_ips(&mut self.stats, &mut ips, &node.ips);
                if version_cmp(
                    &mut self.stats,
                    st.node.resource_version,
                    node.resource_version,
                ) {
                    st.node = node;
                }
                st.node.deleted = deleted;
                st.node.ips = ips;
            }
            None => {
                node.ips = canonical_ips(&mut self.stats, &node.ips);
                let resolved = Arc::new(Resolved {
                    node: Some(self.strings.get(&node.name)),
                    labels: self.no_labels.clone(),
                    ..Resolved::default()
                });
                let key = self.strings.get(&uid);
                self.nodes.insert(
                    uid.clone(),
                    NodeState {
                        node,
                        key,
                        resolved,
                    },
                );
            }
        }
        let Some(st) = self.nodes.get(&uid) else {
            return;
        };
        let (start, end) = (st.node.created, st.node.deleted.unwrap_or(Nanos::MAX));
        let (key, resolved, ips) = (
            ClaimKey::Node(st.key.clone()),
            st.resolved.clone(),
            st.node.ips.clone(),
        );
        self.claim(
            &ips,
            Claim {
                key,
                start,
                end,
                resolved,
            },
        );
    }

    fn apply_controller(&mut self, mut c: Controller, gone_at: Option<Nanos>) {
        if self.tombstoned(Kind::Controller, &c.uid) {
            return;
        }
        c.deleted = earliest(c.deleted, gone_at);
        let uid = c.uid.clone();
        let owner_changed = match self.controllers.get_mut(&uid) {
            Some(old) => {
                let deleted = earliest(old.deleted, c.deleted);
                let newer = version_cmp(&mut self.stats, old.resource_version, c.resource_version);
                let changed = newer && old.owner != c.owner;
                if newer {
                    *old = c;
                }
                old.deleted = deleted;
                changed
            }
            None => {
                self.controllers.insert(uid.clone(), c);
                true
            }
        };
        if owner_changed {
            for pod in self.children.get(&uid).cloned().unwrap_or_default() {
                self.refresh_pod(&pod);
            }
        }
    }

    fn apply_slice(&mut self, slice: EndpointSlice, gone_at: Option<Nanos>) {
        if self.tombstoned(Kind::Slice, &slice.uid) {
            return;
        }
        let deleted = earliest(slice.deleted, gone_at);
        let service = self.strings.get(&slice.service);
        let st = match self.slices.get_mut(&slice.uid) {
            Some(st) => {
                st.deleted = earliest(st.deleted, deleted);
                if version_cmp(&mut self.stats, st.resource_version, slice.resource_version) {
                    st.resource_version = slice.resource_version;
                }
                st
            }
            None => self.slices.entry(slice.uid.clone()).or_insert(SliceState {
                resource_version: slice.resource_version,
                service,
                deleted,
                members: BTreeSet::new(),
            }),
        };
        // Membership is the union over every version, stale ones included: a slice has no
        // per-endpoint timestamps, so "listed at some point" is all it can say, and the
        // union does not depend on delivery order.
        let mut added = Vec::new();
        for uid in slice
            .endpoints
            .iter()
            .filter_map(|e| e.target.as_ref().map(|t| &t.uid))
        {
            if st.members.contains(uid) {
                continue;
            }
            if st.members.len() >= MAX_PODS_PER_SLICE {
                self.stats.slice_members_ignored += 1;
                continue;
            }
            st.members.insert(uid.clone());
            added.push(uid.clone());
        }
        let service = st.service.clone();
        for uid in added {
            *self
                .pod_services
                .entry(uid.clone())
                .or_default()
                .entry(service.clone())
                .or_default() += 1;
            self.refresh_pod(&uid);
        }
    }

    /// Drops what closed more than `RETAIN_CLOSED_NS` before `now`, and tombstones older
    /// than `TOMBSTONE_RETAIN_NS`. Open intervals are never pruned: they end with their
    /// object. Call it periodically (every minute is plenty) with the correlator's clock,
    /// or with the newest entry time when replaying.
    pub fn prune(&mut self, now: Nanos) {
        let horizon = now.saturating_sub(RETAIN_CLOSED_NS);
        let old = |end: Option<Nanos>| end.is_some_and(|e| e < horizon);
        let mut dead: Vec<(Kind, String)> = Vec::new();

        let pods: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, st)| old(earliest(st.pod.deleted, st.pod.finished)))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in pods {
            if let Some(st) = self.pods.remove(&uid) {
                self.unclaim(&st.pod.ips, &ClaimKey::Pod(st.key));
                if let Some(o) = &st.pod.owner
                    && let Some(kids) = self.children.get_mut(&o.uid)
                {
                    kids.remove(&uid);
                    if kids.is_empty() {
                        self.children.remove(&o.uid);
                    }
                }
                self.pod_services.remove(&uid);
                dead.push((Kind::Pod, uid));
            }
        }

        let services: Vec<String> = self
            .services
            .iter()
            .filter(|(_, st)| old(st.svc.deleted))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in services {
            if let Some(st) = self.services.remove(&uid) {
                self.unclaim(&st.svc.cluster_ips, &ClaimKey::Service(st.key));
                dead.push((Kind::Service, uid));
            }
        }

        let nodes: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, st)| old(st.node.deleted))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in nodes {
            if let Some(st) = self.nodes.remove(&uid) {
                self.unclaim(&st.node.ips, &ClaimKey::Node(st.key));
                dead.push((Kind::Node, uid));
            }
        }

        // Pods keep the service they resolved to; a pruned slice only stops adding it to
        // pods resolved from now on.
        let slices: Vec<String> = self
            .slices
            .iter()
            .filter(|(_, st)| old(st.deleted))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in slices {
            if let Some(st) = self.slices.remove(&uid) {
                for pod in &st.members {
                    if let Some(m) = self.pod_services.get_mut(pod) {
                        if let Some(n) = m.get_mut(&st.service) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                m.remove(&st.service);
                            }
                        }
                        if m.is_empty() {
                            self.pod_services.remove(pod);
                        }
                    }
                }
                dead.push((Kind::Slice, uid));
            }
        }

        let controllers: Vec<String> = self
            .controllers
            .iter()
            .filter(|(_, c)| old(c.deleted))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in controllers {
            self.controllers.remove(&uid);
            dead.push((Kind::Controller, uid));
        }

        let tomb_horizon = now.saturating_sub(TOMBSTONE_RETAIN_NS);
        for t in &mut self.tombstones {
            t.retain(|_, at| *at >= tomb_horizon);
        }
        self.stats.pruned += dead.len() as u64;
        let mut kept: usize = self.tombstones.iter().map(FxHashMap::len).sum();
        for (kind, uid) in dead {
            if kept >= MAX_TOMBSTONES {
                self.stats.tombstones_dropped += 1;
                continue;
            }
            kept += 1;
            self.tombstones[kind as usize].insert(uid, now);
        }
        self.strings.shrink();
    }

    /// What `ip` meant at `ts` (Unix ns), if anything known.
    #[inline]
    pub fn lookup(&self, ip: IpAddr, ts: Nanos) -> Option<&Resolved> {
        let t = self.ips.get(&ip.to_canonical())?;
        timeline::find(&t.segments, ts).map(|s| &*s.resolved)
    }

    /// Resolves a batch (one Arrow batch's `src_ip` or `dst_ip` column with its
    /// `timestamp` column) into `out`, which is cleared first and can be reused across
    /// batches, so a batch allocates nothing once `out` has grown. Consecutive rows for
    /// the same IP (common: one connection's entries are adjacent) skip the hash lookup.
    pub fn resolve_batch<'a, I>(&'a self, rows: I, out: &mut Vec<Option<&'a Resolved>>)
    where
        I: IntoIterator<Item = (IpAddr, Nanos)>,
    {
        out.clear();
        let rows = rows.into_iter();
        out.reserve(rows.size_hint().0);
        let mut last: Option<(IpAddr, &'a [Segment])> = None;
        for (ip, ts) in rows {
            let ip = ip.to_canonical();
            let segments = match last {
                Some((l, s)) if l == ip => s,
                _ => {
                    let s = self.ips.get(&ip).map_or(&[][..], |t| &t.segments[..]);
                    last = Some((ip, s));
                    s
                }
            };
            out.push(timeline::find(segments, ts).map(|s| &*s.resolved));
        }
    }

    #[cfg(test)]
    pub(crate) fn interned(&self) -> usize {
        self.strings.len()
    }
}
