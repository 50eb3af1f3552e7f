import * as z from "zod";
import type { Asset, ToolAgentUpdateMessage, ToolInstallationMessage } from "../contracts/index.ts";

/**
 * What the update runner reads of a fleet-wide update before it knows the update concerns this
 * machine: only the tool it names. The whole message (ToolAgentUpdateMessage) is judged by the
 * machines that have the tool, so a malformed update is reported FAILED by those alone, not by
 * every machine of the fleet.
 */
export const FleetToolUpdate = z.looseObject({ toolAgentId: z.string().min(1) });
export type FleetToolUpdate = z.infer<typeof FleetToolUpdate>;

/** What a fleet-wide update asks of the tool installed here. */
export type ToolUpdatePlan =
  | { readonly kind: "nothing"; readonly reason: string }
  | { readonly kind: "refuse"; readonly reason: string }
  | {
      readonly kind: "install";
      /** The install message the tool was installed with, updated: what the installer runs and the record keeps. */
      readonly message: ToolInstallationMessage;
      /** What changes, for the log: `tool 1.0.0 -> 2.0.0`, `asset cfg 1 -> 2`, `asset new 1 (added)`. */
      readonly changes: readonly string[];
    };

/** An asset update worth applying: OpenFrame's own client skips one without a version or downloads. */
const applicable = (asset: ToolAgentUpdateMessage["assets"][number]): boolean =>
  Boolean(asset.version) && asset.downloadConfigurations.length > 0;

/**
 * Applies OpenFrame's `ToolAgentUpdateMessage` to the message the tool was installed with (kept
 * in its record). The update carries only the new version, its downloads and session type, and
 * assets by `assetId`; the tool's type, ids, command arguments and asset file names are kept as
 * installed, so the tool stays what it was (its connection reports keep their type). A new tool
 * version takes the update's downloads (an update without any is refused); an asset whose
 * version differs takes its new version and downloads, keeping its file name and executable bit;
 * an asset not installed is added. The same version and no changed asset: nothing to do.
 */
export function planToolUpdate(
  installed: ToolInstallationMessage,
  installedVersion: string | null,
  update: ToolAgentUpdateMessage,
): ToolUpdatePlan {
  const changes: string[] = [];
  const toolChanges = update.version !== installedVersion;
  if (toolChanges && update.downloadConfigurations.length === 0)
    return {
      kind: "refuse",
      reason: `the update to ${update.version} carries no downloadConfigurations, and the installed ones are for ${installedVersion ?? "another version"}`,
    };
  if (toolChanges) changes.push(`tool ${installedVersion ?? "?"} -> ${update.version}`);

  const updates = new Map(update.assets.filter(applicable).map((asset) => [asset.assetId, asset]));
  const assets: Asset[] = installed.assets.map((asset) => {
    const next = updates.get(asset.id);
    updates.delete(asset.id);
    if (!next || next.version === asset.version) return asset;
    changes.push(`asset ${asset.id} ${asset.version ?? "?"} -> ${next.version}`);
    return { ...asset, version: next.version, downloadConfigurations: next.downloadConfigurations };
  });
  for (const added of updates.values()) {
    changes.push(`asset ${added.assetId} ${added.version} (added)`);
    assets.push({
      id: added.assetId,
      version: added.version,
      downloadConfigurations: added.downloadConfigurations,
      localFilenameConfiguration: [],
      source: null,
      path: null,
      executable: added.executable ?? false,
    });
  }

  if (changes.length === 0)
    return { kind: "nothing", reason: `already at ${update.version} with every asset's version` };
  return {
    kind: "install",
    message: {
      ...installed,
      version: update.version,
      sessionType: update.sessionType ?? installed.sessionType,
      downloadConfigurations: toolChanges ? update.downloadConfigurations : installed.downloadConfigurations,
      assets,
      reinstall: false,
    },
    changes,
  };
}
