import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import type { CommandDesk } from "../capability/index.ts";
import { machineFeeds, machineSubjects, type OsName } from "../contracts/index.ts";
import type { EventSink } from "../events/index.ts";
import type { Cancel, Clock, Logger } from "../runtime/index.ts";
import { setAsideDamagedFile, timersOf } from "../runtime/index.ts";
import type { CommandTrust } from "../trust/index.ts";
import { clientUpdateHandler } from "./client-update-handler.ts";
import { HEALTH_WINDOW_MS, type LaunchContext, promoteTrial } from "./launch-decision.ts";
import type { SelfUpdateChecksumPolicy } from "./staging.ts";
import { UpdateRecord, type UpdateStatusView } from "./update-record.ts";
import { EMPTY_UPDATE_STATE, type UpdateState, UpdateStateError, updatePaths } from "./update-state.ts";

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
 * CLIENT_UPDATE, the machine's two `latest` feeds: an update superseded while offline is never
 * taken): the command handler (client-update-handler.ts) stages the new version (staging.ts) as a
 * trial and restarts through the service manager. The launcher (launcher.ts) runs the trial; this
 * makes the trial the active version once it is connected, and restarts it to be rolled back if it
 * is not within 90 s.
 */
export function createSelfUpdater(options: SelfUpdaterOptions): SelfUpdater {
  const { logger, machineId, runningVersion, clock } = options;
  const record = new UpdateRecord(updatePaths(options.dataDir, options.os), runningVersion);
  let connection: NatsConnection | null = null;
  let cancelHealthGate: Cancel | undefined;
  let checksumPolicy: SelfUpdateChecksumPolicy = options.checksumPolicy ?? {
    allowMissingChecksum: false,
    allowedDownloadHosts: [],
  };
  const launchContext = (): LaunchContext => ({ selfVersion: runningVersion, nowMs: clock.now(), newId: randomUUID });

  // Feeds from contracts/command-feeds.ts: the machine's permission set is built from the same.
  const { clientUpdate, clientUpdateAll } = machineFeeds(machineId);
  const route = options.commands.route({
    feeds: [clientUpdate, clientUpdateAll],
    trust: options.trust,
    handler: clientUpdateHandler({
      os: options.os,
      arch: options.arch,
      runningVersion,
      machineSubject: machineSubjects(machineId).clientUpdate,
      record,
      clock,
      logger,
      sink: options.sink,
      requestRestart: options.requestRestart,
      childEnvironment: options.childEnvironment,
      checksumPolicy: () => checksumPolicy,
      connection: () => connection,
    }),
  });

  /** The state as the launcher left it; a damaged file is set aside (the launcher already fell back to the packaged binary). */
  const readOrSetAside = async (): Promise<UpdateState> => {
    try {
      return await record.read();
    } catch (error) {
      if (!(error instanceof UpdateStateError)) throw error;
      // Kept for a person to read.
      const aside = await setAsideDamagedFile(record.paths.stateFile, () => clock.now());
      logger.error({ err: error, movedTo: aside }, "the update state was damaged: set aside, starting afresh");
      return EMPTY_UPDATE_STATE;
    }
  };

  /**
   * The launcher rolls back a trial that outlives its window; this makes sure one that hangs (not
   * connecting, not crashing) ends, so the launcher gets to do that.
   */
  const armHealthGate = (trial: NonNullable<UpdateState["trial"]>): void => {
    const remainingMs = Math.max(0, Date.parse(trial.startedAt) + HEALTH_WINDOW_MS - clock.now());
    logger.info({ version: runningVersion, remainingMs }, "running a new version on trial: it must connect to be kept");
    cancelHealthGate = timersOf(clock).after(remainingMs, () => {
      logger.error(
        { version: runningVersion },
        "this version did not report healthy in time: restarting so it is rolled back",
      );
      record.restarting();
      options.requestRestart?.("health window passed");
    });
  };

  return {
    async start() {
      await record.serialized(async () => {
        const state = await readOrSetAside();
        await record.prune(state);
        record.show(state);
        if (record.isTrialOfThisVersion(state) && state.trial) armHealthGate(state.trial);
      });
      await record.serialized(() => record.sendPendingReports(options.sink, logger));
    },
    async linkUp(nc) {
      await record.serialized(async () => {
        const state = await record.read();
        if (!record.isTrialOfThisVersion(state)) return;
        cancelHealthGate?.();
        const promoted = promoteTrial(state, launchContext());
        await record.write(promoted);
        await record.prune(promoted);
        logger.info({ version: runningVersion }, "new version is healthy: it is the active version now");
      });
      await record.serialized(() => record.sendPendingReports(options.sink, logger));
      connection ??= nc;
    },
    async stop() {
      cancelHealthGate?.();
      await route.stop();
      await record.idle();
    },
    status: () => record.status(),
    updateChecksumPolicy(allowMissingChecksum) {
      checksumPolicy = { ...checksumPolicy, allowMissingChecksum };
    },
  };
}
