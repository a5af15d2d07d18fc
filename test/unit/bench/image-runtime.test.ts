import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseImageRuntime } from '../../../bench/image-runtime.js';

describe('parseImageRuntime', () => {
  it("reads the runtime stage's node flags and ENV, not the build stage's", () => {
    const r = parseImageRuntime(`FROM node:24 AS build
ENV BUILD_ONLY=1
ENTRYPOINT ["node", "--wrong", "x.js"]
FROM node:24-slim
ENV NODE_ENV=production MALLOC_ARENA_MAX=2
ENV QUOTED="a"
ENTRYPOINT ["node", "--max-semi-space-size=1", "--optimize-for-size", "dist/cli/main.js", "--not-a-node-flag"]
CMD ["run"]
`);
    expect(r.nodeArgs).toEqual(['--max-semi-space-size=1', '--optimize-for-size']);
    expect(r.env).toEqual({ NODE_ENV: 'production', MALLOC_ARENA_MAX: '2', QUOTED: 'a' });
  });

  it('reads the project Dockerfile (what `npm run bench` applies to the operator)', async () => {
    const r = parseImageRuntime(await readFile(new URL('../../../Dockerfile', import.meta.url), 'utf8'));
    expect(r.nodeArgs.every((a) => a.startsWith('--'))).toBe(true);
    expect(r.env.NODE_ENV).toBe('production');
  });

  it('refuses an ENTRYPOINT that is not node', () => {
    expect(() => parseImageRuntime('FROM x\nENTRYPOINT ["sh", "-c", "node a.js"]\n')).toThrow(/node/);
  });
});
