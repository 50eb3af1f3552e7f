import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  ExecutableUnreachableError,
  installService,
  ServiceInstallError,
  uninstallService,
  unitFor,
} from "../../../src/service/install-service.ts";
import { SYSTEMD_UNIT_TEMPLATE } from "../../../src/service/unit-template.ts";

const scratchDirs: string[] = [];
afterEach(() => {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const scratch = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "ea-service-"));
  scratchDirs.push(dir);
  return dir;
};
/** The service account before install-service creates it: it owns nothing and is in no group. */
const newServiceUser = { name: "edge-agent", uid: undefined, gids: [] };

describe("install-service", () => {
  it("embeds exactly the unit shipped in service-units/", () => {
    expect(SYSTEMD_UNIT_TEMPLATE).toBe(
      readFileSync(new URL("../../../service-units/edge-agent.service", import.meta.url), "utf8"),
    );
  });

  it("points the unit at this executable and these directories, keeping its hardening", () => {
    const unit = unitFor(SYSTEMD_UNIT_TEMPLATE, {
      unitPath: "/x",
      executable: "/opt/ea/edge-agent",
      configDir: "/srv/ea/etc",
      dataDir: "/srv/ea/var",
      systemdRunning: false,
    });
    expect(unit).toMatch(/^ExecStart=\/opt\/ea\/edge-agent run$/m);
    expect(unit).toMatch(/^Environment=EDGE_AGENT_DATA_DIR=\/srv\/ea\/var$/m);
    expect(unit).toMatch(/^ReadWritePaths=\/srv\/ea\/var \/srv\/ea\/etc$/m);
    expect(unit).toMatch(/^NoNewPrivileges=yes$/m);
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
  });

  it("writes the unit and directories where systemd does not run, and removes the unit again", async () => {
    const root = scratch();
    // An executable every user can reach (the check follows symlinks to the real file).
    const layout = {
      unitPath: join(root, "systemd/edge-agent.service"),
      executable: "/bin/sh",
      configDir: join(root, "etc"),
      dataDir: join(root, "var"),
      systemdRunning: false,
    };
    const lines: string[] = [];
    await installService(SYSTEMD_UNIT_TEMPLATE, layout, (line) => lines.push(line), {
      platform: "linux",
      manageUser: false,
      account: newServiceUser,
    });
    expect(readFileSync(layout.unitPath, "utf8")).toMatch(/^ExecStart=\/bin\/sh run$/m);
    expect(statSync(layout.dataDir).mode & 0o777).toBe(0o750);
    expect(lines.at(-1)).toMatch(/systemd is not running here/);
    await uninstallService(layout, (line) => lines.push(line));
    expect(existsSync(layout.unitPath)).toBe(false);
    expect(existsSync(layout.dataDir)).toBe(true);
  });

  it("refuses another platform than the one it is told, whatever this process runs on, writing nothing", async () => {
    const root = scratch();
    const layout = {
      unitPath: join(root, "systemd/edge-agent.service"),
      executable: "/bin/sh",
      configDir: join(root, "etc"),
      dataDir: join(root, "var"),
      systemdRunning: false,
    };
    const attempt = installService(SYSTEMD_UNIT_TEMPLATE, layout, () => undefined, {
      platform: "darwin",
      manageUser: false,
      account: newServiceUser,
    });
    await expect(attempt).rejects.toThrow(ServiceInstallError);
    await expect(attempt).rejects.toThrow(
      "install-service supports Linux (systemd); on darwin use the package (.msi on Windows, the launchd plist on macOS)",
    );
    expect(existsSync(layout.unitPath)).toBe(false);
    expect(existsSync(layout.dataDir)).toBe(false);
  });

  it("refuses, writing nothing, an executable the service user cannot reach, and says to copy it", async () => {
    const root = scratch();
    const locked = join(root, "locked");
    mkdirSync(locked, { mode: 0o700 });
    const executable = join(locked, "edge-agent");
    writeFileSync(executable, "#!/bin/sh\n", { mode: 0o755 });
    const layout = {
      unitPath: join(root, "systemd/edge-agent.service"),
      executable,
      configDir: join(root, "etc"),
      dataDir: join(root, "var"),
      systemdRunning: false,
    };
    const attempt = installService(SYSTEMD_UNIT_TEMPLATE, layout, () => undefined, {
      platform: "linux",
      manageUser: false,
      account: newServiceUser,
    });
    await expect(attempt).rejects.toThrow(ExecutableUnreachableError);
    await expect(attempt).rejects.toThrow(
      /^the service user cannot start .*\/locked\/edge-agent: .*--copy-to \/usr\/local\/bin$/,
    );
    expect(existsSync(layout.unitPath)).toBe(false);
    expect(existsSync(layout.dataDir)).toBe(false);
  });

  it("--copy-to copies the executable (0755) and points the unit at the copy", async () => {
    const root = scratch();
    const source = join(root, "edge-agent-linux-x64");
    writeFileSync(source, "#!/bin/sh\necho copied\n", { mode: 0o700 });
    const layout = {
      unitPath: join(root, "systemd/edge-agent.service"),
      executable: source,
      configDir: join(root, "etc"),
      dataDir: join(root, "var"),
      systemdRunning: false,
    };
    const lines: string[] = [];
    // The temp dir's own parents may be 0700: an account that may enter everything isolates the copy from them.
    await installService(
      SYSTEMD_UNIT_TEMPLATE.replace("PrivateTmp=yes", "PrivateTmp=no"),
      layout,
      (line) => lines.push(line),
      {
        platform: "linux",
        manageUser: false,
        copyTo: join(root, "bin"),
        account: { name: "root", uid: 0, gids: [0] },
      },
    );
    const copy = join(root, "bin/edge-agent");
    expect(readFileSync(copy, "utf8")).toBe(readFileSync(source, "utf8"));
    expect(statSync(copy).mode & 0o777).toBe(0o755);
    expect(readFileSync(layout.unitPath, "utf8")).toContain(`\nExecStart=${copy} run\n`);
    expect(lines[0]).toBe(`copied ${source} to ${copy}`);
  });
});
