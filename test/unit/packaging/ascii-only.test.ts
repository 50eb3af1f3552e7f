import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { asciiOnly } from "../../../scripts/build-sea.ts";

describe("asciiOnly: the single executable's bundle in ASCII", () => {
  it("leaves no character above U+007F and means the same in strings, templates, regular expressions and identifiers", () => {
    const source = [
      'const label = "µs °C — 日本 🚀";',
      "const template = `${label} ✓`;",
      "const unit = /(\\d+)(ns|µs|ms)/.exec('12µs')[2];",
      "const degrees = /[+-]([^°]*)/.exec('+21°C')[1];",
      "const café = 'ok';",
      "({ label, template, unit, degrees, cafe: café });",
    ].join("\n");
    const escaped = asciiOnly(source);
    expect(/[\u0080-\uffff]/.test(escaped)).toBe(false);
    expect(runInNewContext(escaped)).toEqual(runInNewContext(source));
    expect(runInNewContext(escaped)).toEqual({
      label: "µs °C — 日本 🚀",
      template: "µs °C — 日本 🚀 ✓",
      unit: "µs",
      degrees: "21",
      cafe: "ok",
    });
  });
});
