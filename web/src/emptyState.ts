// What an empty feed says. Kubeshark users' most common complaint is an empty dashboard
// with no hint why, so each cause gets its own message, in the order they are checked.

import type { FeedState } from "./feedStore";
import { feedCounts } from "./feedStore";
import type { ConnState } from "./ws";
import type { StatsResponse } from "./types";

export interface EmptyMessage {
  kind: "info" | "warn" | "error";
  title: string;
  detail?: string;
  /** Filter text to show as code in the title. */
  filter?: string;
}

export interface EmptyInputs {
  feed: FeedState;
  conn: ConnState;
  /** Latest GET /api/stats, if any. */
  stats: StatsResponse | null;
  filter: string;
  live: boolean;
}

export function emptyMessage({ feed, conn, stats, filter, live }: EmptyInputs): EmptyMessage | null {
  if (feed.entries.length > 0) return null;
  const f = filter.trim();
  const { seen } = feedCounts(feed);

  if (feed.error) {
    return { kind: "error", title: "The hub rejected the subscription", detail: feed.error.message };
  }
  if (conn.status !== "open") {
    return conn.everOpened
      ? { kind: "error", title: "The hub is unreachable", detail: "Reconnecting; the feed resumes where it stopped." }
      : { kind: "info", title: "Connecting to the hub…" };
  }
  if (feed.sub === null) return { kind: "info", title: "Subscribing…" };

  if (feed.complete !== null) {
    return f
      ? { kind: "info", title: "No entries match", filter: f, detail: `in this time range (seen ${seen}).` }
      : { kind: "info", title: "No entries in this time range", detail: "Pick a longer range, or go live." };
  }
  if (f && seen > 0) {
    return { kind: "info", title: "No entries match", filter: f, detail: `(seen ${seen}). Loosen the filter, or wait for matching traffic.` };
  }
  if (stats) {
    if (stats.workers.length === 0) {
      return {
        kind: "warn",
        title: "No traffic yet: is a worker running?",
        detail:
          "No worker has reported to this hub. Start one (`reef worker`, or the reef-worker DaemonSet in a cluster) and check that it reaches the same NATS as the hub.",
      };
    }
    if (stats.window.entries === 0) {
      const n = stats.workers.length;
      return {
        kind: "info",
        title: "No traffic yet",
        detail: `${n} worker${n === 1 ? "" : "s"} reporting, no entries captured so far. Send some requests between pods, or check the workers' interface and target settings.`,
      };
    }
  }
  if (f) {
    return { kind: "info", title: "No entries match", filter: f, detail: live ? "yet (seen 0). Waiting for traffic…" : "(seen 0)." };
  }
  return { kind: "info", title: live ? "Waiting for entries…" : "Loading entries…" };
}
