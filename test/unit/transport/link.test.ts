import type { NatsConnection } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { type ConnectionFactory, createNatsLink, type NatsLinkOptions } from "../../../src/transport/link.ts";
import { type ManualClock, manualClock, settle } from "../../helpers/manual-clock.ts";

/** Far longer than a test runs: only the manual clock can bring it. */
const LONG_MS = 600_000;

function linkOn(clock: ManualClock, factory: ConnectionFactory): ReturnType<typeof createNatsLink> {
  const options: NatsLinkOptions = {
    connectionOptions: () => ({ servers: ["nats://127.0.0.1:1"] }),
    factory,
    logger: silentLogger(),
    clock,
    resetBackoff: () => undefined,
    nextRetryDelayMs: () => LONG_MS,
    observer: {
      connected: () => undefined,
      disconnected: () => undefined,
      reconnected: () => undefined,
      lost: () => undefined,
    },
  };
  return createNatsLink(options);
}

/**
 * A client connection whose drain never ends (a server that stopped answering): the one way to
 * reach the link's drain deadline. Only what the link calls is there.
 */
function connectionThatNeverDrains(): { connection: NatsConnection; closedByLink: () => boolean } {
  let closed = false;
  const never = new Promise<never>(() => undefined);
  const connection = {
    getServer: () => "127.0.0.1:4222",
    isClosed: () => closed,
    drain: () => never,
    close: async () => {
      closed = true;
    },
    closed: () => never,
    // A status stream that never says anything: its first `next()` never settles.
    status: () => ({ [Symbol.asyncIterator]: () => ({ next: () => never }) }),
  };
  return { connection: connection as unknown as NatsConnection, closedByLink: () => closed };
}

describe("NATS link on the injected clock", () => {
  it("tries the first connect again only when the injected clock reaches the retry delay, and stops waiting when closed", async () => {
    const clock = manualClock();
    let attempts = 0;
    const link = linkOn(clock, async () => {
      attempts += 1;
      throw new Error("connection refused");
    });
    link.start();
    await settle();
    expect(attempts).toBe(1);
    clock.advance(LONG_MS - 1);
    await settle();
    expect(attempts).toBe(1);
    clock.advance(1);
    await settle();
    expect(attempts).toBe(2);
    expect(link.lastError).toBe("connection refused");
    await link.close(1_000);
    expect(clock.pending).toBe(0);
    expect(link.state).toBe("closed");
  });

  it("gives up on a drain that never ends once the injected clock passes the close deadline", async () => {
    const clock = manualClock();
    const { connection, closedByLink } = connectionThatNeverDrains();
    const link = linkOn(clock, async () => connection);
    link.start();
    await settle();
    expect(link.state).toBe("connected");
    let closeDone = false;
    void link.close(LONG_MS).then(() => (closeDone = true));
    await settle();
    clock.advance(LONG_MS - 1);
    await settle();
    expect(closeDone).toBe(false);
    clock.advance(1);
    await settle();
    expect(closeDone).toBe(true);
    expect(closedByLink()).toBe(true);
    expect(link.state).toBe("closed");
  });
});
