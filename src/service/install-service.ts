import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { EdgeError } from "../errors/index.ts";
import {
  collectPathEntries,
  executableReachability,
  pathsHiddenByUnit,
  type ServiceAccount,
} from "./executable-reachability.ts";

const run = promisify(execFile);

export class ServiceInstallError extends EdgeError {
  readonly code: string = "EDGE_SERVICE_INSTALL";
  constructor(message: string) {
    super(message);
    this.name = "ServiceInstallError";
  }
}

/**
 * The service user cannot start the executable where it is: installing the unit anyway would leave
 * one that fails at every start. Exit 2 in the CLI: the cure is a copy where it can (--copy-to).
 */
export class ExecutableUnreachableError extends ServiceInstallError {
  override readonly code = "EDGE_SERVICE_EXECUTABLE_UNREACHABLE";
  constructor(executable: string, reason: string) {
    super(
      `the service user cannot start ${executable}: ${reason}. Copy it where it can, e.g. ` +
        `"sudo install -m 0755 ${executable} /usr/local/bin/edge-agent" and run install-service from there, ` +
        "or run install-service --copy-to /usr/local/bin",
    );
    this.name = "ExecutableUnreachableError";
  }
}

/** The account the unit runs as (uid undefined when it does not exist yet: install-service creates it). */
export async function lookUpServiceAccount(name = "edge-agent"): Promise<ServiceAccount> {
  const uid = await run("id", ["-u", name]).then(
    (result) => Number(result.stdout.trim()),
    () => undefined,
  );
  if (uid === undefined) return { name, uid, gids: [] };
  const groups = await run("id", ["-G", name]);
  return { name, uid, gids: groups.stdout.trim().split(/\s+/).map(Number) };
}

/**
 * Copies the executable into `directory` as `edge-agent` (0755, owned by whoever runs this: root),
 * through a temporary name and a rename, so a running copy is replaced, never written into.
 */
export async function copyExecutable(executable: string, directory: string): Promise<string> {
  await mkdir(directory, { recursive: true, mode: 0o755 });
  const target = join(directory, "edge-agent");
  // Unique per copy, so two install-service runs never write into the same temporary.
  const partial = `${target}.${randomUUID()}.partial`;
  try {
    await copyFile(executable, partial);
    await chmod(partial, 0o755);
    await rename(partial, target);
  } finally {
    await rm(partial, { force: true });
  }
  return target;
}

/** Where things go; injectable so tests write into a folder of their own. */
export interface ServiceLayout {
  readonly unitPath: string;
  readonly executable: string;
  readonly configDir: string;
  readonly dataDir: string;
  /** Whether systemd runs here (it does not in containers and CI). */
  readonly systemdRunning: boolean;
}

export function defaultServiceLayout(executable: string): ServiceLayout {
  return {
    unitPath: "/etc/systemd/system/edge-agent.service",
    executable,
    configDir: "/etc/edge-agent",
    dataDir: "/var/lib/edge-agent",
    systemdRunning: existsSync("/run/systemd/system"),
  };
}

/**
 * The packaged unit, pointed at this executable and these directories: one source of truth for
 * the service's hardening (service-units/edge-agent.service, embedded at build time).
 */
export function unitFor(template: string, layout: ServiceLayout): string {
  return template
    .replace(/^ExecStart=.*$/m, `ExecStart=${layout.executable} run`)
    .replace(/^Environment=EDGE_AGENT_CONFIG_DIR=.*$/m, `Environment=EDGE_AGENT_CONFIG_DIR=${layout.configDir}`)
    .replace(/^Environment=EDGE_AGENT_DATA_DIR=.*$/m, `Environment=EDGE_AGENT_DATA_DIR=${layout.dataDir}`)
    .replace(/^ReadWritePaths=.*$/m, `ReadWritePaths=${layout.dataDir} ${layout.configDir}`);
}

async function ensureServiceUser(): Promise<void> {
  const exists = await run("getent", ["passwd", "edge-agent"]).then(
    () => true,
    () => false,
  );
  if (exists) return;
  await run("groupadd", ["--system", "edge-agent"]).catch(() => undefined);
  await run("useradd", [
    "--system",
    "--gid",
    "edge-agent",
    "--home-dir",
    "/var/lib/edge-agent",
    "--no-create-home",
    "--shell",
    "/usr/sbin/nologin",
    "edge-agent",
  ]);
}

export interface InstallServiceOptions {
  /** The machine's platform (the CLI passes the process's): only Linux with systemd is served. */
  readonly platform: NodeJS.Platform;
  /** Create the service user and chown its directories (default true; tests without root say false). */
  readonly manageUser?: boolean;
  /** Copy the executable into this directory first and point the unit at the copy. */
  readonly copyTo?: string;
  /** Who the unit runs as (default: the edge-agent account as it is now). */
  readonly account?: ServiceAccount;
}

/**
 * `edge-agent install-service` for machines installed without a package (Linux, systemd): the
 * service user, its 0750 directories, the unit, and — where systemd runs — enabled and started.
 * Refuses (ExecutableUnreachableError), before it changes anything, when the service user could
 * not start the executable where it is.
 */
export async function installService(
  template: string,
  requested: ServiceLayout,
  report: (line: string) => void,
  options: InstallServiceOptions,
): Promise<void> {
  if (options.platform !== "linux")
    throw new ServiceInstallError(
      `install-service supports Linux (systemd); on ${options.platform} use the package (.msi on Windows, the launchd plist on macOS)`,
    );
  let layout = requested;
  if (options.copyTo !== undefined) {
    layout = { ...layout, executable: await copyExecutable(layout.executable, options.copyTo) };
    report(`copied ${requested.executable} to ${layout.executable}`);
  }
  const reachability = executableReachability(
    await collectPathEntries(layout.executable),
    options.account ?? (await lookUpServiceAccount()),
    pathsHiddenByUnit(template),
  );
  if (!reachability.reachable) throw new ExecutableUnreachableError(layout.executable, reachability.reason);
  if (options.manageUser !== false) {
    await ensureServiceUser();
    for (const dir of [layout.configDir, layout.dataDir])
      await run("install", ["-d", "-o", "edge-agent", "-g", "edge-agent", "-m", "0750", dir]);
  } else {
    for (const dir of [layout.configDir, layout.dataDir]) await mkdir(dir, { recursive: true, mode: 0o750 });
  }
  await mkdir(dirname(layout.unitPath), { recursive: true });
  await writeFile(layout.unitPath, unitFor(template, layout), { mode: 0o644 });
  report(`wrote ${layout.unitPath}`);
  if (!layout.systemdRunning) {
    report("systemd is not running here: the unit is in place but not started");
    return;
  }
  await run("systemctl", ["daemon-reload"]);
  await run("systemctl", ["enable", "--now", "edge-agent.service"]);
  report("edge-agent.service enabled and started");
}

/** `edge-agent uninstall-service`: stops and removes the unit; settings and state stay (remove them by hand). */
export async function uninstallService(layout: ServiceLayout, report: (line: string) => void): Promise<void> {
  if (layout.systemdRunning) {
    await run("systemctl", ["disable", "--now", "edge-agent.service"]).catch((error: unknown) =>
      report(`systemctl disable: ${(error as Error).message.split("\n")[0]}`),
    );
  }
  const present = await readFile(layout.unitPath, "utf8").then(
    () => true,
    () => false,
  );
  await rm(layout.unitPath, { force: true });
  if (layout.systemdRunning) await run("systemctl", ["daemon-reload"]).catch(() => undefined);
  report(
    present
      ? `removed ${layout.unitPath}; ${layout.configDir} and ${layout.dataDir} are kept`
      : "no unit was installed",
  );
}
