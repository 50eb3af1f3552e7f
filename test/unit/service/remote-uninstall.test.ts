import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../../src/runtime/clock.ts";
import type { ServiceLayout } from "../../../src/service/install-service.ts";
import {
  removalScript,
  removeAgent,
  UNINSTALLED_MARKER,
  wasUninstalled,
} from "../../../src/service/remote-uninstall.ts";
import { manualClock } from "../../helpers/manual-clock.ts";

describe("removing the agent after a verified remote uninstall", () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
  });
  const layoutIn = (systemdRunning: boolean): ServiceLayout => {
    const root = mkdtempSync(join(tmpdir(), "ea-uninstall-"));
    roots.push(root);
    const layout = {
      unitPath: join(root, "unit", "edge-agent.service"),
      executable: "/usr/bin/edge-agent",
      configDir: join(root, "etc"),
      dataDir: join(root, "var"),
      systemdRunning,
    };
    for (const dir of [layout.configDir, layout.dataDir]) mkdirSync(dir, { recursive: true });
    writeFileSync(join(layout.configDir, "settings.json"), "{}");
    mkdirSync(join(layout.dataDir, "tools"));
    writeFileSync(join(layout.dataDir, "outbox.db"), "x");
    return layout;
  };

  it("hands the removal to systemd as a unit of its own when it may: the package, else the unit, then settings and data", async () => {
    const layout = layoutIn(true);
    const ran: Array<[string, readonly string[]]> = [];
    expect(await removeAgent(layout, systemClock, async (file, args) => void ran.push([file, args]))).toBe(
      "removed-by-systemd",
    );
    expect(ran).toHaveLength(1);
    expect(ran[0]?.[0]).toBe("systemd-run");
    expect(ran[0]?.[1].slice(0, 4)).toEqual(["--no-block", "--collect", "--unit", "edge-agent-remote-uninstall"]);
    const script = removalScript(layout);
    expect(ran[0]?.[1].at(-1)).toBe(script);
    expect(script).toMatch(/dpkg --purge edge-agent/);
    expect(script).toMatch(/rpm -e edge-agent/);
    expect(script).toContain(`systemctl disable --now edge-agent.service; rm -f '${layout.unitPath}'`);
    expect(script).toContain(`rm -rf '${layout.configDir}' '${layout.dataDir}'`);
    // Nothing removed here: the transient unit does it, outside the agent's own service.
    expect(existsSync(join(layout.dataDir, "outbox.db"))).toBe(true);
  });

  it("removes settings and data itself when systemd refuses (an unprivileged agent), leaving the marker that keeps it stopped", async () => {
    const layout = layoutIn(true);
    const refused = async (): Promise<void> => {
      throw new Error("Interactive authentication required.");
    };
    expect(await wasUninstalled(layout.dataDir)).toBe(false);
    const clock = manualClock(Date.parse("2031-02-03T04:05:06Z"));
    expect(await removeAgent(layout, clock, refused)).toBe("data-removed");
    expect(readdirSync(layout.configDir)).toEqual([]);
    expect(readdirSync(layout.dataDir)).toEqual([UNINSTALLED_MARKER]);
    // Stamped by the injected clock, not the machine's.
    expect(readFileSync(join(layout.dataDir, UNINSTALLED_MARKER), "utf8")).toBe(
      "2031-02-03T04:05:06.000Z remote uninstall\n",
    );
    expect(await wasUninstalled(layout.dataDir)).toBe(true);
  });

  it("quotes paths for the shell", () => {
    const layout = {
      unitPath: "/tmp/it's.service",
      executable: "x",
      configDir: "/etc/a b",
      dataDir: "/var/c",
      systemdRunning: true,
    };
    expect(removalScript(layout)).toContain(`rm -f '/tmp/it'\\''s.service'`);
    expect(removalScript(layout)).toContain(`rm -rf '/etc/a b' '/var/c'`);
  });
});
