//! The process index: which process connected and which accepted, per node and TCP
//! 4-tuple, over time. Pure and synchronous; fed with [`OsEvent`]s, asked per entry row.
//!
//! A connection is a *session* on its key (node, client ip/port, server ip/port): a
//! `connect` or `accept` opens it (or joins the session its peer event opened), a
//! `close` ends it. Ports are reused, so one key holds a few sessions in time; the one
//! that opened last at or before an entry's time, and had not closed before it, answers.
//! Times are the events' own (the tracer's clock), never arrival times, so replays join
//! as they did live, and pruning follows the newest event time seen (a watermark), not
//! the wall clock.

use std::net::IpAddr;
use std::sync::Arc;

use reef_k8s_index::Nanos;
use reef_schema::{OS_ACCEPT, OS_CLOSE, OS_CONNECT, OsEvent};
use rustc_hash::FxHashMap;

/// Connections (node + 4-tuple keys) held at most; events for new keys beyond it are
/// dropped and counted (`Stats::dropped_full`) until pruning makes room.
pub const MAX_CONNECTIONS: usize = 1_000_000;
/// Sessions (port reuses) kept per key; the one that opened first is dropped beyond it.
pub const MAX_SESSIONS_PER_KEY: usize = 4;
/// A closed session is kept this long after its close (event time), because its
/// entries reach the correlator later: the worker's linger, NATS, the unresolved wait.
pub const CLOSED_RETAIN_NS: Nanos = 120 * 1_000_000_000;
/// A session whose close was never seen (the event was lost) is forgotten this long
/// after it opened.
pub const OPEN_RETAIN_NS: Nanos = 24 * 3600 * 1_000_000_000;
/// The tracer's clock and the capture's clock differ a little (and a request's first
/// byte can be stamped before the tracer saw `accept` return): an entry this much
/// before a session's open, or after its close, still belongs to it.
pub const CLOCK_SLACK_NS: Nanos = 1_000_000_000;
/// Nodes named at most (their names are interned); more are not indexed.
pub const MAX_NODES: usize = 100_000;

/// One side's process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: Option<u32>,
    pub comm: Option<Arc<str>>,
}

#[derive(Clone, Debug)]
struct Session {
    opened: Nanos,
    closed: Option<Nanos>,
    /// The process that connected (behind `src`).
    client: Option<Proc>,
    /// The process that accepted (behind `dst`).
    server: Option<Proc>,
}

impl Session {
    fn covers(&self, ts: Nanos) -> bool {
        self.opened.saturating_sub(CLOCK_SLACK_NS) <= ts
            && self
                .closed
                .is_none_or(|c| ts <= c.saturating_add(CLOCK_SLACK_NS))
    }
}

/// (node id, client ip, client port, server ip, server port).
type Key = (u32, IpAddr, u16, IpAddr, u16);

/// What the limits and odd input did, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events applied.
    pub events: u64,
    /// Events of an unknown kind, or without ports.
    pub ignored: u64,
    /// Closes of a connection whose open was never seen.
    pub closes_unmatched: u64,
    /// Sessions dropped because a key had `MAX_SESSIONS_PER_KEY`.
    pub sessions_evicted: u64,
    /// Events dropped because `MAX_CONNECTIONS` (or `MAX_NODES`) was reached.
    pub dropped_full: u64,
    /// Sessions pruned after `CLOSED_RETAIN_NS` / `OPEN_RETAIN_NS`.
    pub pruned: u64,
}

/// The process index; see the module docs.
#[derive(Debug, Default)]
pub struct OsIndex {
    nodes: FxHashMap<Arc<str>, u32>,
    conns: FxHashMap<Key, Vec<Session>>,
    /// Newest event time seen.
    watermark: Nanos,
    stats: Stats,
}

impl OsIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Connections (keys) held.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The id of `node` for [`OsIndex::lookup`], if any event named it.
    pub fn node_id(&self, node: &str) -> Option<u32> {
        self.nodes.get(node).copied()
    }

    fn intern_node(&mut self, node: &str) -> Option<u32> {
        if let Some(id) = self.nodes.get(node) {
            return Some(*id);
        }
        if self.nodes.len() >= MAX_NODES {
            return None;
        }
        let id = self.nodes.len() as u32;
        self.nodes.insert(Arc::from(node), id);
        Some(id)
    }

    /// Applies one event seen on `node` (the node token of the subject it came on,
    /// which is also what entries are looked up with).
    pub fn apply(&mut self, node: &str, ev: &OsEvent) {
        let (Some(sport), Some(dport)) = (ev.src_port, ev.dst_port) else {
            self.stats.ignored += 1;
            return;
        };
        let kind = ev.kind.as_str();
        if kind != OS_CONNECT && kind != OS_ACCEPT && kind != OS_CLOSE {
            self.stats.ignored += 1;
            return;
        }
        let Some(node_id) = self.intern_node(node) else {
            self.stats.dropped_full += 1;
            return;
        };
        self.stats.events += 1;
        let t = ev.timestamp;
        self.watermark = self.watermark.max(t);
        let key = (
            node_id,
            ev.src_ip.to_canonical(),
            sport,
            ev.dst_ip.to_canonical(),
            dport,
        );
        if kind == OS_CLOSE {
            // The latest session open at `t` ends.
            let ended = self.conns.get_mut(&key).and_then(|sessions| {
                sessions
                    .iter_mut()
                    .filter(|s| s.closed.is_none() && s.opened.saturating_sub(CLOCK_SLACK_NS) <= t)
                    .max_by_key(|s| s.opened)
                    .map(|s| s.closed = Some(t.max(s.opened)))
            });
            if ended.is_none() {
                self.stats.closes_unmatched += 1;
            }
            return;
        }
        let proc = Proc {
            // The process id users know is the thread group id.
            pid: ev.tgid.or(ev.pid),
            comm: ev.comm.as_deref().map(Arc::from),
        };
        let is_connect = kind == OS_CONNECT;
        if !self.conns.contains_key(&key) && self.conns.len() >= MAX_CONNECTIONS {
            self.stats.dropped_full += 1;
            return;
        }
        let sessions = self.conns.entry(key).or_default();
        // The peer's event of the same connection opened a session near `t` that
        // lacks this side: join it.
        let joined = sessions.iter_mut().find(|s| {
            s.covers(t)
                && if is_connect {
                    s.client.is_none()
                } else {
                    s.server.is_none()
                }
        });
        let session = match joined {
            Some(s) => {
                s.opened = s.opened.min(t);
                s
            }
            None => {
                // A new open cuts any older session still open on the key: a 4-tuple is
                // only reused once the previous connection is gone.
                for s in sessions.iter_mut() {
                    if s.closed.is_none() && s.opened < t {
                        s.closed = Some(t);
                    }
                }
                if sessions.len() >= MAX_SESSIONS_PER_KEY
                    && let Some(oldest) = sessions
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| s.opened)
                        .map(|(i, _)| i)
                {
                    sessions.swap_remove(oldest);
                    self.stats.sessions_evicted += 1;
                }
                sessions.push(Session {
                    opened: t,
                    closed: None,
                    client: None,
                    server: None,
                });
                // Just pushed, so `last_mut` is `Some`; the fallback keeps this
                // panic-free.
                match sessions.last_mut() {
                    Some(s) => s,
                    None => return,
                }
            }
        };
        if is_connect {
            session.client = Some(proc);
        } else {
            session.server = Some(proc);
        }
    }

    /// The processes that connected and accepted the connection `src → dst` on node
    /// `node` (from [`OsIndex::node_id`]) at `ts`.
    #[inline]
    pub fn lookup(
        &self,
        node: u32,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        ts: Nanos,
    ) -> (Option<&Proc>, Option<&Proc>) {
        let key = (node, src.to_canonical(), sport, dst.to_canonical(), dport);
        let Some(sessions) = self.conns.get(&key) else {
            return (None, None);
        };
        match sessions
            .iter()
            .filter(|s| s.covers(ts))
            .max_by_key(|s| s.opened)
        {
            Some(s) => (s.client.as_ref(), s.server.as_ref()),
            None => (None, None),
        }
    }

    /// Forgets sessions closed more than `CLOSED_RETAIN_NS`, or opened more than
    /// `OPEN_RETAIN_NS`, before the newest event time seen.
    pub fn prune(&mut self) {
        let now = self.watermark;
        let mut pruned = 0;
        self.conns.retain(|_, sessions| {
            let before = sessions.len();
            sessions.retain(|s| match s.closed {
                Some(c) => c >= now.saturating_sub(CLOSED_RETAIN_NS),
                None => s.opened >= now.saturating_sub(OPEN_RETAIN_NS),
            });
            pruned += (before - sessions.len()) as u64;
            !sessions.is_empty()
        });
        self.stats.pruned += pruned;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn ev(kind: &str, t: Nanos, pid: u32, comm: &str, sport: u16) -> OsEvent {
        OsEvent {
            timestamp: t,
            kind: kind.into(),
            pid: Some(pid),
            tgid: Some(pid),
            comm: Some(comm.into()),
            src_ip: "10.0.0.1".parse().unwrap(),
            src_port: Some(sport),
            dst_ip: "10.0.0.2".parse().unwrap(),
            dst_port: Some(80),
            ..OsEvent::default()
        }
    }

    fn names(idx: &OsIndex, node: &str, sport: u16, ts: Nanos) -> (Option<String>, Option<String>) {
        let Some(n) = idx.node_id(node) else {
            return (None, None);
        };
        let (c, s) = idx.lookup(
            n,
            "10.0.0.1".parse().unwrap(),
            sport,
            "10.0.0.2".parse().unwrap(),
            80,
            ts,
        );
        let name = |p: Option<&Proc>| p.and_then(|p| p.comm.as_deref().map(str::to_string));
        (name(c), name(s))
    }

    #[test]
    fn connect_and_accept_fill_both_sides_until_close() {
        let mut idx = OsIndex::new();
        idx.apply("n1", &ev(OS_CONNECT, 100 * S, 7, "curl", 4000));
        idx.apply("n1", &ev(OS_ACCEPT, 100 * S + 5, 9, "nginx", 4000));
        assert_eq!(
            names(&idx, "n1", 4000, 101 * S),
            (Some("curl".into()), Some("nginx".into()))
        );
        // Other node, other port: nothing.
        assert_eq!(names(&idx, "n2", 4000, 101 * S), (None, None));
        assert_eq!(names(&idx, "n1", 4001, 101 * S), (None, None));
        idx.apply("n1", &ev(OS_CLOSE, 110 * S, 7, "curl", 4000));
        assert_eq!(names(&idx, "n1", 4000, 110 * S).0.as_deref(), Some("curl"));
        assert_eq!(names(&idx, "n1", 4000, 120 * S), (None, None));
        // Long before the open: nothing.
        assert_eq!(names(&idx, "n1", 4000, 50 * S), (None, None));
        let (c, _) = idx.lookup(
            0,
            "::ffff:10.0.0.1".parse().unwrap(),
            4000,
            "10.0.0.2".parse().unwrap(),
            80,
            101 * S,
        );
        assert_eq!(c.and_then(|p| p.pid), Some(7), "IPv4-mapped is IPv4");
    }

    #[test]
    fn reused_ports_answer_by_time() {
        let mut idx = OsIndex::new();
        idx.apply("n1", &ev(OS_CONNECT, 100 * S, 1, "first", 4000));
        // No close seen: the reuse cuts the first session.
        idx.apply("n1", &ev(OS_CONNECT, 200 * S, 2, "second", 4000));
        assert_eq!(names(&idx, "n1", 4000, 150 * S).0.as_deref(), Some("first"));
        assert_eq!(
            names(&idx, "n1", 4000, 250 * S).0.as_deref(),
            Some("second")
        );
        for i in 0..10 {
            idx.apply("n1", &ev(OS_CONNECT, (300 + i) * S * 10, 3, "later", 4000));
        }
        assert!(idx.stats().sessions_evicted > 0);
        assert_eq!(
            idx.conns.values().map(Vec::len).max(),
            Some(MAX_SESSIONS_PER_KEY)
        );
    }

    #[test]
    fn odd_events_are_counted_and_pruning_follows_event_time() {
        let mut idx = OsIndex::new();
        idx.apply("n1", &ev("fork", S, 1, "x", 1));
        idx.apply("n1", &ev(OS_CLOSE, S, 1, "x", 1));
        assert_eq!((idx.stats().ignored, idx.stats().closes_unmatched), (1, 1));
        idx.apply("n1", &ev(OS_CONNECT, 10 * S, 1, "a", 1));
        idx.apply("n1", &ev(OS_CLOSE, 11 * S, 1, "a", 1));
        idx.apply("n1", &ev(OS_CONNECT, 12 * S, 1, "b", 2));
        idx.prune();
        assert_eq!(idx.len(), 2, "nothing old enough yet");
        idx.apply(
            "n1",
            &ev(OS_CONNECT, 11 * S + CLOSED_RETAIN_NS + S, 1, "c", 3),
        );
        idx.prune();
        assert_eq!(idx.len(), 2, "the closed one went, the open ones stay");
        assert_eq!(idx.stats().pruned, 1);
        assert_eq!(names(&idx, "n1", 2, 13 * S).0.as_deref(), Some("b"));
    }
}
