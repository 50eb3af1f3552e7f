import type { NatsConnection } from "@nats-io/transport-node";
import { waitFor } from "./wait-for.ts";

/**
 * Waits until a running agent has read each of its command feeds once (its `status` says when, over
 * rpc): from then on, a command published is one the agent takes, even on a feed that starts with
 * what comes next.
 */
export async function waitForFeedsRead(
  connection: NatsConnection,
  machineId: string,
  timeoutMs = 20_000,
): Promise<void> {
  await waitFor(
    `${machineId} to read its command feeds`,
    async () => {
      const reply = await connection
        .request(`machine.${machineId}.rpc.status`, "", { timeout: 2_000 })
        .catch(() => null);
      const status = reply?.json<{ commands?: { lastCheckedAt: string | null } }>();
      return typeof status?.commands?.lastCheckedAt === "string";
    },
    timeoutMs,
  );
}
