import type { z } from "zod";
import type { CommandFeed } from "../contracts/index.ts";
import type { OutgoingEvent } from "../events/index.ts";
import type { CommandRow } from "../outbox/index.ts";
import type { CommandTrust } from "../trust/index.ts";

/**
 * How a command's work ended, as the handler says it:
 * - `done`: settled, with its result (if any) stored in the same transaction;
 * - `retry`: taken again after `afterMs` (0: at once), or after the attempt count's backoff;
 * - `reject`: it can never work: settled with its result (if any).
 */
export type CommandOutcome =
  | { readonly kind: "done"; readonly result?: OutgoingEvent; readonly afterSettled?: () => Promise<void> }
  | { readonly kind: "retry"; readonly afterMs: number | "backoff" }
  | {
      readonly kind: "reject";
      readonly reason: string;
      readonly result?: OutgoingEvent;
      /**
       * A refused fleet-wide command is answered once per subject and key an hour: by default the
       * key is the reason's kind (its numbers aside), so junk copies are answered once; a refusal
       * of one command's own (a task's, by its id) gives its own key, and each is answered.
       */
      readonly answerKey?: string;
    };

export const done = (result?: OutgoingEvent): CommandOutcome => (result ? { kind: "done", result } : { kind: "done" });
/**
 * Done, and `next` runs once the command is settled (its result stored with it): for work that ends
 * this agent (an uninstall), which must not start before the platform's copy of the result is safe.
 */
export const doneThen = (result: OutgoingEvent, next: () => Promise<void>): CommandOutcome => ({
  kind: "done",
  result,
  afterSettled: next,
});
/** Taken again after `afterMs` (0: at once, e.g. work cut short by a stop). */
export const retryAfter = (afterMs: number): CommandOutcome => ({ kind: "retry", afterMs });
/** Taken again after 5 s doubling per attempt, at most 5 min (runtime/backoff.ts). */
export const retryWithBackoff = (): CommandOutcome => ({ kind: "retry", afterMs: "backoff" });
export const reject = (reason: string, result?: OutgoingEvent, options?: { answerKey: string }): CommandOutcome => ({
  kind: "reject",
  reason,
  ...(result ? { result } : {}),
  ...(options ? { answerKey: options.answerKey } : {}),
});

/** One attempt at a command, as a handler sees it. */
export interface CommandDelivery {
  readonly subject: string;
  readonly stream: string;
  readonly streamSequence: number;
  /** The feed it came through (contracts/command-feeds.ts). */
  readonly feed: string;
  /** 1 for the first attempt, 2 for the first retry, ... */
  readonly attempt: number;
  /** The command's event id (`X-Event-ID`), else `<stream>:<seq>`: every result carries it. */
  readonly causationId: string;
  /** When the message's own `Nats-TTL` ends (epoch ms), null when it has none. */
  readonly expiresAtMs: number | null;
  /** Aborted when the agent stops: long work (a download) ends, and is taken again at the next start. */
  readonly signal: AbortSignal;
}

/** Why a command is refused before its handler ran, as `rejection` is told. */
export interface RefusalContext {
  /** `interrupted`: its work began in an earlier run, which a crash, kill -9 or power loss cut short. */
  readonly kind: "refused" | "interrupted";
  /** The command's event id, as `CommandDelivery.causationId`. */
  readonly causationId: string;
}

export interface CommandHandler<Command> {
  /** How refusals name the command: "malformed <what>: …", "<what> refused: …". */
  readonly what: string;
  readonly schema: z.ZodType<Command>;
  /** Asked first, before even the signature is checked: milliseconds to wait before taking commands, or null. */
  notNow?(): number | null;
  /** Why a well-formed command cannot be taken beyond its schema, or null; `report: false` only logs it. */
  refusalOf?(command: Command, delivery: CommandDelivery): { readonly reason: string; readonly report: boolean } | null;
  /** The work. A throw is retried with backoff (at once when the agent is stopping). */
  handle(command: Command, delivery: CommandDelivery): Promise<CommandOutcome>;
  /** The result that reports a refusal (malformed, untrusted, expired, interrupted), given the raw body; null reports none. */
  rejection(reason: string, raw: unknown, context: RefusalContext): OutgoingEvent | null;
}

/**
 * A handler of stored messages as they are (not JSON commands): the remote configuration's KV
 * revisions, whose meaning (a put, a deletion) is in their headers. It checks them itself.
 */
export interface RowHandler {
  readonly what: string;
  handle(row: CommandRow, delivery: CommandDelivery): Promise<CommandOutcome>;
  /** The result that reports a row refused before it reached `handle` (expired, a copied answer, cut short by a crash); null reports none. */
  refusal(reason: string, row: CommandRow): OutgoingEvent | null;
}

/** What one capability takes from the inbox, and how. */
export type CommandRoute<Command> = {
  readonly feeds: readonly CommandFeed[];
  /**
   * Signature, scope (the exact subject) and serial of every command, checked before its body is
   * judged. Without a signing key it admits everything, unless `requireSignature`.
   */
  readonly trust?: CommandTrust;
  /** Refuse every command when no signing key is configured (commands too dangerous to take unsigned). */
  readonly requireSignature?: boolean;
  /** Commands worked on side by side (default 1: one at a time, in order). */
  readonly parallel?: number;
  /**
   * A command cut short by a crash, kill -9 or power loss: reported and never run again (`report`,
   * the default, so a command that crashes the agent cannot crash it for ever), or run once more
   * (`retry-once`: for work that is harmless to redo, such as applying a configuration).
   */
  readonly interrupted?: "report" | "retry-once";
} & ({ readonly handler: CommandHandler<Command> } | { readonly rowHandler: RowHandler });

/** A route once registered: its feeds can change (a tool installed brings its update feed). */
export interface CommandRouteHandle {
  addFeed(feed: CommandFeed): void;
  removeFeed(key: string): void;
  /** Stops taking commands and aborts the work in progress (taken again at the next start). */
  stop(): Promise<void>;
  /** Its commands stored and not begun yet (waiting their turn, or a retry); 0 when the inbox cannot be read. */
  waiting(): number;
}

/** Where capabilities register the commands they take (one per agent, src/commands/command-desk.ts). */
export interface CommandDesk {
  route<Command>(route: CommandRoute<Command>): CommandRouteHandle;
}
