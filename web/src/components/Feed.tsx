// The live feed: a virtual list with fixed-height rows, so only the visible rows (plus a
// margin) are in the DOM whatever the number of entries kept.
//
// It follows the newest entry while scrolled to the bottom. Scrolled up (or after
// selecting a row) it holds still: rows dropped at the top by the cap are compensated so
// the rows under the reader's eyes do not move.

import { memo, useCallback, useEffect, useLayoutEffect, useRef, useState, type ReactNode } from "react";
import { FEED_OVERSCAN_ROWS, FEED_ROW_HEIGHT } from "../config";
import {
  endpointName,
  entryNamespace,
  entryTarget,
  formatClock,
  formatLatency,
  statusClass,
  statusText,
} from "../format";
import type { EntrySummary } from "../types";
import { ProtocolBadge } from "./ProtocolBadge";

export interface FeedProps {
  entries: readonly EntrySummary[];
  /** Rows dropped at the top so far (FeedState.evicted). */
  evicted: number;
  /** Entries received so far (FeedState.received), to count the ones below the view. */
  received: number;
  selectedId: string | null;
  onRowClick: (id: string) => void;
  empty: ReactNode;
}

/** Visible window of rows, from a scroll position: pure, for the list and its tests. */
export function visibleRange(
  scrollTop: number,
  height: number,
  count: number,
  rowHeight: number = FEED_ROW_HEIGHT,
  overscan: number = FEED_OVERSCAN_ROWS,
): { start: number; end: number } {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const visible = Math.ceil(Math.max(0, height) / rowHeight) + 1;
  return {
    start: Math.max(0, first - overscan),
    end: Math.min(count, first + visible + overscan),
  };
}

export function Feed({ entries, evicted, received, selectedId, onRowClick, empty }: FeedProps) {
  const scroller = useRef<HTMLDivElement | null>(null);
  // The viewport height, from a ResizeObserver: reading clientHeight on every batch would
  // force a synchronous layout per frame.
  const [height, setHeight] = useState(800);
  const [follow, setFollowState] = useState(true);
  // Where the user left the scrollbar, and how many rows had been dropped then: the
  // scroll position is derived from both, so rows dropped since are compensated in the
  // same render, with no second pass.
  const [user, setUser] = useState({ top: 0, evicted: 0 });
  const receivedAtUnfollow = useRef(0);
  const lastSelected = useRef<string | null>(selectedId);
  const lastEvicted = useRef(evicted);
  // The last scrollTop set by code: its scroll event is not the user scrolling away.
  const programmaticTop = useRef<number | null>(null);

  const total = entries.length * FEED_ROW_HEIGHT;
  const maxTop = Math.max(0, total - height);
  const top = follow ? maxTop : Math.min(maxTop, Math.max(0, user.top - (evicted - user.evicted) * FEED_ROW_HEIGHT));

  const setFollow = useCallback(
    (f: boolean) => {
      if (!f) receivedAtUnfollow.current = received;
      setFollowState(f);
    },
    [received],
  );

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    setHeight(el.clientHeight || 800);
    if (typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // A reset store (new filter or range): follow again.
  useLayoutEffect(() => {
    if (evicted < lastEvicted.current || entries.length === 0) setFollowState(true);
    lastEvicted.current = evicted;
  }, [evicted, entries.length]);

  // Put the scrollbar where this render placed the rows. Written, never read back here.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el || programmaticTop.current === top) return;
    programmaticTop.current = top;
    el.scrollTop = top;
  });

  // Keyboard selection: bring the row into view and stop following.
  useLayoutEffect(() => {
    if (selectedId === lastSelected.current) return;
    lastSelected.current = selectedId;
    if (selectedId === null) return;
    let idx = -1;
    for (let i = entries.length - 1; i >= 0; i--) {
      if (entries[i]?.id === selectedId) {
        idx = i;
        break;
      }
    }
    if (idx < 0) return;
    const rowTop = idx * FEED_ROW_HEIGHT;
    let next = top;
    if (rowTop < top) next = rowTop;
    else if (rowTop + FEED_ROW_HEIGHT > top + height) next = rowTop + FEED_ROW_HEIGHT - height;
    setFollow(false);
    setUser({ top: next, evicted });
  }, [selectedId, entries, evicted, top, height, setFollow]);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    const now = el.scrollTop;
    const expected = programmaticTop.current;
    if (expected !== null && Math.abs(now - expected) < 2) return;
    programmaticTop.current = null;
    setUser({ top: now, evicted });
    const atBottom = now + el.clientHeight >= el.scrollHeight - FEED_ROW_HEIGHT;
    if (atBottom !== follow) setFollow(atBottom);
  };

  const jumpToLatest = () => setFollowState(true);

  const { start, end } = visibleRange(top, height, entries.length);
  const rows: ReactNode[] = [];
  for (let i = start; i < end; i++) {
    const e = entries[i];
    if (!e) continue;
    rows.push(<FeedRow key={e.id} entry={e} top={i * FEED_ROW_HEIGHT} selected={e.id === selectedId} onClick={onRowClick} />);
  }
  const below = follow ? 0 : Math.max(0, received - receivedAtUnfollow.current);

  return (
    <div className="feed" role="grid" aria-rowcount={entries.length}>
      <div className="feed-row feed-head" role="row">
        <span role="columnheader">Time</span>
        <span role="columnheader">Protocol</span>
        <span role="columnheader">Method</span>
        <span role="columnheader">Path / summary</span>
        <span role="columnheader" className="num">
          Status
        </span>
        <span role="columnheader" className="num">
          Latency
        </span>
        <span role="columnheader">Source → Destination</span>
        <span role="columnheader">Namespace</span>
      </div>
      <div className="feed-scroll" ref={scroller} onScroll={onScroll} data-testid="feed-scroll">
        {entries.length === 0 ? (
          <div className="feed-empty">{empty}</div>
        ) : (
          <div className="feed-canvas" style={{ height: entries.length * FEED_ROW_HEIGHT }}>
            {rows}
          </div>
        )}
      </div>
      {!follow && entries.length > 0 && (
        <button type="button" className="jump-latest" onClick={jumpToLatest}>
          ↓ Follow latest{below > 0 ? ` (${below} new)` : ""}
        </button>
      )}
    </div>
  );
}

interface FeedRowProps {
  entry: EntrySummary;
  top: number;
  selected: boolean;
  onClick: (id: string) => void;
}

const FeedRow = memo(function FeedRow({ entry: e, top, selected, onClick }: FeedRowProps) {
  const target = entryTarget(e);
  const src = endpointName(e, "src");
  const dst = endpointName(e, "dst");
  const sc = statusClass(e.protocol, e.status_code);
  return (
    <div
      data-testid="entry-row"
      data-id={e.id}
      role="row"
      aria-selected={selected}
      className={`feed-row entry-row${selected ? " selected" : ""}${e.incomplete ? " incomplete" : ""}`}
      style={{ transform: `translateY(${top}px)` }}
      onClick={() => onClick(e.id)}
    >
      <span className="c-time" title={new Date(e.timestamp / 1e6).toISOString()}>
        {formatClock(e.timestamp)}
      </span>
      <span className="c-proto">
        <ProtocolBadge protocol={e.protocol} />
      </span>
      <span className="c-method" title={e.method ?? ""}>
        {e.method ?? ""}
      </span>
      <span className="c-path" title={e.summary && e.summary !== target ? `${target}\n${e.summary}` : target}>
        {target}
      </span>
      <span className={`c-status num status-${sc}`}>{statusText(e)}</span>
      <span className={`c-latency num${(e.elapsed_time ?? 0) >= 1_000_000 ? " slow" : ""}`}>
        {formatLatency(e.elapsed_time)}
      </span>
      <span className="c-peers" title={`${src} → ${dst}`}>
        <span className="peer">{src}</span>
        <span className="arrow">→</span>
        <span className="peer">{dst}</span>
      </span>
      <span className="c-ns" title={entryNamespace(e)}>
        {entryNamespace(e)}
      </span>
    </div>
  );
});
