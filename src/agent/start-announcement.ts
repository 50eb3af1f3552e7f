import type { Logger } from "../runtime/index.ts";
import type { CommandTrustMode, PlatformConventions } from "../settings/index.ts";

/**
 * Loud at every start: how this agent takes commands, when that is not "signed", and what the
 * platform's conventions change of downloads without a sha256.
 */
export function announceConventions(
  logger: Logger,
  trustMode: CommandTrustMode,
  conventions: PlatformConventions,
): void {
  const { platform } = conventions;
  if (trustMode === "unsigned" && platform === "openframe") {
    logger.warn(
      "OpenFrame's conventions (platform openframe): no configSigningKey, so this agent takes UNSIGNED commands and configuration, as OpenFrame sends them. Safe only in the account layout (edge-agent accounts): in one account any machine can make the server store a copy of its own old command on another machine's subject",
    );
  } else if (trustMode === "unsigned") {
    logger.warn(
      "DEVELOPMENT MODE: allowUnsigned is set and there is no configSigningKey, so this agent takes UNSIGNED commands and configuration; never run a production machine like this",
    );
  } else if (trustMode === "refused") {
    logger.error(
      "no configSigningKey: this agent refuses every command and remote configuration (reported REJECTED/FAILED); give it the platform's key, or set allowUnsigned for development",
    );
  }
  const { allowed, hosts } = conventions.downloadsWithoutChecksum;
  if (allowed && hosts.length === 0)
    logger.warn(
      { platform },
      "downloads without a sha256 are allowed, but no host may serve them: every such tool, push or update is refused until toolPolicy.allowedDownloadHosts (EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS) names the hosts",
    );
  else if (allowed)
    logger.info(
      { platform, allowedDownloadHosts: hosts },
      "downloads without a sha256 are taken over HTTPS from the allowed hosts only; the size and sha256 received are reported",
    );
}
