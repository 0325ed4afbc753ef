//! The entry: one request with its response, a one-way message, or an unmatched request
//! or response. Declared once; the struct, Arrow schema, JSON Schema and the Arrow
//! conversions are generated from the list below.

use arrow_array::RecordBatch;

#[allow(unused_imports)]
use crate::columns::{self, Column};

record! {
    /// One Reef entry: a request with its response, a one-way message, or an unmatched
    /// request or response.
    Entry, schema crate::ENTRY_SCHEMA, file "entry.v1", builder EntryBatchBuilder, columns COLUMNS,
    arrow entry_schema, from_batch entries_from_batch;
    /// Unique id of the entry, stable across the pipeline (`GET /api/entries/{id}`).
    id: Utf8,
    /// Kubernetes node (or host) whose worker captured the entry.
    node: OptUtf8,
    /// When the request started (first byte seen), Unix time in nanoseconds.
    timestamp: TimestampNs,
    /// Microseconds from the first byte of the request to the last byte of the response.
    elapsed_time: OptI64,
    /// Application protocol: http, grpc, dns, redis, ...
    protocol: ProtocolCol,
    /// tcp, udp or icmp.
    transport: TransportCol,
    /// Client address (the side that sent the request).
    src_ip: Ip,
    /// Client port.
    src_port: OptU16,
    /// Server address.
    dst_ip: Ip,
    /// Server port.
    dst_port: OptU16,
    /// How the bytes were captured: pcap (file), af_packet (live) or ebpf_tls (TLS plaintext).
    capture_source: CaptureSourceCol,
    /// Request method, or the protocol's equivalent (DESIGN §2 table).
    method: OptUtf8,
    /// Request target as sent (path and query), or the protocol's equivalent.
    path: OptUtf8,
    /// Response status, or the protocol's equivalent (0 = OK for grpc, dns, redis...).
    status_code: OptI32,
    /// One human-readable line describing the exchange.
    summary: OptUtf8,
    /// HTTP version: 1.0, 1.1 or 2.
    http_version: OptUtf8,
    /// Bytes of the request on the wire (head and body as transferred).
    request_size: OptU64,
    /// Bytes of the response on the wire (head and body as transferred).
    response_size: OptU64,
    /// Request header fields.
    request_headers: OptHeaders,
    /// Response header fields (of the final response; trailers are appended).
    response_headers: OptHeaders,
    /// Request body, decoded from its Content-Encoding, cut at the body limit.
    request_body: OptBody,
    /// Response body, decoded from its Content-Encoding, cut at the body limit.
    response_body: OptBody,
    /// Request body length as transferred (after de-chunking, before decoding).
    request_body_size: OptU64,
    /// Response body length as transferred (after de-chunking, before decoding).
    response_body_size: OptU64,
    /// Part of the exchange was not seen: no response, no request, a gap or a cut message.
    incomplete: Bool,
    /// Anomalies and incompleteness, by name (see the flags list in the schema).
    flags: FlagsCol,
    /// Id of the entry this one belongs to (a WebSocket message's upgrade request).
    parent_id: OptUtf8,

    /// Pod of the client.
    src_pod: OptUtf8,
    /// Namespace of the client.
    src_namespace: OptUtf8,
    /// Service the client belongs to.
    src_service: OptUtf8,
    /// Top controller of the client pod (Deployment, StatefulSet, DaemonSet, CronJob/Job), else the pod.
    src_workload: OptUtf8,
    /// Kind of src_workload.
    src_workload_kind: OptUtf8,
    /// Node of the client pod.
    src_node: OptUtf8,
    /// Process name (comm) of the client.
    src_process: OptUtf8,
    /// Process id of the client.
    src_pid: OptU32,
    /// Labels of the client pod.
    src_labels: OptLabels,
    /// Pod of the server.
    dst_pod: OptUtf8,
    /// Namespace of the server.
    dst_namespace: OptUtf8,
    /// Service the server belongs to (or whose cluster IP was dialled).
    dst_service: OptUtf8,
    /// Top controller of the server pod, else the pod.
    dst_workload: OptUtf8,
    /// Kind of dst_workload.
    dst_workload_kind: OptUtf8,
    /// Node of the server pod.
    dst_node: OptUtf8,
    /// Process name (comm) of the server.
    dst_process: OptUtf8,
    /// Process id of the server.
    dst_pid: OptU32,
    /// Labels of the server pod.
    dst_labels: OptLabels,

    /// HTTP/2 stream id of the exchange.
    http2_stream_id: OptU32,
    /// gRPC method, /package.Service/Method.
    grpc_method: OptUtf8,
    /// gRPC status code (0 = OK).
    grpc_status: OptI32,
    /// gRPC status message.
    grpc_message: OptUtf8,
    /// gRPC messages the client sent on the call (more than one when streaming).
    grpc_request_messages: OptU32,
    /// gRPC messages the server sent on the call.
    grpc_response_messages: OptU32,
    /// GraphQL operation name.
    graphql_operation: OptUtf8,
    /// GraphQL operation type: query, mutation or subscription.
    graphql_operation_type: OptUtf8,
    /// WebSocket message opcode: text, binary, close, ping, pong.
    ws_opcode: OptUtf8,
    /// DNS questions as "name type".
    dns_questions: OptStrList,
    /// DNS answers as "name type data".
    dns_answers: OptStrList,
    /// DNS response code name (NOERROR, NXDOMAIN, ...).
    dns_rcode: OptUtf8,
    /// Redis command, upper case.
    redis_command: OptUtf8,
    /// First Redis key of the command.
    redis_key: OptUtf8,
    /// Kafka API key name (Produce, Fetch, Metadata, ...).
    kafka_api_key_name: OptUtf8,
    /// Kafka API version of the request.
    kafka_api_version: OptI32,
    /// First Kafka topic of the request.
    kafka_topic: OptUtf8,
    /// Kafka client id.
    kafka_client_id: OptUtf8,
    /// Kafka correlation id pairing the request with its response.
    kafka_correlation_id: OptI32,
    /// Every Kafka topic the request names.
    kafka_topics: OptStrList,
    /// AMQP class.method name.
    amqp_method: OptUtf8,
    /// AMQP exchange.
    amqp_exchange: OptUtf8,
    /// AMQP routing key.
    amqp_routing_key: OptUtf8,
    /// AMQP queue.
    amqp_queue: OptUtf8,
    /// AMQP channel number.
    amqp_channel: OptU32,
    /// PostgreSQL query text (capped).
    postgresql_query: OptUtf8,
    /// MySQL query text (capped).
    mysql_query: OptUtf8,
    /// Rows returned or affected by a database command (PostgreSQL, MySQL).
    db_rows: OptI64,
    /// Error of a failed database command: SQLSTATE or error number, and message.
    db_error: OptUtf8,
    /// MongoDB command name.
    mongodb_command: OptUtf8,
    /// MongoDB database.
    mongodb_database: OptUtf8,
    /// MongoDB collection.
    mongodb_collection: OptUtf8,
    /// MQTT topic.
    mqtt_topic: OptUtf8,
    /// MQTT QoS of a PUBLISH.
    mqtt_qos: OptI32,
    /// MQTT packet identifier pairing a packet with its acknowledgment.
    mqtt_packet_id: OptU32,
    /// TLS server name indication from the ClientHello.
    tls_sni: OptUtf8,
    /// Negotiated TLS version.
    tls_version: OptUtf8,
    /// ALPN protocols offered by the client.
    tls_alpn: OptStrList,
    /// JA3 fingerprint of the ClientHello.
    tls_ja3: OptUtf8,
    /// JA4 fingerprint of the ClientHello.
    tls_ja4: OptUtf8,
    /// Cipher suite the server chose.
    tls_cipher: OptUtf8,
    /// ICMP or ICMPv6 message type.
    icmp_type: OptI32,
    /// ICMP or ICMPv6 message code.
    icmp_code: OptI32,
}

/// The JSON Schema (draft 2020-12) of one JSON entry, as committed in
/// `schemas/entry.v1.schema.json`.
pub fn entry_json_schema() -> serde_json::Value {
    Entry::json_schema()
}

impl Entry {
    pub fn batch(entries: &[Entry]) -> RecordBatch {
        let mut b = EntryBatchBuilder::with_capacity(entries.len());
        for e in entries {
            b.push(e);
        }
        b.finish()
    }
}
