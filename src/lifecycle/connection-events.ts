import { type ClientConnectionEvent, type ConnectionEventType, EventType } from "../contracts/index.ts";
import type { EventSink } from "../events/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";

/**
 * Records CONNECT / DISCONNECT / RECONNECT as `ClientConnectionEvent`s the moment they happen.
 * They go through the outbox, so a disconnect stored while offline is delivered once the link is
 * back, carrying the time it really happened.
 */
export interface ConnectionEventRecorder {
  connected(server: string): void;
  disconnected(server: string, reason: string): void;
  reconnected(server: string): void;
}

export function createConnectionEventRecorder(options: {
  machineId: string;
  sink: EventSink;
  clock: Clock;
  logger: Logger;
}): ConnectionEventRecorder {
  const { machineId, sink, clock, logger } = options;
  let disconnectedAt: string | undefined;

  const record = (
    type: ConnectionEventType,
    server: string,
    extra: Partial<ClientConnectionEvent>,
    timestamp: string = new Date(clock.now()).toISOString(),
  ): void => {
    const body: ClientConnectionEvent = {
      timestamp,
      client: { name: machineId },
      type,
      server,
      ...extra,
    };
    sink.emit({ type: EventType.clientConnection, body }).catch((error: unknown) => {
      logger.error({ err: error, connectionEvent: type }, "could not store a connection event");
    });
  };

  return {
    connected(server) {
      record("CONNECT", server, {});
    },
    disconnected(server, reason) {
      // Read once: RECONNECT's disconnectedAt must be exactly this DISCONNECT's timestamp.
      const at = new Date(clock.now()).toISOString();
      disconnectedAt = at;
      record("DISCONNECT", server, { reason }, at);
    },
    reconnected(server) {
      record("RECONNECT", server, disconnectedAt ? { disconnectedAt } : {});
      disconnectedAt = undefined;
    },
  };
}
