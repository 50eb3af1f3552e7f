import type { Capability } from "../capability/index.ts";
import type { Outbox } from "../outbox/index.ts";
import type { LoggerFamily } from "../runtime/index.ts";
import { type Clock, sleepOn } from "../runtime/index.ts";
import type { AgentStatus } from "./status.ts";

/**
 * What the agent itself contributes besides its capabilities: the outbox limits and the log level
 * as live settings, and the `health` and `status` endpoints.
 */
export function agentCoreCapability(options: {
  machineId: string;
  version: string;
  outbox: Pick<Outbox, "updateLimits">;
  /** This agent's loggers only: a level set here never reaches another agent in the process. */
  loggers: LoggerFamily;
  linkState: () => string;
  uptimeSeconds: () => number;
  status: () => Promise<AgentStatus>;
}): Capability {
  const { machineId, version } = options;
  return {
    name: "agent",
    appliers: [
      {
        name: "outbox",
        apply: (next) =>
          options.outbox.updateLimits({
            maxBytes: next.outbox?.maxBytes,
            maxAgeMs: next.outbox?.maxAgeSeconds === undefined ? undefined : next.outbox.maxAgeSeconds * 1000,
          }),
      },
      {
        name: "log-level",
        apply: (next) => {
          if (next.logLevel !== undefined) options.loggers.setLevel(next.logLevel);
        },
      },
    ],
    rpcEndpoints: [
      {
        name: "health",
        handle: () => ({
          status: "ok",
          machineId,
          version,
          connection: options.linkState(),
          uptimeSeconds: options.uptimeSeconds(),
        }),
      },
      { name: "status", handle: () => options.status() },
    ],
  };
}

/**
 * Resolves true once the outbox holds nothing undelivered, false after `timeoutMs`: checked every
 * 100 ms, so at most `timeoutMs / 100` looks.
 */
export function outboxDrained(outbox: Pick<Outbox, "stats">, clock: Clock): (timeoutMs: number) => Promise<boolean> {
  return async (timeoutMs) => {
    const deadline = clock.monotonicMs() + timeoutMs;
    while (outbox.stats().pendingCount > 0) {
      if (clock.monotonicMs() >= deadline) return false;
      await sleepOn(clock, 100);
    }
    return true;
  };
}
