//! The correlator: joins worker entries with Kubernetes context (an index fed by
//! watchers) and OS events (which process connected, which accepted), and publishes
//! enriched batches to `reef.v1.enriched.<namespace>.<protocol>` (REEF_ENRICHED).
//!
//! - [`enrich`]: the pure join of one Arrow batch with the indexes;
//! - [`os_index`]: the pure process index by node, 4-tuple and time;
//! - [`service`]: the NATS service around them (shared durable consumer, publishing,
//!   acks, poison, metrics).

pub mod config;
pub mod enrich;
pub mod metrics;
pub mod os_index;
pub mod service;

pub use config::CorrelatorConfig;
pub use enrich::{EnrichError, EnrichStats, Enricher, split_by_subject};
pub use os_index::OsIndex;
pub use service::{Report, run, run_blocking};

#[cfg(test)]
mod enrich_tests;
