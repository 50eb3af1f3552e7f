import { describe, expect, it } from "vitest";
import {
  ClientConnectionEvent,
  ConfigStatus,
  DownloadConfiguration,
  InstalledAgentMessage,
  MachinePinotMessage,
  openFrameToolType,
  ToolAgentUpdateMessage,
  ToolConnectionMessage,
  ToolInstallationMessage,
  ToolInstallationStatus,
} from "../../../src/contracts/index.ts";

// Bodies as OpenFrame's Jackson classes write them: every field present, absent ones as null,
// enum names as strings, and fields this agent does not know about.
const jacksonToolInstallation = `{
  "toolAgentId": "meshcentral-agent",
  "toolId": "tool-42",
  "toolType": "MESHCENTRAL",
  "version": "1.2.3",
  "sessionType": "SERVICE",
  "downloadConfigurations": [
    {"os": "WINDOWS", "fileName": "mesh.zip", "agentFileName": "meshagent.exe", "link": "https://example.test/mesh.zip",
     "bundleId": null, "serviceName": "Mesh Agent", "installationType": "SERVICE"},
    {"os": "linux", "fileName": "mesh.tar.gz", "agentFileName": "meshagent", "link": "https://example.test/mesh.tar.gz",
     "bundleId": null, "serviceName": null, "installationType": "STANDARD",
     "sha256": "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789", "size": 1024}
  ],
  "assets": [{"id": "cfg", "version": null, "downloadConfigurations": null,
              "localFilenameConfiguration": [{"filename": "mesh.msh", "os": "Linux"}],
              "source": "TOOL_API", "path": "/api/cfg", "executable": false, "futureField": 1}],
  "installationCommandArgs": ["--install", "--machine=\${client.machineId}"],
  "runCommandArgs": null,
  "toolAgentIdCommandArgs": ["--id"],
  "uninstallationCommandArgs": null,
  "reinstall": null,
  "someNewPlatformField": {"nested": true}
}`;

describe("ToolInstallationMessage", () => {
  it("reads a Jackson-written body: nulls become empty lists, OS names are case-insensitive, unknown fields are dropped", () => {
    const message = ToolInstallationMessage.parse(JSON.parse(jacksonToolInstallation));
    expect(message.downloadConfigurations.map((config) => config.os)).toEqual(["windows", "linux"]);
    expect(message.downloadConfigurations[1]?.agentFileName).toBe("meshagent");
    expect(message.downloadConfigurations[1]?.sha256).toBe(
      "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
    );
    expect(message.runCommandArgs).toEqual([]);
    expect(message.reinstall).toBe(false);
    expect(message.assets[0]?.localFilenameConfiguration[0]?.os).toBe("linux");
    expect(message).not.toHaveProperty("someNewPlatformField");
    expect(message.assets[0]).not.toHaveProperty("futureField");
  });

  it("refuses an unknown OS, a bad enum and a malformed checksum with a message naming the field", () => {
    const bad = JSON.parse(jacksonToolInstallation);
    bad.downloadConfigurations[0].os = "amiga";
    expect(() => ToolInstallationMessage.parse(bad)).toThrow(/downloadConfigurations/);
    const badType = JSON.parse(jacksonToolInstallation);
    badType.downloadConfigurations[0].installationType = "MAGIC";
    expect(ToolInstallationMessage.safeParse(badType).success).toBe(false);
    expect(DownloadConfiguration.safeParse({ os: "linux", sha256: "nothex" }).success).toBe(false);
  });

  it("needs a toolAgentId", () => {
    expect(ToolInstallationMessage.safeParse({ toolId: "x" }).success).toBe(false);
  });
});

// OpenFrame's ToolAgentUpdateMessage as its publisher writes it (Jackson: nulls present, the
// asset's `executable` a primitive boolean, the download's link already resolved for the version).
const jacksonToolUpdate = `{
  "toolAgentId": "fleetmdm-agent",
  "version": "4.2.0",
  "sessionType": "SERVICE",
  "downloadConfigurations": [
    {"os": "linux", "fileName": "orbit.tar.gz", "agentFileName": "orbit", "link": "https://example.test/orbit-4.2.0.tar.gz",
     "installationType": "SERVICE", "bundleId": null, "serviceName": "orbit"}
  ],
  "assets": [
    {"assetId": "osquery", "version": "5.1.0", "executable": true,
     "downloadConfigurations": [{"os": "LINUX", "fileName": null, "agentFileName": "osqueryd",
       "link": "https://example.test/osqueryd", "installationType": "STANDARD", "bundleId": null, "serviceName": null}]},
    {"assetId": "notes", "version": null, "executable": false, "downloadConfigurations": null}
  ]
}`;

describe("ToolAgentUpdateMessage", () => {
  it("reads OpenFrame's fleet tool update: assets by assetId, nulls as empty lists", () => {
    const update = ToolAgentUpdateMessage.parse(JSON.parse(jacksonToolUpdate));
    expect(update.assets.map((asset) => asset.assetId)).toEqual(["osquery", "notes"]);
    expect(update.assets[0]?.downloadConfigurations[0]?.os).toBe("linux");
    expect(update.assets[1]?.downloadConfigurations).toEqual([]);
    expect(ToolAgentUpdateMessage.parse({ toolAgentId: "t", version: "1", assets: null }).assets).toEqual([]);
  });

  it("needs a toolAgentId, a version, and an assetId on every asset", () => {
    expect(ToolAgentUpdateMessage.safeParse({ toolAgentId: "t" }).success).toBe(false);
    const withoutAssetId = JSON.parse(jacksonToolUpdate);
    delete withoutAssetId.assets[0].assetId;
    expect(() => ToolAgentUpdateMessage.parse(withoutAssetId)).toThrow(/assetId/);
  });
});

describe("messages the agent sends", () => {
  it("round-trips InstalledAgentMessage with exactly OpenFrame's field names", () => {
    const body = { machineId: "m-1", agentType: "edge-agent", version: "0.1.0" };
    const wire = JSON.parse(JSON.stringify(InstalledAgentMessage.parse(body)));
    expect(Object.keys(wire).sort()).toEqual(["agentType", "machineId", "version"]);
  });

  it("round-trips ClientConnectionEvent, and a stock OpenFrame body without our additions still reads", () => {
    const ours = {
      timestamp: "2026-11-22T10:00:00.000Z",
      client: { name: "m-1" },
      type: "DISCONNECT",
      server: "nats://h:4222",
      reason: "connection lost",
    };
    expect(ClientConnectionEvent.parse(ours)).toEqual(ours);
    expect(
      ClientConnectionEvent.parse({ timestamp: "2026-11-22T10:00:00Z", client: { name: "m-1" } }).client.name,
    ).toBe("m-1");
    expect(ClientConnectionEvent.safeParse({ timestamp: "yesterday", client: { name: "m-1" } }).success).toBe(false);
    expect(ClientConnectionEvent.safeParse({ ...ours, type: "HELLO" }).success).toBe(false);
  });

  it("takes in ToolConnectionMessage only OpenFrame's tool types (any case) and only CONNECTED", () => {
    for (const toolType of ["MESHCENTRAL", "fleet_mdm", "OpenFrame_RMM"])
      expect(ToolConnectionMessage.safeParse({ toolType, agentToolId: "x" }).success).toBe(true);
    for (const toolType of ["meshcentral-agent", "TEST", "fleet-mdm", ""])
      expect(ToolConnectionMessage.safeParse({ toolType, agentToolId: "x" }).success).toBe(false);
    expect(
      ToolConnectionMessage.safeParse({ toolType: "MESHCENTRAL", agentToolId: "x", state: "DISCONNECTED" }).success,
    ).toBe(false);
    expect(openFrameToolType("fleet_mdm")).toBe("fleet_mdm");
    expect(openFrameToolType("my-tool")).toBeNull();
    expect(openFrameToolType(null)).toBeNull();
  });

  it("reads ToolConnectionMessage with and without our optional fields", () => {
    expect(ToolConnectionMessage.parse({ toolType: "MESHCENTRAL", agentToolId: "node//abc" }).state).toBeUndefined();
    expect(
      ToolConnectionMessage.parse({
        toolType: "MESHCENTRAL",
        agentToolId: "x",
        state: "CONNECTED",
        checkedAt: "2026-11-22T10:00:00Z",
        detail: null,
      }).state,
    ).toBe("CONNECTED");
  });

  it("validates MachinePinotMessage, ToolInstallationStatus and ConfigStatus", () => {
    const pinot = MachinePinotMessage.parse({
      tenantId: null,
      machineId: "m-1",
      organizationId: "o",
      deviceType: "DESKTOP",
      status: "ONLINE",
      osType: "LINUX",
      tags: null,
      tagKeyValues: ["site:lab"],
      ingestionTime: 1_763_800_000_000,
    });
    expect(pinot.tags).toEqual([]);
    expect(
      ToolInstallationStatus.safeParse({ toolAgentId: "t", state: "INSTALLED", timestamp: "2026-11-22T10:00:00Z" })
        .success,
    ).toBe(true);
    expect(
      ToolInstallationStatus.safeParse({ toolAgentId: "t", state: "DONE", timestamp: "2026-11-22T10:00:00Z" }).success,
    ).toBe(false);
    expect(
      ConfigStatus.safeParse({ revision: 3, status: "ROLLED_BACK", error: "boom", timestamp: "2026-11-22T10:00:00Z" })
        .success,
    ).toBe(true);
  });
});
