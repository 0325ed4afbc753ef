//! One IP's history: the claims objects make on it, and the non-overlapping segments
//! lookups binary-search.
//!
//! Rule: claims are ordered by start time (ties by key, so the order never depends on
//! event arrival); each claim holds the IP from its start until its own end or the next
//! claim's start, whichever comes first. So at time `t` the claim with the latest start
//! `<= t` wins if it has not ended. An address is handed to a new pod only after the old
//! one released it, so a successor starting while its predecessor looks alive means the
//! predecessor's end was not observed (yet): cutting it at the successor's start is right.

use std::sync::Arc;

use crate::limits::MAX_VERSIONS_PER_IP;
use crate::model::Nanos;
use crate::resolved::Resolved;

/// Who claims an IP. Ordered, for the deterministic tie-break of equal starts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ClaimKey {
    Node(Arc<str>),
    Service(Arc<str>),
    Pod(Arc<str>),
}

#[derive(Clone, Debug)]
pub(crate) struct Claim {
    pub(crate) key: ClaimKey,
    pub(crate) start: Nanos,
    /// Exclusive; `Nanos::MAX` while open.
    pub(crate) end: Nanos,
    pub(crate) resolved: Arc<Resolved>,
}

impl Claim {
    fn same_as(&self, other: &Claim) -> bool {
        self.start == other.start
            && self.end == other.end
            && Arc::ptr_eq(&self.resolved, &other.resolved)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub(crate) start: Nanos,
    pub(crate) end: Nanos,
    pub(crate) resolved: Arc<Resolved>,
}

#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// Sorted by (start, key).
    claims: Vec<Claim>,
    /// Sorted by start, non-overlapping, never empty intervals.
    pub(crate) segments: Vec<Segment>,
}

/// What `set` did beyond the update itself.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SetOutcome {
    Unchanged,
    Changed,
    /// Changed, and this claim was dropped to respect `MAX_VERSIONS_PER_IP`.
    ChangedEvicted(ClaimKey),
}

impl Timeline {
    pub(crate) fn is_empty(&self) -> bool {
        self.claims.is_empty()
    }

    /// Inserts or replaces the claim with the same key.
    pub(crate) fn set(&mut self, claim: Claim) -> SetOutcome {
        if let Some(i) = self.claims.iter().position(|c| c.key == claim.key) {
            if self.claims[i].same_as(&claim) {
                return SetOutcome::Unchanged;
            }
            self.claims.remove(i);
        }
        let at = self
            .claims
            .partition_point(|c| (c.start, &c.key) < (claim.start, &claim.key));
        self.claims.insert(at, claim);
        let mut outcome = SetOutcome::Changed;
        if self.claims.len() > MAX_VERSIONS_PER_IP {
            // The claim that closed first is the one least likely to be asked about again.
            if let Some((i, _)) = self
                .claims
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| (c.end, c.start))
            {
                outcome = SetOutcome::ChangedEvicted(self.claims.remove(i).key);
            }
        }
        self.rebuild();
        outcome
    }

    /// Returns whether a claim was removed.
    pub(crate) fn remove(&mut self, key: &ClaimKey) -> bool {
        let before = self.claims.len();
        self.claims.retain(|c| &c.key != key);
        let removed = self.claims.len() != before;
        if removed {
            self.rebuild();
        }
        removed
    }

    fn rebuild(&mut self) {
        self.segments.clear();
        for (i, c) in self.claims.iter().enumerate() {
            let next_start = self.claims.get(i + 1).map_or(Nanos::MAX, |n| n.start);
            let end = c.end.min(next_start);
            if end > c.start {
                self.segments.push(Segment {
                    start: c.start,
                    end,
                    resolved: c.resolved.clone(),
                });
            }
        }
    }
}

/// The segment of `segments` (sorted, non-overlapping) containing `ts`.
#[inline]
pub(crate) fn find(segments: &[Segment], ts: Nanos) -> Option<&Segment> {
    let i = segments.partition_point(|s| s.start <= ts);
    let seg = segments.get(i.checked_sub(1)?)?;
    (ts < seg.end).then_some(seg)
}
