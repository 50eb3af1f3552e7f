import { describe, expect, it } from "vitest";
import {
  CONFIG_SETTING_PATHS,
  ConfigRejectedError,
  settingPathProblem,
  settingValue,
  validateDocument,
} from "../../../src/config/index.ts";

describe("the settings a remote configuration document may hold", () => {
  it("come from the AgentConfiguration schema, dotted", () => {
    expect(CONFIG_SETTING_PATHS).toEqual([
      "heartbeatSeconds",
      "telemetrySchedule",
      "inventorySchedule",
      "logLevel",
      "tags",
      "outbox.maxBytes",
      "outbox.maxAgeSeconds",
      "toolPolicy.allowMissingChecksum",
    ]);
    expect(settingPathProblem("outbox.maxBytes")).toBeNull();
    expect(settingPathProblem("tags.site")).toBeNull();
  });

  it("an unknown key is refused with the closest known one", () => {
    expect(settingPathProblem("heartbeatSecs")).toMatch(
      /^unknown setting "heartbeatSecs": did you mean "heartbeatSeconds"\? \(settings: heartbeatSeconds, /,
    );
    expect(settingPathProblem("outbox")).toMatch(/^unknown setting "outbox"/);
    expect(settingPathProblem("tags.")).toMatch(/^unknown setting "tags\."/);
  });

  it("a document with a typo'd key is refused, nested ones included, not applied as 'nothing changed'", () => {
    expect(() => validateDocument({ heartbeatSecs: 5 }, "machine.m1")).toThrow(ConfigRejectedError);
    expect(() => validateDocument({ heartbeatSecs: 5 }, "machine.m1")).toThrow(
      'machine.m1: unknown setting "heartbeatSecs": did you mean "heartbeatSeconds"?',
    );
    expect(() => validateDocument({ outbox: { maxByte: 5 } }, "defaults")).toThrow('did you mean "outbox.maxBytes"?');
    expect(() => validateDocument({ natsUrl: "nats://x" }, "defaults")).toThrow('unknown setting "natsUrl"');
    // The claims of a signed document and a pushed file's revision are not settings, and not unknown either.
    expect(
      validateDocument(
        { heartbeatSeconds: 5, revision: 3, scope: "kv:defaults", serial: 9, signature: "c2ln" },
        "defaults",
      ),
    ).toEqual({ heartbeatSeconds: 5, revision: 3 });
    expect(validateDocument({ tags: { anything: "goes" } }, "defaults")).toEqual({ tags: { anything: "goes" } });
  });

  it("`config set tags` takes k=v[,k=v] as EDGE_AGENT_TAGS does, or JSON", () => {
    expect(settingValue("tags", "site=lab")).toEqual({ site: "lab" });
    expect(settingValue("tags", "site=lab, rack=4")).toEqual({ site: "lab", rack: "4" });
    expect(settingValue("tags", '{"site":"lab"}')).toEqual({ site: "lab" });
    expect(() => settingValue("tags", "lab")).toThrow('tags: "lab" must be key=value[,key=value] or a JSON object');
    expect(settingValue("heartbeatSeconds", "2")).toBe(2);
    expect(settingValue("logLevel", "debug")).toBe("debug");
  });
});
