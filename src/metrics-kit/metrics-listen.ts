import { isIP } from "node:net";

/** Where the Prometheus endpoint listens: a loopback address and a port. */
export interface MetricsListen {
  readonly host: string;
  readonly port: number;
}

export const METRICS_LISTEN_EXAMPLE = "127.0.0.1:9464";

/** The value that turns an endpoint off (the bridge serves one by default; the agent only when asked). */
export const METRICS_OFF = "off";

/**
 * Parses `host:port` (`[::1]:port` for IPv6), or `off` (null: no endpoint). Only a loopback IP is accepted: the endpoint has no
 * authentication and tells how the machine is doing, so it is for a collector on this machine
 * (a node exporter's textfile, a local Prometheus or agent that forwards). A name such as
 * `localhost` is refused too: what it resolves to is not ours to guarantee.
 */
export function parseMetricsListen(text: string): MetricsListen | null | string {
  if (text.trim() === METRICS_OFF) return null;
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  if (!match)
    return `must be host:port with a loopback IP, e.g. ${METRICS_LISTEN_EXAMPLE} or [::1]:9464, or ${METRICS_OFF}`;
  const host = (match[1] ?? match[2]) as string;
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) return `port ${port} is not between 1 and 65535`;
  if (!isLoopbackIp(host)) {
    return `${JSON.stringify(host)} is not a loopback IP: the metrics endpoint has no authentication, so it listens only on 127.0.0.0/8 or ::1 (e.g. ${METRICS_LISTEN_EXAMPLE})`;
  }
  return { host, port };
}

function isLoopbackIp(host: string): boolean {
  if (isIP(host) === 4) return host.split(".")[0] === "127";
  if (isIP(host) === 6) return host === "::1" || host === "0:0:0:0:0:0:0:1";
  return false;
}
