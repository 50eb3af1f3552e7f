import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBridgeDeb } from "../../../scripts/build-bridge-deb.ts";
import {
  buildBridgeExecutable,
  ensureSingleExecutable,
  packageVersion,
  type SingleExecutable,
} from "../../../scripts/build-sea.ts";
import type { ExecutableContents } from "../../../scripts/deb-copyright.ts";
import { relativeLinks } from "../../../scripts/deb-package.ts";
import { documentationFiles } from "../../../scripts/package-docs.ts";
import { DEFAULT_TOPICS, EventHeader, EventType, machineSubjects } from "../../../src/contracts/index.ts";
import { createOutboxEventSink } from "../../../src/events/outbox-event-sink.ts";
import { openOutbox } from "../../../src/outbox/index.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { createJetStreamPublisher } from "../../../src/transport/jetstream-publisher.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { readTopic } from "../../helpers/kafka-topic-reader.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { testBuildDir } from "../../helpers/test-builds.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/**
 * Strings only the Kafka client has: its error codes and a protocol API the agent never speaks.
 * Neither module paths (the minified bundles name no module) nor "@platformatic/kafka" (the agent
 * bundles package.json, which lists it) can tell.
 */
const KAFKA_CLIENT_MARKERS = ["PLT_KFK_", "InitProducerId"];

const has = (command: string): boolean =>
  spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;

/** `Key=value` lines of a unit file: every value of each key, in order. */
function unitDirectives(text: string): Map<string, string[]> {
  const directives = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (!match?.[1] || match[2] === undefined) continue;
    directives.set(match[1], [...(directives.get(match[1]) ?? []), match[2]]);
  }
  return directives;
}

/** Every command the maintainer scripts may run; a dry run puts a recording stub in its place. */
const SCRIPT_COMMANDS = ["getent", "groupadd", "useradd", "userdel", "groupdel", "install", "chown", "rm", "systemctl"];
/** Records its name and arguments; as getent, answers "found" or "not found" (2). */
const STUB = [
  "#!/bin/sh",
  'echo "${0##*/} $*" >> "$STUB_LOG"',
  '[ "${0##*/}" = getent ] && exit "$GETENT_STATUS"',
  "exit 0",
  "",
].join("\n");

/**
 * Runs a maintainer script with PATH holding only stubs that record their arguments, so nothing on
 * this machine changes (a command without a stub is not found and fails the script). `systemd`
 * stands for /run/systemd/system; `accountExists` is what the stub getent answers.
 */
function dryRun(
  script: string,
  args: readonly string[],
  options: { systemd: boolean; accountExists: boolean },
  scratch: string,
): string[] {
  const dir = mkdtempSync(join(scratch, "dry-run-"));
  const stubs = join(dir, "bin");
  mkdirSync(stubs);
  for (const command of SCRIPT_COMMANDS) {
    writeFileSync(join(stubs, command), STUB);
    chmodSync(join(stubs, command), 0o755);
  }
  const systemdMarker = join(dir, "run-systemd-system");
  if (options.systemd) mkdirSync(systemdMarker);
  const copy = join(dir, "script");
  writeFileSync(copy, readFileSync(script, "utf8").replaceAll("/run/systemd/system", systemdMarker));
  const log = join(dir, "log");
  writeFileSync(log, "");
  const env = { PATH: stubs, STUB_LOG: log, GETENT_STATUS: options.accountExists ? "0" : "2" };
  execFileSync("/bin/sh", [copy, ...args], { env, stdio: "pipe" });
  return readFileSync(log, "utf8")
    .split("\n")
    .filter((line) => line !== "");
}

describe.skipIf(!has("dpkg-deb"))(
  "edge-bridge: its own single executable and .deb (needs dpkg-deb; nothing is installed)",
  () => {
    let scratch: string;
    let agent: SingleExecutable;
    let bridge: SingleExecutable;
    let deb: string;
    /** The .deb unpacked with `dpkg-deb -R`: the package's tree plus DEBIAN/. */
    let unpacked: string;
    let binary: string;

    // Minutes on a busy two-core machine: two executables and the .deb's xz at 9e.
    beforeAll(async () => {
      scratch = mkdtempSync(join(tmpdir(), "edge-bridge-package-"));
      // Both executables are the run's own builds (test/helpers/test-builds.ts), never dist/'s: the
      // agent's is the one the agent's package test uses (every build of it refuses to bundle the
      // Kafka client); the bridge's is built here, and the .deb from it.
      agent = await ensureSingleExecutable(testBuildDir());
      bridge = await buildBridgeExecutable({ outputDir: testBuildDir() });
      deb = await buildBridgeDeb({ outputDir: testBuildDir() });
      unpacked = join(scratch, "deb");
      execFileSync("dpkg-deb", ["-R", deb, unpacked]);
      binary = join(unpacked, "usr/bin/edge-bridge");
    }, 600_000);

    afterAll(() => {
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    it("keeps the Kafka client out of the device's executable, and in the bridge's", () => {
      const agentFiles = [agent.bundle, agent.binary].map((path) => ({ path, content: readFileSync(path) }));
      const bridgeFiles = [bridge.bundle, bridge.binary].map((path) => ({ path, content: readFileSync(path) }));
      for (const marker of KAFKA_CLIENT_MARKERS) {
        for (const file of agentFiles) expect(file.content.includes(marker), `${marker} in ${file.path}`).toBe(false);
        // The same search finds them where the client is: the check above can fail.
        for (const file of bridgeFiles) expect(file.content.includes(marker), `${marker} in ${file.path}`).toBe(true);
      }
    });

    it("holds the executable, the unit, the README, the design and the copyright file, owned by root, with their modes", () => {
      const field = (name: string): string => execFileSync("dpkg-deb", ["-f", deb, name], { encoding: "utf8" }).trim();
      const fields = ["Package", "Version", "Architecture", "Depends"].map(field);
      expect(fields).toEqual(["edge-bridge", packageVersion(), "amd64", "passwd"]);
      expect(Number(field("Installed-Size")) * 1024).toBeGreaterThan(readFileSync(bridge.binary).length);
      expect(execFileSync("dpkg-deb", ["-I", deb], { encoding: "utf8" })).toMatch(/postinst[\s\S]*postrm[\s\S]*prerm/);
      const files = execFileSync("dpkg-deb", ["-c", deb], { encoding: "utf8" })
        .trim()
        .split("\n")
        .map((line) => line.split(/\s+/))
        .filter((columns) => !columns[0]?.startsWith("d"))
        .map((columns) => `${columns[0]} ${columns[1]} ${columns.at(-1)}`);
      const pages = documentationFiles("edge-bridge").map((file) => `-rw-r--r-- root/root ./${file.target}`);
      expect([...files].sort()).toEqual(
        [
          "-rw-r--r-- root/root ./lib/systemd/system/edge-bridge.service",
          "-rwxr-xr-x root/root ./usr/bin/edge-bridge",
          "-rw-r--r-- root/root ./usr/share/doc/edge-bridge/copyright",
          ...pages,
        ].sort(),
      );
      const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
      expect(readFileSync(join(unpacked, "usr/share/doc/edge-bridge/README.md"), "utf8")).toBe(readme);
      const design = readFileSync(new URL("../../../docs/DESIGN.md", import.meta.url), "utf8");
      expect(readFileSync(join(unpacked, "usr/share/doc/edge-bridge/docs/DESIGN.md"), "utf8")).toBe(design);
      // Every relative link of the shipped README names a file shipped beside it (the design among them).
      expect(relativeLinks(readme)).toContain("docs/DESIGN.md");
      for (const target of relativeLinks(readme))
        expect(existsSync(join(unpacked, "usr/share/doc/edge-bridge", target)), target).toBe(true);
    });

    it("has a machine-readable copyright file naming what its executable bundles, with their license texts", () => {
      const copyright = readFileSync(join(unpacked, "usr/share/doc/edge-bridge/copyright"), "utf8");
      const paragraphs = copyright.trimEnd().split("\n\n");
      expect(paragraphs[0]).toBe(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: edge-bridge\nUpstream-Contact: edge-bridge maintainers <edge-bridge@localhost>",
      );
      expect(paragraphs[1]).toBe("Files: *\nCopyright: the edge-bridge authors\nLicense: Apache-2.0");
      const executable = paragraphs[2] ?? "";
      expect(executable).toMatch(/^Files: usr\/bin\/edge-bridge\nCopyright: .*\nLicense: Apache-2\.0 and MIT and /);
      // The Kafka client is the bridge's own: its executable's paragraph names it, the agent's never does.
      const kafka = JSON.parse(
        readFileSync(new URL("../../../node_modules/@platformatic/kafka/package.json", import.meta.url), "utf8"),
      ) as { version: string; license: string };
      expect(executable).toContain(`\n @platformatic/kafka ${kafka.version}: ${kafka.license}\n`);
      expect(executable).toContain("\n Node.js 26.10.0: MIT");
      const agentContents = JSON.parse(readFileSync(agent.contents, "utf8")) as ExecutableContents;
      expect(agentContents.packages.map((work) => work.name)).not.toContain("@platformatic/kafka");
      // Each license named has its paragraph, and each non-Apache one carries the license files' text.
      const licenses = /^License: (.*)$/m.exec(executable)?.[1]?.split(" and ") ?? [];
      for (const license of licenses)
        expect(
          paragraphs.some((paragraph) => paragraph.startsWith(`License: ${license}\n `)),
          license,
        ).toBe(true);
      expect(copyright).toMatch(/^License: MIT\n Node\.js 26\.10\.0:\n \.\n Node\.js is licensed for use as follows:/m);
      // Continuation lines only: no blank line inside a paragraph.
      for (const paragraph of paragraphs)
        for (const line of paragraph.split("\n").slice(1)) expect(line).toMatch(/^( .*\S.*|[A-Z][A-Za-z-]+: .*)$/);
    });

    it("has maintainer scripts that make the user and tight dirs, enable without starting, stop on remove and clean up on purge", () => {
      const script = (name: string): string => join(unpacked, "DEBIAN", name);
      for (const name of ["postinst", "prerm", "postrm"]) execFileSync("sh", ["-n", script(name)]);

      const freshInstall = dryRun(
        script("postinst"),
        ["configure", ""],
        { systemd: true, accountExists: false },
        scratch,
      );
      expect(freshInstall).toEqual([
        "getent group edge-bridge",
        "groupadd --system edge-bridge",
        "getent passwd edge-bridge",
        "useradd --system --gid edge-bridge --home-dir /var/lib/edge-bridge --no-create-home --shell /usr/sbin/nologin " +
          "--comment edge-bridge NATS to Kafka bridge edge-bridge",
        // Settings readable by the service, not writable; state its own.
        "install -d -o root -g edge-bridge -m 0750 /etc/edge-bridge",
        "install -d -o edge-bridge -g edge-bridge -m 0750 /var/lib/edge-bridge",
        "chown -R -h edge-bridge:edge-bridge /var/lib/edge-bridge",
        "systemctl daemon-reload",
        "systemctl enable edge-bridge.service",
        // Restarts a running bridge only: never starts one without its Kafka and NATS settings.
        "systemctl try-restart edge-bridge.service",
      ]);
      const upgrade = dryRun(
        script("postinst"),
        ["configure", "0.0.1"],
        { systemd: true, accountExists: true },
        scratch,
      );
      expect(upgrade.filter((line) => /^(useradd|groupadd|systemctl enable)/.test(line))).toEqual([]);
      expect(upgrade).toContain("systemctl try-restart edge-bridge.service");
      const withoutSystemd = dryRun(
        script("postinst"),
        ["configure", ""],
        { systemd: false, accountExists: false },
        scratch,
      );
      expect(withoutSystemd.filter((line) => line.startsWith("systemctl"))).toEqual([]);

      expect(dryRun(script("prerm"), ["remove"], { systemd: true, accountExists: true }, scratch)).toEqual([
        "systemctl stop edge-bridge.service",
        "systemctl disable edge-bridge.service",
      ]);
      expect(dryRun(script("prerm"), ["upgrade", "0.2.0"], { systemd: true, accountExists: true }, scratch)).toEqual(
        [],
      );
      expect(dryRun(script("postrm"), ["purge"], { systemd: true, accountExists: true }, scratch)).toEqual([
        "systemctl daemon-reload",
        "rm -rf /etc/edge-bridge /var/lib/edge-bridge /etc/default/edge-bridge",
        "getent passwd edge-bridge",
        "userdel edge-bridge",
        "getent group edge-bridge",
        "groupdel edge-bridge",
      ]);
      expect(dryRun(script("postrm"), ["remove"], { systemd: true, accountExists: true }, scratch)).toEqual([
        "systemctl daemon-reload",
      ]);
    });

    it("installs a hardened unit that writes only its state dir, and systemd accepts it", () => {
      const unitPath = join(unpacked, "lib/systemd/system/edge-bridge.service");
      const unit = readFileSync(unitPath, "utf8");
      const directives = unitDirectives(unit);
      const expected: Record<string, string[]> = {
        User: ["edge-bridge"],
        Group: ["edge-bridge"],
        ExecStart: ["/usr/bin/edge-bridge run"],
        Environment: [
          "EDGE_BRIDGE_CONFIG_DIR=/etc/edge-bridge",
          "EDGE_BRIDGE_DATA_DIR=/var/lib/edge-bridge",
          "MALLOC_ARENA_MAX=2",
          "MALLOC_MMAP_THRESHOLD_=32768",
        ],
        EnvironmentFile: ["-/etc/default/edge-bridge"],
        ReadWritePaths: ["/var/lib/edge-bridge"],
        StateDirectory: ["edge-bridge"],
        UMask: ["0077"],
        NoNewPrivileges: ["yes"],
        ProtectSystem: ["strict"],
        ProtectHome: ["yes"],
        PrivateTmp: ["yes"],
        PrivateDevices: ["yes"],
        ProtectKernelTunables: ["yes"],
        ProtectKernelModules: ["yes"],
        ProtectKernelLogs: ["yes"],
        ProtectControlGroups: ["yes"],
        ProtectClock: ["yes"],
        CapabilityBoundingSet: [""],
        RestrictAddressFamilies: ["AF_UNIX AF_INET AF_INET6"],
        SystemCallFilter: ["@system-service"],
        Restart: ["on-failure"],
        RestartSec: ["5s"],
        RestartPreventExitStatus: ["2"],
        TimeoutStopSec: ["15s"],
        WantedBy: ["multi-user.target"],
      };
      for (const [key, values] of Object.entries(expected)) expect(directives.get(key), key).toEqual(values);
      // V8's JIT needs writable and executable memory.
      expect(directives.has("MemoryDenyWriteExecute")).toBe(false);

      if (!has("systemd-analyze")) return;
      // verify checks that ExecStart exists: a copy of the unit runs the unpacked binary instead.
      const verifyDir = join(scratch, "verify");
      mkdirSync(verifyDir);
      const copy = join(verifyDir, "edge-bridge.service");
      writeFileSync(copy, unit.replace("ExecStart=/usr/bin/edge-bridge ", `ExecStart=${binary} `));
      const verify = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8" });
      // verify exits 0 on unknown keys and bad values too, and says so on stderr: both must be clean.
      expect({ status: verify.status, stderr: verify.stderr.trim() }).toEqual({ status: 0, stderr: "" });
    });

    it("prints its version, and refuses a bad setting with exit 2 and one line naming it", () => {
      expect(execFileSync(binary, ["version"], { encoding: "utf8" }).trim()).toBe(packageVersion());
      const dirs = mkdtempSync(join(scratch, "bad-setting-"));
      const refused = spawnSync(binary, ["run"], {
        env: {
          ...process.env,
          EDGE_BRIDGE_KAFKA_BROKERS: "nonsense",
          EDGE_BRIDGE_DATA_DIR: join(dirs, "data"),
          EDGE_BRIDGE_CONFIG_DIR: join(dirs, "config"),
        },
        encoding: "utf8",
        timeout: 20_000,
      });
      expect(refused.status, refused.stderr).toBe(2);
      const lines = refused.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^edge-bridge: invalid setting EDGE_BRIDGE_KAFKA_BROKERS: /);
    });

    describe("against a real nats-server and Kafka broker", () => {
      let nats: NatsServerHandle;
      let kafka: KafkaBrokerHandle;
      let running: ChildProcess | undefined;

      beforeAll(async () => {
        [nats, kafka] = await Promise.all([startNatsServer(), startKafkaBroker()]);
        const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: nats.url });
        expect(setup.code, setup.stderr).toBe(0);
      }, 120_000);

      afterAll(async () => {
        if (running && running.exitCode === null && running.signalCode === null) {
          const exited = new Promise((resolve) => running?.once("exit", resolve));
          running.kill("SIGKILL");
          await exited;
        }
        await kafka?.dispose();
        await nats?.dispose();
      });

      it("bridges an agent's event into Kafka with the WASM crc32c, and exits 0 on SIGTERM within 10 s", async () => {
        // One event published as an agent does: through its outbox and JetStream publisher.
        const machineId = "pkg-bridge-1";
        const connection = await connect({ servers: nats.url });
        const outbox = openOutbox({
          dataDir: join(scratch, "agent-outbox"),
          clock: systemClock,
          logger: silentLogger(),
        });
        let eventId: string;
        try {
          outbox.start(createJetStreamPublisher(jetstream(connection)));
          const sink = createOutboxEventSink({
            machineId,
            subjects: machineSubjects(machineId),
            clock: systemClock,
            outbox,
          });
          ({ eventId } = await sink.emit({ type: EventType.hostname, body: { hostname: "packaged-host" } }));
          await waitFor("the event in JetStream", () => outbox.stats().pendingCount === 0, 20_000);
        } finally {
          await outbox.stop();
          await connection.close();
        }

        const configDir = join(scratch, "bridge-config");
        mkdirSync(configDir);
        const child = spawn(binary, ["run"], {
          env: {
            PATH: process.env.PATH ?? "/usr/bin:/bin",
            EDGE_BRIDGE_NATS_URL: nats.url,
            EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
            EDGE_BRIDGE_DATA_DIR: join(scratch, "bridge-data"),
            EDGE_BRIDGE_CONFIG_DIR: configDir,
          },
          stdio: ["ignore", "pipe", "pipe"],
        });
        running = child;
        let output = "";
        child.stdout.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-64_000)));
        child.stderr.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-64_000)));
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
          child.once("exit", (code, signal) => resolve({ code, signal })),
        );

        const record = await waitFor(
          "the event in Kafka",
          async () => {
            if (child.exitCode !== null) throw new Error(`edge-bridge exited with ${child.exitCode}:\n${output}`);
            const records = await readTopic(kafka.bootstrap, DEFAULT_TOPICS.events);
            return records.find((candidate) => candidate.header(EventHeader.eventId) === eventId);
          },
          60_000,
          500,
        ).catch((error: unknown) => {
          throw new Error(`${(error as Error).message}\n${output}`);
        });
        expect(record.keyText).toBe(machineId);
        expect(record.json).toMatchObject({
          eventId,
          eventType: EventType.hostname,
          machineId,
          body: { hostname: "packaged-host" },
        });

        // Every record batch carries a CRC-32C: with no @node-rs/crc32 beside the unpacked binary,
        // the one that produced it is the WASM one bundled in, not a native module from disk.
        const maps = readFileSync(`/proc/${child.pid}/maps`, "utf8");
        expect(maps).not.toMatch(/\.node$/m);
        // The config dir is only read.
        expect(readdirSync(configDir)).toEqual([]);

        child.kill("SIGTERM");
        const exit = await exited;
        // Within its shutdown deadline: past it the bridge says so and exits 1.
        expect(exit, output).toEqual({ code: 0, signal: null });
        expect(output).not.toContain("shutdown took too long");
      }, 120_000);
    });
  },
);
