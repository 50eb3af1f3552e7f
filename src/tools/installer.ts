import { randomBytes } from "node:crypto";
import { chmod, mkdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { DownloadConfiguration, DownloadRecord, OsName, ToolInstallationMessage } from "../contracts/index.ts";
import { DownloadError, type DownloadedFile, download } from "../download/index.ts";
import { EdgeError } from "../errors/index.ts";
import type { Clock } from "../runtime/index.ts";
import {
  assertSafeExecutableLocation,
  echoInput,
  LinkInPathError,
  linkFreeDirectory,
  placeFileWithoutLinks,
  truncateInput,
  UnsafeExecutableLocationError,
} from "../runtime/index.ts";
import {
  archiveKindOf,
  assertContainedPath,
  extractArchive,
  HostileArchiveError,
  UnpackLimitError,
} from "./archive.ts";
import {
  type OpenFrameArguments,
  readOpenFrameSecret,
  resolvePlaceholders,
  UnresolvedPlaceholderError,
  withoutSecret,
} from "./placeholders.ts";
import { runToolCommand, ToolCommandError } from "./run-command.ts";

/** A failure of one install, and whether the same message may succeed later (nak) or never (term). */
export class ToolInstallError extends EdgeError {
  readonly code = "EDGE_TOOL_INSTALL";
  readonly retryable: boolean;
  constructor(message: string, retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = "ToolInstallError";
    this.retryable = retryable;
  }
}

export interface InstallContext {
  readonly toolsDir: string;
  readonly os: OsName;
  readonly machineId: string;
  readonly serverUrl: string;
  readonly connection: NatsConnection | null;
  readonly policy: {
    readonly allowMissingChecksum: boolean;
    /** Hosts a download without a sha256 may come from. */
    readonly allowedDownloadHosts: readonly string[];
    readonly maxDownloadBytes: number;
    readonly maxUnpackedBytes: number;
  };
  /** What OpenFrame's `${client.openframeSecret}` and `${client.openframeTokenPath}` stand for. */
  readonly openframe?: OpenFrameArguments;
  /** Free space an unpack must leave on the tools' disk (the outbox shares it). */
  readonly diskReserveBytes: number;
  readonly download: { readonly stallTimeoutMs: number; readonly deadlineMs: number };
  /** What the download's stall and deadline timers run on. */
  readonly clock: Clock;
  /** Aborts a download or unpack in progress (the agent is stopping): the install fails with it. */
  readonly signal?: AbortSignal;
  readonly commandTimeoutMs: number;
  /** Called when the download is done and installing begins. */
  readonly onInstalling: () => Promise<void>;
  /** Checks the installed tool works (a SERVICE tool's service runs); throwing undoes the install. */
  readonly verify?: (main: DownloadConfiguration) => Promise<void>;
}

export function toolDirOf(toolsDir: string, toolAgentId: string): string {
  return join(toolsDir, assertContainedPath(toolAgentId));
}

function forThisOs(configurations: readonly DownloadConfiguration[], os: OsName, what: string): DownloadConfiguration {
  const match = configurations.find((configuration) => configuration.os === os);
  if (!match) throw new ToolInstallError(`${what} has no download for ${os}`, false);
  if (!match.link) throw new ToolInstallError(`${what} has no link for ${os}`, false);
  return match;
}

/**
 * Leftovers of an install cut short (kill -9): the staging folder goes; if the cut came while
 * installing (`interruptedWhileInstalling`), the half-installed folder goes too and the version
 * set aside, if any, comes back. Otherwise a set-aside version only comes back when nothing
 * replaced it.
 */
export async function recoverToolDir(
  toolsDir: string,
  toolAgentId: string,
  interruptedWhileInstalling = false,
): Promise<void> {
  const toolDir = toolDirOf(toolsDir, toolAgentId);
  const staging = `${toolDir}.staging`;
  const previous = `${toolDir}.previous`;
  await rm(staging, { recursive: true, force: true });
  if (interruptedWhileInstalling) await rm(toolDir, { recursive: true, force: true });
  const hasCurrent = await stat(toolDir).then(
    () => true,
    () => false,
  );
  const hasPrevious = await stat(previous).then(
    () => true,
    () => false,
  );
  if (hasPrevious && !hasCurrent) await rename(previous, toolDir);
  else if (hasPrevious) await rm(previous, { recursive: true, force: true });
}

/** What a link is recorded as in a status: the platform's own text, cut to a status's size. */
const LINK_RECORDED_CHARS = 512;

async function fetchInto(
  configuration: DownloadConfiguration,
  folder: string,
  fileName: string,
  context: InstallContext,
  what: string,
  recordAs: string,
): Promise<{ path: string; record: DownloadRecord }> {
  let file: DownloadedFile;
  const link = configuration.link as string;
  try {
    file = await download({
      link,
      sha256: configuration.sha256,
      size: configuration.size,
      maxBytes: context.policy.maxDownloadBytes,
      allowMissingChecksum: context.policy.allowMissingChecksum,
      allowedHosts: context.policy.allowedDownloadHosts,
      directory: folder,
      clock: context.clock,
      connection: context.connection,
      stallTimeoutMs: context.download.stallTimeoutMs,
      deadlineMs: context.download.deadlineMs,
      ...(context.signal ? { signal: context.signal } : {}),
    });
  } catch (error) {
    if (error instanceof DownloadError)
      throw new ToolInstallError(`${what}: ${error.message}`, error.retryable, { cause: error });
    throw error;
  }
  const target = join(folder, fileName);
  await rename(file.path, target);
  return {
    path: target,
    record: {
      file: recordAs,
      link: truncateInput(link, LINK_RECORDED_CHARS),
      size: file.size,
      sha256: file.sha256,
      verified: file.verified,
    },
  };
}

/** What an install leaves: the tool's main file (relative to its folder) and every file downloaded. */
export interface InstalledTool {
  readonly mainFile: string;
  readonly downloads: DownloadRecord[];
}

/**
 * Runs one of the tool's commands: only from a place no other user could have changed it in, and
 * with the OpenFrame secret (when an argument carried it) kept out of the error it may end with.
 */
async function runInstalledTool(
  file: string,
  args: readonly string[],
  options: { cwd: string; timeoutMs: number; secret: string | undefined; what: string },
): Promise<void> {
  try {
    await assertSafeExecutableLocation(file);
    await runToolCommand(file, args, { cwd: options.cwd, timeoutMs: options.timeoutMs });
  } catch (error) {
    if (error instanceof UnsafeExecutableLocationError)
      throw new ToolInstallError(`${options.what}: ${error.message} (${error.code})`, false, { cause: error });
    // The one error of ours that drops its cause: the tool's own words may hold the OpenFrame
    // secret, and a logged cause would print them (only the scrubbed copy below goes on).
    if (error instanceof ToolCommandError)
      throw new ToolInstallError(`${options.what} failed: ${withoutSecret(error.message, options.secret)}`, false);
    throw error;
  }
}

/**
 * Installs one tool: everything is downloaded, verified and unpacked into `<tool>.staging` first;
 * only then is the old version set aside, the new one moved into place and its install command
 * run. If that fails the new folder goes and the old one comes back: a failed install leaves no
 * half-installed files. Returns the main file's path relative to the tool folder.
 */
export async function installTool(message: ToolInstallationMessage, context: InstallContext): Promise<InstalledTool> {
  const toolDir = toolDirOf(context.toolsDir, message.toolAgentId);
  const staging = `${toolDir}.staging`;
  const previous = `${toolDir}.previous`;
  await recoverToolDir(context.toolsDir, message.toolAgentId);
  await mkdir(context.toolsDir, { recursive: true, mode: 0o700 });
  // Not recursive: whatever stands where the staging folder goes (a link made since) is refused, not written through.
  await mkdir(staging, { mode: 0o700 });
  try {
    const main = forThisOs(message.downloadConfigurations, context.os, `tool ${message.toolAgentId}`);
    // Refused before anything is downloaded: a tool whose arguments cannot be filled never installs.
    const secret = await readOpenFrameSecret(message.installationCommandArgs, context.openframe);
    const fetched = await fetchInto(
      main,
      staging,
      `.download-${randomBytes(4).toString("hex")}`,
      context,
      `tool ${message.toolAgentId}`,
      "tool",
    );
    const downloaded = fetched.path;
    const downloads: DownloadRecord[] = [fetched.record];
    const kind = await archiveKindOf(downloaded);
    let mainFile: string;
    try {
      if (kind === "none") {
        mainFile = assertContainedPath(
          main.agentFileName ?? main.fileName ?? basename(new URL(main.link as string).pathname),
        );
        await linkFreeDirectory(staging, dirname(mainFile));
        await rename(downloaded, join(staging, mainFile));
      } else {
        await extractArchive(
          downloaded,
          staging,
          kind,
          { maxBytes: context.policy.maxUnpackedBytes, reserveFreeBytes: context.diskReserveBytes },
          context.signal,
        );
        await rm(downloaded);
        if (!main.agentFileName)
          throw new ToolInstallError(
            `tool ${message.toolAgentId}: the archive needs an agentFileName to say which file is the tool`,
            false,
          );
        mainFile = assertContainedPath(main.agentFileName);
        const found = await stat(join(staging, mainFile)).catch(() => null);
        if (!found?.isFile())
          throw new ToolInstallError(
            `tool ${message.toolAgentId}: ${echoInput(mainFile)} is not in the archive`,
            false,
          );
      }
    } catch (error) {
      if (error instanceof HostileArchiveError || error instanceof UnpackLimitError)
        throw new ToolInstallError(`tool ${message.toolAgentId}: ${error.message}`, false, { cause: error });
      throw error;
    }
    if (context.os !== "windows") await chmod(join(staging, mainFile), 0o755);

    const assetPaths: Record<string, string> = {};
    for (const asset of message.assets) {
      const configuration = forThisOs(asset.downloadConfigurations, context.os, `asset ${echoInput(asset.id)}`);
      const name = assertContainedPath(
        asset.localFilenameConfiguration.find((entry) => entry.os === context.os)?.filename ??
          configuration.fileName ??
          asset.id,
      );
      await linkFreeDirectory(staging, join("assets", dirname(name)));
      const { path: placed, record } = await fetchInto(
        configuration,
        join(staging, "assets"),
        name,
        context,
        `asset ${echoInput(asset.id)}`,
        `asset:${truncateInput(asset.id)}`,
      );
      downloads.push(record);
      if (asset.executable && context.os !== "windows") await chmod(placed, 0o755);
      assetPaths[asset.id] = join(toolDir, "assets", name);
    }
    const args = resolvePlaceholders(message.installationCommandArgs, {
      machineId: context.machineId,
      serverUrl: context.serverUrl,
      toolPath: toolDir,
      assetPaths,
      ...(context.openframe ? { openframe: context.openframe } : {}),
      openframeSecret: secret,
    });

    await context.onInstalling();
    const hadPrevious = await stat(toolDir).then(
      () => true,
      () => false,
    );
    if (hadPrevious) await rename(toolDir, previous);
    await rename(staging, toolDir);
    try {
      if (args.length > 0)
        await runInstalledTool(join(toolDir, mainFile), args, {
          cwd: toolDir,
          timeoutMs: context.commandTimeoutMs,
          secret,
          what: `tool ${message.toolAgentId}: install command`,
        });
      await context.verify?.(main);
    } catch (error) {
      await rm(toolDir, { recursive: true, force: true });
      if (hadPrevious) await rename(previous, toolDir);
      throw error;
    }
    await rm(previous, { recursive: true, force: true });
    return { mainFile, downloads };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (error instanceof UnresolvedPlaceholderError)
      throw new ToolInstallError(`tool ${message.toolAgentId}: ${error.message}`, false, { cause: error });
    throw error;
  }
}

/** Runs the tool's uninstall command (if any), then removes its folder. */
export async function uninstallTool(
  message: ToolInstallationMessage,
  mainFile: string | null,
  context: Pick<InstallContext, "toolsDir" | "machineId" | "serverUrl" | "commandTimeoutMs" | "openframe">,
): Promise<void> {
  const toolDir = toolDirOf(context.toolsDir, message.toolAgentId);
  const present = await stat(toolDir).then(
    () => true,
    () => false,
  );
  if (present && mainFile && message.uninstallationCommandArgs.length > 0) {
    let args: string[];
    let secret: string | undefined;
    try {
      secret = await readOpenFrameSecret(message.uninstallationCommandArgs, context.openframe);
      args = resolvePlaceholders(message.uninstallationCommandArgs, {
        machineId: context.machineId,
        serverUrl: context.serverUrl,
        toolPath: toolDir,
        assetPaths: {},
        ...(context.openframe ? { openframe: context.openframe } : {}),
        openframeSecret: secret,
      });
    } catch (error) {
      if (error instanceof UnresolvedPlaceholderError)
        throw new ToolInstallError(`tool ${message.toolAgentId}: ${error.message}`, false, { cause: error });
      throw error;
    }
    await runInstalledTool(join(toolDir, mainFile), args, {
      cwd: toolDir,
      timeoutMs: context.commandTimeoutMs,
      secret,
      what: `tool ${message.toolAgentId}: uninstall command`,
    });
  }
  await rm(toolDir, { recursive: true, force: true });
  await rm(`${toolDir}.previous`, { recursive: true, force: true });
}

/**
 * Copies `sourceFile` to `<toolDir>/<relativePath>` through a temporary sibling and a rename,
 * never through a symbolic link: a tool's installer may have linked a folder of its own elsewhere.
 */
export async function placeToolFile(toolDir: string, relativePath: string, sourceFile: string): Promise<void> {
  let contained: string;
  try {
    contained = assertContainedPath(relativePath);
  } catch (error) {
    throw new ToolInstallError(`pushed file path refused: ${(error as Error).message}`, false, { cause: error });
  }
  try {
    await placeFileWithoutLinks(toolDir, contained, sourceFile);
  } catch (error) {
    if (error instanceof LinkInPathError)
      throw new ToolInstallError(`pushed file ${echoInput(relativePath)} refused: ${error.message}`, false, {
        cause: error,
      });
    throw error;
  }
}
