import { truncateInput } from "../runtime/echo.ts";

/** A `${...}` in a tool's arguments that this agent cannot fill: installing with it would be a guess. */
export class UnresolvedPlaceholderError extends Error {
  readonly code = "EDGE_UNRESOLVED_PLACEHOLDER";
  constructor(placeholder: string) {
    super(`argument placeholder \${${truncateInput(placeholder)}} cannot be resolved`);
    this.name = "UnresolvedPlaceholderError";
  }
}

export interface PlaceholderContext {
  readonly machineId: string;
  readonly serverUrl: string;
  /** Where the tool is installed. */
  readonly toolPath: string;
  /** Installed asset files by asset id. */
  readonly assetPaths: Readonly<Record<string, string>>;
}

/**
 * Fills OpenFrame's argument placeholders: `${client.machineId}`, `${client.serverUrl}`,
 * `${client.toolPath}`, `${client.assetPath.<assetId>}`. Each argument stays one argument (they
 * go to execFile, never a shell), and an unknown placeholder is an error, not an empty string.
 */
export function resolvePlaceholders(args: readonly string[], context: PlaceholderContext): string[] {
  return args.map((argument) =>
    argument.replace(/\$\{([^}]*)\}/g, (_, name: string) => {
      if (name === "client.machineId") return context.machineId;
      if (name === "client.serverUrl") return context.serverUrl;
      if (name === "client.toolPath") return context.toolPath;
      if (name.startsWith("client.assetPath.")) {
        const path = context.assetPaths[name.slice("client.assetPath.".length)];
        if (path !== undefined) return path;
      }
      throw new UnresolvedPlaceholderError(name);
    }),
  );
}
