import type { NatsConnection } from "@nats-io/transport-node";
// One function each, not the whole package: `semver` loads its 47 modules (~2 MB resident) for these.
import semverEq from "semver/functions/eq.js";
import semverLt from "semver/functions/lt.js";
import {
  type CommandDelivery,
  type CommandHandler,
  type CommandOutcome,
  done,
  reject,
  retryAfter,
  retryWithBackoff,
} from "../capability/index.ts";
import {
  ClientUpdateMessage,
  type ClientUpdateState,
  type ClientUpdateStatus,
  type DownloadConfiguration,
  type DownloadRecord,
  EventType,
  fleetSubjects,
  type OsName,
} from "../contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../events/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";
import { downloadRecordOf } from "./launch-decision.ts";
import { MAX_AGENT_BINARY_BYTES, type SelfUpdateChecksumPolicy, stageVersion, stagingRoomProblem } from "./staging.ts";
import type { UpdateRecord } from "./update-record.ts";
import type { UpdateState } from "./update-state.ts";

const ARCH_ALIASES: Readonly<Record<string, readonly string[]>> = {
  x64: ["x64", "amd64", "x86_64"],
  arm64: ["arm64", "aarch64"],
};

/**
 * The entry for this OS; when there are several (one per architecture), the one whose name or
 * link names this machine's architecture. DownloadConfiguration has no architecture field.
 */
export function pickBinaryFor(
  list: readonly DownloadConfiguration[],
  os: OsName,
  arch: string,
): DownloadConfiguration | null {
  const forOs = list.filter((entry) => entry.os === os && entry.link);
  if (forOs.length <= 1) return forOs[0] ?? null;
  const mentions = (entry: DownloadConfiguration, names: readonly string[]): boolean => {
    const text = `${entry.agentFileName ?? ""} ${entry.fileName ?? ""} ${entry.link ?? ""}`.toLowerCase();
    return names.some((name) => new RegExp(`(^|[^a-z0-9])${name}([^a-z0-9]|$)`).test(text));
  };
  return forOs.find((entry) => mentions(entry, ARCH_ALIASES[arch] ?? [arch])) ?? null;
}

export interface ClientUpdateHandlerOptions {
  readonly os: OsName;
  readonly arch: string;
  readonly runningVersion: string;
  /** This machine's own update subject (a version rolled back here is tried again only from it). */
  readonly machineSubject: string;
  readonly record: UpdateRecord;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sink: EventSink;
  /** Absent: updates are refused (nothing could start the new version). */
  readonly requestRestart?: ((reason: string) => void) | undefined;
  readonly childEnvironment?: NodeJS.ProcessEnv | undefined;
  /** The live policy (the remote configuration changes it) and the link, read at each update. */
  readonly checksumPolicy: () => SelfUpdateChecksumPolicy;
  readonly connection: () => NatsConnection | null;
}

/**
 * `client-update` as a command handler: refuse downgrades and versions rolled back here (when the
 * whole fleet is told), pick this OS's and architecture's binary, stage it (staging.ts), record it
 * as the trial and restart into it. The next version takes what arrives while a restart is pending;
 * a version on trial takes nothing before the link made it the active one.
 */
export function clientUpdateHandler(options: ClientUpdateHandlerOptions): CommandHandler<ClientUpdateMessage> {
  const { logger, clock, runningVersion, record } = options;

  const refusal = (version: string, state: ClientUpdateState, error: string): OutgoingEvent => {
    logger.warn({ version, state, error }, "self-update refused or failed");
    return {
      type: EventType.clientUpdateStatus,
      body: { version, runningVersion, state, error, timestamp: new Date(clock.now()).toISOString() },
    };
  };

  const report = async (
    version: string,
    state: ClientUpdateState,
    causationId: string,
    download: DownloadRecord | null,
  ): Promise<void> => {
    const body: ClientUpdateStatus = {
      version,
      runningVersion,
      state,
      error: null,
      timestamp: new Date(clock.now()).toISOString(),
      ...(download ? { download } : {}),
    };
    await options.sink.emit({ type: EventType.clientUpdateStatus, body, causationId });
  };

  /** Refused on its merits whatever this machine holds (done, not rejected: the command itself was sound), or null. */
  const refusedOutright = (target: string): CommandOutcome | null => {
    if (semverLt(target, runningVersion))
      return done(
        refusal(
          target,
          "REJECTED",
          `version ${target} is older than the running ${runningVersion}: downgrades are refused`,
        ),
      );
    if (!options.requestRestart)
      return done(refusal(target, "REJECTED", "this agent cannot restart itself (it is not the edge-agent daemon)"));
    return null;
  };

  /** This OS's binary of `message`, or what to do instead: refused, or waiting for a trial to end. */
  const binaryOrOutcome = (
    message: ClientUpdateMessage,
    state: UpdateState,
    subject: string,
  ): (DownloadConfiguration & { link: string }) | CommandOutcome => {
    const target = message.version;
    const rolledBack = state.rolledBack.find((entry) => entry.version === target);
    if (rolledBack && subject === fleetSubjects.clientUpdate)
      return done(
        refusal(
          target,
          "REJECTED",
          `version ${target} was rolled back here at ${rolledBack.at} (${rolledBack.reason}); send it to ${options.machineSubject} to try it again`,
        ),
      );
    if (state.trial && !record.isTrialOfThisVersion(state)) return retryAfter(30_000);
    const entry = pickBinaryFor(message.downloadConfigurations, options.os, options.arch);
    if (!entry?.link)
      return done(refusal(target, "REJECTED", `the update has no binary for ${options.os}/${options.arch}`));
    if (!entry.sha256 && !options.checksumPolicy().allowMissingChecksum) {
      const reason =
        "the update's binary has no sha256, and this agent requires one (toolPolicy.allowMissingChecksum is off)";
      return reject(reason, refusal(target, "REJECTED", reason));
    }
    return { ...entry, link: entry.link };
  };

  const update = async (message: ClientUpdateMessage, delivery: CommandDelivery): Promise<CommandOutcome> => {
    const target = message.version;
    if (semverEq(target, runningVersion)) {
      logger.info({ version: target }, "client-update for the version already running: nothing to do");
      return done();
    }
    const outright = refusedOutright(target);
    if (outright) return outright;
    const state = await record.serialized(() => record.read());
    const entry = binaryOrOutcome(message, state, delivery.subject);
    if ("kind" in entry) return entry;
    const noRoom = await stagingRoomProblem(record.paths, entry.size ?? MAX_AGENT_BINARY_BYTES / 4);
    if (noRoom) return reject(noRoom, refusal(target, "FAILED", noRoom));
    const staged = await stageVersion(target, entry, {
      paths: record.paths,
      checksumPolicy: options.checksumPolicy(),
      connection: options.connection(),
      childEnvironment: options.childEnvironment,
      clock,
      logger,
    });
    if (staged.kind === "retry") return retryWithBackoff();
    if (staged.kind === "refused") return reject(staged.reason, refusal(target, staged.state, staged.reason));
    await record.serialized(async () => {
      const current = await record.read();
      // What runs now is the fallback: an installed version, or (null) the packaged binary.
      const previous = current.active?.version === runningVersion ? current.active : null;
      const next: UpdateState = {
        ...current,
        trial: {
          ...staged.binary,
          startedAt: new Date(clock.now()).toISOString(),
          launches: 0,
          previous,
          fromVersion: runningVersion,
          causationId: delivery.causationId,
        },
      };
      await record.write(next);
      record.show(next);
    });
    record.restarting();
    await report(target, "RESTARTING", delivery.causationId, downloadRecordOf(staged.binary));
    logger.info({ from: runningVersion, to: target }, "update staged: restarting into it");
    options.requestRestart?.(`update to ${target}`);
    return done();
  };

  return {
    what: "client-update",
    schema: ClientUpdateMessage,
    // The next version takes it (and, being newer, will most likely ignore it). A version on trial
    // takes none before the link made it the active one.
    notNow: () => (record.restartPending ? 30_000 : options.connection() === null ? 5_000 : null),
    rejection(reason, raw) {
      const claimed = typeof raw === "object" && raw !== null ? (raw as { version?: unknown }).version : undefined;
      return refusal(
        typeof claimed === "string" && claimed !== "" ? claimed.slice(0, 64) : "unknown",
        "REJECTED",
        reason,
      );
    },
    handle: update,
  };
}
