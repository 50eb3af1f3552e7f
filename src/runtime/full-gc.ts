import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * A full garbage collection of this thread's V8 heap, on request, without starting Node with
 * `--expose-gc`: the flag is set now and a new context gets `gc` (the way Jest's leak detector
 * does it). The flag only installs `gc` in contexts made after it; it changes no collector
 * behaviour. V8 collects when allocating, so a process that stops allocating keeps all the garbage
 * of its last burst (hundreds of MB after a backlog): a caller that knows it went idle asks once.
 */
export function fullGarbageCollector(): () => void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  return () => gc();
}
