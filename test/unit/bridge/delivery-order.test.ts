import { describe, expect, it } from "vitest";
import { type Admission, DeliveryOrder } from "../../../src/bridge/source/delivery-order.ts";

const admitAll = (order: DeliveryOrder, sequences: readonly number[]): Admission["kind"][] =>
  sequences.map((sequence) => order.admit(sequence).kind);

describe("DeliveryOrder: the stream source's gap logic", () => {
  it("takes a stream in order from the position it starts after", () => {
    const order = new DeliveryOrder(41);
    expect(order.expected).toBe(42);
    expect([42, 43, 44].map((sequence) => order.admit(sequence))).toEqual([
      { kind: "take", missingBefore: 0 },
      { kind: "take", missingBefore: 0 },
      { kind: "take", missingBefore: 0 },
    ]);
    expect(order.expected).toBe(45);
  });

  it("drops every copy of what it handed out (a redelivery after the ack wait comes from the start again)", () => {
    const order = new DeliveryOrder();
    expect(admitAll(order, [1, 2, 3, 1, 2, 3, 2])).toEqual(["take", "take", "take", "copy", "copy", "copy", "copy"]);
    expect(order.expected).toBe(4);
  });

  it("counts what was gone from the stream when the first message of a (re)made consumer is higher, and never waits for it", () => {
    const order = new DeliveryOrder(10);
    expect(order.admit(15)).toEqual({ kind: "take", missingBefore: 4 });
    expect(order.expected).toBe(16);
  });

  it("calls a jump on a consumer already reading a gap, without moving: the consumer must be made again at the expected sequence", () => {
    const order = new DeliveryOrder();
    expect(admitAll(order, [1, 2])).toEqual(["take", "take"]);
    expect(order.admit(5)).toEqual({ kind: "gap" });
    expect(order.admit(6)).toEqual({ kind: "gap" });
    expect(order.expected).toBe(3);
    // Made again at 3: it delivers 3 (the redelivery that was due), then on in order.
    order.repositioned();
    expect(admitAll(order, [3, 4, 5])).toEqual(["take", "take", "take"]);
  });

  it("after repositioning, a message that was really gone is counted once, and the next jump is a gap again", () => {
    const order = new DeliveryOrder();
    expect(admitAll(order, [1, 2, 4])).toEqual(["take", "take", "gap"]);
    order.repositioned();
    expect(order.admit(4)).toEqual({ kind: "take", missingBefore: 1 });
    expect(order.admit(7)).toEqual({ kind: "gap" });
  });

  it("never moves back: a lower sequence as the first after repositioning (a late delivery of the consumer it replaced) is a copy", () => {
    const order = new DeliveryOrder();
    expect(admitAll(order, [1, 2, 3])).toEqual(["take", "take", "take"]);
    order.repositioned();
    expect(order.admit(2)).toEqual({ kind: "copy" });
    expect(order.expected).toBe(4);
    expect(order.admit(4)).toEqual({ kind: "take", missingBefore: 0 });
  });

  it("hands out strictly rising sequences whatever a server delivers (seeded random deliveries)", () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 200; round++) {
      const order = new DeliveryOrder();
      const taken: number[] = [];
      for (let delivery = 0; delivery < 100; delivery++) {
        // Around the expected sequence: copies, the next one, jumps ahead.
        const sequence = Math.max(1, order.expected + Math.floor(random() * 7) - 3);
        const admission = order.admit(sequence);
        if (admission.kind === "take") taken.push(sequence);
        if (admission.kind === "gap" || random() < 0.05) order.repositioned();
      }
      for (let index = 1; index < taken.length; index++)
        expect(taken[index]).toBeGreaterThan(taken[index - 1] as number);
    }
  });

  describe("filtered (one partition of a stream): gaps told by the consumer's own sequence", () => {
    /** [stream sequence, consumer sequence] pairs, as a filtered consumer delivers them. */
    const admitPairs = (order: DeliveryOrder, pairs: ReadonlyArray<readonly [number, number]>) =>
      pairs.map(([sequence, delivery]) => order.admit(sequence, delivery));

    it("takes the stream sequences its filter skips to, one delivery after another, counting nothing missing", () => {
      const order = new DeliveryOrder(0, { filtered: true });
      expect(
        admitPairs(order, [
          [3, 1],
          [7, 2],
          [8, 3],
          [20, 4],
        ]),
      ).toEqual(Array(4).fill({ kind: "take", missingBefore: 0 }));
      expect(order.expected).toBe(21);
    });

    it("calls a skipped delivery a gap (something in flight was lost), and reads on in order once made again", () => {
      const order = new DeliveryOrder(0, { filtered: true });
      expect(admitPairs(order, [[3, 1]]).map((admission) => admission.kind)).toEqual(["take"]);
      // Delivery 2 (stream 7) never arrived: 3 is a gap, and so is anything after it.
      expect(order.admit(9, 3)).toEqual({ kind: "gap" });
      expect(order.admit(12, 4)).toEqual({ kind: "gap" });
      expect(order.expected).toBe(4);
      order.repositioned();
      expect(
        admitPairs(order, [
          [7, 1],
          [9, 2],
          [12, 3],
        ]).map((admission) => admission.kind),
      ).toEqual(["take", "take", "take"]);
    });

    it("drops a redelivery as a copy and reads on; a late copy of the replaced consumer first says nothing", () => {
      const order = new DeliveryOrder(0, { filtered: true });
      expect(
        admitPairs(order, [
          [3, 1],
          [7, 2],
          [3, 3],
          [9, 4],
        ]).map((admission) => admission.kind),
      ).toEqual(["take", "take", "copy", "take"]);
      order.repositioned();
      // Numbered by the consumer it replaced: dropped, and the new one's first delivery is trusted.
      expect(order.admit(7, 57).kind).toBe("copy");
      expect(order.admit(11, 1)).toEqual({ kind: "take", missingBefore: 0 });
    });
  });
});
