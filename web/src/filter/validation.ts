// Validation as you type: the filter is sent to POST /api/validate once typing pauses;
// answers to older texts are dropped, so a slow answer never paints the box with a stale
// verdict.

import { VALIDATE_DEBOUNCE_MS } from "../config";
import type { Position, ValidateResponse } from "../types";

export type ValidationState =
  | { status: "empty" }
  | { status: "pending" }
  | { status: "ok" }
  | { status: "invalid"; message: string; position: Position | null }
  /** The hub could not say (unreachable, 401…): neither green nor red. */
  | { status: "unknown"; message: string };

export type ValidateFn = (filter: string, signal: AbortSignal) => Promise<ValidateResponse>;

const CACHE_SIZE = 64;

export class FilterValidator {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inflight: AbortController | null = null;
  private seq = 0;
  private readonly cache = new Map<string, ValidationState>();

  constructor(
    private readonly validate: ValidateFn,
    private readonly onChange: (state: ValidationState, text: string) => void,
    private readonly delayMs: number = VALIDATE_DEBOUNCE_MS,
  ) {}

  /** The text changed. */
  update(text: string): void {
    this.cancel();
    const seq = ++this.seq;
    // Validated as typed (not trimmed), so the hub's error position matches the box.
    const f = text;
    if (f.trim() === "") {
      this.onChange({ status: "empty" }, text);
      return;
    }
    const cached = this.cache.get(f);
    if (cached) {
      this.onChange(cached, text);
      return;
    }
    this.onChange({ status: "pending" }, text);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run(f, seq);
    }, this.delayMs);
  }

  dispose(): void {
    this.cancel();
    this.seq++;
  }

  private async run(f: string, seq: number): Promise<void> {
    const ctrl = new AbortController();
    this.inflight = ctrl;
    let state: ValidationState;
    try {
      const res = await this.validate(f, ctrl.signal);
      state = res.ok
        ? { status: "ok" }
        : { status: "invalid", message: res.message, position: res.position ?? null };
      this.remember(f, state);
    } catch (e) {
      if (ctrl.signal.aborted) return;
      state = { status: "unknown", message: e instanceof Error ? e.message : String(e) };
    }
    if (seq !== this.seq) return;
    if (this.inflight === ctrl) this.inflight = null;
    this.onChange(state, f);
  }

  private remember(f: string, state: ValidationState): void {
    if (this.cache.size >= CACHE_SIZE) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(f, state);
  }

  private cancel(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.inflight) {
      this.inflight.abort();
      this.inflight = null;
    }
  }
}

/** Offset in `text` of a 1-based line/column position, clamped to the text. */
export function positionOffset(text: string, pos: Position): number {
  let offset = 0;
  let line = 1;
  while (line < pos.line) {
    const nl = text.indexOf("\n", offset);
    if (nl < 0) break;
    offset = nl + 1;
    line++;
  }
  return Math.min(text.length, Math.max(0, offset + pos.column - 1));
}
