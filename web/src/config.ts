// Every limit of the dashboard, in one place. The README lists them.

/** Entries kept in the browser; the oldest are dropped past it. 20 000 summaries is
 * ~20–40 MB of JS objects: enough to scroll back through a burst without the tab bloating. */
export const MAX_FEED_ENTRIES = 20_000;

/** Incoming entries are applied at most once per animation frame, and at most this
 * often: at thousands of entries a second nobody reads rows scrolling at 60 Hz, while
 * each re-render and re-layout of the list costs the same whatever it shows. */
export const FEED_MIN_APPLY_INTERVAL_MS = 50;

/** Height of a feed row in CSS pixels. Fixed, so the virtual list can place rows by index. */
export const FEED_ROW_HEIGHT = 26;

/** Rows rendered above and below the visible ones, so fast scrolling shows no blank gaps. */
export const FEED_OVERSCAN_ROWS = 12;

/** Delay between the last keystroke and POST /api/validate. */
export const VALIDATE_DEBOUNCE_MS = 250;

/** Recent filters remembered in localStorage. */
export const MAX_RECENT_FILTERS = 15;

/** Suggestions shown by the filter autocomplete. */
export const MAX_SUGGESTIONS = 12;

/** GET /api/stats period. */
export const STATS_POLL_MS = 2_000;

/** GET /api/servicemap period while the map is visible. */
export const SERVICE_MAP_POLL_MS = 4_000;

/** GET /api/schema is refreshed at most this often (values change with the window). */
export const SCHEMA_REFRESH_MS = 30_000;

/** WebSocket reconnect: first delay, doubling up to the cap. */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_MAX_MS = 10_000;

/** Bodies larger than this are shown cut (the rest is a click away), so a 1 MB JSON body
 * does not freeze the detail pane. */
export const MAX_BODY_RENDER_BYTES = 256 * 1024;

/** Binary bodies: bytes shown in the hex dump. */
export const MAX_HEXDUMP_BYTES = 16 * 1024;

/** Time range used by "live": history shown on subscribe before following live. */
export const LIVE_SINCE = "-15m";
