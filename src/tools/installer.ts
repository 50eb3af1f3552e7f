import { randomBytes } from "node:crypto";
import { chmod, mkdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { DownloadConfiguration, OsName, ToolInstallationMessage } from "../contracts/index.ts";
import { DownloadError, type DownloadedFile, download } from "../download/index.ts";
import type { Clock } from "../runtime/clock.ts";
import { echoInput } from "../runtime/echo.ts";
import { LinkInPathError, linkFreeDirectory, placeFileWithoutLinks } from "../runtime/link-free-path.ts";
import {
  archiveKindOf,
  assertContainedPath,
  extractArchive,
  HostileArchiveError,
  UnpackLimitError,
} from "./archive.ts";
import { resolvePlaceholders, UnresolvedPlaceholderError } from "./placeholders.ts";
import { runToolCommand, ToolCommandError } from "./run-command.ts";

/** A failure of one install, and whether the same message may succeed later (nak) or never (term). */
export class ToolInstallError extends Error {
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
    readonly maxDownloadBytes: number;
    readonly maxUnpackedBytes: number;
  };
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

async function fetchInto(
  configuration: DownloadConfiguration,
  folder: string,
  fileName: string,
  context: InstallContext,
  what: string,
): Promise<string> {
  let file: DownloadedFile;
  try {
    file = await download({
      link: configuration.link as string,
      sha256: configuration.sha256,
      size: configuration.size,
      maxBytes: context.policy.maxDownloadBytes,
      allowMissingChecksum: context.policy.allowMissingChecksum,
      directory: folder,
      clock: context.clock,
      connection: context.connection,
      stallTimeoutMs: context.download.stallTimeoutMs,
      deadlineMs: context.download.deadlineMs,
      ...(context.signal ? { signal: context.signal } : {}),
    });
  } catch (error) {
    if (error instanceof DownloadError) throw new ToolInstallError(`${what}: ${error.message}`, error.retryable);
    throw error;
  }
  const target = join(folder, fileName);
  await rename(file.path, target);
  return target;
}

/**
 * Installs one tool: everything is downloaded, verified and unpacked into `<tool>.staging` first;
 * only then is the old version set aside, the new one moved into place and its install command
 * run. If that fails the new folder goes and the old one comes back: a failed install leaves no
 * half-installed files. Returns the main file's path relative to the tool folder.
 */
export async function installTool(message: ToolInstallationMessage, context: InstallContext): Promise<string> {
  const toolDir = toolDirOf(context.toolsDir, message.toolAgentId);
  const staging = `${toolDir}.staging`;
  const previous = `${toolDir}.previous`;
  await recoverToolDir(context.toolsDir, message.toolAgentId);
  await mkdir(context.toolsDir, { recursive: true, mode: 0o700 });
  // Not recursive: whatever stands where the staging folder goes (a link made since) is refused, not written through.
  await mkdir(staging, { mode: 0o700 });
  try {
    const main = forThisOs(message.downloadConfigurations, context.os, `tool ${message.toolAgentId}`);
    const downloaded = await fetchInto(
      main,
      staging,
      `.download-${randomBytes(4).toString("hex")}`,
      context,
      `tool ${message.toolAgentId}`,
    );
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
        throw new ToolInstallError(`tool ${message.toolAgentId}: ${error.message}`, false);
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
      const placed = await fetchInto(
        configuration,
        join(staging, "assets"),
        name,
        context,
        `asset ${echoInput(asset.id)}`,
      );
      if (asset.executable && context.os !== "windows") await chmod(placed, 0o755);
      assetPaths[asset.id] = join(toolDir, "assets", name);
    }
    const args = resolvePlaceholders(message.installationCommandArgs, {
      machineId: context.machineId,
      serverUrl: context.serverUrl,
      toolPath: toolDir,
      assetPaths,
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
        await runToolCommand(join(toolDir, mainFile), args, { cwd: toolDir, timeoutMs: context.commandTimeoutMs });
      await context.verify?.(main);
    } catch (error) {
      await rm(toolDir, { recursive: true, force: true });
      if (hadPrevious) await rename(previous, toolDir);
      if (error instanceof ToolCommandError)
        throw new ToolInstallError(`tool ${message.toolAgentId}: install command failed: ${error.message}`, false);
      throw error;
    }
    await rm(previous, { recursive: true, force: true });
    return mainFile;
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    if (error instanceof UnresolvedPlaceholderError)
      throw new ToolInstallError(`tool ${message.toolAgentId}: ${error.message}`, false);
    throw error;
  }
}

/** Runs the tool's uninstall command (if any), then removes its folder. */
export async function uninstallTool(
  message: ToolInstallationMessage,
  mainFile: string | null,
  context: Pick<InstallContext, "toolsDir" | "machineId" | "serverUrl" | "commandTimeoutMs">,
): Promise<void> {
  const toolDir = toolDirOf(context.toolsDir, message.toolAgentId);
  const present = await stat(toolDir).then(
    () => true,
    () => false,
  );
  if (present && mainFile && message.uninstallationCommandArgs.length > 0) {
    const args = resolvePlaceholders(message.uninstallationCommandArgs, {
      machineId: context.machineId,
      serverUrl: context.serverUrl,
      toolPath: toolDir,
      assetPaths: {},
    });
    try {
      await runToolCommand(join(toolDir, mainFile), args, { cwd: toolDir, timeoutMs: context.commandTimeoutMs });
    } catch (error) {
      if (error instanceof ToolCommandError)
        throw new ToolInstallError(`tool ${message.toolAgentId}: uninstall command failed: ${error.message}`, false);
      throw error;
    }
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
