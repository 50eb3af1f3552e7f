export type { EventSink, OutgoingEvent } from "./event-sink.ts";
export { createOutboxEventSink, encodeEvent } from "./outbox-event-sink.ts";
