// The service map: GET /api/servicemap?filter=…&since=…&until=… (the feed's filter and
// time range) every few seconds while visible, laid out by d3-force in an SVG. Edge width
// follows requests, edge color the error rate.

import {
  forceCenter,
  forceCollide,
  forceLink,
  forceManyBody,
  forceSimulation,
  forceX,
  forceY,
  type ForceLink,
  type Simulation,
} from "d3-force";
import { useEffect, useMemo, useRef, useState, type PointerEvent as ReactPointerEvent } from "react";
import { fetchServiceMap } from "../api";
import { rangeToSubscription, type TimeRange } from "../timeRange";
import { SERVICE_MAP_POLL_MS } from "../config";
import { formatBytes, formatCount, formatLatency } from "../format";
import { usePoll } from "../hooks";
import {
  arrowSize,
  bucketColor,
  edgePath,
  edgeWidth,
  ERROR_RATE_RED,
  errorBucket,
  errorColor,
  scaleColor,
  fitViewBox,
  mergeGraph,
  namespaceColor,
  type SimLink,
  type SimNode,
} from "../serviceMapLayout";

export interface ServiceMapProps {
  filter: string;
  /** The feed's time range; "last N minutes" rolls with every poll. */
  range: TimeRange;
  visible: boolean;
}

type Hover = { kind: "node"; node: SimNode; x: number; y: number } | { kind: "edge"; link: SimLink; x: number; y: number };

export function ServiceMap({ filter, range, visible }: ServiceMapProps) {
  const poll = usePoll(
    (signal) => {
      const { since, until } = rangeToSubscription(range);
      return fetchServiceMap(filter, since, range.kind === "last" ? null : until, signal);
    },
    SERVICE_MAP_POLL_MS,
    visible,
    `${filter}\n${JSON.stringify(range)}`,
  );
  const nodesById = useRef(new Map<string, SimNode>());
  const sim = useRef<Simulation<SimNode, SimLink> | null>(null);
  const [graph, setGraph] = useState<{ nodes: SimNode[]; links: SimLink[] }>({ nodes: [], links: [] });
  const [, setTick] = useState(0);
  const [hover, setHover] = useState<Hover | null>(null);
  const svgRef = useRef<SVGSVGElement | null>(null);
  const wrapRef = useRef<HTMLDivElement | null>(null);
  const dragging = useRef<SimNode | null>(null);
  const frozenViewBox = useRef<string | null>(null);
  const [size, setSize] = useState({ w: 1000, h: 600 });

  useEffect(() => {
    const svg = svgRef.current;
    if (!svg || typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(() => {
      const r = svg.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) setSize({ w: r.width, h: r.height });
    });
    ro.observe(svg);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    const s = forceSimulation<SimNode, SimLink>()
      .force("charge", forceManyBody<SimNode>().strength(-900).distanceMax(1200))
      .force("link", forceLink<SimNode, SimLink>().id((n) => n.id).distance((l) => 150 + l.source.r + l.target.r).strength(0.3))
      .force("collide", forceCollide<SimNode>().radius((n) => n.r + 45))
      .force("x", forceX<SimNode>(0).strength(0.04))
      .force("y", forceY<SimNode>(0).strength(0.06))
      .force("center", forceCenter(0, 0))
      .alphaDecay(0.04)
      .on("tick", () => setTick((t) => t + 1));
    s.stop();
    sim.current = s;
    return () => {
      s.stop();
      sim.current = null;
    };
  }, []);

  // A fresh answer: merge it into the simulation, reheating it a little (a lot only when
  // the set of nodes changed).
  useEffect(() => {
    const data = poll.data;
    const s = sim.current;
    if (!data || !s) return;
    const before = new Set(nodesById.current.keys());
    const g = mergeGraph(nodesById.current, data);
    nodesById.current = new Map(g.nodes.map((n) => [n.id, n]));
    const changed = g.nodes.length !== before.size || g.nodes.some((n) => !before.has(n.id));
    s.nodes(g.nodes);
    s.force<ForceLink<SimNode, SimLink>>("link")?.links(g.links);
    setGraph(g);
    if (changed) {
      if (before.size === 0) {
        // First layout: settle it before showing, so the map does not explode on screen.
        s.alpha(1);
        for (let i = 0; i < 200; i++) s.tick();
      }
      s.alpha(Math.max(s.alpha(), 0.5)).restart();
    } else if (s.alpha() < 0.05) {
      s.alpha(0.05).restart();
    }
  }, [poll.data]);

  useEffect(() => {
    if (!visible) sim.current?.stop();
  }, [visible]);

  const maxEdge = useMemo(() => Math.max(0, ...graph.links.map((l) => l.data.requests)), [graph.links]);
  // One arrowhead marker per (error color, size) in use: a head sized to its edge's
  // stroke, so a wide edge does not bury its own arrow.
  const markers = useMemo(() => {
    const m = new Map<string, { bucket: number; size: number }>();
    for (const l of graph.links) {
      const bucket = errorBucket(l.data.error_rate);
      const size = arrowSize(edgeWidth(l.data.requests, maxEdge));
      m.set(`${bucket}-${size}`, { bucket, size });
    }
    return [...m.entries()];
  }, [graph.links, maxEdge]);

  const toSvgPoint = (clientX: number, clientY: number) => {
    const svg = svgRef.current;
    const ctm = svg?.getScreenCTM();
    if (!svg || !ctm) return null;
    const p = new DOMPoint(clientX, clientY).matrixTransform(ctm.inverse());
    return { x: p.x, y: p.y };
  };

  const hoverAt = (e: { clientX: number; clientY: number }) => {
    const rect = wrapRef.current?.getBoundingClientRect();
    return { x: e.clientX - (rect?.left ?? 0), y: e.clientY - (rect?.top ?? 0) };
  };

  const onNodeDown = (e: ReactPointerEvent<SVGGElement>, n: SimNode) => {
    e.stopPropagation();
    (e.currentTarget as Element).setPointerCapture?.(e.pointerId);
    dragging.current = n;
    frozenViewBox.current = fitViewBox(graph.nodes, size.w, size.h);
    n.fx = n.x;
    n.fy = n.y;
    sim.current?.alphaTarget(0.3).restart();
  };
  const onPointerMove = (e: ReactPointerEvent<SVGSVGElement>) => {
    const n = dragging.current;
    if (!n) return;
    const p = toSvgPoint(e.clientX, e.clientY);
    if (p) {
      n.fx = p.x;
      n.fy = p.y;
    }
  };
  const onPointerUp = () => {
    const n = dragging.current;
    if (!n) return;
    dragging.current = null;
    frozenViewBox.current = null;
    n.fx = null;
    n.fy = null;
    sim.current?.alphaTarget(0);
  };

  const viewBox = frozenViewBox.current ?? fitViewBox(graph.nodes, size.w, size.h);
  const err = poll.error;
  const data = poll.data;

  return (
    <div className="service-map" data-testid="service-map" ref={wrapRef}>
      <div className="map-toolbar">
        <span>
          {data
            ? `${graph.nodes.length} nodes · ${graph.links.length} edges · ${formatCount(data.entries)} entries in the window${filter ? " matching the filter" : ""}`
            : err
              ? ""
              : "Loading the service map…"}
        </span>
        {err && <span className="map-error">Service map unavailable: {err.message}{data ? " (showing the last answer)" : ""}</span>}
        <Legend />
      </div>
      {data && graph.nodes.length === 0 && (
        <div className="map-empty">
          {filter ? (
            <>
              No traffic in the hub's window matches <code>{filter}</code>.
            </>
          ) : (
            "No traffic in the hub's window yet: the map fills in as entries arrive."
          )}
        </div>
      )}
      <svg
        ref={svgRef}
        className="map-svg"
        viewBox={viewBox}
        preserveAspectRatio="xMidYMid meet"
        onPointerMove={onPointerMove}
        onPointerUp={onPointerUp}
        onPointerLeave={() => {
          onPointerUp();
          setHover(null);
        }}
        role="img"
        aria-label="Service map"
      >
        <defs>
          {markers.map(([key, { bucket, size }]) => (
            <marker
              key={key}
              id={`arrow-${key}`}
              viewBox="0 0 10 10"
              refX="0"
              refY="5"
              markerWidth={size}
              markerHeight={size}
              markerUnits="userSpaceOnUse"
              orient="auto-start-reverse"
            >
              <path d="M0,0 L10,5 L0,10 z" fill={bucketColor(bucket)} />
            </marker>
          ))}
        </defs>
        <g className="edges">
          {graph.links.map((l) => {
            const w = edgeWidth(l.data.requests, maxEdge);
            const head = arrowSize(w);
            const d = edgePath(l, head);
            const hovered = hover?.kind === "edge" && hover.link.key === l.key;
            return (
              <g key={l.key}>
                <path
                  d={d}
                  className={`edge${hovered ? " hovered" : ""}`}
                  stroke={errorColor(l.data.error_rate)}
                  strokeWidth={w}
                  fill="none"
                  markerEnd={`url(#arrow-${errorBucket(l.data.error_rate)}-${head})`}
                />
                {/* A wide invisible twin: thin edges are hard to hover. */}
                <path
                  d={d}
                  stroke="transparent"
                  strokeWidth={Math.max(12, w + 8)}
                  fill="none"
                  onPointerMove={(e) => setHover({ kind: "edge", link: l, ...hoverAt(e) })}
                  onPointerLeave={() => setHover(null)}
                />
              </g>
            );
          })}
        </g>
        <g className="nodes">
          {graph.nodes.map((n) => (
            <g
              key={n.id}
              className="node"
              transform={`translate(${(n.x ?? 0).toFixed(1)},${(n.y ?? 0).toFixed(1)})`}
              onPointerDown={(e) => onNodeDown(e, n)}
              onPointerMove={(e) => !dragging.current && setHover({ kind: "node", node: n, ...hoverAt(e) })}
              onPointerLeave={() => setHover(null)}
            >
              <circle r={n.r} fill={namespaceColor(n.data.namespace)} />
              <text className="node-label" y={n.r + 14} textAnchor="middle">
                {n.data.name}
              </text>
              {n.data.namespace && (
                <text className="node-ns" y={n.r + 27} textAnchor="middle">
                  {n.data.namespace}
                </text>
              )}
            </g>
          ))}
        </g>
      </svg>
      {hover && <Tooltip hover={hover} graph={graph} />}
    </div>
  );
}

function Tooltip({ hover, graph }: { hover: Hover; graph: { links: SimLink[] } }) {
  const style = { left: hover.x + 14, top: hover.y + 14 };
  if (hover.kind === "node") {
    const n = hover.node;
    const out = graph.links.filter((l) => l.source === n);
    const inc = graph.links.filter((l) => l.target === n);
    const sum = (ls: SimLink[], f: (l: SimLink) => number) => ls.reduce((a, l) => a + f(l), 0);
    return (
      <div className="map-tooltip" style={style}>
        <div className="tt-title">{n.data.name}</div>
        <table>
          <tbody>
            {n.data.namespace && <Row k="Namespace" v={n.data.namespace} />}
            {n.data.kind && <Row k="Kind" v={n.data.kind} />}
            <Row k="Requests" v={formatCount(n.data.requests)} />
            <Row k="Served" v={`${formatCount(sum(inc, (l) => l.data.requests))} from ${inc.length} clients`} />
            <Row k="Sent" v={`${formatCount(sum(out, (l) => l.data.requests))} to ${out.length} servers`} />
            <Row k="Errors served" v={formatCount(sum(inc, (l) => l.data.errors))} />
          </tbody>
        </table>
      </div>
    );
  }
  const e = hover.link.data;
  return (
    <div className="map-tooltip" style={style}>
      <div className="tt-title">
        {hover.link.source.data.name} → {hover.link.target.data.name}
      </div>
      <table>
        <tbody>
          <Row k="Protocols" v={(e.protocols ?? []).join(", ") || "—"} />
          <Row k="Requests" v={formatCount(e.requests)} />
          <Row k="Errors" v={`${formatCount(e.errors)} (${(100 * (e.error_rate ?? 0)).toFixed(1)} %)`} />
          <Row k="Bytes" v={`${formatBytes(e.request_bytes)} ↑ · ${formatBytes(e.response_bytes)} ↓`} />
          <Row k="Latency avg" v={formatLatency(e.latency_avg_us)} />
          <Row k="p50 / p99" v={`${formatLatency(e.latency_p50_us)} / ${formatLatency(e.latency_p99_us)}`} />
        </tbody>
      </table>
    </div>
  );
}

function Row({ k, v }: { k: string; v: string }) {
  return (
    <tr>
      <th>{k}</th>
      <td>{v}</td>
    </tr>
  );
}

function Legend() {
  return (
    <div className="map-legend">
      <span>edge width = requests</span>
      <span className="legend-gradient" title="Edge color: error rate, on a square-root scale">
        <span>0 %</span>
        <span className="bar" style={{ background: `linear-gradient(90deg, ${[0, 0.25, 0.5, 0.75, 1].map(scaleColor).join(", ")})` }} />
        <span>≥ {ERROR_RATE_RED * 100} % errors</span>
      </span>
      <span>node color = namespace · drag to move</span>
    </div>
  );
}
