import { type CheckResult, fail, pass, warn } from "./check-result.ts";

/**
 * The nats-server releases edge-agent supports: the 2.10 line and later. 2.9 is out of support
 * upstream and no longer tested here (and puts no time in JetStream answers, which the clock skew
 * check reads). The suite runs on `oldestTested` and `newestTested` (docs/development.md):
 * scripts/nats-server-runtime.ts fetches those two, and a unit test keeps both lists equal.
 */
export const NATS_SERVER_SUPPORT = {
  /** Older lines are refused by `doctor`. */
  firstSupportedLine: { major: 2, minor: 10 },
  oldestTested: "2.10.27",
  newestTested: "2.15.1",
} as const;

export interface ServerVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** A release candidate or beta of major.minor.patch, which comes before it. */
  readonly prerelease: boolean;
  /** As the server printed it (e.g. `2.11.0-RC.2`). */
  readonly text: string;
}

/** The version in a server's INFO (`2.15.1`, `v2.10.27`, `2.11.0-RC.2`), or null when it is not one. */
export function parseServerVersion(text: string | undefined): ServerVersion | null {
  const match = /^v?(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.exec(text?.trim() ?? "");
  if (!match) return null;
  return {
    major: Number(match[1]),
    minor: Number(match[2]),
    patch: Number(match[3]),
    prerelease: match[4] !== undefined,
    text: (text ?? "").trim(),
  };
}

/** Negative when `a` is older than `b`. */
function compare(a: ServerVersion, b: ServerVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch || Number(b.prerelease) - Number(a.prerelease);
}

const CHECK = "server version";
const tested = `tested on ${NATS_SERVER_SUPPORT.oldestTested} to ${NATS_SERVER_SUPPORT.newestTested}`;
const upgrade = `upgrade nats-server to ${NATS_SERVER_SUPPORT.newestTested} (or at least ${NATS_SERVER_SUPPORT.oldestTested})`;

/** Judges the version a server announced in its INFO against what edge-agent supports. */
export function judgeServerVersion(announced: string | undefined): CheckResult {
  const version = parseServerVersion(announced);
  if (version === null) {
    return warn(
      CHECK,
      `the server announced no version edge-agent can read (${JSON.stringify(announced ?? null)})`,
      `make sure it is nats-server ${NATS_SERVER_SUPPORT.oldestTested} or later`,
    );
  }
  const { major, minor } = NATS_SERVER_SUPPORT.firstSupportedLine;
  const oldest = parseServerVersion(NATS_SERVER_SUPPORT.oldestTested) as ServerVersion;
  const newest = parseServerVersion(NATS_SERVER_SUPPORT.newestTested) as ServerVersion;
  if (version.major < major || (version.major === major && version.minor < minor)) {
    return fail(
      CHECK,
      `nats-server ${version.text} is not supported: edge-agent needs ${major}.${minor} or later (${tested})`,
      upgrade,
    );
  }
  if (compare(version, oldest) < 0) {
    return warn(CHECK, `nats-server ${version.text} is older than the oldest release edge-agent is ${tested}`, upgrade);
  }
  if (version.major > newest.major) {
    return warn(
      CHECK,
      `nats-server ${version.text} is a major version edge-agent was never tested on (${tested})`,
      `run the agent against it in a test environment first, or use nats-server ${NATS_SERVER_SUPPORT.newestTested}`,
    );
  }
  const beyond = compare(version, newest) > 0 ? `, newer than the newest tested (${newest.text})` : "";
  return pass(CHECK, `nats-server ${version.text} is supported (${tested}${beyond})`);
}
