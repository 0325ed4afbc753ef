//! Model check: random pod lifecycles over a small IP pool, their events shuffled and
//! duplicated, against a naive list.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use reef_k8s_index::{Event, K8sIndex, Object, Pod};

/// One pod's life on one IP: it starts at `start` and, if `end` is set, stops then.
#[derive(Clone, Debug)]
struct Life {
    uid: String,
    ip: IpAddr,
    start: i64,
    end: Option<i64>,
}

fn lives() -> impl Strategy<Value = Vec<Life>> {
    // Per IP, starts strictly increase (two pods never start on one IP at the same
    // instant); ends are anywhere after the start, possibly after the next start (the
    // deletion observed late) or never.
    prop::collection::vec(
        (
            0u8..4,
            prop::collection::vec((1i64..50, prop::option::of(1i64..120)), 1..6),
        ),
        1..6,
    )
    .prop_map(|groups| {
        let mut out = Vec::new();
        let mut seen = [false; 4];
        for (ip_n, pods) in groups {
            // One group per IP, so starts on an IP stay strictly increasing.
            if std::mem::replace(&mut seen[ip_n as usize], true) {
                continue;
            }
            let mut t = 0;
            for (gap, life) in pods {
                t += gap;
                out.push(Life {
                    uid: format!("pod-{ip_n}-{t}"),
                    ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, ip_n)),
                    start: t,
                    end: life.map(|l| t + l),
                });
            }
        }
        out
    })
}

fn pod(l: &Life, rv: u64) -> Pod {
    Pod {
        uid: l.uid.clone(),
        resource_version: rv,
        namespace: "ns".into(),
        name: l.uid.clone(),
        ips: vec![l.ip],
        created: l.start - 1,
        started: Some(l.start),
        ..Pod::default()
    }
}

/// The events a watch could deliver for one life: a pending version without IP, the
/// running one, and the deletion.
fn events(l: &Life) -> Vec<Event> {
    let mut pending = pod(l, 1);
    pending.ips.clear();
    pending.started = None;
    let mut out = vec![
        Event::Upsert(Object::Pod(pending)),
        Event::Upsert(Object::Pod(pod(l, 2))),
    ];
    if let Some(end) = l.end {
        out.push(Event::Delete {
            object: Object::Pod(pod(l, 3)),
            at: end,
        });
    }
    out
}

/// The naive rule: among lives on `ip` started at or before `t`, the latest; if it has
/// not ended at `t`, it.
fn expected(lives: &[Life], ip: IpAddr, t: i64) -> Option<&str> {
    let latest = lives
        .iter()
        .filter(|l| l.ip == ip && l.start <= t)
        .max_by_key(|l| l.start)?;
    latest
        .end
        .is_none_or(|e| t < e)
        .then_some(latest.uid.as_str())
}

proptest! {
    #[test]
    fn shuffled_duplicated_events_resolve_like_the_naive_model(
        lives in lives(),
        order in prop::collection::vec(any::<u32>(), 0..64),
        dups in prop::collection::vec(any::<u16>(), 0..20),
        probes in prop::collection::vec((0u8..5, -5i64..400), 1..60),
    ) {
        let mut all: Vec<Event> = lives.iter().flat_map(events).collect();
        // Duplicates: re-deliver some events (a relist, a replay).
        for d in &dups {
            let e = all[*d as usize % all.len()].clone();
            all.push(e);
        }
        // Shuffle by sorting on random keys.
        let mut keyed: Vec<(u32, Event)> = all
            .into_iter()
            .enumerate()
            .map(|(i, e)| (order.get(i).copied().unwrap_or(i as u32), e))
            .collect();
        keyed.sort_by_key(|(k, _)| *k);

        let mut idx = K8sIndex::new();
        for (_, e) in keyed {
            idx.apply(e);
        }
        let rows: Vec<(IpAddr, i64)> = probes
            .iter()
            .map(|(n, t)| (IpAddr::V4(Ipv4Addr::new(10, 0, 0, *n)), *t))
            .collect();
        let mut out = Vec::new();
        idx.resolve_batch(rows.iter().copied(), &mut out);
        for ((ip, t), got) in rows.iter().zip(&out) {
            let want = expected(&lives, *ip, *t);
            let got_single = idx.lookup(*ip, *t).and_then(|r| r.pod.as_deref());
            prop_assert_eq!(got.and_then(|r| r.pod.as_deref()), want, "ip {} t {}", ip, t);
            prop_assert_eq!(got_single, want);
        }
    }
}

/// Builds every kind of event over `lives`: owners (ReplicaSets with two versions whose
/// owner differs, a StatefulSet), EndpointSlices in two versions, pods.
fn rich_events(lives: &[Life], owners: &[u8], members: &[u8]) -> Vec<Event> {
    use reef_k8s_index::{Controller, Endpoint, EndpointSlice, OwnerRef, TargetRef};
    let mut out = Vec::new();
    for rv in 1..=2u64 {
        for r in 0..2 {
            out.push(Event::Upsert(Object::ReplicaSet(Controller {
                uid: format!("rs{r}"),
                resource_version: rv,
                namespace: "ns".into(),
                name: format!("app{r}-h"),
                // The newer version gains its Deployment: order must not matter.
                owner: (rv == 2).then(|| OwnerRef {
                    kind: "Deployment".into(),
                    name: format!("app{r}"),
                    uid: format!("d{r}"),
                }),
                deleted: None,
            })));
        }
    }
    for (i, l) in lives.iter().enumerate() {
        let owner = match owners.get(i).copied().unwrap_or(0) % 4 {
            0 => None,
            1 | 2 => {
                let r = owners.get(i).copied().unwrap_or(0) % 2;
                Some(OwnerRef {
                    kind: "ReplicaSet".into(),
                    name: format!("app{r}-h"),
                    uid: format!("rs{r}"),
                })
            }
            _ => Some(OwnerRef {
                kind: "StatefulSet".into(),
                name: "db".into(),
                uid: "ss".into(),
            }),
        };
        for mut e in events(l) {
            if let Event::Upsert(Object::Pod(p))
            | Event::Delete {
                object: Object::Pod(p),
                ..
            } = &mut e
            {
                p.owner = owner.clone();
            }
            out.push(e);
        }
    }
    for s in 0..2u8 {
        for rv in 1..=2u64 {
            let endpoints = lives
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    members.get(*i).copied().unwrap_or(0) >> (s * 2 + rv as u8 - 1) & 1 == 1
                })
                .map(|(_, l)| Endpoint {
                    ips: vec![l.ip],
                    target: Some(TargetRef {
                        name: l.uid.clone(),
                        uid: l.uid.clone(),
                    }),
                })
                .collect();
            out.push(Event::Upsert(Object::EndpointSlice(EndpointSlice {
                uid: format!("es{s}"),
                resource_version: rv,
                namespace: "ns".into(),
                name: format!("svc{s}-x"),
                service: format!("svc{s}"),
                endpoints,
                created: 0,
                deleted: None,
            })));
        }
    }
    out
}

fn shuffled(events: &[Event], keys: &[u32]) -> Vec<Event> {
    let mut keyed: Vec<(u32, &Event)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (keys.get(i).copied().unwrap_or(i as u32), e))
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, e)| e.clone()).collect()
}

proptest! {
    #[test]
    fn any_delivery_order_gives_the_same_answers(
        lives in lives(),
        owners in prop::collection::vec(any::<u8>(), 32),
        members in prop::collection::vec(any::<u8>(), 32),
        order_a in prop::collection::vec(any::<u32>(), 0..128),
        order_b in prop::collection::vec(any::<u32>(), 0..128),
        probes in prop::collection::vec((0u8..5, -5i64..400), 1..60),
    ) {
        let all = rich_events(&lives, &owners, &members);
        let mut in_order = K8sIndex::new();
        let mut a = K8sIndex::new();
        let mut b = K8sIndex::new();
        for e in &all {
            in_order.apply(e.clone());
        }
        for e in shuffled(&all, &order_a) {
            a.apply(e);
        }
        // b also sees everything twice, the second time in another order (a relist).
        for e in shuffled(&all, &order_b).into_iter().chain(shuffled(&all, &order_a)) {
            b.apply(e);
        }
        for (n, t) in &probes {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, *n));
            let want = in_order.lookup(ip, *t);
            prop_assert_eq!(a.lookup(ip, *t), want);
            prop_assert_eq!(b.lookup(ip, *t), want);
            prop_assert_eq!(want.and_then(|r| r.pod.as_deref()), expected(&lives, ip, *t));
            if let Some(r) = want {
                // Once every event is in, a ReplicaSet's pods name its Deployment.
                let kind = r.workload_kind.as_deref();
                prop_assert!(kind != Some("ReplicaSet"), "{:?}", r);
            }
        }
    }
}
