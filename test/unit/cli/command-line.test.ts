import { describe, expect, it } from "vitest";
import { flagsOf, parseCommandLine } from "../../../src/cli/command-line.ts";
import { COMMANDS } from "../../../src/cli/commands.ts";
import { runCommandLine } from "../../../src/cli/dispatch.ts";
import { commandHelp, overallHelp } from "../../../src/cli/help.ts";
import { closestMatch } from "../../../src/runtime/closest-match.ts";
import { SETTING_SPECS } from "../../../src/settings/index.ts";

/** The CLI as an ordinary user on Linux runs it (help shows defaults for whoever asks). */
const linuxUser = { platform: "linux", privileged: false } as const;

const command = (name: string) => {
  const found = COMMANDS.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no command ${name}`);
  return found;
};

/** Runs the command line in this process; a command's `run` would fail the test, so help must not reach it. */
async function runLine(
  args: string[],
): Promise<{ code: number; stdout: string } | { error: string; exitCode: number }> {
  let stdout = "";
  try {
    const code = await runCommandLine(args, {
      env: { HOME: "/home/someone" },
      host: linuxUser,
      stdout: (text) => {
        stdout += text;
      },
    });
    return { code, stdout };
  } catch (error) {
    return { error: (error as Error).message, exitCode: (error as { exitCode: number }).exitCode };
  }
}

describe("closestMatch", () => {
  it("finds the word meant by a typo, and nothing for another word", () => {
    expect(closestMatch("stauts", ["run", "status", "enroll"])).toBe("status");
    expect(closestMatch("--jsn", ["--json", "--server"])).toBe("--json");
    expect(closestMatch("heartbeatSecs", ["heartbeatSeconds", "logLevel"])).toBe("heartbeatSeconds");
    expect(closestMatch("dev", ["dev-setup", "version"])).toBe("dev-setup");
    expect(closestMatch("frobnicate", ["run", "status"])).toBeNull();
  });
});

describe("edge-agent's command line", () => {
  it("`<command> --help` prints that command's help and runs nothing, for every command", async () => {
    for (const spec of COMMANDS) {
      const guarded = { ...spec, run: () => Promise.reject(new Error(`${spec.name} ran`)) };
      for (const flag of ["--help", "-h"]) {
        let stdout = "";
        const code = await runCommandLine(
          [spec.name, flag],
          {
            env: {},
            host: linuxUser,
            stdout: (text) => {
              stdout += text;
            },
          },
          [guarded],
        );
        expect(code).toBe(0);
        expect(stdout).toContain(`usage: edge-agent ${spec.name}`);
      }
    }
    // Even beside other options, a value-taking one without its value, or an unknown one.
    expect(parseCommandLine(command("run"), ["--nats-url", "nats://x", "--help"], COMMANDS)).toEqual({ help: true });
    expect(parseCommandLine(command("status"), ["--jsn", "--help"], COMMANDS)).toEqual({ help: true });
  });

  it("a command's help shows its flags with defaults, examples and exit codes", () => {
    const help = commandHelp(command("status"), linuxUser, { HOME: "/home/someone" });
    expect(help).toContain("  --json                      one JSON object, for scripts");
    // The default for whoever asks: root gets the system's data dir, a user their own.
    const dataDirLine = (dataDir: string): string =>
      `--data-dir DIR              outbox, status file, machine id and state (default ${dataDir}) [EDGE_AGENT_DATA_DIR]`;
    expect(help).toContain(dataDirLine("/home/someone/.local/state/edge-agent"));
    expect(
      commandHelp(command("status"), { platform: "linux", privileged: true }, { HOME: "/home/someone" }),
    ).toContain(dataDirLine("/var/lib/edge-agent"));
    expect(help).toContain("--heartbeat-seconds N       seconds between heartbeats (default 60)");
    expect(help).toMatch(/examples:\n {2}sudo edge-agent status\n/);
    expect(help).toMatch(/exit codes:\n {2}0 {3}done\n {2}1 {3}failed .*the agent is not running\n {2}2 {3}bad usage/);
    for (const spec of COMMANDS) {
      const text = commandHelp(spec, linuxUser, {});
      for (const flag of Object.keys(flagsOf(spec))) expect(text, `${spec.name} --${flag}`).toContain(`--${flag}`);
      expect(text).toContain("examples:");
      expect(text).toContain("exit codes:");
    }
  });

  it("`edge-agent --help` lists every command and every flag", async () => {
    const result = await runLine(["--help"]);
    expect(result).toMatchObject({ code: 0 });
    const help = overallHelp(COMMANDS, linuxUser, {});
    for (const spec of COMMANDS) {
      expect(help).toContain(`  ${spec.name} `);
      for (const flag of Object.keys(flagsOf(spec))) expect(help, `--${flag}`).toContain(`--${flag}`);
    }
    for (const spec of SETTING_SPECS) expect(help).toContain(spec.env[0]);
    expect(await runLine(["help"])).toMatchObject({ code: 0 });
    expect(await runLine(["help", "config"])).toMatchObject({
      code: 0,
      stdout: expect.stringContaining("usage: edge-agent config get | set KEY VALUE | unset KEY"),
    });
  });

  it("an unknown command or option gets a short 'did you mean' (exit 2)", async () => {
    expect(await runLine(["stauts"])).toEqual({
      error: 'unknown command "stauts": did you mean "status"? (edge-agent --help lists the commands)',
      exitCode: 2,
    });
    expect(await runLine(["frobnicate"])).toEqual({
      error: 'unknown command "frobnicate" (edge-agent --help lists the commands)',
      exitCode: 2,
    });
    expect(await runLine(["status", "--jsn"])).toEqual({
      error: "status has no option --jsn: did you mean --json? (edge-agent status --help lists its options)",
      exitCode: 2,
    });
    expect(await runLine(["status", "--skip-link-test"])).toEqual({
      error: "status has no option --skip-link-test (enroll takes it) (edge-agent status --help lists its options)",
      exitCode: 2,
    });
    expect(await runLine(["version", "now"])).toEqual({
      error: 'version takes no arguments but got "now" too (usage: edge-agent version)',
      exitCode: 2,
    });
    expect(await runLine([])).toEqual({
      error: "no command given (edge-agent --help lists the commands)",
      exitCode: 2,
    });
    expect(await runLine(["--json", "status"])).toMatchObject({
      exitCode: 2,
      error: expect.stringContaining("the command comes first"),
    });
    for (const result of [await runLine(["stauts"]), await runLine(["status", "--jsn"])]) {
      const message = "error" in result ? result.error : "";
      // Balanced quotes: parseArgs's own unknown-option line had an unbalanced one.
      expect((message.match(/'/g) ?? []).length % 2).toBe(0);
      expect((message.match(/"/g) ?? []).length % 2).toBe(0);
    }
  });

  it("config set says what is wrong with a value as start-up does, before connecting; a negative number is a value", async () => {
    // Nothing listens on port 1: a value refused here was never sent anywhere.
    const configSet = (value: string) =>
      runLine(["config", "set", "--nats-url", "nats://127.0.0.1:1", "heartbeatSeconds", value]);
    expect(await configSet("ten")).toEqual({
      error: 'defaults: invalid setting heartbeatSeconds: must be a whole number (got "ten")',
      exitCode: 2,
    });
    expect(await configSet("-5")).toEqual({
      error: "defaults: invalid setting heartbeatSeconds: must be at least 1 (got -5)",
      exitCode: 2,
    });
    expect(parseCommandLine(command("config"), ["set", "--machine", "m1", "heartbeatSeconds", "-5"], COMMANDS)).toEqual(
      { help: false, flags: { machine: "m1" }, positionals: ["set", "heartbeatSeconds", "-5"] },
    );
  });

  it("every command has a unique name, a summary, examples and exit codes", () => {
    expect(new Set(COMMANDS.map((spec) => spec.name)).size).toBe(COMMANDS.length);
    for (const spec of COMMANDS) {
      expect(spec.summary).not.toBe("");
      expect(spec.examples.length).toBeGreaterThan(0);
      expect(spec.exitCodes).toContain(0);
    }
  });
});
