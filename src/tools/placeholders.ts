import { readFile } from "node:fs/promises";
import { EdgeError } from "../errors/index.ts";
import { truncateInput } from "../runtime/index.ts";

/** A `${...}` in a tool's arguments that this agent cannot fill: installing with it would be a guess. */
export class UnresolvedPlaceholderError extends EdgeError {
  readonly code = "EDGE_UNRESOLVED_PLACEHOLDER";
  constructor(placeholder: string, why = "cannot be resolved", options?: ErrorOptions) {
    super(`argument placeholder \${${truncateInput(placeholder)}} ${why}`, options);
    this.name = "UnresolvedPlaceholderError";
  }
}

const OPENFRAME_SECRET = "client.openframeSecret";
const OPENFRAME_TOKEN_PATH = "client.openframeTokenPath";

/** The settings behind OpenFrame's own placeholders (`openframe.*`). */
export interface OpenFrameArguments {
  /** `openframe.secretFile`: its content is `${client.openframeSecret}`. */
  readonly secretFile?: string | undefined;
  /** `openframe.tokenPath`: `${client.openframeTokenPath}`. */
  readonly tokenPath?: string | undefined;
}

export interface PlaceholderContext {
  readonly machineId: string;
  readonly serverUrl: string;
  /** Where the tool is installed. */
  readonly toolPath: string;
  /** Installed asset files by asset id. */
  readonly assetPaths: Readonly<Record<string, string>>;
  readonly openframe?: OpenFrameArguments;
  /** The secret read for these arguments (readOpenFrameSecret), when they use it. */
  readonly openframeSecret?: string | undefined;
}

const usesPlaceholder = (args: readonly string[], name: string): boolean =>
  args.some((argument) => argument.includes(`\${${name}}`));

/**
 * The secret `${client.openframeSecret}` stands for, read from `openframe.secretFile` now (at each
 * use: a secret replaced on disk is taken at the next install), or undefined when `args` do not use
 * it. Refused, naming the setting, when the setting is absent or the file cannot be read or is empty.
 */
export async function readOpenFrameSecret(
  args: readonly string[],
  openframe: OpenFrameArguments | undefined,
): Promise<string | undefined> {
  if (!usesPlaceholder(args, OPENFRAME_SECRET)) return undefined;
  const file = openframe?.secretFile;
  if (!file)
    throw new UnresolvedPlaceholderError(
      OPENFRAME_SECRET,
      "needs the setting openframe.secretFile (EDGE_AGENT_OPENFRAME_SECRET_FILE, --openframe-secret-file): the file holding OpenFrame's secret",
    );
  let secret: string;
  try {
    secret = (await readFile(file, "utf8")).trim();
  } catch (error) {
    throw new UnresolvedPlaceholderError(
      OPENFRAME_SECRET,
      `cannot be resolved: openframe.secretFile ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      { cause: error },
    );
  }
  if (secret === "")
    throw new UnresolvedPlaceholderError(OPENFRAME_SECRET, `cannot be resolved: openframe.secretFile ${file} is empty`);
  return secret;
}

/** `text` with every occurrence of `secret` replaced: what a tool printed may quote its arguments. */
export function withoutSecret(text: string, secret: string | undefined): string {
  return secret ? text.split(secret).join("[openframe secret]") : text;
}

/**
 * Fills OpenFrame's argument placeholders: `${client.machineId}`, `${client.serverUrl}`,
 * `${client.toolPath}`, `${client.assetPath.<assetId>}`, `${client.openframeSecret}` (read first
 * with readOpenFrameSecret) and `${client.openframeTokenPath}`. Each argument stays one argument
 * (they go to execFile, never a shell), and an unknown placeholder is an error, not an empty string.
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
      if (name === OPENFRAME_SECRET) {
        if (context.openframeSecret !== undefined) return context.openframeSecret;
        throw new UnresolvedPlaceholderError(name, "needs openframe.secretFile, and it was not read");
      }
      if (name === OPENFRAME_TOKEN_PATH) {
        if (context.openframe?.tokenPath) return context.openframe.tokenPath;
        throw new UnresolvedPlaceholderError(
          name,
          "needs the setting openframe.tokenPath (EDGE_AGENT_OPENFRAME_TOKEN_PATH, --openframe-token-path): the token file OpenFrame's tools read",
        );
      }
      throw new UnresolvedPlaceholderError(name);
    }),
  );
}
