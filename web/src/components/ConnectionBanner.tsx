import { useNow } from "../hooks";
import type { ConnState } from "../ws";

export interface ConnectionBannerProps {
  conn: ConnState;
  /** The REST API answered 401. */
  unauthorized: boolean;
  onRetry: () => void;
}

export function ConnectionBanner({ conn, unauthorized, onRetry }: ConnectionBannerProps) {
  const now = useNow(1_000);
  if (unauthorized) {
    return (
      <div className="banner error" role="alert" data-testid="banner">
        The hub requires a token. Open the dashboard through the link the <code>reef</code> CLI prints, or add{" "}
        <code>?token=…</code> to this page's address.
      </div>
    );
  }
  const trouble = conn.status === "waiting" || (conn.status === "connecting" && conn.failures > 0);
  if (!trouble) return null;
  const secs = conn.retryAt ? Math.max(0, Math.ceil((conn.retryAt - now) / 1000)) : 0;
  const what = conn.everOpened ? "Lost the connection to the hub" : `Cannot reach the hub at ${window.location.host}`;
  return (
    <div className="banner error" role="alert" data-testid="banner">
      <span>
        {what}.{" "}
        {conn.status === "waiting"
          ? `Reconnecting in ${secs} s (attempt ${conn.failures + 1}).`
          : "Reconnecting…"}{" "}
        {conn.everOpened && "The feed resumes from the last entry received, nothing skipped."}
      </span>
      {conn.status === "waiting" && (
        <button type="button" className="btn" onClick={onRetry}>
          Retry now
        </button>
      )}
    </div>
  );
}
