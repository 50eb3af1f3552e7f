import { SettingsError } from "./errors.ts";

/**
 * Where and how to reach NATS: the part of a program's settings the link needs. The agent and the
 * companion bridge both hand theirs over in this shape, so both share one link and one auth code.
 */
export interface NatsEndpoint {
  /** Server URLs, already stripped of any credentials written into them. */
  readonly natsServers: readonly string[];
  readonly auth: {
    readonly user?: string | undefined;
    readonly password?: string | undefined;
    readonly token?: string | undefined;
    readonly nkeySeedFile?: string | undefined;
    readonly credsFile?: string | undefined;
  };
  readonly tls: {
    readonly caFile?: string | undefined;
    readonly certFile?: string | undefined;
    readonly keyFile?: string | undefined;
  };
}

export function usesWebSocket(servers: readonly string[]): boolean {
  return servers.some((server) => server.startsWith("ws://") || server.startsWith("wss://"));
}

/** What the schema cannot say about a NATS endpoint: a password needs a user, a cert needs its key. */
export function assertCompleteNatsEndpoint(
  endpoint: Pick<NatsEndpoint, "auth" | "tls">,
  labelOf: (path: string) => string,
  prefix = "",
): void {
  const { auth, tls } = endpoint;
  if (auth.password !== undefined && auth.user === undefined) {
    throw new SettingsError(labelOf(`${prefix}auth.password`), "a password needs a user");
  }
  const tlsGiven = [tls.certFile, tls.keyFile].filter((file) => file !== undefined).length;
  if (tlsGiven === 1)
    throw new SettingsError(
      labelOf(`${prefix}${tls.certFile ? "tls.certFile" : "tls.keyFile"}`),
      "a TLS client certificate needs both the cert and the key file",
    );
}
