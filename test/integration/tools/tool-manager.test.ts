import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  machineFeeds,
  type ToolConnectionMessage,
  type ToolInstallationStatus,
  toolUpdateFeed,
} from "../../../src/contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../../../src/events/event-sink.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { createLogger, silentLogger } from "../../../src/runtime/logger.ts";
import { createToolManager, type ToolManager, type ToolManagerOptions } from "../../../src/tools/index.ts";
import { legacyUpdateConsumersMarker } from "../../../src/tools/legacy-update-consumers.ts";
import { lyingZip } from "../../fixtures/tools/bombs.ts";
import { type ServedFile, startFileServer, TOOL_SCRIPT, toolTarGz, toolZip } from "../../fixtures/tools/tool-kit.ts";
import { startTestCommands, type TestCommands } from "../../helpers/command-desk.ts";
import { fixedWallClock } from "../../helpers/manual-clock.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

describe("tool installation from JetStream", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let agentLink: NatsConnection;
  let files: Awaited<ReturnType<typeof startFileServer>>;
  let toolsDir: string;
  let events: OutgoingEvent[];
  let manager: ToolManager;
  let commands: TestCommands;
  let commandsDir: string;
  const feeds = machineFeeds("m1");

  const sink: EventSink = {
    emit: async (event) => {
      events.push(event);
      return { eventId: String(events.length), sequence: events.length };
    },
  };
  /** The statuses of the commands on a tool: its liveness reports (with `connection`) left out. */
  const commandStatusesOf = (toolAgentId: string): ToolInstallationStatus[] =>
    events
      .filter((event) => event.type === "tool-installation.status")
      .map((event) => event.body as ToolInstallationStatus)
      .filter((body) => body.toolAgentId === toolAgentId && !body.connection);
  const statesOf = (toolAgentId: string): string[] => commandStatusesOf(toolAgentId).map((body) => body.state);
  const lastStatus = (toolAgentId: string): ToolInstallationStatus | undefined => commandStatusesOf(toolAgentId).at(-1);
  const push = async (subject: "tool-installation" | "tool-uninstall", body: unknown): Promise<void> => {
    await jetstream(operator).publish(`machine.m1.${subject}`, JSON.stringify(body));
  };
  const message = (
    toolAgentId: string,
    served: ServedFile,
    overrides: Record<string, unknown> = {},
  ): Record<string, unknown> => ({
    toolAgentId,
    toolId: `${toolAgentId}-id`,
    toolType: "MESHCENTRAL",
    version: "1.0.0",
    sessionType: "SERVICE",
    downloadConfigurations: [
      { os: "WINDOWS", link: "https://example.invalid/tool.exe", fileName: "tool.exe" },
      {
        os: "linux",
        fileName: "tool.zip",
        agentFileName: "bin/tool.sh",
        link: served.url,
        sha256: served.sha256,
        size: served.size,
        installationType: "STANDARD",
      },
    ],
    assets: [],
    installationCommandArgs: ["install", "1.0.0"],
    toolAgentIdCommandArgs: ["id"],
    uninstallationCommandArgs: ["uninstall", "${client.toolPath}/.."],
    reinstall: false,
    ...overrides,
  });
  /** Every tool command published so far is read and settled. */
  const settled = async (): Promise<boolean> =>
    (await commands.caughtUp(operator, feeds.toolInstallation)) &&
    (await commands.caughtUp(operator, feeds.toolUninstall));

  /** A fresh command side for the agent (on the same data dir: a restart), as a start of the agent makes. */
  const startCommands = async (logger?: ToolManagerOptions["logger"]): Promise<void> => {
    commands = await startTestCommands({
      machineId: "m1",
      dataDir: commandsDir,
      onResult: (event) => events.push(event),
      ...(logger ? { logger } : {}),
    });
  };
  const attachAll = async (): Promise<void> => {
    await manager.start();
    manager.attach(agentLink);
    commands.attach(agentLink);
  };

  /** Replaces the manager (and the agent's command side, on the same data dir) with one made with `overrides`. */
  const restartManager = async (overrides: Partial<ToolManagerOptions>): Promise<void> => {
    await manager.stop();
    await commands.stop({ keepDataDir: true });
    // The agent's loggers are one family: the command pipeline logs where the manager does.
    await startCommands(overrides.logger);
    manager = createToolManager({
      machineId: "m1",
      toolsDir,
      checkIntervalMs: 200,
      clock: systemClock,
      logger: silentLogger(),
      sink,
      serverUrl: server.url,
      policy: { allowMissingChecksum: false, maxDownloadBytes: 1 << 20 },
      commands: commands.commands,
      ...overrides,
    });
    await attachAll();
  };

  beforeEach(async () => {
    server = await startNatsServer();
    operator = await connect({ servers: server.url });
    agentLink = await connect({ servers: server.url });
    await createPlatformStreams(operator);
    files = await startFileServer();
    toolsDir = join(await mkdtemp(join(tmpdir(), "edge-agent-tools-")), "tools");
    events = [];
    commandsDir = await mkdtemp(join(tmpdir(), "edge-agent-tool-commands-"));
    await startCommands();
    manager = createToolManager({
      machineId: "m1",
      toolsDir,
      checkIntervalMs: 200,
      clock: systemClock,
      logger: process.env.TOOLS_DEBUG ? createLogger({ level: "debug" }) : silentLogger(),
      sink,
      serverUrl: server.url,
      policy: { allowMissingChecksum: false, maxDownloadBytes: 1 << 20 },
      commands: commands.commands,
    });
    await attachAll();
  });

  afterEach(async () => {
    await manager.stop();
    await commands.stop();
    await rm(commandsDir, { recursive: true, force: true });
    await agentLink.close();
    await operator.close();
    await files.close();
    await server.dispose();
    await rm(join(toolsDir, ".."), { recursive: true, force: true });
  });

  it("installs from a zip, reports each step, announces the tool, acks; then skips, reinstalls, updates and uninstalls", async () => {
    const v1 = files.add(
      "tool-v1.zip",
      await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 }, README: { data: "doc" } }),
    );
    await push("tool-installation", message("probe", v1));
    await waitFor("INSTALLED", () => lastStatus("probe")?.state === "INSTALLED");
    expect(statesOf("probe")).toEqual(["DOWNLOADING", "INSTALLING", "INSTALLED"]);
    expect(readFileSync(join(toolsDir, "probe", "bin", "marker"), "utf8")).toBe("installed 1.0.0\n");
    expect(events.find((event) => event.type === "installed-agent")?.body).toEqual({
      machineId: "m1",
      agentType: "probe",
      version: "1.0.0",
    });
    await waitFor("settled", settled);

    // The same version again: acked as INSTALLED with no work.
    await push("tool-installation", message("probe", v1));
    await waitFor("second INSTALLED", () => statesOf("probe").length === 4);
    expect(statesOf("probe").at(-1)).toBe("INSTALLED");
    // Asked to reinstall: the work is done again.
    await push("tool-installation", message("probe", v1, { reinstall: true }));
    await waitFor("reinstalled", () => statesOf("probe").length === 7);

    const v2 = files.add("tool-v2.tar.gz", await toolTarGz({ "bin/tool.sh": TOOL_SCRIPT }));
    await push(
      "tool-installation",
      message("probe", v2, {
        version: "2.0.0",
        installationCommandArgs: ["install", "2.0.0"],
        downloadConfigurations: [
          { os: "LINUX", agentFileName: "bin/tool.sh", link: v2.url, sha256: v2.sha256, size: v2.size },
        ],
      }),
    );
    // INSTALLED comes after the old version's folder is gone; the marker alone appears before that.
    await waitFor(
      "updated",
      () => lastStatus("probe")?.state === "INSTALLED" && lastStatus("probe")?.version === "2.0.0",
    );
    expect(readFileSync(join(toolsDir, "probe", "bin", "marker"), "utf8")).toBe("installed 2.0.0\n");
    expect(readdirSync(toolsDir).sort()).toEqual(["probe", "probe.state.json"]);

    await push("tool-uninstall", { toolAgentId: "probe" });
    await waitFor("UNINSTALLED", () => lastStatus("probe")?.state === "UNINSTALLED");
    expect(existsSync(join(toolsDir, "probe"))).toBe(false);
    expect(readFileSync(join(toolsDir, "uninstalled"), "utf8")).toBe("bye\n");
    expect((await manager.list()).find((tool) => tool.toolAgentId === "probe")?.state).toBe("UNINSTALLED");
  });

  it.each([
    [
      "a checksum mismatch",
      async (served: ServedFile) => ({
        downloadConfigurations: [
          { os: "linux", agentFileName: "bin/tool.sh", link: served.url, sha256: "0".repeat(64) },
        ],
      }),
      /sha256 .* does not match/,
    ],
    [
      "no checksum (policy requires one)",
      async (served: ServedFile) => ({
        downloadConfigurations: [{ os: "linux", agentFileName: "bin/tool.sh", link: served.url }],
      }),
      /requires one/,
    ],
    [
      "a missing link",
      async () => ({ downloadConfigurations: [{ os: "linux", agentFileName: "bin/tool.sh" }] }),
      /no link for linux/,
    ],
    [
      "no download for this OS",
      async () => ({ downloadConfigurations: [{ os: "macos", link: "https://example.invalid/x" }] }),
      /no download for linux/,
    ],
    [
      "an unresolvable placeholder",
      async () => ({ installationCommandArgs: ["install", "${client.password}"] }),
      /placeholder \$\{client.password\}/,
    ],
    [
      "a failing install command",
      async () => ({ installationCommandArgs: ["fail"] }),
      /install command failed: .*exited with 3: boom: cannot install/,
    ],
  ])(
    "refuses %s with a clear FAILED reason, terminates the message, and leaves nothing behind",
    async (_what, overrides, reason) => {
      const served = files.add("ok.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
      await push("tool-installation", message("bad", served, await overrides(served)));
      await waitFor("FAILED", () => lastStatus("bad")?.state === "FAILED");
      expect(lastStatus("bad")?.error).toMatch(reason);
      await waitFor("the command to be settled", settled);
      expect(readdirSync(toolsDir)).toEqual(["bad.state.json"]);
    },
  );

  it.each([
    [
      "zip",
      async () =>
        toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT }, "../../escaped.sh": { data: "x" } }).catch(() => null),
    ],
    ["tar.gz", async () => toolTarGz({ "evil.sh": "x" }, ["../evil.sh"], "sub")],
  ])("refuses a %s whose entries climb out of the tool folder", async (_kind, build) => {
    const archive = await build();
    if (archive === null) return; // the zip library itself refused to write the hostile name
    const served = files.add("hostile", archive);
    await push("tool-installation", message("hostile", served));
    await waitFor("FAILED", () => lastStatus("hostile")?.state === "FAILED");
    expect(lastStatus("hostile")?.error).toMatch(/climbs out of its folder/);
    expect(readdirSync(toolsDir)).toEqual(["hostile.state.json"]);
    expect(readdirSync(join(toolsDir, ".."))).toEqual(["tools"]);
  });

  it("keeps the working version when an update's install command fails", async () => {
    const served = files.add("ok.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    await push("tool-installation", message("keep", served));
    await waitFor("INSTALLED", () => lastStatus("keep")?.state === "INSTALLED");
    await push("tool-installation", message("keep", served, { version: "2.0.0", installationCommandArgs: ["fail"] }));
    await waitFor("FAILED", () => lastStatus("keep")?.state === "FAILED");
    expect(readFileSync(join(toolsDir, "keep", "bin", "marker"), "utf8")).toBe("installed 1.0.0\n");
    expect(readdirSync(toolsDir).sort()).toEqual(["keep", "keep.state.json"]);
  });

  const connections = (): ToolConnectionMessage[] =>
    events.filter((event) => event.type === "tool-connection").map((event) => event.body as ToolConnectionMessage);
  /** The liveness reports on the tool status stream (those with `connection`). */
  const livenessOf = (toolAgentId: string): ToolInstallationStatus[] =>
    events
      .filter((event) => event.type === "tool-installation.status")
      .map((event) => event.body as ToolInstallationStatus)
      .filter((body) => body.toolAgentId === toolAgentId && body.connection);

  it("reports the tool's id and whether it runs: OpenFrame is told only while it runs, our tool status every change", async () => {
    const served = files.add("live.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    await push("tool-installation", message("live", served));
    await waitFor("INSTALLED", () => lastStatus("live")?.state === "INSTALLED");
    await waitFor("a first liveness report", () => livenessOf("live").length >= 1);
    expect(livenessOf("live")[0]).toMatchObject({
      toolAgentId: "live",
      toolType: "MESHCENTRAL",
      state: "INSTALLED",
      connection: "DISCONNECTED",
      connectionDetail: expect.stringMatching(/^no process runs from /),
    });
    // OpenFrame records CONNECTED on every tool-connection message: none for a tool that does not run.
    expect(connections()).toEqual([]);

    const running = spawn(join(toolsDir, "live", "bin", "tool.sh"), ["run"], { stdio: "ignore" });
    try {
      await waitFor("CONNECTED", () => connections().length === 1);
    } finally {
      running.kill("SIGKILL");
    }
    expect(connections()[0]).toMatchObject({ toolType: "MESHCENTRAL", agentToolId: "tool-id-123", state: "CONNECTED" });
    await waitFor("DISCONNECTED again", () => livenessOf("live").at(-1)?.connection === "DISCONNECTED");
    // Only changes are reported between the hourly ones; the loss of connection only on our own stream.
    expect(livenessOf("live").map((status) => status.connection)).toEqual([
      "DISCONNECTED",
      "CONNECTED",
      "DISCONNECTED",
    ]);
    expect(connections().map((connection) => connection.state)).toEqual(["CONNECTED"]);
    expect((await manager.list()).find((tool) => tool.toolAgentId === "live")).toMatchObject({
      agentToolId: "tool-id-123",
      connection: "DISCONNECTED",
    });
    expect(statesOf("live")).toEqual(["DOWNLOADING", "INSTALLING", "INSTALLED"]);
  });

  it("never tells OpenFrame of a tool whose type it does not know, and never names the type after the tool's id", async () => {
    const served = files.add("odd.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    await push("tool-installation", message("oddtype", served, { toolType: "CUSTOM_THING" }));
    await push("tool-installation", message("notype", served, { toolType: null }));
    await waitFor(
      "both INSTALLED",
      () => lastStatus("oddtype")?.state === "INSTALLED" && lastStatus("notype")?.state === "INSTALLED",
    );
    const running = [
      spawn(join(toolsDir, "oddtype", "bin", "tool.sh"), ["run"], { stdio: "ignore" }),
      spawn(join(toolsDir, "notype", "bin", "tool.sh"), ["run"], { stdio: "ignore" }),
    ];
    try {
      await waitFor(
        "both seen running",
        () =>
          livenessOf("oddtype").at(-1)?.connection === "CONNECTED" &&
          livenessOf("notype").at(-1)?.connection === "CONNECTED",
      );
    } finally {
      for (const child of running) child.kill("SIGKILL");
    }
    expect(connections()).toEqual([]);
  });

  it("applies OpenFrame's fleet tool update (ToolAgentUpdateMessage) to installed tools only, with no consumer on the server: version, assets by assetId, type and arguments kept across a restart", async () => {
    const jsm = await jetstreamManager(operator);
    const consumersOnServer = async (): Promise<number> => (await jsm.streams.info("TOOL_UPDATE")).state.consumer_count;
    const updateFeed = toolUpdateFeed("upd");
    const toolOf = async (version: string): Promise<ServedFile> =>
      files.add(
        `upd-${version}.zip`,
        await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 }, VERSION: { data: version } }),
      );
    const v1 = await toolOf("1.0.0");
    const v2 = await toolOf("2.0.0");
    const settings = (version: string): ServedFile =>
      files.add(`settings-${version}.json`, Buffer.from(`cfg ${version}`));
    // As OpenFrame's Jackson writes it: every field present, absent ones null.
    const download = (served: ServedFile, agentFileName: string | null) => ({
      os: "LINUX",
      fileName: null,
      agentFileName,
      link: served.url,
      installationType: "STANDARD",
      bundleId: null,
      serviceName: null,
      sha256: served.sha256,
    });
    const update = (version: string, tool: ServedFile, assets: unknown[] | null): string =>
      JSON.stringify({
        toolAgentId: "upd",
        version,
        sessionType: "SERVICE",
        downloadConfigurations: [download(tool, "bin/tool.sh")],
        assets,
      });
    const asset = (version: string) => ({
      assetId: "cfg",
      version,
      executable: false,
      downloadConfigurations: [{ ...download(settings(version), null), fileName: "settings.json" }],
    });
    const updateSettled = (what: string) => waitFor(what, () => commands.caughtUp(operator, updateFeed));

    // Published before the tool is installed here: not for this installation (its feed starts after it).
    await jetstream(operator).publish("machine.all.tool.upd.update", update("0.9.0", v2, [asset("0")]));

    const cfg1 = settings("1");
    await push(
      "tool-installation",
      message("upd", v1, {
        assets: [
          {
            id: "cfg",
            version: "1",
            downloadConfigurations: [{ os: "linux", fileName: "settings.json", link: cfg1.url, sha256: cfg1.sha256 }],
          },
        ],
      }),
    );
    await waitFor("INSTALLED", () => lastStatus("upd")?.state === "INSTALLED");
    await updateSettled("the update feed read");
    expect(lastStatus("upd")?.version).toBe("1.0.0");
    const assetFile = join(toolsDir, "upd", "assets", "settings.json");
    expect(readFileSync(assetFile, "utf8")).toBe("cfg 1");

    // A new version and a new asset version, as OpenFrame's ToolAgentUpdateUpdatePublisher sends them.
    await jetstream(operator).publish("machine.all.tool.upd.update", update("2.0.0", v2, [asset("2")]));
    await waitFor(
      "2.0.0 INSTALLED",
      () => lastStatus("upd")?.state === "INSTALLED" && lastStatus("upd")?.version === "2.0.0",
    );
    expect(readFileSync(join(toolsDir, "upd", "VERSION"), "utf8")).toBe("2.0.0");
    expect(readFileSync(assetFile, "utf8")).toBe("cfg 2");
    // The update carries no type and no arguments: those it was installed with are kept.
    expect(lastStatus("upd")).toMatchObject({ toolType: "MESHCENTRAL", toolId: "upd-id" });
    expect(readFileSync(join(toolsDir, "upd", "bin", "marker"), "utf8")).toBe("installed 1.0.0\n");
    await updateSettled("the update to be settled");

    // Only the asset changes: applied though the tool's version is the same.
    const installedBefore = statesOf("upd").length;
    await jetstream(operator).publish("machine.all.tool.upd.update", update("2.0.0", v2, [asset("3")]));
    await waitFor("the asset update", () => statesOf("upd").length === installedBefore + 3);
    expect(readFileSync(assetFile, "utf8")).toBe("cfg 3");
    await updateSettled("the asset update to be settled");
    // The same versions again: nothing to do, nothing said.
    await jetstream(operator).publish("machine.all.tool.upd.update", update("2.0.0", v2, [asset("3")]));
    await updateSettled("the same update to be settled");
    expect(statesOf("upd").length).toBe(installedBefore + 3);

    // A malformed update is reported FAILED by a machine that has the tool; the tool stays.
    await jetstream(operator).publish(
      "machine.all.tool.upd.update",
      JSON.stringify({ toolAgentId: "upd", version: "4.0.0", assets: [{ version: "4" }] }),
    );
    await waitFor("FAILED", () => lastStatus("upd")?.state === "FAILED");
    expect(lastStatus("upd")?.error).toMatch(/malformed tool update: assets\.0\.assetId/);
    // A body naming another tool than its subject would reach machines without that tool: refused unreported.
    await jetstream(operator).publish(
      "machine.all.tool.upd.update",
      JSON.stringify({ toolAgentId: "other", version: "9" }),
    );
    await updateSettled("the mismatched update to be settled");
    expect(statesOf("other")).toEqual([]);

    // After a restart the tool is still what it was installed as: its connection report says so.
    await restartManager({});
    expect((await manager.list()).find((tool) => tool.toolAgentId === "upd")).toMatchObject({
      state: "INSTALLED",
      version: "2.0.0",
      message: { toolType: "MESHCENTRAL", assets: [{ id: "cfg", version: "3" }] },
    });
    const running = spawn(join(toolsDir, "upd", "bin", "tool.sh"), ["run"], { stdio: "ignore" });
    try {
      await waitFor("the tool's connection", () =>
        connections().some((connection) => connection.agentToolId === "tool-id-123"),
      );
    } finally {
      running.kill("SIGKILL");
    }
    expect(connections().map((connection) => connection.toolType)).toEqual(["MESHCENTRAL"]);

    await push("tool-uninstall", { toolAgentId: "upd" });
    await waitFor("UNINSTALLED", () => lastStatus("upd")?.state === "UNINSTALLED");
    const removedAt = statesOf("upd").length;
    await jetstream(operator).publish("machine.all.tool.upd.update", update("3.0.0", v2, null));
    // Word of another tool's command after it: by the time that one is done, an update feed still
    // followed would have been checked first (one check at a time, in the order the word came).
    const later = files.add("later.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    await push("tool-installation", message("later", later));
    await waitFor("the later tool INSTALLED", () => lastStatus("later")?.state === "INSTALLED");
    expect(statesOf("upd").length).toBe(removedAt);
    expect(await consumersOnServer()).toBe(0);
  });

  it("removes the per-tool update consumers earlier versions made, once", async () => {
    const manager_ = await jetstreamManager(operator);
    const v1 = files.add("l1.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    await push("tool-installation", message("old", v1));
    await waitFor("INSTALLED", () => lastStatus("old")?.state === "INSTALLED");
    await manager.stop();
    // What an earlier version left on the server for the installed tool; this start is the first since.
    await manager_.consumers.add("TOOL_UPDATE", {
      durable_name: "machine_m1_tool_old_update_consumer",
      filter_subject: "machine.all.tool.old.update",
      ack_policy: AckPolicy.Explicit,
    });
    expect(existsSync(legacyUpdateConsumersMarker(toolsDir))).toBe(false);
    // Real timers, and a wall clock of its own: the marker's time must be the injected one.
    const clock = fixedWallClock(Date.parse("2031-02-03T04:05:06Z"));
    manager = createToolManager({
      machineId: "m1",
      toolsDir,
      checkIntervalMs: 200,
      clock,
      logger: silentLogger(),
      sink,
      serverUrl: server.url,
      policy: { allowMissingChecksum: false, maxDownloadBytes: 1 << 20 },
      commands: commands.commands,
    });
    await manager.start();
    manager.attach(agentLink);
    await waitFor("the old consumer to be gone", async () => {
      try {
        await manager_.consumers.info("TOOL_UPDATE", "machine_m1_tool_old_update_consumer");
        return false;
      } catch {
        return true;
      }
    });
    await waitFor("the marker", () => existsSync(legacyUpdateConsumersMarker(toolsDir)));
    expect(readFileSync(legacyUpdateConsumersMarker(toolsDir), "utf8")).toBe("2031-02-03T04:05:06.000Z\n");
  });

  it("installs a SERVICE tool only once its service runs, and restores the old version when it does not come up", async () => {
    await manager.stop();
    const running = new Set<string>();
    manager = createToolManager({
      machineId: "m1",
      toolsDir,
      checkIntervalMs: 200,
      serviceStartTimeoutMs: 1_000,
      serviceState: async (name) => (running.has(name) ? "active" : "inactive"),
      clock: systemClock,
      logger: silentLogger(),
      sink,
      serverUrl: server.url,
      policy: { allowMissingChecksum: false, maxDownloadBytes: 1 << 20 },
      commands: commands.commands,
    });
    await manager.start();
    manager.attach(agentLink);
    const served = files.add("svc.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    const asService = (version: string): Record<string, unknown> =>
      message("svc", served, {
        version,
        installationCommandArgs: ["install", version],
        downloadConfigurations: [
          {
            os: "linux",
            agentFileName: "bin/tool.sh",
            link: served.url,
            sha256: served.sha256,
            installationType: "SERVICE",
            serviceName: "svc-agent",
          },
        ],
      });

    running.add("svc-agent");
    await push("tool-installation", asService("1.0.0"));
    await waitFor("INSTALLED", () => lastStatus("svc")?.state === "INSTALLED");
    await waitFor("CONNECTED (the service runs)", () => connections().at(-1)?.state === "CONNECTED");

    running.delete("svc-agent");
    await push("tool-installation", asService("2.0.0"));
    await waitFor("FAILED", () => lastStatus("svc")?.state === "FAILED");
    expect(lastStatus("svc")?.error).toMatch(/service svc-agent is not running after install/);
    expect(readFileSync(join(toolsDir, "svc", "bin", "marker"), "utf8")).toBe("installed 1.0.0\n");
    expect((await manager.list()).find((tool) => tool.toolAgentId === "svc")).toMatchObject({
      state: "INSTALLED",
      version: "1.0.0",
      error: expect.stringMatching(/update to 2.0.0 failed/),
    });
  });

  it("settles a malformed message after reporting it", async () => {
    await push("tool-installation", { toolAgentId: "odd", downloadConfigurations: [{ os: "beos" }] });
    await push("tool-installation", "{not json");
    await waitFor("FAILED", () => lastStatus("odd")?.state === "FAILED");
    expect(lastStatus("odd")?.error).toMatch(/malformed tool command/);
    await waitFor("both settled", settled);
  });
  it("installs another tool while one tool's link hangs, and each exactly once", async () => {
    await restartManager({ download: { stallTimeoutMs: 30_000 } });
    const zip = await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } });
    const hanging = files.addHeld("hanging.zip", zip);
    const quick = files.add("quick.zip", zip);
    await push("tool-installation", message("stuck", hanging.served));
    await push("tool-installation", message("other", quick));

    await waitFor(
      "the other tool INSTALLED while the first one's link hangs",
      () => lastStatus("other")?.state === "INSTALLED",
    );
    expect(statesOf("stuck")).toEqual(["DOWNLOADING"]);
    hanging.release();
    await waitFor("the first tool INSTALLED once its link answers", () => lastStatus("stuck")?.state === "INSTALLED");
    await waitFor("both settled", settled);
    expect(statesOf("stuck")).toEqual(["DOWNLOADING", "INSTALLING", "INSTALLED"]);
    expect(statesOf("other")).toEqual(["DOWNLOADING", "INSTALLING", "INSTALLED"]);
    expect(hanging.requests).toBe(1);
  }, 60_000);

  it("gives up a download whose link hangs after the stall timeout, to be retried later", async () => {
    await restartManager({ download: { stallTimeoutMs: 500 } });
    const hanging = files.addHeld("never.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    await push("tool-installation", message("never", hanging.served));
    await waitFor(
      "the stalled download to be given up (naked for a retry)",
      () =>
        hanging.requests === 1 &&
        readFileSync(join(toolsDir, "never.state.json"), "utf8").includes('"DOWNLOADING"') &&
        !existsSync(join(toolsDir, "never.staging")),
    );
    expect(statesOf("never")).toEqual(["DOWNLOADING"]);
  });

  it("takes a command the platform stored twice (same event id) without doing it twice", async () => {
    const served = files.add("once.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    const body = JSON.stringify(message("once", served, { reinstall: true }));
    const publish = async (msgID: string): Promise<void> => {
      const eventHeaders = headers();
      eventHeaders.set("X-Event-ID", "command-1");
      await jetstream(operator).publish("machine.m1.tool-installation", body, { headers: eventHeaders, msgID });
    };
    await publish("copy-1");
    await waitFor("INSTALLED", () => lastStatus("once")?.state === "INSTALLED");
    await waitFor("settled", settled);
    // The same command again (the platform sent it twice), though it asks to reinstall.
    await publish("copy-2");
    await waitFor("the copy to be taken and settled", settled);
    expect(statesOf("once")).toEqual(["DOWNLOADING", "INSTALLING", "INSTALLED"]);
  });

  it("refuses an archive that unpacks to more than maxUnpackedBytes, with a clear FAILED reason and no leftovers", async () => {
    await restartManager({
      policy: { allowMissingChecksum: false, maxDownloadBytes: 1 << 20, maxUnpackedBytes: 1 << 20 },
    });
    const served = files.add(
      "fat.tar.gz",
      await toolTarGz({ "bin/tool.sh": TOOL_SCRIPT, "data.bin": "x".repeat(2 << 20) }),
    );
    await push("tool-installation", message("fat", served));
    await waitFor("FAILED", () => lastStatus("fat")?.state === "FAILED");
    expect(lastStatus("fat")?.error).toMatch(/unpacks to more than 1048576 bytes/);
    await waitFor("settled", settled);
    expect(readdirSync(toolsDir)).toEqual(["fat.state.json"]);
  });

  it("reports FAILED for a zip whose entry declares 1,000 bytes and inflates to 100 MB (checksum and size true)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "edge-agent-lying-"));
    try {
      await lyingZip(join(dir, "lying.zip"), 1_000, 100_000_000);
      const served = files.add("lying.zip", readFileSync(join(dir, "lying.zip")));
      await push(
        "tool-installation",
        message("liar", served, {
          downloadConfigurations: [
            { os: "linux", agentFileName: "zeros.bin", link: served.url, sha256: served.sha256, size: served.size },
          ],
        }),
      );
      await waitFor("FAILED", () => lastStatus("liar")?.state === "FAILED");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(lastStatus("liar")?.error).toMatch(/unreadable zip: .*too many bytes in the stream. expected 1000/);
    expect(statesOf("liar")).toEqual(["DOWNLOADING", "FAILED"]);
    await waitFor("settled", settled);
    expect(readdirSync(toolsDir)).toEqual(["liar.state.json"]);
  });

  it("reports FAILED for a command whose toolAgentId is too long, naming the id cut short", async () => {
    const longId = "t".repeat(300);
    const served = files.add("long.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    await push("tool-installation", message(longId, served));
    const failed = await waitFor("FAILED", () =>
      events.map((event) => event.body as ToolInstallationStatus).find((body) => body.state === "FAILED"),
    );
    expect(failed.error).toMatch(/toolAgentId is 300 characters long, over the 128 allowed/);
    expect(failed.toolAgentId.startsWith("t".repeat(128))).toBe(true);
    expect(failed.toolAgentId.length).toBeLessThan(160);
    await waitFor("settled", settled);
    // Refused before anything was written.
    expect(existsSync(toolsDir) ? readdirSync(toolsDir) : []).toEqual([]);
  });

  it.each([
    [
      "a 900 kB unsafe toolAgentId",
      (served: ServedFile) => message(`bad id ${"x".repeat(900_000)}`, served, { toolId: "t1" }),
      "bad id",
    ],
    [
      "a 900 kB link",
      () => message("badlink", { url: `not a link ${"x".repeat(900_000)}`, sha256: "0".repeat(64), size: 1 }),
      "badlink",
    ],
    [
      "50 000 invalid assets",
      (served: ServedFile) => message("assets", served, { assets: Array.from({ length: 50_000 }, () => ({})) }),
      "assets",
    ],
  ])("echoes only the start of %s into the FAILED status and the log", async (_what, build, idStart) => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(
          ...chunk
            .toString()
            .split("\n")
            .filter((line) => line !== ""),
        );
        done();
      },
    });
    await restartManager({ logger: createLogger({ level: "info", destination }) });
    const served = files.add("echo.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    await push("tool-installation", build(served));
    const failed = await waitFor("FAILED", () =>
      events.map((event) => event.body as ToolInstallationStatus).find((body) => body.state === "FAILED"),
    );
    expect(failed.toolAgentId.startsWith(idStart)).toBe(true);
    expect(failed.toolAgentId.length).toBeLessThan(300);
    expect(failed.error?.length).toBeLessThan(1_000);
    await waitFor("settled", settled);
    expect(lines.length).toBeGreaterThan(0);
    expect(Math.max(...lines.map((line) => line.length))).toBeLessThan(4_000);
  });
});
