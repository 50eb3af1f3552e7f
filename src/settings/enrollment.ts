import { chown, copyFile, chmod, mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { isReservedMachineId, isSafeToken } from "../contracts/index.ts";
import { SettingsError } from "./errors.ts";
import { loadSettings } from "./load.ts";
import { openSettingsStore } from "./settings-store.ts";
import { parseServerList } from "./nats-url.ts";
import type { Settings } from "./settings.ts";

export interface EnrollmentRequest {
  readonly server: string;
  readonly machineId?: string;
  readonly token?: string;
  readonly user?: string;
  readonly password?: string;
  readonly credsFile?: string;
  readonly nkeySeedFile?: string;
  readonly tlsCaFile?: string;
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
  readonly tags: Readonly<Record<string, string>>;
}

export interface EnrollmentResult {
  readonly settingsFile: string;
  readonly copiedSecrets: string[];
  readonly settings: Settings;
}

/**
 * Copies a secret file into the config dir, readable only by the owner of that dir: the service
 * runs as its own user, which must read it, and nobody else may.
 */
async function installSecret(source: string, configDir: string, fileName: string, flag: string): Promise<string> {
  const target = join(configDir, fileName);
  try {
    await copyFile(source, target);
  } catch (error) {
    throw new SettingsError(flag, `cannot copy ${source}: ${(error as Error).message}`);
  }
  await giveToConfigDirOwner(target, configDir);
  return target;
}

/**
 * 0600, owned by whoever owns the config dir: when root enrolls for a service that runs as its
 * own user (the packages make /etc/edge-agent that user's), the service must still read it.
 */
async function giveToConfigDirOwner(path: string, configDir: string): Promise<void> {
  await chmod(path, 0o600);
  const owner = await stat(configDir);
  if (typeof process.getuid === "function" && process.getuid() === 0 && owner.uid !== 0) await chown(path, owner.uid, owner.gid);
}

/**
 * Writes what `edge-agent enroll` was told into the settings file: the server, the machine id, the
 * credentials (secret files copied in, 0600) and tags. Keys it does not cover are kept; the auth
 * block is replaced whole so an old token never lingers next to new credentials.
 */
export async function writeEnrollment(configDir: string, request: EnrollmentRequest): Promise<EnrollmentResult> {
  const servers = parseServerList(request.server, "--server");
  if (request.machineId !== undefined && !isSafeToken(request.machineId)) {
    throw new SettingsError("--machine-id", "must be letters, digits, '_' or '-' only (it becomes a NATS subject token)");
  }
  if (request.machineId !== undefined && isReservedMachineId(request.machineId)) {
    throw new SettingsError("--machine-id", `${JSON.stringify(request.machineId)} is reserved: machine.${request.machineId}.* subjects are fleet-wide`);
  }
  const methods = [request.credsFile, request.token, request.user, request.nkeySeedFile].filter((value) => value !== undefined);
  if (methods.length > 1) throw new SettingsError("--creds/--token/--user/--nkey-seed-file", "give one way to authenticate");
  if (request.password !== undefined && request.user === undefined) throw new SettingsError("--password", "a password needs --user");

  await mkdir(configDir, { recursive: true, mode: 0o750 });
  const copiedSecrets: string[] = [];
  const auth: Record<string, string> = {};
  if (servers.user !== undefined) auth.user = servers.user;
  if (servers.password !== undefined) auth.password = servers.password;
  if (servers.token !== undefined) auth.token = servers.token;
  if (request.user !== undefined) auth.user = request.user;
  if (request.password !== undefined) auth.password = request.password;
  if (request.token !== undefined) auth.token = request.token;
  if (request.credsFile !== undefined) {
    auth.credsFile = await installSecret(request.credsFile, configDir, "nats.creds", "--creds");
    copiedSecrets.push(auth.credsFile);
  }
  if (request.nkeySeedFile !== undefined) {
    auth.nkeySeedFile = await installSecret(request.nkeySeedFile, configDir, "nkey.seed", "--nkey-seed-file");
    copiedSecrets.push(auth.nkeySeedFile);
  }
  const tls: Record<string, string> = {};
  if (request.tlsCaFile !== undefined) tls.caFile = request.tlsCaFile;
  if (request.tlsCertFile !== undefined) tls.certFile = request.tlsCertFile;
  if (request.tlsKeyFile !== undefined) tls.keyFile = request.tlsKeyFile;

  const store = await openSettingsStore(configDir);
  const document: Record<string, unknown> = { ...store.store, natsUrl: servers.servers.join(","), auth };
  if (Object.keys(tls).length > 0) document.tls = tls;
  if (request.machineId !== undefined) document.machineId = request.machineId;
  if (Object.keys(request.tags).length > 0) document.tags = { ...((store.store.tags as Record<string, string> | undefined) ?? {}), ...request.tags };
  store.store = document;
  await giveToConfigDirOwner(store.path, configDir);

  // Read back through the same path the daemon uses, so enrollment never leaves a file it refuses.
  const { settings } = loadSettings({ env: { EDGE_AGENT_CONFIG_DIR: configDir } });
  return { settingsFile: store.path, copiedSecrets, settings };
}
