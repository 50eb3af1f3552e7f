import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsEndpoint } from "../settings-kit/index.ts";
import { buildConnectionOptions, defaultConnectionFactory } from "../transport/index.ts";
import { CommandError, ExitCode } from "./exit-codes.ts";

/**
 * A short-lived connection for operator commands: one try, a short timeout, a clear error. With
 * `reconnectDelayMs` (a command that follows something for a while), a connection that was up
 * comes back after a blip, trying every that many milliseconds.
 */
export async function connectOnce(
  settings: NatsEndpoint,
  name: string,
  timeoutMs = 3_000,
  extra: { inboxPrefix?: string; reconnectDelayMs?: number } = {},
): Promise<NatsConnection> {
  const reconnectDelayMs = extra.reconnectDelayMs;
  const options = {
    ...buildConnectionOptions(settings, name, { delay: () => reconnectDelayMs ?? 0, dialing: () => undefined }),
    ...(extra.inboxPrefix ? { inboxPrefix: extra.inboxPrefix } : {}),
    waitOnFirstConnect: false,
    maxReconnectAttempts: reconnectDelayMs === undefined ? 0 : -1,
    timeout: timeoutMs,
  };
  try {
    return await defaultConnectionFactory(options);
  } catch (error) {
    throw new CommandError(
      `cannot reach NATS at ${settings.natsServers.join(", ")}: ${(error as Error).message}`,
      ExitCode.failure,
      { cause: error },
    );
  }
}
