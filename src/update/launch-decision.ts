// One function each, not the whole package: `semver` loads its 47 modules (~2 MB resident) for these.
import semverGt from "semver/functions/gt.js";
import semverLte from "semver/functions/lte.js";
import type { ClientUpdateState, DownloadRecord } from "../contracts/index.ts";
import type { InstalledBinary, PendingReport, UpdateState } from "./update-state.ts";

/** A new version must report healthy within this long after it was committed, or it is rolled back. */
export const HEALTH_WINDOW_MS = 90_000;
/** Starts without health before the launcher gives up on a trial (a crash loop), even inside the window. */
export const MAX_TRIAL_LAUNCHES = 3;
/** Rolled-back versions remembered (newest kept): enough to stop a broadcast loop, never unbounded. */
export const MAX_ROLLED_BACK_REMEMBERED = 20;

function remember(
  list: UpdateState["rolledBack"],
  version: string,
  reason: string,
  nowMs: number,
): UpdateState["rolledBack"] {
  return [
    ...list.filter((entry) => entry.version !== version),
    { version, at: new Date(nowMs).toISOString(), reason },
  ].slice(-MAX_ROLLED_BACK_REMEMBERED);
}

export type LaunchDecision =
  | { readonly kind: "run-here"; readonly state: UpdateState }
  | { readonly kind: "exec"; readonly binary: InstalledBinary; readonly trial: boolean; readonly state: UpdateState };

export interface LaunchContext {
  /** The version of the binary making the decision: the packaged one, started by the service manager. */
  readonly selfVersion: string;
  readonly nowMs: number;
  readonly newId: () => string;
}

function report(
  context: LaunchContext,
  version: string,
  runningVersion: string,
  state: ClientUpdateState,
  error: string | null,
  causationId: string | null,
  binary?: InstalledBinary,
): PendingReport {
  const download = binary ? downloadRecordOf(binary) : null;
  return {
    eventId: context.newId(),
    causationId,
    body: {
      version,
      runningVersion,
      state,
      error,
      timestamp: new Date(context.nowMs).toISOString(),
      ...(download ? { download } : {}),
    },
  };
}

/** How an installed binary is reported: as it was received (unknown for one staged before links were kept). */
export function downloadRecordOf(binary: InstalledBinary): DownloadRecord | null {
  if (binary.link === undefined) return null;
  return {
    file: "edge-agent",
    link: binary.link,
    size: binary.size,
    sha256: binary.sha256,
    verified: binary.verified ?? true,
  };
}

/** The trial failed: back to the version before it (or the packaged binary), never to try it by broadcast again. */
export function rollBackTrial(state: UpdateState, reason: string, context: LaunchContext): UpdateState {
  const trial = state.trial;
  if (!trial) return state;
  const back = trial.previous && semverGt(trial.previous.version, context.selfVersion) ? trial.previous : null;
  return {
    ...state,
    active: back,
    trial: null,
    rolledBack: remember(state.rolledBack, trial.version, reason, context.nowMs),
    pendingReports: [
      ...state.pendingReports,
      report(context, trial.version, back?.version ?? context.selfVersion, "ROLLED_BACK", reason, trial.causationId),
    ],
  };
}

/** The active version cannot start any more (deleted, damaged): the packaged binary takes over. */
export function abandonActive(state: UpdateState, reason: string, context: LaunchContext): UpdateState {
  const active = state.active;
  if (!active) return state;
  return {
    ...state,
    active: null,
    rolledBack: remember(state.rolledBack, active.version, reason, context.nowMs),
    pendingReports: [
      ...state.pendingReports,
      report(context, active.version, context.selfVersion, "ROLLED_BACK", reason, null),
    ],
  };
}

/** The trial reported healthy: it becomes the active version. */
export function promoteTrial(state: UpdateState, context: LaunchContext): UpdateState {
  const trial = state.trial;
  if (!trial) return state;
  const binary: InstalledBinary = {
    version: trial.version,
    path: trial.path,
    sha256: trial.sha256,
    size: trial.size,
    ...(trial.link === undefined ? {} : { link: trial.link }),
    ...(trial.verified === undefined ? {} : { verified: trial.verified }),
  };
  return {
    ...state,
    active: binary,
    trial: null,
    rolledBack: state.rolledBack.filter((entry) => entry.version !== trial.version),
    pendingReports: [
      ...state.pendingReports,
      report(context, trial.version, trial.version, "UPDATED", null, trial.causationId, binary),
    ],
  };
}

/**
 * What the packaged binary does when the service manager starts it: run a trial that is still
 * within its health window (counting the start), roll back one that is not, run the active
 * version if it is newer than itself, or run itself. Pure: the caller persists `state`.
 */
export function decideLaunch(state: UpdateState, context: LaunchContext): LaunchDecision {
  let next = state;
  const trial = next.trial;
  if (trial) {
    const elapsedMs = context.nowMs - Date.parse(trial.startedAt);
    if (elapsedMs > HEALTH_WINDOW_MS) {
      next = rollBackTrial(
        next,
        `version ${trial.version} did not report healthy within ${HEALTH_WINDOW_MS / 1000} s`,
        context,
      );
    } else if (trial.launches >= MAX_TRIAL_LAUNCHES) {
      next = rollBackTrial(
        next,
        `version ${trial.version} stopped ${trial.launches} times before reporting healthy`,
        context,
      );
    } else if (semverLte(trial.version, context.selfVersion)) {
      // A package upgrade overtook the update: the packaged binary is at least as new.
      next = { ...next, trial: null };
    } else {
      next = { ...next, trial: { ...trial, launches: trial.launches + 1 } };
      return { kind: "exec", binary: trial, trial: true, state: next };
    }
  }
  const active = next.active;
  if (active && semverGt(active.version, context.selfVersion))
    return { kind: "exec", binary: active, trial: false, state: next };
  if (active) next = { ...next, active: null };
  return { kind: "run-here", state: next };
}
