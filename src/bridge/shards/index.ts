export { EventStreamProcessor } from "./event-stream-processor.ts";
export { InstanceIdInUseError, ShardLeases } from "./shard-leases.ts";
export type { BatchPositions, PreparedBatch, ShardProcessor, TakeoverContext } from "./shard-processor.ts";
export { ShardRunner, type ShardStats } from "./shard-runner.ts";
