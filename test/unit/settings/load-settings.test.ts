import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadSettings, SettingsError } from "../../../src/settings/index.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

/** The host for tests about layering, not paths: they name their config dir. */
const linuxUser = { platform: "linux", privileged: false } as const;

function configDirWith(document: unknown): string {
  const dir = scratchDir("edge-agent-settings-");
  writeFileSync(join(dir, "settings.json"), JSON.stringify(document));
  return dir;
}

function settingsError(run: () => unknown): SettingsError {
  try {
    run();
  } catch (error) {
    if (error instanceof SettingsError) return error;
    throw error;
  }
  throw new Error("expected a SettingsError");
}

describe("loadSettings", () => {
  it("uses per-user directories when an ordinary user runs it, system ones for the service", () => {
    const user = loadSettings({
      env: { HOME: "/home/ann", XDG_STATE_HOME: "/home/ann/state" },
      platform: "linux",
      privileged: false,
    }).settings;
    expect(user.configDir).toBe("/home/ann/.config/edge-agent");
    expect(user.dataDir).toBe("/home/ann/state/edge-agent");
    const windows = loadSettings({
      env: { ProgramData: "D:\\PD", EDGE_AGENT_CONFIG_DIR: scratchDir("ea-") },
      platform: "win32",
      privileged: true,
    }).settings;
    expect(windows.dataDir).toMatch(/edge-agent.data$/);
  });

  it("takes the platform and privilege it is given, whatever this process runs on and as", () => {
    const dataDirFor = (platform: NodeJS.Platform, privileged: boolean): string =>
      loadSettings({
        env: { HOME: "/home/ann", ProgramData: "D:\\PD", EDGE_AGENT_CONFIG_DIR: scratchDir("ea-") },
        platform,
        privileged,
      }).settings.dataDir;
    expect(dataDirFor("linux", true)).toBe("/var/lib/edge-agent");
    expect(dataDirFor("linux", false)).toBe("/home/ann/.local/state/edge-agent");
    expect(dataDirFor("darwin", true)).toBe("/Library/Application Support/edge-agent/data");
    // Windows has no per-user default: ProgramData, privileged or not.
    expect(dataDirFor("win32", false)).toMatch(/^D:\\PD.edge-agent.data$/);
    expect(dataDirFor("win32", true)).toBe(dataDirFor("win32", false));
  });

  it("has sane defaults for a Linux service with nothing configured", () => {
    const { settings } = loadSettings({
      env: { EDGE_AGENT_CONFIG_DIR: scratchDir("ea-") },
      platform: "linux",
      privileged: true,
    });
    expect(settings.natsServers).toEqual(["nats://127.0.0.1:4222"]);
    expect(settings.dataDir).toBe("/var/lib/edge-agent");
    expect(settings.heartbeatSeconds).toBe(60);
    expect(settings.machineId).toBeUndefined();
    expect(settings.toolPolicy.allowMissingChecksum).toBe(false);
  });

  it("layers defaults < settings file < environment < flags", () => {
    const configDir = configDirWith({
      heartbeatSeconds: 30,
      logLevel: "debug",
      natsUrl: "nats://file:4222",
      tags: { site: "lab" },
    });
    const fromFile = loadSettings({ ...linuxUser, env: { EDGE_AGENT_CONFIG_DIR: configDir } }).settings;
    expect(fromFile).toMatchObject({
      heartbeatSeconds: 30,
      logLevel: "debug",
      natsServers: ["nats://file:4222"],
      tags: { site: "lab" },
    });

    const fromEnv = loadSettings({
      ...linuxUser,
      env: { EDGE_AGENT_CONFIG_DIR: configDir, EDGE_AGENT_HEARTBEAT_SECONDS: "15" },
    }).settings;
    expect(fromEnv.heartbeatSeconds).toBe(15);
    expect(fromEnv.logLevel).toBe("debug");

    const fromFlags = loadSettings({
      ...linuxUser,
      env: { EDGE_AGENT_CONFIG_DIR: configDir, EDGE_AGENT_HEARTBEAT_SECONDS: "15" },
      flags: { "heartbeat-seconds": "5", tag: ["a=1", "b=2"] },
    }).settings;
    expect(fromFlags.heartbeatSeconds).toBe(5);
    expect(fromFlags.tags).toEqual({ a: "1", b: "2" });
  });

  it("takes a comma-separated server list and lifts credentials out of the URLs", () => {
    const dir = scratchDir("ea-");
    const { settings } = loadSettings({
      ...linuxUser,
      env: {
        EDGE_AGENT_CONFIG_DIR: dir,
        EDGE_AGENT_NATS_URL: "nats://alice:s%40cret@a.example:4222, tls://b.example:4443,c.example",
      },
    });
    expect(settings.natsServers).toEqual(["nats://a.example:4222", "tls://b.example:4443", "nats://c.example"]);
    expect(settings.auth).toEqual({ user: "alice", password: "s@cret" });

    const token = loadSettings({
      ...linuxUser,
      env: { EDGE_AGENT_CONFIG_DIR: dir, EDGE_AGENT_NATS_URL: "wss://tok3n@edge.example/ws/nats" },
    }).settings;
    expect(token.auth.token).toBe("tok3n");
    expect(token.natsServers).toEqual(["wss://edge.example/ws/nats"]);
  });

  it("honours the standard NATS_* names as fallbacks, below our own names", () => {
    const dir = scratchDir("ea-");
    const env = {
      EDGE_AGENT_CONFIG_DIR: dir,
      NATS_URL: "nats://std:4222",
      NATS_USER: "u",
      NATS_PASSWORD: "p",
      NATS_CREDS: "/x.creds",
      NATS_NKEY: "/seed.nk",
      NATS_TOKEN: "t",
    };
    const { settings } = loadSettings({ ...linuxUser, env });
    expect(settings.natsServers).toEqual(["nats://std:4222"]);
    expect(settings.auth).toEqual({
      user: "u",
      password: "p",
      credsFile: "/x.creds",
      nkeySeedFile: "/seed.nk",
      token: "t",
    });
    expect(
      loadSettings({ ...linuxUser, env: { ...env, EDGE_AGENT_NATS_URL: "nats://ours:4222" } }).settings.natsServers,
    ).toEqual(["nats://ours:4222"]);
  });

  it.each([
    [{ EDGE_AGENT_MACHINE_ID: "bad.id" }, "EDGE_AGENT_MACHINE_ID"],
    [{ EDGE_AGENT_MACHINE_ID: "all" }, "EDGE_AGENT_MACHINE_ID"],
    [{ EDGE_AGENT_INBOX_PREFIX: "_INBOX" }, "EDGE_AGENT_INBOX_PREFIX"],
    [{ EDGE_AGENT_INBOX_PREFIX: "_INBOX_m.>" }, "EDGE_AGENT_INBOX_PREFIX"],
    [{ EDGE_AGENT_NATS_URL: "http://x:1" }, "EDGE_AGENT_NATS_URL"],
    [{ EDGE_AGENT_NATS_URL: "nats://[broken" }, "EDGE_AGENT_NATS_URL"],
    [{ EDGE_AGENT_NATS_URL: "nats://a:1,wss://b" }, "EDGE_AGENT_NATS_URL"],
    [{ EDGE_AGENT_TELEMETRY_SCHEDULE: "every minute" }, "EDGE_AGENT_TELEMETRY_SCHEDULE"],
    [{ EDGE_AGENT_HEARTBEAT_SECONDS: "0" }, "EDGE_AGENT_HEARTBEAT_SECONDS"],
    [{ EDGE_AGENT_HEARTBEAT_SECONDS: "ten" }, "EDGE_AGENT_HEARTBEAT_SECONDS"],
    [{ EDGE_AGENT_LOG_LEVEL: "loud" }, "EDGE_AGENT_LOG_LEVEL"],
    [{ EDGE_AGENT_TAGS: "novalue" }, "EDGE_AGENT_TAGS"],
    [{ EDGE_AGENT_NATS_PASSWORD: "p" }, "EDGE_AGENT_NATS_PASSWORD"],
  ])("refuses %j naming %s", (env, setting) => {
    const error = settingsError(() =>
      loadSettings({ ...linuxUser, env: { EDGE_AGENT_CONFIG_DIR: scratchDir("ea-"), ...env } }),
    );
    expect(error.setting).toBe(setting);
    expect(error.message).toMatch(new RegExp(`^invalid setting ${setting}: `));
    expect(error.message).not.toContain("\n");
  });

  it("names the file key for a bad value or an unknown key in the settings file", () => {
    const dir = configDirWith({ outbox: { maxBytes: -5 } });
    expect(settingsError(() => loadSettings({ ...linuxUser, env: { EDGE_AGENT_CONFIG_DIR: dir } })).setting).toBe(
      `${join(dir, "settings.json")} outbox.maxBytes`,
    );
    const typo = configDirWith({ heartbeatSecs: 5 });
    expect(settingsError(() => loadSettings({ ...linuxUser, env: { EDGE_AGENT_CONFIG_DIR: typo } })).message).toMatch(
      /heartbeatSecs: is not a known setting/,
    );
  });

  it("says what is wrong the same way for the environment, a flag and the settings file, with the value given", () => {
    const problemOf = (input: Parameters<typeof loadSettings>[0]): string =>
      settingsError(() => loadSettings(input)).message;
    const env = (extra: Record<string, string>) => ({
      ...linuxUser,
      env: { EDGE_AGENT_CONFIG_DIR: scratchDir("ea-"), ...extra },
    });
    expect(problemOf(env({ EDGE_AGENT_LOG_LEVEL: "verbose" }))).toBe(
      'invalid setting EDGE_AGENT_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace or silent (got "verbose")',
    );
    expect(problemOf(env({ EDGE_AGENT_LOG_LEVEL: "0" }))).toBe(
      'invalid setting EDGE_AGENT_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace or silent (got "0")',
    );
    expect(problemOf(env({ EDGE_AGENT_HEARTBEAT_SECONDS: "ten" }))).toBe(
      'invalid setting EDGE_AGENT_HEARTBEAT_SECONDS: must be a whole number (got "ten")',
    );
    expect(problemOf(env({ EDGE_AGENT_HEARTBEAT_SECONDS: "-5" }))).toBe(
      "invalid setting EDGE_AGENT_HEARTBEAT_SECONDS: must be at least 1 (got -5)",
    );
    expect(problemOf({ ...env({}), flags: { "heartbeat-seconds": "0" } })).toBe(
      "invalid setting --heartbeat-seconds: must be at least 1 (got 0)",
    );
    const dir = configDirWith({ heartbeatSeconds: "ten" });
    expect(problemOf({ ...linuxUser, env: { EDGE_AGENT_CONFIG_DIR: dir } })).toBe(
      `invalid setting ${join(dir, "settings.json")} heartbeatSeconds: must be a whole number (got "ten")`,
    );
  });

  it("names the closest known key for an unknown one in the settings file, as flags do", () => {
    const dir = configDirWith({ heartbeatSecs: 5 });
    expect(settingsError(() => loadSettings({ ...linuxUser, env: { EDGE_AGENT_CONFIG_DIR: dir } })).message).toBe(
      `invalid setting ${join(dir, "settings.json")} heartbeatSecs: is not a known setting: did you mean "heartbeatSeconds"?`,
    );
  });

  it("says why 'all' is no machine id, and takes an inbox prefix from the file, the environment or a flag", () => {
    const env = { EDGE_AGENT_CONFIG_DIR: configDirWith({ inboxPrefix: "_INBOX_file" }) };
    expect(
      settingsError(() => loadSettings({ ...linuxUser, env: { ...env, EDGE_AGENT_MACHINE_ID: "all" } })).message,
    ).toMatch(/must not be "all": machine.all.\* subjects are fleet-wide/);
    expect(loadSettings({ ...linuxUser, env }).settings.inboxPrefix).toBe("_INBOX_file");
    expect(
      loadSettings({ ...linuxUser, env: { ...env, EDGE_AGENT_INBOX_PREFIX: "_INBOX_env" } }).settings.inboxPrefix,
    ).toBe("_INBOX_env");
    expect(loadSettings({ ...linuxUser, env, flags: { "inbox-prefix": "site.m1" } }).settings.inboxPrefix).toBe(
      "site.m1",
    );
  });

  it("refuses an unreadable settings file instead of wiping it", () => {
    const dir = scratchDir("ea-");
    writeFileSync(join(dir, "settings.json"), "{ not json");
    expect(settingsError(() => loadSettings({ ...linuxUser, env: { EDGE_AGENT_CONFIG_DIR: dir } })).message).toMatch(
      /cannot be read/,
    );
  });

  describe("platform: whose conventions (edge, or openframe)", () => {
    const load = (env: NodeJS.ProcessEnv, flags = {}) =>
      loadSettings({ ...linuxUser, env: { EDGE_AGENT_CONFIG_DIR: scratchDir("ea-"), ...env }, flags }).settings;

    it("under edge: signed commands and a sha256 on every download; no unsigned uninstall", () => {
      expect(load({})).toMatchObject({
        platform: "edge",
        allowUnsigned: false,
        allowUnsignedUninstall: false,
        toolPolicy: { allowMissingChecksum: false, allowedDownloadHosts: [] },
        openframe: {},
      });
    });

    it("under openframe: unsigned commands and downloads without a sha256 by default; hosts and the unsigned uninstall never implied", () => {
      for (const settings of [
        load({ EDGE_AGENT_PLATFORM: "openframe" }),
        load({}, { platform: "openframe" }),
        loadSettings({ ...linuxUser, env: { EDGE_AGENT_CONFIG_DIR: configDirWith({ platform: "openframe" }) } })
          .settings,
      ]) {
        expect(settings).toMatchObject({
          platform: "openframe",
          allowUnsigned: true,
          allowUnsignedUninstall: false,
          toolPolicy: { allowMissingChecksum: true, allowedDownloadHosts: [] },
        });
      }
    });

    it("under openframe, a value the operator gives still wins over the platform's default", () => {
      const settings = load({
        EDGE_AGENT_PLATFORM: "openframe",
        EDGE_AGENT_ALLOW_UNSIGNED: "false",
        EDGE_AGENT_ALLOW_MISSING_CHECKSUM: "0",
        EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS: "github.com, *.githubusercontent.com,assets.example:8443",
        EDGE_AGENT_ALLOW_UNSIGNED_UNINSTALL: "true",
        EDGE_AGENT_OPENFRAME_SECRET_FILE: "/etc/edge-agent/openframe.secret",
        EDGE_AGENT_OPENFRAME_TOKEN_PATH: "/var/lib/openframe/shared_token.enc",
      });
      expect(settings).toMatchObject({
        allowUnsigned: false,
        allowUnsignedUninstall: true,
        toolPolicy: {
          allowMissingChecksum: false,
          allowedDownloadHosts: ["github.com", "*.githubusercontent.com", "assets.example:8443"],
        },
        openframe: {
          secretFile: "/etc/edge-agent/openframe.secret",
          tokenPath: "/var/lib/openframe/shared_token.enc",
        },
      });
    });

    it.each([
      [
        { EDGE_AGENT_PLATFORM: "OpenFrame2" },
        "EDGE_AGENT_PLATFORM",
        /must be one of edge or openframe \(got "OpenFrame2"\)/,
      ],
      [
        { EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS: "github.com,https://evil.example/x" },
        "EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS",
        /"https:\/\/evil.example\/x" is not a host/,
      ],
      [{ EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS: "*.com" }, "EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS", /below a top-level one/],
    ])("refuses %j naming %s", (env, setting, message) => {
      const error = settingsError(() => load(env));
      expect(error.setting).toBe(setting);
      expect(error.message).toMatch(message);
    });
  });
});

describe("tasks: this machine's own policy for remote tasks", () => {
  const load = (env: NodeJS.ProcessEnv, platform: NodeJS.Platform = "linux") =>
    loadSettings({
      env: { EDGE_AGENT_CONFIG_DIR: scratchDir("edge-agent-settings-"), ...env },
      platform,
      privileged: false,
    }).settings;

  it("runs tasks, signed only, either of the OS's two interpreters or a program, anywhere under the data dir, unconfined, two at a time", () => {
    expect(load({}).tasks).toEqual({
      enabled: true,
      allowUnsigned: false,
      allowedInterpreters: ["sh", "bash"],
      allowArgv: true,
      allowedWorkingDirs: [],
      confine: "none",
      maxConcurrent: 2,
    });
    expect(load({}, "win32").tasks.allowedInterpreters).toEqual(["powershell", "cmd"]);
  });

  it("never takes unsigned tasks because commands are taken unsigned: not by allowUnsigned, not under OpenFrame's conventions", () => {
    expect(load({ EDGE_AGENT_ALLOW_UNSIGNED: "1" }).tasks.allowUnsigned).toBe(false);
    expect(load({ EDGE_AGENT_PLATFORM: "openframe" })).toMatchObject({
      allowUnsigned: true,
      tasks: { allowUnsigned: false },
    });
    expect(load({ EDGE_AGENT_TASKS_ALLOW_UNSIGNED: "yes" }).tasks.allowUnsigned).toBe(true);
  });

  it("takes every setting from the environment and the settings file", () => {
    expect(
      load({
        EDGE_AGENT_TASKS_ENABLED: "false",
        EDGE_AGENT_TASKS_ALLOWED_INTERPRETERS: "bash",
        EDGE_AGENT_TASKS_ALLOW_ARGV: "0",
        EDGE_AGENT_TASKS_ALLOWED_WORKING_DIRS: "/srv/jobs, /opt/scripts",
        EDGE_AGENT_TASKS_CONFINE: "working-dir",
        EDGE_AGENT_TASKS_MAX_CONCURRENT: "8",
      }).tasks,
    ).toEqual({
      enabled: false,
      allowUnsigned: false,
      allowedInterpreters: ["bash"],
      allowArgv: false,
      allowedWorkingDirs: ["/srv/jobs", "/opt/scripts"],
      confine: "working-dir",
      maxConcurrent: 8,
    });
    const fromFile = loadSettings({
      env: {
        EDGE_AGENT_CONFIG_DIR: configDirWith({ tasks: { confine: "working-dir", allowedWorkingDirs: ["/srv"] } }),
      },
      ...linuxUser,
    }).settings.tasks;
    expect(fromFile).toMatchObject({ confine: "working-dir", allowedWorkingDirs: ["/srv"], maxConcurrent: 2 });
  });

  it.each([
    [
      { EDGE_AGENT_TASKS_CONFINE: "chroot" },
      "EDGE_AGENT_TASKS_CONFINE",
      'must be one of none or working-dir (got "chroot")',
    ],
    [
      { EDGE_AGENT_TASKS_ALLOWED_INTERPRETERS: "sh,zsh" },
      "EDGE_AGENT_TASKS_ALLOWED_INTERPRETERS",
      'must be one of sh, bash, powershell or cmd (got "zsh")',
    ],
    [
      { EDGE_AGENT_TASKS_ALLOWED_WORKING_DIRS: "jobs" },
      "EDGE_AGENT_TASKS_ALLOWED_WORKING_DIRS",
      "must be an absolute path",
    ],
    [{ EDGE_AGENT_TASKS_MAX_CONCURRENT: "0" }, "EDGE_AGENT_TASKS_MAX_CONCURRENT", "must be at least 1 (got 0)"],
    [{ EDGE_AGENT_TASKS_ENABLED: "maybe" }, "EDGE_AGENT_TASKS_ENABLED", 'must be true or false (got "maybe")'],
  ])("refuses %j naming %s", (env, setting, message) => {
    const error = settingsError(() => load(env));
    expect(error.setting).toBe(setting);
    expect(error.message).toContain(message);
  });
});
