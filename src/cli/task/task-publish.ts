import { JetStreamApiError, type JetStreamClient } from "@nats-io/jetstream";
import { errors as natsErrors, headers as natsHeaders } from "@nats-io/transport-node";
import { CommandError, ExitCode } from "../../cli-kit/index.ts";
import { EventHeader } from "../../contracts/index.ts";
import type { Clock } from "../../runtime/index.ts";
import { signCommand } from "../../trust/index.ts";
import { natsTtlOf } from "./task-units.ts";

/** nats-server's JSMessageTTLDisabledErr: a `Nats-TTL` on a stream without `allow_msg_ttl`. */
const MESSAGE_TTL_DISABLED = 10166;

export interface CommandToSend {
  readonly subject: string;
  readonly stream: string;
  readonly body: Record<string, unknown>;
  /** How long it may wait for its machine: `Nats-TTL`, and the signed `expiresAt`. */
  readonly ttlMs: number;
  /** The NKey seed of the key agents trust; without it the command goes unsigned. */
  readonly signingSeed?: Uint8Array;
  /** The command's event id: `Nats-Msg-Id` and `X-Event-ID`, which the machine's result names as its causation. */
  readonly eventId: string;
}

export interface SentCommand {
  readonly subject: string;
  readonly stream: string;
  readonly sequence: number;
  /** The stream already held this very message (the same event id within its duplicate window). */
  readonly duplicate: boolean;
  readonly eventId: string;
  readonly signed: boolean;
  readonly expiresAt: string;
}

/**
 * Publishes a platform command as the platform does: signed for its subject (scope), serial = the
 * clock's milliseconds, `expiresAt` = now + ttl; with `Nats-TTL` (the server removes it once the
 * machine could no longer take it; an agent refuses it past that too, on servers that keep it).
 */
export async function sendCommand(js: JetStreamClient, command: CommandToSend, clock: Clock): Promise<SentCommand> {
  const nowMs = clock.now();
  const expiresAt = new Date(nowMs + command.ttlMs).toISOString();
  const document = command.signingSeed
    ? signCommand(command.body, { scope: command.subject, serial: nowMs, expiresAt }, command.signingSeed)
    : command.body;
  const headers = natsHeaders();
  headers.set(EventHeader.eventId, command.eventId);
  headers.set(EventHeader.correlationId, command.eventId);
  headers.set(EventHeader.timestamp, new Date(nowMs).toISOString());
  const payload = new TextEncoder().encode(JSON.stringify(document));
  try {
    const ack = await js.publish(command.subject, payload, {
      msgID: command.eventId,
      headers,
      ttl: natsTtlOf(command.ttlMs),
      timeout: 5_000,
    });
    return {
      subject: command.subject,
      stream: ack.stream,
      sequence: ack.seq,
      duplicate: ack.duplicate,
      eventId: command.eventId,
      signed: command.signingSeed !== undefined,
      expiresAt,
    };
  } catch (error) {
    throw sendError(error, command, payload.length);
  }
}

function sendError(error: unknown, command: CommandToSend, bytes: number): CommandError {
  const reason = error instanceof Error ? error.message : String(error);
  const failed = (message: string, code: number = ExitCode.failure): CommandError =>
    new CommandError(message, code, { cause: error });
  if (error instanceof JetStreamApiError && error.code === MESSAGE_TTL_DISABLED)
    return failed(
      `stream ${command.stream} does not take a per-message TTL (allow_msg_ttl is off): run edge-agent dev-setup, which switches it on, or have the platform do so`,
    );
  // On a publish with a timeout and no reply subject, nats.js refuses one argument only: a payload
  // over the server's max_payload (see transport/jetstream-publisher.ts).
  if (error instanceof natsErrors.InvalidArgumentError)
    return failed(`the task is ${bytes} bytes, over the server's max_payload: ${reason}`, ExitCode.badSettings);
  if (error instanceof natsErrors.PermissionViolationError)
    return failed(`not allowed to publish ${command.subject}: ${reason}`);
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof natsErrors.RequestError && cause.isNoResponders())
    return failed(
      `no stream stores ${command.subject} (or JetStream is off): run edge-agent dev-setup against this server`,
    );
  return failed(`cannot send to ${command.subject}: ${reason}`);
}
