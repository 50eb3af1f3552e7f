import { spawn } from "node:child_process";

/**
 * Becomes another program. On Linux and macOS this is exec: the same pid, so the service
 * manager goes on tracking the agent and no launcher stays resident. Windows has no exec: there
 * the program runs as a child whose exit this process mirrors. Rejects if it cannot start at all.
 */
export function replaceProcess(file: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<never> {
  if (typeof process.execve === "function") {
    // execve is experimental in Node 24-26 and says so on stderr at every start: noise in the journal.
    const emitWarning = process.emitWarning;
    process.emitWarning = () => undefined;
    try {
      process.execve(file, [file, ...args], env);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    } finally {
      process.emitWarning = emitWarning;
    }
  }
  return new Promise<never>((_resolve, reject) => {
    const child = spawn(file, [...args], { stdio: "inherit", env });
    child.once("error", reject);
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
    child.once("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  });
}
