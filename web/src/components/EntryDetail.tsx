// The detail pane: the whole entry from GET /api/entries/{id}?cursor=…, shown from the
// feed's summary at once and completed when the full entry arrives.

import { useEffect, useState, type ReactNode } from "react";
import { ApiError, fetchEntry } from "../api";
import {
  formatBytes,
  formatDateTime,
  formatLatency,
  hostPort,
  statusClass,
  statusName,
} from "../format";
import type { ColumnValue, Entry, EntrySummary } from "../types";
import { mapKey } from "../filter/expr";
import { BodyView } from "./BodyView";
import { ProtocolBadge } from "./ProtocolBadge";

export interface DetailTarget {
  id: string;
  cursor?: string;
  summary: EntrySummary;
}

export type AddFilter = (column: string, value: ColumnValue) => void;

export interface EntryDetailProps {
  target: DetailTarget;
  onClose: () => void;
  onAddFilter: AddFilter;
  load?: (id: string, cursor: string | undefined, signal: AbortSignal) => Promise<Entry>;
}

type LoadState = { status: "loading" } | { status: "ok"; entry: Entry } | { status: "error"; message: string };

/** Columns the fixed sections show; every other non-null column goes to "Protocol fields". */
const SHOWN = new Set([
  "id", "cursor", "protocol", "method", "path", "status_code", "summary", "http_version",
  "timestamp", "elapsed_time", "request_size", "response_size", "request_body_size", "response_body_size",
  "src_ip", "src_port", "dst_ip", "dst_port", "transport", "capture_source", "node",
  "tls_sni", "tls_version", "tls_cipher", "tls_alpn", "tls_ja3", "tls_ja4",
  "src_pod", "src_namespace", "src_service", "src_workload", "src_workload_kind", "src_node", "src_labels",
  "dst_pod", "dst_namespace", "dst_service", "dst_workload", "dst_workload_kind", "dst_node", "dst_labels",
  "src_process", "src_pid", "dst_process", "dst_pid",
  "incomplete", "flags",
  "request_headers", "response_headers", "request_body", "response_body",
]);

export function EntryDetail({ target, onClose, onAddFilter, load = fetchEntry }: EntryDetailProps) {
  const [state, setState] = useState<LoadState>({ status: "loading" });

  useEffect(() => {
    const ctrl = new AbortController();
    setState({ status: "loading" });
    load(target.id, target.cursor, ctrl.signal).then(
      (entry) => setState({ status: "ok", entry }),
      (e: unknown) => {
        if (ctrl.signal.aborted) return;
        const message =
          e instanceof ApiError && e.status === 404
            ? "The hub no longer has this entry (it left the window and the stream's retention)."
            : e instanceof Error
              ? e.message
              : String(e);
        setState({ status: "error", message });
      },
    );
    return () => ctrl.abort();
  }, [target.id, target.cursor, load]);

  const e: Entry = state.status === "ok" ? state.entry : target.summary;
  const full = state.status === "ok";

  return (
    <aside className="detail" data-testid="entry-detail" aria-label="Entry detail">
      <header className="detail-head">
        <ProtocolBadge protocol={e.protocol} />
        <h2 title={`${e.method ?? ""} ${e.path ?? ""}`}>
          {e.method && <span className="detail-method">{e.method}</span>} {e.path ?? e.summary ?? ""}
        </h2>
        <div className="detail-actions">
          <button
            type="button"
            className="btn small"
            title="Copy the entry as JSON"
            onClick={() => void navigator.clipboard?.writeText(JSON.stringify(e, null, 2))}
          >
            Copy JSON
          </button>
          <button type="button" className="icon-btn" title="Close (Esc)" aria-label="Close" onClick={onClose}>
            ×
          </button>
        </div>
      </header>

      <div className="detail-body">
        {state.status === "loading" && <div className="note">Loading headers and bodies…</div>}
        {state.status === "error" && <div className="note error">{state.message}</div>}

        <StartLines e={e} />

        <Section title="Timing">
          <KV label="Started" column="timestamp" value={e.timestamp} display={formatDateTime(e.timestamp)} />
          <KV label="Elapsed" value={e.elapsed_time} display={formatLatency(e.elapsed_time)} />
          <KV label="Request size" column="request_size" value={e.request_size} display={formatBytes(e.request_size)} />
          <KV label="Response size" column="response_size" value={e.response_size} display={formatBytes(e.response_size)} />
        </Section>

        <Section title="Connection">
          <KV
            label="Client → server"
            value={`${hostPort(e.src_ip, e.src_port)} → ${hostPort(e.dst_ip, e.dst_port)}`}
          />
          <KV label="Client IP" column="src_ip" value={e.src_ip} onAdd={onAddFilter} />
          <KV label="Server IP" column="dst_ip" value={e.dst_ip} onAdd={onAddFilter} />
          <KV label="Server port" column="dst_port" value={e.dst_port} onAdd={onAddFilter} />
          <KV label="Transport" column="transport" value={e.transport} onAdd={onAddFilter} />
          <KV label="Captured by" column="capture_source" value={e.capture_source as ColumnValue} onAdd={onAddFilter} />
          <KV label="Node" column="node" value={e.node} onAdd={onAddFilter} />
          <KV label="TLS" value={tlsText(e)} />
          <KV label="SNI" column="tls_sni" value={e.tls_sni} onAdd={onAddFilter} />
          <KV label="TLS version" column="tls_version" value={e.tls_version as ColumnValue} onAdd={onAddFilter} />
          <KV label="Cipher" column="tls_cipher" value={e.tls_cipher as ColumnValue} onAdd={onAddFilter} />
          <KV label="ALPN" value={listText(e.tls_alpn)} />
          <KV label="JA3" column="tls_ja3" value={e.tls_ja3 as ColumnValue} onAdd={onAddFilter} />
          <KV label="JA4" column="tls_ja4" value={e.tls_ja4 as ColumnValue} onAdd={onAddFilter} />
        </Section>

        <KubernetesSection e={e} onAdd={onAddFilter} />

        {(e.src_process || e.dst_process || e.src_pid != null || e.dst_pid != null) && (
          <Section title="Process">
            <SideTable
              e={e}
              onAdd={onAddFilter}
              rows={[
                ["Process", "process"],
                ["PID", "pid"],
              ]}
            />
          </Section>
        )}

        {(e.incomplete || (e.flags && e.flags.length > 0)) && (
          <Section title="Flags">
            <div className="chips">
              {e.incomplete && (
                <button type="button" className="chip warn" onClick={() => onAddFilter("incomplete", true)}>
                  incomplete
                </button>
              )}
              {(e.flags ?? []).map((f) => (
                <span key={f} className="chip">
                  {f}
                </span>
              ))}
            </div>
          </Section>
        )}

        <ProtocolFields e={e} onAdd={onAddFilter} />

        {full && (
          <>
            <Section title="Request">
              <HeadersTable headers={e.request_headers} column="request_headers" onAdd={onAddFilter} />
              <BodyView
                label="Request body"
                body={e.request_body}
                headers={e.request_headers}
                size={e.request_body_size}
                truncated={!!e.flags?.includes("request_body_truncated")}
              />
            </Section>
            <Section title="Response">
              <HeadersTable headers={e.response_headers} column="response_headers" onAdd={onAddFilter} />
              <BodyView
                label="Response body"
                body={e.response_body}
                headers={e.response_headers}
                size={e.response_body_size}
                truncated={!!e.flags?.includes("response_body_truncated")}
              />
            </Section>
          </>
        )}

        <Section title="Identity" open={false}>
          <KV label="ID" column="id" value={e.id} onAdd={onAddFilter} />
          <KV label="Cursor" value={target.cursor ?? (e.cursor as string | undefined) ?? null} />
        </Section>
      </div>
    </aside>
  );
}

// ---- pieces ----

function Section({ title, children, open = true }: { title: string; children: ReactNode; open?: boolean }) {
  return (
    <details className="section" open={open}>
      <summary>{title}</summary>
      <div className="section-body">{children}</div>
    </details>
  );
}

interface KVProps {
  label: string;
  value: unknown;
  column?: string;
  display?: string;
  onAdd?: AddFilter;
}

/** One labelled value; with `column` and `onAdd`, clicking it narrows the filter to it. */
function KV({ label, value, column, display, onAdd }: KVProps) {
  if (value === null || value === undefined || value === "") return null;
  return (
    <div className="kv">
      <span className="kv-label">{label}</span>
      <Value column={column} value={value} display={display} onAdd={onAdd} />
    </div>
  );
}

function Value({ column, value, display, onAdd }: { column?: string; value: unknown; display?: string; onAdd?: AddFilter }) {
  const text = display ?? formatValue(value);
  const scalar = typeof value === "string" || typeof value === "number" || typeof value === "boolean";
  if (column && onAdd && scalar) {
    return (
      <button
        type="button"
        className="kv-value clickable"
        data-column={column}
        title={`Add ${column} = ${JSON.stringify(value)} to the filter`}
        onClick={() => onAdd(column, value)}
      >
        {text}
      </button>
    );
  }
  return <span className="kv-value">{text}</span>;
}

function formatValue(v: unknown): string {
  if (Array.isArray(v)) return v.map(String).join(", ");
  if (v && typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function listText(v: unknown): string | null {
  return Array.isArray(v) && v.length > 0 ? v.join(", ") : null;
}

function tlsText(e: Entry): string {
  if (e.capture_source === "ebpf_tls") return "yes: plaintext captured inside the process (eBPF)";
  if (e.tls_sni || e.tls_version || e.protocol === "tls") return "yes (handshake seen; payload encrypted)";
  return "no";
}

const REASONS: Record<number, string> = {
  100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
  206: "Partial Content", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
  307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized",
  403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
  413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content", 429: "Too Many Requests",
  500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
  504: "Gateway Timeout",
};

function StartLines({ e }: { e: Entry }) {
  const sc = statusClass(e.protocol, e.status_code);
  const httpLike = e.protocol === "http" || e.protocol === "graphql" || e.protocol === "websocket";
  const version = e.http_version ? (e.http_version === "2" ? "HTTP/2" : `HTTP/${e.http_version}`) : "";
  const request = httpLike
    ? `${e.method ?? "?"} ${e.path ?? ""}${version ? ` ${version}` : ""}`
    : [e.method, e.path].filter(Boolean).join(" ");
  let response: string;
  if (e.status_code === null || e.status_code === undefined) {
    response = e.flags?.includes("no_response") ? "no response seen" : "—";
  } else if (httpLike) {
    response = `${version || "HTTP"} ${e.status_code} ${REASONS[e.status_code] ?? ""}`.trim();
  } else {
    const name = statusName(e);
    response = `${e.protocol === "grpc" ? "grpc-status " : "status "}${e.status_code}${name ? ` ${name}` : ""}`;
    if (e.protocol === "grpc" && typeof e.grpc_message === "string" && e.grpc_message) response += `: ${e.grpc_message}`;
  }
  return (
    <div className="start-lines">
      <div className="start-line">
        <span className="dir">→</span>
        <code>{request || e.summary || "—"}</code>
      </div>
      <div className="start-line">
        <span className="dir">←</span>
        <code className={`status-${sc}`}>{response}</code>
        <span className="elapsed">{formatLatency(e.elapsed_time)}</span>
      </div>
      {e.summary && e.summary !== request && <div className="summary-line">{e.summary}</div>}
    </div>
  );
}

type SideRow = [label: string, suffix: string];

function SideTable({ e, rows, onAdd }: { e: Entry; rows: SideRow[]; onAdd: AddFilter }) {
  const visible = rows.filter(([, s]) => e[`src_${s}`] != null || e[`dst_${s}`] != null);
  if (visible.length === 0) return null;
  return (
    <table className="side-table">
      <thead>
        <tr>
          <th />
          <th>Source (client)</th>
          <th>Destination (server)</th>
        </tr>
      </thead>
      <tbody>
        {visible.map(([label, s]) => (
          <tr key={s}>
            <th>{label}</th>
            {(["src", "dst"] as const).map((side) => {
              const v = e[`${side}_${s}`];
              return (
                <td key={side}>
                  {v === null || v === undefined ? (
                    <span className="muted">—</span>
                  ) : (
                    <Value column={`${side}_${s}`} value={v} onAdd={onAdd} />
                  )}
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function KubernetesSection({ e, onAdd }: { e: Entry; onAdd: AddFilter }) {
  const rows: SideRow[] = [
    ["Pod", "pod"],
    ["Namespace", "namespace"],
    ["Workload", "workload"],
    ["Kind", "workload_kind"],
    ["Service", "service"],
    ["Node", "node"],
  ];
  const any = rows.some(([, s]) => e[`src_${s}`] != null || e[`dst_${s}`] != null);
  const labels = (["src", "dst"] as const).filter((side) => {
    const l = e[`${side}_labels`];
    return l && typeof l === "object" && Object.keys(l).length > 0;
  });
  return (
    <Section title="Kubernetes">
      {any ? (
        <SideTable e={e} rows={rows} onAdd={onAdd} />
      ) : (
        <div className="note">No Kubernetes context: neither address belongs to a known pod or service.</div>
      )}
      {labels.map((side) => (
        <div key={side} className="labels">
          <span className="kv-label">{side === "src" ? "Source labels" : "Destination labels"}</span>
          <div className="chips">
            {Object.entries(e[`${side}_labels`] as Record<string, string>).map(([k, v]) => (
              <span key={k} className="chip">
                {k}={v}
              </span>
            ))}
          </div>
        </div>
      ))}
    </Section>
  );
}

function ProtocolFields({ e, onAdd }: { e: Entry; onAdd: AddFilter }) {
  const rest = Object.keys(e)
    .filter((k) => !SHOWN.has(k) && e[k] !== null && e[k] !== undefined && !(Array.isArray(e[k]) && (e[k] as unknown[]).length === 0))
    .sort((a, b) => protoRank(a, e.protocol) - protoRank(b, e.protocol) || a.localeCompare(b));
  if (rest.length === 0) return null;
  return (
    <Section title="Protocol fields">
      {rest.map((k) => {
        const v = e[k];
        if (Array.isArray(v)) {
          return (
            <div className="kv" key={k}>
              <span className="kv-label">{k}</span>
              <ul className="kv-list">
                {v.map((item, i) => (
                  <li key={i}>{String(item)}</li>
                ))}
              </ul>
            </div>
          );
        }
        const long = typeof v === "string" && (v.length > 80 || v.includes("\n"));
        if (long) {
          return (
            <div className="kv block" key={k}>
              <span className="kv-label">
                {k}{" "}
                <button type="button" className="link-btn" onClick={() => onAdd(k, v as string)}>
                  filter
                </button>
              </span>
              <pre className="code">{v as string}</pre>
            </div>
          );
        }
        return <KV key={k} label={k} column={k} value={v} onAdd={onAdd} />;
      })}
    </Section>
  );
}

/** This protocol's own columns first (grpc_* for gRPC…), then the others. */
function protoRank(column: string, protocol: string): number {
  const p = protocol === "mdns" || protocol === "llmnr" ? "dns" : protocol;
  return column.startsWith(`${p}_`) ? 0 : 1;
}

function HeadersTable({ headers, column, onAdd }: { headers: unknown; column: string; onAdd: AddFilter }) {
  // entry.v1's JSON has one value per name, repeated names joined with ", " (or a
  // newline for Set-Cookie); a list of [name, value] pairs is read too. A value is
  // clickable into `column['Name'] = 'value'` unless it may be several joined: the
  // filter sees each of them on its own, under the name as sent.
  const entries: [string, string, boolean][] = Array.isArray(headers)
    ? headers
        .filter((p): p is [string, string] => Array.isArray(p) && p.length === 2)
        .map(([k, v]) => [String(k), String(v), false])
    : headers && typeof headers === "object"
      ? Object.entries(headers as Record<string, unknown>).map(([k, v]) =>
          Array.isArray(v) ? [k, v.join(", "), false] : [k, String(v), typeof v === "string" && !/, |\n/.test(v)],
        )
      : [];
  if (entries.length === 0) return <div className="note">No headers.</div>;
  return (
    <table className="kv-table headers">
      <tbody>
        {entries.map(([k, v, single], i) => (
          <tr key={`${k}:${i}`}>
            <th>{k}</th>
            <td>{single ? <Value column={mapKey(column, k)} value={v} onAdd={onAdd} /> : v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
