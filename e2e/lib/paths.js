// Where things are: the repository root (this file is e2e/lib/paths.js) and the artifacts folder
// (target/e2e-artifacts, under the gitignored target/).
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function artifactsDir() {
  const dir = join(repoRoot, 'target', 'e2e-artifacts');
  mkdirSync(dir, { recursive: true });
  return dir;
}
