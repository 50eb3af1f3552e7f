import type { NatsConnection } from "@nats-io/transport-node";
import type { Capability, CapabilityContext } from "../capability/index.ts";
import { EventType, type HeartbeatMessage } from "../contracts/index.ts";
import { AGENT_TYPE, AGENT_VERSION, timersOf } from "../runtime/index.ts";
import { createConnectionEventRecorder } from "./connection-events.ts";
import { createHeartbeat } from "./heartbeat.ts";
import { createHostnameReporter } from "./hostname-reporter.ts";

export interface Lifecycle extends Capability {
  readonly heartbeatSeconds: number;
  setHeartbeatSeconds(seconds: number): void;
}

const encoder = new TextEncoder();

/**
 * The agent's life as the platform sees it: the installed-agent announcement at every start,
 * CONNECT / DISCONNECT / RECONNECT events, the heartbeat (core NATS, never buffered) and the
 * hostname, checked at start and on every heartbeat tick (connected or not).
 */
export function lifecycleCapability(context: CapabilityContext, options: { hostname: () => string }): Lifecycle {
  const { machineId, sink, logger, subjects } = context;
  const connectionEvents = createConnectionEventRecorder({ machineId, sink, clock: context.clock, logger });
  const hostnameReporter = createHostnameReporter({ sink, hostname: options.hostname, logger });
  let connection: NatsConnection | null = null;
  const heartbeat = createHeartbeat({
    intervalSeconds: context.settings.heartbeatSeconds,
    logger,
    timers: timersOf(context.clock),
    beat: () => {
      if (!connection) return false;
      // The interval travels with each beat: a bridge judging presence needs this machine's own.
      const body: HeartbeatMessage = { intervalSeconds: heartbeat.intervalSeconds };
      connection.publish(subjects.heartbeat, encoder.encode(JSON.stringify(body)));
      return true;
    },
    onTick: () => {
      hostnameReporter.check().catch((error: unknown) => context.recordError("hostname", error));
    },
  });
  // The outbox refuses an event only when its storage is broken: the agent runs on, and says so.
  const startEventFailed =
    (what: string) =>
    (error: unknown): void => {
      context.recordError("outbox", error);
      logger.error({ err: error }, `cannot store the ${what}`);
    };

  return {
    name: "lifecycle",
    get heartbeatSeconds() {
      return heartbeat.intervalSeconds;
    },
    setHeartbeatSeconds: (seconds) => heartbeat.setIntervalSeconds(seconds),
    async start() {
      await sink
        .emit({ type: EventType.installedAgent, body: { machineId, agentType: AGENT_TYPE, version: AGENT_VERSION } })
        .catch(startEventFailed("installed-agent announcement"));
      await hostnameReporter.check().catch(startEventFailed("hostname"));
      // Ticks run offline too: they keep the hostname check current.
      heartbeat.start();
    },
    attach(link) {
      connection = link.connection;
      if (link.reconnected) connectionEvents.reconnected(link.server);
      else connectionEvents.connected(link.server);
      heartbeat.beatNow();
    },
    detach(server, reason) {
      connection = null;
      connectionEvents.disconnected(server, reason);
    },
    stop: () => heartbeat.stop(),
    appliers: [
      {
        name: "heartbeat",
        apply: (next) => {
          if (next.heartbeatSeconds !== undefined && next.heartbeatSeconds !== heartbeat.intervalSeconds)
            heartbeat.setIntervalSeconds(next.heartbeatSeconds);
        },
      },
    ],
  };
}
