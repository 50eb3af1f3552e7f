import { execFile } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SEA_EXEC_ARGV } from "../../../scripts/build-sea.ts";

/**
 * The agent's executable runs with V8 flags baked in. Some flags that save memory also take
 * WebAssembly away (`--lite-mode`, `--jitless`), and with it `fetch`, which parses HTTP in
 * WebAssembly: the agent downloads tools and updates with it.
 */
describe("the agent executable's V8 flags", () => {
  it("keep fetch working: this Node under the same flags downloads from a loopback server", async () => {
    const server = createServer((_request, response) => response.end("tool bytes"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tool`;
      const script = `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(typeof WebAssembly + " " + t))`;
      const { stdout } = await promisify(execFile)(process.execPath, [...SEA_EXEC_ARGV, "-e", script], {
        timeout: 30_000,
      });
      expect(stdout).toBe("object tool bytes");
    } finally {
      server.close();
    }
  });
});
