import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ToolInstallationStatus } from "../../../src/contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../../../src/events/event-sink.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { createToolManager, type ToolManager } from "../../../src/tools/index.ts";
import { createCommandTrust } from "../../../src/trust/index.ts";
import { startFileServer, TOOL_SCRIPT, toolZip } from "../../fixtures/tools/tool-kit.ts";
import { startTestCommands, type TestCommands } from "../../helpers/command-desk.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createSigner, type TestSigner } from "../../helpers/signing.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

describe("tool commands with signing on", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let agentLink: NatsConnection;
  let files: Awaited<ReturnType<typeof startFileServer>>;
  let root: string;
  let events: OutgoingEvent[];
  let manager: ToolManager;
  let commands: TestCommands;
  let platform: TestSigner;

  const sink: EventSink = {
    emit: async (event) => {
      events.push(event);
      return { eventId: String(events.length), sequence: events.length };
    },
  };
  const statuses = (): ToolInstallationStatus[] =>
    events
      .filter((event) => event.type === "tool-installation.status")
      .map((event) => event.body as ToolInstallationStatus);
  const publish = async (subject: string, body: unknown): Promise<void> => {
    await jetstream(operator).publish(subject, JSON.stringify(body));
  };

  beforeEach(async () => {
    server = await startNatsServer();
    operator = await connect({ servers: server.url });
    agentLink = await connect({ servers: server.url });
    await createPlatformStreams(operator);
    files = await startFileServer();
    root = await mkdtemp(join(tmpdir(), "edge-agent-signed-tools-"));
    events = [];
    platform = createSigner();
    await startAgent();
  });

  /** The agent's tool manager and command side on `root` (again: a restart keeps both). */
  const startAgent = async (): Promise<void> => {
    commands = await startTestCommands({
      machineId: "m1",
      dataDir: join(root, "commands"),
      onResult: (event) => events.push(event),
    });
    manager = createToolManager({
      machineId: "m1",
      toolsDir: join(root, "tools"),
      clock: systemClock,
      logger: silentLogger(),
      sink,
      serverUrl: server.url,
      policy: { allowMissingChecksum: false, maxDownloadBytes: 1 << 20 },
      trust: createCommandTrust({
        publicKey: platform.publicKey,
        dataDir: root,
        clock: systemClock,
        logger: silentLogger(),
      }),
      commands: commands.commands,
    });
    await manager.start();
    manager.attach(agentLink);
    commands.attach(agentLink);
  };
  const stopAgent = async (): Promise<void> => {
    await manager.stop();
    await commands.stop();
  };

  afterEach(async () => {
    await stopAgent();
    await agentLink.close();
    await operator.close();
    await files.close();
    await server.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it("installs a command signed for this machine's subject once; refuses it unsigned, moved or replayed", async () => {
    const served = files.add("tool.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    const install = {
      toolAgentId: "probe",
      version: "1.0.0",
      downloadConfigurations: [{ os: "linux", agentFileName: "bin/tool.sh", link: served.url, sha256: served.sha256 }],
      installationCommandArgs: ["install", "1.0.0"],
      reinstall: true,
    };
    await publish("machine.m1.tool-installation", install);
    await publish("machine.m1.tool-installation", platform.sign("machine.m2.tool-installation", 1, install));
    await publish("machine.m1.tool-installation", platform.sign("machine.m1.tool-uninstall", 1, install));
    await waitFor("three refusals", () => statuses().length === 3);
    expect(statuses().map((status) => [status.state, status.error])).toEqual([
      ["FAILED", expect.stringMatching(/tool command refused: not signed.*EDGE_TRUST_UNSIGNED/)],
      ["FAILED", expect.stringMatching(/signed for "machine\.m2\.tool-installation".*EDGE_TRUST_WRONG_SCOPE/)],
      ["FAILED", expect.stringMatching(/signed for "machine\.m1\.tool-uninstall".*EDGE_TRUST_WRONG_SCOPE/)],
    ]);
    expect(existsSync(join(root, "tools", "probe"))).toBe(false);

    const signed = platform.sign("machine.m1.tool-installation", 1, install);
    await publish("machine.m1.tool-installation", signed);
    await waitFor("INSTALLED", () => statuses().at(-1)?.state === "INSTALLED");
    const installedAfter = statuses().length;
    // The same signed command again would reinstall (reinstall: true): it is refused instead. The
    // tool's first liveness report (another INSTALLED status) may come in between, so look past it.
    await publish("machine.m1.tool-installation", signed);
    const afterReplay = (): ToolInstallationStatus[] => statuses().slice(installedAfter);
    await waitFor("the replay refused", () => afterReplay().some((status) => status.state === "FAILED"));
    expect(afterReplay().filter((status) => status.state !== "INSTALLED")).toEqual([
      expect.objectContaining({ state: "FAILED", error: expect.stringMatching(/EDGE_TRUST_REPLAYED/) }),
    ]);
    expect((await manager.list()).find((tool) => tool.toolAgentId === "probe")?.state).toBe("INSTALLED");

    // A signed uninstall for this machine's uninstall subject works.
    await publish("machine.m1.tool-uninstall", platform.sign("machine.m1.tool-uninstall", 1, { toolAgentId: "probe" }));
    await waitFor("UNINSTALLED", () => statuses().at(-1)?.state === "UNINSTALLED");
  });

  const installOf = (toolAgentId: string, served: { url: string; sha256: string }): Record<string, unknown> => ({
    toolAgentId,
    version: "1.0.0",
    downloadConfigurations: [{ os: "linux", agentFileName: "bin/tool.sh", link: served.url, sha256: served.sha256 }],
    installationCommandArgs: ["install", "1.0.0"],
  });
  const stateOf = (toolAgentId: string): string | undefined =>
    statuses()
      .filter((status) => status.toolAgentId === toolAgentId)
      .at(-1)?.state;

  it("retries a signed command whose download failed once, though a newer one on its subject finished meanwhile", async () => {
    const zip = await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } });
    const flaky = files.addFailingFirst("flaky.zip", zip, 1);
    const steady = files.add("steady.zip", zip);
    const subject = "machine.m1.tool-installation";
    await publish(subject, platform.sign(subject, 1, installOf("first", flaky)));
    await publish(subject, platform.sign(subject, 2, installOf("second", steady)));
    await waitFor("the newer one INSTALLED", () => stateOf("second") === "INSTALLED");
    // The older one's retry (after its HTTP 503) is the same command taken again, not a replay.
    await waitFor("the older one INSTALLED on its retry", () => stateOf("first") === "INSTALLED", 30_000);
    expect(statuses().filter((status) => status.error?.includes("EDGE_TRUST_REPLAYED"))).toEqual([]);
  }, 45_000);

  it("takes signed commands a stop cut short again at the next start, whatever finished beside them", async () => {
    const zip = await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } });
    const hanging = files.addHeld("hanging.zip", zip);
    const quick = files.add("quick.zip", zip);
    const subject = "machine.m1.tool-installation";
    await publish(subject, platform.sign(subject, 3, installOf("slow", hanging.served)));
    await publish(subject, platform.sign(subject, 4, installOf("fast", quick)));
    await waitFor("the newer one INSTALLED", () => stateOf("fast") === "INSTALLED");
    await waitFor("the older one downloading", () => hanging.requests === 1);
    // SIGTERM while the older one downloads: its work is cut short, and taken again after the start.
    await stopAgent();
    hanging.release();
    await startAgent();
    await waitFor("the older one INSTALLED after the restart", () => stateOf("slow") === "INSTALLED");
    expect(statuses().filter((status) => status.error?.includes("EDGE_TRUST_REPLAYED"))).toEqual([]);
  });
});
