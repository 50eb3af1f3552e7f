import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { EventHeader, EventType } from "../../../src/contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../../../src/events/event-sink.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import {
  type CommandRunner,
  createCommandRunner,
  done,
  reject,
  retryAfter,
} from "../../../src/transport/command-runner.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const Command = z.object({ step: z.enum(["done", "retry-once", "reject", "throw-once"]) });

describe("the command runner", () => {
  let server: NatsServerHandle;
  let connection: NatsConnection;
  let runner: CommandRunner;
  const stored: OutgoingEvent[] = [];
  const sink: EventSink = {
    emit: async (event) => {
      stored.push(event);
      return { eventId: `e${stored.length}`, sequence: stored.length };
    },
  };
  const status = (error: string | null): OutgoingEvent => ({
    type: EventType.configStatus,
    body: { revision: null, status: error ? "REJECTED" : "APPLIED", error, timestamp: "2026-11-22T10:00:00Z" },
  });
  const deliveries = new Map<string, number>();

  const pending = async (): Promise<number> => {
    const info = await (await jetstreamManager(connection)).consumers.info("CMDS", "worker");
    return info.num_ack_pending + info.num_pending;
  };
  const send = async (eventId: string, body: string): Promise<void> => {
    const commandHeaders = headers();
    commandHeaders.set(EventHeader.eventId, eventId);
    await jetstream(connection).publish("cmd.m1", body, { headers: commandHeaders });
  };

  beforeEach(async () => {
    server = await startNatsServer();
    connection = await connect({ servers: server.url });
    await (await jetstreamManager(connection)).streams.add({ name: "CMDS", subjects: ["cmd.>"] });
    stored.length = 0;
    deliveries.clear();
    runner = createCommandRunner({
      sources: [{ binding: { stream: "CMDS", name: "worker", filterSubject: "cmd.m1" } }],
      sink,
      logger: silentLogger(),
      clock: systemClock,
      handler: {
        what: "test command",
        schema: Command,
        rejection: (reason) => status(reason),
        async handle(command, delivery) {
          const count = (deliveries.get(delivery.causationId) ?? 0) + 1;
          deliveries.set(delivery.causationId, count);
          if (command.step === "reject") return reject("no, never", status("no, never"));
          if (command.step === "retry-once" && count === 1) return retryAfter(100);
          if (command.step === "throw-once" && count === 1) throw new Error("surprise");
          return done(status(null));
        },
      },
    });
    runner.attach(connection);
  });

  afterEach(async () => {
    await runner.stop();
    await connection.close();
    await server.dispose();
  });

  it("stores each result with the command's causation id and settles it as the handler said", async () => {
    await send("c-done", JSON.stringify({ step: "done" }));
    await send("c-retry", JSON.stringify({ step: "retry-once" }));
    await send("c-reject", JSON.stringify({ step: "reject" }));
    await send("c-malformed", JSON.stringify({ step: "dance" }));
    await send("c-not-json", "{");
    await waitFor("five results", () => stored.length === 5);
    await waitFor("every command settled", async () => (await pending()) === 0);
    const byCause = Object.fromEntries(
      stored.map((event) => [event.causationId, event.type === EventType.configStatus ? event.body.error : "?"]),
    );
    expect(byCause).toEqual({
      "c-done": null,
      "c-retry": null,
      "c-reject": "no, never",
      "c-malformed": expect.stringMatching(/^malformed test command: step: /),
      "c-not-json": expect.stringMatching(/^malformed test command: /),
    });
    // Retried once through the server, then done; a refusal is never handed over again.
    expect(deliveries.get("c-retry")).toBe(2);
    expect(deliveries.get("c-reject")).toBe(1);
    expect(deliveries.has("c-malformed")).toBe(false);
  });

  it("delivers a command whose handler threw again (with backoff), and stores nothing for the failed try", async () => {
    await send("c-throw", JSON.stringify({ step: "throw-once" }));
    await waitFor("the first try", () => deliveries.get("c-throw") === 1);
    expect(stored).toEqual([]);
    // The backoff after a first failure is 5 s.
    await waitFor("the second try, done", () => stored.length === 1, 15_000);
    expect(stored[0]).toMatchObject({ causationId: "c-throw" });
    await waitFor("settled", async () => (await pending()) === 0);
  });
});
