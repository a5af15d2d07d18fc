import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { nodeVersionProblem, REQUIRED_NODE_MAJOR } from '../../../src/cli/node-version.js';

const read = (path: string) => readFile(new URL(`../../../${path}`, import.meta.url), 'utf8');

describe('Node.js version check', () => {
  it('accepts 24 and newer, refuses older or unparsable versions with what to do', () => {
    expect(nodeVersionProblem('24.0.0')).toBeUndefined();
    expect(nodeVersionProblem('24.21.0')).toBeUndefined();
    expect(nodeVersionProblem('26.1.0')).toBeUndefined();
    for (const old of ['20.20.2', '22.11.0', '23.9.9', 'garbage']) {
      const message = nodeVersionProblem(old);
      expect(message).toContain(`needs Node.js ${REQUIRED_NODE_MAJOR} or newer; this is Node.js ${old}.`);
      expect(message).toContain('container image');
    }
  });

  it('package.json "engines" names the same major version', async () => {
    const pkg = JSON.parse(await read('package.json')) as { engines: { node: string } };
    expect(pkg.engines.node).toMatch(new RegExp(`^>=${REQUIRED_NODE_MAJOR}\\b`));
  });

  it('bin, start script and the image all start at entry.js, which imports only the check statically', async () => {
    const pkg = JSON.parse(await read('package.json')) as {
      bin: Record<string, string>;
      scripts: Record<string, string>;
    };
    expect(pkg.bin['oidc-client-operator']).toBe('dist/cli/entry.js');
    expect(pkg.scripts.start).toBe('node dist/cli/entry.js run');
    const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(await read('Dockerfile'))?.[1];
    expect(JSON.parse(entrypoint ?? '[]')).toContain('dist/cli/entry.js');
    // ESM hoists static imports: anything but the dependency-free check would load before it runs.
    const entry = await read('src/cli/entry.ts');
    expect(entry.match(/^import .*$/gm)).toEqual([
      "import { EXIT_UNSUPPORTED_NODE, nodeVersionProblem } from './node-version.js';",
    ]);
    expect(await read('src/cli/node-version.ts')).not.toMatch(/^import /m);
  });
});
