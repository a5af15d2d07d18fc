// The Node flags and environment the operator image runs with, read from the Dockerfile's runtime
// stage, so that the benchmark measures the process the image starts (one source of truth).
import { readFile } from 'node:fs/promises';

export interface ImageRuntime {
  /** Flags between `node` and the script in ENTRYPOINT, e.g. ['--max-semi-space-size=1']. */
  nodeArgs: string[];
  /** ENV of the runtime stage. */
  env: Record<string, string>;
}

export function parseImageRuntime(dockerfile: string): ImageRuntime {
  // The runtime stage is the last one.
  const stage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const m of stage.matchAll(/^ENV\s+(.+)$/gm)) {
    for (const pair of (m[1] ?? '').trim().split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    }
  }
  const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(stage)?.[1];
  if (!entry) throw new Error('Dockerfile: no ENTRYPOINT ["node", ...] in the runtime stage');
  const argv = JSON.parse(entry) as string[];
  if (argv[0] !== 'node') throw new Error(`Dockerfile: ENTRYPOINT does not start with node: ${entry}`);
  const nodeArgs: string[] = [];
  for (const a of argv.slice(1)) {
    if (!a.startsWith('-')) break;
    nodeArgs.push(a);
  }
  return { nodeArgs, env };
}

export async function readImageRuntime(path: string): Promise<ImageRuntime> {
  return parseImageRuntime(await readFile(path, 'utf8'));
}
