import { mkdtempSync, readFileSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { installService, uninstallService, unitFor } from "../../../src/service/install-service.ts";
import { SYSTEMD_UNIT_TEMPLATE } from "../../../src/service/unit-template.ts";

describe("install-service", () => {
  it("embeds exactly the unit shipped in service-units/", () => {
    expect(SYSTEMD_UNIT_TEMPLATE).toBe(readFileSync(new URL("../../../service-units/edge-agent.service", import.meta.url), "utf8"));
  });

  it("points the unit at this executable and these directories, keeping its hardening", () => {
    const unit = unitFor(SYSTEMD_UNIT_TEMPLATE, { unitPath: "/x", executable: "/opt/ea/edge-agent", configDir: "/srv/ea/etc", dataDir: "/srv/ea/var", systemdRunning: false });
    expect(unit).toMatch(/^ExecStart=\/opt\/ea\/edge-agent run$/m);
    expect(unit).toMatch(/^Environment=EDGE_AGENT_DATA_DIR=\/srv\/ea\/var$/m);
    expect(unit).toMatch(/^ReadWritePaths=\/srv\/ea\/var \/srv\/ea\/etc$/m);
    expect(unit).toMatch(/^NoNewPrivileges=yes$/m);
    expect(unit).toMatch(/^ProtectSystem=strict$/m);
  });

  it("writes the unit and directories where systemd does not run, and removes the unit again", async () => {
    const root = mkdtempSync(join(tmpdir(), "ea-service-"));
    const layout = { unitPath: join(root, "systemd/edge-agent.service"), executable: "/usr/local/bin/edge-agent", configDir: join(root, "etc"), dataDir: join(root, "var"), systemdRunning: false };
    const lines: string[] = [];
    await installService(SYSTEMD_UNIT_TEMPLATE, layout, (line) => lines.push(line), { manageUser: false });
    expect(readFileSync(layout.unitPath, "utf8")).toMatch(/^ExecStart=\/usr\/local\/bin\/edge-agent run$/m);
    expect(statSync(layout.dataDir).mode & 0o777).toBe(0o750);
    expect(lines.at(-1)).toMatch(/systemd is not running here/);
    await uninstallService(layout, (line) => lines.push(line));
    expect(existsSync(layout.unitPath)).toBe(false);
    expect(existsSync(layout.dataDir)).toBe(true);
  });
});
