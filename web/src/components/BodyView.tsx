import { useMemo, useState, type ReactNode } from "react";
import { bodyLength, headerValue, isBinaryBody, renderBody } from "../body";
import { MAX_BODY_RENDER_BYTES } from "../config";
import { formatBytes } from "../format";
import type { Body } from "../types";

export interface BodyViewProps {
  body: Body;
  headers: Record<string, string> | null | undefined;
  /** Size as transferred (`*_body_size`), when larger than what the hub kept. */
  size: number | null | undefined;
  truncated: boolean;
  label: string;
}

export function BodyView({ body, headers, size, truncated, label }: BodyViewProps) {
  const [mode, setMode] = useState<"auto" | "text">("auto");
  const [full, setFull] = useState(false);
  const contentType = headerValue(headers, "content-type");
  const rendered = useMemo(() => renderBody(body, contentType, mode), [body, contentType, mode]);
  const kept = bodyLength(body);

  if (rendered.kind === "empty") {
    return (
      <div className="body-view empty">
        {size ? `${label}: ${formatBytes(size)} transferred, not kept by the hub.` : `No ${label.toLowerCase()}.`}
      </div>
    );
  }

  const meta = [
    contentType,
    formatBytes(kept),
    size && size > kept ? `of ${formatBytes(size)} transferred` : null,
    truncated ? "cut at the body limit" : null,
    isBinaryBody(body) ? "binary" : null,
  ]
    .filter(Boolean)
    .join(" · ");

  let content: ReactNode;
  switch (rendered.kind) {
    case "form":
      content = (
        <table className="kv-table">
          <tbody>
            {rendered.rows.map(([k, v], i) => (
              <tr key={i}>
                <th>{k}</th>
                <td>{v}</td>
              </tr>
            ))}
          </tbody>
        </table>
      );
      break;
    case "binary":
      content = (
        <>
          <pre className="code hexdump">{rendered.dump}</pre>
          {rendered.shown < rendered.size && (
            <div className="note">
              First {formatBytes(rendered.shown)} of {formatBytes(rendered.size)} shown.
            </div>
          )}
        </>
      );
      break;
    case "json":
    case "text": {
      const cut = !full && rendered.text.length > MAX_BODY_RENDER_BYTES;
      content = (
        <>
          <pre className={`code ${rendered.kind === "json" ? "json" : ""}`}>
            {cut ? rendered.text.slice(0, MAX_BODY_RENDER_BYTES) : rendered.text}
          </pre>
          {cut && (
            <button type="button" className="link-btn" onClick={() => setFull(true)}>
              Show all {formatBytes(rendered.text.length)}
            </button>
          )}
        </>
      );
      break;
    }
  }

  return (
    <div className="body-view">
      <div className="body-meta">
        <span>{meta}</span>
        {!isBinaryBody(body) && (
          <span className="seg">
            <button type="button" className={mode === "auto" ? "on" : ""} onClick={() => setMode("auto")}>
              Pretty
            </button>
            <button type="button" className={mode === "text" ? "on" : ""} onClick={() => setMode("text")}>
              Raw
            </button>
          </span>
        )}
      </div>
      {content}
    </div>
  );
}
