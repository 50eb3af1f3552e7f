import { describe, expect, it } from "vitest";
import type { ClientConnectionEvent } from "../../../src/contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../../../src/events/event-sink.ts";
import { createConnectionEventRecorder } from "../../../src/lifecycle/connection-events.ts";
import type { Clock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { manualClock } from "../../helpers/manual-clock.ts";

/** A clock a millisecond later at every reading: a busy machine between two reads of the time. */
const tickingClock = (startMs: number): Clock => manualClock(startMs, { stepPerReadMs: 1 });

function recordingSink(): EventSink & { readonly bodies: ClientConnectionEvent[] } {
  const bodies: ClientConnectionEvent[] = [];
  return {
    bodies,
    async emit(event: OutgoingEvent) {
      bodies.push(event.body as ClientConnectionEvent);
      return { eventId: `event-${bodies.length}`, sequence: bodies.length };
    },
  };
}

describe("connection events", () => {
  it("names in RECONNECT's disconnectedAt the very timestamp its DISCONNECT carries, however the clock moves", () => {
    const sink = recordingSink();
    const recorder = createConnectionEventRecorder({
      machineId: "m-1",
      sink,
      clock: tickingClock(Date.parse("2026-12-07T03:17:21.139Z")),
      logger: silentLogger(),
    });
    recorder.connected("nats://a:4222");
    recorder.disconnected("nats://a:4222", "connection refused");
    recorder.reconnected("nats://a:4222");
    const [connect, disconnect, reconnect] = sink.bodies;
    expect([connect?.type, disconnect?.type, reconnect?.type]).toEqual(["CONNECT", "DISCONNECT", "RECONNECT"]);
    expect(disconnect?.reason).toBe("connection refused");
    expect(reconnect?.disconnectedAt).toBe(disconnect?.timestamp);
    expect(Date.parse(reconnect?.timestamp ?? "")).toBeGreaterThan(Date.parse(disconnect?.timestamp ?? ""));
  });

  it("gives a RECONNECT no disconnectedAt when no disconnect was seen, and only once for one disconnect", () => {
    const sink = recordingSink();
    const recorder = createConnectionEventRecorder({
      machineId: "m-1",
      sink,
      clock: tickingClock(0),
      logger: silentLogger(),
    });
    recorder.reconnected("nats://a:4222");
    recorder.disconnected("nats://a:4222", "gone");
    recorder.reconnected("nats://a:4222");
    recorder.reconnected("nats://a:4222");
    expect(sink.bodies.map((body) => body.disconnectedAt)).toEqual([
      undefined,
      undefined,
      sink.bodies[1]?.timestamp,
      undefined,
    ]);
  });
});
