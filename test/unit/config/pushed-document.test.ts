import { describe, expect, it } from "vitest";
import { judgePushedDocument } from "../../../src/config/pushed-document.ts";

describe("a configuration document pushed as a file, judged before it is applied", () => {
  it("is taken with its own revision, without that revision and the signed claims in what it sets", () => {
    const judgement = judgePushedDocument(
      { revision: 4, heartbeatSeconds: 30, scope: "kv:machine.m1", serial: 9, signature: "sig" },
      3,
    );
    expect(judgement).toEqual({ kind: "take", revision: 4, settings: { heartbeatSeconds: 30 } });
  });

  it("is refused without a whole-number revision of 1 or more, reported at the last pushed revision", () => {
    for (const revision of [undefined, 0, 1.5, "2"])
      expect(judgePushedDocument({ revision, heartbeatSeconds: 30 }, 7)).toEqual({
        kind: "refuse",
        revision: 7,
        reason: "a pushed configuration needs a whole-number revision of 1 or more",
      });
    expect(judgePushedDocument(null, 7)).toMatchObject({ kind: "refuse", revision: 7 });
  });

  it("is refused when its revision is not newer than the last one pushed, or a setting is wrong", () => {
    expect(judgePushedDocument({ revision: 3, heartbeatSeconds: 30 }, 3)).toEqual({
      kind: "refuse",
      revision: 3,
      reason: "revision 3 is not newer than the last pushed revision 3",
    });
    const invalid = judgePushedDocument({ revision: 5, heartbeatSeconds: -1 }, 3);
    expect(invalid).toMatchObject({ kind: "refuse", revision: 5 });
    expect(invalid.kind === "refuse" && invalid.reason).toContain(
      "pushed configuration revision 5: invalid setting heartbeatSeconds",
    );
  });
});
