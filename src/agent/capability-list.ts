import type { Capability, LinkUp } from "../capability/index.ts";
import type { ShutdownStep } from "../runtime/index.ts";

interface Entry {
  readonly name: string;
  readonly capability: Capability;
}

/**
 * The agent's capabilities in start order, and the loops over them: the only place that calls
 * their lifecycle methods. A capability's failure to take the link is recorded, never fatal.
 */
export class CapabilityList {
  readonly #entries: Entry[] = [];
  readonly #failed: (capability: string, error: unknown) => void;
  /** What each capability's status last said, for a status asked for without waiting. */
  readonly #lastStatus = new Map<string, unknown>();

  constructor(options: { failed: (capability: string, error: unknown) => void }) {
    this.#failed = options.failed;
  }

  get all(): readonly Capability[] {
    return this.#entries.map((entry) => entry.capability);
  }

  /** `name`: what its status and stop are named (the capability's own name when it gives one). */
  add(name: string, capability: Capability): void {
    this.#entries.push({ name: capability.name ?? name, capability });
  }

  async startAll(): Promise<void> {
    for (const { capability } of this.#entries) await capability.start?.();
  }

  /** Hands the link to every capability at once; resolves when each has taken it (or failed to). */
  async attachAll(link: LinkUp): Promise<void> {
    await Promise.all(
      this.#entries.map(({ name, capability }) =>
        Promise.resolve()
          .then(() => capability.attach?.(link))
          .catch((error: unknown) => this.#failed(name, error)),
      ),
    );
  }

  detachAll(server: string, reason: string): void {
    for (const { capability } of this.#entries) capability.detach?.(server, reason);
  }

  /** Stop steps, last started first. */
  stopSteps(): ShutdownStep[] {
    return [...this.#entries]
      .reverse()
      .map(({ name, capability }) => ({ name, stop: async () => void (await capability.stop?.()) }));
  }

  /** Every capability's status now (waiting for those that read it from disk). */
  async statuses(): Promise<Record<string, unknown>> {
    for (const { name, capability } of this.#entries) {
      if (!capability.status) continue;
      try {
        this.#lastStatus.set(name, await capability.status());
      } catch (error) {
        this.#failed(name, error);
      }
    }
    return Object.fromEntries(this.#lastStatus);
  }

  /** Every capability's status without waiting: what an asynchronous one said last. */
  statusesNow(): Record<string, unknown> {
    for (const { name, capability } of this.#entries) {
      const status = capability.status?.();
      if (status instanceof Promise) {
        status
          .then((value: unknown) => this.#lastStatus.set(name, value))
          .catch((error: unknown) => this.#failed(name, error));
      } else if (status !== undefined) this.#lastStatus.set(name, status);
    }
    return Object.fromEntries(this.#lastStatus);
  }
}
