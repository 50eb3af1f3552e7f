import { describe, expect, it } from "vitest";
import { KafkaHealth } from "../../../src/bridge/kafka/kafka-health.ts";
import { kafkaError } from "../../fixtures/bridge/in-memory-kafka.ts";
import { captureLog } from "../../helpers/log-capture.ts";
import { manualClock } from "../../helpers/manual-clock.ts";

const BROKERS = ["kafka-1:9092"];

describe("KafkaHealth (on a manual clock)", () => {
  const setUp = () => {
    const clock = manualClock();
    const log = captureLog();
    const health = new KafkaHealth({ clock, logger: log.logger, brokers: BROKERS, warnAfterMs: 5_000 });
    health.start();
    return { clock, log, health };
  };

  it("warns once when Kafka has only failed for 5 s, and once when a call succeeds again, with how long it lasted", async () => {
    const { clock, log, health } = setUp();
    for (let second = 0; second < 12; second++) {
      await health.track(Promise.reject(kafkaError("NOT_COORDINATOR"))).catch(() => undefined);
      clock.advance(1_000);
    }
    const warnings = log.matching("Kafka has not answered the bridge for a while");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: "warn", brokers: BROKERS, unreachableSeconds: 5 });
    expect(health.status()).toMatchObject({
      reachable: false,
      problem: expect.stringMatching(/^Kafka unreachable for 12 s/),
    });
    await health.track(Promise.resolve());
    expect(log.matching("Kafka is reachable again")).toEqual([
      expect.objectContaining({ level: "warn", unreachableSeconds: 12 }),
    ]);
    expect(health.status()).toEqual({ reachable: true, unreachableSince: null, problem: null });
    health.stop();
  });

  it("a call that hangs (a broker gone without a word) is trouble too: the warning comes while it waits", async () => {
    const { clock, log, health } = setUp();
    let answer: () => void = () => undefined;
    const hanging = health.track(new Promise<void>((resolve) => (answer = resolve)));
    clock.advance(4_000);
    expect(log.matching("Kafka has not answered")).toHaveLength(0);
    clock.advance(2_000);
    expect(log.matching("Kafka has not answered")).toHaveLength(1);
    answer();
    await hanging;
    expect(log.matching("Kafka is reachable again")).toHaveLength(1);
    health.stop();
  });

  it("short trouble, fencing by another owner, or a record too large is not an outage", async () => {
    const { clock, log, health } = setUp();
    await health.track(Promise.reject(kafkaError("NOT_LEADER_OR_FOLLOWER"))).catch(() => undefined);
    clock.advance(3_000);
    await health.track(Promise.resolve());
    clock.advance(10_000);
    for (const id of ["PRODUCER_FENCED", "MESSAGE_TOO_LARGE"]) {
      await health.track(Promise.reject(kafkaError(id))).catch(() => undefined);
      clock.advance(10_000);
    }
    expect(log.matching("Kafka has not answered")).toHaveLength(0);
    expect(health.status().reachable).toBe(true);
    health.stop();
  });

  it("INVALID_TIMESTAMP names this host's clock, once, until a transaction commits again", async () => {
    const { log, health } = setUp();
    for (let attempt = 0; attempt < 3; attempt++)
      await health.track(Promise.reject(kafkaError("INVALID_TIMESTAMP")), "transaction").catch(() => undefined);
    // Opening a producer works while timestamps are refused: it says nothing of them.
    await health.track(Promise.resolve(), "call");
    expect(health.status().problem).toBe(
      "Kafka refuses the records' timestamps (INVALID_TIMESTAMP): check this host's clock (it says 2026-11-22T10:00:00.000Z)",
    );
    const errors = log.matching("Kafka refuses the records' timestamps");
    expect(errors).toEqual([expect.objectContaining({ level: "error", hostTime: "2026-11-22T10:00:00.000Z" })]);
    await health.track(Promise.resolve(), "transaction");
    expect(health.status().problem).toBeNull();
    expect(log.matching("Kafka takes the records' timestamps again")).toHaveLength(1);
    health.stop();
  });
});
