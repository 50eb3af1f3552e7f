import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { type LegacyConsumer, legacyMachineConsumers } from "../contracts/index.ts";
import type { CommandInbox } from "../outbox/index.ts";
import type { Logger } from "../runtime/index.ts";
import { isPermissionDenied } from "../transport/index.ts";

/** The position key that records the takeover as done (in the inbox's positions table, never a feed's). */
export const LEGACY_TAKEOVER_KEY = "legacy-consumers-taken-over";

const isGone = (error: unknown): boolean =>
  error instanceof JetStreamApiError &&
  (error.code === JetStreamApiCodes.ConsumerNotFound || error.code === JetStreamApiCodes.StreamNotFound);

/**
 * Takes over, once, the durable consumers an earlier version of the agent kept for this machine (or
 * OpenFrame's own agent, whose push consumer for tool installations has the same name): each
 * consumer's acknowledged floor becomes its feed's position (never moving a position back), so
 * what it had not acknowledged yet, commands pending while the agent was being upgraded, is read
 * by the feed; then the consumer is removed. A consumer acknowledged out of order above its floor
 * gives those commands again: their handlers recognise work already done (a tool at the same
 * version, a configuration revision already applied).
 *
 * Not allowed to read them: the platform removes them, and the agent does not ask again. A failure
 * (offline, a timeout) throws: the caller tries again at the next connection.
 */
export async function takeOverLegacyConsumers(options: {
  readonly connection: NatsConnection;
  readonly machineId: string;
  readonly inbox: Pick<CommandInbox, "position" | "accept" | "upgradedFromConsumers">;
  readonly logger: Logger;
}): Promise<void> {
  const { inbox, logger } = options;
  if (inbox.position(LEGACY_TAKEOVER_KEY) !== null) return;
  // A fresh installation has no consumer of an earlier version of ours: only the one OpenFrame's own
  // agent made may exist (a machine moved from it), so that is the one asked for (one request, not ten).
  const candidates = legacyMachineConsumers(options.machineId).filter(
    (consumer) => inbox.upgradedFromConsumers() || consumer.feedKey === "tool-installation",
  );
  const manager = await jetstreamManager(options.connection, { checkAPI: false });
  const takeOver = async (consumer: LegacyConsumer): Promise<"next" | "denied"> => {
    let floor: number;
    try {
      floor = (await manager.consumers.info(consumer.stream, consumer.name)).ack_floor.stream_seq;
    } catch (error) {
      if (isGone(error)) return "next";
      if (isPermissionDenied(error)) return "denied";
      throw error;
    }
    if (consumer.feedKey !== "") {
      const position = inbox.position(consumer.feedKey);
      if (position === null || position < floor) inbox.accept(consumer.feedKey, [], floor);
    }
    try {
      await manager.consumers.delete(consumer.stream, consumer.name);
    } catch (error) {
      if (!isGone(error)) throw error;
    }
    logger.info(
      { consumer: consumer.name, stream: consumer.stream, takenFrom: floor },
      "took over an earlier version's consumer and removed it",
    );
    return "next";
  };
  for (const consumer of candidates) {
    if ((await takeOver(consumer)) === "denied") {
      logger.info(
        { consumer: consumer.name },
        "not allowed to read earlier versions' consumers: the platform removes them (commands pending in them are not taken over)",
      );
      break;
    }
  }
  inbox.accept(LEGACY_TAKEOVER_KEY, [], 1);
}
