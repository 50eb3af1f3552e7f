import { AuthenticationError, MultipleErrors, NetworkError, ProtocolError, ResponseError } from "@platformatic/kafka";
import { describe, expect, it } from "vitest";
import { classifyKafkaError, describeKafkaError } from "../../../src/bridge/kafka/kafka-errors.ts";

const response = (id: string): Error => new MultipleErrors("Received response with error", [new ProtocolError(id)]);

describe("classifyKafkaError", () => {
  it("tells fencing, oversize, for-good and passing trouble apart, wherever the broker's answer sits in the error", () => {
    expect(classifyKafkaError(response("PRODUCER_FENCED"))).toBe("fenced");
    expect(classifyKafkaError(response("INVALID_PRODUCER_EPOCH"))).toBe("fenced");
    expect(classifyKafkaError(response("MESSAGE_TOO_LARGE"))).toBe("too-large");
    expect(classifyKafkaError(response("TOPIC_AUTHORIZATION_FAILED"))).toBe("fatal");
    expect(classifyKafkaError(response("TRANSACTIONAL_ID_AUTHORIZATION_FAILED"))).toBe("fatal");
    expect(
      classifyKafkaError(
        new NetworkError("boom", {
          cause: new AuthenticationError("SASL failed", { cause: new ProtocolError("SASL_AUTHENTICATION_FAILED") }),
        }),
      ),
    ).toBe("fatal");
    expect(classifyKafkaError(response("NOT_LEADER_OR_FOLLOWER"))).toBe("retriable");
    expect(classifyKafkaError(new NetworkError("Connection closed"))).toBe("retriable");
    expect(classifyKafkaError(new Error("anything else"))).toBe("retriable");
    expect(ResponseError.code).toBe("PLT_KFK_RESPONSE");
  });

  it("describes an error in one line, our codes and the broker's ids each named so neither reads like a setting", () => {
    expect(describeKafkaError(response("PRODUCER_FENCED"))).toBe(
      "Received response with error [Kafka: PRODUCER_FENCED]",
    );
    const deadline = Object.assign(new Error("no answer from Kafka within 30000 ms"), {
      code: "EDGE_BRIDGE_KAFKA_DEADLINE",
    });
    const wrapped = Object.assign(new Error("a transaction failed", { cause: deadline }), {
      code: "EDGE_BRIDGE_KAFKA",
    });
    expect(describeKafkaError(wrapped)).toBe(
      "a transaction failed [error codes EDGE_BRIDGE_KAFKA, EDGE_BRIDGE_KAFKA_DEADLINE]",
    );
  });
});
