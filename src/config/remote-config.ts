import * as z from "zod";
import { type CommandOutcome, type CommandRoute, doneThen } from "../capability/index.ts";
import {
  AgentConfiguration,
  CONFIG_DEFAULTS_KEY,
  type ConfigStatus,
  configKeyForMachine,
  EventType,
  machineFeeds,
} from "../contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../events/index.ts";
import type { CommandRow } from "../outbox/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";
import { describeIssues, SerialQueue, truncateInput } from "../runtime/index.ts";
import { type CommandTrust, kvScope } from "../trust/index.ts";
import { applyToComponents, type ConfigurableComponent } from "./apply.ts";
import { configEntryOfRow } from "./config-keys.ts";
import { readConfigEntry } from "./kv-entry.ts";
import { type LastGoodConfiguration, lastGoodStore } from "./last-good-store.ts";
import { mergeDocuments } from "./merge.ts";
import { validateDocument, withoutClaims } from "./validate.ts";

export interface RemoteConfigOptions {
  readonly machineId: string;
  readonly configDir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where pushed documents report (a KV revision's status is stored with its command instead). */
  readonly sink: EventSink;
  readonly components: readonly ConfigurableComponent[];
  /**
   * Signature, scope (`kv:<key>`) and serial of every KV document, when a signing key is set.
   * Pushed documents are checked by the push listener (their push is what is signed).
   */
  readonly trust: CommandTrust;
  /** The local settings as a configuration: what every remote document is merged over. */
  readonly baseline: AgentConfiguration;
}

export interface RemoteConfig {
  /** Applies the last good configuration kept on disk (works offline). */
  start(): Promise<void>;
  stop(): Promise<void>;
  current(): AgentConfiguration;
  lastStatus(): ConfigStatus | null;
  /**
   * One stored revision of `defaults` or `machine.{id}` (a command feed's row): judged, merged,
   * applied; the outcome is the `config.status` stored with it.
   */
  takeRevision(row: CommandRow): Promise<CommandOutcome>;
  /** The status that reports a revision refused before it was read (expired, a copied answer, cut short by a crash). */
  refusal(reason: string, row: CommandRow): OutgoingEvent;
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
 * own (a put to either key raises it), so the effective revision is the one that triggered the
 * apply; each revision reaches this once, through the agent's command inbox (two `latest` feeds),
 * so none is applied twice, and a restart does not report again what it applied before.
 */
export function createRemoteConfig(options: RemoteConfigOptions): RemoteConfig {
  const { logger, clock, sink, machineId } = options;
  const feeds = machineFeeds(machineId);
  const slotOfFeed: Record<string, Slot> = {
    [feeds.configDefaults.key]: "defaults",
    [feeds.configMachine.key]: "machine",
  };
  const keys: Record<Slot, string> = { defaults: CONFIG_DEFAULTS_KEY, machine: configKeyForMachine(machineId) };
  const store = lastGoodStore(options.configDir, logger, () => clock.now());
  const slots: Record<Slot, SlotValue | null> = { defaults: null, machine: null };
  let applied: AgentConfiguration = options.baseline;
  let pushedRevision = 0;
  let status: ConfigStatus | null = null;
  const queue = new SerialQueue();

  const judged = (revision: number, outcome: ConfigStatus["status"], error?: string): ConfigStatus => {
    status = { revision, status: outcome, error: error ?? null, timestamp: new Date(clock.now()).toISOString() };
    if (outcome === "APPLIED") logger.info({ revision }, "remote configuration applied");
    else
      logger.warn(
        { revision, status: outcome, error },
        `remote configuration ${outcome === "REJECTED" ? "rejected" : "rolled back"}`,
      );
    return status;
  };
  const statusEvent = (body: ConfigStatus): OutgoingEvent => ({ type: EventType.configStatus, body });

  const effective = (
    revision: number,
    documents: ReadonlyArray<Record<string, unknown> | undefined>,
  ): AgentConfiguration =>
    AgentConfiguration.parse({
      ...mergeDocuments(options.baseline as unknown as Record<string, unknown>, ...documents),
      revision,
    });

  /** Applies defaults and machine documents as they stand; `revision` is what triggered it (reported). */
  const applyEffective = async (revision: number, persist: boolean): Promise<ConfigStatus> => {
    let next: AgentConfiguration;
    try {
      next = effective(revision, [slots.defaults?.document, slots.machine?.document]);
    } catch (error) {
      // Each document may be valid and the merge not (tags from both keys and the local settings together).
      const reason =
        error instanceof z.ZodError ? describeIssues(error.issues) : truncateInput((error as Error).message, 2_000);
      return judged(revision, "REJECTED", `the merged configuration is invalid: ${reason}`);
    }
    const outcome = await applyToComponents(options.components, next, applied, logger);
    if (outcome.status === "ROLLED_BACK") return judged(revision, "ROLLED_BACK", outcome.error);
    applied = next;
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
    return judged(revision, "APPLIED");
  };

  /**
   * One KV revision for one slot: judged first; a refused one changes nothing (the old one stays).
   * Also says which signed serial was admitted (to finish once its status is stored).
   */
  const take = async (slot: Slot, row: CommandRow): Promise<{ status: ConfigStatus; serial: number | null }> => {
    const entry = configEntryOfRow(keys[slot], row);
    const previous = slots[slot];
    let meaning: Awaited<ReturnType<typeof readConfigEntry>>;
    try {
      meaning = await readConfigEntry(entry, options.trust);
    } catch (error) {
      return { status: judged(entry.revision, "REJECTED", (error as Error).message), serial: null };
    }
    slots[slot] = { revision: entry.revision, document: meaning.kind === "deleted" ? {} : meaning.document };
    const outcome = await applyEffective(entry.revision, true);
    if (outcome.status !== "APPLIED") slots[slot] = previous;
    return { status: outcome, serial: meaning.serial };
  };

  return {
    async start() {
      const lastGood = await store.load();
      if (!lastGood) return;
      slots.defaults = lastGood.defaults;
      slots.machine = lastGood.machine;
      pushedRevision = lastGood.pushedRevision;
      const outcome = await queue.run(() => applyEffective(lastGood.revision, false));
      logger.info({ revision: lastGood.revision, status: outcome.status }, "last good remote configuration from disk");
    },
    async stop() {
      await queue.idle();
    },
    current: () => applied,
    lastStatus: () => status,
    takeRevision(row) {
      return queue.run(async () => {
        const slot = slotOfFeed[row.feed] ?? "machine";
        const { status: outcome, serial } = await take(slot, row);
        // Finished once the status is stored with it: a crash before leaves it open, taken again (never as a replay).
        return doneThen(statusEvent(outcome), async () => {
          if (serial !== null) await options.trust.finish(kvScope(keys[slot]), serial);
        });
      });
    },
    refusal: (reason, row) => statusEvent(judged(row.streamSequence, "REJECTED", reason)),
    applyPushed(document, causationId) {
      return queue.run(async () => {
        const report = async (body: ConfigStatus): Promise<ConfigStatus> => {
          await sink
            .emit({ ...statusEvent(body), ...(causationId ? { causationId } : {}) })
            .catch((emitError: unknown) => logger.error({ err: emitError }, "cannot store the config status"));
          return body;
        };
        const claimed = (document as { revision?: unknown } | null)?.revision;
        if (typeof claimed !== "number" || !Number.isInteger(claimed) || claimed < 1) {
          return report(
            judged(pushedRevision, "REJECTED", "a pushed configuration needs a whole-number revision of 1 or more"),
          );
        }
        if (claimed <= pushedRevision)
          return report(
            judged(
              claimed,
              "REJECTED",
              `revision ${claimed} is not newer than the last pushed revision ${pushedRevision}`,
            ),
          );
        let valid: Record<string, unknown>;
        try {
          valid = validateDocument(document, `pushed configuration revision ${claimed}`);
        } catch (error) {
          return report(judged(claimed, "REJECTED", (error as Error).message));
        }
        const { revision: _ownRevision, ...settings } = withoutClaims(valid);
        const previousMachine = slots.machine;
        const previousPushed = pushedRevision;
        slots.machine = { revision: slots.machine?.revision ?? 0, document: settings };
        pushedRevision = claimed;
        const outcome = await applyEffective(claimed, true);
        if (outcome.status !== "APPLIED") {
          slots.machine = previousMachine;
          pushedRevision = previousPushed;
        }
        return report(outcome);
      });
    },
  };
}

/**
 * The route that brings the machine's two configuration keys to `remoteConfig`: two `latest` feeds;
 * applying a configuration again is harmless (the same revision, the same settings), so one a crash
 * cut short is applied once more rather than left unapplied until the next change.
 */
export function remoteConfigRoute(machineId: string, remoteConfig: RemoteConfig): CommandRoute<never> {
  const feeds = machineFeeds(machineId);
  return {
    feeds: [feeds.configDefaults, feeds.configMachine],
    interrupted: "retry-once",
    rowHandler: {
      what: "remote configuration",
      handle: (row) => remoteConfig.takeRevision(row),
      refusal: (reason, row) => remoteConfig.refusal(reason, row),
    },
  };
}
