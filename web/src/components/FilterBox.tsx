import { useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent, type Ref } from "react";
import { validateFilter } from "../api";
import { applySuggestion, suggest, type Suggestion, type Suggestions } from "../filter/autocomplete";
import { loadRecent, pushRecent } from "../filter/recent";
import { FilterValidator, positionOffset, type ValidateFn, type ValidationState } from "../filter/validation";
import type { FeedError } from "../feedStore";
import type { SchemaColumn } from "../types";

export interface FilterBoxProps {
  value: string;
  onChange: (value: string) => void;
  /** The filter the feed runs now. */
  applied: string;
  onApply: (filter: string) => void;
  columns: SchemaColumn[];
  /** The hub's answer to the last subscribe, when it refused it. */
  serverError?: FeedError | null;
  validate?: ValidateFn;
  inputRef?: Ref<HTMLInputElement>;
  onFocus?: () => void;
  /** Storage for recent filters (tests pass their own). */
  storage?: Storage | null;
}

const EMPTY: ValidationState = { status: "empty" };

export function FilterBox({
  value,
  onChange,
  applied,
  onApply,
  columns,
  serverError,
  validate = validateFilter,
  inputRef,
  onFocus,
  storage,
}: FilterBoxProps) {
  const [validation, setValidation] = useState<ValidationState>(EMPTY);
  const [caret, setCaret] = useState(value.length);
  const [open, setOpen] = useState(false);
  const [showRecent, setShowRecent] = useState(false);
  const [active, setActive] = useState(-1);
  const [recent, setRecent] = useState<string[]>(() => loadRecent(storage));
  const ownRef = useRef<HTMLInputElement | null>(null);
  const pendingCaret = useRef<number | null>(null);

  // The validator outlives renders; its callback reads the latest setter.
  const validator = useMemo(
    () => new FilterValidator((f, signal) => validate(f, signal), (s) => setValidation(s)),
    [validate],
  );
  useEffect(() => () => validator.dispose(), [validator]);
  useEffect(() => validator.update(value), [validator, value]);

  useLayoutEffect(() => {
    const el = ownRef.current;
    if (el && pendingCaret.current !== null) {
      el.setSelectionRange(pendingCaret.current, pendingCaret.current);
      setCaret(pendingCaret.current);
      pendingCaret.current = null;
    }
  }, [value]);

  const suggestions: Suggestions | null = useMemo(() => {
    if (!open) return null;
    if (showRecent || value.trim() === "") {
      const items: Suggestion[] = recent
        .filter((r) => r !== value)
        .map((r) => ({ kind: "recent", label: r, insert: r, detail: "recent" }));
      if (items.length > 0 || showRecent) return { from: 0, to: value.length, items };
    }
    return suggest(value, caret, columns);
  }, [open, showRecent, value, caret, columns, recent]);

  const items = suggestions?.items ?? [];
  const dropdownOpen = open && items.length > 0;

  const setRefs = (el: HTMLInputElement | null) => {
    ownRef.current = el;
    if (typeof inputRef === "function") inputRef(el);
    else if (inputRef) (inputRef as { current: HTMLInputElement | null }).current = el;
  };

  const accept = (item: Suggestion) => {
    if (!suggestions) return;
    if (item.kind === "recent") {
      onChange(item.insert);
      pendingCaret.current = item.insert.length;
      setShowRecent(false);
    } else {
      const next = applySuggestion(value, suggestions, item);
      onChange(next.text);
      pendingCaret.current = next.caret;
    }
    setActive(-1);
    setOpen(true);
  };

  const apply = () => {
    const f = value.trim();
    setOpen(false);
    setShowRecent(false);
    setActive(-1);
    if (f !== value) onChange(f);
    if (f) setRecent(pushRecent(f, storage));
    onApply(f);
  };

  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    switch (e.key) {
      case "ArrowDown":
        e.preventDefault();
        if (!dropdownOpen) {
          setOpen(true);
          setActive(-1);
        } else setActive((a) => Math.min(items.length - 1, a + 1));
        break;
      case "ArrowUp":
        if (dropdownOpen) {
          e.preventDefault();
          setActive((a) => Math.max(-1, a - 1));
        }
        break;
      case "Tab":
        if (dropdownOpen) {
          e.preventDefault();
          const item = items[active >= 0 ? active : 0];
          if (item) accept(item);
        }
        break;
      case "Enter":
        e.preventDefault();
        // Enter applies the filter unless the user picked a suggestion with the arrows:
        // typing a whole filter and pressing Enter must never insert a suggestion.
        if (dropdownOpen && active >= 0) {
          const item = items[active];
          if (item) accept(item);
        } else apply();
        break;
      case "Escape":
        e.stopPropagation();
        if (dropdownOpen) {
          setOpen(false);
          setShowRecent(false);
        } else e.currentTarget.blur();
        break;
    }
  };

  const syncCaret = () => {
    const el = ownRef.current;
    if (el) setCaret(el.selectionStart ?? el.value.length);
  };

  const status = validation.status;
  const dirty = value.trim() !== applied.trim();
  const serverErrorShown = serverError && !dirty && status !== "invalid" ? serverError : null;
  const invalid = status === "invalid" || serverErrorShown !== null;

  return (
    <div className={`filter-box state-${invalid ? "invalid" : status}`}>
      <div className="filter-row">
        <span className="filter-label" aria-hidden>
          SQL
        </span>
        <div className="filter-input-wrap">
          <input
            ref={setRefs}
            data-testid="filter-input"
            className="filter-input"
            type="text"
            spellCheck={false}
            autoComplete="off"
            placeholder="Filter: protocol = 'http' AND status_code >= 500   (press / to focus, Enter to apply)"
            value={value}
            aria-invalid={invalid}
            aria-autocomplete="list"
            aria-expanded={dropdownOpen}
            aria-controls="filter-suggestions"
            data-state={invalid ? "invalid" : status}
            onChange={(e) => {
              onChange(e.target.value);
              setCaret(e.target.selectionStart ?? e.target.value.length);
              setOpen(true);
              setShowRecent(false);
              setActive(-1);
            }}
            onKeyDown={onKeyDown}
            onKeyUp={(e) => {
              if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End") syncCaret();
            }}
            onClick={() => {
              syncCaret();
              setOpen(true);
            }}
            onFocus={() => {
              setOpen(true);
              onFocus?.();
            }}
            onBlur={() => {
              setOpen(false);
              setShowRecent(false);
            }}
          />
          {dropdownOpen && (
            <ul className="suggestions" id="filter-suggestions" role="listbox" data-testid="filter-suggestions">
              {items.map((item, i) => (
                <li
                  key={`${item.kind}:${item.label}`}
                  role="option"
                  aria-selected={i === active}
                  className={`suggestion kind-${item.kind}${i === active ? " active" : ""}`}
                  // mousedown, not click: the input must keep focus.
                  onMouseDown={(e) => {
                    e.preventDefault();
                    accept(item);
                  }}
                  onMouseEnter={() => setActive(i)}
                >
                  <span className="suggestion-kind">{KIND_ICON[item.kind]}</span>
                  <span className="suggestion-label">{item.label}</span>
                  {item.detail && <span className="suggestion-detail">{item.detail}</span>}
                </li>
              ))}
            </ul>
          )}
        </div>
        <span className="filter-status" title={statusTitle(validation)} data-testid="filter-status">
          {invalid ? "✗" : status === "ok" ? "✓" : status === "pending" ? "…" : status === "unknown" ? "?" : ""}
        </span>
        {dirty && (
          <button type="button" className="filter-hint" title="Apply the filter (Enter)" onClick={apply}>
            ↵ apply
          </button>
        )}
        <button
          type="button"
          className="icon-btn"
          title="Recent filters"
          aria-label="Recent filters"
          disabled={recent.length === 0}
          onMouseDown={(e) => e.preventDefault()}
          onClick={() => {
            ownRef.current?.focus();
            setShowRecent((v) => !v);
            setOpen(true);
          }}
        >
          ↺
        </button>
        {value !== "" && (
          <button
            type="button"
            className="icon-btn"
            title="Clear the filter"
            aria-label="Clear the filter"
            onClick={() => {
              onChange("");
              onApply("");
            }}
          >
            ×
          </button>
        )}
      </div>
      {status === "invalid" && validation.status === "invalid" && (
        <FilterError text={value} message={validation.message} position={validation.position} />
      )}
      {serverErrorShown && (
        <FilterError text={applied} message={serverErrorShown.message} position={serverErrorShown.position} />
      )}
      {status === "unknown" && validation.status === "unknown" && (
        <div className="filter-note">Cannot check the filter now: {validation.message}</div>
      )}
    </div>
  );
}

const KIND_ICON: Record<Suggestion["kind"], string> = {
  column: "col",
  value: "val",
  keyword: "kw",
  operator: "op",
  recent: "↺",
};

function statusTitle(v: ValidationState): string {
  switch (v.status) {
    case "ok":
      return "Valid filter";
    case "invalid":
      return v.message;
    case "pending":
      return "Checking…";
    case "unknown":
      return `Not checked: ${v.message}`;
    case "empty":
      return "No filter: every entry";
  }
}

function FilterError({
  text,
  message,
  position,
}: {
  text: string;
  message: string;
  position: { line: number; column: number } | null | undefined;
}) {
  const at = position ? positionOffset(text, position) : null;
  return (
    <div className="filter-error" data-testid="filter-error" role="alert">
      <span className="filter-error-message">{message}</span>
      {position && (
        <>
          <span className="filter-error-pos">
            {" "}
            (line {position.line}, column {position.column})
          </span>
          {at !== null && text.length > 0 && (
            <code className="filter-error-snippet">
              {text.slice(Math.max(0, at - 40), at)}
              <mark>{text.slice(at, at + 1) || " "}</mark>
              {text.slice(at + 1, at + 40)}
            </code>
          )}
        </>
      )}
    </div>
  );
}
