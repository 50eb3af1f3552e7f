import { describe, expect, it } from "vitest";
import { restartTimeline, serverWarnings } from "../../../bench/server-log.ts";

const RESTARTED = `[100] 2026/12/07 04:30:00.000000 [INF] Starting nats-server
[100] 2026/12/07 04:30:00.300000 [INF] Server is ready
[100] 2026/12/07 04:33:20.000000 [WRN] 127.0.0.1:41176 - cid:1987 - "v3.4.0:node:sim-000001" - Readloop processing time: 2.5s
[100] 2026/12/07 04:33:21.000000 [WRN] 127.0.0.1:41177 - cid:1990 - "v3.4.0:node:sim-000002" - Readloop processing time: 3.1s
[100] 2026/12/07 04:33:25.000000 [INF] Trapped "terminated" signal
[100] 2026/12/07 04:33:25.250000 [INF] Initiating Shutdown...
[100] 2026/12/07 04:33:26.100000 [INF] Server Exiting..
[200] 2026/12/07 04:33:26.150000 [INF] Starting nats-server
[200] 2026/12/07 04:33:26.600000 [INF] Took 315.9909ms to start JetStream
[200] 2026/12/07 04:33:26.636221 [INF] Server is ready
[200] 2026/12/07 04:33:32.575723 [ERR] 127.0.0.1:41176 - cid:1987 - Problem registering with account "APP": connection closed
`;

describe("the fleet benchmark's reading of nats-server's log", () => {
  it("times the last restart: the stop, the gap, the start until ready", () => {
    expect(restartTimeline(RESTARTED)).toEqual({ shutdownMs: 1100, downMs: 50, startupMs: 486 });
  });

  it("finds no restart in a log of one start, or of a stop without its start", () => {
    expect(restartTimeline(RESTARTED.split("\n").slice(0, 4).join("\n"))).toBeNull();
    expect(restartTimeline(RESTARTED.split("\n").slice(0, 7).join("\n"))).toBeNull();
  });

  it("counts warnings and errors by kind, without client addresses, ids and figures", () => {
    expect(serverWarnings(RESTARTED)).toEqual({
      "WRN Readloop processing time: N": 2,
      'ERR Problem registering with account "APP": connection closed': 1,
    });
  });
});
