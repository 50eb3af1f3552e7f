import { describe, expect, it } from "vitest";
import { type RouterOptions, routeMessage, tooLargeDeadLetter } from "../../../src/bridge/records/event-router.ts";
import type { SourceMessage } from "../../../src/bridge/records/source-message.ts";
import { DEFAULT_TOPICS, EventEnvelope, TaskResultRow, TelemetryRow } from "../../../src/contracts/index.ts";
import { telemetrySample } from "../../fixtures/bridge/simulated-fleet.ts";

const options: RouterOptions = { topics: DEFAULT_TOPICS, maxRecordBytes: () => 100_000 };

/** A machine's event as its agent publishes it: X-Machine-ID names the machine of the subject. */
function message(subject: string, body: unknown, headers: Array<[string, string]> = []): SourceMessage {
  return {
    stream: "S",
    streamSequence: 42,
    subject,
    data: Buffer.from(typeof body === "string" ? body : JSON.stringify(body)),
    headers: [
      ["X-Machine-ID", subject.split(".")[1] ?? ""],
      ["X-Event-ID", "e-1"],
      ["X-Sequence", "7"],
      ["X-Timestamp", "2026-11-30T10:00:00.000Z"],
      ["X-Correlation-ID", "c-1"],
      ["X-Causation-ID", "cmd-1"],
      ["X-Schema-Version", "1"],
      ...headers,
    ],
    storedAtMs: Date.parse("2026-11-30T10:00:01.000Z"),
  };
}

const headersOf = (record: { headers: Map<Buffer, Buffer> }): Array<[string, string]> =>
  [...record.headers].map(([key, value]) => [key.toString(), value.toString()]);

describe("routeMessage", () => {
  it("makes an envelope of an event, keyed by the machine of the subject (not the body), with every header and where it came from", () => {
    const routed = routeMessage(
      message(
        "machine.m-1.config.status",
        { revision: 3, status: "APPLIED", timestamp: "2026-11-30T10:00:00Z", machineId: "someone-else" },
        [
          ["X-Custom", "a"],
          ["X-Custom", "b"],
        ],
      ),
      options,
    );
    if (routed.kind !== "record") throw new Error(routed.reason);
    expect(routed.record.topic).toBe("machine-events");
    expect(routed.record.key?.toString()).toBe("m-1");
    expect(EventEnvelope.parse(JSON.parse(String(routed.record.value)))).toEqual({
      eventId: "e-1",
      eventType: "config.status",
      machineId: "m-1",
      sequence: 7,
      timestamp: "2026-11-30T10:00:00.000Z",
      correlationId: "c-1",
      causationId: "cmd-1",
      schemaVersion: "1",
      subject: "machine.m-1.config.status",
      body: { revision: 3, status: "APPLIED", timestamp: "2026-11-30T10:00:00Z", machineId: "someone-else" },
    });
    const headers = headersOf(routed.record);
    expect(headers.filter(([name]) => name === "X-Custom")).toEqual([
      ["X-Custom", "a"],
      ["X-Custom", "b"],
    ]);
    expect(headers.slice(-3)).toEqual([
      ["nats-stream", "S"],
      ["nats-stream-seq", "42"],
      ["nats-subject", "machine.m-1.config.status"],
    ]);
  });

  it("flattens a task's end into one row of the task results topic, with the task command it answers", () => {
    const end = {
      taskId: "t-7",
      status: "FAILED",
      exitCode: 2,
      signal: null,
      error: null,
      startedAt: "2026-11-30T09:59:58.000Z",
      finishedAt: "2026-11-30T10:00:00.500Z",
      durationMs: 2_500,
      bytesSeen: { stdout: 10, stderr: 2_000_000 },
      truncated: true,
      chunks: 64,
      lastLines: { stdout: ["done"], stderr: ["disk full", "giving up"] },
    };
    const routed = routeMessage(message("machine.m-1.task.result", end), options);
    if (routed.kind !== "record") throw new Error(routed.reason);
    expect(routed.record.topic).toBe("machine-task-results");
    expect(routed.record.key?.toString()).toBe("m-1");
    expect(TaskResultRow.parse(JSON.parse(String(routed.record.value)))).toEqual({
      eventId: "e-1",
      machineId: "m-1",
      sequence: 7,
      timestamp: "2026-11-30T10:00:00.000Z",
      causationId: "cmd-1",
      correlationId: "c-1",
      taskId: "t-7",
      status: "FAILED",
      exitCode: 2,
      signal: null,
      error: null,
      startedAt: "2026-11-30T09:59:58.000Z",
      startedAtMs: Date.parse("2026-11-30T09:59:58.000Z"),
      finishedAt: "2026-11-30T10:00:00.500Z",
      finishedAtMs: Date.parse("2026-11-30T10:00:00.500Z"),
      durationMs: 2_500,
      stdoutBytes: 10,
      stderrBytes: 2_000_000,
      truncated: true,
      chunks: 64,
      lastStdout: "done",
      lastStderr: "disk full\ngiving up",
    });
    const malformed = routeMessage(message("machine.m-1.task.result", { ...end, status: "DONE" }), options);
    expect(malformed).toMatchObject({ kind: "dead-letter", deadLetterKind: "wrong-schema" });
  });

  it("flattens a telemetry sample into one row of the telemetry topic", () => {
    const routed = routeMessage(message("machine.m-1.telemetry", telemetrySample("m-1", 5)), options);
    if (routed.kind !== "record") throw new Error(routed.reason);
    expect(routed.record.topic).toBe("machine-telemetry");
    const row = TelemetryRow.parse(JSON.parse(String(routed.record.value)));
    expect(row).toMatchObject({
      eventId: "e-1",
      machineId: "m-1",
      sequence: 7,
      cpuTotalPercent: 5,
      cpuCores: 2,
      memoryUsedPercent: 25.0000000625,
      filesystemMaxUsedPercent: 40,
      networkRxBytesPerSecond: 1_000,
      tagKeyValues: ["site:lab"],
      collectorErrors: 0,
    });
    expect(row.timestampMs).toBe(Date.parse(row.timestamp));
  });

  it("keeps a stable identity for a publisher that sends no other header than its machine: the stream position and the time it was stored", () => {
    const bare: SourceMessage = {
      ...message("machine.m-2.hostname", { hostname: "h" }),
      headers: [["X-Machine-ID", "m-2"]],
    };
    const routed = routeMessage(bare, options);
    if (routed.kind !== "record") throw new Error(routed.reason);
    expect(JSON.parse(String(routed.record.value))).toMatchObject({
      eventId: "S:42",
      sequence: null,
      timestamp: "2026-11-30T10:00:01.000Z",
      correlationId: null,
    });
  });

  it("a message whose headers could not be read is an unreadable-headers dead letter with no key, whatever its subject says", () => {
    const input = { ...message("machine.m-1.telemetry", telemetrySample("m-1", 1), []), headers: [] };
    const routed = routeMessage(
      { ...input, unreadableHeaders: "' ' is not a valid character in a header name" },
      options,
    );
    expect(routed.kind).toBe("dead-letter");
    if (routed.kind !== "dead-letter") return;
    expect(routed.deadLetterKind).toBe("unreadable-headers");
    expect(routed.reason).toMatch(/headers cannot be read: ' ' is not a valid character/);
    expect(routed.record.key).toBeUndefined();
    expect(routed.record.topic).toBe(DEFAULT_TOPICS.deadLetter);
  });

  it("sends what cannot be read to the dead-letter topic, by kind, with the reason beside the original headers", () => {
    const cases: Array<[SourceMessage, string, RegExp]> = [
      [message("machine.m-1.telemetry", "{oops"), "not-json", /not JSON/],
      [message("machine.m-1.telemetry", { machineId: "m-1" }), "wrong-schema", /not a valid telemetry body: timestamp/],
      [
        message("machine.m-1.weather", { sunny: true }),
        "unknown-subject",
        /no event is published on machine.m-1.weather/,
      ],
      [
        message("machine.m-1.hostname", { hostname: "x".repeat(200_000) }),
        "too-large",
        /over the 100000-byte limit for topic machine-events/,
      ],
    ];
    for (const [input, kind, reason] of cases) {
      const routed = routeMessage(input, options);
      expect(routed.kind, kind).toBe("dead-letter");
      if (routed.kind !== "dead-letter") continue;
      expect(routed.deadLetterKind).toBe(kind);
      expect(routed.reason).toMatch(reason);
      expect(routed.record.topic).toBe("edge-bridge-dead-letter");
      expect(routed.record.key?.toString()).toBe("m-1");
      const headers = headersOf(routed.record);
      expect(headers).toContainEqual(["X-Event-ID", "e-1"]);
      expect(headers).toContainEqual(["edge-bridge-error-kind", kind]);
    }
  });

  it("keeps its own headers its own: a publisher's nats-subject, nats-stream, nats-stream-seq or __TypeId__ (any case) is never copied", () => {
    const forged = message("machine.m-1.hostname", { hostname: "h" }, [
      ["nats-subject", "machine.victim.hostname"],
      ["NATS-Stream", "OTHER"],
      ["nats-stream-seq", "1"],
      ["__TypeId__", "com.example.Gadget"],
      ["edge-bridge-error-kind", "not-json"],
    ]);
    const routed = routeMessage(forged, options);
    if (routed.kind !== "record") throw new Error(routed.reason);
    const headers = headersOf(routed.record);
    const reserved = headers.filter(([name]) =>
      ["nats-subject", "nats-stream", "nats-stream-seq", "__typeid__", "edge-bridge-error-kind"].includes(
        name.toLowerCase(),
      ),
    );
    expect(reserved).toEqual([
      ["nats-stream", "S"],
      ["nats-stream-seq", "42"],
      ["nats-subject", "machine.m-1.hostname"],
    ]);
    // A dead letter's reason is the bridge's too.
    const poison = routeMessage({ ...forged, data: Buffer.from("{oops") }, options);
    expect(headersOf(poison.record).filter(([name]) => name === "edge-bridge-error-kind")).toEqual([
      ["edge-bridge-error-kind", "not-json"],
    ]);
    expect(headersOf(poison.record).filter(([name]) => name === "nats-subject")).toEqual([
      ["nats-subject", "machine.m-1.hostname"],
    ]);
  });

  it("never keys or counts as a machine's what is not its event: no X-Machine-ID (a stored publish ack), another machine's, or two", () => {
    const ack: SourceMessage = {
      stream: "TELEMETRY",
      streamSequence: 9,
      subject: "machine.victim.telemetry",
      data: Buffer.from(JSON.stringify({ stream: "TELEMETRY", seq: 8 })),
      headers: [],
      storedAtMs: Date.parse("2026-11-30T10:00:01.000Z"),
    };
    const cases: Array<[SourceMessage, RegExp]> = [
      [ack, /no X-Machine-ID header: not an event of machine victim/],
      [
        message("machine.victim.telemetry", telemetrySample("victim", 1), [["X-Machine-ID", "intruder"]]),
        /X-Machine-ID "victim, intruder" does not name machine victim/,
      ],
      [
        {
          ...message("machine.victim.telemetry", telemetrySample("victim", 1)),
          headers: [["X-Machine-ID", "intruder"]],
        },
        /X-Machine-ID "intruder" does not name machine victim/,
      ],
    ];
    for (const [input, reason] of cases) {
      const routed = routeMessage(input, options);
      if (routed.kind !== "dead-letter") throw new Error(`${input.subject} was taken as victim's`);
      expect(routed.deadLetterKind).toBe("unattributed");
      expect(routed.reason).toMatch(reason);
      expect(routed.record.topic).toBe("edge-bridge-dead-letter");
      expect(routed.record.key).toBeUndefined();
      expect(headersOf(routed.record)).toContainEqual(["edge-bridge-error-kind", "unattributed"]);
    }
    // Not keyed to the subject's machine either when it is too large for the broker.
    expect(tooLargeDeadLetter(ack, options, "too large").key).toBeUndefined();
    expect(tooLargeDeadLetter(message("machine.m-1.telemetry", {}), options, "too large").key?.toString()).toBe("m-1");
  });
});
