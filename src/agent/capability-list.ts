import type { Capability, LinkUp } from "../capability/index.ts";
import type { ShutdownStep } from "../runtime/index.ts";

/**
 * The agent's capabilities in start order, and the loops over them: the only place that calls
 * their lifecycle methods. A capability's failure to take the link is recorded, never fatal.
 */
export class CapabilityList {
  readonly #capabilities: Capability[] = [];
  readonly #failed: (capability: string, error: unknown) => void;
  /** What each capability's status last said, for a status asked for without waiting. */
  readonly #lastStatus = new Map<string, unknown>();

  constructor(options: { failed: (capability: string, error: unknown) => void }) {
    this.#failed = options.failed;
  }

  get all(): readonly Capability[] {
    return this.#capabilities;
  }

  add(...capabilities: Capability[]): void {
    this.#capabilities.push(...capabilities);
  }

  async startAll(): Promise<void> {
    for (const capability of this.#capabilities) await capability.start?.();
  }

  /** Hands the link to every capability at once; resolves when each has taken it (or failed to). */
  async attachAll(link: LinkUp): Promise<void> {
    await Promise.all(
      this.#capabilities.map((capability) =>
        Promise.resolve()
          .then(() => capability.attach?.(link))
          .catch((error: unknown) => this.#failed(capability.name, error)),
      ),
    );
  }

  detachAll(server: string, reason: string): void {
    for (const capability of this.#capabilities) capability.detach?.(server, reason);
  }

  /** Stop steps, last started first. */
  stopSteps(): ShutdownStep[] {
    return [...this.#capabilities]
      .reverse()
      .map((capability) => ({ name: capability.name, stop: async () => void (await capability.stop?.()) }));
  }

  /** Every capability's status now (waiting for those that read it from disk). */
  async statuses(): Promise<Record<string, unknown>> {
    for (const capability of this.#capabilities) {
      if (!capability.status) continue;
      try {
        this.#lastStatus.set(capability.name, await capability.status());
      } catch (error) {
        this.#failed(capability.name, error);
      }
    }
    return Object.fromEntries(this.#lastStatus);
  }

  /** Every capability's status without waiting: what an asynchronous one said last. */
  statusesNow(): Record<string, unknown> {
    for (const capability of this.#capabilities) {
      const status = capability.status?.();
      if (status instanceof Promise) {
        status
          .then((value: unknown) => this.#lastStatus.set(capability.name, value))
          .catch((error: unknown) => this.#failed(capability.name, error));
      } else if (status !== undefined) this.#lastStatus.set(capability.name, status);
    }
    return Object.fromEntries(this.#lastStatus);
  }
}
