// Glue between the hub connection and the pure feed store: it buffers incoming messages
// and applies them at most once per animation frame (a hub sending thousands of entries
// a second must not cause thousands of renders), sends subscribe/pause/resume, and
// resubscribes after a reconnect from the last cursor seen.
//
// React reads it through useSyncExternalStore (getSnapshot / subscribe).

import {
  applyMessages,
  beginSubscribe,
  connectionReset,
  initialFeedState,
  moveSelection,
  select,
  type FeedState,
} from "./feedStore";
import { FEED_MIN_APPLY_INTERVAL_MS } from "./config";
import { HubConnection, type ConnState } from "./ws";
import type { ServerMessage, SubscribeRequest } from "./types";

export interface FeedQuery {
  filter: string;
  since: string | null;
  until: string | null;
}

export interface Scheduler {
  /** Runs `cb` before the next paint. */
  frame: (cb: () => void) => number;
  cancelFrame: (handle: number) => void;
  /** Milliseconds, monotonic. */
  now: () => number;
}

/** rAF does not run in a hidden tab; this fallback still drains the buffer there, so it
 * cannot grow without bound while nobody looks. */
const HIDDEN_FLUSH_MS = 250;

const browserScheduler: Scheduler = {
  frame: (cb) => requestAnimationFrame(() => cb()),
  cancelFrame: (h) => cancelAnimationFrame(h),
  now: () => performance.now(),
};

export interface FeedControllerOptions {
  url: () => string;
  cap?: number;
  scheduler?: Scheduler;
  createSocket?: (url: string) => WebSocket;
}

export interface FeedSnapshot {
  feed: FeedState;
  conn: ConnState;
  /** The user asked the hub to pause. */
  paused: boolean;
  query: FeedQuery | null;
}

export class FeedController {
  private snapshot: FeedSnapshot;
  private queue: ServerMessage[] = [];
  private frameHandle: number | null = null;
  private fallbackTimer: ReturnType<typeof setTimeout> | null = null;
  /** Set while waiting out FEED_MIN_APPLY_INTERVAL_MS before asking for a frame. */
  private waitTimer: ReturnType<typeof setTimeout> | null = null;
  private lastApply = Number.NEGATIVE_INFINITY;
  private readonly listeners = new Set<() => void>();
  private readonly conn: HubConnection;
  private readonly scheduler: Scheduler;

  constructor(opts: FeedControllerOptions) {
    this.scheduler = opts.scheduler ?? browserScheduler;
    this.conn = new HubConnection({
      url: opts.url,
      createSocket: opts.createSocket,
      onMessage: (m) => this.enqueue(m),
      onOpen: () => this.onOpen(),
      onState: (conn) => this.update({ conn }),
    });
    this.snapshot = {
      feed: initialFeedState(opts.cap),
      conn: this.conn.connState,
      paused: false,
      query: null,
    };
  }

  // ---- useSyncExternalStore ----

  getSnapshot = (): FeedSnapshot => this.snapshot;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  // ---- lifecycle ----

  start(): void {
    this.conn.start();
  }

  stop(): void {
    this.conn.stop();
    this.cancelFlush();
    this.queue = [];
  }

  retryNow(): void {
    this.conn.retryNow();
  }

  // ---- commands ----

  /** A new view: clears the feed and subscribes. Sent now if connected, else on open. */
  setQuery(query: FeedQuery): void {
    this.flush();
    this.update({ query, paused: false });
    if (this.conn.isOpen) this.sendSubscribe(false);
    else this.update({ feed: beginFresh(this.snapshot.feed) });
  }

  pause(): void {
    this.update({ paused: true });
    this.conn.send({ type: "pause" });
  }

  resume(): void {
    this.update({ paused: false });
    this.conn.send({ type: "resume" });
  }

  select(id: string | null): void {
    this.flush();
    this.update({ feed: select(this.snapshot.feed, id) });
  }

  moveSelection(delta: number): void {
    this.flush();
    this.update({ feed: moveSelection(this.snapshot.feed, delta) });
  }

  /** Applies whatever is buffered now (also used before any command that reads the state). */
  flush(): void {
    this.cancelFlush();
    if (this.queue.length === 0) return;
    const msgs = this.queue;
    this.queue = [];
    this.lastApply = this.scheduler.now();
    const feed = applyMessages(this.snapshot.feed, msgs);
    if (feed !== this.snapshot.feed) this.update({ feed });
  }

  // ---- internals ----

  private onOpen(): void {
    // Whatever the old connection delivered belongs to the old subscription numbering.
    this.flush();
    this.update({ feed: connectionReset(this.snapshot.feed) });
    const { query, feed } = this.snapshot;
    if (!query) return;
    // A view that has seen entries continues after the last one; a finished one (until/
    // limit reached) has nothing more to ask for.
    if (feed.complete !== null) return;
    this.sendSubscribe(feed.lastCursor !== null);
    if (this.snapshot.paused) this.conn.send({ type: "pause" });
  }

  private sendSubscribe(resume: boolean): void {
    const query = this.snapshot.query;
    if (!query) return;
    const after = resume ? this.snapshot.feed.lastCursor : null;
    const msg: SubscribeRequest = {
      type: "subscribe",
      filter: query.filter,
      // `after` overrides `since` anyway; null makes the resumption explicit.
      since: after ? null : query.since,
      until: query.until,
      limit: null,
      after,
    };
    if (this.conn.send(msg)) {
      this.update({ feed: beginSubscribe(this.snapshot.feed, { resume: after !== null }) });
    }
  }

  private enqueue(msg: ServerMessage): void {
    this.queue.push(msg);
    this.scheduleFrame();
    if (this.fallbackTimer === null) {
      this.fallbackTimer = setTimeout(() => {
        this.fallbackTimer = null;
        this.flush();
      }, HIDDEN_FLUSH_MS);
    }
  }

  private scheduleFrame(): void {
    if (this.frameHandle !== null || this.waitTimer !== null) return;
    const wait = FEED_MIN_APPLY_INTERVAL_MS - (this.scheduler.now() - this.lastApply);
    if (wait > 0) {
      // Too soon after the last apply: sleep until it is time rather than ask for frames
      // that would only ask for the next one (messages keep queueing meanwhile).
      this.waitTimer = setTimeout(() => {
        this.waitTimer = null;
        this.scheduleFrame();
      }, wait);
      return;
    }
    this.frameHandle = this.scheduler.frame(() => {
      this.frameHandle = null;
      this.flush();
    });
  }

  private cancelFlush(): void {
    if (this.frameHandle !== null) {
      this.scheduler.cancelFrame(this.frameHandle);
      this.frameHandle = null;
    }
    if (this.fallbackTimer !== null) {
      clearTimeout(this.fallbackTimer);
      this.fallbackTimer = null;
    }
    if (this.waitTimer !== null) {
      clearTimeout(this.waitTimer);
      this.waitTimer = null;
    }
  }

  private update(patch: Partial<FeedSnapshot>): void {
    this.snapshot = { ...this.snapshot, ...patch };
    for (const l of this.listeners) l();
  }
}

/** A new view chosen while disconnected: cleared now, subscribed on open. */
function beginFresh(feed: FeedState): FeedState {
  return { ...initialFeedState(feed.cap), lastSub: feed.lastSub };
}
