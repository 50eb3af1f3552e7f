import type { OutboxCounts } from "../capability/index.ts";
import type { Clock } from "../runtime/index.ts";
import type { Collector } from "./collector.ts";

/** The agent's own footprint, and its outbox depth. */
export function agentCollectors(options: {
  clock: Clock;
  outboxGauge?: (() => OutboxCounts | null) | undefined;
}): Collector[] {
  let previous: { atMs: number; cpu: NodeJS.CpuUsage } | null = null;
  const self: Collector = {
    name: "agent",
    async collect() {
      const now = { atMs: options.clock.monotonicMs(), cpu: process.cpuUsage() };
      const before = previous;
      previous = now;
      const elapsedMicros = before ? (now.atMs - before.atMs) * 1000 : 0;
      const usedMicros = before ? now.cpu.user - before.cpu.user + (now.cpu.system - before.cpu.system) : 0;
      return {
        agent: {
          rssBytes: process.memoryUsage.rss(),
          heapUsedBytes: process.memoryUsage().heapUsed,
          cpuPercent: elapsedMicros > 0 ? Math.round((usedMicros / elapsedMicros) * 10_000) / 100 : 0,
        },
      };
    },
  };
  const outbox: Collector = {
    name: "outbox",
    async collect() {
      const stats = options.outboxGauge?.() ?? null;
      if (!stats) return { outbox: null };
      const { pendingCount, pendingBytes, oldestPendingAgeMs, evictedTelemetry, evictedState, deadLetters } = stats;
      return {
        outbox: { pendingCount, pendingBytes, oldestPendingAgeMs, evictedTelemetry, evictedState, deadLetters },
      };
    },
  };
  return [self, outbox];
}
