import { loadSettings } from "../src/settings/index.ts";
import { createFleet, type Fleet, type FleetEvent, type FleetSummary } from "../src/simulator/index.ts";

/**
 * One shard of the benchmark's simulated fleet, in a process of its own (a process has only so
 * many file descriptors: each agent holds a socket and its SQLite outbox's three files). Driven
 * over the IPC channel by bench/fleet.ts; sends the fleet's events back in batches.
 */
export type ShardCommand =
  | {
      readonly type: "start";
      readonly count: number;
      readonly firstIndex: number;
      readonly server: string;
      readonly dataDir: string;
      readonly startConcurrency: number;
      /**
       * Settings every agent starts from, as the agent's EDGE_AGENT_* environment (loadSettings reads
       * it as the daemon would); none: the simulator's own defaults.
       */
      readonly settingsEnv?: Readonly<Record<string, string>>;
    }
  | { readonly type: "summary"; readonly requestId: number }
  | { readonly type: "stop" };

export type ShardReply =
  | { readonly type: "events"; readonly events: readonly FleetEvent[] }
  | { readonly type: "started" }
  | { readonly type: "summary"; readonly requestId: number; readonly summary: FleetSummary }
  | { readonly type: "failed"; readonly message: string }
  | { readonly type: "stopped" };

/** Events go to the driver in batches: one IPC message per event would cost more than the event. */
const FLUSH_EVERY_MS = 100;

const send = (reply: ShardReply): void => void process.send?.(reply);
let fleet: Fleet | null = null;
let pending: FleetEvent[] = [];
const flush = (): void => {
  if (pending.length === 0) return;
  send({ type: "events", events: pending });
  pending = [];
};
const flusher = setInterval(flush, FLUSH_EVERY_MS);

process.on("message", (command: ShardCommand) => {
  switch (command.type) {
    case "start": {
      const { settingsEnv, ...options } = command;
      const settings = settingsEnv
        ? loadSettings({ env: { ...settingsEnv }, platform: "linux", privileged: false }).settings
        : undefined;
      fleet = createFleet({ ...options, ...(settings ? { settings } : {}), onEvent: (event) => pending.push(event) });
      fleet.start().then(
        () => send({ type: "started" }),
        (error: unknown) => send({ type: "failed", message: error instanceof Error ? error.message : String(error) }),
      );
      break;
    }
    case "summary":
      if (fleet) send({ type: "summary", requestId: command.requestId, summary: fleet.summary() });
      break;
    case "stop":
      void (fleet?.stop() ?? Promise.resolve()).finally(() => {
        flush();
        clearInterval(flusher);
        send({ type: "stopped" });
        process.disconnect?.();
      });
      break;
  }
});
