import { connect as tcpConnect } from "node:net";
import { NoRespondersError, TimeoutError } from "@nats-io/nats-core";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import {
  AGENT_CONFIG_STREAM,
  agentFeeds,
  type CommandFeed,
  catchUpConsumerName,
  EventType,
  machineSubjects,
  PLATFORM_STREAMS,
  SERVICE_NAME,
  subjectFor,
} from "../../contracts/index.ts";
import { isPermissionDenied } from "../../transport/index.ts";
import { subjectMatcher } from "../subject-pattern.ts";
import type { ServerTimeSample } from "./clock-skew.ts";

const PROBE_TIMEOUT_MS = 3_000;
/** A stream name no stream has: a publish expecting it is refused by the stream that would store it. */
const NO_SUCH_STREAM = "EDGE_AGENT_DOCTOR_PROBE";
/** JetStream's error codes the probes read (nats-server's `jsApiErrors`). */
const JS_CONSUMER_NOT_FOUND = 10_014;
const JS_STREAM_NOT_FOUND = 10_059;
const JS_STREAM_MISMATCH = 10_060;

/** How one probe of one subject went. */
export type ProbeOutcome =
  | { readonly kind: "allowed"; readonly stream?: string }
  | { readonly kind: "denied" }
  | { readonly kind: "no-stream"; readonly stream?: string }
  | { readonly kind: "no-answer"; readonly detail: string };

export interface Probe {
  /** The feature the subject serves, as the report names it. */
  readonly feature: "events" | "commands" | "remote config" | "rpc and discovery" | "inbox";
  /** `publish` or `subscribe`, and the subject: what a permission names. */
  readonly operation: "publish" | "subscribe";
  readonly subject: string;
  readonly outcome: ProbeOutcome;
}

export interface ProbeReport {
  readonly probes: readonly Probe[];
  readonly serverTimes: readonly ServerTimeSample[];
}

/** Whether a TCP connection to `host:port` opens within the timeout; the error otherwise. */
export function tcpReachable(host: string, port: number, timeoutMs = PROBE_TIMEOUT_MS): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (problem: string | null): void => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer in ${timeoutMs} ms`));
    socket.once("connect", () => done(null));
    socket.once("error", (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
}

/** Host and port of a server URL, with each scheme's default port. */
export function hostAndPort(server: string): { host: string; port: number } {
  const url = new URL(server);
  const defaults: Record<string, number> = { "nats:": 4222, "tls:": 4222, "ws:": 80, "wss:": 443 };
  return {
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port === "" ? (defaults[url.protocol] ?? 4222) : Number(url.port),
  };
}

interface JsApiAnswer {
  readonly error?: { readonly err_code?: number; readonly description?: string };
  readonly stream?: string;
  readonly ts?: string;
}

/** A request's fate: the answer's JSON, or why there was none. */
async function ask(
  connection: NatsConnection,
  subject: string,
  body: string,
  headers?: ReturnType<typeof natsHeaders>,
): Promise<{ answer: JsApiAnswer; sentMs: number; receivedMs: number } | ProbeOutcome> {
  const sentMs = Date.now();
  try {
    const reply = await connection.request(subject, body, {
      timeout: PROBE_TIMEOUT_MS,
      ...(headers ? { headers } : {}),
    });
    const receivedMs = Date.now();
    let answer: JsApiAnswer = {};
    try {
      answer = reply.data.length === 0 ? {} : (reply.json() as JsApiAnswer);
    } catch {
      // A direct get answers with the stored message itself: an answer all the same.
    }
    return { answer, sentMs, receivedMs };
  } catch (error) {
    if (isPermissionDenied(error)) return { kind: "denied" };
    if (causedBy(error, NoRespondersError)) return { kind: "no-stream" };
    if (causedBy(error, TimeoutError)) return { kind: "no-answer", detail: `no answer in ${PROBE_TIMEOUT_MS} ms` };
    return { kind: "no-answer", detail: (error as Error).message };
  }
}

function causedBy(error: unknown, type: abstract new (...args: never[]) => Error): boolean {
  for (
    let current: unknown = error, depth = 0;
    current instanceof Error && depth < 4;
    current = (current as Error).cause, depth++
  ) {
    if (current instanceof type) return true;
  }
  return false;
}

/** The platform stream meant to take `subject` (for naming a missing one). */
export function streamFor(subject: string): string | undefined {
  return PLATFORM_STREAMS.find((stream) => stream.subjects.some((pattern) => subjectMatcher(pattern)(subject)))?.name;
}

/**
 * Publishing an event, tried without storing one: the publish expects a stream that does not
 * exist, so the stream that would store it refuses it and names itself (10060). A permission
 * refusal, or no stream at all (no responders), shows the same way the agent would meet it.
 */
async function probeEventPublish(connection: NatsConnection, subject: string): Promise<Probe> {
  const headers = natsHeaders();
  headers.set("Nats-Expected-Stream", NO_SUCH_STREAM);
  const result = await ask(connection, subject, "", headers);
  const base = { feature: "events", operation: "publish", subject } as const;
  if ("kind" in result)
    return {
      ...base,
      outcome: result.kind === "no-stream" ? { kind: "no-stream", ...optionalStream(streamFor(subject)) } : result,
    };
  const code = result.answer.error?.err_code;
  if (code === JS_STREAM_MISMATCH)
    return { ...base, outcome: { kind: "allowed", ...optionalStream(result.answer.stream) } };
  return { ...base, outcome: { kind: "no-answer", detail: `unexpected answer ${JSON.stringify(result.answer)}` } };
}

const optionalStream = (stream: string | undefined): { stream?: string } => (stream === undefined ? {} : { stream });

/** Reads each probe's answer for the server's time (`ts`, nats-server 2.10+). */
function serverTimeOf(
  result: { answer: JsApiAnswer; sentMs: number; receivedMs: number },
  source: string,
): ServerTimeSample | null {
  const serverMs = result.answer.ts === undefined ? Number.NaN : Date.parse(result.answer.ts);
  return Number.isFinite(serverMs) ? { serverMs, sentMs: result.sentMs, receivedMs: result.receivedMs, source } : null;
}

/**
 * Subscribing, tried for real: nats-server answers a refused subscription with an error that
 * nats.js hands to the subscription before the flush returns. Nothing is answered meanwhile.
 */
async function probeSubscribe(connection: NatsConnection, feature: Probe["feature"], subject: string): Promise<Probe> {
  let denied = false;
  const subscription = connection.subscribe(subject, {
    callback: (error) => {
      if (error && isPermissionDenied(error)) denied = true;
    },
  });
  try {
    await connection.flush();
  } finally {
    subscription.unsubscribe();
  }
  return { feature, operation: "subscribe", subject, outcome: denied ? { kind: "denied" } : { kind: "allowed" } };
}

/**
 * Tries, as this identity and without side effects, every subject and consumer the agent uses
 * (the set `src/identity/permissions.ts` grants). Not tried, because a probe would act for real:
 * the heartbeat (a probe would be a beat), taking the next message of a consumer and acking
 * (either would take a real command), answering requests (`allow_responses`).
 */
export async function probeAgentRights(
  connection: NatsConnection,
  machineId: string,
  inboxPrefix: string,
): Promise<ProbeReport> {
  const subjects = machineSubjects(machineId);
  const serverTimes: ServerTimeSample[] = [];

  const events = Object.values(EventType).map((type) => probeEventPublish(connection, subjectFor(subjects, type)));

  const feeds = agentFeeds(machineId);
  const featureOf = (feed: CommandFeed): Probe["feature"] =>
    feed.stream === AGENT_CONFIG_STREAM ? "remote config" : "commands";
  // A direct get of the feed's newest message: answered (a message, or 404 none) proves the right; no
  // responder means the stream is missing (or does not allow direct gets).
  const feedReads = feeds.map(async (feed): Promise<Probe> => {
    const subject = `$JS.API.DIRECT.GET.${feed.stream}.${feed.subject}`;
    const result = await ask(connection, subject, "");
    const outcome: ProbeOutcome =
      "kind" in result
        ? result.kind === "no-stream"
          ? { kind: "no-stream", stream: feed.stream }
          : result
        : { kind: "allowed", stream: feed.stream };
    return { feature: featureOf(feed), operation: "publish", subject, outcome };
  });
  // A sequence feed's read of the next message, asked in the body: any answer (a message, or 404 none).
  const sequenceReads = [
    ...new Map(feeds.filter((feed) => feed.mode === "sequence").map((feed) => [feed.stream, feed])),
  ].map(async ([stream, feed]): Promise<Probe> => {
    const subject = `$JS.API.DIRECT.GET.${stream}`;
    const result = await ask(connection, subject, JSON.stringify({ seq: 1, next_by_subj: feed.subject }));
    const outcome: ProbeOutcome =
      "kind" in result
        ? result.kind === "no-stream"
          ? { kind: "no-stream", stream }
          : result
        : { kind: "allowed", stream };
    return { feature: "commands", operation: "publish", subject, outcome };
  });
  // A catch-up consumer's info (not found is an answer: the right is there) and creation with an empty
  // body (refused by JetStream, which names no stream in it: nothing is created).
  const reader = catchUpConsumerName(machineId);
  const catchUps = feeds
    .filter((feed) => feed.mode === "queue")
    .flatMap((feed) => {
      const info = async (): Promise<Probe> => {
        const subject = `$JS.API.CONSUMER.INFO.${feed.stream}.${reader}`;
        const result = await ask(connection, subject, "");
        if ("kind" in result) return { feature: "commands", operation: "publish", subject, outcome: result };
        const sample = serverTimeOf(result, `the answer to ${subject}`);
        if (sample) serverTimes.push(sample);
        const code = result.answer.error?.err_code;
        const outcome: ProbeOutcome =
          code === JS_STREAM_NOT_FOUND
            ? { kind: "no-stream", stream: feed.stream }
            : code === undefined || code === JS_CONSUMER_NOT_FOUND
              ? { kind: "allowed", stream: feed.stream }
              : { kind: "no-answer", detail: result.answer.error?.description ?? `error ${code}` };
        return { feature: "commands", operation: "publish", subject, outcome };
      };
      const create = async (): Promise<Probe> => {
        const subject = `$JS.API.CONSUMER.CREATE.${feed.stream}.${reader}.${feed.subject}`;
        const result = await ask(connection, subject, "{}");
        return {
          feature: "commands",
          operation: "publish",
          subject,
          outcome: "kind" in result ? result : { kind: "allowed" },
        };
      };
      return [info(), create()];
    });

  const rpc = [
    subjects.rpcHealth,
    subjects.rpcStatus,
    subjects.rpcCollect,
    subjects.rpcConfig,
    ...["PING", "INFO", "STATS"].flatMap((verb) => [
      `$SRV.${verb}`,
      `$SRV.${verb}.${SERVICE_NAME}`,
      `$SRV.${verb}.${SERVICE_NAME}.*`,
    ]),
  ];
  const subscriptions = [
    probeSubscribe(connection, "inbox", `${inboxPrefix}.>`),
    ...rpc.map((subject) => probeSubscribe(connection, "rpc and discovery", subject)),
    ...feeds.map((feed) => probeSubscribe(connection, featureOf(feed), feed.subject)),
  ];

  const probes = await Promise.all([...events, ...feedReads, ...sequenceReads, ...catchUps, ...subscriptions]);

  // An identity with more rights (an operator's) may ask for a stream's info, which carries the time too.
  if (serverTimes.length === 0) {
    const subject = `$JS.API.STREAM.INFO.${streamFor(subjects.telemetry) ?? "TELEMETRY"}`;
    const result = await ask(connection, subject, "");
    const sample = "kind" in result ? null : serverTimeOf(result, `the answer to ${subject}`);
    if (sample) serverTimes.push(sample);
  }
  return { probes, serverTimes };
}
