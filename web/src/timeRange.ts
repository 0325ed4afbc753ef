// The time ranges the dashboard offers, how they appear in the URL (`range=`), and the
// `since`/`until` of the subscribe they turn into (hub-api.md, "Positions").

import { LIVE_SINCE } from "./config";

export type TimeRange =
  | { kind: "live" }
  | { kind: "last"; minutes: number }
  | { kind: "custom"; from: string; to: string | null };

export const LAST_CHOICES: readonly number[] = [5, 15, 60];

export const LIVE: TimeRange = { kind: "live" };

/** `range=` → TimeRange: `live`, `5m`, `15m`, `1h`/`60m`, or `<from>..<to>` in RFC 3339
 * (`to` may be empty: from a point in time, then live). Anything else is live. */
export function parseRange(text: string | null | undefined): TimeRange {
  const t = (text ?? "").trim();
  if (t === "" || t === "live") return LIVE;
  const last = /^(\d+)(m|h)$/.exec(t);
  if (last) {
    const minutes = Number(last[1]) * (last[2] === "h" ? 60 : 1);
    if (minutes > 0) return { kind: "last", minutes };
  }
  const sep = t.indexOf("..");
  if (sep > 0) {
    const from = t.slice(0, sep);
    const to = t.slice(sep + 2);
    if (isRfc3339(from) && (to === "" || isRfc3339(to))) return { kind: "custom", from, to: to || null };
  }
  return LIVE;
}

export function formatRange(r: TimeRange): string {
  switch (r.kind) {
    case "live":
      return "live";
    case "last":
      return r.minutes % 60 === 0 ? `${r.minutes / 60}h` : `${r.minutes}m`;
    case "custom":
      return `${r.from}..${r.to ?? ""}`;
  }
}

export function rangeLabel(r: TimeRange): string {
  switch (r.kind) {
    case "live":
      return "Live";
    case "last":
      return r.minutes % 60 === 0 ? `Last ${r.minutes / 60} h` : `Last ${r.minutes} min`;
    case "custom":
      return `${shortTime(r.from)} → ${r.to ? shortTime(r.to) : "live"}`;
  }
}

/** The subscribe's `since`/`until`. A "last N minutes" range ends at the moment of the
 * request, as an absolute time, so the subscription completes instead of following live
 * and a reconnect resumes the same range. */
export function rangeToSubscription(r: TimeRange, now: Date = new Date()): { since: string; until: string | null } {
  switch (r.kind) {
    case "live":
      return { since: LIVE_SINCE, until: null };
    case "last":
      return { since: `-${r.minutes}m`, until: now.toISOString() };
    case "custom":
      return { since: r.from, until: r.to };
  }
}

export function isRfc3339(s: string): boolean {
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s));
}

/** `<input type="datetime-local">` value (local time, no zone) → RFC 3339 in UTC. */
export function localInputToRfc3339(value: string): string | null {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString().replace(/\.000Z$/, "Z");
}

/** RFC 3339 → `<input type="datetime-local">` value in local time. */
export function rfc3339ToLocalInput(value: string | null): string {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return "";
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function shortTime(s: string): string {
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}
