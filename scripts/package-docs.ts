/**
 * The documentation a package ships: README.md and every file of docs/, under
 * usr/share/doc/<package>/ in the same layout as the repository, so every relative link of the README
 * and of the pages (`docs/bridge.md`, `measurements.md#pinot`) resolves in the installed copy too.
 * The .deb builders refuse a link that does not (deb-package.ts, assertDocLinksShipped).
 */
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { DebFile } from "./deb-package.ts";

const root = resolve(import.meta.dirname, "..");

/** The docs/ directory the packages ship (the RPM spec copies it whole). */
export const DOCS_DIR = join(root, "docs");

export function documentationFiles(packageName: string, repositoryRoot: string = root): DebFile[] {
  const docDir = `usr/share/doc/${packageName}`;
  const pages = readdirSync(join(repositoryRoot, "docs"), { withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => entry.name)
    .sort();
  return [
    { source: join(repositoryRoot, "README.md"), target: `${docDir}/README.md`, mode: 0o644 },
    ...pages.map((page) => ({
      source: join(repositoryRoot, "docs", page),
      target: `${docDir}/docs/${page}`,
      mode: 0o644,
    })),
  ];
}
