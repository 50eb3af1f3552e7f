export type { CommandInbox, CommandRow, CommandState, InboxMessage } from "./command-inbox.ts";
export { OutboxRefusedError, OutboxStorageUnavailableError } from "./intake.ts";
export { SEQUENCE_FLOOR_FILE } from "./numbering.ts";
export { OUTBOX_FILE, type Outbox, type OutboxOptions, openOutbox } from "./outbox.ts";
export { type OutboxListingEntry, OutboxNotFoundError, OutboxReader } from "./outbox-reader.ts";
export type { EventPublisher, PublishOutcome } from "./publisher.ts";
export { SequenceFloorError } from "./sequence-floor.ts";
export { type Durability, RECENTLY_SENT_LIMIT } from "./sqlite-store.ts";
export * from "./types.ts";
