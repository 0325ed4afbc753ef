//! NATS subjects, streams and message headers of reef.v1: the contract between workers,
//! correlators, hubs and any other consumer.

/// Stream of everything workers publish.
pub const RAW_STREAM: &str = "REEF_RAW";
/// Subjects of [`RAW_STREAM`].
pub const RAW_SUBJECTS: &str = "reef.v1.node.>";

/// `reef.v1.node.<node>.entries`: Arrow IPC stream bytes of entry batches.
pub fn node_entries(node: &str) -> String {
    format!("reef.v1.node.{}.entries", token(node))
}

/// `reef.v1.node.<node>.flows`: Arrow IPC stream bytes of flow record batches.
pub fn node_flows(node: &str) -> String {
    format!("reef.v1.node.{}.flows", token(node))
}

/// `reef.v1.node.<node>.os`: Arrow IPC stream bytes of OS event batches ([`crate::OsEvent`]:
/// connect / accept / close with pid and comm, from the tracer).
pub fn node_os(node: &str) -> String {
    format!("reef.v1.node.{}.os", token(node))
}

/// Entries of every node, as the correlators' shared consumer filters them.
pub const ALL_NODE_ENTRIES: &str = "reef.v1.node.*.entries";
/// OS events of every node, which each correlator replica reads in full.
pub const ALL_NODE_OS: &str = "reef.v1.node.*.os";

/// Stream of enriched entries, published by correlators.
pub const ENRICHED_STREAM: &str = "REEF_ENRICHED";
/// Subjects of [`ENRICHED_STREAM`].
pub const ENRICHED_SUBJECTS: &str = "reef.v1.enriched.>";

/// `reef.v1.enriched.<namespace>.<protocol>`: enriched entry batches whose rows all have
/// this server namespace (`_` when unknown) and protocol, so consumers filter on the
/// server with subject wildcards (`reef.v1.enriched.shop.>`).
pub fn enriched(namespace: Option<&str>, protocol: &str) -> String {
    format!(
        "reef.v1.enriched.{}.{}",
        token(namespace.unwrap_or("_")),
        token(protocol)
    )
}

/// Kubernetes object changes the correlators saw, as JSON summaries, stored in
/// [`K8S_STREAM`]: every replica publishes each change under the same message id, so
/// it is stored once.
pub const K8S_EVENTS: &str = "reef.v1.k8s.events";
/// Stream of Kubernetes object changes.
pub const K8S_STREAM: &str = "REEF_K8S";
/// Subjects of [`K8S_STREAM`].
pub const K8S_SUBJECTS: &str = "reef.v1.k8s.>";

/// `reef.v1.control.<node>.targets`: the worker's capture targets (JSON), set at runtime.
pub fn node_targets(node: &str) -> String {
    format!("reef.v1.control.{}.targets", token(node))
}

/// `reef.v1.status.<node>`: a worker's counters (JSON) every few seconds, on plain NATS
/// (not stored: only the newest matters).
pub fn worker_status(node: &str) -> String {
    format!("reef.v1.status.{}", token(node))
}

/// Every worker's reports.
pub const WORKER_STATUS_ALL: &str = "reef.v1.status.>";

/// A name as one subject token: NATS gives `.`, `*`, `>` and whitespace meanings, so
/// they become `_`.
pub fn token(name: &str) -> String {
    let t: String = name
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect();
    if t.is_empty() { "_".to_string() } else { t }
}

/// Headers on every message workers publish.
pub mod headers {
    /// Schema name and version of the payload, e.g. `reef.v1.entry`.
    pub const SCHEMA: &str = "Reef-Schema";
    /// Always [`super::ARROW_STREAM`] for batches.
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// Id of the worker instance that published the batch.
    pub const WORKER: &str = "Reef-Worker";
    /// Per worker and subject, 1, 2, 3...: gaps show lost batches.
    pub const BATCH_SEQ: &str = "Reef-Batch-Seq";
    /// Rows in the batch.
    pub const ROWS: &str = "Reef-Rows";
    /// JetStream's de-duplication id: a retried publish is stored once.
    pub const MSG_ID: &str = "Nats-Msg-Id";
}

/// Content type of Arrow IPC stream bytes.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_built_from_safe_tokens() {
        assert_eq!(node_entries("node-a"), "reef.v1.node.node-a.entries");
        assert_eq!(
            node_flows("ip-10-0-0-1.ec2.internal"),
            "reef.v1.node.ip-10-0-0-1_ec2_internal.flows"
        );
        assert_eq!(token("a b*c>d"), "a_b_c_d");
        assert_eq!(token(""), "_");
        assert_eq!(node_os("n1"), "reef.v1.node.n1.os");
        assert_eq!(worker_status("n.1"), "reef.v1.status.n_1");
        assert_eq!(enriched(Some("shop"), "http"), "reef.v1.enriched.shop.http");
        assert_eq!(enriched(None, "dns"), "reef.v1.enriched._.dns");
        assert_eq!(enriched(Some("a.b"), "grpc"), "reef.v1.enriched.a_b.grpc");
    }
}
