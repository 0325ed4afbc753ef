// The hub's token (`reef hub --token T`). It arrives once in the page URL (`?token=T`,
// the link `reef proxy` prints) and is kept in sessionStorage so reloads and in-app URL
// rewrites keep working. It is removed from the address bar so that a shared link
// (`?q=…&range=…`) does not carry the credential along.

const STORAGE_KEY = "reef.token";

let cached: string | null | undefined;

/** Reads `?token=` from the page URL into sessionStorage and strips it from the URL. */
export function initToken(loc: Location = window.location, hist: History = window.history): void {
  const params = new URLSearchParams(loc.search);
  const fromUrl = params.get("token");
  if (fromUrl) {
    cached = fromUrl;
    try {
      sessionStorage.setItem(STORAGE_KEY, fromUrl);
    } catch {
      // Storage disabled (privacy mode): the in-memory copy still serves this page.
    }
    params.delete("token");
    const qs = params.toString();
    hist.replaceState(hist.state, "", `${loc.pathname}${qs ? `?${qs}` : ""}${loc.hash}`);
  }
}

export function getToken(): string | null {
  if (cached !== undefined) return cached;
  try {
    cached = sessionStorage.getItem(STORAGE_KEY);
  } catch {
    cached = null;
  }
  return cached;
}

/** For tests. */
export function resetTokenCache(): void {
  cached = undefined;
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** ws(s)://<host>/ws, with `?token=` since a browser WebSocket cannot send headers. */
export function wsUrl(loc: Location = window.location): string {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  const token = getToken();
  return `${scheme}//${loc.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ""}`;
}
