// The demo's copy of the gateway's templates/, with one change: the front-channel iframes, hidden
// in production (they are plumbing), are shown as small boxes so a person can watch each RP being
// signed out. Derived at start from the real templates, so the demo never drifts from them.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

const VISIBLE = `.frames { max-width: 38rem; margin: -10vh auto 2rem; display: flex; gap: .5rem; }
  iframe.rp { flex: 1; min-width: 0; height: 5rem; border: 1px solid #d0d7de; border-radius: 6px; background: #fff; }`;

/** Copy templates/ to a temp dir with visible iframes; resolves the dir (the original on a mismatch). */
export function visibleIframeTemplates() {
  const src = join(repoRoot, 'templates');
  const dir = mkdtempSync(join(tmpdir(), 'lgw-demo-templates-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  cpSync(src, dir, { recursive: true });
  const file = join(dir, 'layout.hbs');
  const hbs = readFileSync(file, 'utf8');
  const hidden = /\.frames \{[^}]*\}\s*iframe\.rp \{[^}]*\}/;
  if (!hidden.test(hbs)) {
    console.warn('demo: templates/layout.hbs changed shape; the iframes stay hidden');
    return src;
  }
  writeFileSync(file, hbs.replace(hidden, VISIBLE));
  return dir;
}
