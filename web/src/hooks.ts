import { useEffect, useRef, useState } from "react";

export interface PollState<T> {
  data: T | null;
  error: Error | null;
  /** When `data` was last refreshed (ms since epoch). */
  at: number | null;
}

/**
 * Calls `load` now and every `periodMs` while `enabled`, one call at a time (a slow hub
 * is not piled onto) and skipping ticks while the tab is hidden. `key` restarts it.
 */
export function usePoll<T>(
  load: (signal: AbortSignal) => Promise<T>,
  periodMs: number,
  enabled: boolean = true,
  key: unknown = null,
): PollState<T> {
  const [state, setState] = useState<PollState<T>>({ data: null, error: null, at: null });
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    if (!enabled) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let ctrl: AbortController | null = null;

    const tick = async () => {
      if (stopped) return;
      if (typeof document !== "undefined" && document.hidden) {
        timer = setTimeout(tick, periodMs);
        return;
      }
      ctrl = new AbortController();
      try {
        const data = await loadRef.current(ctrl.signal);
        if (!stopped) setState({ data, error: null, at: Date.now() });
      } catch (e) {
        if (!stopped && !ctrl.signal.aborted) {
          setState((s) => ({ ...s, error: e instanceof Error ? e : new Error(String(e)) }));
        }
      }
      if (!stopped) timer = setTimeout(tick, periodMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      ctrl?.abort();
    };
  }, [periodMs, enabled, key]);

  return state;
}

/** Re-renders every `ms` (for "x s ago" texts). */
export function useNow(ms: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
