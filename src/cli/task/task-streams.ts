import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type StreamInfo } from "@nats-io/jetstream";
import { CommandError, ExitCode } from "../../cli-kit/index.ts";

/** What a task command needs to know of a stream before it sends or reads anything. */
export interface StreamHead {
  readonly name: string;
  /** The newest sequence stored (0: none yet): following starts after it. */
  readonly lastSequence: number;
  readonly allowsMessageTtl: boolean;
}

/**
 * The streams' heads, or one line naming every stream the server lacks and the cure. Asked before
 * a task is sent, so a server without the task streams sends nothing a machine could run unseen.
 */
export async function streamHeads(
  manager: JetStreamManager,
  names: readonly string[],
): Promise<Map<string, StreamHead>> {
  const heads = new Map<string, StreamHead>();
  const missing: string[] = [];
  for (const name of names) {
    let info: StreamInfo;
    try {
      info = await manager.streams.info(name);
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
        missing.push(name);
        continue;
      }
      throw new CommandError(`cannot read stream ${name}: ${(error as Error).message}`, ExitCode.failure, {
        cause: error,
      });
    }
    heads.set(name, {
      name,
      lastSequence: info.state.last_seq,
      allowsMessageTtl: info.config.allow_msg_ttl === true,
    });
  }
  if (missing.length > 0)
    throw new CommandError(
      `the server has no stream ${missing.join(", ")}: run edge-agent dev-setup against it (the platform creates them in production)`,
      ExitCode.failure,
    );
  return heads;
}
