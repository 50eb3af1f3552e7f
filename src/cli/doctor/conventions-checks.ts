import { stat } from "node:fs/promises";
import { folderLocationProblem } from "../../runtime/index.ts";
import { conventionsOf, type Settings } from "../../settings/index.ts";
import { type CheckResult, fail, pass, warn } from "./check-result.ts";

const LAYOUT_FIX =
  "keep this machine in the account layout (edge-agent accounts <id>; docs/openframe.md), where no machine can make the server store a message on another's subjects";

/** Whose conventions the agent follows, and what they loosen. */
export function platformCheck(settings: Settings): CheckResult {
  if (settings.platform === "edge")
    return pass(
      "platform",
      "edge: signed commands, a sha256 on every download, a signed uninstall (unless set otherwise)",
    );
  return pass(
    "platform",
    "openframe: OpenFrame's conventions: unsigned commands taken (without a configSigningKey), downloads without a sha256 taken from the allowed hosts; see docs/openframe.md",
  );
}

/** Downloads without a sha256: refused, taken from named hosts, or allowed with no host to take them from. */
export function downloadsCheck(settings: Settings): CheckResult {
  const { allowed, hosts } = conventionsOf(settings).downloadsWithoutChecksum;
  if (!allowed) return pass("downloads", "every tool, push and self-update download needs a sha256");
  if (hosts.length === 0)
    return warn(
      "downloads",
      "downloads without a sha256 are allowed, but no host may serve them: every such tool, push and self-update is refused",
      "set toolPolicy.allowedDownloadHosts (EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS) to the hosts the platform's links use (for GitHub releases: github.com,release-assets.githubusercontent.com,objects.githubusercontent.com)",
    );
  return pass(
    "downloads",
    `downloads without a sha256 are taken over HTTPS from ${hosts.join(", ")} only; the size and sha256 received are reported`,
  );
}

/** How a remote uninstall is taken. */
export function uninstallCheck(settings: Settings): CheckResult {
  const conventions = conventionsOf(settings);
  if (conventions.uninstall === "unsigned")
    return warn(
      "uninstall",
      "UNSIGNED remote uninstall accepted (allowUnsignedUninstall): safe only if no one but the platform can make the server store a message on machine.<id>.client-uninstall",
      LAYOUT_FIX,
    );
  if (settings.allowUnsignedUninstall)
    return warn(
      "uninstall",
      `allowUnsignedUninstall has no effect: commands are taken ${conventions.commands === "signed" ? "signed only (configSigningKey)" : "by no one (no key, unsigned not allowed)"}`,
      "unset allowUnsignedUninstall, or run without a configSigningKey and with unsigned commands allowed",
    );
  return pass("uninstall", "a remote uninstall is taken only signed");
}

/** What OpenFrame's `${client.openframeSecret}` and `${client.openframeTokenPath}` are filled from. */
export async function openframeArgumentChecks(settings: Settings): Promise<CheckResult[]> {
  const { secretFile, tokenPath } = settings.openframe;
  if (settings.platform !== "openframe" && !secretFile && !tokenPath) return [];
  const results: CheckResult[] = [];
  if (!secretFile) {
    results.push(
      warn(
        "openframe secret",
        "no openframe.secretFile: OpenFrame tools whose arguments use ${client.openframeSecret} are refused",
        "set EDGE_AGENT_OPENFRAME_SECRET_FILE (or enroll --openframe-secret-file) to a 0600 file holding the secret",
      ),
    );
  } else {
    const info = await stat(secretFile).catch((error: NodeJS.ErrnoException) => error);
    if (info instanceof Error)
      results.push(
        fail(
          "openframe secret",
          `openframe.secretFile ${secretFile} cannot be read (${info.code ?? info.message})`,
          "point EDGE_AGENT_OPENFRAME_SECRET_FILE at the file holding OpenFrame's secret",
        ),
      );
    else if ((info.mode & 0o077) !== 0)
      results.push(
        warn(
          "openframe secret",
          `openframe.secretFile ${secretFile} is readable by others (mode ${(info.mode & 0o777).toString(8)})`,
          `chmod 600 ${secretFile}`,
        ),
      );
    else results.push(pass("openframe secret", `${secretFile} (private; read at each use, never logged)`));
  }
  results.push(
    tokenPath
      ? pass("openframe token path", `tools are given ${tokenPath}`)
      : warn(
          "openframe token path",
          "no openframe.tokenPath: OpenFrame tools whose arguments use ${client.openframeTokenPath} are refused",
          "set EDGE_AGENT_OPENFRAME_TOKEN_PATH (or enroll --openframe-token-path) to the token file OpenFrame's tools read",
        ),
  );
  return results;
}

/** Tools and self-updates run from the data dir only where no other user could change them. */
export async function programLocationCheck(settings: Settings): Promise<CheckResult> {
  const exists = await stat(settings.dataDir).then(
    () => true,
    () => false,
  );
  if (!exists) return pass("program location", `${settings.dataDir} does not exist yet: checked once it does`);
  const problem = await folderLocationProblem(settings.dataDir);
  if (problem)
    return fail(
      "program location",
      `tools and self-updates are refused (never run) from ${settings.dataDir}: ${problem}`,
      "make every folder from / down to the data dir writable only by root or the agent's user (chmod go-w), or move the data dir",
    );
  return pass(
    "program location",
    `${settings.dataDir} and every folder above it can be changed only by root or this user: tools and updates may run from it`,
  );
}
