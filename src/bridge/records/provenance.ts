import { EventHeader } from "../../contracts/index.ts";
import type { SourceMessage } from "./source-message.ts";

/** Whether a stored message may be taken as the word of the machine its subject names. */
export type Provenance =
  | { readonly kind: "machine"; readonly machineId: string }
  | { readonly kind: "unattributed"; readonly reason: string };

/**
 * JetStream does not record who published a stored message, and a stream stores whatever reaches
 * its subjects: a publish acknowledgement the server sends to a reply subject a client chose
 * (`machine.<victim>.telemetry`), another server answer, a message of a client the site allowed
 * too much. A machine's own events carry `X-Machine-ID` naming the machine of their subject (the
 * agent sets it on every event; a server answer carries none), and only that machine's identity
 * may publish on its subjects (`edge-agent permissions`), so the header must name exactly the
 * subject's machine. Anything else is nobody's: never keyed to, counted for or applied to the
 * machine the subject names.
 */
export function provenanceOf(message: SourceMessage, subjectMachineId: string): Provenance {
  // A loop, not filter and map: this runs for every event the bridge reads.
  const claimed: string[] = [];
  for (const [name, value] of message.headers) if (name === EventHeader.machineId) claimed.push(value);
  if (claimed.length === 0)
    return {
      kind: "unattributed",
      reason: `no ${EventHeader.machineId} header: not an event of machine ${subjectMachineId} (a stored publish acknowledgement or another server answer carries none)`,
    };
  if (claimed.length > 1 || claimed[0] !== subjectMachineId)
    return {
      kind: "unattributed",
      reason: `${EventHeader.machineId} ${JSON.stringify(claimed.join(", "))} does not name machine ${subjectMachineId}, whose subject it was stored on`,
    };
  return { kind: "machine", machineId: subjectMachineId };
}
