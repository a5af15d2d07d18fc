// `tail -f` for a log file that a managed process writes through a file descriptor (see
// processes.ts: no pipe, so the process never blocks on a slow reader). Polls, because fs.watch is
// unreliable across platforms and a 100 ms delay is invisible in a terminal.
import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

export interface FollowedLog {
  /** Reads what is left, delivers the last (even unterminated) line, and stops. */
  stop(): Promise<void>;
}

export function followLog(path: string, onLine: (line: string) => void, intervalMs = 100): FollowedLog {
  let offset = 0;
  let partial = '';
  // Keeps a UTF-8 sequence split across two reads whole.
  const decoder = new StringDecoder('utf8');
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let reading: Promise<void> = Promise.resolve();

  const deliver = (text: string, flush: boolean): void => {
    const lines = (partial + text).split('\n');
    partial = flush ? '' : (lines.pop() ?? '');
    for (const line of lines) if (line.trim() !== '') onLine(line);
  };

  const readNew = async (flush: boolean): Promise<void> => {
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    try {
      handle = await open(path, 'r');
      const { size } = await handle.stat();
      if (size > offset) {
        const buffer = Buffer.alloc(size - offset);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
        offset += bytesRead;
        deliver(decoder.write(buffer.subarray(0, bytesRead)), flush);
      } else if (flush) {
        deliver(decoder.end(), true);
      }
    } catch {
      // Not created yet, or removed with its temp dir: nothing to read.
    } finally {
      await handle?.close();
    }
  };

  const tick = (): void => {
    reading = readNew(false).then(() => {
      if (!stopped) timer = setTimeout(tick, intervalMs);
    });
  };
  tick();

  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await reading;
      await readNew(true);
    },
  };
}
