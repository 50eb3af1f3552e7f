import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import semver from "semver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDeb } from "../../../scripts/build-deb.ts";
import { buildMsi } from "../../../scripts/build-msi.ts";
import { buildRpm } from "../../../scripts/build-rpm.ts";
import { buildSingleExecutable, ensureSingleExecutable } from "../../../scripts/build-sea.ts";
import { relativeLinks } from "../../../scripts/deb-package.ts";
import { documentationFiles } from "../../../scripts/package-docs.ts";
import { ClientUpdateStatus, InstalledAgentMessage } from "../../../src/contracts/index.ts";
import { startFileServer } from "../../fixtures/tools/tool-kit.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import {
  openPackageSandbox,
  type PackageSandbox,
  packageSandboxUnavailable,
  SANDBOX_ENV,
} from "../../helpers/package-sandbox.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { supervise } from "../../helpers/supervisor.ts";
import { testBuildDir } from "../../helpers/test-builds.ts";
import { waitFor } from "../../helpers/wait-for.ts";

// One build of the single executable serves every package below and the bridge's package test, in
// the run's build directory: test builds never go into dist/, where the release packages are.
const buildDir = testBuildDir();
beforeAll(async () => {
  await ensureSingleExecutable(buildDir);
}, 600_000);

const sandboxUnavailable = packageSandboxUnavailable();
if (sandboxUnavailable) console.warn(`the .deb install test is skipped: the package sandbox ${sandboxUnavailable}`);

/** Where the package's files and the service's environment point, inside the sandbox. */
const AGENT_ENV = {
  EDGE_AGENT_MACHINE_ID: "pkg-1",
  EDGE_AGENT_CONFIG_DIR: "/etc/edge-agent",
  EDGE_AGENT_DATA_DIR: "/var/lib/edge-agent",
  // The test plays a development platform, which sends unsigned commands.
  EDGE_AGENT_ALLOW_UNSIGNED: "1",
};

// Installing a package changes a machine: it is installed into a throwaway overlay of this one
// (test/helpers/package-sandbox.ts), never onto it. The machine's own edge-agent, if any, is
// neither seen as installed nor touched.
describe.skipIf(sandboxUnavailable !== undefined)(
  `the .deb package, installed into a throwaway copy of this machine${sandboxUnavailable ? ` (skipped: ${sandboxUnavailable})` : ""}`,
  () => {
    let deb: string;
    let sandbox: PackageSandbox;
    let server: NatsServerHandle;
    let observer: NatsConnection;
    const owner = (path: string): string => sandbox.run("stat", ["-c", "%U:%G", path]).trim();
    const exists = (path: string): boolean => sandbox.status("test", ["-e", path]) === 0;

    // Minutes on a busy two-core machine: the .deb's xz at 9e.
    beforeAll(async () => {
      // Its own .deb: a concurrent run builds its own, never this one.
      deb = await buildDeb({ outputDir: buildDir });
      sandbox = await openPackageSandbox();
      // A fresh machine: the copy starts as this one is, and an edge-agent installed here for
      // real (its package, user, settings, state) is removed from the copy only.
      sandbox.run("sh", [
        "-c",
        "if dpkg-query -W edge-agent >/dev/null 2>&1; then dpkg --purge edge-agent; fi; rm -rf /etc/edge-agent /var/lib/edge-agent; if getent passwd edge-agent >/dev/null; then userdel edge-agent; fi; if getent group edge-agent >/dev/null; then groupdel edge-agent; fi",
      ]);
      copyFileSync(deb, sandbox.hostPath("/tmp/edge-agent.deb"));
      // What an agent once run as root from a checkout leaves behind: the package must adopt it.
      mkdirSync(sandbox.hostPath("/var/lib/edge-agent"), { recursive: true });
      writeFileSync(sandbox.hostPath("/var/lib/edge-agent/left-by-root"), "x");
      sandbox.run("dpkg", ["-i", "/tmp/edge-agent.deb"]);
      server = await startNatsServer();
      observer = await connect({ servers: server.url });
    }, 600_000);

    afterAll(async () => {
      await observer?.close();
      await server?.dispose();
      await sandbox?.dispose();
    });

    it("installs the binary, the unit, the service user and tight directories", () => {
      expect(statSync(sandbox.hostPath("/usr/bin/edge-agent")).mode & 0o777).toBe(0o755);
      expect(sandbox.run("/usr/bin/edge-agent", ["version"]).trim()).toMatch(/^\d+\.\d+\.\d+/);
      expect(exists("/lib/systemd/system/edge-agent.service")).toBe(true);
      expect(sandbox.run("getent", ["passwd", "edge-agent"])).toMatch(
        /^edge-agent:x:\d+:\d+:.*:\/var\/lib\/edge-agent:\/usr\/sbin\/nologin/,
      );
      for (const dir of ["/etc/edge-agent", "/var/lib/edge-agent"]) {
        expect(statSync(sandbox.hostPath(dir)).mode & 0o777, dir).toBe(0o750);
        expect(owner(dir)).toBe("edge-agent:edge-agent");
      }
      expect(owner("/var/lib/edge-agent/left-by-root")).toBe("edge-agent:edge-agent");
      // The unit is valid for systemd (verify also checks that ExecStart exists).
      sandbox.run("systemd-analyze", ["verify", "/lib/systemd/system/edge-agent.service"]);
    });

    it("ships a machine-readable copyright file and a README whose links resolve", () => {
      const listing = execFileSync("dpkg-deb", ["-c", deb], { encoding: "utf8" });
      expect(listing).toMatch(/^-rw-r--r-- root\/root .* \.\/usr\/share\/doc\/edge-agent\/copyright$/m);
      const copyright = readFileSync(sandbox.hostPath("/usr/share/doc/edge-agent/copyright"), "utf8");
      expect(copyright.split("\n").slice(0, 2)).toEqual([
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
        "Upstream-Name: edge-agent",
      ]);
      expect(copyright).toMatch(/^Files: \*\nCopyright: the edge-agent authors\nLicense: Apache-2\.0$/m);
      expect(exists("/usr/share/common-licenses/Apache-2.0")).toBe(true);
      // The executable's paragraph names what it bundles, each with its version and license.
      for (const line of [
        " Node.js 26.10.0: MIT",
        " @nats-io/transport-node 3.4.0: Apache-2.0",
        " zod 4.6.7: MIT",
        " tar 7.5.23: BlueOak-1.0.0",
      ])
        expect(copyright).toContain(`${line}\n`);
      expect(copyright).toMatch(/^License: BlueOak-1\.0\.0\n tar 7\.5\.23:\n \.\n # Blue Oak Model License/m);
      // md5sums: dpkg can check every installed file against the package.
      expect(sandbox.run("dpkg", ["--verify", "edge-agent"])).toBe("");
      const readme = readFileSync(sandbox.hostPath("/usr/share/doc/edge-agent/README.md"), "utf8");
      // The design the README points to is shipped where its link leads.
      expect(relativeLinks(readme)).toContain("docs/DESIGN.md");
      for (const target of relativeLinks(readme))
        expect(exists(`/usr/share/doc/edge-agent/${target}`), target).toBe(true);
    });

    it("runs as the service user with the unit's paths, and announces itself to a real server", async () => {
      const announcements: string[] = [];
      observer.subscribe("machine.pkg-1.installed-agent", {
        callback: (_error, message) => void announcements.push(message.string()),
      });
      // The stream is what a real platform keeps; the agent needs it to deliver.
      sandbox.run("/usr/bin/edge-agent", ["dev-setup", "--nats-url", server.url]);
      const child = sandbox.spawn("runuser", ["-u", "edge-agent", "--", "/usr/bin/edge-agent", "run"], {
        env: { ...SANDBOX_ENV, ...AGENT_ENV, EDGE_AGENT_NATS_URL: server.url },
        stdio: "ignore",
      });
      try {
        await waitFor("the packaged agent's announcement", () => announcements.length > 0, 30_000);
        expect(JSON.parse(announcements[0] as string)).toMatchObject({ machineId: "pkg-1", agentType: "edge-agent" });
        expect(sandbox.run("stat", ["-c", "%U", "/var/lib/edge-agent/outbox.db"]).trim()).toBe("edge-agent");
      } finally {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
    });

    it("updates itself to a newer build through the packaged launcher, and rolls a broken one back to it", async () => {
      const packaged = sandbox.run("/usr/bin/edge-agent", ["version"]).trim();
      const newerVersion = semver.inc(packaged, "minor") as string;
      const brokenVersion = semver.inc(packaged, "major") as string;
      const newer = (await buildSingleExecutable({ version: newerVersion, outputDir: buildDir })).binary;
      const files = await startFileServer();
      const newerFile = files.add("edge-agent-newer", readFileSync(newer));
      const brokenFile = files.add(
        "edge-agent-broken",
        Buffer.from(`#!/bin/sh\nif [ "$1" = version ]; then echo ${brokenVersion}; exit 0; fi\nexit 1\n`),
      );
      const announced: string[] = [];
      const subscription = observer.subscribe("machine.pkg-1.installed-agent", {
        callback: (_error, message) => void announced.push(InstalledAgentMessage.parse(message.json()).version),
      });
      sandbox.run("/usr/bin/edge-agent", ["dev-setup", "--nats-url", server.url]);
      const statuses = async (): Promise<ClientUpdateStatus[]> =>
        (await readStream(observer, "CLIENT_UPDATE_STATUS"))
          .filter((message) => message.subject === "machine.pkg-1.client-update.status")
          .map((message) => ClientUpdateStatus.parse(message.body));
      const update = async (version: string, file: { url: string; sha256: string; size: number }): Promise<void> => {
        await jetstream(observer).publish(
          "machine.pkg-1.client-update",
          JSON.stringify({
            version,
            downloadConfigurations: [{ os: "linux", link: file.url, sha256: file.sha256, size: file.size }],
          }),
        );
      };
      // systemd's part: start the packaged binary as the service user, again each time it exits.
      const startPackaged = async () => {
        const child = sandbox.spawn(
          "setpriv",
          ["--reuid", "edge-agent", "--regid", "edge-agent", "--init-groups", "/usr/bin/edge-agent", "run"],
          {
            env: { ...SANDBOX_ENV, ...AGENT_ENV, EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_SUPERVISED: "1" },
            stdio: "ignore",
          },
        );
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
          child.once("exit", (code, signal) => resolve({ code, signal })),
        );
        return {
          child,
          exited,
          stop: async (signal: NodeJS.Signals = "SIGTERM") => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        };
      };
      const executableOf = (pid: number | undefined): string => sandbox.run("readlink", [`/proc/${pid}/exe`]).trim();
      const agents = await supervise(startPackaged, { maxStarts: 10 });
      try {
        await waitFor("the packaged version's announcement", () => announced.includes(packaged), 30_000);
        await update(newerVersion, newerFile);
        await waitFor("UPDATED", async () => (await statuses()).some((status) => status.state === "UPDATED"), 60_000);
        await waitFor("the newer version's announcement", () => announced.includes(newerVersion), 30_000);
        const installed = `/var/lib/edge-agent/update/versions/${newerVersion}/edge-agent`;
        // The packaged launcher exec'd the update: the service's process is the new binary itself.
        expect(executableOf(agents.current().child.pid)).toBe(installed);
        // 0700, as everything the agent writes in its data dir: the service user alone runs it.
        expect(sandbox.run("stat", ["-c", "%U %a", installed]).trim()).toBe("edge-agent 700");
        const health = (await observer.request("machine.pkg-1.rpc.health", "", { timeout: 5_000 })).json<{
          version: string;
        }>();
        expect(health.version).toBe(newerVersion);

        await update(brokenVersion, brokenFile);
        await waitFor(
          "ROLLED_BACK",
          async () => (await statuses()).some((status) => status.state === "ROLLED_BACK"),
          60_000,
        );
        expect((await statuses()).map((status) => [status.version, status.runningVersion, status.state])).toEqual([
          [newerVersion, packaged, "RESTARTING"],
          [newerVersion, newerVersion, "UPDATED"],
          [brokenVersion, newerVersion, "RESTARTING"],
          [brokenVersion, newerVersion, "ROLLED_BACK"],
        ]);
        // Back on the last known good version, the update, not the packaged one.
        await waitFor(
          "the newer version announced again",
          () => announced.filter((version) => version === newerVersion).length >= 2,
          30_000,
        );
        expect(executableOf(agents.current().child.pid)).toBe(installed);
        expect(agents.exits).toEqual([75, 75, 1, 1, 1]);
      } finally {
        subscription.unsubscribe();
        await agents.stop();
        await files.close();
      }
    }, 240_000);

    it("keeps settings and state on upgrade, and leaves nothing behind on purge", () => {
      sandbox.run("dpkg", ["-i", "/tmp/edge-agent.deb"]);
      expect(exists("/var/lib/edge-agent/outbox.db")).toBe(true);
      sandbox.run("dpkg", ["--purge", "edge-agent"]);
      for (const path of [
        "/usr/bin/edge-agent",
        "/lib/systemd/system/edge-agent.service",
        "/usr/share/doc/edge-agent",
        "/etc/edge-agent",
        "/var/lib/edge-agent",
      ])
        expect(exists(path), path).toBe(false);
      expect(sandbox.status("getent", ["passwd", "edge-agent"])).toBe(2);
    });
  },
);

const has = (command: string): boolean => {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(!has("rpmbuild"))("the .rpm package (needs rpmbuild; scripts/test.sh installs it)", () => {
  it("holds the executable, the unit, the README and the design, and its scripts make the user and clean up on erase", async () => {
    const rpm = await buildRpm({ outputDir: buildDir });
    // Debian's rpm opens its database in ~/.rpmdb unless told where: a test leaves nothing in the home dir.
    const rpmQuery = (args: readonly string[]): string =>
      execFileSync("rpm", ["--dbpath", join(buildDir, "rpmdb"), ...args], { encoding: "utf8" });
    const files = rpmQuery(["-qlp", rpm]).trim().split("\n");
    expect(files).toEqual(
      [
        "/usr/bin/edge-agent",
        "/usr/lib/systemd/system/edge-agent.service",
        "/usr/share/doc/edge-agent/docs",
        ...documentationFiles("edge-agent").map((file) => `/${file.target}`),
      ].sort(),
    );
    const { version } = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    expect(rpmQuery(["-qp", "--queryformat", "%{NAME} %{VERSION} %{ARCH}", rpm])).toBe(`edge-agent ${version} x86_64`);
    const scripts = rpmQuery(["-qp", "--scripts", rpm]);
    expect(scripts).toMatch(/useradd --system --gid edge-agent/);
    expect(scripts).toMatch(/install -d -o edge-agent -g edge-agent -m 0750 \/etc\/edge-agent \/var\/lib\/edge-agent/);
    expect(scripts).toMatch(/if \[ -d \/run\/systemd\/system \]/);
    expect(scripts).toMatch(/rm -rf \/etc\/edge-agent \/var\/lib\/edge-agent/);
  }, 180_000);
});

describe.skipIf(!has("wixl") || !has("msiinfo"))(
  "the Windows .msi (needs wixl and msiinfo; scripts/test.sh installs them)",
  () => {
    it("installs the executable and WinSW with its XML, and registers and starts the edge-agent service", async () => {
      const msi = await buildMsi({ outputDir: buildDir });
      const table = (name: string): string[][] =>
        execFileSync("msiinfo", ["export", msi, name], { encoding: "utf8" })
          .trim()
          .split("\n")
          .slice(3)
          .map((row) => row.split("\t"));
      expect(
        table("File")
          .map((row) => row[2])
          .sort(),
      ).toEqual(["edge-agent-service.exe", "edge-agent-service.xml", "edge-agent.exe"]);
      const [service] = table("ServiceInstall");
      // Name, display name, own process (16), auto start (2), normal error control (1), LocalSystem.
      expect([service?.[1], service?.[3], service?.[4], service?.[5], service?.[8]]).toEqual([
        "edge-agent",
        "16",
        "2",
        "1",
        "LocalSystem",
      ]);
      const [control] = table("ServiceControl");
      expect(control?.[1]).toBe("edge-agent");
      expect(table("Upgrade").length).toBeGreaterThan(0);
      // The executable inside is a Windows x64 program.
      const header = execFileSync(
        "sh",
        ["-c", `head -c 2 ${JSON.stringify(msi.replace(/[^/]+$/, "msi/edge-agent.exe"))}`],
        { encoding: "latin1" },
      );
      expect(header).toBe("MZ");
    }, 180_000);
  },
);
