/**
 * A command's own time to live, the `Nats-TTL` header (nats-server 2.11+ removes the message itself
 * once it passes; a message the server has not removed yet, or a stream that does not honour the
 * header, is judged here too). The header holds "never", whole seconds ("3600"), or a Go duration
 * ("90s", "1h30m"), as nats-server parses it.
 */
export const MESSAGE_TTL_HEADER = "Nats-TTL";

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/** The TTL in milliseconds; null for none, "never", or a value the server itself would refuse. */
export function parseMessageTtl(value: string | undefined): number | null {
  if (value === undefined) return null;
  const text = value.trim();
  if (text === "" || text === "never") return null;
  if (/^\d+$/.test(text)) return Number(text) * 1_000;
  let total = 0;
  let rest = text;
  while (rest.length > 0) {
    const match = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!match) return null;
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
    rest = rest.slice(match[0].length);
  }
  return total > 0 ? total : null;
}

/** When a message stored at `storedAtMs` with these headers expires (epoch ms), or null when it does not. */
export function expiryOf(headers: Readonly<Record<string, readonly string[]>>, storedAtMs: number): number | null {
  const ttlMs = parseMessageTtl(headers[MESSAGE_TTL_HEADER]?.at(-1));
  return ttlMs === null || storedAtMs <= 0 ? null : storedAtMs + ttlMs;
}
