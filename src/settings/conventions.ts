import type { ManagementPlatform, Settings } from "./settings.ts";

/** How the agent takes commands: signed only, unsigned too, or none (no key, unsigned not allowed). */
export type CommandTrustMode = "signed" | "unsigned" | "refused";

/**
 * What the settings make of the conventions that differ between our defaults and OpenFrame's
 * (`platform`): shown by `status` and `doctor`, announced at start. The rules live here once; the
 * parts that act on them (trust, downloads, uninstall) read the same settings.
 */
export interface PlatformConventions {
  readonly platform: ManagementPlatform;
  readonly commands: CommandTrustMode;
  /** Downloads without a sha256: taken over HTTPS from `hosts` only, or refused. */
  readonly downloadsWithoutChecksum: { readonly allowed: boolean; readonly hosts: readonly string[] };
  /** A remote uninstall: signed only, or unsigned too (allowUnsignedUninstall, with unsigned commands taken). */
  readonly uninstall: "signed" | "unsigned";
  /** What OpenFrame's `${client.openframeSecret}` / `${client.openframeTokenPath}` can be filled from. */
  readonly openframeArguments: { readonly secretFile: string | null; readonly tokenPath: string | null };
}

export function commandTrustModeOf(settings: Pick<Settings, "configSigningKey" | "allowUnsigned">): CommandTrustMode {
  if (settings.configSigningKey) return "signed";
  return settings.allowUnsigned ? "unsigned" : "refused";
}

export function conventionsOf(
  settings: Pick<
    Settings,
    "platform" | "configSigningKey" | "allowUnsigned" | "toolPolicy" | "allowUnsignedUninstall" | "openframe"
  >,
): PlatformConventions {
  const commands = commandTrustModeOf(settings);
  return {
    platform: settings.platform,
    commands,
    downloadsWithoutChecksum: {
      allowed: settings.toolPolicy.allowMissingChecksum,
      hosts: [...settings.toolPolicy.allowedDownloadHosts],
    },
    // With a key everything must be signed; refusing everything, nothing is taken.
    uninstall: settings.allowUnsignedUninstall && commands === "unsigned" ? "unsigned" : "signed",
    openframeArguments: {
      secretFile: settings.openframe.secretFile ?? null,
      tokenPath: settings.openframe.tokenPath ?? null,
    },
  };
}
