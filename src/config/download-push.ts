import { mkdir, readFile, rm } from "node:fs/promises";
import { DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { z } from "zod";
import { COMMAND_STREAMS, DownloadConfiguration, EventType, fleetSubjects, machineConsumers, type ConfigStatus, type OsName } from "../contracts/index.ts";
import { download, DownloadError } from "../download/index.ts";
import type { EventSink } from "../events/event-sink.ts";
import type { Clock } from "../runtime/clock.ts";
import type { Logger } from "../runtime/logger.ts";
import { consumeDurable, type DurableConsumer } from "../transport/durable-consumer.ts";
import { arrivalOf, TRUST_RETRY_MS, type CommandTrust } from "../trust/index.ts";
import type { RemoteConfig } from "./remote-config.ts";
import { describeIssues, echoInput } from "../runtime/echo.ts";

export const CONFIG_PUSH_STREAM = COMMAND_STREAMS.configPush;

/**
 * A pushed list, bare (OpenFrame's shape) or wrapped as `{downloadConfigurations}`; a signed push
 * is the wrapped form, with the claims beside the list.
 */
const PushedList = z.union([z.array(DownloadConfiguration), z.object({ downloadConfigurations: z.array(DownloadConfiguration) }).transform((body) => body.downloadConfigurations)]);

/** Writes a pushed file into an installed tool's folder (the tools capability provides it). */
export type ToolFileWriter = (target: { toolAgentId: string; relativePath: string; serviceName: string | null }, file: string) => Promise<void>;

export interface ConfigPushOptions {
  readonly machineId: string;
  readonly os: OsName;
  /** Where downloads land before they are applied (same file system as the tools, for renames). */
  readonly downloadsDir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sink: EventSink;
  readonly remoteConfig: RemoteConfig;
  readonly policy: () => { allowMissingChecksum: boolean; maxDownloadBytes: number; downloadStallSeconds?: number; downloadDeadlineSeconds?: number };
  readonly writeToolFile: ToolFileWriter;
  /**
   * With a signing key, every push must be signed for the subject it came on with a rising serial,
   * and each file it names must carry its sha256: the file is trusted through the signed push.
   */
  readonly trust: CommandTrust;
}

/**
 * "Download this file for your OS and apply it", on `machine.{id}.download-configuration` and
 * `machine.all.download-configuration` (stream CONFIG_PUSH; one durable consumer each). A `.json`
 * file is an agent configuration document, applied like a KV revision; any other file belongs to an
 * installed tool: `agentFileName` is `<toolAgentId>/<path in its folder>`. Outcome on config.status.
 * A pushed configuration document needs no signature of its own: with signing on, the signed push
 * names its sha256, so only that exact file is applied, and it could not act from the KV bucket.
 */
export function createConfigPushListener(options: ConfigPushOptions): { attach(connection: NatsConnection): void; stop(): Promise<void> } {
  const { logger, machineId } = options;
  const consumers: DurableConsumer[] = [];
  let connection: NatsConnection | null = null;

  const reject = async (error: string, causationId: string): Promise<void> => {
    const body: ConfigStatus = { revision: null, status: "REJECTED", error, timestamp: new Date(options.clock.now()).toISOString() };
    logger.warn({ error }, "pushed configuration refused");
    await options.sink.emit({ type: EventType.configStatus, body, causationId });
  };

  const handle = async (msg: JsMsg): Promise<void> => {
    const causationId = msg.headers?.get("X-Event-ID") || `${CONFIG_PUSH_STREAM}:${msg.seq}`;
    const fleetWide = msg.subject === fleetSubjects.downloadConfiguration;
    let raw: unknown;
    try {
      raw = msg.json<unknown>();
    } catch (error) {
      await reject(`malformed download-configuration push: ${(error as Error).message}`, causationId);
      msg.term();
      return;
    }
    const admission = await options.trust.admit(raw, arrivalOf(msg));
    if (!admission.admitted) {
      if (admission.retryLater) return msg.nak(TRUST_RETRY_MS);
      await reject(`download-configuration push refused: ${admission.error}`, causationId);
      msg.term();
      return;
    }
    const parsed = PushedList.safeParse(raw);
    if (!parsed.success) {
      await reject(`malformed download-configuration push: ${describeIssues(parsed.error.issues)}`, causationId);
      msg.term();
      return;
    }
    const list = parsed.data;
    const entry = list.find((candidate) => candidate.os === options.os);
    if (!entry?.link) {
      // A fleet-wide push may simply not be for this OS; one addressed to this machine must be.
      if (!fleetWide) await reject(`the push has no ${entry ? "link" : "entry"} for ${options.os}`, causationId);
      msg.ack();
      return;
    }
    if (options.trust.signing && !entry.sha256) {
      await reject(`the push names no sha256 for ${options.os}: with signing on, only a file the signed push vouches for is used`, causationId);
      msg.term();
      return;
    }
    await mkdir(options.downloadsDir, { recursive: true, mode: 0o700 });
    let file: string;
    const policy = options.policy();
    try {
      file = (
        await download({
          link: entry.link,
          sha256: entry.sha256,
          size: entry.size,
          maxBytes: policy.maxDownloadBytes,
          allowMissingChecksum: policy.allowMissingChecksum,
          directory: options.downloadsDir,
          connection,
          ...(policy.downloadStallSeconds ? { stallTimeoutMs: policy.downloadStallSeconds * 1000 } : {}),
          ...(policy.downloadDeadlineSeconds ? { deadlineMs: policy.downloadDeadlineSeconds * 1000 } : {}),
        })
      ).path;
    } catch (error) {
      if (error instanceof DownloadError && error.retryable) {
        msg.nak(Math.min(5 * 60_000, 5_000 * 2 ** Math.min(10, msg.info.deliveryCount - 1)));
        return;
      }
      await reject((error as Error).message, causationId);
      msg.term();
      return;
    }
    try {
      const name = entry.agentFileName ?? entry.fileName ?? "";
      if (name.toLowerCase().endsWith(".json") && !name.includes("/")) {
        let document: unknown;
        try {
          document = JSON.parse(await readFile(file, "utf8"));
        } catch (error) {
          await reject(`${name} is not JSON: ${(error as Error).message}`, causationId);
          msg.term();
          return;
        }
        await options.remoteConfig.applyPushed(document, causationId);
      } else {
        const [toolAgentId, ...rest] = name.split("/");
        if (!toolAgentId || rest.length === 0) {
          await reject(`agentFileName ${echoInput(name)} must be <toolAgentId>/<path> for a tool's file, or a .json agent configuration`, causationId);
          msg.term();
          return;
        }
        try {
          await options.writeToolFile({ toolAgentId, relativePath: rest.join("/"), serviceName: entry.serviceName ?? null }, file);
        } catch (error) {
          await reject((error as Error).message, causationId);
          msg.term();
          return;
        }
        const body: ConfigStatus = { revision: null, status: "APPLIED", error: null, timestamp: new Date(options.clock.now()).toISOString() };
        await options.sink.emit({ type: EventType.configStatus, body, causationId });
        logger.info({ toolAgentId, path: rest.join("/") }, "pushed file written into the tool's folder");
      }
      msg.ack();
    } finally {
      await rm(file, { force: true });
    }
  };

  return {
    attach(nc) {
      if (connection) return;
      connection = nc;
      // The last push of each subject reaches a machine that comes online later; one filter each (2.9).
      const { downloadConfiguration, downloadConfigurationAll } = machineConsumers(machineId);
      for (const binding of [downloadConfiguration, downloadConfigurationAll]) {
        consumers.push(consumeDurable({ connection: nc, ...binding, deliverPolicy: DeliverPolicy.LastPerSubject, logger, handle: (msg) => handle(msg) }));
      }
    },
    async stop() {
      await Promise.all(consumers.map((consumer) => consumer.stop()));
    },
  };
}
