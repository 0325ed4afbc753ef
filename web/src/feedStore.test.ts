import { describe, expect, it } from "vitest";
import {
  applyMessages,
  beginSubscribe,
  connectionReset,
  feedCounts,
  initialFeedState,
  moveSelection,
  select,
  type FeedState,
} from "./feedStore";
import { MAX_FEED_ENTRIES } from "./config";
import type { EntrySummary, ServerMessage } from "./types";

function entry(i: number): EntrySummary {
  return {
    id: `e${i}`,
    cursor: `100.${i}`,
    timestamp: 1_764_151_200_000_000_000 + i * 1_000_000,
    protocol: "http",
    transport: "tcp",
    src_ip: "10.0.0.1",
    dst_ip: "10.0.0.2",
    method: "GET",
    path: `/item/${i}`,
    status_code: 200,
  };
}
function entries(sub: number, from: number, n: number, cursor = true): ServerMessage {
  const list = Array.from({ length: n }, (_, k) => entry(from + k));
  return { type: "entries", sub, entries: list, ...(cursor ? { cursor: list[list.length - 1]?.cursor } : {}) };
}
/** A store subscribed (and confirmed) as subscription `sub`. */
function subscribed(sub: number, cap?: number): FeedState {
  const s = beginSubscribe(initialFeedState(cap), { resume: false });
  return applyMessages(s, [{ type: "subscribed", sub, filter: "", since: null, until: null, limit: null }]);
}
const ids = (s: FeedState) => s.entries.map((e) => e.id);

describe("feed store: batching", () => {
  it("applies several entries messages of one frame in order, in one new state", () => {
    const s0 = subscribed(1);
    const s1 = applyMessages(s0, [entries(1, 0, 3), entries(1, 3, 2)]);
    expect(ids(s1)).toEqual(["e0", "e1", "e2", "e3", "e4"]);
    expect(s1.received).toBe(5);
    expect(s1.lastCursor).toBe("100.4");
    // The previous state is untouched: React compares by identity.
    expect(s0.entries).toHaveLength(0);
  });

  it("returns the same object when nothing applies (no re-render)", () => {
    const s0 = subscribed(2);
    expect(applyMessages(s0, [])).toBe(s0);
    expect(applyMessages(s0, [entries(1, 0, 5)])).toBe(s0);
  });

  it("takes the cursor of the last entry when the message has none", () => {
    const s = applyMessages(subscribed(1), [entries(1, 0, 2, false)]);
    expect(s.lastCursor).toBe("100.1");
  });
});

describe("feed store: cap", () => {
  it("defaults to MAX_FEED_ENTRIES", () => {
    expect(initialFeedState().cap).toBe(MAX_FEED_ENTRIES);
    expect(MAX_FEED_ENTRIES).toBe(20_000);
  });

  it("drops the oldest entries past the cap and counts them", () => {
    let s = subscribed(1, 5);
    s = applyMessages(s, [entries(1, 0, 4)]);
    s = applyMessages(s, [entries(1, 4, 3)]);
    expect(ids(s)).toEqual(["e2", "e3", "e4", "e5", "e6"]);
    expect(s.evicted).toBe(2);
    expect(s.received).toBe(7);
  });

  it("keeps only the newest `cap` when one frame brings more than the cap", () => {
    let s = subscribed(1, 4);
    s = applyMessages(s, [entries(1, 0, 2)]);
    s = applyMessages(s, [entries(1, 2, 3), entries(1, 5, 6)]);
    expect(ids(s)).toEqual(["e7", "e8", "e9", "e10"]);
    expect(s.evicted).toBe(7);
  });

  it("stays at the cap under sustained load", () => {
    let s = subscribed(1, 1000);
    for (let f = 0; f < 50; f++) s = applyMessages(s, [entries(1, f * 100, 100)]);
    expect(s.entries).toHaveLength(1000);
    expect(s.entries[0]?.id).toBe("e4000");
    expect(s.entries[999]?.id).toBe("e4999");
    expect(s.evicted).toBe(4000);
  });
});

describe("feed store: counts and lost", () => {
  it("reports kept vs matched from the hub's stats", () => {
    let s = subscribed(3, 2);
    s = applyMessages(s, [entries(3, 0, 5)]);
    s = applyMessages(s, [{ type: "stats", sub: 3, seen: 900, matched: 40, lag_ms: 12, paused: false }]);
    expect(feedCounts(s)).toEqual({ shown: 2, matched: 40, seen: 900, lost: 0 });
    expect(s.lagMs).toBe(12);
  });

  it("never says fewer matched than received (stats lag behind entries)", () => {
    const s = applyMessages(subscribed(1), [entries(1, 0, 7)]);
    expect(feedCounts(s).matched).toBe(7);
  });

  it("adds up lost counts and keeps the last reason", () => {
    let s = subscribed(1);
    s = applyMessages(s, [{ type: "lost", sub: 1, count: 1200, reason: "slow client: its queue was full" }]);
    s = applyMessages(s, [{ type: "lost", sub: 1, count: 30, reason: "left retention" }]);
    expect(s.lost).toBe(1230);
    expect(feedCounts(s).lost).toBe(1230);
    expect(s.lostReason).toBe("left retention");
  });

  it("records complete and the hub's paused flag", () => {
    let s = subscribed(4);
    s = applyMessages(s, [
      { type: "stats", sub: 4, seen: 1, matched: 1, lag_ms: 0, paused: true },
      { type: "complete", sub: 4, reason: "until" },
    ]);
    expect(s.hubPaused).toBe(true);
    expect(s.complete).toBe("until");
  });
});

describe("feed store: subscription numbers", () => {
  it("ignores every message of an older subscription", () => {
    let s = subscribed(1);
    s = applyMessages(s, [entries(1, 0, 2)]);
    // The user applies a new filter: subscription 2 replaces 1.
    s = beginSubscribe(s, { resume: false });
    expect(s.entries).toHaveLength(0);
    s = applyMessages(s, [
      entries(1, 2, 3), // in flight before the hub saw the new subscribe
      { type: "lost", sub: 1, count: 99, reason: "old" },
      { type: "stats", sub: 1, seen: 5000, matched: 5000, lag_ms: 1, paused: false },
      { type: "subscribed", sub: 2, filter: "status_code >= 500", since: null, until: null, limit: null },
      entries(1, 5, 1), // straggler after the confirmation
      entries(2, 100, 2),
    ]);
    expect(s.sub).toBe(2);
    expect(ids(s)).toEqual(["e100", "e101"]);
    expect(s.lost).toBe(0);
    expect(feedCounts(s).seen).toBe(2);
  });

  it("with two subscribes in flight, adopts only the answer to the last one", () => {
    let s = subscribed(1);
    s = beginSubscribe(s, { resume: false });
    s = beginSubscribe(s, { resume: false });
    s = applyMessages(s, [
      { type: "subscribed", sub: 2, filter: "a", since: null, until: null, limit: null },
      entries(2, 0, 3),
    ]);
    expect(s.sub).toBeNull();
    expect(s.entries).toHaveLength(0);
    s = applyMessages(s, [
      { type: "subscribed", sub: 3, filter: "b", since: null, until: null, limit: null },
      entries(2, 3, 1),
      entries(3, 10, 1),
    ]);
    expect(s.sub).toBe(3);
    expect(ids(s)).toEqual(["e10"]);
  });

  it("an error answers the subscribe: no subscription, the message kept", () => {
    let s = subscribed(1);
    s = beginSubscribe(s, { resume: false });
    s = applyMessages(s, [
      {
        type: "error",
        message: "unknown column 'stauts_code' at 1:1 — did you mean 'status_code'?",
        position: { line: 1, column: 1 },
      },
      entries(1, 0, 2),
    ]);
    expect(s.sub).toBeNull();
    expect(s.pending).toBe(0);
    expect(s.entries).toHaveLength(0);
    expect(s.error).toEqual({
      message: "unknown column 'stauts_code' at 1:1 — did you mean 'status_code'?",
      position: { line: 1, column: 1 },
    });
    // The next good subscription clears it.
    s = beginSubscribe(s, { resume: false });
    s = applyMessages(s, [{ type: "subscribed", sub: 2, filter: "", since: null, until: null, limit: null }]);
    expect(s.error).toBeNull();
    expect(s.sub).toBe(2);
  });

  it("ignores a `subscribed` nobody asked for", () => {
    const s = applyMessages(initialFeedState(), [
      { type: "subscribed", sub: 7, filter: "", since: null, until: null, limit: null },
      entries(7, 0, 1),
    ]);
    expect(s.sub).toBeNull();
    expect(s.entries).toHaveLength(0);
  });

  it("a resumed subscription after a reconnect keeps entries and adds up counters", () => {
    let s = subscribed(5);
    s = applyMessages(s, [
      entries(5, 0, 3),
      { type: "stats", sub: 5, seen: 100, matched: 3, lag_ms: 0, paused: false },
      { type: "lost", sub: 5, count: 4, reason: "slow" },
    ]);
    s = connectionReset(s);
    s = beginSubscribe(s, { resume: true });
    // The new connection numbers from 1 again.
    s = applyMessages(s, [
      { type: "subscribed", sub: 1, filter: "", since: null, until: null, limit: null },
      entries(1, 3, 2),
      { type: "stats", sub: 1, seen: 50, matched: 2, lag_ms: 0, paused: false },
    ]);
    expect(ids(s)).toEqual(["e0", "e1", "e2", "e3", "e4"]);
    expect(feedCounts(s)).toEqual({ shown: 5, matched: 5, seen: 150, lost: 4 });
    expect(s.lastCursor).toBe("100.4");
  });
});

describe("feed store: selection", () => {
  it("moves with j/k, clamped to the feed", () => {
    let s = applyMessages(subscribed(1), [entries(1, 0, 3)]);
    s = moveSelection(s, 1);
    expect(s.selectedId).toBe("e0");
    s = moveSelection(s, 1);
    s = moveSelection(s, 1);
    s = moveSelection(s, 1);
    expect(s.selectedId).toBe("e2");
    s = moveSelection(s, -1);
    expect(s.selectedId).toBe("e1");
  });

  it("k with no selection starts from the newest row", () => {
    const s = moveSelection(applyMessages(subscribed(1), [entries(1, 0, 3)]), -1);
    expect(s.selectedId).toBe("e2");
  });

  it("keeps the selected id across batches and when the cap drops other rows", () => {
    let s = applyMessages(subscribed(1, 3), [entries(1, 0, 3)]);
    s = select(s, "e2");
    s = applyMessages(s, [entries(1, 3, 2)]);
    expect(s.selectedId).toBe("e2");
    expect(moveSelection(s, -1).selectedId).toBe("e2"); // e2 is now the first row
  });
});
