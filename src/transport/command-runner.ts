import { DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { z } from "zod";
import { type ConsumerBinding, EventHeader } from "../contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../events/event-sink.ts";
import { retryDelayMs } from "../runtime/backoff.ts";
import { type Clock, timersOf } from "../runtime/clock.ts";
import { describeIssues, truncateInput } from "../runtime/echo.ts";
import type { Logger } from "../runtime/logger.ts";
import { arrivalOf, type CommandTrust, TRUST_RETRY_MS } from "../trust/index.ts";
import { consumeDurable, type DurableConsumer } from "./durable-consumer.ts";
import { type HeldMessage, HeldMessages, type Settlement } from "./held-messages.ts";

/**
 * How a command's work ended, as the handler says it:
 * - `done`: acked, after its result (if any) is stored;
 * - `retry`: delivered again after `afterMs` (0: at once), or after the delivery count's backoff;
 * - `reject`: it can never work: its result is stored, then it is terminated (no redelivery).
 * term() goes without a reason: nats-server 2.9 does not parse "+TERM <reason>" and would leave the
 * message pending. The reason is in the result and the log instead.
 */
export type CommandOutcome =
  | { readonly kind: "done"; readonly result?: OutgoingEvent; readonly afterSettled?: () => Promise<void> }
  | { readonly kind: "retry"; readonly afterMs: number | "backoff" }
  | { readonly kind: "reject"; readonly reason: string; readonly result?: OutgoingEvent };

export const done = (result?: OutgoingEvent): CommandOutcome => (result ? { kind: "done", result } : { kind: "done" });
/**
 * Done, and `next` runs once the command is settled (its result stored and the message acked):
 * for work that ends this agent (an uninstall), which must not start before the platform's copy is.
 */
export const doneThen = (result: OutgoingEvent, next: () => Promise<void>): CommandOutcome => ({
  kind: "done",
  result,
  afterSettled: next,
});
/** Delivered again after `afterMs` (0: at once, e.g. work cut short by a stop). */
export const retryAfter = (afterMs: number): CommandOutcome => ({ kind: "retry", afterMs });
/** Delivered again after 5 s doubling per delivery, at most 5 min (runtime/backoff.ts). */
export const retryWithBackoff = (): CommandOutcome => ({ kind: "retry", afterMs: "backoff" });
export const reject = (reason: string, result?: OutgoingEvent): CommandOutcome =>
  result ? { kind: "reject", reason, result } : { kind: "reject", reason };

/** One delivery of a command, as a handler sees it. */
export interface CommandDelivery {
  readonly subject: string;
  readonly stream: string;
  readonly deliveryCount: number;
  /** The command's event id (`X-Event-ID`), else `<stream>:<seq>`: every result carries it. */
  readonly causationId: string;
  /** Aborted when the runner stops: long work (a download) ends, and is delivered again to the next run. */
  readonly signal: AbortSignal;
}

export interface CommandHandler<Command> {
  /** How refusals name the command: "malformed <what>: …", "<what> refused: …". */
  readonly what: string;
  readonly schema: z.ZodType<Command>;
  /**
   * Asked first, before even the signature is checked (so no serial mark is spent): milliseconds
   * to wait before taking commands again (e.g. a restart is pending), or null to go on.
   */
  notNow?(): number | null;
  /** Why a well-formed command cannot be taken beyond its schema, or null; `report: false` only logs it. */
  refusalOf?(command: Command, delivery: CommandDelivery): { readonly reason: string; readonly report: boolean } | null;
  /** The work. A throw is retried with backoff (at once when the runner is stopping). */
  handle(command: Command, delivery: CommandDelivery): Promise<CommandOutcome>;
  /** The result that reports a refusal (malformed, untrusted), given the raw body; null reports none. */
  rejection(reason: string, raw: unknown): OutgoingEvent | null;
}

export interface CommandSource {
  readonly binding: ConsumerBinding;
  readonly deliverPolicy?: DeliverPolicy;
  /** Ack wait for a consumer the runner creates (default 60 s); the work in progress keeps it alive. */
  readonly ackWaitMs?: number;
}

export interface CommandRunnerOptions<Command> {
  readonly sources: readonly CommandSource[];
  readonly handler: CommandHandler<Command>;
  readonly sink: EventSink;
  readonly logger: Logger;
  /**
   * Signature, scope (the exact subject) and rising serial of every command, checked before its
   * body is judged. Without a signing key it admits everything, unless `requireSignature`.
   */
  readonly trust?: CommandTrust;
  /** Refuse every command when no signing key is configured (commands too dangerous to take unsigned). */
  readonly requireSignature?: boolean;
  /**
   * Commands worked on side by side (default 1: one at a time, in order). Above 1, the consumer
   * hands over the next command while earlier ones run; more than this wait on the server.
   */
  readonly parallel?: number;
  /** The keep-alives and the consumers' retries run on its timers. */
  readonly clock: Clock;
}

export interface CommandRunner {
  /** The link is up: bind the consumers (once; they follow reconnects themselves). */
  attach(connection: NatsConnection): void;
  /** Stops taking commands and aborts the work in progress; waits for the one being handed over. */
  stop(): Promise<void>;
}

/**
 * The one pipeline every command from the platform goes through: it takes the message from its
 * durable consumer, keeps it alive (`working()`) for as long as its work runs, parses the JSON,
 * checks the signature and the schema, runs the handler, stores the result with the command's
 * causation id, and settles the message the way the outcome says. A copy delivered again while its
 * work runs joins that work (held-messages.ts): the work never runs twice at once.
 */
export function createCommandRunner<Command>(options: CommandRunnerOptions<Command>): CommandRunner {
  const { handler, logger, sink } = options;
  const parallel = options.parallel ?? 1;
  const held = new HeldMessages({ logger, capacity: parallel, timers: timersOf(options.clock) });
  const stopping = new AbortController();
  const consumers: DurableConsumer[] = [];
  let attached = false;

  const store = async (result: OutgoingEvent | undefined, causationId: string): Promise<void> => {
    if (result) await sink.emit({ ...result, causationId });
  };

  const settle = async (work: HeldMessage, outcome: CommandOutcome, causationId: string): Promise<void> => {
    let settlement: Settlement;
    try {
      if (outcome.kind === "retry") {
        const delayMs = outcome.afterMs === "backoff" ? retryDelayMs(work.deliveryCount) : outcome.afterMs;
        settlement = delayMs > 0 ? { kind: "nak", delayMs } : { kind: "nak" };
      } else {
        if (outcome.kind === "reject")
          logger.error({ causationId, reason: outcome.reason }, `${handler.what} refused: terminated`);
        await store(outcome.result, causationId);
        settlement = { kind: outcome.kind === "done" ? "ack" : "term" };
      }
    } catch (error) {
      // The result is not stored: the command comes back, and its handler recognises work done.
      logger.error({ err: error, causationId }, `cannot store the result of a ${handler.what}; it is delivered again`);
      settlement = { kind: "nak", delayMs: retryDelayMs(work.deliveryCount) };
    }
    work.settle(settlement);
    if (outcome.kind === "done" && outcome.afterSettled && settlement.kind === "ack") {
      // Not awaited: that work may stop this agent, and stopping waits for the command in hand.
      void outcome
        .afterSettled()
        .catch((error: unknown) =>
          logger.error({ err: error, causationId }, `the work after a ${handler.what} failed`),
        );
    }
  };

  const run = async (command: Command, delivery: CommandDelivery): Promise<CommandOutcome> => {
    try {
      return await handler.handle(command, delivery);
    } catch (error) {
      if (stopping.signal.aborted) {
        logger.info(
          { causationId: delivery.causationId },
          `${handler.what} cut short by the stop; the server delivers it again`,
        );
        return retryAfter(0);
      }
      logger.error(
        { err: error, causationId: delivery.causationId },
        `${handler.what} failed unexpectedly; it is delivered again`,
      );
      return retryWithBackoff();
    }
  };

  /** Everything up to the handler; a refusal here is final. */
  const admit = async (message: JsMsg, delivery: CommandDelivery): Promise<{ command: Command } | CommandOutcome> => {
    const refuse = (reason: string, raw: unknown): CommandOutcome => {
      const cut = truncateInput(reason, 2_000);
      return reject(cut, handler.rejection(cut, raw) ?? undefined);
    };
    let raw: unknown;
    try {
      raw = message.json<unknown>();
    } catch (error) {
      return refuse(`malformed ${handler.what}: ${(error as Error).message}`, undefined);
    }
    if (options.requireSignature && !options.trust?.signing) {
      return refuse(
        `${handler.what} refused: this agent has no configSigningKey, and this command is taken only signed`,
        raw,
      );
    }
    // Before the body is judged: a replayed or moved command must not even be weighed on its merits.
    const admission = options.trust
      ? await options.trust.admit(raw, arrivalOf(message))
      : ({ admitted: true } as const);
    if (!admission.admitted) {
      if (admission.retryLater) return retryAfter(TRUST_RETRY_MS);
      return refuse(`${handler.what} refused: ${admission.error}`, raw);
    }
    const parsed = handler.schema.safeParse(raw);
    if (!parsed.success) return refuse(`malformed ${handler.what}: ${describeIssues(parsed.error.issues)}`, raw);
    const refusal = handler.refusalOf?.(parsed.data, delivery) ?? null;
    if (refusal) {
      if (!refusal.report) return reject(refusal.reason);
      return refuse(refusal.reason, raw);
    }
    return { command: parsed.data };
  };

  const take = async (message: JsMsg, keepAliveEveryMs: number): Promise<void> => {
    const waitMs = handler.notNow?.() ?? null;
    if (waitMs !== null) {
      message.nak(waitMs);
      return;
    }
    // Taken no faster than the work drains: the rest wait on the server, not in this process.
    // Stopping, it is left unsettled: the server delivers it again to the next run.
    if (!(await held.waitForRoom())) return;
    const work = held.hold(message, keepAliveEveryMs);
    if (!work) return;
    const delivery: CommandDelivery = {
      subject: message.subject,
      stream: message.info.stream,
      get deliveryCount() {
        return work.deliveryCount;
      },
      // The stream's own name: two command streams may share a sequence number.
      causationId: message.headers?.get(EventHeader.eventId) || `${message.info.stream}:${message.seq}`,
      signal: stopping.signal,
    };
    const whole = async (): Promise<void> => {
      const admitted = await admit(message, delivery).catch((error: unknown): CommandOutcome => {
        logger.error(
          { err: error, causationId: delivery.causationId },
          `cannot weigh a ${handler.what}; it is delivered again`,
        );
        return retryWithBackoff();
      });
      const outcome = "command" in admitted ? await run(admitted.command, delivery) : admitted;
      await settle(work, outcome, delivery.causationId);
    };
    // One at a time: the consumer waits. Side by side: it hands over the next command meanwhile.
    if (parallel === 1) await whole();
    else void whole();
  };

  return {
    attach(connection) {
      if (attached || stopping.signal.aborted) return;
      attached = true;
      for (const source of options.sources) {
        consumers.push(
          consumeDurable({
            connection,
            ...source.binding,
            deliverPolicy: source.deliverPolicy ?? DeliverPolicy.All,
            ...(source.ackWaitMs ? { ackWaitMs: source.ackWaitMs } : {}),
            logger,
            clock: options.clock,
            handle: take,
          }),
        );
      }
    },
    async stop() {
      stopping.abort(new Error("the agent is stopping"));
      held.close();
      await Promise.all(consumers.map((consumer) => consumer.stop()));
    },
  };
}
