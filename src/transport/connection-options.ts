import { readFileSync } from "node:fs";
import {
  type Authenticator,
  type ConnectionOptions,
  credsAuthenticator,
  nkeyAuthenticator,
} from "@nats-io/transport-node";
import { EdgeError } from "../errors/index.ts";
import type { ReconnectBackoff } from "../runtime/index.ts";
import type { NatsEndpoint } from "../settings-kit/index.ts";

export { jitteredBackoff, type ReconnectBackoff } from "../runtime/index.ts";

/** A credentials or NKey seed file the settings name cannot be read: `settingPath` says which setting. */
export class CredentialFileError extends EdgeError {
  readonly code = "EDGE_CREDENTIAL_FILE";
  readonly file: string;
  /** The setting that names the file (`auth.credsFile`, `auth.nkeySeedFile`). */
  readonly settingPath: string;
  /** Why it cannot be read (`no such file`, or the system's words). */
  readonly reason: string;
  constructor(file: string, what: string, settingPath: string, cause: unknown) {
    const reason = (cause as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (cause as Error).message;
    super(`cannot read the ${what} file ${file} (setting ${settingPath}): ${reason}`, { cause });
    this.name = "CredentialFileError";
    this.file = file;
    this.settingPath = settingPath;
    this.reason = reason;
  }
}

function readSecretFile(path: string, what: string, settingPath: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    throw new CredentialFileError(path, what, settingPath, error);
  }
}

export interface LinkTuning {
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
}

export const DEFAULT_LINK_TUNING: LinkTuning = { reconnectBaseMs: 500, reconnectMaxMs: 30_000 };

/**
 * Turns an endpoint into nats.js connection options. Secret files are read here, once per connect.
 * `connectionName` is what the server's own $SYS events report: the agent uses its machine id.
 */
export function buildConnectionOptions(
  settings: NatsEndpoint,
  connectionName: string,
  backoff: Pick<ReconnectBackoff, "delay" | "dialing">,
): ConnectionOptions {
  const { auth, tls } = settings;
  const authenticators: Authenticator[] = [];
  // Read now, so a missing or unreadable file fails this attempt with a clear reason, and again at
  // every handshake, so credentials the platform rotates on disk are taken on the next reconnect.
  if (auth.credsFile) {
    const credsFile = auth.credsFile;
    const readCreds = (): Uint8Array => readSecretFile(credsFile, "NATS credentials", "auth.credsFile");
    readCreds();
    authenticators.push((nonce) => credsAuthenticator(readCreds())(nonce));
  }
  if (auth.nkeySeedFile) {
    const seedFile = auth.nkeySeedFile;
    const readSeed = (): Uint8Array =>
      new TextEncoder().encode(
        new TextDecoder().decode(readSecretFile(seedFile, "NKey seed", "auth.nkeySeedFile")).trim(),
      );
    readSeed();
    authenticators.push((nonce) => nkeyAuthenticator(readSeed())(nonce));
  }
  const useTls =
    tls.caFile !== undefined ||
    tls.certFile !== undefined ||
    settings.natsServers.some((url) => url.startsWith("tls://"));
  return {
    servers: [...settings.natsServers],
    name: connectionName,
    ...(auth.user !== undefined ? { user: auth.user, pass: auth.password ?? "" } : {}),
    ...(auth.token !== undefined ? { token: auth.token } : {}),
    ...(authenticators.length > 0 ? { authenticator: authenticators } : {}),
    ...(useTls
      ? {
          tls: {
            ...(tls.caFile ? { caFile: tls.caFile } : {}),
            ...(tls.certFile ? { certFile: tls.certFile, keyFile: tls.keyFile } : {}),
          },
        }
      : {}),
    // Forever: an edge machine may be offline for days and must come back by itself.
    maxReconnectAttempts: -1,
    // The first connection is retried by our link (it reports why each try failed); after that,
    // nats.js reconnects forever, refused credentials included (they may be rotated meanwhile).
    waitOnFirstConnect: false,
    ignoreAuthErrorAbort: true,
    reconnectDelayHandler: () => backoff.delay(),
    reconnectToServer: () => {
      backoff.dialing();
      // null: let nats.js pick the server as usual; we only count the dial.
      return null;
    },
    pingInterval: 30_000,
    maxPingOut: 3,
    timeout: 10_000,
  };
}
