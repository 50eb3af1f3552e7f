import { describe, expect, it } from "vitest";
import {
  partitionFilter,
  partitionsOfTransform,
  partitionTransform,
  publishedSubjectOf,
  UNPARTITIONED_FILTER,
} from "../../../src/contracts/index.ts";

describe("partitioned streams: the stored subject and back", () => {
  it("reads the count back from our transform, 0 from none, null from another", () => {
    expect(partitionTransform(4)).toEqual({
      src: "machine.*.*",
      dest: "machine.{{wildcard(1)}}.{{wildcard(2)}}.4.{{partition(4,1)}}",
    });
    expect(partitionsOfTransform(partitionTransform(4))).toBe(4);
    expect(partitionsOfTransform(partitionTransform(16))).toBe(16);
    expect(partitionsOfTransform(undefined)).toBe(0);
    expect(partitionsOfTransform({ src: "", dest: "" })).toBe(0);
    // Spaces in the mapping functions are tolerated, as the server does.
    expect(
      partitionsOfTransform({
        src: "machine.*.*",
        dest: "machine.{{ wildcard(1) }}.{{wildcard(2)}}.4.{{ partition(4, 1) }}",
      }),
    ).toBe(4);
    // A count in the subject that is not the hash's, another hash key, other subjects: not ours.
    expect(
      partitionsOfTransform({
        src: "machine.*.*",
        dest: "machine.{{wildcard(1)}}.{{wildcard(2)}}.4.{{partition(8,1)}}",
      }),
    ).toBeNull();
    expect(
      partitionsOfTransform({
        src: "machine.*.*",
        dest: "machine.{{wildcard(1)}}.{{wildcard(2)}}.4.{{partition(4,2)}}",
      }),
    ).toBeNull();
    expect(partitionsOfTransform({ src: ">", dest: "x.>" })).toBeNull();
  });

  it("gives each reader one filter, and the published subject from the stored one", () => {
    expect(partitionFilter(4, 3)).toBe("machine.*.*.4.3");
    expect(UNPARTITIONED_FILTER).toBe("machine.*.*");
    expect(publishedSubjectOf("machine.m-1.telemetry.4.3", 4)).toBe("machine.m-1.telemetry");
    expect(publishedSubjectOf("machine.m-1.outbox.4.0", 4)).toBe("machine.m-1.outbox");
    // Another layout, or a subject stored before the transform: as it is.
    expect(publishedSubjectOf("machine.m-1.telemetry.8.3", 4)).toBe("machine.m-1.telemetry.8.3");
    expect(publishedSubjectOf("machine.m-1.telemetry", 4)).toBe("machine.m-1.telemetry");
  });
});
