// The benchmark's timeline: once a second the operator's RSS and CPU (from /proc), the tracker's
// counts and, every few seconds, the apiserver's write counters. Feeds the chart and the peaks.
import { readFile } from 'node:fs/promises';
import { OPERATOR_RESOURCES, type WriteCounts } from './apiserver-writes.js';
import type { Counts } from './tracker.js';

export interface TimelineSample {
  /** ms since the benchmark's time origin. */
  t: number;
  phase: string;
  counts: Counts;
  /** Operator process; absent while no operator runs. */
  rssMiB?: number;
  /** Operator CPU since the previous sample, in % of one core. */
  cpuPercent?: number;
  /** Cumulative apiserver writes (all, and the operator's resources), when read at this sample. */
  apiserverWrites?: { all: number; operator: number };
}

/** CPU seconds (user + system) a process has used so far, from /proc; undefined once it is gone. */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 (1-based) of the whole line: 12 and 13 after the name.
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
}

export interface ProcessMemory {
  rss: number;
  anon: number;
  file: number;
  /** VmHWM: the most RSS the process held at once. */
  peak: number;
}

/** The process's memory from /proc (MiB): what the kubelet's limit is judged against. */
export async function processMemory(pid: number): Promise<ProcessMemory | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  if (status === undefined) return undefined;
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const mib = (field: string) => Math.round(kib(field) / 1024);
  return { rss: mib('VmRSS'), anon: mib('RssAnon'), file: mib('RssFile'), peak: mib('VmHWM') };
}

export function operatorWrites(w: WriteCounts): number {
  let n = 0;
  for (const [key, v] of w) {
    const [verb, resource] = key.split(' ') as [string, string];
    if (OPERATOR_RESOURCES.has(resource) && !(verb === 'POST' && resource === 'oidcclients')) n += v;
  }
  return n;
}

export interface SamplerSources {
  counts(): Counts;
  /** The operator's pid now (it changes when the benchmark restarts it), or undefined. */
  operatorPid(): number | undefined;
  apiserverWrites(): Promise<WriteCounts>;
}

export class Sampler {
  readonly samples: TimelineSample[] = [];
  phase = 'start';
  private timer: NodeJS.Timeout | undefined;
  private last: { pid: number; cpu: number; at: number } | undefined;
  private tick = 0;
  private busy = false;
  private peakRss = 0;

  constructor(
    private readonly origin: number,
    private readonly src: SamplerSources,
    /** Read the apiserver's counters every this many samples (each read costs the apiserver a little). */
    private readonly apiserverEvery = 2,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sample(), 1_000);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  get maxRssMiB(): number {
    return this.peakRss;
  }

  /** Also called at phase boundaries, so each phase starts with a sample. */
  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = Date.now();
      const s: TimelineSample = { t: now - this.origin, phase: this.phase, counts: this.src.counts() };
      const pid = this.src.operatorPid();
      if (pid !== undefined) {
        const [mem, cpu] = await Promise.all([processMemory(pid), cpuSeconds(pid)]);
        if (mem) {
          s.rssMiB = mem.rss;
          this.peakRss = Math.max(this.peakRss, mem.rss);
        }
        if (cpu !== undefined) {
          if (this.last?.pid === pid && now > this.last.at) {
            s.cpuPercent = Math.round(((cpu - this.last.cpu) / ((now - this.last.at) / 1000)) * 100);
          }
          this.last = { pid, cpu, at: now };
        }
      }
      if (this.tick++ % this.apiserverEvery === 0) {
        const w = await this.src.apiserverWrites().catch(() => undefined);
        if (w)
          s.apiserverWrites = {
            all: [...w.values()].reduce((a, n) => a + n, 0),
            operator: operatorWrites(w),
          };
      }
      this.samples.push(s);
    } finally {
      this.busy = false;
    }
  }
}
