import { Counter, Gauge, Registry } from "prom-client";
import { EventType } from "../contracts/index.ts";
import type { OutgoingEvent } from "../events/index.ts";
import type { OutboxStats } from "../outbox/index.ts";
import type { Clock } from "../runtime/index.ts";
import type { LinkState } from "../transport/index.ts";
import { commandOutcomeOf } from "./command-outcomes.ts";

const LINK_STATES: readonly LinkState[] = ["connecting", "connected", "disconnected", "closed"];

/** What the metrics read of the agent's status at a scrape (the agent's `AgentStatus` has it all). */
export interface MetricsStatus {
  readonly machineId: string;
  readonly version: string;
  readonly uptimeSeconds: number;
  readonly connection: { readonly state: LinkState; readonly reconnects: number };
  readonly outbox: OutboxStats;
}

export interface AgentMetrics {
  /** Counts what the metrics learn from events: command outcomes, the last telemetry sample. */
  observeEvent(event: OutgoingEvent): void;
  /** The exposition text, from the agent's status read now. */
  render(status: MetricsStatus): Promise<string>;
  readonly contentType: string;
}

/**
 * The agent's Prometheus metrics. Gauges and the outbox's counters are read from the agent's
 * status at each scrape (the outbox keeps its counters across restarts, so they are mirrored, not
 * counted twice); what no status holds (command outcomes, the last telemetry sample) is counted
 * from the events as they are stored. No default process metrics: they add timers to an agent
 * that should stay small, and node or process exporters already collect them.
 */
export function createAgentMetrics(options: { clock: Clock }): AgentMetrics {
  const registry = new Registry();
  const registers = [registry];
  const gauge = (name: string, help: string, labelNames: readonly string[] = []): Gauge =>
    new Gauge({ name, help, labelNames, registers });
  const counter = (name: string, help: string, labelNames: readonly string[] = []): Counter =>
    new Counter({ name, help, labelNames, registers });

  const info = gauge("edge_agent_info", "Always 1; the labels say which agent this is.", ["version", "machine_id"]);
  const pending = gauge(
    "edge_agent_outbox_pending_events",
    "Events stored on the device, waiting for JetStream's ack.",
  );
  const pendingBytes = gauge(
    "edge_agent_outbox_pending_bytes",
    "Bytes of the pending events (as the outbox counts them against its limit).",
  );
  const oldestAge = gauge(
    "edge_agent_outbox_oldest_pending_age_seconds",
    "Age of the oldest pending event; 0 when none waits.",
  );
  const heldInMemory = gauge(
    "edge_agent_outbox_held_in_memory_events",
    "Events kept only in memory because the outbox database cannot be written.",
  );
  const lastSequence = gauge("edge_agent_outbox_last_sequence", "The device sequence number of the newest event.");
  const delivered = counter(
    "edge_agent_outbox_delivered_total",
    "Events JetStream acknowledged (kept across restarts).",
  );
  const evicted = counter(
    "edge_agent_outbox_evicted_total",
    "Events the outbox dropped because it was full or they were too old, by class.",
    ["class"],
  );
  const deadLetters = counter(
    "edge_agent_outbox_dead_letters_total",
    "Events JetStream refused for good, kept on the device as dead letters.",
  );
  const outboxError = gauge(
    "edge_agent_outbox_storage_fault",
    "1 while the outbox cannot use its database (see edge-agent status).",
  );
  const linkState = gauge("edge_agent_link_state", "1 for the NATS link's current state, 0 for the others.", ["state"]);
  const reconnects = counter(
    "edge_agent_link_reconnects_total",
    "Times the NATS link came back after a disconnect, since the agent started.",
  );
  const uptime = gauge("edge_agent_uptime_seconds", "Seconds since the agent started.");
  const lastTelemetry = gauge(
    "edge_agent_last_telemetry_timestamp_seconds",
    "When the last telemetry sample was stored for sending (Unix time); 0 before the first.",
  );
  const outcomes = counter(
    "edge_agent_command_outcomes_total",
    "Commands from the platform by kind and the outcome they reported.",
    ["command", "outcome"],
  );
  let identity: string | null = null;

  const mirror = (metric: Counter, value: number, labels?: Record<string, string>): void => {
    if (labels) {
      metric.remove(labels);
      metric.inc(labels, value);
      return;
    }
    metric.reset();
    metric.inc(value);
  };

  return {
    contentType: registry.contentType,
    observeEvent(event) {
      if (event.type === EventType.telemetry) lastTelemetry.set(options.clock.now() / 1000);
      const outcome = commandOutcomeOf(event);
      if (outcome) outcomes.inc({ command: outcome.command, outcome: outcome.outcome });
    },
    async render(status) {
      const key = `${status.version}\u0000${status.machineId}`;
      if (identity !== key) {
        info.reset();
        info.set({ version: status.version, machine_id: status.machineId }, 1);
        identity = key;
      }
      const { outbox, connection } = status;
      pending.set(outbox.pendingCount);
      pendingBytes.set(outbox.pendingBytes);
      oldestAge.set((outbox.oldestPendingAgeMs ?? 0) / 1000);
      heldInMemory.set(outbox.heldInMemory);
      lastSequence.set(outbox.lastSequence);
      outboxError.set(outbox.lastError === null ? 0 : 1);
      mirror(delivered, outbox.deliveredCount);
      mirror(evicted, outbox.evictedTelemetry, { class: "telemetry" });
      mirror(evicted, outbox.evictedState, { class: "state" });
      mirror(deadLetters, outbox.deadLetters);
      for (const state of LINK_STATES) linkState.set({ state }, connection.state === state ? 1 : 0);
      mirror(reconnects, connection.reconnects);
      uptime.set(status.uptimeSeconds);
      return registry.metrics();
    },
  };
}
