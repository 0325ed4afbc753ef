// The shareable part of the view lives in the page URL: `?q=<filter>&range=<range>&view=map`.

import { formatRange, parseRange, type TimeRange } from "./timeRange";

export type View = "feed" | "map";

export interface UrlState {
  filter: string;
  range: TimeRange;
  view: View;
}

export function readUrlState(search: string = window.location.search): UrlState {
  const p = new URLSearchParams(search);
  return {
    filter: p.get("q") ?? "",
    range: parseRange(p.get("range")),
    view: p.get("view") === "map" ? "map" : "feed",
  };
}

/** The query string for `state`, keeping parameters this module does not own. Defaults
 * are left out so a plain dashboard URL stays plain. */
export function buildSearch(state: UrlState, current: string = window.location.search): string {
  const p = new URLSearchParams(current);
  const setOrDelete = (key: string, value: string, dflt: string) => {
    if (value === dflt) p.delete(key);
    else p.set(key, value);
  };
  setOrDelete("q", state.filter, "");
  setOrDelete("range", formatRange(state.range), "live");
  setOrDelete("view", state.view, "feed");
  const qs = p.toString();
  return qs ? `?${qs}` : "";
}

export function writeUrlState(state: UrlState): void {
  const search = buildSearch(state);
  if (search === window.location.search) return;
  window.history.replaceState(window.history.state, "", `${window.location.pathname}${search}${window.location.hash}`);
}
