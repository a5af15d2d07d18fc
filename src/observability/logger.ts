import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

/**
 * Keys whose values never reach the log: client credentials, registration access tokens, initial
 * access tokens, Authorization headers and Secret `data` maps (which hold the client secret).
 */
export const SENSITIVE_KEYS = [
  'client_secret',
  'clientSecret',
  'registration_access_token',
  'registrationAccessToken',
  'rat',
  'token',
  'initialAccessToken',
  'authorization',
  'Authorization',
  'password',
  'secret',
  'data',
] as const;

/** Deepest nesting (below the log object) at which a sensitive key is still redacted. */
const MAX_DEPTH = 3;

/**
 * Redaction paths match exact positions, not "anywhere": list each key at the top level and below
 * one, two and three wildcard levels (`*` also matches array indexes).
 */
export function redactionPaths(): string[] {
  const paths = new Set<string>(['headers.authorization', 'headers.Authorization']);
  for (let depth = 0; depth <= MAX_DEPTH; depth++) {
    const prefix = '*.'.repeat(depth);
    for (const key of SENSITIVE_KEYS) paths.add(`${prefix}${key}`);
  }
  return [...paths];
}

export const REDACTED = '[REDACTED]';

function resolveLevel(explicit: string | undefined): string {
  const level = explicit ?? process.env.LOG_LEVEL ?? 'info';
  // pino's own error ("unknown level") does not say where the bad value came from.
  if (level !== 'silent' && !(level in pino.levels.values)) {
    const source = explicit === undefined ? 'LOG_LEVEL' : 'log level';
    throw new Error(
      `Invalid ${source} "${level}"; expected one of ${Object.keys(pino.levels.values).join(', ')}, silent`,
    );
  }
  return level;
}

/**
 * The operator's structured logger: JSON lines (stdout unless `destination` is given) with ISO
 * timestamps and level names, which log collectors index without a pino-specific mapping.
 */
export function createLogger(
  opts: { level?: string; destination?: NodeJS.WritableStream; name?: string } = {},
): Logger {
  const options = {
    level: resolveLevel(opts.level),
    ...(opts.name === undefined ? {} : { name: opts.name }),
    redact: { paths: redactionPaths(), censor: REDACTED },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (opts.destination === undefined) return pino(options);
  // Any writable accepts the string chunks pino writes.
  return pino(options, opts.destination as DestinationStream);
}
