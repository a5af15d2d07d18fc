// The chaos plan: every user action and fault of a run with the moment it happens, drawn from a
// seeded PRNG before the run starts (the same seed and sizes give the same plan).
import { PROVIDER_FAULTS, type ProviderFault } from './provider-faults.js';
import type { Rng } from './random.js';
import { chaosClientName } from './workload.js';

export type Step =
  | { at: number; kind: 'wave'; names: string[] }
  | { at: number; kind: 'provider-fault'; fault: ProviderFault; times: number }
  | { at: number; kind: 'sigkill'; which: 'leader' | 'standby' }
  | { at: number; kind: 'sigkill-after-post' }
  | { at: number; kind: 'handover' }
  | { at: number; kind: 'apiserver-restart' }
  | { at: number; kind: 'watch-expiry' }
  | { at: number; kind: 'update'; names: string[] }
  | { at: number; kind: 'delete'; names: string[] };

export interface PlanCounts {
  /** Episodes of each provider fault kind. */
  providerFaults: number;
  /** Requests each provider fault episode applies to. */
  faultTimes: number;
  sigkill: number;
  sigkillAfterPost: number;
  handover: number;
  apiserverRestart: number;
  watchExpiry: number;
  waves: number;
  /** OidcClients edited (redirect URI) and deleted during the run. */
  updates: number;
  deletes: number;
}

/** The full run's intensity: scaled by duration and client count. */
export function defaultCounts(clients: number, minutes: number): PlanCounts {
  const per = (everySeconds: number, min: number) => Math.max(min, Math.round((minutes * 60) / everySeconds));
  return {
    providerFaults: per(25, 2),
    faultTimes: Math.max(2, Math.round(clients / 100)),
    sigkill: per(50, 2),
    sigkillAfterPost: per(90, 2),
    handover: per(75, 1),
    apiserverRestart: per(120, 1),
    watchExpiry: per(45, 1),
    waves: Math.max(3, Math.min(12, Math.round(minutes * 2))),
    updates: Math.max(1, Math.round(clients * 0.05)),
    deletes: Math.max(1, Math.round(clients * 0.05)),
  };
}

export function planChaos(opts: {
  clients: number;
  durationMs: number;
  counts: PlanCounts;
  rng: Rng;
}): Step[] {
  const { clients, durationMs: d, counts: c, rng } = opts;
  const steps: Step[] = [];
  const at = (from: number, to: number) => Math.round(from + rng.next() * Math.max(0, to - from));
  const names = Array.from({ length: clients }, (_, i) => chaosClientName(i + 1));

  // Registrations arrive in waves over the first 60 %, so POST faults and kills meet POSTs.
  const waveEnd = d * 0.6;
  const waveAt: number[] = [];
  const per = Math.ceil(clients / c.waves);
  for (let w = 0; w < c.waves; w++) {
    const slice = names.slice(w * per, (w + 1) * per);
    if (slice.length === 0) break;
    const t = c.waves === 1 ? 0 : Math.round((waveEnd * w) / (c.waves - 1));
    waveAt.push(t);
    steps.push({ at: t, kind: 'wave', names: slice });
  }
  // Installed just before a wave, so the wave's registrations meet it.
  const nearWave = () => Math.max(0, rng.pick(waveAt) - rng.int(100, 500));
  const appliedBy = (name: string) => waveAt[Math.floor(names.indexOf(name) / per)] ?? 0;

  for (const fault of PROVIDER_FAULTS) {
    for (let i = 0; i < c.providerFaults; i++) {
      // A lost POST answer only happens while clients register.
      const t = fault === 'post-created-then-lost' ? nearWave() : at(0, d * 0.9);
      steps.push({ at: t, kind: 'provider-fault', fault, times: c.faultTimes });
    }
  }
  for (let i = 0; i < c.sigkill; i++)
    steps.push({ at: at(2_000, d * 0.9), kind: 'sigkill', which: rng.next() < 0.75 ? 'leader' : 'standby' });
  for (let i = 0; i < c.sigkillAfterPost; i++) steps.push({ at: nearWave(), kind: 'sigkill-after-post' });
  for (let i = 0; i < c.handover; i++) steps.push({ at: at(2_000, d * 0.9), kind: 'handover' });
  // Restarts start after the first wave's kubectl apply has had a chance to finish.
  for (let i = 0; i < c.apiserverRestart; i++)
    steps.push({ at: at(d * 0.15, d * 0.85), kind: 'apiserver-restart' });
  for (let i = 0; i < c.watchExpiry; i++) steps.push({ at: at(2_000, d * 0.9), kind: 'watch-expiry' });

  // Edits and deletions of clients that exist by then; a deleted client is not edited afterwards.
  const toDelete = rng.sample(names, c.deletes);
  const deleted = new Set(toDelete);
  const toUpdate = rng.sample(
    names.filter((n) => !deleted.has(n)),
    c.updates,
  );
  const batch = <T>(items: T[], size: number) =>
    Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
  for (const group of batch(toUpdate, Math.max(1, Math.ceil(toUpdate.length / 6)))) {
    const earliest = Math.max(...group.map(appliedBy)) + 5_000;
    steps.push({ at: at(Math.min(earliest, d * 0.9), d * 0.9), kind: 'update', names: group });
  }
  for (const group of batch(toDelete, Math.max(1, Math.ceil(toDelete.length / 6)))) {
    const earliest = Math.max(...group.map(appliedBy)) + 5_000;
    steps.push({ at: at(Math.min(earliest, d * 0.9), d * 0.9), kind: 'delete', names: group });
  }
  return steps.sort((a, b) => a.at - b.at);
}
