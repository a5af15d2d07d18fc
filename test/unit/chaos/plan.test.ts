import { describe, expect, it } from 'vitest';
import { defaultCounts, planChaos } from '../../harness/chaos/plan.js';
import { PROVIDER_FAULTS } from '../../harness/chaos/provider-faults.js';
import { seededRng } from '../../harness/chaos/random.js';

const counts = defaultCounts(100, 2);
const plan = (seed: number) => planChaos({ clients: 100, durationMs: 120_000, counts, rng: seededRng(seed) });

describe('chaos plan', () => {
  it('is the same for the same seed and differs for another', () => {
    expect(plan(1)).toEqual(plan(1));
    expect(plan(1)).not.toEqual(plan(2));
  });

  it('applies every client exactly once, in waves within the first 60 %', () => {
    const waves = plan(3).filter((s) => s.kind === 'wave');
    expect(waves).toHaveLength(counts.waves);
    const names = waves.flatMap((w) => (w.kind === 'wave' ? w.names : []));
    expect(new Set(names).size).toBe(100);
    expect(names).toHaveLength(100);
    expect(Math.max(...waves.map((w) => w.at))).toBeLessThanOrEqual(72_000);
  });

  it('has every fault kind as often as asked, inside the run, in time order', () => {
    const steps = plan(4);
    for (const fault of PROVIDER_FAULTS) {
      expect(steps.filter((s) => s.kind === 'provider-fault' && s.fault === fault)).toHaveLength(
        counts.providerFaults,
      );
    }
    expect(steps.filter((s) => s.kind === 'sigkill')).toHaveLength(counts.sigkill);
    expect(steps.filter((s) => s.kind === 'sigkill-after-post')).toHaveLength(counts.sigkillAfterPost);
    expect(steps.filter((s) => s.kind === 'apiserver-restart')).toHaveLength(counts.apiserverRestart);
    for (let i = 1; i < steps.length; i++) expect(steps[i]!.at).toBeGreaterThanOrEqual(steps[i - 1]!.at);
    expect(Math.max(...steps.map((s) => s.at))).toBeLessThanOrEqual(120_000);
  });

  it('edits and deletes distinct clients, after their wave', () => {
    const steps = plan(5);
    const waveAt = new Map<string, number>();
    for (const s of steps) if (s.kind === 'wave') for (const n of s.names) waveAt.set(n, s.at);
    const updated = steps.flatMap((s) => (s.kind === 'update' ? s.names.map((n) => [n, s.at] as const) : []));
    const deleted = steps.flatMap((s) => (s.kind === 'delete' ? s.names.map((n) => [n, s.at] as const) : []));
    expect(updated).toHaveLength(counts.updates);
    expect(deleted).toHaveLength(counts.deletes);
    const deletedNames = new Set(deleted.map(([n]) => n));
    for (const [n, at] of [...updated, ...deleted]) expect(at).toBeGreaterThan(waveAt.get(n) ?? Infinity);
    for (const [n] of updated) expect(deletedNames.has(n)).toBe(false);
  });
});
