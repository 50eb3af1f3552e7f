import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Routed, type RouterOptions, routeMessage } from "../../../src/bridge/records/event-router.ts";
import type { SourceMessage } from "../../../src/bridge/records/source-message.ts";
import { OrderedStreamSource } from "../../../src/bridge/source/ordered-stream-source.ts";
import {
  DEFAULT_TOPICS,
  EventType,
  eventHeaderEntries,
  machineSubjects,
  SCHEMA_VERSION,
  subjectFor,
} from "../../../src/contracts/index.ts";
import { agentPermissions } from "../../../src/identity/permissions.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { inventoryOf, telemetrySample } from "../../fixtures/bridge/simulated-fleet.ts";
import { type DevicesHarness, startDevicesHarness } from "../../helpers/devices-harness.ts";
import { manualClock } from "../../helpers/manual-clock.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const GROUP = "provenance-test";
const router: RouterOptions = { topics: DEFAULT_TOPICS, maxRecordBytes: () => 1_000_000 };

/**
 * What the bridge takes as a machine's own, against a real nats-server where the attacker is a
 * machine holding exactly the least-privilege set the platform gives it (`edge-agent permissions`).
 */
describe("provenance: a machine's subjects carry only that machine's events", () => {
  let server: NatsServerHandle;
  let app: NatsConnection;
  let attacker: NatsConnection;
  let harness: DevicesHarness | null = null;
  const sources: OrderedStreamSource[] = [];

  /** What the bridge's reader hands the router from a stream, in stream order. */
  const readStream = async (stream: string, count: number): Promise<SourceMessage[]> => {
    const source = new OrderedStreamSource({
      connection: app,
      stream,
      consumerName: "provenance-reader",
      logger: silentLogger(),
      clock: manualClock(),
      healthCheckMs: 600_000,
    });
    sources.push(source);
    await source.startAfter(0);
    await waitFor(`${count} messages of ${stream}`, () => source.buffered >= count);
    return source.take(count);
  };
  /** Publishes an event of the attacker's own, its headers as its agent sets them, with a reply subject it chose. */
  const publishOwn = async (
    type: EventType,
    body: unknown,
    options: { reply?: string; extraHeaders?: Array<[string, string]> } = {},
  ): Promise<void> => {
    const headers = natsHeaders();
    for (const [name, value] of eventHeaderEntries({
      eventId: `attacker-${type}`,
      eventType: type,
      machineId: "attacker",
      timestamp: new Date().toISOString(),
      correlationId: `attacker-${type}`,
      schemaVersion: SCHEMA_VERSION,
      sequence: 1,
    }))
      headers.set(name, value);
    for (const [name, value] of options.extraHeaders ?? []) headers.append(name, value);
    attacker.publish(subjectFor(machineSubjects("attacker"), type), JSON.stringify(body), {
      headers,
      ...(options.reply === undefined ? {} : { reply: options.reply }),
    });
    await attacker.flush();
  };
  const keyOf = (routed: Routed): string | undefined => routed.record.key?.toString();
  const headersOf = (routed: Routed): Array<[string, string]> =>
    [...routed.record.headers].map(([name, value]) => [name.toString(), value.toString()]);

  beforeEach(async () => {
    const permissions = JSON.stringify(agentPermissions("attacker"));
    server = await startNatsServer({
      configLines: [
        "accounts {",
        "  APP: { jetstream: enabled, users: [",
        "    { user: app, password: app }",
        `    { user: attacker, password: attacker, permissions: ${permissions} }`,
        "  ] }",
        "}",
      ],
    });
    app = await connect({ servers: server.url, user: "app", pass: "app" });
    attacker = await connect({
      servers: server.url,
      user: "attacker",
      pass: "attacker",
      name: "attacker",
      inboxPrefix: "_INBOX_attacker",
    });
    await createPlatformStreams(app);
  });

  afterEach(async () => {
    for (const source of sources.splice(0)) await source.stop();
    await harness?.stop();
    harness = null;
    await attacker.close();
    await app.close();
    await server.dispose();
  });

  it("a publish acknowledgement the attacker had stored on the victim's telemetry subject is an unattributed dead letter, not the victim's", async () => {
    await publishOwn(EventType.telemetry, telemetrySample("attacker", 1), { reply: "machine.victim.telemetry" });
    const [own, ack] = await readStream("TELEMETRY", 2);
    // The server stored its answer on the victim's subject, with no header at all.
    expect(ack?.subject).toBe("machine.victim.telemetry");
    expect(ack?.headers).toEqual([]);

    const ownRouted = routeMessage(own as SourceMessage, router);
    expect(ownRouted.kind).toBe("record");
    expect(keyOf(ownRouted)).toBe("attacker");
    const ackRouted = routeMessage(ack as SourceMessage, router);
    if (ackRouted.kind !== "dead-letter") throw new Error("the acknowledgement was bridged as the victim's telemetry");
    expect(ackRouted.deadLetterKind).toBe("unattributed");
    expect(ackRouted.reason).toMatch(/not an event of machine victim/);
    expect(ackRouted.record.topic).toBe(DEFAULT_TOPICS.deadLetter);
    expect(keyOf(ackRouted)).toBeUndefined();
  });

  it("a publish acknowledgement stored on the victim's inventory subject gives the victim no devices row and no state", async () => {
    harness = await startDevicesHarness({ connection: app, clock: manualClock(Date.now()), group: GROUP });
    await publishOwn(EventType.inventory, inventoryOf("attacker"), { reply: "machine.victim.inventory" });
    await waitFor(
      "both stored",
      async () => (await (await jetstreamManager(app)).streams.info("INVENTORY")).state.messages === 2,
    );
    const rows = await harness.batch();
    expect(rows.map((row) => row.machineId)).toEqual(["attacker"]);
    expect(harness.processor.stats().signalsUnattributed).toBe(1);
    expect(await (await new Kvm(app).open(`${GROUP}-devices`)).get("victim")).toBeNull();
  });

  it("headers a publisher forges in the bridge's names (nats-subject, __TypeId__, ...) never reach Kafka: the record's are the bridge's own", async () => {
    await publishOwn(
      EventType.hostname,
      { hostname: "attacker.example" },
      {
        extraHeaders: [
          ["nats-subject", "machine.victim.hostname"],
          ["nats-stream-seq", "1"],
          ["__TypeId__", "com.openframe.kafka.model.MachinePinotMessage"],
        ],
      },
    );
    const [message] = await readStream("MACHINE_HOSTNAME", 1);
    const routed = routeMessage(message as SourceMessage, router);
    expect(routed.kind).toBe("record");
    const headers = headersOf(routed);
    expect(headers.filter(([name]) => name.startsWith("nats-") || name === "__TypeId__")).toEqual([
      ["nats-stream", "MACHINE_HOSTNAME"],
      ["nats-stream-seq", String(message?.streamSequence)],
      ["nats-subject", "machine.attacker.hostname"],
    ]);
  });
});
