// Shapes of the hub API (schemas/hub-api.md) and of entries (schemas/entry.v1.schema.json).
// Columns may be added within v1, so every entry type keeps an index signature: the
// detail pane shows unknown columns instead of dropping them.

export type Protocol =
  | "http"
  | "grpc"
  | "graphql"
  | "websocket"
  | "dns"
  | "mdns"
  | "llmnr"
  | "redis"
  | "kafka"
  | "amqp"
  | "postgresql"
  | "mysql"
  | "mongodb"
  | "mqtt"
  | "tls"
  | "icmp";

/** A scalar column value as JSON carries it. */
export type ColumnValue = string | number | boolean | null;

/** The summary the WebSocket and GET /api/entries send: no headers, no bodies. */
export interface EntrySummary {
  id: string;
  cursor?: string;
  node?: string | null;
  /** Nanoseconds since the Unix epoch (a JS number: precise to about 256 ns today). */
  timestamp: number;
  /** Microseconds from the first request byte to the last response byte. */
  elapsed_time?: number | null;
  protocol: Protocol | string;
  transport: string;
  src_ip: string;
  src_port?: number | null;
  dst_ip: string;
  dst_port?: number | null;
  method?: string | null;
  path?: string | null;
  status_code?: number | null;
  summary?: string | null;
  http_version?: string | null;
  request_size?: number | null;
  response_size?: number | null;
  incomplete?: boolean;
  flags?: string[];
  src_pod?: string | null;
  src_namespace?: string | null;
  src_service?: string | null;
  src_workload?: string | null;
  src_workload_kind?: string | null;
  src_process?: string | null;
  dst_pod?: string | null;
  dst_namespace?: string | null;
  dst_service?: string | null;
  dst_workload?: string | null;
  dst_workload_kind?: string | null;
  dst_process?: string | null;
  grpc_status?: number | null;
  dns_rcode?: string | null;
  tls_sni?: string | null;
  [column: string]: unknown;
}

/** A body: UTF-8 text as a string, anything else as `{"base64": …}`. */
export type Body = string | { base64: string } | null | undefined;

/** The whole entry of GET /api/entries/{id}. */
export interface Entry extends EntrySummary {
  request_headers?: Record<string, string> | null;
  response_headers?: Record<string, string> | null;
  request_body?: Body;
  response_body?: Body;
  request_body_size?: number | null;
  response_body_size?: number | null;
  src_labels?: Record<string, string> | null;
  dst_labels?: Record<string, string> | null;
}

export interface Position {
  line: number;
  column: number;
}

// ---- WebSocket ----

export interface SubscribeRequest {
  type: "subscribe";
  filter: string;
  since: string | null;
  until: string | null;
  limit: number | null;
  after: string | null;
}

export type ClientMessage = SubscribeRequest | { type: "pause" } | { type: "resume" };

export interface SubscribedMsg {
  type: "subscribed";
  sub: number;
  filter: string;
  since: string | null;
  until: string | null;
  limit: number | null;
}
export interface EntriesMsg {
  type: "entries";
  sub: number;
  entries: EntrySummary[];
  cursor?: string | null;
}
export interface ErrorMsg {
  type: "error";
  message: string;
  position?: Position | null;
}
export interface LostMsg {
  type: "lost";
  sub: number;
  count: number;
  reason: string;
}
export interface StatsMsg {
  type: "stats";
  sub: number;
  seen: number;
  matched: number;
  lag_ms: number;
  paused: boolean;
}
export interface CompleteMsg {
  type: "complete";
  sub: number;
  reason: string;
}

export type ServerMessage = SubscribedMsg | EntriesMsg | ErrorMsg | LostMsg | StatsMsg | CompleteMsg;

// ---- REST ----

export interface SchemaValue {
  value: ColumnValue;
  count: number;
}
export interface SchemaColumn {
  name: string;
  type: string;
  nullable: boolean;
  values?: SchemaValue[];
}
export interface SchemaResponse {
  version: string;
  columns: SchemaColumn[];
}

export type ValidateResponse =
  | { ok: true }
  | { ok: false; message: string; position?: Position | null };

export interface ServiceMapNode {
  id: string;
  name: string;
  namespace?: string | null;
  kind?: string | null;
  requests: number;
}
export interface ServiceMapEdge {
  source: string;
  target: string;
  protocols: string[];
  requests: number;
  errors: number;
  error_rate: number;
  request_bytes: number;
  response_bytes: number;
  latency_avg_us: number | null;
  latency_p50_us: number | null;
  latency_p99_us: number | null;
}
export interface ServiceMapResponse {
  nodes: ServiceMapNode[];
  edges: ServiceMapEdge[];
  entries: number;
}

/** A time as the hub may write it: RFC 3339 text or a number since the epoch. */
export type TimeValue = string | number | null;

export interface WorkerStats {
  node: string;
  entries: number;
  batches: number;
  kernel_drops: number;
  dropped: number;
  last_seen: TimeValue;
}
export interface StatsResponse {
  entries_per_s: number;
  protocols: Record<string, number>;
  workers: WorkerStats[];
  window: {
    entries: number;
    bytes: number;
    max_bytes: number;
    oldest: TimeValue;
    newest: TimeValue;
  };
  clients: number;
  ingesting: boolean;
}
