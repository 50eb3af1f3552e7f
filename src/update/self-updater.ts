import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmod, mkdir, readdir, rename, rm, statfs } from "node:fs/promises";
import { dirname } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
// One function each, not the whole package: `semver` loads its 47 modules (~2 MB resident) for these.
import semverEq from "semver/functions/eq.js";
import semverLt from "semver/functions/lt.js";
import {
  type CommandDelivery,
  type CommandDesk,
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
  machineFeeds,
  machineSubjects,
  type OsName,
} from "../contracts/index.ts";
import { DownloadError, download, isPolicyRefusal } from "../download/index.ts";
import type { EventSink, OutgoingEvent } from "../events/index.ts";
import type { Logger } from "../runtime/index.ts";
import {
  type Cancel,
  type Clock,
  executableLocationProblem,
  SerialQueue,
  setAsideDamagedFile,
  timersOf,
  truncateInput,
} from "../runtime/index.ts";
import type { CommandTrust } from "../trust/index.ts";
import { downloadRecordOf, HEALTH_WINDOW_MS, type LaunchContext, promoteTrial } from "./launch-decision.ts";
import {
  binaryPathFor,
  EMPTY_UPDATE_STATE,
  type InstalledBinary,
  readUpdateState,
  type UpdateState,
  UpdateStateError,
  updatePaths,
  writeUpdateState,
} from "./update-state.ts";

/** An agent binary is about 115 MiB; this leaves room for growth and refuses anything absurd. */
export const MAX_AGENT_BINARY_BYTES = 512 * 1024 * 1024;
/** Free space that must remain after the download: the outbox shares the disk and must never be starved. */
export const DISK_HEADROOM_BYTES = 256 * 1024 * 1024;
const SMOKE_TEST_TIMEOUT_MS = 30_000;

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

export interface SelfUpdaterOptions {
  readonly machineId: string;
  readonly os: OsName;
  readonly arch: string;
  readonly dataDir: string;
  readonly runningVersion: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sink: EventSink;
  /**
   * With a signing key, every update command must be signed for the subject it came on (this
   * machine's, or the fleet's) with a rising serial: a replayed or moved command is refused.
   */
  readonly trust: CommandTrust;
  /** Where the update commands are taken from (the agent's command desk). */
  readonly commands: CommandDesk;
  /**
   * Stops the agent and starts it again through the service manager (the daemon provides it).
   * Without it the agent refuses updates: nothing could start the new version.
   */
  readonly requestRestart?: (reason: string) => void;
  /** The environment the new binary's check runs in (the daemon's, without its launcher's mark); default inherited. */
  readonly childEnvironment?: NodeJS.ProcessEnv | undefined;
  /**
   * Whether a binary without a sha256 is taken, and from which hosts (the tool policy's rules,
   * download/unchecked-policy.ts). Default: a sha256 is required.
   */
  readonly checksumPolicy?: SelfUpdateChecksumPolicy;
}

export interface SelfUpdateChecksumPolicy {
  readonly allowMissingChecksum: boolean;
  readonly allowedDownloadHosts: readonly string[];
}

export interface UpdateStatusView {
  readonly runningVersion: string;
  readonly active: string | null;
  readonly trial: { version: string; startedAt: string } | null;
  readonly restartPending: boolean;
  /** The active (else the trial's) binary as it was received, when known. */
  readonly download?: DownloadRecord | null;
}

export interface SelfUpdater {
  /** Sends the reports a launcher or an earlier run left, cleans up, and arms the health gate of a trial. */
  start(): Promise<void>;
  /** The link is up: a trial is healthy now; listen for update commands. */
  linkUp(connection: NatsConnection): Promise<void>;
  stop(): Promise<void>;
  status(): UpdateStatusView;
  /** The remote configuration changed `toolPolicy.allowMissingChecksum`: from the next update. */
  updateChecksumPolicy(allowMissingChecksum: boolean): void;
}

/**
 * Self-update on `machine.{id}.client-update` and `machine.all.client-update` (stream
 * CLIENT_UPDATE, the machine's two `latest` feeds: an update superseded while offline is never taken): refuse downgrades, download this OS's binary and
 * verify its size and sha256, check that it runs, stage it as a trial in its own folder, and
 * restart through the service manager. The launcher (launcher.ts) runs the trial; the trial
 * becomes the active version once it is connected, and is rolled back if it is not within 90 s.
 */
export function createSelfUpdater(options: SelfUpdaterOptions): SelfUpdater {
  const { logger, machineId, runningVersion, clock } = options;
  const paths = updatePaths(options.dataDir, options.os);
  const subjects = machineSubjects(machineId);
  let connection: NatsConnection | null = null;
  let restartPending = false;
  let cancelHealthGate: Cancel | undefined;
  let view: UpdateStatusView = { runningVersion, active: null, trial: null, restartPending: false, download: null };
  let checksumPolicy: SelfUpdateChecksumPolicy = options.checksumPolicy ?? {
    allowMissingChecksum: false,
    allowedDownloadHosts: [],
  };
  const context = (): LaunchContext => ({ selfVersion: runningVersion, nowMs: clock.now(), newId: randomUUID });

  // One writer of the state file at a time: two consumers and the health gate share it.
  const queue = new SerialQueue();
  const serialized = <T>(work: () => Promise<T>): Promise<T> => queue.run(work);
  const updateView = (state: UpdateState): void => {
    const installed = state.active ?? state.trial;
    view = {
      runningVersion,
      active: state.active?.version ?? null,
      trial: state.trial ? { version: state.trial.version, startedAt: state.trial.startedAt } : null,
      restartPending,
      download: installed ? downloadRecordOf(installed) : null,
    };
  };

  const sendPendingReports = async (): Promise<void> => {
    let state = await readUpdateState(paths);
    for (const pending of state.pendingReports) {
      await options.sink.emit({
        type: EventType.clientUpdateStatus,
        body: pending.body,
        eventId: pending.eventId,
        ...(pending.causationId ? { causationId: pending.causationId } : {}),
      });
      logger.info(
        { version: pending.body.version, state: pending.body.state, error: pending.body.error },
        "self-update outcome",
      );
      state = { ...state, pendingReports: state.pendingReports.filter((each) => each.eventId !== pending.eventId) };
      // Written after each one: a crash re-sends at most one report, with the same event id.
      await writeUpdateState(paths, state);
    }
    updateView(state);
  };

  /** Removes versions nothing points at, and partial downloads a crash left. */
  const prune = async (state: UpdateState): Promise<void> => {
    const keep = new Set(
      [state.active?.version, state.trial?.version, state.trial?.previous?.version].filter(
        (version): version is string => typeof version === "string",
      ),
    );
    await rm(paths.stagingDir, { recursive: true, force: true });
    const entries = await readdir(paths.versionsDir).catch(() => [] as string[]);
    await Promise.all(
      entries
        .filter((entry) => !keep.has(entry))
        .map((entry) => rm(dirname(binaryPathFor(paths, entry)), { recursive: true, force: true })),
    );
  };

  const report = async (
    version: string,
    state: ClientUpdateState,
    error: string | null,
    causationId: string,
    download: DownloadRecord | null = null,
  ): Promise<void> => {
    const body: ClientUpdateStatus = {
      version,
      runningVersion,
      state,
      error,
      timestamp: new Date(clock.now()).toISOString(),
      ...(download ? { download } : {}),
    };
    if (error) logger.warn({ version, state, error }, "self-update refused or failed");
    await options.sink.emit({ type: EventType.clientUpdateStatus, body, causationId });
  };

  const isTrialOfThisVersion = (state: UpdateState): boolean => state.trial?.version === runningVersion;

  const smokeTest = (binary: string, expectedVersion: string): Promise<string | null> =>
    new Promise((resolve) => {
      execFile(
        binary,
        ["version"],
        {
          timeout: SMOKE_TEST_TIMEOUT_MS,
          ...(options.childEnvironment ? { env: { ...options.childEnvironment } } : {}),
          encoding: "utf8",
        },
        (error, stdout, stderr) => {
          if (error)
            return resolve(
              `the new binary does not run here: ${error.message}${stderr ? ` (${stderr.trim().slice(0, 200)})` : ""}`,
            );
          const reported = stdout.trim();
          resolve(
            reported === expectedVersion
              ? null
              : `the new binary says it is version ${JSON.stringify(reported.slice(0, 64))}, not ${expectedVersion}`,
          );
        },
      );
    });

  const ensureRoom = async (bytes: number): Promise<string | null> => {
    await mkdir(paths.stagingDir, { recursive: true, mode: 0o700 });
    const info = await statfs(paths.stagingDir);
    const free = info.bavail * info.bsize;
    return free < bytes + DISK_HEADROOM_BYTES
      ? `not enough disk space for the update: ${bytes} bytes plus ${DISK_HEADROOM_BYTES} spare needed, ${free} free`
      : null;
  };

  const refusal = (version: string, state: ClientUpdateState, error: string): OutgoingEvent => {
    logger.warn({ version, state, error }, "self-update refused or failed");
    return {
      type: EventType.clientUpdateStatus,
      body: { version, runningVersion, state, error, timestamp: new Date(clock.now()).toISOString() },
    };
  };

  /** Downloads, checks and stages `target`; a refusal or a retry when it cannot. */
  const stage = async (
    target: string,
    entry: DownloadConfiguration & { link: string },
  ): Promise<InstalledBinary | CommandOutcome> => {
    logger.info({ version: target, link: entry.link }, "downloading the update");
    try {
      const file = await download({
        link: entry.link,
        sha256: entry.sha256,
        size: entry.size,
        maxBytes: MAX_AGENT_BINARY_BYTES,
        allowMissingChecksum: checksumPolicy.allowMissingChecksum,
        allowedHosts: checksumPolicy.allowedDownloadHosts,
        directory: paths.stagingDir,
        clock,
        connection,
      });
      const finalPath = binaryPathFor(paths, target);
      await rm(dirname(finalPath), { recursive: true, force: true });
      await mkdir(dirname(finalPath), { recursive: true, mode: 0o700 });
      // Run by the agent's own user only (the launcher is the agent).
      await chmod(file.path, 0o700);
      await rename(file.path, finalPath);
      // The launcher checks this again before every start of it.
      const unsafe = await executableLocationProblem(finalPath);
      const problem = unsafe ? `the new binary is not run: ${unsafe}` : await smokeTest(finalPath, target);
      if (problem) {
        await rm(dirname(finalPath), { recursive: true, force: true });
        return reject(problem, refusal(target, "FAILED", problem));
      }
      if (!file.verified)
        logger.warn(
          { version: target, link: entry.link, sha256: file.sha256, size: file.size },
          "update taken without a sha256 (allowed host, HTTPS): the sha256 received is reported",
        );
      return {
        version: target,
        path: finalPath,
        sha256: file.sha256,
        size: file.size,
        link: truncateInput(entry.link, 512),
        verified: file.verified,
      };
    } catch (error) {
      if (error instanceof DownloadError && error.retryable) {
        logger.warn(
          { version: target, reason: error.message },
          "update download failed; the server will send it again",
        );
        return retryWithBackoff();
      }
      const reason = (error as Error).message;
      // The link broke a rule of this agent's (no sha256, not HTTPS, a host not allowed): refused, not failed.
      return reject(reason, refusal(target, isPolicyRefusal(error) ? "REJECTED" : "FAILED", reason));
    }
  };

  const update = async (message: ClientUpdateMessage, delivery: CommandDelivery): Promise<CommandOutcome> => {
    const target = message.version;
    const requestRestart = options.requestRestart;
    if (semverEq(target, runningVersion)) {
      logger.info({ version: target }, "client-update for the version already running: nothing to do");
      return done();
    }
    // Refused on its merits (acked, not terminated): the command itself was sound.
    if (semverLt(target, runningVersion))
      return done(
        refusal(
          target,
          "REJECTED",
          `version ${target} is older than the running ${runningVersion}: downgrades are refused`,
        ),
      );
    if (!requestRestart)
      return done(refusal(target, "REJECTED", "this agent cannot restart itself (it is not the edge-agent daemon)"));
    const state = await queue.run(() => readUpdateState(paths));
    const rolledBack = state.rolledBack.find((entry) => entry.version === target);
    if (rolledBack && delivery.subject === fleetSubjects.clientUpdate) {
      return done(
        refusal(
          target,
          "REJECTED",
          `version ${target} was rolled back here at ${rolledBack.at} (${rolledBack.reason}); send it to ${subjects.clientUpdate} to try it again`,
        ),
      );
    }
    if (state.trial && !isTrialOfThisVersion(state)) return retryAfter(30_000);
    const entry = pickBinaryFor(message.downloadConfigurations, options.os, options.arch);
    if (!entry?.link)
      return done(refusal(target, "REJECTED", `the update has no binary for ${options.os}/${options.arch}`));
    if (!entry.sha256 && !checksumPolicy.allowMissingChecksum) {
      const reason =
        "the update's binary has no sha256, and this agent requires one (toolPolicy.allowMissingChecksum is off)";
      return reject(reason, refusal(target, "REJECTED", reason));
    }
    const noRoom = await ensureRoom(entry.size ?? MAX_AGENT_BINARY_BYTES / 4);
    if (noRoom) return reject(noRoom, refusal(target, "FAILED", noRoom));
    const staged = await stage(target, { ...entry, link: entry.link });
    if ("kind" in staged) return staged;
    await queue.run(async () => {
      const current = await readUpdateState(paths);
      // What runs now is the fallback: an installed version, or (null) the packaged binary.
      const previous = current.active?.version === runningVersion ? current.active : null;
      const next: UpdateState = {
        ...current,
        trial: {
          ...staged,
          startedAt: new Date(clock.now()).toISOString(),
          launches: 0,
          previous,
          fromVersion: runningVersion,
          causationId: delivery.causationId,
        },
      };
      await writeUpdateState(paths, next);
      updateView(next);
    });
    restartPending = true;
    view = { ...view, restartPending };
    await report(target, "RESTARTING", null, delivery.causationId, downloadRecordOf(staged));
    logger.info({ from: runningVersion, to: target }, "update staged: restarting into it");
    requestRestart(`update to ${target}`);
    return done();
  };

  // Feeds from contracts/command-feeds.ts: the machine's permission set is built from the same.
  const { clientUpdate, clientUpdateAll } = machineFeeds(machineId);
  const route = options.commands.route<ClientUpdateMessage>({
    feeds: [clientUpdate, clientUpdateAll],
    trust: options.trust,
    handler: {
      what: "client-update",
      schema: ClientUpdateMessage,
      // The next version takes it (and, being newer, will most likely ignore it). A version on trial
      // takes none before the link made it the active one.
      notNow: () => (restartPending ? 30_000 : connection === null ? 5_000 : null),
      rejection(reason, raw) {
        const claimed = typeof raw === "object" && raw !== null ? (raw as { version?: unknown }).version : undefined;
        return refusal(
          typeof claimed === "string" && claimed !== "" ? claimed.slice(0, 64) : "unknown",
          "REJECTED",
          reason,
        );
      },
      handle: update,
    },
  });

  return {
    async start() {
      await serialized(async () => {
        let state: UpdateState;
        try {
          state = await readUpdateState(paths);
        } catch (error) {
          if (!(error instanceof UpdateStateError)) throw error;
          // The launcher already fell back to the packaged binary; keep the file for a person to read.
          const aside = await setAsideDamagedFile(paths.stateFile, () => clock.now());
          logger.error({ err: error, movedTo: aside }, "the update state was damaged: set aside, starting afresh");
          state = EMPTY_UPDATE_STATE;
        }
        await prune(state);
        updateView(state);
        if (!isTrialOfThisVersion(state) || !state.trial) return;
        // The launcher rolls back a trial that outlives its window; this makes sure one that hangs
        // (not connecting, not crashing) ends, so the launcher gets to do that.
        const remainingMs = Math.max(0, Date.parse(state.trial.startedAt) + HEALTH_WINDOW_MS - clock.now());
        logger.info(
          { version: runningVersion, remainingMs },
          "running a new version on trial: it must connect to be kept",
        );
        cancelHealthGate = timersOf(clock).after(remainingMs, () => {
          logger.error(
            { version: runningVersion },
            "this version did not report healthy in time: restarting so it is rolled back",
          );
          restartPending = true;
          options.requestRestart?.("health window passed");
        });
      });
      await serialized(sendPendingReports);
    },
    async linkUp(nc) {
      await serialized(async () => {
        const state = await readUpdateState(paths);
        if (!isTrialOfThisVersion(state)) return;
        cancelHealthGate?.();
        const promoted = promoteTrial(state, context());
        await writeUpdateState(paths, promoted);
        await prune(promoted);
        logger.info({ version: runningVersion }, "new version is healthy: it is the active version now");
      });
      await serialized(sendPendingReports);
      connection ??= nc;
    },
    async stop() {
      cancelHealthGate?.();
      await route.stop();
      await queue.idle();
    },
    status: () => view,
    updateChecksumPolicy(allowMissingChecksum) {
      checksumPolicy = { ...checksumPolicy, allowMissingChecksum };
    },
  };
}
