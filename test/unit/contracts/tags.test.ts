import { describe, expect, it } from "vitest";
import { tagKeyValuesOf, tagNameOf, tagValueIn } from "../../../src/contracts/index.ts";

describe("tags as key:value strings", () => {
  it("writes and reads them back, a value keeping its own colons", () => {
    const pairs = tagKeyValuesOf({ site: "lyon", url: "http://x:8080", empty: "" });
    expect(pairs).toEqual(["site:lyon", "url:http://x:8080", "empty:"]);
    expect(pairs.map(tagNameOf)).toEqual(["site", "url", "empty"]);
    expect(tagValueIn(pairs, "url")).toBe("http://x:8080");
    expect(tagValueIn(pairs, "empty")).toBe("");
    expect(tagValueIn(pairs, "si")).toBeUndefined();
    expect(tagValueIn(["bare"], "bare")).toBeUndefined();
    expect(tagNameOf("bare")).toBe("bare");
  });
});
