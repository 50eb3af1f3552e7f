import {
  type CommandDelivery,
  type CommandDesk,
  type CommandOutcome,
  type CommandRoute,
  type CommandRouteHandle,
  reject,
  retryAfter,
  retryWithBackoff,
} from "../capability/index.ts";
import { type CommandFeed, EventHeader } from "../contracts/index.ts";
import type { OutgoingEvent } from "../events/index.ts";
import type { CommandInbox, CommandRow, OutboxEntryInput } from "../outbox/index.ts";
import type { Logger } from "../runtime/index.ts";
import { type Cancel, type Clock, describeIssues, retryDelayMs, timersOf, truncateInput } from "../runtime/index.ts";
import { TRUST_RETRY_MS } from "../trust/index.ts";
import { AnswerLimiter, reasonKind } from "./answer-limiter.ts";
import type { FeedReader } from "./feed-reader.ts";
import { expiryOf } from "./message-ttl.ts";

export interface CommandDeskOptions {
  readonly inbox: CommandInbox;
  readonly reader: Pick<FeedReader, "addFeed" | "removeFeed">;
  /** Turns a result into the outbox entry stored with the command's settlement (the event sink's encoding). */
  readonly encode: (event: OutgoingEvent) => OutboxEntryInput;
  /** Told of each result once it is stored (metrics). */
  readonly stored?: (event: OutgoingEvent) => void;
  readonly clock: Clock;
  readonly logger: Logger;
  /** One answer per (subject, reason) per this long to a fleet-wide command (default 1 h). */
  readonly fleetAnswerIntervalMs?: number;
}

/** What the runner lets a route know it is told apart by, and what it counts. */
interface Route {
  readonly spec: CommandRoute<unknown>;
  readonly what: string;
  readonly feeds: Map<string, CommandFeed>;
  readonly parallel: number;
  active: number;
  stopped: boolean;
  readonly working: Set<Promise<void>>;
  /** Aborted when the route or the whole runner stops: the work in progress ends and is taken again later. */
  readonly stopping: AbortController;
}

/** A settlement the database could not take yet (a full disk): kept and tried again. */
interface PendingSettlement {
  readonly row: CommandRow;
  readonly route: Route;
  readonly outcome: CommandOutcome;
  readonly causationId: string;
  /** The serial the trust gate admitted it with (signed commands): finished once it is settled. */
  readonly admittedSerial: number | null;
}

const decoder = new TextDecoder();

/** A stored body as JSON, or null when it is none. */
function parsedOrNull(body: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(body));
  } catch {
    return null;
  }
}
const FLEET_SUBJECT = /^machine\.all\.|^\$KV\.[^.]+\.defaults$/;
/** How often a settlement the disk refused is tried again. */
const SETTLE_RETRY_MS = 5_000;
/**
 * A look at the inbox this often whatever happened: a retry is stored for a wall-clock time (it
 * survives a restart), so a wall clock set back would otherwise leave it waiting for the next wake.
 */
const SWEEP_MS = 60_000;
/** Headers the server puts on an answer it sends (a direct get); a stored command never carries them itself. */
const SERVER_ANSWER_HEADERS = ["Nats-Stream", "Nats-Subject", "Nats-Sequence", "Nats-Time-Stamp"];

/**
 * The one pipeline every command from the platform goes through once it is in the inbox
 * (feed-reader.ts puts it there): it takes the pending commands in order, judges each (expiry, a
 * server's answer stored where a command belongs, the signature, the schema), runs its route's
 * handler, and settles it with its result in one transaction. Nothing here talks to the server.
 */
export class CommandRunner implements CommandDesk {
  readonly #options: CommandDeskOptions;
  readonly #logger: Logger;
  readonly #timers;
  readonly #routes: Route[] = [];
  readonly #byFeed = new Map<string, Route>();
  readonly #stopping = new AbortController();
  readonly #limiter: AnswerLimiter;
  readonly #unsettled: PendingSettlement[] = [];
  readonly #wakeTimers = new Set<Cancel>();
  #pumping = false;
  #again = false;
  #started = false;
  #settleRetry: Cancel | null = null;
  #sweep: Cancel | null = null;

  constructor(options: CommandDeskOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#timers = timersOf(options.clock);
    this.#limiter = new AnswerLimiter(options.fleetAnswerIntervalMs ?? 3_600_000);
  }

  route<Command>(spec: CommandRoute<Command>): CommandRouteHandle {
    const route: Route = {
      spec: spec as CommandRoute<unknown>,
      what: "handler" in spec ? spec.handler.what : spec.rowHandler.what,
      feeds: new Map(),
      parallel: spec.parallel ?? 1,
      active: 0,
      stopped: false,
      working: new Set(),
      stopping: new AbortController(),
    };
    this.#routes.push(route);
    const add = (feed: CommandFeed): void => {
      route.feeds.set(feed.key, feed);
      this.#byFeed.set(feed.key, route);
      this.#options.reader.addFeed(feed);
    };
    for (const feed of spec.feeds) add(feed);
    return {
      addFeed: add,
      removeFeed: (key) => {
        route.feeds.delete(key);
        this.#byFeed.delete(key);
        this.#options.reader.removeFeed(key);
      },
      stop: async () => {
        route.stopped = true;
        route.stopping.abort(new Error("the agent is stopping"));
        await Promise.allSettled([...route.working]);
      },
      waiting: () => {
        try {
          return this.#options.inbox.pendingIn([...route.feeds.keys()]);
        } catch {
          // The database cannot be read now: the outbox's own status says why.
          return 0;
        }
      },
    };
  }

  /**
   * Reports what a crash cut short in an earlier run, then takes pending commands: called once the
   * capabilities have started (a handler may need its own state from disk first).
   */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    try {
      for (const row of this.#options.inbox.interrupted()) this.#settleInterrupted(row);
    } catch (error) {
      this.#logger.error({ err: error }, "cannot read the commands an earlier run left unfinished; trying later");
      this.#wakeIn(SETTLE_RETRY_MS);
    }
    this.#sweep = this.#timers.every(SWEEP_MS, () => this.wake());
    this.wake();
  }

  /** New commands were stored, or a route has room again: take what is pending. */
  wake(): void {
    if (!this.#started || this.#stopping.signal.aborted) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        this.#pump();
      } while (this.#again);
    } finally {
      this.#pumping = false;
    }
  }

  /** Stops taking commands and aborts the work in progress; waits for it to settle. */
  async stop(): Promise<void> {
    this.#stopping.abort(new Error("the agent is stopping"));
    for (const route of this.#routes) route.stopping.abort(new Error("the agent is stopping"));
    for (const cancel of this.#wakeTimers) cancel();
    this.#wakeTimers.clear();
    this.#settleRetry?.();
    this.#sweep?.();
    await Promise.allSettled(this.#routes.flatMap((route) => [...route.working]));
  }

  /** Commands in the inbox still to do, by route (status). */
  status(): { unsettled: number } {
    return { unsettled: this.#unsettled.length };
  }

  #pump(): void {
    let rows: CommandRow[];
    try {
      rows = this.#options.inbox.ready(1_000);
    } catch (error) {
      this.#logger.warn({ err: error }, "cannot read the command inbox; trying again");
      this.#wakeIn(SETTLE_RETRY_MS);
      return;
    }
    for (const row of rows) {
      const route = this.#byFeed.get(row.feed);
      // A feed nobody takes now (its capability is off) keeps its commands for when one does.
      if (!route || route.stopped || route.active >= route.parallel) continue;
      this.#begin(route, row);
    }
  }

  #begin(route: Route, row: CommandRow): void {
    const handler = "handler" in route.spec ? route.spec.handler : null;
    const waitMs = handler?.notNow?.() ?? null;
    try {
      if (waitMs !== null) {
        this.#options.inbox.retryAt(row.id, this.#options.clock.now() + waitMs);
        this.#wakeIn(waitMs);
        return;
      }
      this.#options.inbox.begin(row.id);
    } catch (error) {
      this.#logger.warn({ err: error, command: row.id }, "cannot mark a command begun; trying again");
      this.#wakeIn(SETTLE_RETRY_MS);
      return;
    }
    route.active += 1;
    const work = this.#run(route, row)
      .catch((error: unknown) => this.#logger.error({ err: error, command: row.id }, "command pipeline failed"))
      .finally(() => {
        route.active -= 1;
        route.working.delete(work);
        this.wake();
      });
    route.working.add(work);
  }

  #delivery(row: CommandRow, route: Route | undefined): CommandDelivery {
    return {
      subject: row.subject,
      stream: row.stream,
      streamSequence: row.streamSequence,
      feed: row.feed,
      attempt: row.attempts + 1,
      // The stream's own name: two command streams may share a sequence number.
      causationId: row.headers[EventHeader.eventId]?.at(-1) || `${row.stream}:${row.streamSequence}`,
      expiresAtMs: expiryOf(row.headers, row.storedAtMs),
      signal: route?.stopping.signal ?? this.#stopping.signal,
    };
  }

  async #run(route: Route, row: CommandRow): Promise<void> {
    const delivery = this.#delivery(row, route);
    const admitted = { serial: null as number | null };
    let outcome: CommandOutcome;
    try {
      outcome = await this.#judgeAndHandle(route, row, delivery, admitted);
    } catch (error) {
      if (route.stopping.signal.aborted) {
        this.#logger.info(
          { causationId: delivery.causationId },
          `${route.what} cut short by the stop; taken again at the next start`,
        );
        outcome = retryAfter(0);
      } else {
        this.#logger.error(
          { err: error, causationId: delivery.causationId },
          `${route.what} failed unexpectedly; trying again`,
        );
        outcome = retryWithBackoff();
      }
    }
    this.#settle({ row, route, outcome, causationId: delivery.causationId, admittedSerial: admitted.serial });
  }

  async #judgeAndHandle(
    route: Route,
    row: CommandRow,
    delivery: CommandDelivery,
    admitted: { serial: number | null },
  ): Promise<CommandOutcome> {
    const spec = route.spec;
    const rejection = (reason: string, raw: unknown): CommandOutcome => {
      const cut = truncateInput(reason, 2_000);
      const result =
        "handler" in spec
          ? spec.handler.rejection(cut, raw, { kind: "refused", causationId: delivery.causationId })
          : spec.rowHandler.refusal(cut, row);
      return reject(cut, result ?? undefined);
    };
    const { expiresAtMs } = delivery;
    if (expiresAtMs !== null && expiresAtMs <= this.#options.clock.now()) {
      // The platform's own command, only late: its report may name what it was (a task's id).
      return rejection(
        `${route.what} expired at ${new Date(expiresAtMs).toISOString()} before it could be taken (Nats-TTL)`,
        parsedOrNull(row.body),
      );
    }
    if (this.#options.inbox.superseded(row) && route.feeds.get(row.feed)?.mode === "latest") {
      return { kind: "done" };
    }
    if (SERVER_ANSWER_HEADERS.some((name) => (row.headers[name]?.length ?? 0) > 1)) {
      return rejection(
        `${route.what} refused: the stored message is a copy of a server's answer (a direct get sent here), not a command the platform sent`,
        null,
      );
    }
    if ("rowHandler" in spec) return spec.rowHandler.handle(row, delivery);
    const { handler } = spec;
    let raw: unknown;
    try {
      raw = JSON.parse(decoder.decode(row.body));
    } catch (error) {
      return rejection(`malformed ${handler.what}: ${(error as Error).message}`, undefined);
    }
    if (spec.requireSignature && !spec.trust?.signing) {
      return rejection(
        `${handler.what} refused: this agent has no configSigningKey, and this command is taken only signed`,
        raw,
      );
    }
    // Before the body is judged: a replayed or moved command must not even be weighed on its merits.
    if (spec.trust) {
      const admission = await spec.trust.admit(raw, { scope: row.subject, ref: `${row.stream}:${row.streamSequence}` });
      if (!admission.admitted) {
        if (admission.retryLater) return retryAfter(TRUST_RETRY_MS);
        return rejection(`${handler.what} refused: ${admission.error}`, raw);
      }
      admitted.serial = admission.serial;
    }
    const parsed = handler.schema.safeParse(raw);
    if (!parsed.success) return rejection(`malformed ${handler.what}: ${describeIssues(parsed.error.issues)}`, raw);
    const refusal = handler.refusalOf?.(parsed.data, delivery) ?? null;
    if (refusal) return refusal.report ? rejection(refusal.reason, raw) : reject(refusal.reason);
    return handler.handle(parsed.data, delivery);
  }

  #settle(pending: PendingSettlement): void {
    const { row, route, outcome, causationId } = pending;
    const { inbox, clock } = this.#options;
    try {
      if (outcome.kind === "retry") {
        const delayMs = outcome.afterMs === "backoff" ? retryDelayMs(row.attempts + 1) : outcome.afterMs;
        inbox.retryAt(row.id, clock.now() + delayMs);
        if (!this.#stopping.signal.aborted) this.#wakeIn(delayMs);
        return;
      }
      let result = outcome.result;
      if (outcome.kind === "reject") {
        this.#logger.error({ causationId, reason: outcome.reason }, `${route.what} refused`);
        if (
          result &&
          FLEET_SUBJECT.test(row.subject) &&
          !this.#limiter.mayAnswer(row.subject, outcome.answerKey ?? reasonKind(outcome.reason), clock.now())
        ) {
          this.#logger.debug(
            { causationId, subject: row.subject },
            "fleet-wide refusal already answered lately: not answered again",
          );
          result = undefined;
        }
      }
      const event = result ? { ...result, causationId } : null;
      inbox.settle(row.id, outcome.kind, event ? this.#options.encode(event) : null);
      if (event) this.#options.stored?.(event);
      const trust = "handler" in route.spec ? route.spec.trust : undefined;
      if (trust && pending.admittedSerial !== null) {
        trust
          .finish(row.subject, pending.admittedSerial)
          .catch((error: unknown) =>
            this.#logger.warn({ err: error, causationId }, "cannot record a signed command as finished"),
          );
      }
    } catch (error) {
      this.#logger.error({ err: error, causationId }, `cannot store the outcome of a ${route.what}; trying again`);
      this.#unsettled.push(pending);
      this.#settleRetry ??= this.#timers.after(SETTLE_RETRY_MS, () => {
        this.#settleRetry = null;
        for (const waiting of this.#unsettled.splice(0)) this.#settle(waiting);
      });
      return;
    }
    if (outcome.kind === "done" && outcome.afterSettled) {
      // Not awaited: that work may stop this agent, and stopping waits for the command in hand.
      void outcome
        .afterSettled()
        .catch((error: unknown) =>
          this.#logger.error({ err: error, causationId }, `the work after a ${route.what} failed`),
        );
    }
  }

  #settleInterrupted(row: CommandRow): void {
    const route = this.#byFeed.get(row.feed);
    const reason =
      "interrupted: the agent stopped unexpectedly (a crash, kill or power loss) while this command ran; it is not run again, so a command that crashes the agent cannot do so for ever: send it again";
    if (route?.spec.interrupted === "retry-once" && row.attempts < 2) {
      this.#logger.warn(
        { command: row.id, feed: row.feed },
        "a command an unexpected stop cut short is taken once more",
      );
      this.#options.inbox.retryAt(row.id, 0);
      return;
    }
    let result: OutgoingEvent | null = null;
    const causationId = this.#delivery(row, route).causationId;
    if (route) {
      const spec = route.spec;
      if ("handler" in spec) {
        result = spec.handler.rejection(`${spec.handler.what} ${reason}`, parsedOrNull(row.body), {
          kind: "interrupted",
          causationId,
        });
      } else {
        result = spec.rowHandler.refusal(`${spec.rowHandler.what} ${reason}`, row);
      }
    }
    this.#logger.error({ causationId, feed: row.feed, attempts: row.attempts }, `command ${reason}`);
    const event = result ? { ...result, causationId } : null;
    this.#options.inbox.settle(row.id, "interrupted", event ? this.#options.encode(event) : null);
    if (event) this.#options.stored?.(event);
  }

  #wakeIn(delayMs: number): void {
    const cancel = this.#timers.after(Math.max(0, delayMs), () => {
      this.#wakeTimers.delete(cancel);
      this.wake();
    });
    this.#wakeTimers.add(cancel);
  }
}
