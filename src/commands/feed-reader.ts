import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { CommandFeed } from "../contracts/index.ts";
import type { CommandInbox } from "../outbox/index.ts";
import type { Logger } from "../runtime/index.ts";
import { type Cancel, type Clock, jitteredBackoff, timersOf } from "../runtime/index.ts";
import {
  readAfter,
  readNewest,
  readNextAfter,
  type StoredCommandMessage,
  StreamUnavailableError,
} from "../transport/index.ts";

export interface FeedReaderOptions {
  readonly inbox: Pick<CommandInbox, "position" | "accept" | "streamRecreated">;
  /** The machine's catch-up consumer name (contracts: catchUpConsumerName). */
  readonly consumerName: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Called after new commands were stored: the dispatcher takes them. */
  readonly onAccepted: () => void;
  /** Every feed is checked this often besides hints and reconnects (default 10 min, ±20 %). */
  readonly checkEveryMs?: number;
  /** Messages per catch-up read (default 64); a longer backlog is read in several. */
  readonly catchUpLimit?: number;
  /** Waits between tries when commands cannot be read (default 2 s doubling to 60 s). */
  readonly retry?: { readonly baseMs: number; readonly maxMs: number };
  /** Random source for jitter (tests give a fixed one). */
  readonly random?: () => number;
}

export interface FeedReaderStatus {
  readonly feeds: number;
  /** When every feed due was last checked, faults or not (epoch ms), null before. */
  readonly lastCheckedAtMs: number | null;
  /** Which feeds cannot be read right now, and why; null when all can. */
  readonly problem: string | null;
}

/** A hint is re-checked after these delays when it found nothing new: the stream may store it a moment later. */
const HINT_RECHECK_MS = [1_000, 5_000] as const;
/** A feed is checked at most this often, however many hints arrive (a hint is anyone's to fake). */
const MIN_CHECK_SPACING_MS = 250;
/** Catch-up reads per feed check; the rest follows at the next check, soon after. */
const MAX_READS_PER_CHECK = 16;
/** Direct gets per check of a `sequence` feed (one message each); the rest follows at the next check. */
const MAX_SEQUENCE_READS_PER_CHECK = 64;

/**
 * Reads the machine's command feeds (contracts/command-feeds.ts) into the durable inbox, keeping
 * nothing on the server for this machine between reads:
 * - each check asks the newest message of the feed's subject (a direct get: no consumer, and no
 *   JetStream API request either) and compares it with the feed's position in the inbox;
 * - a `latest` feed takes that newest message; a `queue` feed reads what it missed through a
 *   catch-up consumer that lives for that read only; a `sequence` feed reads it message by message,
 *   by direct gets of the next message after its position (no consumer at all);
 * - checks run on every (re)connect, every `checkEveryMs`, and when a message on one of the feed
 *   subjects is seen on the wire. That message is only a HINT: nothing of it is used (a machine can
 *   make the server send anything there), only what the stream holds is read.
 * One check at a time per agent: the server sees at most one request of this agent's in flight.
 */
export class FeedReader {
  readonly #options: FeedReaderOptions;
  readonly #logger: Logger;
  readonly #timers;
  readonly #feeds = new Map<string, CommandFeed>();
  /** Feeds waiting for a check, in order. */
  readonly #due = new Set<string>();
  readonly #delayed = new Map<string, Cancel>();
  readonly #lastCheckMs = new Map<string, number>();
  #connection: NatsConnection | null = null;
  /** Between a link's attach and its detach: checks run only then (offline, nothing is worth a try). */
  #online = false;
  /** Feeds that cannot be read now, with why and when to try again. */
  readonly #faults = new Map<string, { reason: string; readonly backoff: { next(): number } }>();
  #subscriptions: Subscription[] = [];
  #running: Promise<void> | null = null;
  #periodic: Cancel | null = null;
  #stopped = false;
  #lastCheckedAtMs: number | null = null;

  constructor(options: FeedReaderOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#timers = timersOf(options.clock);
  }

  /** Starts reading a feed (at once when connected). */
  addFeed(feed: CommandFeed): void {
    this.#feeds.set(feed.key, feed);
    this.#schedule(feed.key, 0);
  }

  removeFeed(key: string): void {
    this.#feeds.delete(key);
    this.#due.delete(key);
    this.#delayed.get(key)?.();
    this.#delayed.delete(key);
  }

  /** The link is up: listen for hints on this connection, and check every feed. */
  attach(connection: NatsConnection, hintSubjects: readonly string[]): void {
    if (this.#stopped) return;
    if (connection !== this.#connection) {
      for (const subscription of this.#subscriptions) subscription.unsubscribe();
      this.#connection = connection;
      this.#subscriptions = hintSubjects.map((subject) =>
        connection.subscribe(subject, { callback: (_error, message) => this.#hint(message.subject) }),
      );
    }
    this.#online = true;
    this.checkAll();
    this.#periodic ??= this.#schedulePeriodic();
  }

  /** The link went down: checks wait for the next attach (which checks everything). */
  detach(): void {
    this.#online = false;
  }

  /** Every feed, now (in order). */
  checkAll(): void {
    for (const key of this.#feeds.keys()) this.#schedule(key, 0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#periodic?.();
    for (const cancel of this.#delayed.values()) cancel();
    this.#delayed.clear();
    this.#due.clear();
    for (const subscription of this.#subscriptions) subscription.unsubscribe();
    this.#subscriptions = [];
    await this.#running;
  }

  status(): FeedReaderStatus {
    const faults = [...this.#faults].map(([key, fault]) => `${key}: ${fault.reason}`);
    return {
      feeds: this.#feeds.size,
      lastCheckedAtMs: this.#lastCheckedAtMs,
      problem: faults.length === 0 ? null : faults.join("; "),
    };
  }

  #schedulePeriodic(): Cancel {
    const base = this.#options.checkEveryMs ?? 600_000;
    const random = this.#options.random ?? Math.random;
    let cancel: Cancel = () => undefined;
    const arm = (): void => {
      cancel = this.#timers.after(base * (0.8 + 0.4 * random()), () => {
        this.checkAll();
        arm();
      });
    };
    arm();
    return () => cancel();
  }

  #hint(subject: string): void {
    for (const feed of this.#feeds.values()) {
      if (feed.subject !== subject) continue;
      this.#schedule(feed.key, 0);
      for (const delayMs of HINT_RECHECK_MS) this.#schedule(feed.key, delayMs);
    }
  }

  #schedule(key: string, delayMs: number): void {
    if (this.#stopped) return;
    if (delayMs > 0) {
      if (this.#delayed.has(key)) return;
      this.#delayed.set(
        key,
        this.#timers.after(delayMs, () => {
          this.#delayed.delete(key);
          this.#schedule(key, 0);
        }),
      );
      return;
    }
    this.#due.add(key);
    this.#running ??= this.#drain().finally(() => {
      this.#running = null;
      if (this.#due.size > 0 && !this.#stopped && this.#online) this.#schedule([...this.#due][0] as string, 0);
    });
  }

  async #drain(): Promise<void> {
    while (!this.#stopped && this.#online && this.#connection) {
      const key = [...this.#due][0];
      if (key === undefined) {
        this.#lastCheckedAtMs = this.#options.clock.now();
        return;
      }
      this.#due.delete(key);
      const feed = this.#feeds.get(key);
      if (!feed) continue;
      const sinceLastMs = this.#options.clock.monotonicMs() - (this.#lastCheckMs.get(key) ?? -Infinity);
      if (sinceLastMs < MIN_CHECK_SPACING_MS) {
        this.#schedule(key, MIN_CHECK_SPACING_MS - sinceLastMs);
        continue;
      }
      this.#lastCheckMs.set(key, this.#options.clock.monotonicMs());
      try {
        const more = await this.#check(this.#connection, feed);
        if (more) this.#due.add(key);
        this.#cleared(feed);
      } catch (error) {
        // One feed's trouble (a stream the platform has not made) never holds the others up.
        this.#failed(feed, error);
      }
    }
  }

  /** Reads what is new on one feed into the inbox; true when a backlog remains to read. */
  async #check(connection: NatsConnection, feed: CommandFeed): Promise<boolean> {
    const { inbox } = this.#options;
    const newest = await readNewest(connection, feed.stream, feed.subject);
    let position = inbox.position(feed.key);
    if (position === null) {
      if (feed.start === "next" || (feed.start === "newest" && !newest)) {
        inbox.accept(feed.key, [], newest?.streamSequence ?? 0);
        return false;
      }
      if (feed.start === "newest" && newest) {
        this.#take(feed, [newest]);
        return false;
      }
      position = 0;
    }
    if (!newest || newest.streamSequence === position) return false;
    if (newest.streamSequence < position) {
      // The stream was made anew (its sequences start again): what it holds now is all new.
      this.#logger.warn(
        { feed: feed.key, stream: feed.stream, position, newest: newest.streamSequence },
        "the command stream's newest message is older than this machine's position: the stream was recreated; reading it afresh",
      );
      inbox.streamRecreated(feed.stream);
      position = 0;
    }
    if (feed.mode === "latest") {
      this.#take(feed, [newest]);
      return false;
    }
    if (feed.mode === "sequence") return this.#readSequence(connection, feed, position, newest.streamSequence);
    for (let read = 0; read < MAX_READS_PER_CHECK; read++) {
      const { messages, remaining } = await readAfter(connection, {
        stream: feed.stream,
        subject: feed.subject,
        afterSequence: position,
        consumerName: this.#options.consumerName,
        limit: this.#options.catchUpLimit ?? 64,
      });
      const last = messages.at(-1);
      if (!last) return false;
      this.#take(feed, messages);
      position = last.streamSequence;
      if (remaining === 0) return false;
    }
    return true;
  }

  /**
   * Every message after `position` up to `newest`, one direct get each, each stored (with the
   * position past it) before the next is asked; true when more remain than one check reads.
   */
  async #readSequence(
    connection: NatsConnection,
    feed: CommandFeed,
    position: number,
    newest: number,
  ): Promise<boolean> {
    let after = position;
    for (let read = 0; read < MAX_SEQUENCE_READS_PER_CHECK; read++) {
      const message = await readNextAfter(connection, feed.stream, feed.subject, after);
      // Gone meanwhile (its TTL, the stream's limits): nothing newer is left to take.
      if (!message) return false;
      this.#take(feed, [message]);
      after = message.streamSequence;
      if (after >= newest) return false;
    }
    return true;
  }

  #take(feed: CommandFeed, messages: readonly StoredCommandMessage[]): void {
    const last = messages.at(-1);
    if (!last) return;
    const added = this.#options.inbox.accept(feed.key, messages, last.streamSequence);
    if (added > 0) {
      this.#logger.info(
        { feed: feed.key, stream: feed.stream, through: last.streamSequence, commands: added },
        "commands received",
      );
      this.#options.onAccepted();
    }
  }

  #cleared(feed: CommandFeed): void {
    const fault = this.#faults.get(feed.key);
    if (!fault) return;
    this.#faults.delete(feed.key);
    this.#logger.info({ feed: feed.key, was: fault.reason }, "commands of this feed can be read again");
  }

  #failed(feed: CommandFeed, error: unknown): void {
    // Offline is not a fault: the next attach checks everything.
    if (!this.#online) {
      this.#due.add(feed.key);
      return;
    }
    const reason = error instanceof Error ? error.message : String(error);
    const missing = error instanceof StreamUnavailableError;
    let fault = this.#faults.get(feed.key);
    if (!fault) {
      fault = {
        reason,
        backoff: jitteredBackoff({
          baseMs: this.#options.retry?.baseMs ?? 2_000,
          // A stream the platform has not made is looked for again at the periodic check's pace.
          maxMs: missing ? (this.#options.checkEveryMs ?? 600_000) : (this.#options.retry?.maxMs ?? 60_000),
          ...(this.#options.random ? { random: this.#options.random } : {}),
        }),
      };
      this.#faults.set(feed.key, fault);
      this.#logger.warn(
        { feed: feed.key, stream: feed.stream, err: error },
        missing
          ? "a command stream is not there: this feed is read once it is"
          : "cannot read commands yet; trying again",
      );
    } else if (fault.reason !== reason) {
      fault.reason = reason;
      this.#logger.warn({ feed: feed.key, stream: feed.stream, err: error }, "still cannot read commands");
    } else {
      this.#logger.debug({ feed: feed.key, reason }, "still cannot read commands");
    }
    this.#schedule(feed.key, fault.backoff.next());
  }
}
