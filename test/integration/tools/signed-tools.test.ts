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
    });
    await manager.start();
    manager.attach(agentLink);
  });

  afterEach(async () => {
    await manager.stop();
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
    // The same signed command again would reinstall (reinstall: true): it is refused instead.
    await publish("machine.m1.tool-installation", signed);
    await waitFor("the replay refused", () => statuses().length === installedAfter + 1);
    expect(statuses().at(-1)).toMatchObject({ state: "FAILED", error: expect.stringMatching(/EDGE_TRUST_REPLAYED/) });
    expect((await manager.list()).find((tool) => tool.toolAgentId === "probe")?.state).toBe("INSTALLED");

    // A signed uninstall for this machine's uninstall subject works.
    await publish("machine.m1.tool-uninstall", platform.sign("machine.m1.tool-uninstall", 1, { toolAgentId: "probe" }));
    await waitFor("UNINSTALLED", () => statuses().at(-1)?.state === "UNINSTALLED");
  });
});
