import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { EdgeError } from "../../../src/errors/index.ts";
import { readJsonSettingsFile, SettingsError } from "../../../src/settings-kit/index.ts";

const SRC = join(import.meta.dirname, "../../../src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith(".ts")
        ? [join(dir, entry.name)]
        : [],
  );
}

/** Every `class X extends Y` of src/, with the file it is in and whether it is exported. */
const CLASSES = sourceFiles(SRC).flatMap((file) =>
  [...readFileSync(file, "utf8").matchAll(/^(export )?(?:abstract )?class (\w+) extends ([\w.]+)/gm)].map((match) => ({
    file,
    exported: match[1] !== undefined,
    name: match[2] ?? "",
    base: match[3] ?? "",
  })),
);

describe("EdgeError: one base for every error of ours", () => {
  it("keeps the cause it is given (and sets none when there is none), and is named after its class", () => {
    class ProbeError extends EdgeError {
      readonly code = "EDGE_PROBE";
    }
    const cause = new Error("the library's own words");
    const wrapped = new ProbeError("what happened, and what to do", { cause });
    expect(wrapped).toBeInstanceOf(Error);
    expect(wrapped.cause).toBe(cause);
    expect(wrapped.name).toBe("ProbeError");
    expect(wrapped.code).toBe("EDGE_PROBE");
    expect(Object.hasOwn(new ProbeError("alone"), "cause")).toBe(false);
  });

  it("an error made from another keeps it as its cause: a settings file that is not JSON keeps the parser's error", () => {
    const failure = (() => {
      try {
        readJsonSettingsFile("settings.json", () => "{ not json");
      } catch (error) {
        return error;
      }
      return null;
    })();
    expect(failure).toBeInstanceOf(SettingsError);
    expect((failure as SettingsError).code).toBe("EDGE_BAD_SETTING");
    expect((failure as SettingsError).cause).toBeInstanceOf(SyntaxError);
  });

  it("no class of src/ extends a built-in error: every error class derives from EdgeError", () => {
    const builtIn = CLASSES.filter(
      (entry) =>
        /^(Error|TypeError|RangeError|SyntaxError|AggregateError)$/.test(entry.base) && entry.name !== "EdgeError",
    ).map((entry) => `${relative(SRC, entry.file)}: ${entry.name} extends ${entry.base}`);
    expect(builtIn).toEqual([]);
  });

  it("every exported error class, imported, has EdgeError in its prototype chain", async () => {
    const errorClasses = CLASSES.filter(
      (entry) => entry.exported && entry.name.endsWith("Error") && entry.name !== "EdgeError",
    );
    expect(errorClasses.length).toBeGreaterThan(40);
    const outside: string[] = [];
    for (const entry of errorClasses) {
      const module = (await import(pathToFileURL(entry.file).href)) as Record<string, unknown>;
      const errorClass = module[entry.name];
      if (typeof errorClass !== "function" || !(errorClass.prototype instanceof EdgeError))
        outside.push(`${relative(SRC, entry.file)}: ${entry.name}`);
    }
    expect(outside).toEqual([]);
  });
});
