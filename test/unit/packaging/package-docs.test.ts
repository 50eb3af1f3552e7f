import { readFileSync } from "node:fs";
import { posix } from "node:path";
import { describe, expect, it } from "vitest";
import { assertDocLinksShipped } from "../../../scripts/deb-package.ts";
import { documentationFiles } from "../../../scripts/package-docs.ts";

/** GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

function anchorsOf(markdown: string): Set<string> {
  const withoutCode = markdown.replace(/```[\s\S]*?```/g, "");
  return new Set([...withoutCode.matchAll(/^#{1,6} (.+)$/gm)].map((match) => headingAnchor(match[1] ?? "")));
}

describe("the documentation the packages ship", () => {
  for (const name of ["edge-agent", "edge-bridge"]) {
    it(`${name}: README and every docs page link only to files shipped beside them`, () => {
      expect(() => assertDocLinksShipped({ name, files: documentationFiles(name) })).not.toThrow();
    });
  }

  it("links to a heading of a page name a heading that page has", () => {
    const files = documentationFiles("edge-agent");
    const byTarget = new Map(files.map((file) => [file.target, readFileSync(file.source, "utf8")]));
    const broken: string[] = [];
    for (const file of files.filter((entry) => entry.target.endsWith(".md"))) {
      const markdown = byTarget.get(file.target) ?? "";
      for (const [, target = ""] of markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
        const [path = "", fragment] = target.split("#");
        if (fragment === undefined || /^[a-z][a-z0-9+.-]*:/i.test(path)) continue;
        const page = path === "" ? file.target : posix.normalize(posix.join(posix.dirname(file.target), path));
        const pageText = byTarget.get(page);
        if (pageText !== undefined && !anchorsOf(pageText).has(fragment)) broken.push(`${file.target} -> ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
