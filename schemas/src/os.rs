//! The OS event: a process opening, accepting or closing a TCP connection, as the
//! node's tracer (eBPF) sees it. Workers publish batches of them on
//! `reef.v1.node.<node>.os`; correlators join them with entries by node, 4-tuple and
//! time to name the process on each side.
//!
//! The 4-tuple is always written from the connection's point of view, whatever the
//! kind: `src` is the side that connected (the client), `dst` the side that accepted
//! (the server), exactly as on entries. So a `connect` describes the process behind
//! `src`, an `accept` the process behind `dst`, and a `close` ends the connection for
//! whichever side closed.

#[allow(unused_imports)]
use crate::columns::{self, Column};

/// `kind` of a connect (the process behind `src` opened the connection).
pub const OS_CONNECT: &str = "connect";
/// `kind` of an accept (the process behind `dst` accepted the connection).
pub const OS_ACCEPT: &str = "accept";
/// `kind` of a close (the connection ended).
pub const OS_CLOSE: &str = "close";

record! {
    /// One process/socket event from a node's tracer: connect, accept or close of a TCP
    /// connection, with the process that did it.
    OsEvent, schema crate::OS_SCHEMA, file "os.v1", builder OsEventBatchBuilder,
    columns OS_COLUMNS, arrow os_event_schema, from_batch os_events_from_batch;
    /// When it happened, Unix time in nanoseconds.
    timestamp: TimestampNs,
    /// Kubernetes node (or host) whose tracer saw it.
    node: OptUtf8,
    /// connect, accept or close.
    kind: Utf8,
    /// Process id (the thread group id: what `ps` shows as PID).
    pid: OptU32,
    /// Thread group id as the kernel names it; equal to pid for the process itself.
    tgid: OptU32,
    /// Process name (comm, at most 16 bytes in Linux).
    comm: OptUtf8,
    /// Id of the process's cgroup (cgroup v2 inode number).
    cgroup_id: OptU64,
    /// Container id from the cgroup path, when the process runs in a container.
    container_id: OptUtf8,
    /// The side that connected (the client).
    src_ip: Ip,
    /// Port of the side that connected.
    src_port: OptU16,
    /// The side that accepted (the server).
    dst_ip: Ip,
    /// Port of the side that accepted.
    dst_port: OptU16,
}

/// The JSON Schema of an OS event, as committed in `schemas/os.v1.schema.json`.
pub fn os_json_schema() -> serde_json::Value {
    OsEvent::json_schema()
}
