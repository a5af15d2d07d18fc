import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, type Logger, REDACTED } from '../../../src/observability/logger.js';

// The contract, listed here rather than imported, so dropping a key from the logger fails a test.
const SENSITIVE_KEYS = [
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
];

/** A logger writing into a string, so tests inspect exactly the bytes a log collector would get. */
function capture(opts: { level?: string; name?: string } = {}): { log: Logger; output: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  const log = createLogger({ ...opts, destination: stream });
  return { log, output: () => text };
}

function lines(text: string): Record<string, unknown>[] {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

// Distinct per key and place, so a leak names what leaked.
const secretFor = (key: string, where: string) => `s3cr3t-${key}-${where}`;

function nest(depth: number, leaf: Record<string, unknown>): Record<string, unknown> {
  let obj = leaf;
  for (let i = depth; i > 0; i--) obj = { [`level${i}`]: obj };
  return obj;
}

describe('createLogger redaction', () => {
  for (const key of SENSITIVE_KEYS) {
    it(`never writes the value of "${key}" at the top level or nested up to 3 levels`, () => {
      const { log, output } = capture();
      for (let depth = 0; depth <= 3; depth++) {
        log.info(nest(depth, { [key]: secretFor(key, `d${depth}`), visible: `keep-${depth}` }), 'msg');
      }
      // Arrays (e.g. a list of registrations) are a level too.
      log.info({ items: [{ [key]: secretFor(key, 'array') }] }, 'array');
      const raw = output();
      for (let depth = 0; depth <= 3; depth++) {
        expect(raw).not.toContain(secretFor(key, `d${depth}`));
        expect(raw).toContain(`keep-${depth}`);
      }
      expect(raw).not.toContain(secretFor(key, 'array'));
      const [first] = lines(raw);
      expect(first?.[key]).toBe(REDACTED);
    });
  }

  it('redacts object-valued secrets as a whole (a Secret data map)', () => {
    const { log, output } = capture();
    const secret = {
      metadata: { name: 'client-creds' },
      data: { 'client-secret': Buffer.from('very-secret').toString('base64'), 'client-id': 'abc' },
    };
    log.info({ secret: { ...secret, kind: 'Secret' } }, 'x');
    log.info({ object: secret }, 'y');
    const raw = output();
    expect(raw).not.toContain(Buffer.from('very-secret').toString('base64'));
    expect(lines(raw)[1]).toMatchObject({ object: { metadata: { name: 'client-creds' }, data: REDACTED } });
  });

  it('redacts Authorization headers of request objects and errors', () => {
    const { log, output } = capture();
    log.info({ request: { headers: { authorization: 'Bearer rat-123', Authorization: 'Bearer rat-456' } } });
    log.info({ headers: { authorization: 'Bearer iat-789' } });
    const error = Object.assign(new Error('registration failed'), {
      headers: { authorization: 'Bearer err-000' },
      body: { client_secret: 'err-secret' },
    });
    log.error({ err: error }, 'with err key');
    log.error(error, 'as first argument');
    const raw = output();
    for (const value of ['rat-123', 'rat-456', 'iat-789', 'err-000', 'err-secret']) {
      expect(raw).not.toContain(value);
    }
    expect(raw).toContain('registration failed');
  });

  it('redacts bindings of child loggers', () => {
    const { log, output } = capture();
    log.child({ registrationAccessToken: 'child-rat' }).info('from child');
    expect(output()).not.toContain('child-rat');
    expect(lines(output())[0]).toMatchObject({ registrationAccessToken: REDACTED, msg: 'from child' });
  });

  it('does not mutate the logged object', () => {
    const { log } = capture();
    const obj = { client_secret: 'keep-me' };
    log.info(obj);
    expect(obj.client_secret).toBe('keep-me');
  });
});

describe('createLogger output and level', () => {
  const saved = process.env.LOG_LEVEL;
  afterEach(() => {
    if (saved === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = saved;
  });

  it('writes JSON lines with level names, an ISO time and the name', () => {
    const { log, output } = capture({ name: 'operator' });
    log.warn({ clientId: 'abc' }, 'hello');
    const [line] = lines(output());
    expect(line).toMatchObject({ level: 'warn', name: 'operator', clientId: 'abc', msg: 'hello' });
    expect(String(line?.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('defaults to info', () => {
    delete process.env.LOG_LEVEL;
    const { log, output } = capture();
    log.debug('hidden');
    log.info('shown');
    expect(lines(output()).map((l) => l.msg)).toEqual(['shown']);
  });

  it('takes the level from LOG_LEVEL, and an explicit level over it', () => {
    process.env.LOG_LEVEL = 'debug';
    const fromEnv = capture();
    fromEnv.log.debug('dbg');
    expect(lines(fromEnv.output()).map((l) => l.msg)).toEqual(['dbg']);

    const explicit = capture({ level: 'error' });
    explicit.log.warn('dropped');
    explicit.log.error('kept');
    expect(lines(explicit.output()).map((l) => l.msg)).toEqual(['kept']);
  });

  it('rejects an unknown LOG_LEVEL naming the variable', () => {
    process.env.LOG_LEVEL = 'verbose';
    expect(() => createLogger({ destination: new PassThrough() })).toThrow(/LOG_LEVEL "verbose"/);
  });
});
