import { describe, expect, it } from "vitest";
import { ConfigRejectedError, validateDocument } from "../../../src/config/index.ts";
import { TAG_LIMITS } from "../../../src/contracts/index.ts";

const tagsOf = (count: number, value = "v"): Record<string, string> =>
  Object.fromEntries(Array.from({ length: count }, (_, index) => [`k${index}`, value]));
const refusal = (document: unknown): string => {
  try {
    validateDocument(document, "machine.m1 revision 3");
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigRejectedError);
    return (error as Error).message;
  }
  throw new Error("accepted");
};

describe("configuration tags are bounded", () => {
  it("accepts tags within every limit, up to the limits themselves", () => {
    expect(validateDocument({ tags: tagsOf(TAG_LIMITS.maxTags) }, "here")).toEqual({
      tags: tagsOf(TAG_LIMITS.maxTags),
    });
    expect(
      validateDocument(
        { tags: { ["k".repeat(TAG_LIMITS.maxKeyBytes)]: "v".repeat(TAG_LIMITS.maxValueBytes) } },
        "here",
      ),
    ).toBeTruthy();
  });

  it("refuses too many tags, a long key, a long value, too many bytes in all and an empty key, saying which", () => {
    expect(refusal({ tags: tagsOf(TAG_LIMITS.maxTags + 1) })).toBe(
      `machine.m1 revision 3: invalid setting tags: ${TAG_LIMITS.maxTags + 1} tags, at most ${TAG_LIMITS.maxTags} are allowed`,
    );
    expect(refusal({ tags: { ["k".repeat(TAG_LIMITS.maxKeyBytes + 1)]: "v" } })).toMatch(
      /^machine\.m1 revision 3: invalid setting tags: tag key "k{32}"… is 129 bytes, at most 128$/,
    );
    expect(refusal({ tags: { site: "v".repeat(TAG_LIMITS.maxValueBytes + 1) } })).toBe(
      'machine.m1 revision 3: invalid setting tags: tag "site" has a value of 257 bytes, at most 256',
    );
    // Multi-byte characters count as the bytes they take on the wire.
    expect(refusal({ tags: { site: "é".repeat(129) } })).toMatch(/258 bytes, at most 256/);
    expect(refusal({ tags: tagsOf(40, "v".repeat(120)) })).toMatch(/tags: tags take \d+ bytes in all, at most 4096/);
    expect(refusal({ tags: { "": "v" } })).toMatch(/a tag key may not be empty/);
  });

  it("says what is wrong with a value as every entry point does: must be ..., with the value given", () => {
    expect(refusal({ heartbeatSeconds: "ten" })).toBe(
      'machine.m1 revision 3: invalid setting heartbeatSeconds: must be a whole number (got "ten")',
    );
    expect(refusal({ heartbeatSeconds: -5 })).toBe(
      "machine.m1 revision 3: invalid setting heartbeatSeconds: must be at least 1 (got -5)",
    );
    expect(refusal({ logLevel: "verbose" })).toBe(
      'machine.m1 revision 3: invalid setting logLevel: must be one of fatal, error, warn, info, debug, trace or silent (got "verbose")',
    );
    expect(refusal({ toolPolicy: { allowMissingChecksum: "yes" } })).toBe(
      'machine.m1 revision 3: invalid setting toolPolicy.allowMissingChecksum: must be true or false (got "yes")',
    );
  });

  it("refuses the 654 KB tags document of the issue", () => {
    const huge = Object.fromEntries(Array.from({ length: 5_000 }, (_, index) => [`tag-${index}`, "x".repeat(120)]));
    expect(JSON.stringify({ tags: huge }).length).toBeGreaterThan(600_000);
    expect(refusal({ tags: huge })).toMatch(/5000 tags, at most 64/);
  });

  it("drops the signed claims from the settings it returns", () => {
    expect(
      validateDocument({ heartbeatSeconds: 5, scope: "kv:defaults", serial: 3, signature: "c2ln" }, "here"),
    ).toEqual({ heartbeatSeconds: 5 });
  });
});
