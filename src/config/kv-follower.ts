import { setTimeout as sleep } from "node:timers/promises";
import { Kvm, KvWatchInclude, type KV, type KvEntry, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../runtime/logger.ts";
import { jitteredBackoff } from "../transport/connection-options.ts";

export interface KeyFollowerOptions {
  readonly connection: NatsConnection;
  readonly bucket: string;
  readonly keys: readonly string[];
  readonly logger: Logger;
  /** Each key's current entry (null: none), on every (re)start of the watch, before any update. */
  readonly onCurrent: (entries: ReadonlyArray<KvEntry | null>) => Promise<void>;
  /** A change to one of the keys (the watchers also replay each key's current entry: expect repeats). */
  readonly onUpdate: (entry: KvWatchEntry) => Promise<void>;
  /** Why the keys are not being followed right now, or null once they are. */
  readonly onProblem: (reason: string | null) => void;
  /** Retry delays (default 1 s doubling to 60 s, jittered). */
  readonly retry?: { readonly baseMs: number; readonly maxMs: number };
}

/**
 * Keeps a watch on some keys of a KV bucket for as long as it runs: the bucket is opened, the
 * current values read, then each key watched. Any failure on the way (no bucket yet, a permission
 * the server grants only later, a watch that ends) starts it all again after a backoff, until
 * stopped; nothing waits for a restart of the agent. Logged at warn once per kind of trouble.
 */
export function followKeys(options: KeyFollowerOptions): { stop(): void } {
  const { logger, bucket } = options;
  let stopped = false;
  const stopping = new AbortController();
  let watchers: Array<Awaited<ReturnType<KV["watch"]>>> = [];
  const backoff = jitteredBackoff(options.retry ?? { baseMs: 1_000, maxMs: 60_000 });
  let lastReason: string | null = null;

  const followOnce = async (): Promise<void> => {
    // The agent needs no right to create the bucket; the platform (or dev-setup) does.
    const kv: KV = await new Kvm(options.connection).open(bucket);
    await kv.status();
    const current = await Promise.all(options.keys.map((key) => kv.get(key)));
    // Stopping never waits for a request in flight, so one may answer after it: then it is dropped.
    if (stopped) return;
    await options.onCurrent(current);
    for (const key of options.keys) {
      if (stopped) return;
      watchers.push(await kv.watch({ key, include: KvWatchInclude.LastValue }));
    }
    options.onProblem(null);
    backoff.reset();
    lastReason = null;
    // Each watcher follows reconnects itself; when one ends anyway, the others go too and all restart.
    await Promise.race(
      watchers.map(async (watcher) => {
        for await (const entry of watcher) {
          if (stopped) return;
          await options.onUpdate(entry);
        }
      }),
    );
  };

  void (async () => {
    while (!stopped) {
      let reason = "the watch ended";
      try {
        await followOnce();
      } catch (error) {
        reason = error instanceof Error ? error.message : String(error);
      } finally {
        for (const watcher of watchers) watcher.stop();
        watchers = [];
      }
      if (stopped) return;
      const delayMs = backoff.next();
      options.onProblem(reason);
      if (reason !== lastReason) logger.warn({ reason, bucket, retryInMs: delayMs }, `cannot follow the ${bucket} bucket; retrying until it works`);
      else logger.debug({ reason, bucket, retryInMs: delayMs }, `still cannot follow the ${bucket} bucket`);
      lastReason = reason;
      await sleep(delayMs, undefined, { signal: stopping.signal, ref: false }).catch(() => undefined);
    }
  })();

  return {
    stop() {
      stopped = true;
      stopping.abort();
      for (const watcher of watchers) watcher.stop();
    },
  };
}
