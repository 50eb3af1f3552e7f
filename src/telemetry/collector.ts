import type { TelemetrySample } from "../contracts/index.ts";

/** The part of a sample one collector fills in. */
export type SamplePart = Partial<Omit<TelemetrySample, "machineId" | "timestamp" | "errors" | "tagKeyValues" | "agent">> & {
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

export class CollectorTimeoutError extends Error {
  readonly code = "EDGE_COLLECTOR_TIMEOUT";
  constructor(collector: string, timeoutMs: number) {
    super(`${collector} did not finish within ${timeoutMs} ms`);
    this.name = "CollectorTimeoutError";
  }
}

/** Runs one collector with a deadline; a hung one is reported, never waited for. */
export async function collectWithTimeout(collector: Collector, timeoutMs: number): Promise<SamplePart> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CollectorTimeoutError(collector.name, timeoutMs)), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([collector.collect(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
