// REST client for the hub (schemas/hub-api.md, "REST"). Same origin, relative URLs.

import { authHeaders } from "./auth";
import type {
  Entry,
  SchemaResponse,
  ServiceMapResponse,
  StatsResponse,
  ValidateResponse,
} from "./types";

/** A failed call. `status` 0 means the hub could not be reached at all. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }

  get unauthorized(): boolean {
    return this.status === 401;
  }

  get unreachable(): boolean {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      ...init,
      headers: { Accept: "application/json", ...authHeaders(), ...(init.headers ?? {}) },
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, "the hub is unreachable");
  }
  if (!res.ok) {
    // The hub answers bad input with {"error": "…"}; a proxy in between may not.
    let message = `${res.status} ${res.statusText}`.trim();
    try {
      const body: unknown = await res.json();
      if (body && typeof body === "object" && "error" in body && typeof body.error === "string") {
        message = body.error;
      }
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(res.status, message);
  }
  return (await res.json()) as T;
}

function postJson<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  return request<T>(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
}

export function fetchEntry(id: string, cursor: string | undefined, signal?: AbortSignal): Promise<Entry> {
  const qs = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
  return request<Entry>(`/api/entries/${encodeURIComponent(id)}${qs}`, { signal });
}

export function fetchSchema(signal?: AbortSignal): Promise<SchemaResponse> {
  return request<SchemaResponse>("/api/schema", { signal });
}

export function validateFilter(filter: string, signal?: AbortSignal): Promise<ValidateResponse> {
  return postJson<ValidateResponse>("/api/validate", { filter }, signal);
}

/** The service map of what `filter` selects, stored between `since` and `until` (as a
 * subscription's: `-15m`, RFC 3339; null for no bound). */
export function fetchServiceMap(
  filter: string,
  since: string | null,
  until: string | null,
  signal?: AbortSignal,
): Promise<ServiceMapResponse> {
  const q = new URLSearchParams({ filter });
  if (since) q.set("since", since);
  if (until) q.set("until", until);
  return request<ServiceMapResponse>(`/api/servicemap?${q.toString()}`, { signal });
}

export function fetchStats(signal?: AbortSignal): Promise<StatsResponse> {
  return request<StatsResponse>("/api/stats", { signal });
}
