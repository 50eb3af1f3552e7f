import { readdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { type DownloadRecord, EventType } from "../contracts/index.ts";
import type { EventSink } from "../events/index.ts";
import type { Logger } from "../runtime/index.ts";
import { SerialQueue } from "../runtime/index.ts";
import { downloadRecordOf } from "./launch-decision.ts";
import {
  binaryPathFor,
  readUpdateState,
  type UpdatePaths,
  type UpdateState,
  writeUpdateState,
} from "./update-state.ts";

export interface UpdateStatusView {
  readonly runningVersion: string;
  readonly active: string | null;
  readonly trial: { version: string; startedAt: string } | null;
  readonly restartPending: boolean;
  /** The active (else the trial's) binary as it was received, when known. */
  readonly download?: DownloadRecord | null;
}

/**
 * The self-update's state file (`<data dir>/update/state.json`) as this run keeps it: one writer
 * at a time (the commands and the health gate share it), what `status` shows of it, the versions
 * kept on disk, and the reports a launcher or an earlier run left to send.
 */
export class UpdateRecord {
  readonly paths: UpdatePaths;
  readonly #runningVersion: string;
  readonly #queue = new SerialQueue();
  #view: UpdateStatusView;
  #restartPending = false;

  constructor(paths: UpdatePaths, runningVersion: string) {
    this.paths = paths;
    this.#runningVersion = runningVersion;
    this.#view = { runningVersion, active: null, trial: null, restartPending: false, download: null };
  }

  /** Runs `work` alone: no other reader or writer of the state file runs meanwhile. */
  serialized<T>(work: () => Promise<T>): Promise<T> {
    return this.#queue.run(work);
  }

  read(): Promise<UpdateState> {
    return readUpdateState(this.paths);
  }

  /** Call within `serialized`. */
  async write(state: UpdateState): Promise<void> {
    await writeUpdateState(this.paths, state);
  }

  /** Whether `state`'s trial is the version running now (this run is the trial). */
  isTrialOfThisVersion(state: UpdateState): boolean {
    return state.trial?.version === this.#runningVersion;
  }

  get restartPending(): boolean {
    return this.#restartPending;
  }

  /** A restart is asked for (into a staged version, or to be rolled back): commands wait for the next run. */
  restarting(): void {
    this.#restartPending = true;
    this.#view = { ...this.#view, restartPending: true };
  }

  status(): UpdateStatusView {
    return this.#view;
  }

  /** `status` shows `state` from now on. */
  show(state: UpdateState): void {
    const installed = state.active ?? state.trial;
    this.#view = {
      runningVersion: this.#runningVersion,
      active: state.active?.version ?? null,
      trial: state.trial ? { version: state.trial.version, startedAt: state.trial.startedAt } : null,
      restartPending: this.#restartPending,
      download: installed ? downloadRecordOf(installed) : null,
    };
  }

  /** Removes versions nothing points at, and partial downloads a crash left. */
  async prune(state: UpdateState): Promise<void> {
    const keep = new Set(
      [state.active?.version, state.trial?.version, state.trial?.previous?.version].filter(
        (version): version is string => typeof version === "string",
      ),
    );
    await rm(this.paths.stagingDir, { recursive: true, force: true });
    const entries = await readdir(this.paths.versionsDir).catch(() => [] as string[]);
    await Promise.all(
      entries
        .filter((entry) => !keep.has(entry))
        .map((entry) => rm(dirname(binaryPathFor(this.paths, entry)), { recursive: true, force: true })),
    );
  }

  /** Sends the reports a launcher or an earlier run left (call within `serialized`). */
  async sendPendingReports(sink: EventSink, logger: Logger): Promise<void> {
    let state = await this.read();
    for (const pending of state.pendingReports) {
      await sink.emit({
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
      await this.write(state);
    }
    this.show(state);
  }

  idle(): Promise<void> {
    return this.#queue.idle();
  }
}
