import { holdFor } from "./wait-for.ts";

/**
 * Plays the service manager (systemd's Restart=always) for a test: starts a process, and starts
 * it again each time it exits, a little later, until stopped or out of restarts.
 */
export interface Supervised<P> {
  /** The process running now (or the last one). */
  current(): P;
  /** Exit codes (or signal names) of every process that ended, in order. */
  readonly exits: Array<number | string>;
  stop(): Promise<void>;
}

export function supervise<
  P extends {
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    stop(signal?: NodeJS.Signals): Promise<unknown>;
  },
>(start: () => Promise<P>, options: { restartDelayMs?: number; maxStarts?: number } = {}): Promise<Supervised<P>> {
  const restartDelayMs = options.restartDelayMs ?? 200;
  const maxStarts = options.maxStarts ?? 10;
  const exits: Array<number | string> = [];
  let stopped = false;
  let starts = 0;
  let running: P;
  const watch = (process: P): void => {
    void process.exited.then(async ({ code, signal }) => {
      exits.push(code ?? signal ?? "unknown");
      if (stopped || starts >= maxStarts) return;
      await holdFor(restartDelayMs, "the service manager's delay before a restart (systemd's RestartSec)");
      if (stopped) return;
      starts += 1;
      const next = await start();
      running = next;
      if (stopped) await next.stop("SIGTERM");
      else watch(next);
    });
  };
  return (async () => {
    starts += 1;
    running = await start();
    watch(running);
    return {
      current: () => running,
      exits,
      async stop() {
        stopped = true;
        await running.stop("SIGTERM");
      },
    };
  })();
}
