import { describe, expect, it } from "vitest";
import { EventType } from "../../../src/contracts/index.ts";
import type { EmittedEvent, EventSink, OutgoingEvent } from "../../../src/events/event-sink.ts";

/**
 * `emit` is typed by event type: these lines are checked by `tsc --noEmit` (the suite's typecheck).
 * Each `@ts-expect-error` fails the typecheck if the line under it ever compiles, i.e. if a body
 * that does not match its type's schema became acceptable.
 */
describe("EventSink.emit typing", () => {
  const emitted: OutgoingEvent[] = [];
  const sink: EventSink = {
    emit: async (event): Promise<EmittedEvent> => {
      emitted.push(event);
      return { eventId: "e", sequence: emitted.length };
    },
  };

  it("takes a body of its type's schema and refuses (at compile time) any other", async () => {
    await sink.emit({ type: EventType.hostname, body: { hostname: "h1" } });
    // @ts-expect-error a hostname event's body has `hostname`, not `name`
    await sink.emit({ type: EventType.hostname, body: { name: "h1" } });
    await sink.emit({
      type: EventType.configStatus,
      // @ts-expect-error a config status's `status` is one of APPLIED, REJECTED, ROLLED_BACK
      body: { revision: 1, status: "DONE", error: null, timestamp: "2024-01-01T00:00:00Z" },
    });
    // @ts-expect-error the body of one type is not the body of another
    await sink.emit({ type: EventType.clientUpdateStatus, body: { hostname: "h1" } });
    // @ts-expect-error an unknown body is not a body of any type
    await sink.emit({ type: EventType.telemetry, body: JSON.parse("{}") as unknown });
    expect(emitted.map((event) => event.type)).toEqual([
      EventType.hostname,
      EventType.hostname,
      EventType.configStatus,
      EventType.clientUpdateStatus,
      EventType.telemetry,
    ]);
  });
});
