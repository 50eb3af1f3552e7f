import { access, writeFile } from "node:fs/promises";
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { isSafeToken, legacyToolUpdateConsumer } from "../contracts/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";
import { isPermissionDenied } from "../transport/index.ts";

/**
 * Written once the old consumers were dealt with, so a later start does not ask again: beside the
 * tools folder (`<toolsDir>.legacy-update-consumers-removed`), which holds only tools and their records.
 */
export function legacyUpdateConsumersMarker(toolsDir: string): string {
  return `${toolsDir}.legacy-update-consumers-removed`;
}

/**
 * Versions before the last read tool updates through one durable consumer per installed tool
 * (`machine_{id}_tool_{toolAgentId}_update_consumer`); this one reads them without any (one feed per
 * installed tool). The old ones would keep collecting updates nobody reads: delete them, once. An identity with
 * least privilege may not (their names fit no template): then the platform removes them, and the
 * agent does not ask again. A transient failure (offline, timeout) is tried again at the next start.
 */
export async function removeLegacyUpdateConsumers(options: {
  readonly connection: NatsConnection;
  readonly machineId: string;
  readonly toolAgentIds: readonly string[];
  readonly toolsDir: string;
  readonly logger: Logger;
  /** The marker holds when it was written. */
  readonly clock: Clock;
}): Promise<void> {
  const marker = legacyUpdateConsumersMarker(options.toolsDir);
  // No tool was ever installed here: no old consumer either.
  if (
    options.toolAgentIds.length === 0 ||
    (await access(marker).then(
      () => true,
      () => false,
    ))
  )
    return;
  const manager = await jetstreamManager(options.connection, { checkAPI: false });
  for (const toolAgentId of options.toolAgentIds.filter(isSafeToken)) {
    const { stream, name } = legacyToolUpdateConsumer(options.machineId, toolAgentId);
    try {
      await manager.consumers.delete(stream, name);
      options.logger.info({ consumer: name }, "removed the old per-tool update consumer");
    } catch (error) {
      const gone =
        error instanceof JetStreamApiError &&
        (error.code === JetStreamApiCodes.ConsumerNotFound || error.code === JetStreamApiCodes.StreamNotFound);
      if (gone) continue;
      if (isPermissionDenied(error)) {
        options.logger.info(
          { consumer: name },
          "not allowed to remove the old per-tool update consumers; the platform removes them",
        );
        break;
      }
      options.logger.warn(
        { err: error, consumer: name },
        "cannot remove the old per-tool update consumer now; trying again at the next start",
      );
      return;
    }
  }
  await writeFile(marker, `${new Date(options.clock.now()).toISOString()}\n`, { mode: 0o600 });
}
