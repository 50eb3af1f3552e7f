/**
 * Hosts a download without a sha256 may come from (`toolPolicy.allowedDownloadHosts`): an entry is
 * a host name or IP address (`github.com`, `10.0.0.5`, `[fd00::1]`), or `*.` and a domain for any
 * name below it (`*.githubusercontent.com`, not the domain itself), each with an optional `:port`
 * (any port when absent). Names are compared case-insensitively; nothing else is a wildcard.
 */
export interface HostPattern {
  /** The name, lowercased, without the `*.` (`githubusercontent.com`) and without the port. */
  readonly host: string;
  readonly subdomains: boolean;
  readonly port: number | null;
  /** As the operator wrote it, lowercased: for messages. */
  readonly text: string;
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;

/** A pattern, or why the entry is not one. */
export function parseHostPattern(entry: string): HostPattern | string {
  const text = entry.trim().toLowerCase();
  const match = /^(\*\.)?(\[[^\]]*\]|[^:]+)(?::(\d{1,5}))?$/.exec(text);
  if (!match) return `${JSON.stringify(entry)} is not a host, *.domain or host:port`;
  const [, wildcard, host = "", portText] = match;
  const port = portText === undefined ? null : Number(portText);
  if (port !== null && (port < 1 || port > 65_535)) return `${JSON.stringify(entry)}: a port is 1 to 65535`;
  if (IPV6.test(host)) {
    if (wildcard) return `${JSON.stringify(entry)}: *. goes before a domain, not an address`;
    return { host, subdomains: false, port, text };
  }
  const labels = host.split(".");
  if (!labels.every((label) => LABEL.test(label)))
    return `${JSON.stringify(entry)} is not a host name (letters, digits, '-' and dots; no scheme, path or other wildcard)`;
  // `*.com` would allow a whole top-level domain: a wildcard needs a domain of two labels at least.
  if (wildcard && labels.length < 2) return `${JSON.stringify(entry)}: *. needs a domain below a top-level one`;
  return { host, subdomains: wildcard !== undefined, port, text };
}

/** Whether `url` (http or https) is on a host `patterns` allow. */
export function hostAllowed(url: URL, patterns: readonly HostPattern[]): boolean {
  const host = url.hostname.toLowerCase();
  const port = url.port === "" ? (url.protocol === "http:" ? 80 : 443) : Number(url.port);
  return patterns.some(
    (pattern) =>
      (pattern.port === null || pattern.port === port) &&
      (pattern.subdomains ? host.endsWith(`.${pattern.host}`) : host === pattern.host),
  );
}

/** Parses a list the settings already validated (an entry that does not parse is left out). */
export function hostPatternsOf(entries: readonly string[]): HostPattern[] {
  return entries.map(parseHostPattern).filter((pattern): pattern is HostPattern => typeof pattern !== "string");
}
