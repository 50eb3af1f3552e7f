import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { PLATFORM_STREAMS, supportsMessageTtl } from "../../../src/contracts/index.ts";
import { OPENFRAME_STREAMS } from "../../fixtures/openframe/streams.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";

const SECOND_NS = 1_000_000_000;

describe("edge-agent dev-setup on a server another platform set up", () => {
  let server: NatsServerHandle | undefined;
  let operator: NatsConnection | undefined;

  afterEach(async () => {
    await operator?.close();
    operator = undefined;
    await server?.dispose();
    server = undefined;
  });

  it("keeps OpenFrame's 7 streams as they are (wider subjects, its limits), adds ours, and says what it did", async () => {
    server = await startNatsServer();
    operator = await connect({ servers: server.url });
    const manager = await jetstreamManager(operator);
    for (const stream of OPENFRAME_STREAMS) {
      // As OpenFrame's management service makes them; an operator gave two of them more room.
      const tuned =
        stream.name === "INSTALLED_AGENTS"
          ? { max_age: 30 * 86_400 * SECOND_NS, duplicate_window: 600 * SECOND_NS }
          : stream.name === "TOOL_INSTALLATION"
            ? { duplicate_window: 30 * SECOND_NS }
            : {};
      await manager.streams.add({
        name: stream.name,
        subjects: [...stream.subjects],
        storage: "file",
        retention: "limits",
        ...tuned,
      });
    }
    await manager.streams.add({ name: "MACHINE_EVENTS", subjects: ["events.machine.>"], storage: "file" });
    await jetstream(operator).publish("machine.m1.installed-agent", "{}");

    const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url });
    expect(setup.code, setup.stderr).toBe(0);
    const lines = setup.stdout.trim().split("\n");
    // The command streams let agents read their newest message by direct get (and, 2.11+, carry a TTL).
    const ttl = supportsMessageTtl(server.version) ? "; allow_msg_ttl switched on" : "";
    expect(lines).toContain(`stream TOOL_UPDATE: allow_direct switched on${ttl}`);
    expect(lines).toContain("stream INSTALLED_AGENTS: up to date, unchanged");
    expect(lines).toContain(
      `stream TOOL_INSTALLATION: duplicate_window raised from 30 s to 120 s; allow_direct switched on${ttl}`,
    );
    expect(lines).toContain("stream TELEMETRY: created with subjects machine.*.telemetry, machine.*.outbox");
    expect(lines).toContain("key-value bucket agent-config: created");

    const configOf = async (name: string) => (await manager.streams.info(name)).config;
    expect(await configOf("TOOL_UPDATE")).toMatchObject({ subjects: ["machine.*.tool.*.update"], allow_direct: true });
    expect(await configOf("INSTALLED_AGENTS")).toMatchObject({
      subjects: ["machine.*.installed-agent", "user.*.installed-agent"],
      max_age: 30 * 86_400 * SECOND_NS,
      duplicate_window: 600 * SECOND_NS,
    });
    expect((await configOf("TOOL_INSTALLATION")).duplicate_window).toBe(120 * SECOND_NS);
    expect((await configOf("TELEMETRY")).subject_transform).toBeUndefined();
    // What was stored before is still there, and the stream no one asked about is untouched.
    expect((await manager.streams.info("INSTALLED_AGENTS")).state.messages).toBe(1);
    expect((await configOf("MACHINE_EVENTS")).subjects).toEqual(["events.machine.>"]);
    const names: string[] = [];
    for await (const name of manager.streams.names()) names.push(name);
    for (const stream of PLATFORM_STREAMS) expect(names).toContain(stream.name);

    // Run again: nothing left to change.
    const again = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim().split("\n")).toEqual([
      ...PLATFORM_STREAMS.map((stream) => `stream ${stream.name}: up to date, unchanged`),
      "key-value bucket agent-config: already there, unchanged",
    ]);

    // Partitioned when asked (contracts/partitions.ts); another count is never set on a partitioned
    // stream, nor is it unpartitioned: it is said, and the stream is left as it is.
    const partitioned = await runCli(["dev-setup", "--telemetry-partitions", "4"], { EDGE_AGENT_NATS_URL: server.url });
    expect(partitioned.code, partitioned.stderr).toBe(0);
    expect(partitioned.stdout).toContain(
      "stream TELEMETRY: partitioned into 4 (messages stored before keep their subjects; the bridge bridges them before any partition)",
    );
    expect((await configOf("TELEMETRY")).subject_transform).toEqual({
      src: "machine.*.*",
      dest: "machine.{{wildcard(1)}}.{{wildcard(2)}}.4.{{partition(4,1)}}",
    });
    const other = await runCli(["dev-setup", "--telemetry-partitions", "8"], { EDGE_AGENT_NATS_URL: server.url });
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout).toContain(
      'stream TELEMETRY: partitioned into 4, 8 wanted: left as it is (changing the count is a migration, docs/bridge.md "Partitioned telemetry")',
    );
    expect((await configOf("TELEMETRY")).subject_transform?.dest).toContain("partition(4,1)");
    const unasked = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url });
    expect(unasked.stdout).toContain(
      "stream TELEMETRY: partitioned into 4: left as it is (dev-setup never unpartitions a stream)",
    );
    const bad = await runCli(["dev-setup", "--telemetry-partitions", "many"], { EDGE_AGENT_NATS_URL: server.url });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--telemetry-partitions");
  });
});
