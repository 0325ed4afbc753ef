// The WebSocket to the hub: one connection, reconnected with exponential backoff.
// It knows nothing of subscriptions; the feed controller resubscribes in `onOpen`
// (with `after` = the last cursor seen, so nothing is lost or repeated).

import { RECONNECT_BASE_MS, RECONNECT_MAX_MS } from "./config";
import type { ClientMessage, ServerMessage } from "./types";

export type ConnStatus = "idle" | "connecting" | "open" | "waiting";

export interface ConnState {
  status: ConnStatus;
  /** Failed attempts in a row (0 once a connection has delivered a message). */
  failures: number;
  /** When the next attempt starts (ms since epoch), while `waiting`. */
  retryAt: number | null;
  /** Has any connection ever opened? Distinguishes "starting" from "lost the hub". */
  everOpened: boolean;
}

/** The delay before reconnect attempt `failures` (1-based): doubling from
 * RECONNECT_BASE_MS, capped at RECONNECT_MAX_MS, with up to 25 % jitter downwards so that
 * every dashboard does not hit a restarted hub in the same millisecond. */
export function backoffDelay(failures: number, random: () => number = Math.random): number {
  const exp = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** Math.max(0, failures - 1));
  return Math.round(exp * (0.75 + 0.25 * random()));
}

// WebSocket.OPEN, spelled out so a test double need not subclass WebSocket.
const SOCKET_OPEN = 1;

const KNOWN_TYPES = new Set(["subscribed", "entries", "error", "lost", "stats", "complete"]);

/** Parses one hub message; null for anything that is not a known message. */
export function parseServerMessage(data: unknown): ServerMessage | null {
  if (typeof data !== "string") return null;
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (!v || typeof v !== "object" || !("type" in v) || typeof v.type !== "string") return null;
  if (!KNOWN_TYPES.has(v.type)) return null;
  return v as ServerMessage;
}

export interface HubConnectionOptions {
  url: () => string;
  onMessage: (msg: ServerMessage) => void;
  /** A connection opened: (re)subscribe here. */
  onOpen: () => void;
  onState: (state: ConnState) => void;
  createSocket?: (url: string) => WebSocket;
  now?: () => number;
}

export class HubConnection {
  private socket: WebSocket | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = true;
  private state: ConnState = { status: "idle", failures: 0, retryAt: null, everOpened: false };
  private readonly createSocket: (url: string) => WebSocket;
  private readonly now: () => number;

  constructor(private readonly opts: HubConnectionOptions) {
    this.createSocket = opts.createSocket ?? ((url) => new WebSocket(url));
    this.now = opts.now ?? Date.now;
  }

  get connState(): ConnState {
    return this.state;
  }

  get isOpen(): boolean {
    return this.socket !== null && this.socket.readyState === SOCKET_OPEN && this.state.status === "open";
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimer();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onopen = s.onmessage = s.onclose = s.onerror = null;
      s.close();
    }
    this.setState({ status: "idle", retryAt: null });
  }

  /** Skips the remaining backoff ("Retry now"). */
  retryNow(): void {
    if (this.stopped || this.state.status !== "waiting") return;
    this.clearTimer();
    this.connect();
  }

  /** Sends when open; returns false otherwise (the caller resends from `onOpen`). */
  send(msg: ClientMessage): boolean {
    if (!this.isOpen || !this.socket) return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }

  private connect(): void {
    this.setState({ status: "connecting", retryAt: null });
    let socket: WebSocket;
    try {
      socket = this.createSocket(this.opts.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    let delivered = false;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.setState({ status: "open", retryAt: null, everOpened: true });
      this.opts.onOpen();
    };
    socket.onmessage = (ev: MessageEvent) => {
      if (this.socket !== socket) return;
      if (!delivered) {
        // Reset the backoff only once the hub talks: a hub that accepts and drops at
        // once (crash loop, auth failure) must not be hammered at the base delay.
        delivered = true;
        if (this.state.failures !== 0) this.setState({ failures: 0 });
      }
      const msg = parseServerMessage(ev.data);
      if (msg) this.opts.onMessage(msg);
    };
    socket.onerror = () => {
      // Always followed by `close`, which reconnects.
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (!this.stopped) this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    const failures = this.state.failures + 1;
    const delay = backoffDelay(failures);
    this.setState({ status: "waiting", failures, retryAt: this.now() + delay });
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private setState(patch: Partial<ConnState>): void {
    this.state = { ...this.state, ...patch };
    this.opts.onState(this.state);
  }
}
