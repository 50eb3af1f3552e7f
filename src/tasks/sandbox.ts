import { execFile } from "node:child_process";
import { platform as hostPlatform } from "node:os";
import type { TaskProcessSpec } from "./process-tree.ts";

/** The program that confines a task (bubblewrap): looked up on the PATH of the task's environment. */
export const BWRAP = "bwrap";

/**
 * The arguments that run `spec` confined (`tasks.confine: working-dir`): the whole file system
 * read-only (/tmp too: a private one would hide a working dir or a script under it), but the
 * working dir, writable, as itself, where TMPDIR points (unless the task sets its own); `hidden`
 * folders (the agent's own config and data: its credentials, settings, outbox and trust marks) are
 * empty in there, but for the working dir and the `readable` ones (the task's own folder, which holds
 * its script) shown inside them; a /dev and /proc of its own, in a PID
 * namespace of its own (when its first process ends, every process in it is killed by the kernel, a
 * daemon included), ended too if the agent dies. Each hidden folder must exist (bwrap cannot make a
 * mount point on the read-only root).
 */
export function confinedSpec(
  spec: TaskProcessSpec,
  taskEnv: Readonly<Record<string, string>> = {},
  folders: { readonly hidden?: readonly string[]; readonly readable?: readonly string[] } = {},
): TaskProcessSpec {
  return {
    ...spec,
    env: { ...spec.env, TMPDIR: taskEnv.TMPDIR ?? spec.cwd },
    file: BWRAP,
    args: [
      "--ro-bind",
      "/",
      "/",
      "--dev",
      "/dev",
      "--proc",
      "/proc",
      ...(folders.hidden ?? []).flatMap((folder) => ["--tmpfs", folder]),
      ...(folders.readable ?? []).flatMap((folder) => ["--ro-bind", folder, folder]),
      "--bind",
      spec.cwd,
      spec.cwd,
      "--unshare-pid",
      "--die-with-parent",
      "--new-session",
      "--chdir",
      spec.cwd,
      "--",
      spec.file,
      ...spec.args,
    ],
  };
}

/**
 * Why confined tasks cannot run on this machine, or null when they can: tried for real (a sandbox
 * running `true`), as no configuration file tells whether user namespaces are allowed. A sandbox
 * that worked once is taken to work; a failure is tried again at the next confined task (bwrap
 * installed meanwhile, namespaces allowed).
 */
export class SandboxCheck {
  readonly #env: Record<string, string>;
  #works = false;

  /** `env`: the environment tasks start from (its PATH finds bwrap). */
  constructor(env: Readonly<Record<string, string | undefined>>) {
    this.#env = Object.fromEntries(
      Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
  }

  async problem(): Promise<string | null> {
    if (this.#works) return null;
    const problem = await sandboxProblem(this.#env);
    this.#works = problem === null;
    return problem;
  }
}

function sandboxProblem(env: Readonly<Record<string, string>>): Promise<string | null> {
  if (hostPlatform() !== "linux")
    return Promise.resolve(
      `tasks.confine working-dir needs Linux's bubblewrap (bwrap); this machine runs ${hostPlatform()}`,
    );
  // `true` writes nothing: its working dir can be /.
  const probe = confinedSpec({ file: "true", args: [], cwd: "/", env });
  return new Promise((resolve) => {
    execFile(probe.file, [...probe.args], { env: { ...probe.env }, timeout: 10_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve(null);
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT")
        return resolve(
          "tasks.confine working-dir needs bubblewrap (bwrap), which is not installed (apt install bubblewrap)",
        );
      const said = stderr.trim().split("\n").at(-1) ?? "";
      resolve(
        `tasks.confine working-dir: bubblewrap cannot make a sandbox here (${said || error.message}); user namespaces may be off`,
      );
    });
  });
}
