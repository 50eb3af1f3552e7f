/**
 * What the command line knows about the process it runs in. The agent's library code never reads
 * the process (the fleet simulator runs many agents in one, each posing as its own machine), so the
 * CLI reads it here, once, and passes it down.
 */
export interface ProcessHost {
  readonly platform: NodeJS.Platform;
  /** Root (or Windows, which has no uid): system paths by default. */
  readonly privileged: boolean;
}

export const processHost: ProcessHost = {
  platform: process.platform,
  privileged: typeof process.getuid !== "function" || process.getuid() === 0,
};
