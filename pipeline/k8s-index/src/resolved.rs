//! The answer to a lookup, and the interner that makes its strings cheap.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashSet;

/// What an IP meant at a given time. Strings are shared (`Arc<str>`) across every pod of
/// a namespace or workload, so a million pods do not hold a million copies of "default".
///
/// - a pod IP: `pod`, `namespace`, `workload`, `workload_kind`, `node`, `labels`, and
///   `service` when an EndpointSlice listed the pod;
/// - a service cluster IP: `service` and `namespace` only;
/// - a node IP (and so every hostNetwork pod on it): `node` only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub pod: Option<Arc<str>>,
    pub namespace: Option<Arc<str>>,
    /// The top controller (Deployment, StatefulSet, DaemonSet, CronJob, Job, ...), else the
    /// pod itself.
    pub workload: Option<Arc<str>>,
    pub workload_kind: Option<Arc<str>>,
    pub service: Option<Arc<str>>,
    pub node: Option<Arc<str>>,
    pub labels: Arc<BTreeMap<String, String>>,
}

/// Deduplicates strings. Entries nobody else holds are dropped by `shrink`, called from
/// `prune`, so the interner is bounded by what the live index references.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    set: FxHashSet<Arc<str>>,
}

impl Interner {
    pub(crate) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(found) = self.set.get(s) {
            return found.clone();
        }
        let new: Arc<str> = Arc::from(s);
        self.set.insert(new.clone());
        new
    }

    pub(crate) fn shrink(&mut self) {
        self.set.retain(|s| Arc::strong_count(s) > 1);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}
