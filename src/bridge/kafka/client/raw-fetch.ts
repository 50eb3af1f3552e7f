import { setTimeout as delay } from "node:timers/promises";
import {
  type API,
  type Broker,
  type Connection,
  type Consumer,
  FetchIsolationLevels,
  type fetchV17,
  findErrorBy,
  kGetApi,
  kGetConnection,
} from "@platformatic/kafka";

export type FetchPartitionResponse = fetchV17.FetchResponsePartition;

/** The Fetch call's arguments after the connection, the same in every version the client implements. */
type FetchArguments = [
  maxWaitMs: number,
  minBytes: number,
  maxBytes: number,
  isolationLevel: number,
  sessionId: number,
  sessionEpoch: number,
  topics: fetchV17.FetchRequestTopic[],
  forgottenTopicsData: fetchV17.FetchRequestForgottenTopicsData[],
  rackId: string,
];

/** Up to Fetch v12 a topic is named; from v13 on it is identified by its id. */
const LAST_VERSION_NAMING_TOPICS = 12;
/** A fetch outside any fetch session (KIP-227): session 0 with the final epoch asks for a full, sessionless fetch. */
const NO_SESSION = { id: 0, epoch: -1 } as const;

/** How long a fetch keeps trying while the partition's leader moves or the broker is briefly away. */
const RETRY_FOR_MS = 30_000;
const RETRY_DELAY_MS = 200;

export interface CommittedFetchRequest {
  readonly topic: string;
  readonly partition: number;
  readonly fetchOffset: bigint;
  readonly maxWaitMs: number;
  readonly maxBytes: number;
}

export interface RawFetchRequest extends Omit<CommittedFetchRequest, "topic"> {
  readonly broker: Broker;
  readonly topic: { readonly name: string; readonly id: string };
}

/**
 * fetchCommittedRaw at the partition's leader, found in the cluster's metadata; a failure the
 * client calls retriable (a leader moving, a topic just made, a connection lost) is tried again
 * with fresh metadata for up to 30 s, as the library's own consumer does for its fetches.
 */
export async function fetchCommitted(
  consumer: Consumer,
  request: CommittedFetchRequest,
): Promise<FetchPartitionResponse | null> {
  const startedMs = performance.now();
  let forceUpdate = false;
  for (;;) {
    try {
      const metadata = await consumer.metadata({ topics: [request.topic], forceUpdate });
      const topicMetadata = metadata.topics.get(request.topic);
      const leader = topicMetadata?.partitions[request.partition]?.leader;
      const broker = leader === undefined ? undefined : metadata.brokers.get(leader);
      if (!topicMetadata || broker === undefined)
        throw new Error(`topic ${request.topic} partition ${request.partition} is not known to the cluster`);
      return await fetchCommittedRaw(consumer, {
        ...request,
        broker,
        topic: { name: request.topic, id: topicMetadata.id },
      });
    } catch (error) {
      const retriable = error instanceof Error && findErrorBy(error, "canRetry", true) !== null;
      if (!retriable || performance.now() - startedMs > RETRY_FOR_MS) throw error;
      forceUpdate = true;
      await delay(RETRY_DELAY_MS);
    }
  }
}

/**
 * One read_committed Fetch request for one partition (records up to the last stable offset, with
 * the list of aborted transactions), answered exactly as the broker sent it.
 *
 * Not `Consumer.fetch`: the client library (2.12.1, the version we use) filters a read_committed
 * answer itself, and wrongly. For each producer it takes the first offset of the aborted
 * transaction the broker lists and the producer's LAST abort marker in the answer, and drops
 * everything of that producer in between. A transactional id keeps its producer id from owner to
 * owner, and an owner that dies after adding a partition to its transaction but before writing to
 * it leaves an abort marker the broker lists no aborted transaction for: every committed
 * transaction between an earlier aborted one and that marker vanished
 * (test/integration/kafka/committed-reader.test.ts). So the request goes through the client's own
 * connection and API table, and the caller filters as Kafka's consumer does.
 */
export function fetchCommittedRaw(
  consumer: Consumer,
  request: RawFetchRequest,
): Promise<FetchPartitionResponse | null> {
  return new Promise((resolve, reject) => {
    consumer[kGetApi]<FetchArguments, fetchV17.FetchResponse>("Fetch", (apiError, api) => {
      if (apiError || !api) {
        reject(apiError ?? new Error("the Kafka client has no Fetch API"));
        return;
      }
      consumer[kGetConnection](request.broker, (connectionError, connection) => {
        if (connectionError || !connection) {
          reject(
            connectionError ?? new Error(`no connection to Kafka broker ${request.broker.host}:${request.broker.port}`),
          );
          return;
        }
        sendFetch(api, request, connection).then(resolve, reject);
      });
    });
  });
}

async function sendFetch(
  api: API<FetchArguments, fetchV17.FetchResponse>,
  request: RawFetchRequest,
  connection: Connection,
): Promise<FetchPartitionResponse | null> {
  const topicKey = api.version <= LAST_VERSION_NAMING_TOPICS ? request.topic.name : request.topic.id;
  const response = await api.async(
    connection,
    request.maxWaitMs,
    1,
    request.maxBytes,
    FetchIsolationLevels.READ_COMMITTED,
    NO_SESSION.id,
    NO_SESSION.epoch,
    [
      {
        topicId: topicKey,
        partitions: [
          {
            partition: request.partition,
            fetchOffset: request.fetchOffset,
            currentLeaderEpoch: -1,
            lastFetchedEpoch: -1,
            partitionMaxBytes: request.maxBytes,
          },
        ],
      },
    ],
    [],
    "",
  );
  const topic = response.responses.find((each) => each.topicId === topicKey);
  return topic?.partitions.find((each) => each.partitionIndex === request.partition) ?? null;
}
