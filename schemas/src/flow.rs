//! The L4 flow record: one TCP connection (or UDP flow) with its counters, published
//! by workers beside the entries so that traffic without a dissected protocol is seen.

#[allow(unused_imports)]
use crate::columns::{self, Column};

record! {
    /// One L4 flow (a TCP connection or a UDP flow) as a worker saw it, with packet and
    /// byte counts per direction, timing and TCP anomalies.
    FlowRecord, schema crate::FLOW_SCHEMA, file "flow.v1", builder FlowBatchBuilder,
    columns FLOW_COLUMNS, arrow flow_schema, from_batch flows_from_batch;
    /// Unique id of the flow record.
    id: Utf8,
    /// Kubernetes node (or host) whose worker captured the flow.
    node: OptUtf8,
    /// First packet, Unix time in nanoseconds.
    start: TimestampNs,
    /// Last packet, Unix time in nanoseconds.
    end: TimestampNs,
    /// tcp or udp.
    transport: TransportCol,
    /// The side that opened the connection (sent the SYN; else the first sender).
    src_ip: Ip,
    /// Port of the side that opened the connection.
    src_port: OptU16,
    /// The other side.
    dst_ip: Ip,
    /// Port of the other side.
    dst_port: OptU16,
    /// How the packets were captured: pcap (file) or af_packet (live).
    capture_source: CaptureSourceCol,
    /// Protocol the dissector recognised (http1, dns, ...), absent when none.
    protocol: OptUtf8,
    /// Packets from src to dst, up to the close (the last ACK of a teardown comes after).
    src_packets: OptU64,
    /// Packets from dst to src.
    dst_packets: OptU64,
    /// Payload bytes from src to dst (retransmissions included).
    src_bytes: OptU64,
    /// Payload bytes from dst to src (retransmissions included).
    dst_bytes: OptU64,
    /// Payload bytes src sent again.
    src_retransmitted_bytes: OptU64,
    /// Payload bytes dst sent again.
    dst_retransmitted_bytes: OptU64,
    /// Microseconds from SYN to the ACK completing the handshake, when it was seen.
    handshake_rtt: OptI64,
    /// RST segments seen.
    resets: OptU32,
    /// How the flow ended: fin, rst, idle_timeout or capture_end.
    end_reason: OptUtf8,
    /// Bytes the capture missed (TCP gaps), both directions.
    gap_bytes: OptU64,
}

/// The JSON Schema of a flow record, as committed in `schemas/flow.v1.schema.json`.
pub fn flow_json_schema() -> serde_json::Value {
    FlowRecord::json_schema()
}
