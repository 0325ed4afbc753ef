// Header stats from GET /api/stats: throughput, protocols, workers and their drops, the
// hub's window. Drops are the first thing to look at when entries seem to be missing.

import { useEffect, useRef, useState } from "react";
import { formatAgo, formatBytes, formatCount, formatRate, parseTimeValue, protocolColor } from "../format";
import { useNow } from "../hooks";
import type { StatsResponse } from "../types";

export interface StatsBarProps {
  stats: StatsResponse | null;
  error: Error | null;
}

export function StatsBar({ stats, error }: StatsBarProps) {
  const [open, setOpen] = useState(false);
  const now = useNow(5_000);
  const wrap = useRef<HTMLSpanElement | null>(null);

  // Close the workers popover on a click elsewhere or Escape.
  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (wrap.current && !wrap.current.contains(e.target as Node)) setOpen(false);
    };
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") setOpen(false);
    };
    document.addEventListener("mousedown", onDown);
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("mousedown", onDown);
      document.removeEventListener("keydown", onKey);
    };
  }, [open]);
  if (!stats) {
    return <div className="stats-bar muted">{error ? `stats unavailable: ${error.message}` : "…"}</div>;
  }
  const workers = stats.workers ?? [];
  const drops = workers.reduce((a, w) => a + (w.kernel_drops ?? 0) + (w.dropped ?? 0), 0);
  const protocols = Object.entries(stats.protocols ?? {}).sort((a, b) => b[1] - a[1]);
  const totalProto = protocols.reduce((a, [, n]) => a + n, 0);
  const w = stats.window;
  const fill = w && w.max_bytes > 0 ? Math.min(1, w.bytes / w.max_bytes) : 0;

  return (
    <div className={`stats-bar${error ? " stale" : ""}`} data-testid="stats-bar" title={error ? `stats stale: ${error.message}` : undefined}>
      <span className="stat" title="Entries per second reaching this hub">
        <b>{formatRate(stats.entries_per_s)}</b> entries/s
      </span>
      {!stats.ingesting && (
        <span className="stat warn" title="The hub is not consuming the stream">
          not ingesting
        </span>
      )}
      <span className="stat protocols" title={protocols.map(([p, n]) => `${p}: ${n}`).join("\n")}>
        {totalProto > 0 && (
          <span className="proto-bar">
            {protocols.map(([p, n]) => (
              <span key={p} style={{ width: `${(100 * n) / totalProto}%`, background: protocolColor(p) }} />
            ))}
          </span>
        )}
        {protocols.slice(0, 4).map(([p, n]) => (
          <span key={p} className="proto-chip">
            <i style={{ background: protocolColor(p) }} />
            {p} {formatCount(n)}
          </span>
        ))}
      </span>
      <span className="stat workers-wrap" ref={wrap}>
        <button
          type="button"
          className={`link-btn${workers.length === 0 ? " warn" : drops > 0 ? " warn" : ""}`}
          onClick={() => setOpen((o) => !o)}
          aria-expanded={open}
          data-testid="workers-button"
        >
          {workers.length} worker{workers.length === 1 ? "" : "s"}
          {drops > 0 ? ` · ${formatCount(drops)} dropped` : ""}
        </button>
        {open && (
          <div className="popover workers-popover" role="dialog" aria-label="Workers">
            {workers.length === 0 ? (
              <p>No worker has reported to this hub.</p>
            ) : (
              <table>
                <thead>
                  <tr>
                    <th>Node</th>
                    <th className="num">Entries</th>
                    <th className="num">Batches</th>
                    <th className="num" title="Packets the kernel dropped before capture (ring full)">
                      Kernel drops
                    </th>
                    <th className="num" title="Entries or batches the worker dropped (publish buffer full)">
                      Dropped
                    </th>
                    <th>Last seen</th>
                  </tr>
                </thead>
                <tbody>
                  {workers.map((wk) => (
                    <tr key={wk.node}>
                      <td>{wk.node}</td>
                      <td className="num">{formatCount(wk.entries)}</td>
                      <td className="num">{formatCount(wk.batches)}</td>
                      <td className={`num${wk.kernel_drops > 0 ? " warn" : ""}`}>{formatCount(wk.kernel_drops)}</td>
                      <td className={`num${wk.dropped > 0 ? " warn" : ""}`}>{formatCount(wk.dropped)}</td>
                      <td>{formatAgo(parseTimeValue(wk.last_seen), now)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <p className="muted">
              {stats.clients} client{stats.clients === 1 ? "" : "s"} connected to this hub.
            </p>
          </div>
        )}
      </span>
      {w && (
        <span
          className="stat"
          title={`Hub window: ${w.entries} entries, ${formatBytes(w.bytes)} of ${formatBytes(w.max_bytes)}\noldest: ${fmtTime(w.oldest)}\nnewest: ${fmtTime(w.newest)}`}
        >
          window {formatCount(w.entries)} · {formatBytes(w.bytes)}
          <span className="meter">
            <span style={{ width: `${(fill * 100).toFixed(1)}%` }} />
          </span>
        </span>
      )}
    </div>
  );
}

function fmtTime(v: StatsResponse["window"]["oldest"]): string {
  const d = parseTimeValue(v);
  return d ? d.toLocaleString() : "—";
}
