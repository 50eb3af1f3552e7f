import { rm } from "node:fs/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as z from "zod";
import { done } from "../../../src/capability/index.ts";
import { COMMAND_STREAMS, type CommandFeed, taskFeeds } from "../../../src/contracts/index.ts";
import { startTestCommands, type TestCommands } from "../../helpers/command-desk.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const Numbered = z.object({ n: z.number() });

/**
 * A `sequence` feed (the fleet's tasks): every message after the position, in order, by direct gets
 * of the next message (`next_by_subj`), with no consumer, however long the backlog.
 */
describe("a sequence feed: every message after its position, in order, without a consumer", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let agentLink: NatsConnection;
  let commands: TestCommands;
  let taken: number[];
  const feed: CommandFeed = taskFeeds("s1").fleetTask;

  const start = async (dataDir?: string): Promise<void> => {
    commands = await startTestCommands({ machineId: "s1", ...(dataDir ? { dataDir } : {}) });
    commands.commands.route({
      feeds: [feed],
      handler: {
        what: "numbered",
        schema: Numbered,
        rejection: () => null,
        handle: async (command) => {
          taken.push(command.n);
          return done();
        },
      },
    });
    agentLink = await connect({ servers: server.url, inboxPrefix: "_INBOX_s1" });
    commands.attach(agentLink);
    await waitFor("the feed's first read", () => commands.outbox.commands.position(feed.key) !== null);
  };
  const publish = async (from: number, count: number): Promise<void> => {
    const js = jetstream(operator);
    for (let n = from; n < from + count; n++) await js.publish(feed.subject, JSON.stringify({ n }));
  };
  const consumers = async (): Promise<string[]> => {
    const names: string[] = [];
    for await (const consumer of (await jetstreamManager(operator)).consumers.list(COMMAND_STREAMS.fleetTasks))
      names.push(consumer.name);
    return names;
  };

  beforeEach(async () => {
    server = await startNatsServer();
    operator = await connect({ servers: server.url });
    await createPlatformStreams(operator);
    taken = [];
  });

  afterEach(async () => {
    await commands.stop();
    await rm(commands.dataDir, { recursive: true, force: true });
    await agentLink.close();
    await operator.close();
    await server.dispose();
  });

  it("starts after what was stored before its first read, then takes a long backlog in order, each once", async () => {
    await publish(0, 3);
    await start();
    await publish(10, 2);
    await waitFor("what came after its first read", () => taken.length === 2);
    // Away while 150 arrive: more than one check reads (64 each), the rest follows at once.
    await commands.stop({ keepDataDir: true });
    await agentLink.close();
    await publish(100, 150);
    await start(commands.dataDir);
    await waitFor("the whole backlog", () => taken.length === 152);
    expect(taken).toEqual([10, 11, ...Array.from({ length: 150 }, (_, index) => 100 + index)]);
    expect(await consumers()).toEqual([]);
    // The cancel subject shares the stream: its messages are not this feed's.
    await jetstream(operator).publish(taskFeeds("s1").fleetTaskCancel.subject, JSON.stringify({ n: -1 }));
    await publish(300, 1);
    await waitFor("the next one", () => taken.at(-1) === 300);
    expect(taken).not.toContain(-1);
  });

  it("reads a stream made anew (its sequences starting again) from its start", async () => {
    await start();
    await publish(0, 5);
    await waitFor("the first five", () => taken.length === 5);
    const manager = await jetstreamManager(operator);
    const { config } = await manager.streams.info(COMMAND_STREAMS.fleetTasks);
    await manager.streams.delete(COMMAND_STREAMS.fleetTasks);
    await manager.streams.add(config);
    await publish(10, 2);
    await waitFor("the new stream's messages", () => taken.length === 7, 20_000);
    expect(taken).toEqual([0, 1, 2, 3, 4, 10, 11]);
  });
});
