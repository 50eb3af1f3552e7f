import { readFileSync } from "node:fs";
import { chmod, chown, copyFile, mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { fromPublic } from "@nats-io/nkeys";
import { isReservedMachineId, isSafeToken } from "../contracts/index.ts";
import { parseServerList, readJsonSettingsFile, SettingsError } from "../settings-kit/index.ts";
import { loadSettings, SETTINGS_FILE_NAME } from "./load.ts";
import type { Settings } from "./settings.ts";
import { openSettingsStore } from "./settings-store.ts";

export interface EnrollmentRequest {
  readonly server: string;
  readonly machineId?: string;
  readonly token?: string;
  readonly user?: string;
  readonly password?: string;
  readonly credsFile?: string;
  /** How the operator named the creds file (`--creds` or `--creds-file`), for error lines. */
  readonly credsFlag?: string;
  readonly nkeySeedFile?: string;
  readonly tlsCaFile?: string;
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
  readonly tags: Readonly<Record<string, string>>;
  /** The platform's NKey public key every command and configuration must be signed with. */
  readonly configSigningKey?: string;
  /** Development only: enroll without a signing key, taking unsigned commands. */
  readonly allowUnsigned?: boolean;
  /** `--platform`: whose conventions the agent follows (`edge` or `openframe`). */
  readonly managementPlatform?: string;
  /** `--allowed-download-hosts`: comma-separated hosts a download without a sha256 may come from. */
  readonly allowedDownloadHosts?: string;
  /** `--openframe-secret-file`: copied beside the settings (0600) as `openframe.secret`. */
  readonly openframeSecretFile?: string;
  /** `--openframe-token-path`: written as it is (a path OpenFrame's tools read, not a secret). */
  readonly openframeTokenPath?: string;
  /** The enrolling host's platform: its default paths go into the checked settings. */
  readonly platform: NodeJS.Platform;
  /** Root (or Windows): system paths by default; on POSIX, the files written go to the config dir's owner. */
  readonly privileged: boolean;
}

/** A secret file to copy into the config dir, readable by its owner only. */
interface SecretCopy {
  readonly source: string;
  readonly target: string;
  readonly flag: string;
}

/**
 * What `edge-agent enroll` would write, checked whole and nothing written yet: the settings as the
 * daemon will read them, and the same settings pointing at the secrets where they are now (for a
 * link test before anything is copied).
 */
export interface EnrollmentPlan {
  readonly configDir: string;
  readonly settingsFile: string;
  readonly document: Record<string, unknown>;
  readonly secrets: readonly SecretCopy[];
  readonly settings: Settings;
  readonly settingsBeforeCopy: Settings;
  /** Root writing for a service that runs as its own user: each file written is chowned to the config dir's owner. */
  readonly chownToConfigDirOwner: boolean;
}

export interface EnrollmentResult {
  readonly settingsFile: string;
  readonly copiedSecrets: string[];
  readonly settings: Settings;
}

function isNkeyPublicKey(key: string): boolean {
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
}

/** Refuses now a file the agent could not read later, under the flag the operator wrote. */
async function assertReadable(path: string, flag: string): Promise<void> {
  try {
    await readFile(path);
  } catch (error) {
    throw new SettingsError(flag, `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * 0600, owned by whoever owns the config dir: when root enrolls for a service that runs as its
 * own user (the packages make /etc/edge-agent that user's), the service must still read it.
 */
async function giveToConfigDirOwner(path: string, plan: EnrollmentPlan): Promise<void> {
  await chmod(path, 0o600);
  if (!plan.chownToConfigDirOwner) return;
  const owner = await stat(plan.configDir);
  if (owner.uid !== 0) await chown(path, owner.uid, owner.gid);
}

/**
 * Signing cannot be skipped by accident: a production enrollment names the platform's signing key
 * (or keeps the one the settings file already has); enrolling without one takes an explicit
 * `--allow-unsigned`, for development.
 */
function signingOf(request: EnrollmentRequest, existing: Record<string, unknown>): Record<string, unknown> {
  if (request.configSigningKey !== undefined && request.allowUnsigned === true) {
    throw new SettingsError(
      "--config-signing-key/--allow-unsigned",
      "give one: a signing key, or unsigned (development)",
    );
  }
  if (request.configSigningKey !== undefined) {
    if (!isNkeyPublicKey(request.configSigningKey)) {
      throw new SettingsError(
        "--config-signing-key",
        "must be the platform's NKey public key (it starts with a letter such as A, O or U and is 56 characters long)",
      );
    }
    return { configSigningKey: request.configSigningKey, allowUnsigned: false };
  }
  if (request.allowUnsigned === true) return { allowUnsigned: true };
  if (typeof existing.configSigningKey === "string" && existing.configSigningKey !== "") return {};
  // OpenFrame signs nothing: choosing its conventions is the explicit choice of unsigned commands.
  if ((request.managementPlatform ?? existing.platform) === "openframe") return {};
  throw new SettingsError(
    "--config-signing-key",
    "a production machine needs the platform's signing key (an NKey public key): without one it takes no command; for development, enroll with --allow-unsigned; under OpenFrame, which signs nothing, with --platform openframe",
  );
}

/**
 * Checks everything `enroll` was told and works out the settings file it means: the server, the
 * machine id, the credentials (secret files to copy in) and tags. Keys the file has and enrollment
 * does not cover are kept; the auth block is replaced whole so an old token never lingers next to
 * new credentials. Writes nothing.
 */
export async function planEnrollment(configDir: string, request: EnrollmentRequest): Promise<EnrollmentPlan> {
  const servers = parseServerList(request.server, "--server");
  if (request.machineId !== undefined && !isSafeToken(request.machineId)) {
    throw new SettingsError(
      "--machine-id",
      "must be letters, digits, '_' or '-' only (it becomes a NATS subject token)",
    );
  }
  if (request.machineId !== undefined && isReservedMachineId(request.machineId)) {
    throw new SettingsError(
      "--machine-id",
      `${JSON.stringify(request.machineId)} is reserved: machine.${request.machineId}.* subjects are fleet-wide`,
    );
  }
  const credsFlag = request.credsFlag ?? "--creds";
  const methods = [request.credsFile, request.token, request.user, request.nkeySeedFile].filter(
    (value) => value !== undefined,
  );
  if (methods.length > 1)
    throw new SettingsError(`${credsFlag}/--token/--user/--nkey-seed-file`, "give one way to authenticate");
  if (request.password !== undefined && request.user === undefined)
    throw new SettingsError("--password", "a password needs --user");
  if (request.user !== undefined && request.password === undefined)
    throw new SettingsError("--user", "a user needs --password");

  const secrets: SecretCopy[] = [];
  if (request.credsFile !== undefined)
    secrets.push({ source: request.credsFile, target: join(configDir, "nats.creds"), flag: credsFlag });
  if (request.nkeySeedFile !== undefined)
    secrets.push({ source: request.nkeySeedFile, target: join(configDir, "nkey.seed"), flag: "--nkey-seed-file" });
  if (request.openframeSecretFile !== undefined)
    secrets.push({
      source: request.openframeSecretFile,
      target: join(configDir, "openframe.secret"),
      flag: "--openframe-secret-file",
    });
  const tls: Record<string, string> = {};
  if (request.tlsCaFile !== undefined) tls.caFile = request.tlsCaFile;
  if (request.tlsCertFile !== undefined) tls.certFile = request.tlsCertFile;
  if (request.tlsKeyFile !== undefined) tls.keyFile = request.tlsKeyFile;
  for (const secret of secrets) await assertReadable(secret.source, secret.flag);
  for (const [key, flag] of [
    ["caFile", "--tls-ca"],
    ["certFile", "--tls-cert"],
    ["keyFile", "--tls-key"],
  ] as const) {
    if (tls[key] !== undefined) await assertReadable(tls[key], flag);
  }

  const auth: Record<string, string> = {};
  if (servers.user !== undefined) auth.user = servers.user;
  if (servers.password !== undefined) auth.password = servers.password;
  if (servers.token !== undefined) auth.token = servers.token;
  if (request.user !== undefined) auth.user = request.user;
  if (request.password !== undefined) auth.password = request.password;
  if (request.token !== undefined) auth.token = request.token;
  const settingsFile = join(configDir, SETTINGS_FILE_NAME);
  const existing = readJsonSettingsFile(settingsFile, (path) => readFileSync(path, "utf8")) ?? {};
  const document: Record<string, unknown> = { ...existing, natsUrl: servers.servers.join(","), auth };
  const openframe: Record<string, string> = { ...((existing.openframe as Record<string, string> | undefined) ?? {}) };
  /** Where the settings name a secret file: the copy in the config dir, or (for the link test) the source. */
  const placeSecrets = (into: Record<string, string>, intoOpenframe: Record<string, string>, copied: boolean): void => {
    for (const secret of secrets) {
      const path = copied ? secret.target : secret.source;
      if (secret.flag === "--openframe-secret-file") intoOpenframe.secretFile = path;
      else into[secret.flag === "--nkey-seed-file" ? "nkeySeedFile" : "credsFile"] = path;
    }
  };
  placeSecrets(auth, openframe, true);
  if (request.openframeTokenPath !== undefined) openframe.tokenPath = request.openframeTokenPath;
  if (Object.keys(openframe).length > 0) document.openframe = openframe;
  if (request.managementPlatform !== undefined) document.platform = request.managementPlatform;
  if (request.allowedDownloadHosts !== undefined)
    document.toolPolicy = {
      ...((existing.toolPolicy as Record<string, unknown> | undefined) ?? {}),
      allowedDownloadHosts: request.allowedDownloadHosts
        .split(",")
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ""),
    };
  if (Object.keys(tls).length > 0) document.tls = tls;
  if (request.machineId !== undefined) document.machineId = request.machineId;
  Object.assign(document, signingOf(request, existing));
  if (Object.keys(request.tags).length > 0)
    document.tags = { ...((existing.tags as Record<string, string> | undefined) ?? {}), ...request.tags };

  // Through the same path the daemon reads, so enrollment never writes a file it would refuse.
  const settingsOf = (settingsDocument: Record<string, unknown>): Settings =>
    loadSettings({
      env: { EDGE_AGENT_CONFIG_DIR: configDir },
      platform: request.platform,
      privileged: request.privileged,
      settingsDocument,
    }).settings;
  const settings = settingsOf(document);
  const sourceAuth = { ...auth };
  const sourceOpenframe = { ...openframe };
  placeSecrets(sourceAuth, sourceOpenframe, false);
  // Privileged means root on POSIX; Windows (no uid, no chown) is privileged too and chowns nothing.
  const chownToConfigDirOwner = request.privileged && request.platform !== "win32";
  return {
    configDir,
    settingsFile,
    document,
    secrets,
    settings,
    settingsBeforeCopy: settingsOf({
      ...document,
      auth: sourceAuth,
      ...(Object.keys(sourceOpenframe).length > 0 ? { openframe: sourceOpenframe } : {}),
    }),
    chownToConfigDirOwner,
  };
}

/** Copies the plan's secrets in and replaces the settings file (atomically; 0600). */
export async function writeEnrollment(plan: EnrollmentPlan): Promise<EnrollmentResult> {
  await mkdir(plan.configDir, { recursive: true, mode: 0o700 });
  const copiedSecrets: string[] = [];
  for (const secret of plan.secrets) {
    // Copied beside, then renamed: a secret the running agent reads is never seen half-written.
    const partial = `${secret.target}.partial`;
    try {
      await copyFile(secret.source, partial);
      await giveToConfigDirOwner(partial, plan);
      await rename(partial, secret.target);
    } catch (error) {
      await rm(partial, { force: true });
      throw new SettingsError(secret.flag, `cannot copy ${secret.source}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    copiedSecrets.push(secret.target);
  }
  const store = await openSettingsStore(plan.configDir);
  store.store = plan.document;
  await giveToConfigDirOwner(store.path, plan);
  return { settingsFile: store.path, copiedSecrets, settings: plan.settings };
}
