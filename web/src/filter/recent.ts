// Recent filters, most recent first, kept in localStorage across sessions.

import { MAX_RECENT_FILTERS } from "../config";

export const RECENT_KEY = "reef.recentFilters";

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

export function loadRecent(store: Storage | null = storage()): string[] {
  if (!store) return [];
  try {
    const v: unknown = JSON.parse(store.getItem(RECENT_KEY) ?? "[]");
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string").slice(0, MAX_RECENT_FILTERS) : [];
  } catch {
    return [];
  }
}

/** Remembers `filter` (moved to the front if already there); returns the new list. */
export function pushRecent(filter: string, store: Storage | null = storage()): string[] {
  const f = filter.trim();
  const list = loadRecent(store);
  if (f === "") return list;
  const next = [f, ...list.filter((x) => x !== f)].slice(0, MAX_RECENT_FILTERS);
  try {
    store?.setItem(RECENT_KEY, JSON.stringify(next));
  } catch {
    // Quota or privacy mode: the list still works for this page.
  }
  return next;
}
