import type { TelemetrySample } from "../contracts/index.ts";
import { EdgeError } from "../errors/index.ts";
import type { Cancel, Timers } from "../runtime/index.ts";

/** The part of a sample one collector fills in. */
export type SamplePart = Partial<
  Omit<TelemetrySample, "machineId" | "timestamp" | "errors" | "tagKeyValues" | "agent">
> & {
  agent?: TelemetrySample["agent"];
};

/**
 * One input, Telegraf-style: a name and `collect()`. A collector keeps whatever it needs between
 * runs (the previous counters, for rates) in its own closure: no module state.
 */
export interface Collector {
  readonly name: string;
  collect(): Promise<SamplePart>;
}

export class CollectorTimeoutError extends EdgeError {
  readonly code = "EDGE_COLLECTOR_TIMEOUT";
  constructor(collector: string, timeoutMs: number) {
    super(`${collector} did not finish within ${timeoutMs} ms`);
    this.name = "CollectorTimeoutError";
  }
}

/** Runs one collector with a deadline on `timers`; a hung one is reported, never waited for. */
export async function collectWithTimeout(collector: Collector, timeoutMs: number, timers: Timers): Promise<SamplePart> {
  let cancelDeadline: Cancel = () => undefined;
  const deadline = new Promise<never>((_, reject) => {
    cancelDeadline = timers.after(timeoutMs, () => reject(new CollectorTimeoutError(collector.name, timeoutMs)));
  });
  try {
    return await Promise.race([collector.collect(), deadline]);
  } finally {
    cancelDeadline();
  }
}
