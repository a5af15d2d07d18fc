// Expands the paths given to `validate` into manifest files: directories are walked recursively for
// .yaml/.yml/.json; a file named explicitly is read whatever its extension.
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { UsageError } from './io.js';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
// Version-control and dependency folders never hold the user's manifests but can be huge.
const SKIPPED_DIRS = new Set(['.git', 'node_modules']);

export const isJsonFile = (file: string): boolean => extname(file).toLowerCase() === '.json';

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) await walk(path, out);
    } else if (entry.isFile() && MANIFEST_EXTENSIONS.has(extname(entry.name).toLowerCase())) {
      out.push(path);
    }
  }
}

/** Files in a stable order (arguments first to last, directories sorted), without duplicates. */
export async function collectManifestFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (!info) throw new UsageError(`no such file or directory: ${path}`);
    if (info.isDirectory()) await walk(path, files);
    else files.push(path);
  }
  return [...new Set(files)];
}
