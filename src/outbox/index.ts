export * from "./types.ts";
export { openOutbox, OUTBOX_FILE, type Outbox, type OutboxOptions } from "./outbox.ts";
export type { Durability } from "./sqlite-store.ts";
