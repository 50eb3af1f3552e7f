import { describe, expect, it } from "vitest";
import { ToolAgentUpdateMessage, ToolInstallationMessage } from "../../../src/contracts/index.ts";
import { connectionReports } from "../../../src/tools/connection-report.ts";
import type { ToolRecord } from "../../../src/tools/tool-state.ts";
import { planToolUpdate } from "../../../src/tools/tool-update.ts";

const download = (link: string) => [{ os: "linux", link, agentFileName: "bin/tool" }];
const installed = ToolInstallationMessage.parse({
  toolAgentId: "mesh",
  toolId: "mesh-tool",
  toolType: "MESHCENTRAL",
  version: "1.0.0",
  sessionType: "SERVICE",
  downloadConfigurations: download("https://example.test/mesh-1.0.0"),
  assets: [
    {
      id: "cfg",
      version: "1",
      downloadConfigurations: [{ os: "linux", link: "https://example.test/cfg-1" }],
      localFilenameConfiguration: [{ os: "linux", filename: "mesh.msh" }],
      executable: false,
    },
    { id: "helper", version: "7", downloadConfigurations: [{ os: "linux", link: "https://example.test/h-7" }] },
  ],
  installationCommandArgs: ["install", "--id=${client.machineId}"],
  toolAgentIdCommandArgs: ["id"],
});
const update = (body: Record<string, unknown>): ToolAgentUpdateMessage =>
  ToolAgentUpdateMessage.parse({ toolAgentId: "mesh", ...body });

describe("a fleet-wide tool update applied to what is installed", () => {
  it("takes the new version's downloads and keeps the type, ids, arguments and untouched assets", () => {
    const plan = planToolUpdate(
      installed,
      "1.0.0",
      update({
        version: "2.0.0",
        sessionType: "USER",
        downloadConfigurations: download("https://example.test/mesh-2.0.0"),
      }),
    );
    expect(plan.kind).toBe("install");
    if (plan.kind !== "install") return;
    expect(plan.changes).toEqual(["tool 1.0.0 -> 2.0.0"]);
    expect(plan.message).toEqual({
      ...installed,
      version: "2.0.0",
      sessionType: "USER",
      downloadConfigurations: download("https://example.test/mesh-2.0.0"),
    });
  });

  it("updates assets by assetId, keeping their file names and executable bit, and adds new ones", () => {
    const plan = planToolUpdate(
      installed,
      "1.0.0",
      update({
        version: "1.0.0",
        assets: [
          {
            assetId: "cfg",
            version: "2",
            executable: true,
            downloadConfigurations: [{ os: "linux", link: "https://x/cfg-2" }],
          },
          { assetId: "helper", version: "7", downloadConfigurations: [{ os: "linux", link: "https://x/h-7" }] },
          {
            assetId: "extra",
            version: "1",
            executable: true,
            downloadConfigurations: [{ os: "linux", link: "https://x/e" }],
          },
          // As OpenFrame's own client does: an asset without a version or downloads is left alone.
          { assetId: "helper", version: null, downloadConfigurations: [{ os: "linux", link: "https://x/h" }] },
          { assetId: "cfg", version: "9", downloadConfigurations: null },
        ],
      }),
    );
    if (plan.kind !== "install") throw new Error(`expected an install, got ${plan.kind}`);
    expect(plan.changes).toEqual(["asset cfg 1 -> 2", "asset extra 1 (added)"]);
    expect(plan.message.version).toBe("1.0.0");
    expect(plan.message.downloadConfigurations).toEqual(installed.downloadConfigurations);
    expect(plan.message.assets).toEqual([
      {
        ...installed.assets[0],
        version: "2",
        downloadConfigurations: [{ os: "linux", link: "https://x/cfg-2" }],
      },
      installed.assets[1],
      {
        id: "extra",
        version: "1",
        downloadConfigurations: [{ os: "linux", link: "https://x/e" }],
        localFilenameConfiguration: [],
        source: null,
        path: null,
        executable: true,
      },
    ]);
  });

  it("does nothing when every version is already there, and refuses a new version without downloads", () => {
    expect(planToolUpdate(installed, "1.0.0", update({ version: "1.0.0" })).kind).toBe("nothing");
    expect(
      planToolUpdate(
        installed,
        "1.0.0",
        update({
          version: "1.0.0",
          assets: [{ assetId: "cfg", version: "1", downloadConfigurations: [{ os: "linux", link: "https://x/c" }] }],
        }),
      ).kind,
    ).toBe("nothing");
    expect(planToolUpdate(installed, "1.0.0", update({ version: "2.0.0" }))).toEqual({
      kind: "refuse",
      reason: "the update to 2.0.0 carries no downloadConfigurations, and the installed ones are for 1.0.0",
    });
  });
});

describe("how an installed tool's liveness is reported", () => {
  const record = (toolType: string | null): ToolRecord => ({
    toolAgentId: "mesh",
    version: "1.0.0",
    state: "INSTALLED",
    error: null,
    updatedAt: "2026-12-07T00:00:00.000Z",
    message: { ...installed, toolType },
    mainFile: "bin/tool",
    agentToolId: null,
    connection: null,
    commandIds: [],
    downloads: [],
  });
  const at = "2026-12-07T10:00:00.000Z";

  it("tells OpenFrame only of a running tool, with its type, and always says on the tool status", () => {
    const running = connectionReports(record("MESHCENTRAL"), { state: "CONNECTED", detail: "runs" }, "node-1", at);
    expect(running.connection).toEqual({
      toolType: "MESHCENTRAL",
      agentToolId: "node-1",
      state: "CONNECTED",
      checkedAt: at,
      detail: "runs",
    });
    expect(running.status).toMatchObject({ state: "INSTALLED", connection: "CONNECTED", toolType: "MESHCENTRAL" });
    for (const state of ["DISCONNECTED", "UNKNOWN"] as const) {
      const stopped = connectionReports(record("MESHCENTRAL"), { state, detail: "d" }, "node-1", at);
      expect(stopped.connection).toBeNull();
      expect(stopped.withheld).toBeNull();
      expect(stopped.status).toMatchObject({ connection: state, connectionDetail: "d", error: null });
    }
  });

  it("withholds OpenFrame's message for a type it does not know (the tool's id is never the type)", () => {
    for (const toolType of [null, "", "mesh", "CUSTOM"]) {
      const reports = connectionReports(record(toolType), { state: "CONNECTED", detail: "runs" }, null, at);
      expect(reports.connection).toBeNull();
      expect(reports.withheld).toMatch(/none of OpenFrame's tool types/);
      expect(reports.status.connection).toBe("CONNECTED");
    }
  });
});
