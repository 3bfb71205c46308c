// Debian's Chromium (/usr/bin/chromium, or LGW_CHROMIUM), headless, driven over the DevTools
// protocol by puppeteer-core (which never downloads a browser). Flags: --no-sandbox because CI
// runs as root; the background-networking ones because this machine's network is closed and
// Chromium would otherwise keep trying to reach Google.
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { artifactsDir } from './paths.js';

export const chromiumPath = () => process.env.LGW_CHROMIUM || '/usr/bin/chromium';

export async function launchBrowser() {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
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
 * the page navigated away meanwhile (a screenshot is an artifact, not an assertion: say so, go on).
 */
export async function screenshot(page, name) {
  const path = join(artifactsDir(), `${name}.png`);
  try {
    await page.screenshot({ path, fullPage: true });
    return path;
  } catch (e) {
    console.warn(`screenshot ${name} not taken: ${e.message}`);
    return null;
  }
}
