// Writes (or with --check, verifies) every file generated from src/api/schema.ts.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { generatedFiles } from '../src/api/generate.js';

const root = resolve(import.meta.dirname, '..');
const check = process.argv.includes('--check');
const stale: string[] = [];

for (const file of generatedFiles()) {
  const target = resolve(root, file.path);
  const current = await readFile(target, 'utf8').catch(() => undefined);
  if (current === file.content) continue;
  if (check) {
    stale.push(file.path);
    continue;
  }
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, file.content);
  console.log(`wrote ${file.path}`);
}

if (stale.length > 0) {
  console.error(`Generated files are stale; run \`npm run generate\` and commit:\n  ${stale.join('\n  ')}`);
  process.exit(1);
}
if (check) console.log('generated files are up to date');
