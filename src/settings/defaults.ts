import { homedir } from "node:os";
import { join } from "node:path";
import type { ManagementPlatform, Settings } from "./settings.ts";

/** Where a server-less install looks first: a NATS server on this machine's loopback. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/**
 * System paths for the service (root); per-user paths when an ordinary user runs the agent by
 * hand, so `npm start` works without root and never half-writes into /etc. `privileged` is the
 * caller's to say (the CLI asks the process): Windows always gets the system paths.
 */
export function defaultDirectories(
  platform: NodeJS.Platform,
  env: NodeJS.ProcessEnv,
  privileged: boolean,
): { configDir: string; dataDir: string } {
  if (!privileged && platform !== "win32") {
    const home = env.HOME ?? homedir();
    return {
      configDir: join(env.XDG_CONFIG_HOME ?? join(home, ".config"), "edge-agent"),
      dataDir: join(env.XDG_STATE_HOME ?? join(home, ".local", "state"), "edge-agent"),
    };
  }
  switch (platform) {
    case "win32": {
      const programData = env.ProgramData ?? "C:\\ProgramData";
      const root = join(programData, "edge-agent");
      return { configDir: root, dataDir: join(root, "data") };
    }
    case "darwin": {
      const root = "/Library/Application Support/edge-agent";
      return { configDir: root, dataDir: join(root, "data") };
    }
    default:
      return { configDir: "/etc/edge-agent", dataDir: "/var/lib/edge-agent" };
  }
}

export function defaultSettings(platform: NodeJS.Platform, env: NodeJS.ProcessEnv, privileged: boolean): Settings {
  return {
    natsServers: [DEFAULT_NATS_URL],
    ...defaultDirectories(platform, env, privileged),
    logLevel: "info",
    heartbeatSeconds: 60,
    telemetrySchedule: "0 * * * * *",
    // Checked hourly; sent only when it changed, or once a day.
    inventorySchedule: "0 0 * * * *",
    auth: {},
    tls: {},
    outbox: { maxBytes: 256 * 1024 * 1024, maxAgeSeconds: 7 * 24 * 3600, durability: "normal" },
    tags: {},
    platform: "edge",
    toolPolicy: {
      allowMissingChecksum: false,
      allowedDownloadHosts: [],
      maxDownloadBytes: 1024 * 1024 * 1024,
      // Tools are agents of a few MB; a bomb's gigabytes are refused long before the disk fills.
      maxUnpackedBytes: 64 * 1024 * 1024,
      downloadStallSeconds: 30,
      downloadDeadlineSeconds: 600,
    },
    allowUnsigned: false,
    allowUnsignedUninstall: false,
    tasks: {
      enabled: true,
      allowUnsigned: false,
      allowedInterpreters: platform === "win32" ? ["powershell", "cmd"] : ["sh", "bash"],
      allowArgv: true,
      allowedWorkingDirs: [],
      confine: "none",
      maxConcurrent: 2,
    },
    openframe: {},
  };
}

/**
 * The defaults under a platform's conventions. `openframe`: OpenFrame signs no command, so unsigned
 * ones are taken (`allowUnsigned`), and its downloads carry no sha256, so they are taken under the
 * unchecked-download rules (`toolPolicy.allowMissingChecksum`). Only defaults: a value the operator
 * gives wins. Not changed: the hosts such downloads may come from (always given explicitly), the
 * unsigned uninstall and unsigned tasks (always off unless set).
 */
export function withPlatformDefaults(defaults: Settings, platform: ManagementPlatform): Settings {
  if (platform === "edge") return { ...defaults, platform };
  return {
    ...defaults,
    platform,
    allowUnsigned: true,
    toolPolicy: { ...defaults.toolPolicy, allowMissingChecksum: true },
  };
}
