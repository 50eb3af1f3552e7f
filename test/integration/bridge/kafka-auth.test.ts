import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { readCommittedPartition } from "../../../src/bridge/kafka/client/index.ts";
import { DEFAULT_TOPICS, EventHeader } from "../../../src/contracts/index.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { type BridgeProcess, startBridgeProcess } from "../../helpers/bridge-process.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor, withDeadline } from "../../helpers/wait-for.ts";

/** SASL against a broker that requires it: the bridge works with good credentials and stops, saying why, with bad ones. */
describe("edge-bridge: Kafka with SASL", () => {
  let nats: NatsServerHandle;
  let kafka: KafkaBrokerHandle;
  let observer: NatsConnection;
  const bridges: BridgeProcess[] = [];

  beforeAll(async () => {
    [nats, kafka] = await Promise.all([
      startNatsServer(),
      startKafkaBroker({
        sasl: {
          plain: { admin: "admin-secret", bridge: "plain-secret" },
          scram: [{ user: "scram-bridge", password: "scram-secret", mechanism: "SCRAM-SHA-256" }],
        },
      }),
    ]);
    const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: nats.url });
    expect(setup.code, setup.stderr).toBe(0);
    observer = await connect({ servers: nats.url });
  }, 120_000);

  afterEach(async () => {
    await Promise.all(bridges.splice(0).map((bridge) => bridge.dispose()));
  });

  afterAll(async () => {
    await observer?.close();
    await kafka?.dispose();
    await nats?.dispose();
  });

  const bridgeEnv = (sasl: Record<string, string>): Record<string, string> => ({
    EDGE_BRIDGE_NATS_URL: nats.url,
    EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
    EDGE_BRIDGE_INSTANCE_ID: "sasl",
    EDGE_BRIDGE_LEASE_SECONDS: "3",
    ...sasl,
  });

  it("bridges with SCRAM-SHA-256 credentials (the password from a file)", async () => {
    const secrets = await mkdtemp(join(tmpdir(), "edge-bridge-secret-"));
    const passwordFile = join(secrets, "kafka-password");
    await writeFile(passwordFile, "scram-secret\n", { mode: 0o600 });
    try {
      const bridge = await startBridgeProcess(
        bridgeEnv({
          EDGE_BRIDGE_KAFKA_SASL_MECHANISM: "SCRAM-SHA-256",
          EDGE_BRIDGE_KAFKA_SASL_USERNAME: "scram-bridge",
          EDGE_BRIDGE_KAFKA_SASL_PASSWORD_FILE: passwordFile,
        }),
      );
      bridges.push(bridge);
      const headers = natsHeaders();
      headers.set(EventHeader.machineId, "sasl-1");
      headers.set(EventHeader.eventId, "sasl-event");
      headers.set(EventHeader.sequence, "1");
      await jetstream(observer).publish("machine.sasl-1.hostname", JSON.stringify({ hostname: "sasl.example" }), {
        msgID: "sasl-event",
        headers,
      });
      const options = {
        clientId: "test-reader",
        bootstrapBrokers: [kafka.bootstrap],
        sasl: { mechanism: "PLAIN" as const, username: "admin", password: "admin-secret" },
      };
      await waitFor(
        "the event in Kafka",
        async () => {
          const seen: string[] = [];
          for (let partition = 0; partition < 3; partition++) {
            await readCommittedPartition(
              options,
              DEFAULT_TOPICS.events,
              partition,
              0n,
              (record) => void seen.push(record.key?.toString() ?? ""),
            );
          }
          return seen.includes("sasl-1");
        },
        60_000,
      );
    } finally {
      await rm(secrets, { recursive: true, force: true });
    }
  }, 120_000);

  it("stops with exit 1 and one clear line when Kafka refuses its credentials for good", async () => {
    const bridge = await startBridgeProcess(
      bridgeEnv({
        EDGE_BRIDGE_KAFKA_SASL_MECHANISM: "PLAIN",
        EDGE_BRIDGE_KAFKA_SASL_USERNAME: "bridge",
        EDGE_BRIDGE_KAFKA_SASL_PASSWORD: "wrong",
      }),
    );
    bridges.push(bridge);
    const exit = await withDeadline("the bridge's exit", bridge.exited, 60_000);
    expect(exit.code).toBe(1);
    const stderrLine = bridge
      .output()
      .split("\n")
      .find((line) => line.startsWith("edge-bridge: "));
    expect(stderrLine).toMatch(/^edge-bridge: cannot start: .*SASL_AUTHENTICATION_FAILED/);
  }, 90_000);
});
