import type { Logger } from "../runtime/index.ts";
import { type Clock, FaultLatch, timersOf } from "../runtime/index.ts";
import { type AgentStatus, STATUS_FILE_INTERVAL_MS, writeStatusFile } from "./status.ts";

export interface StatusFileWriter {
  /** Writes the file now (the link came up or went down: `status` must not say the old state for 10 s). */
  refresh(): Promise<void>;
  /** Stops the timer and writes the file a last time. */
  stop(): Promise<void>;
}

/**
 * Keeps `status.json` in the data dir current, independently of the heartbeat interval, so an
 * offline `edge-agent status` is current. Written once before this resolves.
 */
export async function startStatusFile(options: {
  dataDir: string;
  clock: Clock;
  logger: Logger;
  current: () => Promise<AgentStatus>;
  recordError: (source: string, error: unknown) => void;
}): Promise<StatusFileWriter> {
  const fault = new FaultLatch(options.logger, options.clock);
  const refresh = async (): Promise<void> => {
    try {
      await writeStatusFile(options.dataDir, await options.current());
      fault.recover("the status file is written again");
    } catch (error) {
      options.recordError("status-file", error);
      fault.fail(
        "cannot write the status file",
        error,
        "`edge-agent status` shows the last one written, and how old it is; writing is retried",
      );
    }
  };
  await refresh();
  const cancel = timersOf(options.clock).every(STATUS_FILE_INTERVAL_MS, () => void refresh());
  return {
    refresh,
    async stop() {
      cancel();
      await refresh();
    },
  };
}
