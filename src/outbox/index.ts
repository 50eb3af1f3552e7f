export * from "./types.ts";
export { openOutbox, OutboxRefusedError, OUTBOX_FILE, SEQUENCE_FLOOR_FILE, type Outbox, type OutboxOptions } from "./outbox.ts";
export { SequenceFloorError } from "./sequence-floor.ts";
export { RECENTLY_SENT_LIMIT, type Durability } from "./sqlite-store.ts";
export { OutboxReader, OutboxNotFoundError, type OutboxListingEntry } from "./outbox-reader.ts";
