import { inspect } from 'node:util';

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What is awaited, in words: it is the first thing a reader of the timeout error sees. */
  description: string;
  /** Checked before every attempt; an error returned here ends the wait at once (e.g. a process died). */
  fatal?: () => Error | undefined;
}

type Falsy = false | 0 | '' | null | undefined;

function describeLast(
  last: { kind: 'none' } | { kind: 'value'; value: unknown } | { kind: 'error'; error: unknown },
): string {
  switch (last.kind) {
    case 'none':
      return 'no attempt finished';
    case 'value':
      return `last value: ${inspect(last.value, { depth: 4, breakLength: 120 })}`;
    case 'error':
      return `last error: ${last.error instanceof Error ? last.error.message : inspect(last.error)}`;
  }
}

/**
 * Polls `fn` until it returns a truthy value, which is returned. A thrown error counts as "not yet"
 * (the API may not be serving the resource yet); the timeout error names the description and the last
 * value or error seen, so a failing test says what it was waiting for and what it saw instead.
 */
export async function waitFor<T>(fn: () => Promise<T | Falsy> | T | Falsy, opts: WaitOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 250;
  const deadline = Date.now() + timeoutMs;
  let last: Parameters<typeof describeLast>[0] = { kind: 'none' };
  for (;;) {
    const fatal = opts.fatal?.();
    if (fatal) throw fatal;
    try {
      const value = await fn();
      if (value) return value;
      last = { kind: 'value', value };
    } catch (error) {
      last = { kind: 'error', error };
    }
    if (Date.now() + intervalMs > deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${opts.description}; ${describeLast(last)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
