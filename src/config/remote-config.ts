import type { NatsConnection } from "@nats-io/transport-node";
import * as z from "zod";
import {
  AGENT_CONFIG_BUCKET,
  AgentConfiguration,
  CONFIG_DEFAULTS_KEY,
  type ConfigStatus,
  type ConsumerBinding,
  configKeyForMachine,
  EventType,
  machineConsumers,
} from "../contracts/index.ts";
import type { EventSink } from "../events/event-sink.ts";
import { jitteredBackoff } from "../runtime/backoff.ts";
import { type Clock, sleepOn } from "../runtime/clock.ts";
import { describeIssues, truncateInput } from "../runtime/echo.ts";
import type { Logger } from "../runtime/logger.ts";
import { SerialQueue } from "../runtime/serial-queue.ts";
import type { DurableConsumer } from "../transport/durable-consumer.ts";
import type { CommandTrust } from "../trust/index.ts";
import { applyToComponents, type ConfigurableComponent } from "./apply.ts";
import { type ConfigEntry, readConfigKey, watchConfigKey } from "./config-keys.ts";
import { type ConfigEntryMeaning, readConfigEntry } from "./kv-entry.ts";
import { type LastGoodConfiguration, lastGoodStore } from "./last-good-store.ts";
import { mergeDocuments } from "./merge.ts";
import { validateDocument, withoutClaims } from "./validate.ts";

export interface RemoteConfigOptions {
  readonly machineId: string;
  readonly configDir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sink: EventSink;
  readonly components: readonly ConfigurableComponent[];
  /**
   * Signature, scope (`kv:<key>`) and serial of every KV document, when a signing key is set.
   * Pushed documents are checked by the push listener (their push is what is signed).
   */
  readonly trust: CommandTrust;
  /** Retry delays when the bucket cannot be followed (default 1 s doubling to 60 s). */
  readonly retry?: { readonly baseMs: number; readonly maxMs: number };
  /** The local settings as a configuration: what every remote document is merged over. */
  readonly baseline: AgentConfiguration;
}

export interface RemoteConfig {
  /** Applies the last good configuration kept on disk (works offline). */
  start(): Promise<void>;
  /** The link is up: follow the KV keys from now on, retrying whatever fails (once; later calls do nothing). */
  attach(connection: NatsConnection): void;
  stop(): Promise<void>;
  current(): AgentConfiguration;
  lastStatus(): ConfigStatus | null;
  /** Why the KV keys are not being followed right now (e.g. a permission denied), or null. */
  watchProblem(): string | null;
  /**
   * A configuration document pushed as a file (DownloadConfiguration): validated and applied as a
   * put to this machine's key would be. Pushed documents carry their own `revision`, which must
   * rise from one push to the next. The caller has checked the push that brought it.
   */
  applyPushed(document: unknown, causationId?: string): Promise<ConfigStatus>;
}

type Slot = "defaults" | "machine";
interface SlotValue {
  readonly revision: number;
  readonly document: Record<string, unknown>;
}

/**
 * Remote configuration from the JetStream KV bucket `agent-config`: keys `defaults` and
 * `machine.{id}`, merged machine over defaults over the local settings. Revisions are the bucket's
 * own (a put to either key raises it), so the effective revision is the higher of the two and a
 * revision is never applied twice. Every outcome is reported on `config.status`. The keys are read
 * only in ways the machine's permissions confine to its own keys (config-keys.ts).
 */
export function createRemoteConfig(options: RemoteConfigOptions): RemoteConfig {
  const { logger, clock, sink, machineId } = options;
  const keys: Record<Slot, string> = { defaults: CONFIG_DEFAULTS_KEY, machine: configKeyForMachine(machineId) };
  const consumerOf: Record<Slot, ConsumerBinding> = {
    defaults: machineConsumers(machineId).configDefaults,
    machine: machineConsumers(machineId).configMachine,
  };
  const store = lastGoodStore(options.configDir, logger, () => clock.now());
  const slots: Record<Slot, SlotValue | null> = { defaults: null, machine: null };
  /** The newest KV revision looked at per key, accepted or not: nothing is judged twice. */
  const seen: Record<Slot, number> = { defaults: 0, machine: 0 };
  let applied: AgentConfiguration = options.baseline;
  /** The slot revisions (and pushed revision) of what runs: the same set is never applied twice. */
  let appliedFrom = { defaults: 0, machine: 0 };
  let pushedRevision = 0;
  let status: ConfigStatus | null = null;
  const queue = new SerialQueue();
  let stopped = false;
  /** Cuts a wait for the bucket short when the agent stops. */
  const stopping = new AbortController();
  let attached = false;
  const watchers: DurableConsumer[] = [];
  let watchProblem: string | null = null;

  const report = async (
    revision: number,
    outcome: ConfigStatus["status"],
    error?: string,
    causationId?: string,
  ): Promise<ConfigStatus> => {
    status = { revision, status: outcome, error: error ?? null, timestamp: new Date(clock.now()).toISOString() };
    if (outcome === "APPLIED") logger.info({ revision }, "remote configuration applied");
    else
      logger.warn(
        { revision, status: outcome, error },
        `remote configuration ${outcome === "REJECTED" ? "rejected" : "rolled back"}`,
      );
    await sink
      .emit({ type: EventType.configStatus, body: status, ...(causationId ? { causationId } : {}) })
      .catch((emitError: unknown) => logger.error({ err: emitError }, "cannot store the config status"));
    return status;
  };

  const effective = (
    revision: number,
    documents: ReadonlyArray<Record<string, unknown> | undefined>,
  ): AgentConfiguration =>
    AgentConfiguration.parse({
      ...mergeDocuments(options.baseline as unknown as Record<string, unknown>, ...documents),
      revision,
    });

  /**
   * Applies defaults and machine documents as they stand; `revision` is what triggered it (reported).
   * `restored`: the last good documents from disk, applied again at start. Their APPLIED was
   * reported when they were first applied, so it is not sent again (a revision is reported applied
   * once); a refusal now is news, and is reported.
   */
  const applyEffective = async (
    revision: number,
    persist: boolean,
    causationId?: string,
    restored = false,
  ): Promise<ConfigStatus> => {
    const from = { defaults: slots.defaults?.revision ?? 0, machine: slots.machine?.revision ?? 0 };
    let next: AgentConfiguration;
    try {
      next = effective(revision, [slots.defaults?.document, slots.machine?.document]);
    } catch (error) {
      // Each document may be valid and the merge not (tags from both keys and the local settings together).
      const reason =
        error instanceof z.ZodError ? describeIssues(error.issues) : truncateInput((error as Error).message, 2_000);
      return report(revision, "REJECTED", `the merged configuration is invalid: ${reason}`, causationId);
    }
    const outcome = await applyToComponents(options.components, next, applied, logger);
    if (outcome.status === "ROLLED_BACK") return report(revision, "ROLLED_BACK", outcome.error, causationId);
    applied = next;
    appliedFrom = from;
    if (persist) {
      const record: LastGoodConfiguration = {
        revision,
        defaults: slots.defaults,
        machine: slots.machine,
        pushedRevision,
      };
      await store
        .save(record)
        .catch((error: unknown) =>
          logger.error(
            { err: error },
            "cannot persist the applied configuration; it runs, but a restart offline will not have it",
          ),
        );
    }
    if (restored) {
      status = { revision, status: "APPLIED", error: null, timestamp: new Date(clock.now()).toISOString() };
      return status;
    }
    return report(revision, "APPLIED", undefined, causationId);
  };

  /** One KV entry for one slot: judged first; a refused one changes nothing (the old one stays). */
  const take = async (slot: Slot, entry: ConfigEntry, applyNow = true): Promise<void> => {
    if (entry.revision <= Math.max(seen[slot], slots[slot]?.revision ?? 0)) return;
    seen[slot] = entry.revision;
    let meaning: ConfigEntryMeaning;
    try {
      meaning = await readConfigEntry(entry, options.trust);
    } catch (error) {
      await report(entry.revision, "REJECTED", (error as Error).message);
      return;
    }
    slots[slot] = { revision: entry.revision, document: meaning.kind === "deleted" ? {} : meaning.document };
    if (applyNow) await applyEffective(entry.revision, true);
  };

  const serialized = <T>(work: () => Promise<T>): Promise<T> => queue.run(work);

  /** Both keys' current values; waits (retrying with backoff) for a bucket that does not exist yet or a read denied. */
  const readBoth = async (connection: NatsConnection): Promise<Record<Slot, ConfigEntry | null>> => {
    const backoff = jitteredBackoff(options.retry ?? { baseMs: 1_000, maxMs: 60_000 });
    let lastReason: string | null = null;
    for (;;) {
      try {
        const [defaults, machine] = await Promise.all([
          readConfigKey(connection, keys.defaults),
          readConfigKey(connection, keys.machine),
        ]);
        watchProblem = null;
        return { defaults, machine };
      } catch (error) {
        if (stopped) throw error;
        const delay = backoff.next();
        const reason = error instanceof Error ? error.message : String(error);
        watchProblem = reason;
        // Once per kind of trouble at warn level; the retries themselves only at debug. The agent
        // needs no right to create the bucket: the platform (or dev-setup) does, with direct gets allowed.
        if (reason !== lastReason)
          logger.warn(
            { reason },
            `cannot read the ${AGENT_CONFIG_BUCKET} bucket; remote configuration waits for it and retries`,
          );
        else logger.debug({ reason, retryInMs: delay }, `still cannot read the ${AGENT_CONFIG_BUCKET} bucket`);
        lastReason = reason;
        await sleepOn(clock, delay, stopping.signal);
      }
    }
  };

  /** Both current values at once, applied once; only what differs from what already runs. */
  const takeCurrent = async (defaults: ConfigEntry | null, machine: ConfigEntry | null): Promise<void> => {
    if (defaults) await take("defaults", defaults, false);
    if (machine) await take("machine", machine, false);
    const current = { defaults: slots.defaults?.revision ?? 0, machine: slots.machine?.revision ?? 0 };
    if (current.defaults !== appliedFrom.defaults || current.machine !== appliedFrom.machine) {
      await applyEffective(Math.max(current.defaults, current.machine), true);
    }
  };

  return {
    async start() {
      const lastGood = await store.load();
      if (!lastGood) return;
      slots.defaults = lastGood.defaults;
      slots.machine = lastGood.machine;
      pushedRevision = lastGood.pushedRevision;
      seen.defaults = lastGood.defaults?.revision ?? 0;
      seen.machine = lastGood.machine?.revision ?? 0;
      const outcome = await serialized(() => applyEffective(lastGood.revision, false, undefined, true));
      logger.info({ revision: lastGood.revision, status: outcome.status }, "last good remote configuration from disk");
    },
    attach(connection) {
      if (attached || stopped) return;
      attached = true;
      void (async () => {
        // Both current values first, applied once; the consumers then bring only what is newer.
        const { defaults, machine } = await readBoth(connection);
        await serialized(() => takeCurrent(defaults, machine));
        if (stopped) return;
        for (const slot of ["defaults", "machine"] as const) {
          watchers.push(
            watchConfigKey({
              connection,
              key: keys[slot],
              binding: consumerOf[slot],
              logger,
              clock,
              onEntry: (entry) => serialized(() => take(slot, entry)),
            }),
          );
        }
      })().catch((error: unknown) => {
        if (!stopped) logger.error({ err: error }, "remote configuration watch ended");
      });
    },
    async stop() {
      stopped = true;
      stopping.abort();
      await Promise.all(watchers.map((watcher) => watcher.stop()));
      await queue.idle();
    },
    current: () => applied,
    lastStatus: () => status,
    watchProblem: () => watchProblem,
    applyPushed(document, causationId) {
      return serialized(async () => {
        const claimed = (document as { revision?: unknown } | null)?.revision;
        if (typeof claimed !== "number" || !Number.isInteger(claimed) || claimed < 1) {
          return report(
            pushedRevision,
            "REJECTED",
            "a pushed configuration needs a whole-number revision of 1 or more",
            causationId,
          );
        }
        if (claimed <= pushedRevision)
          return report(
            claimed,
            "REJECTED",
            `revision ${claimed} is not newer than the last pushed revision ${pushedRevision}`,
            causationId,
          );
        let valid: Record<string, unknown>;
        try {
          valid = validateDocument(document, `pushed configuration revision ${claimed}`);
        } catch (error) {
          return report(claimed, "REJECTED", (error as Error).message, causationId);
        }
        const { revision: _ownRevision, ...settings } = withoutClaims(valid);
        const previousMachine = slots.machine;
        const previousPushed = pushedRevision;
        slots.machine = { revision: slots.machine?.revision ?? 0, document: settings };
        pushedRevision = claimed;
        const outcome = await applyEffective(claimed, true, causationId);
        if (outcome.status !== "APPLIED") {
          slots.machine = previousMachine;
          pushedRevision = previousPushed;
        }
        return outcome;
      });
    },
  };
}
