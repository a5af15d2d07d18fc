// `npm run build` for tests that run the compiled operator (dist/cli/entry.js, what the image runs).
// Test files run in parallel processes: a lock directory keeps two builds from writing dist/ at once
// (a replica started during the other's build could load a half-written file).
import { mkdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { runTool } from './exec.js';

const ROOT = resolve(import.meta.dirname, '../..');
const LOCK = join(ROOT, 'dist', '.build-lock');
/** A lock older than this was left by a killed runner. */
const STALE_MS = 120_000;

async function acquire(timeoutMs: number): Promise<void> {
  await mkdir(join(ROOT, 'dist'), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(LOCK);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = await stat(LOCK).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > STALE_MS) await rm(LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`${LOCK} held for more than ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Compiles src/ into dist/ with the project's tsc (tsconfig.json). */
export async function buildOperator(): Promise<void> {
  // Set by the e2e global setup once it has built dist/ for the whole run.
  if (process.env.OIDC_OPERATOR_DIST_BUILT === '1') return;
  await acquire(180_000);
  try {
    const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
    const r = await runTool(tsc, ['-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, timeoutMs: 170_000 });
    if (r.code !== 0) throw new Error(`tsc -p tsconfig.json failed:\n${r.stdout}${r.stderr}`);
  } finally {
    await rm(LOCK, { recursive: true, force: true });
  }
}
