// What the CLI commands share: where output goes (injectable, so commands are unit-testable), exit
// codes and usage errors.
import { type ParseArgsConfig, parseArgs } from 'node:util';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (text) => {
    process.stdout.write(text);
  },
  err: (text) => {
    process.stderr.write(text);
  },
};

export const EXIT_OK = 0;
/** Validation issues or a failed command. */
export const EXIT_FAILURE = 1;
/** Bad flags or arguments. */
export const EXIT_USAGE = 2;

/** Wrong flags or arguments: main prints the message with a hint to --help and exits with EXIT_USAGE. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs in strict mode, its errors turned into UsageError. */
export function parseCommandArgs<O extends Options>(args: string[], options: O, allowPositionals: boolean) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}
