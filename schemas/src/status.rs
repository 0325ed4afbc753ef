//! A worker's report of its own counters, published every few seconds on
//! `reef.v1.status.<node>` (plain NATS, not stored), so hubs can show each worker and
//! what it dropped.

use serde::{Deserialize, Serialize};

/// How often workers report.
pub const STATUS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkerStatus {
    pub node: String,
    /// The worker instance (node and start time).
    #[serde(default)]
    pub worker: String,
    /// Packets the kernel gave the capture sockets (live capture).
    #[serde(default)]
    pub packets: u64,
    /// Packets the kernel dropped because a capture ring was full.
    #[serde(default)]
    pub kernel_drops: u64,
    /// Entries dropped before publishing (the buffer was full while NATS was slow).
    #[serde(default)]
    pub dropped: u64,
    /// Entries produced.
    #[serde(default)]
    pub entries: u64,
    /// Entry batches produced.
    #[serde(default)]
    pub batches: u64,
    /// When the report was made (ns since the epoch).
    #[serde(default)]
    pub time_ns: i64,
}
