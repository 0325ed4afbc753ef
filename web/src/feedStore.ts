// The live feed as a pure state machine: hub messages in, a new state out. No DOM, no
// timers, no sockets (the FeedController in feed.ts owns those), so every rule here is
// unit-tested directly.
//
// Subscriptions: every `subscribe` sent is answered by exactly one `subscribed` or one
// `error`, in order. The client cannot know the number the hub will give a subscription,
// so it counts the subscribes it has in flight and adopts the number of the `subscribed`
// that answers the last one. Until then, and afterwards for any other number, messages
// about subscriptions are ignored: they belong to a subscription the user has replaced.

import { MAX_FEED_ENTRIES } from "./config";
import type { EntrySummary, Position, ServerMessage } from "./types";

export interface FeedError {
  message: string;
  position: Position | null;
}

export interface FeedState {
  readonly entries: readonly EntrySummary[];
  readonly cap: number;
  /** The subscription whose messages are applied; null while none is confirmed. */
  readonly sub: number | null;
  /** Subscribes sent on this connection and not yet answered. */
  readonly pending: number;
  /** Highest `subscribed` number seen on this connection (numbers only grow). */
  readonly lastSub: number;
  /** Entries received for the current view (all segments, see `beginSubscribe`). */
  readonly received: number;
  /** Entries dropped from the front by the cap. The feed uses it to keep the rows under
   * the user's eyes still while older ones leave. */
  readonly evicted: number;
  /** Entries the hub reported as not delivered (`lost`), and its last reason. */
  readonly lost: number;
  readonly lostReason: string | null;
  /** `stats` of the running segment, and totals of the earlier segments of this view
   * (a reconnect starts a new subscription whose counters start from zero). */
  readonly segSeen: number;
  readonly segMatched: number;
  readonly baseSeen: number;
  readonly baseMatched: number;
  readonly lagMs: number | null;
  readonly hubPaused: boolean;
  readonly statsReceived: boolean;
  readonly complete: string | null;
  readonly error: FeedError | null;
  /** Cursor of the newest entry applied: where a resubscription continues from. */
  readonly lastCursor: string | null;
  readonly selectedId: string | null;
}

export function initialFeedState(cap: number = MAX_FEED_ENTRIES): FeedState {
  return {
    entries: [],
    cap,
    sub: null,
    pending: 0,
    lastSub: 0,
    received: 0,
    evicted: 0,
    lost: 0,
    lostReason: null,
    segSeen: 0,
    segMatched: 0,
    baseSeen: 0,
    baseMatched: 0,
    lagMs: null,
    hubPaused: false,
    statsReceived: false,
    complete: null,
    error: null,
    lastCursor: null,
    selectedId: null,
  };
}

/**
 * A subscribe is being sent. `resume: false` starts a new view (new filter or time range):
 * the feed is cleared. `resume: true` continues the same view after a reconnect (with
 * `after` = lastCursor): entries and counters are kept.
 */
export function beginSubscribe(state: FeedState, opts: { resume: boolean }): FeedState {
  if (opts.resume) {
    return {
      ...state,
      sub: null,
      pending: state.pending + 1,
      baseSeen: state.baseSeen + state.segSeen,
      baseMatched: state.baseMatched + state.segMatched,
      segSeen: 0,
      segMatched: 0,
      error: null,
    };
  }
  return {
    ...initialFeedState(state.cap),
    pending: state.pending + 1,
    lastSub: state.lastSub,
  };
}

/** A new connection: the hub numbers subscriptions per connection, and nothing sent on
 * the old one will be answered. */
export function connectionReset(state: FeedState): FeedState {
  return { ...state, sub: null, pending: 0, lastSub: 0 };
}

/** Applies a batch of hub messages (everything that arrived during one frame). Returns the
 * same object when nothing visible changed, so React can skip the render. */
export function applyMessages(state: FeedState, msgs: readonly ServerMessage[]): FeedState {
  if (msgs.length === 0) return state;
  // One private copy per batch, mutated in place; the caller gets a fresh object.
  const s: Mutable<FeedState> = { ...state };
  let changed = false;
  const fresh: EntrySummary[] = [];

  for (const msg of msgs) {
    switch (msg.type) {
      case "subscribed": {
        if (s.pending === 0 || msg.sub <= s.lastSub) break;
        s.pending -= 1;
        s.lastSub = msg.sub;
        if (s.pending === 0) {
          s.sub = msg.sub;
          s.error = null;
        }
        changed = true;
        break;
      }
      case "error": {
        // The hub ends the running subscription on any error.
        s.pending = Math.max(0, s.pending - 1);
        if (s.pending === 0) s.sub = null;
        s.error = { message: msg.message, position: msg.position ?? null };
        changed = true;
        break;
      }
      case "entries": {
        if (s.sub === null || msg.sub !== s.sub || !Array.isArray(msg.entries)) break;
        if (msg.entries.length === 0) break;
        for (const e of msg.entries) fresh.push(e);
        const last = msg.entries[msg.entries.length - 1];
        s.lastCursor = msg.cursor ?? last?.cursor ?? s.lastCursor;
        changed = true;
        break;
      }
      case "lost": {
        if (s.sub === null || msg.sub !== s.sub) break;
        s.lost += msg.count > 0 ? msg.count : 0;
        s.lostReason = msg.reason || s.lostReason;
        changed = true;
        break;
      }
      case "stats": {
        if (s.sub === null || msg.sub !== s.sub) break;
        s.segSeen = msg.seen;
        s.segMatched = msg.matched;
        s.lagMs = msg.lag_ms;
        s.hubPaused = msg.paused;
        s.statsReceived = true;
        changed = true;
        break;
      }
      case "complete": {
        if (s.sub === null || msg.sub !== s.sub) break;
        s.complete = msg.reason || "complete";
        changed = true;
        break;
      }
    }
  }

  if (!changed) return state;
  if (fresh.length > 0) Object.assign(s, appendCapped(s, fresh));
  return s;
}

function appendCapped(
  s: FeedState,
  fresh: EntrySummary[],
): Pick<FeedState, "entries" | "evicted" | "received"> {
  const total = s.entries.length + fresh.length;
  const over = Math.max(0, total - s.cap);
  let entries: EntrySummary[];
  if (over === 0) {
    entries = s.entries.concat(fresh);
  } else if (fresh.length >= s.cap) {
    entries = fresh.slice(fresh.length - s.cap);
  } else {
    entries = s.entries.slice(over).concat(fresh);
  }
  return { entries, evicted: s.evicted + over, received: s.received + fresh.length };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

// ---- derived values ----

export interface FeedCounts {
  /** Entries kept in the browser. */
  shown: number;
  /** Entries that matched the filter since the view began (at least those received). */
  matched: number;
  /** Entries the hub examined since the view began. */
  seen: number;
  lost: number;
}

export function feedCounts(s: FeedState): FeedCounts {
  const matched = Math.max(s.baseMatched + s.segMatched, s.received);
  return {
    shown: s.entries.length,
    matched,
    seen: Math.max(s.baseSeen + s.segSeen, matched),
    lost: s.lost,
  };
}

// ---- selection ----

export function select(s: FeedState, id: string | null): FeedState {
  return s.selectedId === id ? s : { ...s, selectedId: id };
}

export function selectedIndex(s: FeedState): number {
  if (s.selectedId === null) return -1;
  // From the end: the selection is usually near the newest rows.
  for (let i = s.entries.length - 1; i >= 0; i--) {
    if (s.entries[i]?.id === s.selectedId) return i;
  }
  return -1;
}

/** j/k: moves the selection by `delta` rows, clamped to the feed. With no selection (or
 * one the cap has dropped), down starts at the first row and up at the last. */
export function moveSelection(s: FeedState, delta: number): FeedState {
  const n = s.entries.length;
  if (n === 0) return s;
  const i = selectedIndex(s);
  let next: number;
  if (i < 0) next = delta > 0 ? 0 : n - 1;
  else next = Math.min(n - 1, Math.max(0, i + delta));
  return select(s, s.entries[next]?.id ?? null);
}
