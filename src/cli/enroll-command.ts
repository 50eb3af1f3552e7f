import { writeEnrollment, SettingsError } from "../settings/index.ts";
import type { FlagValues } from "../settings/index.ts";
import { CommandError, ExitCode } from "./exit-codes.ts";
import { connectOnce } from "./one-shot-connection.ts";

function text(flags: FlagValues, name: string): string | undefined {
  const value = flags[name];
  return typeof value === "string" ? value : undefined;
}

function tags(flags: FlagValues): Record<string, string> {
  const raw = flags["tag"];
  const result: Record<string, string> = {};
  for (const pair of Array.isArray(raw) ? raw : []) {
    if (typeof pair !== "string") continue;
    const separator = pair.indexOf("=");
    if (separator <= 0) throw new SettingsError("--tag", `${JSON.stringify(pair)} must be key=value`);
    result[pair.slice(0, separator)] = pair.slice(separator + 1);
  }
  return result;
}

/**
 * `edge-agent enroll --server URL [--creds FILE | --token T | --user U --password P | --nkey-seed-file F]
 * [--machine-id ID] [--tag k=v ...]`: writes the settings file, then proves the link works.
 */
export async function enroll(flags: FlagValues, configDir: string, report: (line: string) => void): Promise<void> {
  const server = text(flags, "server");
  if (!server) throw new CommandError("enroll needs --server URL (e.g. --server tls://nats.example:4222)", ExitCode.badSettings);
  const result = await writeEnrollment(configDir, {
    server,
    machineId: text(flags, "machine-id"),
    token: text(flags, "token"),
    user: text(flags, "user"),
    password: text(flags, "password"),
    credsFile: text(flags, "creds") ?? text(flags, "creds-file"),
    nkeySeedFile: text(flags, "nkey-seed-file"),
    tlsCaFile: text(flags, "tls-ca"),
    tlsCertFile: text(flags, "tls-cert"),
    tlsKeyFile: text(flags, "tls-key"),
    tags: tags(flags),
  });
  report(`settings written to ${result.settingsFile} (mode 0600)`);
  for (const secret of result.copiedSecrets) report(`secret copied to ${secret} (mode 0600)`);
  if (flags["skip-link-test"] === true) return;
  const connection = await connectOnce(result.settings, result.settings.machineId ?? "edge-agent-enroll").catch((error: unknown) => {
    throw new CommandError(`settings saved, but the link test failed: ${(error as Error).message}`, ExitCode.failure);
  });
  try {
    await connection.flush();
    report(`link OK: connected to ${connection.getServer()}`);
  } finally {
    await connection.close();
  }
}
