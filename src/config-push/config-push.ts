import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import * as z from "zod";
import type { CapabilityFactory, PushedFileTarget } from "../capability/index.ts";
import { type CommandOutcome, done, reject, retryWithBackoff } from "../capability/index.ts";
import { DownloadConfiguration, EventType, fleetSubjects, machineFeeds, type OsName } from "../contracts/index.ts";
import { DownloadError, download } from "../download/index.ts";
import type { OutgoingEvent } from "../events/index.ts";
import { echoInput, osNameOf } from "../runtime/index.ts";

/**
 * A pushed list, bare (OpenFrame's shape) or wrapped as `{downloadConfigurations}`; a signed push
 * is the wrapped form, with the claims beside the list.
 */
const PushedList = z.union([
  z.array(DownloadConfiguration),
  z.object({ downloadConfigurations: z.array(DownloadConfiguration) }).transform((body) => body.downloadConfigurations),
]);
type PushedList = z.infer<typeof PushedList>;

/** What a push may download; `allowMissingChecksum` follows the live tool policy. */
interface PushPolicy {
  allowMissingChecksum: boolean;
  readonly allowedDownloadHosts: readonly string[];
  readonly maxDownloadBytes: number;
  readonly downloadStallSeconds: number;
  readonly downloadDeadlineSeconds: number;
}

/**
 * "Download this file for your OS and apply it", on `machine.{id}.download-configuration` and
 * `machine.all.download-configuration` (stream CONFIG_PUSH; one durable consumer each, the last
 * push of each subject reaching a machine that comes online later). The file goes to the first
 * capability that takes its name (pushedFileTargets): a `.json` is an agent configuration document,
 * `<toolAgentId>/<path>` a file for an installed tool's folder. Outcome on config.status.
 * A pushed configuration document needs no signature of its own: with signing on, the signed push
 * names its sha256, so only that exact file is applied, and it could not act from the KV bucket.
 */
export const configPushCapability: CapabilityFactory = (context) => {
  const { logger, clock, settings } = context;
  const os: OsName = osNameOf(context.platform);
  const downloadsDir = join(settings.dataDir, "downloads");
  const policy: PushPolicy = { ...settings.toolPolicy };
  let connection: NatsConnection | null = null;

  const configStatus = (status: "APPLIED" | "REJECTED", error: string | null): OutgoingEvent => {
    if (error) logger.warn({ error }, "pushed configuration refused");
    return {
      type: EventType.configStatus,
      body: { revision: null, status, error, timestamp: new Date(clock.now()).toISOString() },
    };
  };
  const refuse = (reason: string): CommandOutcome => reject(reason, configStatus("REJECTED", reason));

  const targetFor = (name: string): PushedFileTarget | null =>
    context.contributions.pushedFileTargets.find((target) => target.accepts(name)) ?? null;

  const apply = async (
    list: PushedList,
    subject: string,
    signal: AbortSignal,
    causationId: string,
  ): Promise<CommandOutcome> => {
    const entry = list.find((candidate) => candidate.os === os);
    if (!entry?.link) {
      // A fleet-wide push may simply not be for this OS; one addressed to this machine must be.
      if (subject === fleetSubjects.downloadConfiguration) return done();
      const reason = `the push has no ${entry ? "link" : "entry"} for ${os}`;
      return done(configStatus("REJECTED", reason));
    }
    if (context.trust.signing && !entry.sha256)
      return refuse(
        `the push names no sha256 for ${os}: with signing on, only a file the signed push vouches for is used`,
      );
    const name = entry.agentFileName ?? entry.fileName ?? "";
    const target = targetFor(name);
    if (!target)
      return refuse(
        `agentFileName ${echoInput(name)} must be <toolAgentId>/<path> for a tool's file, or a .json agent configuration`,
      );
    await mkdir(downloadsDir, { recursive: true, mode: 0o700 });
    let file: string;
    try {
      file = (
        await download({
          link: entry.link,
          sha256: entry.sha256,
          size: entry.size,
          maxBytes: policy.maxDownloadBytes,
          allowMissingChecksum: policy.allowMissingChecksum,
          allowedHosts: policy.allowedDownloadHosts,
          directory: downloadsDir,
          clock,
          connection,
          stallTimeoutMs: policy.downloadStallSeconds * 1000,
          deadlineMs: policy.downloadDeadlineSeconds * 1000,
          signal,
        })
      ).path;
    } catch (error) {
      if (error instanceof DownloadError && error.retryable) return retryWithBackoff();
      return refuse((error as Error).message);
    }
    try {
      const outcome = await target.receive(file, entry, causationId);
      if (outcome === "reported") return done();
      logger.info({ target: target.name, file: name }, "pushed file applied");
      return done(configStatus("APPLIED", null));
    } catch (error) {
      return refuse((error as Error).message);
    } finally {
      await rm(file, { force: true });
    }
  };

  const { downloadConfiguration, downloadConfigurationAll } = machineFeeds(context.machineId);
  const route = context.commands.route<PushedList>({
    // The machine's own pushes are a queue (every file arrives); the fleet's only ever give the newest.
    feeds: [downloadConfiguration, downloadConfigurationAll],
    trust: context.trust,
    handler: {
      what: "download-configuration push",
      schema: PushedList,
      rejection: (reason) => configStatus("REJECTED", reason),
      handle: (list, delivery) => apply(list, delivery.subject, delivery.signal, delivery.causationId),
    },
  });

  return {
    name: "config-push",
    attach({ connection: nc }) {
      connection = nc;
    },
    stop: () => route.stop(),
    appliers: [
      {
        name: "push-policy",
        apply: (next) => {
          policy.allowMissingChecksum =
            next.toolPolicy?.allowMissingChecksum ?? settings.toolPolicy.allowMissingChecksum;
        },
      },
    ],
  };
};
