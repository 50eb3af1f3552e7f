import { execFile } from "node:child_process";
import { chmod, mkdir, rename, rm, statfs } from "node:fs/promises";
import { dirname } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { DownloadConfiguration } from "../contracts/index.ts";
import { DownloadError, download, isPolicyRefusal } from "../download/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";
import { executableLocationProblem, truncateInput } from "../runtime/index.ts";
import { binaryPathFor, type InstalledBinary, type UpdatePaths } from "./update-state.ts";

/** An agent binary is about 115 MiB; this leaves room for growth and refuses anything absurd. */
export const MAX_AGENT_BINARY_BYTES = 512 * 1024 * 1024;
/** Free space that must remain after the download: the outbox shares the disk and must never be starved. */
export const DISK_HEADROOM_BYTES = 256 * 1024 * 1024;
const SMOKE_TEST_TIMEOUT_MS = 30_000;

/** Whether a binary without a sha256 is taken, and from which hosts (the tool policy's rules). */
export interface SelfUpdateChecksumPolicy {
  readonly allowMissingChecksum: boolean;
  readonly allowedDownloadHosts: readonly string[];
}

export interface StagingContext {
  readonly paths: UpdatePaths;
  readonly checksumPolicy: SelfUpdateChecksumPolicy;
  /** For `nats-obj://` links; null while the link is down. */
  readonly connection: NatsConnection | null;
  /** The environment the new binary's check runs in; default inherited. */
  readonly childEnvironment?: NodeJS.ProcessEnv | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** How staging one version ended: in its own folder and checked, to be tried again later, or refused (reported so). */
export type StagingOutcome =
  | { readonly kind: "staged"; readonly binary: InstalledBinary }
  | { readonly kind: "retry" }
  | { readonly kind: "refused"; readonly state: "FAILED" | "REJECTED"; readonly reason: string };

/** Why `bytes` more cannot be downloaded into the staging folder (the disk keeps its headroom), or null. */
export async function stagingRoomProblem(paths: UpdatePaths, bytes: number): Promise<string | null> {
  await mkdir(paths.stagingDir, { recursive: true, mode: 0o700 });
  const info = await statfs(paths.stagingDir);
  const free = info.bavail * info.bsize;
  return free < bytes + DISK_HEADROOM_BYTES
    ? `not enough disk space for the update: ${bytes} bytes plus ${DISK_HEADROOM_BYTES} spare needed, ${free} free`
    : null;
}

/**
 * Downloads version `target` into the staging folder (size, sha256 and the download policy
 * checked), moves it into `versions/<target>/` for the agent's own user only, and checks that it
 * may run from there and that it runs and says it is `target`. A download that may work later is
 * to be retried; anything else is refused, and nothing of it is left.
 */
export async function stageVersion(
  target: string,
  entry: DownloadConfiguration & { link: string },
  context: StagingContext,
): Promise<StagingOutcome> {
  const { paths, checksumPolicy, logger } = context;
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
      clock: context.clock,
      connection: context.connection,
    });
    const finalPath = binaryPathFor(paths, target);
    await rm(dirname(finalPath), { recursive: true, force: true });
    await mkdir(dirname(finalPath), { recursive: true, mode: 0o700 });
    // Run by the agent's own user only (the launcher is the agent).
    await chmod(file.path, 0o700);
    await rename(file.path, finalPath);
    // The launcher checks this again before every start of it.
    const unsafe = await executableLocationProblem(finalPath);
    const problem = unsafe
      ? `the new binary is not run: ${unsafe}`
      : await smokeTest(finalPath, target, context.childEnvironment);
    if (problem) {
      await rm(dirname(finalPath), { recursive: true, force: true });
      return { kind: "refused", state: "FAILED", reason: problem };
    }
    if (!file.verified)
      logger.warn(
        { version: target, link: entry.link, sha256: file.sha256, size: file.size },
        "update taken without a sha256 (allowed host, HTTPS): the sha256 received is reported",
      );
    const binary: InstalledBinary = {
      version: target,
      path: finalPath,
      sha256: file.sha256,
      size: file.size,
      link: truncateInput(entry.link, 512),
      verified: file.verified,
    };
    return { kind: "staged", binary };
  } catch (error) {
    if (error instanceof DownloadError && error.retryable) {
      logger.warn({ version: target, reason: error.message }, "update download failed; the server will send it again");
      return { kind: "retry" };
    }
    // The link broke a rule of this agent's (no sha256, not HTTPS, a host not allowed): refused, not failed.
    return { kind: "refused", state: isPolicyRefusal(error) ? "REJECTED" : "FAILED", reason: (error as Error).message };
  }
}

/** Runs `<binary> version`: null when it answers `expectedVersion`, else why not. */
function smokeTest(
  binary: string,
  expectedVersion: string,
  childEnvironment: NodeJS.ProcessEnv | undefined,
): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(
      binary,
      ["version"],
      {
        timeout: SMOKE_TEST_TIMEOUT_MS,
        ...(childEnvironment ? { env: { ...childEnvironment } } : {}),
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
}
