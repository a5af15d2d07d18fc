import { describe, expect, it } from 'vitest';
import { FlagError, parseDuration, parseOperatorFlags } from '../../../src/operator/flags.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['2', 2_000],
    ['1.5s', 1_500],
  ])('%s = %d ms', (text, ms) => {
    expect(parseDuration(text, '--x')).toBe(ms);
  });

  it.each(['', 'm', '10x', '1h 30m', '-5s'])('rejects %j with the flag name', (text) => {
    expect(() => parseDuration(text, '--resync-interval')).toThrow(/--resync-interval/);
  });
});

describe('parseOperatorFlags', () => {
  it('applies defaults and environment fallbacks', () => {
    const f = parseOperatorFlags([], { WATCH_NAMESPACES: 'a, b', POD_NAMESPACE: 'ops', POD_NAME: 'op-1' });
    expect(f).toMatchObject({
      namespaces: ['a', 'b'],
      leaderElect: false,
      leaderElectionNamespace: 'ops',
      identity: 'op-1',
      healthPort: 8081,
      resyncIntervalMs: 600_000,
      maxConcurrentReconciles: 8,
    });
  });

  it('accepts the flags the Helm chart passes', () => {
    const f = parseOperatorFlags(
      [
        '--leader-elect=true',
        '--leader-election-id=rel',
        '--namespaces=x',
        '--health-port=9000',
        '--log-level=debug',
        '--resync-interval=1h',
        '--max-concurrent-reconciles=16',
      ],
      {},
    );
    expect(f).toMatchObject({
      leaderElect: true,
      leaderElectionId: 'rel',
      namespaces: ['x'],
      healthPort: 9000,
      logLevel: 'debug',
      resyncIntervalMs: 3_600_000,
      maxConcurrentReconciles: 16,
    });
    expect(parseOperatorFlags(['--leader-elect'], {}).leaderElect).toBe(true);
  });

  it('--provider-check-interval: 5 min by default, 0 turns provider health checks off', () => {
    expect(parseOperatorFlags([], {}).providerCheckIntervalMs).toBe(300_000);
    expect(parseOperatorFlags(['--provider-check-interval=90s'], {}).providerCheckIntervalMs).toBe(90_000);
    expect(parseOperatorFlags(['--provider-check-interval=0'], {}).providerCheckIntervalMs).toBe(0);
    expect(() => parseOperatorFlags(['--provider-check-interval=often'], {})).toThrow(
      /--provider-check-interval/,
    );
  });

  it('takes --metrics-auth kubernetes or none (default none)', () => {
    expect(parseOperatorFlags([], {}).metricsAuth).toBe('none');
    expect(parseOperatorFlags(['--metrics-auth=kubernetes'], {}).metricsAuth).toBe('kubernetes');
    expect(() => parseOperatorFlags(['--metrics-auth=basic'], {})).toThrow(/--metrics-auth/);
  });

  it('rejects bad values with clear messages', () => {
    expect(() => parseOperatorFlags(['--max-concurrent-reconciles=0'], {})).toThrow(FlagError);
    expect(() => parseOperatorFlags(['--log-level=loud'], {})).toThrow(/--log-level/);
    expect(() => parseOperatorFlags(['--leader-elect=maybe'], {})).toThrow(/--leader-elect/);
    expect(() => parseOperatorFlags(['--nope'], {})).toThrow(FlagError);
  });
});

describe('sharding flags', () => {
  it('one shard by default, with the plain Lease name', () => {
    const f = parseOperatorFlags(['--leader-election-id=rel']);
    expect(f.shard).toEqual({ index: 0, total: 1 });
    expect(f.leaderElectionId).toBe('rel');
  });

  it('a shard of n has its own Lease', () => {
    const f = parseOperatorFlags(['--leader-election-id=rel', '--shard', '1', '--total-shards=3']);
    expect(f.shard).toEqual({ index: 1, total: 3 });
    expect(f.leaderElectionId).toBe('rel-shard-1');
  });

  it.each([
    [['--shard=2', '--total-shards=2'], /--shard: expected 0\.\.1/],
    [['--total-shards=0'], /--total-shards/],
    [['--shard=-1', '--total-shards=2'], /--shard/],
    [['--shard=x'], /--shard/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseOperatorFlags(argv)).toThrow(FlagError);
    expect(() => parseOperatorFlags(argv)).toThrow(message);
  });
});

describe('--min-refresh-interval', () => {
  it('defaults to 1m and takes a duration', () => {
    expect(parseOperatorFlags([]).minRefreshIntervalMs).toBe(60_000);
    expect(parseOperatorFlags(['--min-refresh-interval=15s']).minRefreshIntervalMs).toBe(15_000);
    expect(() => parseOperatorFlags(['--min-refresh-interval=soon'])).toThrow(/--min-refresh-interval/);
  });
});
