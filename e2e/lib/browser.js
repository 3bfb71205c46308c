// Debian's Chromium (/usr/bin/chromium, or LGW_CHROMIUM), headless, driven over the DevTools
// protocol by puppeteer-core (which never downloads a browser). Flags: --no-sandbox because CI
// runs as root; the background-networking ones because this machine's network is closed and
// Chromium would otherwise keep trying to reach Google.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { artifactsDir } from './paths.js';
import { suiteTls } from './tls.js';

export const chromiumPath = () => process.env.LGW_CHROMIUM || '/usr/bin/chromium';

/** A fresh Chromium profile directory whose preferences allow third-party cookies. */
function profileAllowingThirdPartyCookies() {
  const dir = mkdtempSync(join(tmpdir(), 'lgw-chromium-'));
  mkdirSync(join(dir, 'Default'));
  const prefs = { profile: { cookie_controls_mode: 0, block_third_party_cookies: false } };
  writeFileSync(join(dir, 'Default', 'Preferences'), JSON.stringify(prefs));
  return dir;
}

/**
 * `tls`: the suite's TLS files (tls.js); Chromium then trusts the gateway's certificate, pinned
 * by its key's hash (what --ignore-certificate-errors-spki-list is for: a test CA without
 * touching the system's trust store).
 */
export async function launchBrowser(tls = suiteTls(), { thirdPartyCookies = false } = {}) {
  const trust = tls ? [`--ignore-certificate-errors-spki-list=${tls.spki}`] : [];
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Chromium blocks third-party cookies by default; a profile whose cookie setting is "allow
    // all" is what a browser that still allows them looks like.
    userDataDir: thirdPartyCookies ? profileAllowingThirdPartyCookies() : undefined,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--window-size=1100,800',
      ...trust,
    ],
    defaultViewport: { width: 1100, height: 800 },
    // The caller's `after` hook closes the browser; never let puppeteer install its own handlers
    // that would race our cleanup.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
}

/**
 * Save a full-page screenshot as target/e2e-artifacts/<name>.png; resolves the path, or null when
 * the page navigated away meanwhile (said on stderr). A file from an earlier run is removed first,
 * so a scenario that asserts its screenshot (helpers.js assertScreenshot) never sees a stale one.
 */
export async function screenshot(page, name) {
  const path = join(artifactsDir(), `${name}.png`);
  rmSync(path, { force: true });
  try {
    await page.screenshot({ path, fullPage: true });
    return path;
  } catch (e) {
    console.warn(`screenshot ${name} not taken: ${e.message}`);
    return null;
  }
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Why `path` is not a PNG image with a size, or null when it is one (signature, then IHDR). */
export function notAPng(path) {
  if (!path || !existsSync(path)) return `no file ${path}`;
  const b = readFileSync(path);
  if (b.length < 33) return `${path}: ${b.length} bytes`;
  if (!b.subarray(0, 8).equals(PNG_SIGNATURE)) return `${path}: not a PNG signature`;
  if (b.toString('latin1', 12, 16) !== 'IHDR') return `${path}: no IHDR chunk first`;
  const [w, h] = [b.readUInt32BE(16), b.readUInt32BE(20)];
  return w > 0 && h > 0 ? null : `${path}: ${w}x${h} pixels`;
}
