import { SettingsError } from "./errors.ts";

export interface ParsedServerList {
  readonly servers: string[];
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
}

const SCHEMES = new Set(["nats:", "tls:", "ws:", "wss:"]);

/**
 * Parses a comma-separated NATS server list. nats.js v3 ignores credentials written into a server
 * URL, so they are taken out here and passed on as auth settings: `user:pass@` is user/password,
 * a lone `token@` is a token, as NATS tools read them.
 */
export function parseServerList(raw: string, setting: string): ParsedServerList {
  const entries = raw
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  if (entries.length === 0) throw new SettingsError(setting, "no server URL given");
  const servers: string[] = [];
  let credentials: Omit<ParsedServerList, "servers"> = {};
  for (const entry of entries) {
    const withScheme = /^[a-z]+:\/\//i.test(entry) ? entry : `nats://${entry}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch (error) {
      throw new SettingsError(setting, `${JSON.stringify(entry)} is not a URL (expected e.g. nats://host:4222)`, {
        cause: error,
      });
    }
    if (!SCHEMES.has(url.protocol)) {
      throw new SettingsError(
        setting,
        `${JSON.stringify(entry)} has scheme ${url.protocol.slice(0, -1)}; use nats, tls, ws or wss`,
      );
    }
    if (url.hostname === "") throw new SettingsError(setting, `${JSON.stringify(entry)} has no host`);
    if (url.username !== "") {
      const user = decodeURIComponent(url.username);
      credentials = url.password !== "" ? { user, password: decodeURIComponent(url.password) } : { token: user };
    }
    url.username = "";
    url.password = "";
    servers.push(url.toString().replace(/\/$/, ""));
  }
  const websocket = servers.filter((server) => server.startsWith("ws"));
  if (websocket.length > 0 && websocket.length !== servers.length) {
    throw new SettingsError(setting, "mixes WebSocket (ws/wss) and NATS (nats/tls) URLs; use one kind");
  }
  return { servers, ...credentials };
}
