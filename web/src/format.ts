// How values are shown: times, latencies, sizes, endpoints, statuses.

import type { EntrySummary, TimeValue } from "./types";

/** Entry timestamp (ns since the epoch) → ms since the epoch. */
export function nsToMs(ns: number): number {
  return Math.floor(ns / 1e6);
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** HH:MM:SS.mmm in local time: the feed's time column. */
export function formatClock(ns: number): string {
  const d = new Date(nsToMs(ns));
  if (Number.isNaN(d.getTime())) return "—";
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Full local date and time with microseconds, for the detail pane. */
export function formatDateTime(ns: number): string {
  const ms = nsToMs(ns);
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return "—";
  const micros = Math.floor((ns / 1e3) % 1e6);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(micros, 6)}`
  );
}

/** elapsed_time (µs) → "850 µs", "12.3 ms", "1.42 s". */
export function formatLatency(us: number | null | undefined): string {
  if (us === null || us === undefined || !Number.isFinite(us)) return "—";
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1_000_000) {
    const ms = us / 1000;
    return `${ms < 100 ? ms.toFixed(1) : Math.round(ms)} ms`;
  }
  const s = us / 1_000_000;
  return `${s < 100 ? s.toFixed(2) : Math.round(s)} s`;
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return "—";
  if (Math.abs(n) < 10_000) return String(Math.round(n));
  if (Math.abs(n) < 1_000_000) return `${(n / 1000).toFixed(n < 100_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return "—";
  return perSecond < 10 ? perSecond.toFixed(1) : formatCount(perSecond);
}

/** The hub's times may be RFC 3339 text or a number since the epoch (s, ms, µs or ns:
 * told apart by magnitude, since only recent times occur). */
export function parseTimeValue(v: TimeValue | undefined): Date | null {
  if (v === null || v === undefined || v === "") return null;
  if (typeof v === "number") {
    const ms = v > 1e17 ? v / 1e6 : v > 1e14 ? v / 1e3 : v > 1e11 ? v : v * 1e3;
    return new Date(ms);
  }
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function formatAgo(d: Date | null, now: number = Date.now()): string {
  if (!d) return "never";
  const s = Math.round((now - d.getTime()) / 1000);
  if (s < 2) return "just now";
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** ip:port, with IPv6 addresses bracketed. */
export function hostPort(ip: string, port: number | null | undefined): string {
  const host = ip.includes(":") ? `[${ip}]` : ip;
  return port === null || port === undefined ? host : `${host}:${port}`;
}

/** A side of the exchange as people name it: service, else pod, else ip:port. */
export function endpointName(e: EntrySummary, side: "src" | "dst"): string {
  const service = e[`${side}_service`];
  if (typeof service === "string" && service) return service;
  const pod = e[`${side}_pod`];
  if (typeof pod === "string" && pod) return pod;
  const ip = side === "src" ? e.src_ip : e.dst_ip;
  const port = side === "src" ? e.src_port : e.dst_port;
  return hostPort(ip, port);
}

export function entryNamespace(e: EntrySummary): string {
  return e.dst_namespace || e.src_namespace || "";
}

/** What the feed's path column shows: the path, else the one-line summary. */
export function entryTarget(e: EntrySummary): string {
  return e.path || e.summary || "";
}

// ---- status ----

export type StatusClass = "ok" | "redirect" | "client" | "server" | "info" | "none";

/** Protocols whose status is 0 for success (DESIGN §2). */
const ZERO_OK = new Set([
  "grpc",
  "dns",
  "mdns",
  "llmnr",
  "redis",
  "kafka",
  "postgresql",
  "mysql",
  "mongodb",
]);
const HTTP_LIKE = new Set(["http", "graphql"]);

/** gRPC codes that mean the server or the network failed, rather than the request was
 * wrong: shown red, the others orange. */
const GRPC_SERVER_CODES = new Set([2, 4, 8, 12, 13, 14, 15]);

export function statusClass(protocol: string, status: number | null | undefined): StatusClass {
  if (status === null || status === undefined) return "none";
  if (protocol === "mqtt") {
    // MQTT 5 reason codes: below 0x80 success (granted QoS…), from 0x80 failure.
    if (status < 0x80) return "ok";
    return MQTT_SERVER_CODES.has(status) ? "server" : "client";
  }
  const httpLike = HTTP_LIKE.has(protocol) || (!ZERO_OK.has(protocol) && status >= 100 && status < 600);
  if (httpLike) {
    if (status >= 500) return "server";
    if (status >= 400) return "client";
    if (status >= 300) return "redirect";
    if (status >= 200) return "ok";
    return "info";
  }
  if (status === 0) return "ok";
  if (protocol === "grpc") return GRPC_SERVER_CODES.has(status) ? "server" : "client";
  if (protocol === "dns" || protocol === "mdns" || protocol === "llmnr") {
    // SERVFAIL is the server's fault; NXDOMAIN, REFUSED… answer the question asked.
    return status === 2 ? "server" : "client";
  }
  return "server";
}

/** MQTT reason codes that blame the server: unspecified error, implementation specific
 * error, server unavailable, server busy. */
const MQTT_SERVER_CODES = new Set([0x80, 0x83, 0x88, 0x89]);

const GRPC_CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];
const DNS_RCODE_NAMES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

/** A short name for a status, where the protocol has one ("OK", "NXDOMAIN"). */
export function statusName(e: EntrySummary): string | null {
  const s = e.status_code;
  if (s === null || s === undefined) return null;
  if (e.protocol === "grpc") return GRPC_CODE_NAMES[s] ?? null;
  if (e.protocol === "dns" || e.protocol === "mdns" || e.protocol === "llmnr") {
    return e.dns_rcode ?? DNS_RCODE_NAMES[s] ?? null;
  }
  return null;
}

/** Text of the status column. Entries without a status say why when they can. */
export function statusText(e: EntrySummary): string {
  const s = e.status_code;
  if (s === null || s === undefined) {
    if (e.flags?.includes("no_response")) return "no resp";
    if (e.flags?.includes("timeout")) return "timeout";
    return "—";
  }
  const name = statusName(e);
  return name && (e.protocol === "grpc" || e.protocol === "dns") ? (s === 0 ? name : `${s} ${name}`) : String(s);
}

export const PROTOCOL_COLORS: Record<string, string> = {
  http: "#38bdf8",
  grpc: "#a78bfa",
  graphql: "#f472b6",
  websocket: "#2dd4bf",
  dns: "#facc15",
  mdns: "#eab308",
  llmnr: "#ca8a04",
  redis: "#f87171",
  kafka: "#fb923c",
  amqp: "#fdba74",
  postgresql: "#60a5fa",
  mysql: "#22d3ee",
  mongodb: "#4ade80",
  mqtt: "#c084fc",
  tls: "#94a3b8",
  icmp: "#cbd5e1",
};

export function protocolColor(p: string): string {
  return PROTOCOL_COLORS[p] ?? "#9ca3af";
}
