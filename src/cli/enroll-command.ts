import type { ProcessHost } from "../cli-kit/index.ts";
import { CommandError, connectOnce, ExitCode } from "../cli-kit/index.ts";
import type { FlagValues } from "../settings/index.ts";
import { planEnrollment, SettingsError, writeEnrollment } from "../settings/index.ts";

function text(flags: FlagValues, name: string): string | undefined {
  const value = flags[name];
  return typeof value === "string" ? value : undefined;
}

function tags(flags: FlagValues): Record<string, string> {
  const raw = flags.tag;
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
 * [--machine-id ID] [--tag k=v ...] [--platform openframe --allowed-download-hosts H,... --openframe-secret-file F
 * --openframe-token-path P]`: checks everything, proves the link works with the new
 * settings, and only then writes them: a failed test leaves a working settings file as it was.
 */
export async function enroll(
  flags: FlagValues,
  configDir: string,
  host: ProcessHost,
  report: (line: string) => void,
): Promise<void> {
  const server = text(flags, "server");
  if (!server)
    throw new CommandError("enroll needs --server URL (e.g. --server tls://nats.example:4222)", ExitCode.badSettings);
  const creds = text(flags, "creds");
  const credsFile = text(flags, "creds-file");
  if (creds !== undefined && credsFile !== undefined)
    throw new SettingsError("--creds/--creds-file", "give the creds file once");
  const plan = await planEnrollment(configDir, {
    server,
    machineId: text(flags, "machine-id"),
    token: text(flags, "token"),
    user: text(flags, "user"),
    password: text(flags, "password"),
    credsFile: creds ?? credsFile,
    credsFlag: creds !== undefined ? "--creds" : "--creds-file",
    nkeySeedFile: text(flags, "nkey-seed-file"),
    tlsCaFile: text(flags, "tls-ca"),
    tlsCertFile: text(flags, "tls-cert"),
    tlsKeyFile: text(flags, "tls-key"),
    tags: tags(flags),
    ...(text(flags, "config-signing-key") !== undefined ? { configSigningKey: text(flags, "config-signing-key") } : {}),
    ...(flags["allow-unsigned"] === true ? { allowUnsigned: true } : {}),
    managementPlatform: text(flags, "platform"),
    allowedDownloadHosts: text(flags, "allowed-download-hosts"),
    openframeSecretFile: text(flags, "openframe-secret-file"),
    openframeTokenPath: text(flags, "openframe-token-path"),
    platform: host.platform,
    privileged: host.privileged,
  });
  if (flags["skip-link-test"] !== true) {
    const settings = plan.settingsBeforeCopy;
    const connection = await connectOnce(settings, settings.machineId ?? "edge-agent-enroll").catch(
      (error: unknown) => {
        throw new CommandError(
          `the link test failed, nothing written (${plan.settingsFile} is as it was): ${(error as Error).message}; fix it, or write the settings anyway with --skip-link-test`,
          ExitCode.failure,
        );
      },
    );
    try {
      await connection.flush();
      report(`link OK: connected to ${connection.getServer()}`);
    } finally {
      await connection.close();
    }
  }
  const result = await writeEnrollment(plan);
  report(`settings written to ${result.settingsFile} (mode 0600)`);
  for (const secret of result.copiedSecrets) report(`secret copied to ${secret} (mode 0600)`);
}
