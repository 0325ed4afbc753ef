import { protocolColor } from "../format";

export function ProtocolBadge({ protocol }: { protocol: string }) {
  const color = protocolColor(protocol);
  return (
    <span
      className="badge"
      data-protocol={protocol}
      style={{ color, borderColor: `${color}66`, background: `${color}1a` }}
    >
      {protocol.toUpperCase()}
    </span>
  );
}
