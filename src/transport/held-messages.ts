import type { JsMsg } from "@nats-io/jetstream";
import type { Cancel, Timers } from "../runtime/clock.ts";
import type { Logger } from "../runtime/logger.ts";

/** How the work on a held message ended. */
export type Settlement =
  | { readonly kind: "ack" }
  | { readonly kind: "nak"; readonly delayMs?: number }
  | { readonly kind: "term" };

/** A message taken from a consumer whose work goes on after the consumer's handler returned. */
export interface HeldMessage {
  /** How many times the server has delivered it (of the newest copy held). */
  readonly deliveryCount: number;
  settle(settlement: Settlement): void;
}

export interface HeldMessagesOptions {
  readonly logger: Logger;
  /** Most messages held at once; `waitForRoom` waits beyond that (default 16). */
  readonly capacity?: number;
  /** The keep-alives beat on these. */
  readonly timers: Timers;
}

/**
 * Messages whose work runs in the background, each kept alive (`working()`, every third of its
 * consumer's ack wait) from the moment it is taken until it is settled, queued or running alike:
 * a long download then never makes the server deliver it again. A copy delivered anyway (it sat
 * in the client's buffer past the ack wait, or the link dropped) is recognised by its stream and
 * sequence: it replaces the copy held, so the settlement goes to the newest delivery, and no
 * second piece of work starts.
 */
export class HeldMessages {
  readonly #logger: Logger;
  readonly #capacity: number;
  readonly #timers: Timers;
  readonly #held = new Map<string, { message: JsMsg; stopBeating: Cancel }>();
  #roomWaiters: Array<() => void> = [];
  #closed = false;

  constructor(options: HeldMessagesOptions) {
    this.#logger = options.logger;
    this.#capacity = options.capacity ?? 16;
    this.#timers = options.timers;
  }

  get size(): number {
    return this.#held.size;
  }

  /**
   * Resolves when fewer than `capacity` messages are held, so the caller takes no more than that
   * from its consumer (the rest stay on the server). Resolves false once closed.
   */
  async waitForRoom(): Promise<boolean> {
    // Each wake-up re-checks: another caller may have taken the room first. Bounded by `close`.
    while (!this.#closed && this.#held.size >= this.#capacity) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
    return !this.#closed;
  }

  /**
   * Holds `message` and keeps it alive. Returns null when it is another delivery of a message
   * already held: that one's work goes on, and will settle this newest copy.
   */
  hold(message: JsMsg, keepAliveEveryMs: number): HeldMessage | null {
    const key = `${message.info.stream}\u0000${message.info.consumer}\u0000${message.seq}`;
    const existing = this.#held.get(key);
    if (existing) {
      existing.message = message;
      this.#logger.info(
        { stream: message.info.stream, seq: message.seq, deliveryCount: message.info.deliveryCount },
        "message delivered again while its work goes on: the work continues once",
      );
      this.#beat(message);
      return null;
    }
    const entry: { message: JsMsg; stopBeating: Cancel } = { message, stopBeating: () => undefined };
    entry.stopBeating = this.#timers.every(keepAliveEveryMs, () => this.#beat(entry.message));
    this.#held.set(key, entry);
    return {
      get deliveryCount() {
        return entry.message.info.deliveryCount;
      },
      settle: (settlement) => {
        if (this.#held.get(key) !== entry) return;
        entry.stopBeating();
        this.#held.delete(key);
        this.#send(entry.message, settlement);
        this.#wakeOne();
      },
    };
  }

  /** Wakes every `waitForRoom`; messages still held stay so until settled. */
  close(): void {
    this.#closed = true;
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #wakeOne(): void {
    this.#roomWaiters.shift()?.();
  }

  #beat(message: JsMsg): void {
    try {
      message.working();
    } catch (error) {
      // The link is down: the server will deliver the message again, and its copy joins this one.
      this.#logger.debug({ err: error, seq: message.seq }, "cannot keep the message alive now");
    }
  }

  #send(message: JsMsg, settlement: Settlement): void {
    try {
      if (settlement.kind === "ack") message.ack();
      else if (settlement.kind === "term") message.term();
      else message.nak(settlement.delayMs);
    } catch (error) {
      // Not settled: the server delivers it again, and the work recognises it was done.
      this.#logger.warn({ err: error, seq: message.seq, settlement: settlement.kind }, "cannot settle the message now");
    }
  }
}
