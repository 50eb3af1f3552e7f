import { createHash, randomBytes } from "node:crypto";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ObjectResult } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { EdgeError } from "../errors/index.ts";
import type { Clock } from "../runtime/index.ts";
import { echoInput, type HostPattern, hostPatternsOf } from "../runtime/index.ts";
import {
  chunksUntilAborted,
  DEFAULT_DOWNLOAD_DEADLINE_MS,
  DEFAULT_STALL_TIMEOUT_MS,
  TransferWatchdog,
} from "./transfer-watchdog.ts";
import { uncheckedUrlRefusal } from "./unchecked-policy.ts";

/** Why a download failed, and whether trying again later can help. */
export class DownloadError extends EdgeError {
  readonly code: string;
  readonly retryable: boolean;
  constructor(code: string, message: string, retryable: boolean, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = "DownloadError";
    this.code = code;
    this.retryable = retryable;
  }
}

export interface DownloadRequest {
  /** http://, https://, or nats-obj://BUCKET/NAME (a NATS object store, for air-gapped sites). */
  readonly link: string;
  /** Expected sha256 (hex). Required unless `allowMissingChecksum`. */
  readonly sha256?: string | null | undefined;
  /** Expected size in bytes, when known. */
  readonly size?: number | null | undefined;
  readonly maxBytes: number;
  /** Take a download without a sha256, under the rules of unchecked-policy.ts. */
  readonly allowMissingChecksum: boolean;
  /** Hosts a download without a sha256 may come from (the link and every redirect): `toolPolicy.allowedDownloadHosts`. */
  readonly allowedHosts: readonly string[];
  /** Where the temporary file goes: on the same file system as its final place, so a rename is atomic. */
  readonly directory: string;
  /** The stall and deadline timers run on it. */
  readonly clock: Clock;
  /** Needed for nats-obj:// links. */
  readonly connection?: NatsConnection | null;
  /** Given up when no byte arrives for this long, the wait for the response included (default 30 s). */
  readonly stallTimeoutMs?: number;
  /** Given up when the whole transfer takes longer (default 10 min). */
  readonly deadlineMs?: number;
  /** Aborts the transfer (the agent is stopping): it fails at once with EDGE_DOWNLOAD_ABORTED. */
  readonly signal?: AbortSignal;
}

export interface DownloadedFile {
  /** A temporary file in `directory`: the caller renames it into place or removes it. */
  readonly path: string;
  /** What arrived: its size and sha256, whatever was promised. */
  readonly size: number;
  readonly sha256: string;
  /** True when it matched a sha256 the sender gave; false when it was taken without one. */
  readonly verified: boolean;
}

const POLICY_REFUSALS = new Set([
  "EDGE_DOWNLOAD_NO_CHECKSUM",
  "EDGE_DOWNLOAD_NOT_HTTPS",
  "EDGE_DOWNLOAD_HOST_NOT_ALLOWED",
]);

/** Whether `error` is this agent's rule refusing the link (no sha256, not HTTPS, a host not allowed), not a failure of it. */
export function isPolicyRefusal(error: unknown): boolean {
  return error instanceof DownloadError && POLICY_REFUSALS.has(error.code);
}

/** Redirects followed at most before a download is refused (fetch's own limit is 20). */
export const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Streams a file to disk while hashing and counting it; refuses it (and leaves nothing behind)
 * when it is larger than allowed, or its size or checksum is not what the sender promised.
 */
export async function download(request: DownloadRequest): Promise<DownloadedFile> {
  const link = echoInput(request.link);
  const expectedSha = request.sha256?.toLowerCase() ?? null;
  if (expectedSha === null && !request.allowMissingChecksum) {
    throw new DownloadError(
      "EDGE_DOWNLOAD_NO_CHECKSUM",
      `no sha256 given for ${link}, and this agent requires one (toolPolicy.allowMissingChecksum is off)`,
      false,
    );
  }
  // Null when a sha256 binds the file: then any http(s) hop may serve it.
  const unchecked = expectedSha === null ? hostPatternsOf(request.allowedHosts) : null;
  if (request.size !== null && request.size !== undefined && request.size > request.maxBytes) {
    throw new DownloadError(
      "EDGE_DOWNLOAD_TOO_LARGE",
      `${link} is ${request.size} bytes, over the ${request.maxBytes}-byte limit`,
      false,
    );
  }
  let url: URL;
  try {
    url = new URL(request.link);
  } catch (error) {
    throw new DownloadError("EDGE_DOWNLOAD_BAD_LINK", `${link} is not a URL`, false, { cause: error });
  }
  const watchdog = new TransferWatchdog({
    clock: request.clock,
    stallMs: request.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
    deadlineMs: request.deadlineMs ?? DEFAULT_DOWNLOAD_DEADLINE_MS,
    signal: request.signal,
  });
  // Whatever the transfer threw once the watchdog fired, the watchdog's reason is the real one.
  const tripped = (error: unknown): unknown => {
    const trip = watchdog.trip;
    if (trip === "stalled")
      return new DownloadError(
        "EDGE_DOWNLOAD_STALLED",
        `${link}: no data for ${request.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS} ms`,
        true,
      );
    if (trip === "deadline")
      return new DownloadError(
        "EDGE_DOWNLOAD_DEADLINE",
        `${link}: not done after ${request.deadlineMs ?? DEFAULT_DOWNLOAD_DEADLINE_MS} ms`,
        true,
      );
    if (trip === "aborted")
      return new DownloadError("EDGE_DOWNLOAD_ABORTED", `${link}: download aborted (the agent is stopping)`, true);
    return error;
  };
  try {
    let source: Source;
    try {
      source = await openSource(url, link, request, unchecked, watchdog.signal);
    } catch (error) {
      throw tripped(error);
    }
    return await receive(source, link, expectedSha, request, watchdog).catch((error: unknown) => {
      throw tripped(error);
    });
  } finally {
    watchdog.dispose();
  }
}

async function receive(
  source: Source,
  link: string,
  expectedSha: string | null,
  request: DownloadRequest,
  watchdog: TransferWatchdog,
): Promise<DownloadedFile> {
  const path = join(request.directory, `.download-${randomBytes(8).toString("hex")}.part`);
  const file = await open(path, "wx", 0o600);
  const hash = createHash("sha256");
  let size = 0;
  try {
    for await (const chunk of chunksUntilAborted(source.body, watchdog.signal)) {
      watchdog.progress();
      size += chunk.byteLength;
      if (size > request.maxBytes)
        throw new DownloadError("EDGE_DOWNLOAD_TOO_LARGE", `${link} is over the ${request.maxBytes}-byte limit`, false);
      if (request.size !== null && request.size !== undefined && size > request.size) {
        throw new DownloadError(
          "EDGE_DOWNLOAD_SIZE_MISMATCH",
          `${link} is larger than the promised ${request.size} bytes`,
          false,
        );
      }
      hash.update(chunk);
      await file.write(chunk);
    }
    const sourceError = await source.finished();
    if (sourceError) throw sourceError;
    await file.sync();
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(path, { force: true });
    if (error instanceof DownloadError || watchdog.trip) throw error;
    throw new DownloadError("EDGE_DOWNLOAD_INTERRUPTED", `${link}: ${(error as Error).message}`, true, {
      cause: error,
    });
  }
  await file.close();
  const sha256 = hash.digest("hex");
  const refuse = async (code: string, message: string): Promise<never> => {
    await rm(path, { force: true });
    throw new DownloadError(code, message, false);
  };
  if (request.size !== null && request.size !== undefined && size !== request.size)
    await refuse("EDGE_DOWNLOAD_SIZE_MISMATCH", `${link} is ${size} bytes, not the promised ${request.size}`);
  if (expectedSha !== null && sha256 !== expectedSha)
    await refuse(
      "EDGE_DOWNLOAD_CHECKSUM_MISMATCH",
      `${link}: sha256 ${sha256} does not match the promised ${expectedSha}`,
    );
  return { path, size, sha256, verified: expectedSha !== null };
}

interface Source {
  readonly body: ReadableStream<Uint8Array>;
  /** Resolves with the error the source saw while streaming (the object store checks its own digest). */
  readonly finished: () => Promise<Error | null>;
}

/** `work`, given up at once when `signal` aborts (an object store lookup does not listen to it). */
function unlessAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Refuses `url` when the download has no sha256 and the unchecked-download rules do not allow it. */
function checkUnchecked(url: URL, link: string, unchecked: readonly HostPattern[] | null): void {
  if (unchecked === null) return;
  const refusal = uncheckedUrlRefusal(url, unchecked, link);
  if (refusal) throw new DownloadError(refusal.code, refusal.message, false);
}

/**
 * The response at the end of `url`'s redirects, each hop checked before it is asked: a download
 * without a sha256 never touches a host (or plain HTTP) the rules do not allow, even in passing.
 */
async function fetchFollowing(
  url: URL,
  link: string,
  unchecked: readonly HostPattern[] | null,
  signal: AbortSignal,
): Promise<Response> {
  let current = url;
  for (let hop = 0; ; hop += 1) {
    checkUnchecked(current, link, unchecked);
    let response: Response;
    try {
      response = await fetch(current, { redirect: "manual", signal });
    } catch (error) {
      throw new DownloadError("EDGE_DOWNLOAD_UNREACHABLE", `${link}: ${(error as Error).message}`, true, {
        cause: error,
      });
    }
    if (!REDIRECT_STATUSES.has(response.status)) return response;
    await response.body?.cancel().catch(() => undefined);
    const location = response.headers.get("location");
    if (!location)
      throw new DownloadError("EDGE_DOWNLOAD_HTTP", `${link}: HTTP ${response.status} without a Location`, false);
    if (hop >= MAX_REDIRECTS)
      throw new DownloadError("EDGE_DOWNLOAD_REDIRECTS", `${link}: more than ${MAX_REDIRECTS} redirects`, false);
    try {
      current = new URL(location, current);
    } catch (error) {
      throw new DownloadError(
        "EDGE_DOWNLOAD_BAD_LINK",
        `${link}: redirected to ${echoInput(location)}, not a URL`,
        false,
        { cause: error },
      );
    }
    if (current.protocol !== "http:" && current.protocol !== "https:")
      throw new DownloadError(
        "EDGE_DOWNLOAD_BAD_LINK",
        `${link}: redirected to ${echoInput(current.href)}: only http and https are followed`,
        false,
      );
  }
}

async function openSource(
  url: URL,
  link: string,
  request: DownloadRequest,
  unchecked: readonly HostPattern[] | null,
  signal: AbortSignal,
): Promise<Source> {
  if (url.protocol === "http:" || url.protocol === "https:") {
    const response = await fetchFollowing(url, link, unchecked, signal);
    if (!response.ok || !response.body) {
      await response.body?.cancel().catch(() => undefined);
      // 5xx, 408 and 429 are the server's passing trouble; other refusals will not change by waiting.
      const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
      throw new DownloadError("EDGE_DOWNLOAD_HTTP", `${link}: HTTP ${response.status}`, retryable);
    }
    const declared = Number(response.headers.get("content-length") ?? Number.NaN);
    if (Number.isFinite(declared) && declared > request.maxBytes) {
      await response.body.cancel().catch(() => undefined);
      throw new DownloadError(
        "EDGE_DOWNLOAD_TOO_LARGE",
        `${link} is ${declared} bytes, over the ${request.maxBytes}-byte limit`,
        false,
      );
    }
    return { body: response.body, finished: async () => null };
  }
  if (url.protocol === "nats-obj:") {
    checkUnchecked(url, link, unchecked);
    if (!request.connection)
      throw new DownloadError("EDGE_DOWNLOAD_OFFLINE", `${link} needs the NATS link, which is down`, true);
    const bucket = decodeURIComponent(url.hostname);
    const name = decodeURIComponent(url.pathname.replace(/^\//, ""));
    if (!bucket || !name)
      throw new DownloadError("EDGE_DOWNLOAD_BAD_LINK", `${link}: expected nats-obj://BUCKET/NAME`, false);
    let result: ObjectResult | null;
    try {
      const { Objm } = await import("@nats-io/obj");
      const connection = request.connection;
      result = await unlessAborted((async () => (await new Objm(connection).open(bucket)).get(name))(), signal);
    } catch (error) {
      throw new DownloadError("EDGE_DOWNLOAD_UNREACHABLE", `${link}: ${(error as Error).message}`, true, {
        cause: error,
      });
    }
    if (!result) throw new DownloadError("EDGE_DOWNLOAD_NOT_FOUND", `${link}: no such object`, false);
    if (result.info.size > request.maxBytes)
      throw new DownloadError(
        "EDGE_DOWNLOAD_TOO_LARGE",
        `${link} is ${result.info.size} bytes, over the ${request.maxBytes}-byte limit`,
        false,
      );
    const objectResult = result;
    return { body: objectResult.data, finished: () => objectResult.error };
  }
  throw new DownloadError("EDGE_DOWNLOAD_BAD_LINK", `${link}: only http, https and nats-obj links are allowed`, false);
}
