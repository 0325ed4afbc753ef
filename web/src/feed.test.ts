import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FEED_MIN_APPLY_INTERVAL_MS } from "./config";
import { FeedController } from "./feed";
import { FakeSocket, fakeSocketFactory, manualScheduler } from "./test/fakeSocket";
import type { EntrySummary } from "./types";

const e = (i: number): EntrySummary => ({
  id: `e${i}`,
  cursor: `7.${i}`,
  timestamp: 1_764_151_200_000_000_000 + i,
  protocol: "http",
  transport: "tcp",
  src_ip: "10.0.0.1",
  dst_ip: "10.0.0.2",
});

function setup() {
  const scheduler = manualScheduler();
  const c = new FeedController({ url: () => "ws://hub/ws", scheduler, createSocket: fakeSocketFactory, cap: 100 });
  let notifications = 0;
  c.subscribe(() => notifications++);
  return { c, scheduler, notified: () => notifications };
}

describe("FeedController", () => {
  beforeEach(() => {
    FakeSocket.reset();
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it("subscribes on open with the query chosen before the connection", () => {
    const { c } = setup();
    c.setQuery({ filter: "status_code >= 500", since: "-15m", until: null });
    c.start();
    FakeSocket.last().open();
    expect(FakeSocket.last().sent).toEqual([
      { type: "subscribe", filter: "status_code >= 500", since: "-15m", until: null, limit: null, after: null },
    ]);
  });

  it("applies what arrives during a frame once, at the frame", () => {
    const { c, scheduler, notified } = setup();
    c.start();
    const s = FakeSocket.last();
    s.open();
    c.setQuery({ filter: "", since: "-15m", until: null });
    s.receive({ type: "subscribed", sub: 1, filter: "", since: null, until: null, limit: null });
    for (let i = 0; i < 50; i++) s.receive({ type: "entries", sub: 1, entries: [e(i)], cursor: `7.${i}` });
    expect(c.getSnapshot().feed.entries).toHaveLength(0);
    expect(scheduler.pendingFrames).toBe(1);
    const before = notified();
    scheduler.runFrame();
    expect(notified() - before).toBe(1);
    expect(c.getSnapshot().feed.entries).toHaveLength(50);
    expect(c.getSnapshot().feed.lastCursor).toBe("7.49");
  });

  it("applies at most every FEED_MIN_APPLY_INTERVAL_MS, however fast frames come", () => {
    const { c, scheduler } = setup();
    c.start();
    const s = FakeSocket.last();
    s.open();
    c.setQuery({ filter: "", since: "-15m", until: null });
    s.receive({ type: "subscribed", sub: 1, filter: "", since: null, until: null, limit: null });
    s.receive({ type: "entries", sub: 1, entries: [e(1)], cursor: "7.1" });
    scheduler.runFrame();
    expect(c.getSnapshot().feed.entries).toHaveLength(1);
    s.receive({ type: "entries", sub: 1, entries: [e(2)], cursor: "7.2" });
    // 16 ms later: too soon; no frame is asked for until the interval has passed.
    vi.advanceTimersByTime(16);
    expect(scheduler.pendingFrames).toBe(0);
    scheduler.runFrame();
    expect(c.getSnapshot().feed.entries).toHaveLength(1);
    vi.advanceTimersByTime(FEED_MIN_APPLY_INTERVAL_MS - 17);
    expect(scheduler.pendingFrames).toBe(0);
    vi.advanceTimersByTime(1);
    expect(scheduler.pendingFrames).toBe(1);
    scheduler.runFrame();
    expect(c.getSnapshot().feed.entries).toHaveLength(2);
  });

  it("drains the buffer without frames too (hidden tab)", () => {
    const { c } = setup();
    c.start();
    const s = FakeSocket.last();
    s.open();
    c.setQuery({ filter: "", since: "-15m", until: null });
    s.receive({ type: "subscribed", sub: 1, filter: "", since: null, until: null, limit: null });
    s.receive({ type: "entries", sub: 1, entries: [e(1)], cursor: "7.1" });
    vi.advanceTimersByTime(300);
    expect(c.getSnapshot().feed.entries).toHaveLength(1);
  });

  it("reconnects with backoff and resubscribes after the last cursor, keeping the feed", () => {
    const { c, scheduler } = setup();
    c.setQuery({ filter: "protocol = 'http'", since: "-5m", until: "2026-11-26T10:00:00.000Z" });
    c.start();
    const s1 = FakeSocket.last();
    s1.open();
    s1.receive({ type: "subscribed", sub: 4, filter: "protocol = 'http'", since: null, until: null, limit: null });
    s1.receive({ type: "entries", sub: 4, entries: [e(1), e(2)], cursor: "7.2" });
    scheduler.runFrame();
    s1.drop();
    expect(c.getSnapshot().conn.status).toBe("waiting");
    expect(c.getSnapshot().conn.everOpened).toBe(true);

    vi.advanceTimersByTime(500);
    expect(FakeSocket.instances).toHaveLength(2);
    const s2 = FakeSocket.last();
    s2.open();
    expect(s2.sent[0]).toEqual({
      type: "subscribe",
      filter: "protocol = 'http'",
      since: null,
      until: "2026-11-26T10:00:00.000Z",
      limit: null,
      after: "7.2",
    });
    // The new connection numbers subscriptions afresh; entries continue the feed.
    s2.receive({ type: "subscribed", sub: 1, filter: "protocol = 'http'", since: null, until: null, limit: null });
    s2.receive({ type: "entries", sub: 1, entries: [e(3)], cursor: "7.3" });
    scheduler.runFrame();
    expect(c.getSnapshot().feed.entries.map((x) => x.id)).toEqual(["e1", "e2", "e3"]);
  });

  it("backs off longer after each failed attempt, up to 10 s", () => {
    const { c } = setup();
    c.start();
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      FakeSocket.last().drop();
      const { retryAt } = c.getSnapshot().conn;
      delays.push((retryAt ?? 0) - Date.now());
      vi.advanceTimersByTime(10_000);
    }
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1]! * 0.75);
    expect(Math.max(...delays)).toBeLessThanOrEqual(10_000);
    expect(delays[6]).toBeGreaterThan(7_000);
  });

  it("sends pause and resume, and pauses again after a reconnect", () => {
    const { c } = setup();
    c.setQuery({ filter: "", since: "-15m", until: null });
    c.start();
    const s1 = FakeSocket.last();
    s1.open();
    c.pause();
    expect(s1.sent.at(-1)).toEqual({ type: "pause" });
    expect(c.getSnapshot().paused).toBe(true);
    s1.drop();
    vi.advanceTimersByTime(1000);
    const s2 = FakeSocket.last();
    s2.open();
    expect(s2.sent.map((m) => (m as { type: string }).type)).toEqual(["subscribe", "pause"]);
    c.resume();
    expect(s2.sent.at(-1)).toEqual({ type: "resume" });
  });

  it("a new query clears the feed and subscribes from `since`", () => {
    const { c, scheduler } = setup();
    c.setQuery({ filter: "", since: "-15m", until: null });
    c.start();
    const s = FakeSocket.last();
    s.open();
    s.receive({ type: "subscribed", sub: 1, filter: "", since: null, until: null, limit: null });
    s.receive({ type: "entries", sub: 1, entries: [e(1)], cursor: "7.1" });
    scheduler.runFrame();
    c.setQuery({ filter: "status_code = 404", since: "-15m", until: null });
    expect(c.getSnapshot().feed.entries).toHaveLength(0);
    expect(s.sent.at(-1)).toEqual({
      type: "subscribe",
      filter: "status_code = 404",
      since: "-15m",
      until: null,
      limit: null,
      after: null,
    });
  });
});
