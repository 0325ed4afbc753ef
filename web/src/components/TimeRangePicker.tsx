import { useState } from "react";
import {
  LAST_CHOICES,
  LIVE,
  localInputToRfc3339,
  rangeLabel,
  rfc3339ToLocalInput,
  type TimeRange,
} from "../timeRange";

export interface TimeRangePickerProps {
  value: TimeRange;
  onChange: (range: TimeRange) => void;
}

export function TimeRangePicker({ value, onChange }: TimeRangePickerProps) {
  const [customOpen, setCustomOpen] = useState(false);
  const [from, setFrom] = useState(() => rfc3339ToLocalInput(value.kind === "custom" ? value.from : defaultFrom()));
  const [to, setTo] = useState(() => rfc3339ToLocalInput(value.kind === "custom" ? value.to : null));
  const [error, setError] = useState<string | null>(null);

  const selectValue = value.kind === "live" ? "live" : value.kind === "last" ? `last:${value.minutes}` : "custom";
  const lastOptions = LAST_CHOICES.includes(value.kind === "last" ? value.minutes : 5)
    ? LAST_CHOICES
    : [...LAST_CHOICES, value.kind === "last" ? value.minutes : 5].sort((a, b) => a - b);

  const applyCustom = () => {
    const f = localInputToRfc3339(from);
    const t = localInputToRfc3339(to);
    if (!f) return setError("Pick a start time.");
    if (t && Date.parse(t) <= Date.parse(f)) return setError("The end must be after the start.");
    setError(null);
    setCustomOpen(false);
    onChange({ kind: "custom", from: f, to: t });
  };

  return (
    <div className="time-range">
      <select
        aria-label="Time range"
        data-testid="time-range"
        value={customOpen ? "custom" : selectValue}
        title={rangeLabel(value)}
        onChange={(e) => {
          const v = e.target.value;
          if (v === "live") {
            setCustomOpen(false);
            onChange(LIVE);
          } else if (v.startsWith("last:")) {
            setCustomOpen(false);
            onChange({ kind: "last", minutes: Number(v.slice(5)) });
          } else setCustomOpen(true);
        }}
      >
        <option value="live">● Live (last 15 min, then follow)</option>
        {lastOptions.map((m) => (
          <option key={m} value={`last:${m}`}>
            {rangeLabel({ kind: "last", minutes: m })}
          </option>
        ))}
        <option value="custom">{value.kind === "custom" ? rangeLabel(value) : "Custom range…"}</option>
      </select>
      {value.kind === "custom" && !customOpen && (
        <button type="button" className="link-btn" onClick={() => setCustomOpen(true)}>
          edit
        </button>
      )}
      {customOpen && (
        <div className="custom-range" role="dialog" aria-label="Custom time range">
          <label>
            From
            <input type="datetime-local" step="1" value={from} onChange={(e) => setFrom(e.target.value)} />
          </label>
          <label>
            To
            <input type="datetime-local" step="1" value={to} onChange={(e) => setTo(e.target.value)} />
          </label>
          <span className="hint">(empty “To” = then follow live)</span>
          <button type="button" className="btn primary" onClick={applyCustom}>
            Apply
          </button>
          <button type="button" className="btn" onClick={() => setCustomOpen(false)}>
            Cancel
          </button>
          {error && <span className="form-error">{error}</span>}
        </div>
      )}
    </div>
  );
}

function defaultFrom(): string {
  return new Date(Date.now() - 60 * 60 * 1000).toISOString();
}
