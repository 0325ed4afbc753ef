import { describe, expect, it } from "vitest";
import { emptyMessage } from "./emptyState";
import { applyMessages, beginSubscribe, initialFeedState, type FeedState } from "./feedStore";
import type { StatsResponse } from "./types";
import type { ConnState } from "./ws";

const open: ConnState = { status: "open", failures: 0, retryAt: null, everOpened: true };
const stats = (workers: number, entries: number): StatsResponse => ({
  entries_per_s: 0,
  protocols: {},
  workers: Array.from({ length: workers }, (_, i) => ({ node: `n${i}`, entries: 0, batches: 0, kernel_drops: 0, dropped: 0, last_seen: null })),
  window: { entries, bytes: 0, max_bytes: 1, oldest: null, newest: null },
  clients: 1,
  ingesting: true,
});
function live(seen = 0): FeedState {
  let s = beginSubscribe(initialFeedState(), { resume: false });
  s = applyMessages(s, [
    { type: "subscribed", sub: 1, filter: "", since: null, until: null, limit: null },
    { type: "stats", sub: 1, seen, matched: 0, lag_ms: 0, paused: false },
  ]);
  return s;
}

describe("emptyMessage", () => {
  it("no workers: asks whether a worker runs", () => {
    expect(emptyMessage({ feed: live(), conn: open, stats: stats(0, 0), filter: "", live: true })?.title).toBe(
      "No traffic yet: is a worker running?",
    );
  });

  it("workers but no entries: says they report and nothing came", () => {
    const m = emptyMessage({ feed: live(), conn: open, stats: stats(2, 0), filter: "", live: true });
    expect(m?.title).toBe("No traffic yet");
    expect(m?.detail).toContain("2 workers reporting");
  });

  it("a filter matching nothing names the filter and what was seen", () => {
    const m = emptyMessage({ feed: live(4200), conn: open, stats: stats(1, 9000), filter: "status_code = 418", live: true });
    expect(m?.title).toBe("No entries match");
    expect(m?.filter).toBe("status_code = 418");
    expect(m?.detail).toContain("seen 4200");
  });

  it("the hub unreachable after having been reached", () => {
    const m = emptyMessage({ feed: live(), conn: { ...open, status: "waiting" }, stats: null, filter: "", live: true });
    expect(m?.title).toBe("The hub is unreachable");
  });

  it("nothing to say when there are entries", () => {
    const feed = applyMessages(live(), [{ type: "entries", sub: 1, entries: [{ id: "a", timestamp: 1, protocol: "http", transport: "tcp", src_ip: "1", dst_ip: "2" }] }]);
    expect(emptyMessage({ feed, conn: open, stats: null, filter: "", live: true })).toBeNull();
  });
});
