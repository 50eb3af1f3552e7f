import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { debianCopyright, type ExecutableContents } from "../../../scripts/deb-copyright.ts";
import { assertDocLinksShipped, relativeLinks } from "../../../scripts/deb-package.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

const contents: ExecutableContents = {
  node: {
    name: "Node.js",
    version: "26.10.0",
    license: "MIT",
    licenseText: "Copyright Node.js contributors.\n\nPermission is hereby granted...\n",
  },
  packages: [
    {
      name: "@nats-io/nats-core",
      version: "3.4.0",
      license: "Apache-2.0",
      licenseText: "Apache License\nVersion 2.0\n",
    },
    {
      name: "semver",
      version: "7.8.6",
      license: "ISC",
      licenseText: "The ISC License\r\n\r\n  Copyright (c) Isaac Z. Schlueter\r\n",
    },
    {
      name: "zod",
      version: "4.6.7",
      license: "MIT",
      licenseText: "MIT License\n\nCopyright (c) 2025 Colin McDonnell\n",
    },
  ],
};

describe("the .deb's copyright file", () => {
  it("is Debian's machine-readable format: the package Apache-2.0, its executable every bundled work with its license text", () => {
    expect(debianCopyright({ packageName: "edge-agent", executable: "usr/bin/edge-agent", contents })).toBe(
      [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
        "Upstream-Name: edge-agent",
        "Upstream-Contact: edge-agent maintainers <edge-agent@localhost>",
        "",
        "Files: *",
        "Copyright: the edge-agent authors",
        "License: Apache-2.0",
        "",
        "Files: usr/bin/edge-agent",
        "Copyright: the edge-agent authors, the Node.js contributors and the authors of the npm packages listed below",
        "License: Apache-2.0 and MIT and ISC",
        "Comment: A single executable: Node.js and these npm packages (bundled by esbuild) with",
        " edge-agent's own code. Each license's paragraph below reproduces their license files.",
        " Node.js 26.10.0: MIT",
        " @nats-io/nats-core 3.4.0: Apache-2.0",
        " semver 7.8.6: ISC",
        " zod 4.6.7: MIT",
        "",
        "License: Apache-2.0",
        ' On Debian systems the full text of the Apache License, Version 2.0 is in "/usr/share/common-licenses/Apache-2.0".',
        "",
        "License: MIT",
        " Node.js 26.10.0:",
        " .",
        " Copyright Node.js contributors.",
        " .",
        " Permission is hereby granted...",
        " .",
        " zod 4.6.7:",
        " .",
        " MIT License",
        " .",
        " Copyright (c) 2025 Colin McDonnell",
        "",
        "License: ISC",
        " semver 7.8.6:",
        " .",
        " The ISC License",
        " .",
        "   Copyright (c) Isaac Z. Schlueter",
        "",
      ].join("\n"),
    );
  });
});

describe("relative links of a shipped Markdown document", () => {
  it("are the links that are neither URLs nor anchors, without their fragment", () => {
    const markdown =
      "See [design](docs/DESIGN.md#layers), [the unit](service-units/edge-agent.service#L3), [NATS](https://nats.io), [below](#troubleshooting) and [mail](mailto:a@b).";
    expect(relativeLinks(markdown)).toEqual(["docs/DESIGN.md", "service-units/edge-agent.service"]);
  });

  it("must name files the package ships beside the document, or the build refuses", () => {
    const dir = scratchDir("ea-deb-docs-");
    const readme = join(dir, "README.md");
    writeFileSync(readme, "Contracts: [design](DESIGN.md); units: [unit](../../../../lib/systemd/system/x.service)\n");
    const doc = { source: readme, target: "usr/share/doc/x/README.md", mode: 0o644 };
    const unit = { source: readme, target: "lib/systemd/system/x.service", mode: 0o644 };
    expect(() => assertDocLinksShipped({ name: "x", files: [doc, unit] })).toThrow(
      `${readme} links to DESIGN.md, which the x package does not ship`,
    );
    expect(() =>
      assertDocLinksShipped({
        name: "x",
        files: [doc, unit, { source: readme, target: "usr/share/doc/x/DESIGN.md", mode: 0o644 }],
      }),
    ).not.toThrow();
  });
});
