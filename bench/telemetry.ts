import type { EventSink } from "../src/events/event-sink.ts";
import { systemClock } from "../src/runtime/clock.ts";
import { silentLogger } from "../src/runtime/logger.ts";
import { createTelemetry } from "../src/telemetry/index.ts";

/**
 * Cost of one telemetry sample: our collector set against the plain systeminformation calls that
 * gather the same metrics, measured in the same run. BENCH_TELEMETRY_SAMPLES (default 30) each.
 */
export const name = "telemetry";

const nullSink: EventSink = { emit: async () => ({ eventId: "", sequence: 0 }) };

async function measure(
  samples: number,
  work: () => Promise<unknown>,
): Promise<{ cpuMsPerSample: number; wallMsPerSample: number }> {
  await work(); // warm-up, and the first reading rates need
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  for (let index = 0; index < samples; index++) await work();
  const cpu = process.cpuUsage(cpuBefore);
  return {
    cpuMsPerSample: Number(((cpu.user + cpu.system) / 1000 / samples).toFixed(2)),
    wallMsPerSample: Number(((performance.now() - wallBefore) / samples).toFixed(2)),
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const samples = Number(process.env.BENCH_TELEMETRY_SAMPLES ?? 30);
  const telemetry = createTelemetry({
    machineId: "bench",
    clock: systemClock,
    logger: silentLogger(),
    sink: nullSink,
    telemetrySchedule: "0 0 0 1 1 *",
    inventorySchedule: "0 0 0 1 1 *",
    platform: process.platform,
  });
  const ours = await measure(samples, () => telemetry.collectNow());
  const si = await import("systeminformation");
  // The same metrics through systeminformation. Child processes it spawns are not in our
  // process's CPU time, so wall time is the fairer comparison for those calls.
  const plain = await measure(samples, () =>
    Promise.all([
      si.currentLoad(),
      si.mem(),
      si.fsSize(),
      si.networkStats("*"),
      si.disksIO(),
      si.time(),
      si.processes(),
    ]),
  );
  return {
    samples,
    ours,
    systeminformation: plain,
    ratio: {
      cpu: Number((ours.cpuMsPerSample / plain.cpuMsPerSample).toFixed(3)),
      wall: Number((ours.wallMsPerSample / plain.wallMsPerSample).toFixed(3)),
    },
  };
}
