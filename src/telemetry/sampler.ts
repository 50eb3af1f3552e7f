import type { TelemetrySample } from "../contracts/index.ts";
import { type Clock, timersOf } from "../runtime/index.ts";
import { type Collector, collectWithTimeout } from "./collector.ts";

/**
 * Runs every collector at once, each with its own deadline, and assembles one sample. A collector
 * that throws or hangs is named in `errors`; its part stays empty and the others are unaffected.
 */
export function createSampler(options: {
  machineId: string;
  clock: Clock;
  collectors: readonly Collector[];
  timeoutMs: number;
  tagKeyValues: () => string[];
}): {
  sample(): Promise<TelemetrySample>;
} {
  let lastSampleAtMs: number | null = null;
  return {
    async sample() {
      const startedAtMs = options.clock.monotonicMs();
      const settled = await Promise.allSettled(
        options.collectors.map((collector) =>
          collectWithTimeout(collector, options.timeoutMs, timersOf(options.clock)),
        ),
      );
      const sample: TelemetrySample = {
        machineId: options.machineId,
        timestamp: new Date(options.clock.now()).toISOString(),
        intervalSeconds: lastSampleAtMs === null ? null : Math.round((startedAtMs - lastSampleAtMs) / 10) / 100 || null,
        cpu: null,
        load: null,
        memory: null,
        filesystems: [],
        network: [],
        disks: [],
        uptimeSeconds: null,
        processCount: null,
        agent: { rssBytes: 0, heapUsedBytes: 0, cpuPercent: 0 },
        outbox: null,
        tagKeyValues: options.tagKeyValues(),
        errors: [],
      };
      lastSampleAtMs = startedAtMs;
      settled.forEach((result, index) => {
        const collector = options.collectors[index] as Collector;
        if (result.status === "fulfilled") Object.assign(sample, result.value);
        else
          sample.errors.push({
            collector: collector.name,
            message: result.reason instanceof Error ? result.reason.message : String(result.reason),
          });
      });
      return sample;
    },
  };
}
