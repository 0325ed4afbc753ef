//! Tests of the private pieces; the rules are tested through the public API in `tests/`.

use std::sync::Arc;

use crate::limits::MAX_VERSIONS_PER_IP;
use crate::resolved::Resolved;
use crate::timeline::{Claim, ClaimKey, SetOutcome, Timeline, find};

fn claim(uid: &str, start: i64, end: i64) -> Claim {
    Claim {
        key: ClaimKey::Pod(Arc::from(uid)),
        start,
        end,
        resolved: Arc::new(Resolved {
            pod: Some(Arc::from(uid)),
            ..Resolved::default()
        }),
    }
}

fn pod_at(t: &Timeline, ts: i64) -> Option<String> {
    find(&t.segments, ts).and_then(|s| s.resolved.pod.as_deref().map(str::to_owned))
}

#[test]
fn segment_edges_are_half_open() {
    let mut t = Timeline::default();
    t.set(claim("a", 10, 20));
    assert_eq!(pod_at(&t, 9), None);
    assert_eq!(pod_at(&t, 10).as_deref(), Some("a"));
    assert_eq!(pod_at(&t, 19).as_deref(), Some("a"));
    assert_eq!(pod_at(&t, 20), None);
    assert_eq!(pod_at(&t, i64::MIN), None);
    assert_eq!(pod_at(&t, i64::MAX), None);
}

#[test]
fn equal_starts_are_ordered_by_key_not_arrival() {
    let mut one = Timeline::default();
    one.set(claim("a", 10, 50));
    one.set(claim("b", 10, 50));
    let mut two = Timeline::default();
    two.set(claim("b", 10, 50));
    two.set(claim("a", 10, 50));
    assert_eq!(pod_at(&one, 20).as_deref(), Some("b"));
    assert_eq!(pod_at(&two, 20).as_deref(), Some("b"));
}

#[test]
fn setting_the_same_claim_twice_is_unchanged() {
    let mut t = Timeline::default();
    let c = claim("a", 10, 20);
    assert_eq!(t.set(c.clone()), SetOutcome::Changed);
    assert_eq!(t.set(c), SetOutcome::Unchanged);
}

#[test]
fn eviction_drops_the_claim_that_closed_first() {
    let mut t = Timeline::default();
    for i in 0..MAX_VERSIONS_PER_IP as i64 {
        assert_eq!(
            t.set(claim(&format!("p{i}"), i * 10, i * 10 + 5)),
            SetOutcome::Changed
        );
    }
    let out = t.set(claim("last", 100_000, i64::MAX));
    assert_eq!(
        out,
        SetOutcome::ChangedEvicted(ClaimKey::Pod(Arc::from("p0")))
    );
    assert_eq!(pod_at(&t, 0), None);
    assert_eq!(pod_at(&t, 10).as_deref(), Some("p1"));
    assert_eq!(pod_at(&t, 200_000).as_deref(), Some("last"));
}

#[test]
fn prune_releases_interned_strings_nobody_uses() {
    use crate::{Event, K8sIndex, Object, Pod};
    let mut idx = K8sIndex::new();
    let pod = Pod {
        uid: "u1".into(),
        resource_version: 1,
        namespace: "only-here".into(),
        name: "p".into(),
        ips: vec!["10.0.0.1".parse().unwrap()],
        created: 0,
        ..Pod::default()
    };
    idx.apply(Event::Delete {
        object: Object::Pod(pod),
        at: 10,
    });
    assert!(idx.interned() > 0);
    idx.prune(10 + crate::limits::RETAIN_CLOSED_NS + 1);
    assert_eq!(idx.interned(), 0);
}
