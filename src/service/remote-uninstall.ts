import { execFile } from "node:child_process";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Clock } from "../runtime/index.ts";
import type { ServiceLayout } from "./install-service.ts";

/**
 * Left in the data dir by a remote uninstall that could not remove the service itself (the agent
 * runs unprivileged): `edge-agent run` finds it and exits 78 (`ExitCode.uninstalled`), which the
 * unit's `RestartPreventExitStatus` keeps from being restarted.
 */
export const UNINSTALLED_MARKER = "uninstalled";

/** A command line to run; injected so tests record what would run. */
export type CommandRunner = (file: string, args: readonly string[]) => Promise<void>;

const runFile = promisify(execFile);
export const runCommand: CommandRunner = async (file, args) => {
  await runFile(file, [...args]);
};

/**
 * The shell script that removes the agent for good, run outside the agent's own service (its
 * stop would otherwise end the script): the package when one installed it (its scripts stop and
 * disable the unit), else the unit `install-service` wrote; then the settings and the data.
 */
export function removalScript(layout: ServiceLayout): string {
  const quote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;
  return [
    "if dpkg-query -W edge-agent >/dev/null 2>&1; then dpkg --purge edge-agent;",
    "elif rpm -q edge-agent >/dev/null 2>&1; then rpm -e edge-agent;",
    `else systemctl disable --now edge-agent.service; rm -f ${quote(layout.unitPath)}; systemctl daemon-reload; fi;`,
    `rm -rf ${quote(layout.configDir)} ${quote(layout.dataDir)}`,
  ].join(" ");
}

/**
 * What a verified remote uninstall does to the machine (the daemon's `uninstall`): asks systemd
 * to run `removalScript` as a transient unit of its own; when that is not allowed (the agent runs
 * as its unprivileged user, as packaged) or there is no systemd, removes what the agent can: its
 * settings and its data, leaving only the marker that keeps the service from starting it again.
 * Resolves with what was done; the caller then leaves with `ExitCode.uninstalled`. The marker holds
 * when it was written, by `clock`.
 */
export async function removeAgent(
  layout: ServiceLayout,
  clock: Clock,
  run: CommandRunner = runCommand,
): Promise<"removed-by-systemd" | "data-removed"> {
  if (layout.systemdRunning) {
    const scheduled = await run("systemd-run", [
      "--no-block",
      "--collect",
      "--unit",
      "edge-agent-remote-uninstall",
      "/bin/sh",
      "-c",
      removalScript(layout),
    ]).then(
      () => true,
      () => false,
    );
    if (scheduled) return "removed-by-systemd";
  }
  await emptyDirectory(layout.configDir);
  await emptyDirectory(layout.dataDir);
  await writeFile(
    join(layout.dataDir, UNINSTALLED_MARKER),
    `${new Date(clock.now()).toISOString()} remote uninstall\n`,
    { mode: 0o640 },
  );
  return "data-removed";
}

/** Whether a remote uninstall left this data dir (then the agent must not run). */
export async function wasUninstalled(dataDir: string): Promise<boolean> {
  return readFile(join(dataDir, UNINSTALLED_MARKER), "utf8").then(
    () => true,
    () => false,
  );
}

/** Removes what a directory holds, keeping the directory (the service may not create it again). */
async function emptyDirectory(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(entries.map((entry) => rm(join(dir, entry), { recursive: true, force: true })));
}
