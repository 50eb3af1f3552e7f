import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { devicesTenantId } from "../../../src/bridge/settings/bridge-settings.ts";
import { loadBridgeSettings } from "../../../src/bridge/settings/load-bridge-settings.ts";
import { SettingsError } from "../../../src/settings-kit/errors.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

const load = (env: Record<string, string>, flags: Record<string, string> = {}) =>
  loadBridgeSettings({ env: { EDGE_BRIDGE_CONFIG_DIR: scratchDir("eb-"), ...env }, flags, privileged: true }).settings;

describe("bridge settings", () => {
  it("has defaults an operator can start from: OpenFrame's devices-topic, the local NATS and Kafka, system paths as root", () => {
    const settings = loadBridgeSettings({ env: {}, privileged: true }).settings;
    expect(settings.topics).toEqual({
      devices: "devices-topic",
      telemetry: "machine-telemetry",
      events: "machine-events",
      inventory: "machine-inventory",
      taskResults: "machine-task-results",
      deadLetter: "edge-bridge-dead-letter",
      checkpoint: "edge-bridge-checkpoints",
    });
    expect(settings.natsServers).toEqual(["nats://127.0.0.1:4222"]);
    expect(settings.kafka.brokers).toEqual(["127.0.0.1:9092"]);
    expect(settings.dataDir).toBe("/var/lib/edge-bridge");
    expect(settings.kafka.replicationFactor).toBe(-1);
  });

  it("serves metrics on loopback by default; `off` turns them off; any other address is refused with the setting's name", () => {
    expect(load({}).metricsListen).toBe("127.0.0.1:9465");
    expect(load({ EDGE_BRIDGE_METRICS_LISTEN: "off" }).metricsListen).toBe("off");
    expect(load({}, { "metrics-listen": "[::1]:9999" }).metricsListen).toBe("[::1]:9999");
    expect(() => load({ EDGE_BRIDGE_METRICS_LISTEN: "0.0.0.0:9465" })).toThrow(SettingsError);
    expect(() => load({ EDGE_BRIDGE_METRICS_LISTEN: "0.0.0.0:9465" })).toThrow(
      /EDGE_BRIDGE_METRICS_LISTEN.*not a loopback IP/,
    );
  });

  it("runs the Kafka producers in the main thread unless EDGE_BRIDGE_KAFKA_PRODUCER_THREAD turns their own thread on", () => {
    expect(load({}).kafka.producerThread).toBe(false);
    expect(load({ EDGE_BRIDGE_KAFKA_PRODUCER_THREAD: "true" }).kafka.producerThread).toBe(true);
    expect(() => load({ EDGE_BRIDGE_KAFKA_PRODUCER_THREAD: "sometimes" })).toThrow(/EDGE_BRIDGE_KAFKA_PRODUCER_THREAD/);
  });

  it("resolves defaults < file < EDGE_BRIDGE_* environment < flags", () => {
    const configDir = scratchDir("eb-");
    writeFileSync(
      join(configDir, "settings.json"),
      JSON.stringify({
        natsUrl: "nats://file:4222",
        kafka: { brokers: ["file:9092"], partitions: 6 },
        tenantId: "from-file",
      }),
    );
    const fromFile = loadBridgeSettings({ env: { EDGE_BRIDGE_CONFIG_DIR: configDir }, privileged: false }).settings;
    expect(fromFile).toMatchObject({
      natsServers: ["nats://file:4222"],
      kafka: { brokers: ["file:9092"], partitions: 6 },
      tenantId: "from-file",
    });
    const fromEnv = loadBridgeSettings({
      env: {
        EDGE_BRIDGE_CONFIG_DIR: configDir,
        EDGE_BRIDGE_KAFKA_BROKERS: "a:9092, b:9093",
        EDGE_BRIDGE_NATS_URL: "nats://u:p@env:4222",
      },
      privileged: false,
    }).settings;
    expect(fromEnv.kafka.brokers).toEqual(["a:9092", "b:9093"]);
    expect(fromEnv.natsServers).toEqual(["nats://env:4222"]);
    expect(fromEnv.auth).toMatchObject({ user: "u", password: "p" });
    const fromFlags = loadBridgeSettings({
      env: { EDGE_BRIDGE_CONFIG_DIR: configDir, EDGE_BRIDGE_KAFKA_BROKERS: "a:9092" },
      flags: { "kafka-brokers": "flag:9092", "tenant-id": "t-flag" },
      privileged: false,
    }).settings;
    expect(fromFlags.kafka.brokers).toEqual(["flag:9092"]);
    expect(fromFlags.tenantId).toBe("t-flag");
  });

  it("takes SASL, TLS, a system account and topic names from the environment", () => {
    const settings = load({
      EDGE_BRIDGE_KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
      EDGE_BRIDGE_KAFKA_SASL_USERNAME: "bridge",
      EDGE_BRIDGE_KAFKA_SASL_PASSWORD_FILE: "/run/secrets/kafka",
      EDGE_BRIDGE_KAFKA_TLS: "yes",
      EDGE_BRIDGE_KAFKA_REPLICATION_FACTOR: "3",
      EDGE_BRIDGE_SYSTEM_NATS_URL: "nats://sys:s3cret@127.0.0.1:4222",
      EDGE_BRIDGE_TOPIC_DEVICES: "tenant-a-devices",
    });
    expect(settings.kafka.sasl).toEqual({
      mechanism: "SCRAM-SHA-512",
      username: "bridge",
      passwordFile: "/run/secrets/kafka",
    });
    expect(settings.kafka.tls.enabled).toBe(true);
    expect(settings.kafka.replicationFactor).toBe(3);
    expect(settings.systemAccount).toMatchObject({
      natsServers: ["nats://127.0.0.1:4222"],
      auth: { user: "sys", password: "s3cret" },
    });
    expect(settings.topics.devices).toBe("tenant-a-devices");
  });

  it("refuses a bad value with one line naming the setting as it was written", () => {
    const refusals: Array<[Record<string, string>, RegExp]> = [
      [
        { EDGE_BRIDGE_KAFKA_BROKERS: "kafka.example" },
        /^invalid setting EDGE_BRIDGE_KAFKA_BROKERS: each broker must be host:port/,
      ],
      [
        { EDGE_BRIDGE_KAFKA_PARTITIONS: "three" },
        /^invalid setting EDGE_BRIDGE_KAFKA_PARTITIONS: must be a whole number/,
      ],
      [
        { EDGE_BRIDGE_KAFKA_REPLICATION_FACTOR: "0" },
        /^invalid setting EDGE_BRIDGE_KAFKA_REPLICATION_FACTOR: must be -1 \(broker default\) or at least 1/,
      ],
      [
        {
          EDGE_BRIDGE_KAFKA_SASL_MECHANISM: "GSSAPI",
          EDGE_BRIDGE_KAFKA_SASL_USERNAME: "u",
          EDGE_BRIDGE_KAFKA_SASL_PASSWORD: "p",
        },
        /^invalid setting EDGE_BRIDGE_KAFKA_SASL_MECHANISM/,
      ],
      [{ EDGE_BRIDGE_KAFKA_SASL_MECHANISM: "PLAIN" }, /needs a username and a password/],
      [{ EDGE_BRIDGE_KAFKA_SASL_USERNAME: "u" }, /need a mechanism/],
      [{ EDGE_BRIDGE_TOPIC_EVENTS: "devices-topic" }, /is used for two purposes/],
      [{ EDGE_BRIDGE_GROUP: "a.b" }, /^invalid setting EDGE_BRIDGE_GROUP: group must be letters/],
      [{ EDGE_BRIDGE_NATS_URL: "http://x" }, /^invalid setting EDGE_BRIDGE_NATS_URL: "http:\/\/x" has scheme http/],
    ];
    for (const [env, message] of refusals) {
      expect(() => load(env), JSON.stringify(env)).toThrow(SettingsError);
      expect(() => load(env), JSON.stringify(env)).toThrow(message);
    }
  });

  it("refuses an unknown key in the settings file", () => {
    const configDir = scratchDir("eb-");
    writeFileSync(join(configDir, "settings.json"), JSON.stringify({ kafka: { broker: ["x:1"] } }));
    expect(() => loadBridgeSettings({ env: { EDGE_BRIDGE_CONFIG_DIR: configDir }, privileged: true })).toThrow(
      /kafka.broker: is not a known setting/,
    );
  });

  it("under OpenFrame's conventions (platform openframe), devices rows carry OpenFrame's default tenant oss unless a tenant is set; ours carry none", () => {
    expect(load({}).platform).toBe("edge");
    expect(devicesTenantId(load({}))).toBeNull();
    expect(devicesTenantId(load({ EDGE_BRIDGE_PLATFORM: "openframe" }))).toBe("oss");
    expect(devicesTenantId(load({}, { platform: "openframe" }))).toBe("oss");
    expect(devicesTenantId(load({ EDGE_BRIDGE_PLATFORM: "openframe", EDGE_BRIDGE_TENANT_ID: "acme" }))).toBe("acme");
    expect(devicesTenantId(load({ EDGE_BRIDGE_TENANT_ID: "acme" }))).toBe("acme");
    expect(() => load({ EDGE_BRIDGE_PLATFORM: "openfrme" })).toThrow(/^invalid setting EDGE_BRIDGE_PLATFORM/);
  });

  it("follows authenticated identities for presence unless told to trust connection names", () => {
    expect(load({}).trustConnectionNames).toBe(false);
    expect(load({ EDGE_BRIDGE_TRUST_CONNECTION_NAMES: "true" }).trustConnectionNames).toBe(true);
    expect(() => load({ EDGE_BRIDGE_TRUST_CONNECTION_NAMES: "maybe" })).toThrow(/must be true or false/);
  });
});
