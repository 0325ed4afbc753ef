import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { ApiError, fetchSchema, fetchStats } from "./api";
import { wsUrl } from "./auth";
import { ConnectionBanner } from "./components/ConnectionBanner";
import { EntryDetail, type DetailTarget } from "./components/EntryDetail";
import { Feed } from "./components/Feed";
import { FilterBox } from "./components/FilterBox";
import { ServiceMap } from "./components/ServiceMap";
import { StatsBar } from "./components/StatsBar";
import { TimeRangePicker } from "./components/TimeRangePicker";
import { MAX_FEED_ENTRIES, SCHEMA_REFRESH_MS, STATS_POLL_MS } from "./config";
import { emptyMessage, type EmptyMessage } from "./emptyState";
import { FeedController } from "./feed";
import { feedCounts, selectedIndex } from "./feedStore";
import { appendCondition } from "./filter/expr";
import { formatCount } from "./format";
import { usePoll } from "./hooks";
import { rangeToSubscription, type TimeRange } from "./timeRange";
import type { ColumnValue, SchemaColumn } from "./types";
import { readUrlState, writeUrlState, type View } from "./urlState";

export function App() {
  const initial = useMemo(() => readUrlState(), []);
  const [draft, setDraft] = useState(initial.filter);
  const [applied, setApplied] = useState(initial.filter);
  const [range, setRange] = useState<TimeRange>(initial.range);
  const [view, setView] = useState<View>(initial.view);
  const [epoch, setEpoch] = useState(0);
  const [mapOpened, setMapOpened] = useState(initial.view === "map");
  useEffect(() => {
    if (view === "map") setMapOpened(true);
  }, [view]);
  const [detail, setDetail] = useState<DetailTarget | null>(null);
  const [columns, setColumns] = useState<SchemaColumn[]>([]);
  const schemaAt = useRef(0);
  const filterRef = useRef<HTMLInputElement | null>(null);

  const controller = useMemo(() => new FeedController({ url: () => wsUrl(), cap: MAX_FEED_ENTRIES }), []);
  const snap = useSyncExternalStore(controller.subscribe, controller.getSnapshot);
  const { feed, conn } = snap;

  useEffect(() => {
    controller.start();
    return () => controller.stop();
  }, [controller]);

  useEffect(() => {
    controller.setQuery({ filter: applied, ...rangeToSubscription(range) });
  }, [controller, applied, range, epoch]);

  useEffect(() => writeUrlState({ filter: applied, range, view }), [applied, range, view]);

  const stats = usePoll(fetchStats, STATS_POLL_MS);
  const unauthorized = stats.error instanceof ApiError && stats.error.unauthorized;

  const refreshSchema = useCallback(() => {
    if (Date.now() - schemaAt.current < SCHEMA_REFRESH_MS) return;
    schemaAt.current = Date.now();
    fetchSchema().then(
      (s) => setColumns(Array.isArray(s.columns) ? s.columns : []),
      () => {
        schemaAt.current = 0; // retry on the next focus
      },
    );
  }, []);
  useEffect(() => refreshSchema(), [refreshSchema]);

  const applyFilter = useCallback((f: string) => {
    setDraft(f);
    setApplied(f);
    setEpoch((e) => e + 1);
  }, []);

  const addFilter = useCallback((column: string, value: ColumnValue) => {
    setDraft((d) => appendCondition(d, column, value));
  }, []);

  const openRow = useCallback(
    (id: string) => {
      controller.select(id);
      const f = controller.getSnapshot().feed;
      const e = f.entries[selectedIndex(f)];
      if (e) setDetail({ id: e.id, cursor: e.cursor, summary: e });
    },
    [controller],
  );

  // Keyboard: j/k move, Enter opens, Esc closes, / focuses the filter.
  const detailOpen = detail !== null;
  useEffect(() => {
    const onKey = (ev: KeyboardEvent) => {
      if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const t = ev.target as HTMLElement | null;
      const typing = !!t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
      if (typing) return;
      switch (ev.key) {
        case "/":
          ev.preventDefault();
          filterRef.current?.focus();
          filterRef.current?.select();
          break;
        case "j":
        case "k": {
          if (view !== "feed") return;
          ev.preventDefault();
          controller.moveSelection(ev.key === "j" ? 1 : -1);
          if (detailOpen) {
            const f = controller.getSnapshot().feed;
            const e = f.entries[selectedIndex(f)];
            if (e) setDetail({ id: e.id, cursor: e.cursor, summary: e });
          }
          break;
        }
        case "Enter": {
          if (view !== "feed" || t?.tagName === "BUTTON" || t?.tagName === "A") return;
          const f = controller.getSnapshot().feed;
          const e = f.entries[selectedIndex(f)];
          if (e) {
            ev.preventDefault();
            setDetail({ id: e.id, cursor: e.cursor, summary: e });
          }
          break;
        }
        case "Escape":
          if (detailOpen) {
            ev.preventDefault();
            setDetail(null);
          }
          break;
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [controller, detailOpen, view]);

  const counts = feedCounts(feed);
  const live = range.kind === "live" || (range.kind === "custom" && range.to === null);
  const empty = emptyMessage({ feed, conn, stats: stats.data, filter: applied, live });

  return (
    <div className="app">
      <header className="topbar">
        <div className="brand" title="Reef: Kubernetes API traffic">
          <span className="logo" aria-hidden>
            ◉
          </span>{" "}
          reef
        </div>
        <nav className="tabs" role="tablist">
          <button type="button" role="tab" aria-selected={view === "feed"} className={view === "feed" ? "on" : ""} onClick={() => setView("feed")}>
            Feed
          </button>
          <button type="button" role="tab" aria-selected={view === "map"} className={view === "map" ? "on" : ""} onClick={() => setView("map")} data-testid="tab-map">
            Service map
          </button>
        </nav>
        <StatsBar stats={stats.data} error={stats.error} />
      </header>

      <ConnectionBanner conn={conn} unauthorized={unauthorized} onRetry={() => controller.retryNow()} />

      <div className="controls">
        <FilterBox
          value={draft}
          onChange={setDraft}
          applied={applied}
          onApply={applyFilter}
          columns={columns}
          serverError={feed.error}
          inputRef={filterRef}
          onFocus={refreshSchema}
        />
        <TimeRangePicker value={range} onChange={(r) => { setRange(r); setEpoch((e) => e + 1); }} />
      </div>

      <div className="feed-toolbar">
        {snap.paused ? (
          <button type="button" className="btn primary" onClick={() => controller.resume()} data-testid="resume-button" title="Go on from where the feed paused: nothing is skipped">
            ▶ Resume
          </button>
        ) : (
          <button
            type="button"
            className="btn"
            onClick={() => controller.pause()}
            data-testid="pause-button"
            disabled={feed.complete !== null}
            title="Stop reading; the hub keeps the position"
          >
            ❚❚ Pause
          </button>
        )}
        <span className="count" data-testid="feed-count" title={`${counts.shown} kept in the browser (at most ${MAX_FEED_ENTRIES}) of ${counts.matched} matching entries; the hub examined ${counts.seen}`}>
          {counts.shown.toLocaleString()} of {counts.matched.toLocaleString()} shown
        </span>
        <span className="muted">seen {formatCount(counts.seen)}</span>
        <span className={`lost${counts.lost > 0 ? " has-lost" : ""}`} data-testid="lost-count" title={feed.lostReason ?? "Entries the hub could not deliver to this page"}>
          {counts.lost.toLocaleString()} lost{counts.lost > 0 && feed.lostReason ? `: ${feed.lostReason}` : ""}
        </span>
        {feed.evicted > 0 && (
          <span className="muted" title="MAX_FEED_ENTRIES: the browser keeps the newest entries only">
            oldest {formatCount(feed.evicted)} dropped (cap {formatCount(MAX_FEED_ENTRIES)})
          </span>
        )}
        {feed.lagMs !== null && feed.lagMs > 2000 && <span className="warn">lag {(feed.lagMs / 1000).toFixed(1)} s</span>}
        {snap.paused && <span className="chip">paused{feed.hubPaused ? "" : "…"}</span>}
        {feed.complete !== null && <span className="chip ok">complete{feed.complete !== "complete" ? ` (${feed.complete})` : ""}</span>}
        <span className="spacer" />
        <span className="muted keys">
          <kbd>j</kbd>/<kbd>k</kbd> move · <kbd>Enter</kbd> open · <kbd>Esc</kbd> close · <kbd>/</kbd> filter
        </span>
      </div>

      <main className={`content${detail && view === "feed" ? " with-detail" : ""}`}>
        {view === "feed" && (
          <>
            <Feed
              entries={feed.entries}
              evicted={feed.evicted}
              received={feed.received}
              selectedId={feed.selectedId}
              onRowClick={openRow}
              empty={<EmptyState msg={empty} />}
            />
            {detail && (
              <EntryDetail key={detail.id} target={detail} onClose={() => setDetail(null)} onAddFilter={addFilter} />
            )}
          </>
        )}
        {/* Kept mounted once opened, so the layout survives a trip to the feed. */}
        {mapOpened && (
          <div className="map-pane" hidden={view !== "map"}>
            <ServiceMap filter={applied} range={range} visible={view === "map"} />
          </div>
        )}
      </main>
    </div>
  );
}

/** `text with `code` spans` → nodes. */
function withCode(text: string) {
  return text.split("`").map((part, i) => (i % 2 === 1 ? <code key={i}>{part}</code> : part));
}

function EmptyState({ msg }: { msg: EmptyMessage | null }) {
  if (!msg) return null;
  return (
    <div className={`empty-state ${msg.kind}`} data-testid="empty-state">
      <div className="empty-title">
        {msg.title}
        {msg.filter !== undefined && (
          <>
            {" "}
            <code>{msg.filter}</code>
          </>
        )}
      </div>
      {msg.detail && <div className="empty-detail">{withCode(msg.detail)}</div>}
    </div>
  );
}
