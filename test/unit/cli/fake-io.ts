import type { CliIo } from '../../../src/cli/io.js';

/** A CliIo that records what a command prints. */
export function fakeIo(): CliIo & { stdout: () => string; stderr: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out: (t) => {
      out.push(t);
    },
    err: (t) => {
      err.push(t);
    },
    stdout: () => out.join(''),
    stderr: () => err.join(''),
  };
}
