import { randomBytes } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { lstat, mkdir, open, readlink, rename, rm } from "node:fs/promises";
import { basename, dirname, join, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { EdgeError } from "../errors/index.ts";
import { syncDirectory } from "./atomic-file.ts";
import { echoInput } from "./echo.ts";
import { PRIVATE_FILE_MODE } from "./private-file.ts";

/**
 * A path the agent was asked to write that passes through a symbolic link, or through something
 * that is not a folder. `link` is the offending part, relative to the folder written into.
 */
export class LinkInPathError extends EdgeError {
  readonly code = "EDGE_PATH_THROUGH_LINK";
  readonly link: string;
  constructor(message: string, link: string) {
    super(message);
    this.name = "LinkInPathError";
    this.link = link;
  }
}

/** Absent on Windows, where lstat still tells a link (or junction) apart. */
const NO_FOLLOW = constants.O_NOFOLLOW ?? 0;

const lstatOrNull = (path: string): Promise<Stats | null> =>
  lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return null;
    throw error;
  });

async function refuseLink(root: string, relative: string): Promise<never> {
  const target = await readlink(join(root, relative)).catch(() => "?");
  const where = relative === "" ? root : relative;
  throw new LinkInPathError(
    `${echoInput(where)} is a symbolic link (to ${echoInput(target)}): files are never written through a link`,
    where,
  );
}

/**
 * The components of `relativeDir` under `root` (a path already checked to stay inside it), each
 * made a real folder when missing: answers the folder's path. `root` and every component must be
 * real folders, never symbolic links; a folder is made one level at a time, so a link put in its
 * place meanwhile is found, not followed.
 */
export async function linkFreeDirectory(root: string, relativeDir: string, create = true): Promise<string> {
  const rootStats = await lstat(root);
  if (rootStats.isSymbolicLink()) await refuseLink(root, "");
  if (!rootStats.isDirectory()) throw new LinkInPathError(`${echoInput(root)} is not a folder`, root);
  let relative = "";
  for (const part of relativeDir.split(sep).filter((component) => component !== "" && component !== ".")) {
    relative = relative === "" ? part : join(relative, part);
    const path = join(root, relative);
    let stats = await lstatOrNull(path);
    if (stats === null && create) {
      await mkdir(path, { mode: 0o755 }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== "EEXIST") throw error;
      });
      stats = await lstat(path);
    }
    if (stats === null) throw new LinkInPathError(`${echoInput(relative)} does not exist`, relative);
    if (stats.isSymbolicLink()) await refuseLink(root, relative);
    if (!stats.isDirectory()) throw new LinkInPathError(`${echoInput(relative)} is a file, not a folder`, relative);
  }
  return join(root, relativeDir);
}

/**
 * Puts a copy of `sourceFile` at `<root>/<relativePath>` (relative, already checked to stay
 * inside `root`) without following a symbolic link anywhere: `root`, every folder on the way and
 * the file itself must not be links, or it is refused with a LinkInPathError naming the link.
 * The copy is written to a new sibling opened with O_EXCL|O_NOFOLLOW, flushed, the folders are
 * checked again, and it is renamed over the target (a rename never follows a link), so a crash
 * leaves the old file or the new one. An existing file keeps its mode; a new one is 0600.
 *
 * What it cannot promise: a link swapped in by another process between the last check and the
 * rename is followed (Node has no openat). It guards against links that are there, such as one a
 * tool's installer made; a process racing the agent as the same user could write there itself.
 */
export async function placeFileWithoutLinks(root: string, relativePath: string, sourceFile: string): Promise<void> {
  const relativeDir = dirname(relativePath);
  const name = basename(relativePath);
  const folder = await linkFreeDirectory(root, relativeDir === "." ? "" : relativeDir);
  const target = join(folder, name);
  const existing = await lstatOrNull(target);
  if (existing?.isSymbolicLink()) await refuseLink(root, relativePath);
  if (existing?.isDirectory())
    throw new LinkInPathError(`${echoInput(relativePath)} is a folder, not a file`, relativePath);
  const mode = existing ? existing.mode & 0o7777 : PRIVATE_FILE_MODE;
  const temporary = join(folder, `.${name}.${randomBytes(6).toString("hex")}.tmp`);
  const output = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW, mode);
  try {
    // Exactly this mode, whatever the umask.
    await output.chmod(mode);
    const input = await open(sourceFile, "r");
    await pipeline(input.createReadStream(), output.createWriteStream({ flush: true }));
    await linkFreeDirectory(root, relativeDir === "." ? "" : relativeDir, false);
    const now = await lstatOrNull(target);
    if (now?.isSymbolicLink()) await refuseLink(root, relativePath);
    await rename(temporary, target);
  } catch (error) {
    await output.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
  await syncDirectory(folder);
}
