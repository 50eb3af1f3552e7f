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
