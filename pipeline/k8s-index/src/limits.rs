//! Named limits and the counters of what they cost.

use crate::model::Nanos;

/// Claims (pod, service or node intervals) kept per IP. A pod CIDR recycles an address
/// every few minutes at worst on a busy node; 64 versions cover hours of churn inside
/// `RETAIN_CLOSED_NS`, while a runaway (a crash-looping Job on a tiny range) cannot grow one
/// IP's history without bound. Past the limit the claim that closed first is dropped.
pub const MAX_VERSIONS_PER_IP: usize = 64;

/// How long an interval that has closed (pod deleted or finished, service or node deleted)
/// stays resolvable after it closed, measured against the `now` given to `prune`. Entries
/// reach the correlator seconds after capture, replays of recent history minutes after;
/// an hour covers both with room for a stalled consumer catching up.
pub const RETAIN_CLOSED_NS: Nanos = 3_600 * 1_000_000_000;

/// How long a pruned object's uid is remembered, so that a stale copy re-delivered after
/// it was pruned (a late event, a replay) does not bring it back as if alive.
pub const TOMBSTONE_RETAIN_NS: Nanos = RETAIN_CLOSED_NS;

/// Tombstones kept at most. Each costs a uid (36 bytes) and a time; a million is ~100 MB
/// worst case, far beyond any cluster's hourly churn, so hitting it means a flood.
pub const MAX_TOMBSTONES: usize = 1_000_000;

/// Distinct pods remembered per EndpointSlice across its versions. A slice holds at most
/// 1000 endpoints (the API server's own limit); four times that covers the rollouts seen
/// within a slice's life without letting a slice that churns forever grow without bound.
pub const MAX_PODS_PER_SLICE: usize = 4_096;

/// Distinct IPs kept per object (union over its versions). Dual stack gives two; nodes
/// list internal and external addresses. Anything beyond is noise from a bad mapping.
pub const MAX_IPS_PER_OBJECT: usize = 8;

/// What the index did with the events it was given and what its limits cost. Every
/// counter only grows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events applied (all kinds, including the ignored ones counted below).
    pub events: u64,
    /// Upserts whose resource version was below the stored one: their timestamps were
    /// merged, their other fields ignored.
    pub stale: u64,
    /// Upserts with the same resource version as the stored one (replays, relists).
    pub duplicates: u64,
    /// Events for an object already pruned (its tombstone is still kept): ignored.
    pub after_prune: u64,
    /// Claims dropped because an IP had `MAX_VERSIONS_PER_IP`.
    pub versions_evicted: u64,
    /// IPs beyond `MAX_IPS_PER_OBJECT` ignored.
    pub ips_ignored: u64,
    /// Slice members beyond `MAX_PODS_PER_SLICE` ignored.
    pub slice_members_ignored: u64,
    /// Objects removed by `prune` (all kinds).
    pub pruned: u64,
    /// Tombstones not kept because `MAX_TOMBSTONES` were already.
    pub tombstones_dropped: u64,
}
