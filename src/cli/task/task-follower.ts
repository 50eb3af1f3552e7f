import type { ConsumerMessages, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import {
  EventHeader,
  EventType,
  machineIdOfSubject,
  machineSubjects,
  TASK_EVENT_STREAMS,
  TaskOutputChunk,
  TaskResult,
} from "../../contracts/index.ts";
import { readableHeaderValues } from "./readable-headers.ts";

export interface TaskListener {
  chunk(machineId: string, chunk: TaskOutputChunk): void;
  result(machineId: string, result: TaskResult): void;
}

export interface FollowOptions {
  readonly taskId: string;
  /** One machine's subjects, or null for every machine's (a fleet task). */
  readonly machineId: string | null;
  /** Read each stream from the message after this sequence: its head before the task was sent. */
  readonly afterOutputSequence: number;
  readonly afterResultSequence: number;
  readonly listener: TaskListener;
}

/**
 * The machine a stored message is the word of: its subject's, when its one `X-Machine-ID` header
 * names that machine too (the agent sets it on every event; a server's answer stored on a
 * machine's subject carries none). Anything else is nobody's output or end.
 */
export function attributedMachine(subject: string, machineIdHeaders: readonly string[]): string | null {
  const machineId = machineIdOfSubject(subject);
  return machineId !== null && machineIdHeaders.length === 1 && machineIdHeaders[0] === machineId ? machineId : null;
}

/**
 * Follows one task's output chunks (TASK_OUTPUT) and ends (TASK_RESULTS) as the machines send
 * them: an ordered consumer on each stream (nats.js: ephemeral, memory, recreated by the client
 * after a gap or a reconnect), from the heads read before the task was sent, so nothing is missed
 * and nothing older is read. Other tasks' messages are skipped by their `taskId`; a message not
 * attributable to its subject's machine, or not a valid body, is skipped and counted.
 */
export class TaskFollower {
  readonly #js: JetStreamClient;
  readonly #options: FollowOptions;
  readonly #reading: ConsumerMessages[] = [];
  #skipped = 0;

  constructor(js: JetStreamClient, options: FollowOptions) {
    this.#js = js;
    this.#options = options;
  }

  /** Messages skipped as not a machine's own valid output or end. */
  get skipped(): number {
    return this.#skipped;
  }

  async start(): Promise<void> {
    const { machineId } = this.#options;
    const subjects = machineId === null ? null : machineSubjects(machineId);
    this.#reading.push(
      await this.#consume(
        TASK_EVENT_STREAMS.output,
        subjects?.taskOutput ?? `machine.*.${EventType.taskOutput}`,
        this.#options.afterOutputSequence,
        (message, machine) => {
          const chunk = TaskOutputChunk.safeParse(this.#json(message));
          if (!chunk.success) return false;
          if (chunk.data.taskId === this.#options.taskId) this.#options.listener.chunk(machine, chunk.data);
          return true;
        },
      ),
      await this.#consume(
        TASK_EVENT_STREAMS.results,
        subjects?.taskResult ?? `machine.*.${EventType.taskResult}`,
        this.#options.afterResultSequence,
        (message, machine) => {
          const result = TaskResult.safeParse(this.#json(message));
          if (!result.success) return false;
          if (result.data.taskId === this.#options.taskId) this.#options.listener.result(machine, result.data);
          return true;
        },
      ),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.#reading.splice(0).map((messages) => messages.close().catch(() => undefined)));
  }

  async #consume(
    stream: string,
    subject: string,
    afterSequence: number,
    take: (message: JsMsg, machineId: string) => boolean,
  ): Promise<ConsumerMessages> {
    const consumer = await this.#js.consumers.get(stream, {
      filter_subjects: [subject],
      opt_start_seq: afterSequence + 1,
    });
    return consumer.consume({
      max_messages: 512,
      callback: (message) => {
        const machineId = attributedMachine(message.subject, readableHeaderValues(message, EventHeader.machineId));
        if (machineId === null || !take(message, machineId)) this.#skipped += 1;
      },
    });
  }

  #json(message: JsMsg): unknown {
    try {
      return message.json<unknown>();
    } catch {
      return undefined;
    }
  }
}
