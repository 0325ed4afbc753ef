//! A pod's top controller, walking owner references.
//!
//! - ReplicaSet owned by a Deployment → the Deployment; a bare ReplicaSet → itself.
//! - Job owned by a CronJob → the CronJob; a plain Job → itself.
//! - StatefulSet, DaemonSet, and any other controller kind → that owner as named.
//! - No owner, or a Node (static / mirror pods) → the pod itself, kind "Pod".
//!
//! When the ReplicaSet is not (yet) known, a Deployment is still recognised by the pod's
//! `pod-template-hash` label: the Deployment controller names its ReplicaSets
//! `<deployment>-<hash>`. The answer is recomputed when the ReplicaSet arrives.

use rustc_hash::FxHashMap;

use crate::model::{Controller, Pod};

pub(crate) fn top_controller<'a>(
    pod: &'a Pod,
    controllers: &'a FxHashMap<String, Controller>,
) -> (&'a str, &'a str) {
    let Some(owner) = &pod.owner else {
        return (&pod.name, "Pod");
    };
    match owner.kind.as_str() {
        "Node" => (&pod.name, "Pod"),
        "ReplicaSet" | "Job" => match controllers.get(&owner.uid) {
            Some(c) => match &c.owner {
                Some(top) => (&top.name, &top.kind),
                None => (&owner.name, &owner.kind),
            },
            None => match guess_deployment(pod, &owner.kind, &owner.name) {
                Some(name) => (name, "Deployment"),
                None => (&owner.name, &owner.kind),
            },
        },
        _ => (&owner.name, &owner.kind),
    }
}

fn guess_deployment<'a>(pod: &Pod, kind: &str, rs_name: &'a str) -> Option<&'a str> {
    if kind != "ReplicaSet" {
        return None;
    }
    let hash = pod.labels.get("pod-template-hash")?;
    let name = rs_name.strip_suffix(hash.as_str())?.strip_suffix('-')?;
    (!name.is_empty()).then_some(name)
}
