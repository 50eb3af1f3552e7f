import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Agent, createAgent } from "../../../src/agent/create-agent.ts";
import {
  AGENT_CONFIG_BUCKET,
  COMMAND_STREAMS,
  type ConfigStatus,
  supportsMessageTtl,
  type ToolInstallationStatus,
} from "../../../src/contracts/index.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { loadSettings } from "../../../src/settings/index.ts";
import { startFileServer, TOOL_SCRIPT, toolZip } from "../../fixtures/tools/tool-kit.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const MACHINE = "feeds-1";

describe("how an agent reads its commands: no consumer kept on the server, nothing missed, nothing twice", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let kv: KV;
  let files: Awaited<ReturnType<typeof startFileServer>>;
  let root: string;
  let agent: Agent | null = null;

  const startAgent = async (): Promise<void> => {
    const { settings } = loadSettings({
      env: {
        EDGE_AGENT_NATS_URL: server.url,
        EDGE_AGENT_MACHINE_ID: MACHINE,
        EDGE_AGENT_DATA_DIR: join(root, "data"),
        EDGE_AGENT_CONFIG_DIR: join(root, "config"),
        EDGE_AGENT_ALLOW_UNSIGNED: "1",
      },
      platform: "linux",
      privileged: false,
    });
    agent = await createAgent(settings, { clock: systemClock, logger: silentLogger(), telemetry: false });
    await agent.start();
  };
  const stopAgent = async (): Promise<void> => {
    await agent?.stop();
    agent = null;
  };
  /** Every consumer on the streams agents read: what the server keeps for them. */
  const consumersOnServer = async (): Promise<string[]> => {
    const manager = await jetstreamManager(operator);
    const names: string[] = [];
    for (const stream of [...Object.values(COMMAND_STREAMS), "KV_agent-config"])
      for await (const consumer of manager.consumers.list(stream)) names.push(`${stream}/${consumer.name}`);
    return names;
  };
  const toolStatuses = async (): Promise<ToolInstallationStatus[]> =>
    (await readStream(operator, "TOOL_STATUS"))
      .map((message) => message.body as ToolInstallationStatus & { connection?: unknown })
      .filter((body) => body.connection === undefined || body.connection === null);
  const configStatuses = async (): Promise<ConfigStatus[]> =>
    (await readStream(operator, "CONFIG_STATUS")).map((message) => message.body as ConfigStatus);
  const installOf = async (toolAgentId: string): Promise<string> => {
    const served = files.add(
      `${toolAgentId}.zip`,
      await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }),
    );
    return JSON.stringify({
      toolAgentId,
      version: "1.0.0",
      downloadConfigurations: [{ os: "linux", agentFileName: "bin/tool.sh", link: served.url, sha256: served.sha256 }],
      installationCommandArgs: ["install", "1.0.0"],
    });
  };

  beforeEach(async () => {
    server = await startNatsServer();
    operator = await connect({ servers: server.url });
    await createPlatformStreams(operator);
    kv = await new Kvm(operator).create(AGENT_CONFIG_BUCKET, { history: 10 });
    files = await startFileServer();
    root = await mkdtemp(join(tmpdir(), "edge-agent-feeds-"));
  });

  afterEach(async () => {
    await stopAgent();
    await operator.close();
    await files.close();
    await server.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it("an offline agent costs the server no consumer, and on reconnect takes exactly what it missed, once", async () => {
    await startAgent();
    await waitFor("the first read of its feeds", () => agent?.status().commands.lastCheckedAt !== null);
    await kv.put(`machine.${MACHINE}`, JSON.stringify({ heartbeatSeconds: 31 }));
    await waitFor("the first configuration", async () => (await configStatuses()).length === 1);
    await stopAgent();
    expect(await consumersOnServer()).toEqual([]);

    // While it is away: two tool installs (a queue: both), two configuration puts (latest: the newer
    // one only), and, where the server honours TTLs, an install that expires before it is back.
    const js = jetstream(operator);
    await js.publish(`machine.${MACHINE}.tool-installation`, await installOf("first"));
    await js.publish(`machine.${MACHINE}.tool-installation`, await installOf("second"));
    await kv.put(`machine.${MACHINE}`, JSON.stringify({ heartbeatSeconds: 32 }));
    const newest = await kv.put(`machine.${MACHINE}`, JSON.stringify({ heartbeatSeconds: 33 }));
    if (supportsMessageTtl(server.version)) {
      const ttl = headers();
      ttl.set("Nats-TTL", "1s");
      await js.publish(`machine.${MACHINE}.tool-installation`, await installOf("stale"), { headers: ttl });
      await waitFor("the stale command expired on the server", async () => {
        const info = await (await jetstreamManager(operator)).streams.info("TOOL_INSTALLATION");
        return info.state.messages === 2;
      });
    }
    expect(await consumersOnServer()).toEqual([]);

    await startAgent();
    await waitFor(
      "both installs",
      async () => (await toolStatuses()).filter((status) => status.state === "INSTALLED").length === 2,
      20_000,
    );
    await waitFor("the newest configuration", async () => (await configStatuses()).length === 2);
    expect((await configStatuses())[1]).toMatchObject({ revision: newest, status: "APPLIED" });
    // Settled: nothing left, no consumer kept by a machine that is connected and idle.
    await waitFor(
      "nothing pending",
      () => agent?.status().commands.pending === 0 && agent.status().commands.running === 0,
    );
    expect(await consumersOnServer()).toEqual([]);

    // A restart takes nothing again, and reports nothing again (not even the configuration it runs).
    await stopAgent();
    await startAgent();
    await waitFor("the feeds read after the restart", () => agent?.status().commands.lastCheckedAt !== null);
    await js.publish(`machine.${MACHINE}.tool-installation`, await installOf("third"));
    await waitFor("the next command", async () =>
      (await toolStatuses()).some((status) => status.toolAgentId === "third" && status.state === "INSTALLED"),
    );
    const installed = (await toolStatuses()).filter((status) => status.state === "INSTALLED");
    // Different tools install side by side: each once, in whichever order they finish.
    expect(installed.map((status) => status.toolAgentId).sort()).toEqual(["first", "second", "third"]);
    expect((await toolStatuses()).filter((status) => status.toolAgentId === "stale")).toEqual([]);
    expect(await configStatuses()).toHaveLength(2);
    expect(await consumersOnServer()).toEqual([]);
  }, 60_000);

  it("takes over an earlier version's durable consumers, and the push consumer OpenFrame's agent made, without losing what they held", async () => {
    const manager = await jetstreamManager(operator);
    const js = jetstream(operator);
    // What OpenFrame's own agent left for this machine: a push consumer, 120 s ack wait, 10 deliveries.
    await manager.consumers.add(COMMAND_STREAMS.toolInstallation, {
      durable_name: `machine_${MACHINE}_tool-installation_consumer`,
      filter_subject: `machine.${MACHINE}.tool-installation`,
      deliver_subject: `machine.${MACHINE}.tool-installation.inbox`,
      ack_policy: AckPolicy.Explicit,
      ack_wait: 120_000_000_000,
      max_deliver: 10,
      deliver_policy: DeliverPolicy.All,
    });
    // An install it had acknowledged (done before the move), and one still pending in it.
    await js.publish(`machine.${MACHINE}.tool-installation`, await installOf("done-before"));
    const inbox = operator.subscribe(`machine.${MACHINE}.tool-installation.inbox`, { max: 1 });
    for await (const delivered of inbox) delivered.respond(new TextEncoder().encode("+ACK"));
    await waitFor(
      "the first one acknowledged",
      async () =>
        (
          await manager.consumers.info(
            COMMAND_STREAMS.toolInstallation,
            `machine_${MACHINE}_tool-installation_consumer`,
          )
        ).ack_floor.stream_seq === 1,
    );
    await js.publish(`machine.${MACHINE}.tool-installation`, await installOf("pending"));
    // An earlier version of ours kept a pull consumer for the machine's uninstalls (none pending).
    await manager.consumers.add(COMMAND_STREAMS.clientUninstall, {
      durable_name: `machine_${MACHINE}_client-uninstall_consumer`,
      filter_subject: `machine.${MACHINE}.client-uninstall`,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
    });

    await startAgent();
    await waitFor(
      "the pending install",
      async () =>
        (await toolStatuses()).some((status) => status.toolAgentId === "pending" && status.state === "INSTALLED"),
      20_000,
    );
    expect((await toolStatuses()).filter((status) => status.toolAgentId === "done-before")).toEqual([]);
    // A fresh installation asks only for the name OpenFrame's agent used; the push consumer is gone.
    await waitFor(
      "the taken-over consumer removed",
      async () =>
        !(await consumersOnServer()).includes(`TOOL_INSTALLATION/machine_${MACHINE}_tool-installation_consumer`),
    );
    expect(await consumersOnServer()).toEqual([`CLIENT_UNINSTALL/machine_${MACHINE}_client-uninstall_consumer`]);
  }, 60_000);

  it("reads a command stream the platform made anew (its sequences starting again) from its start", async () => {
    await startAgent();
    await waitFor("the first read of its feeds", () => agent?.status().commands.lastCheckedAt !== null);
    const js = jetstream(operator);
    for (const name of ["one", "two", "three"]) {
      await js.publish(`machine.${MACHINE}.tool-installation`, await installOf(name));
      await waitFor(`${name} installed`, async () =>
        (await toolStatuses()).some((status) => status.toolAgentId === name && status.state === "INSTALLED"),
      );
    }
    // The platform deletes the stream and makes it again: sequences start at 1 once more.
    const manager = await jetstreamManager(operator);
    const { config } = await manager.streams.info(COMMAND_STREAMS.toolInstallation);
    await manager.streams.delete(COMMAND_STREAMS.toolInstallation);
    await manager.streams.add(config);
    await js.publish(`machine.${MACHINE}.tool-installation`, await installOf("after-recreate"));
    await waitFor(
      "the command in the new stream taken",
      async () =>
        (await toolStatuses()).some(
          (status) => status.toolAgentId === "after-recreate" && status.state === "INSTALLED",
        ),
      20_000,
    );
  }, 60_000);
});
