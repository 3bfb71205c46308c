// OpenID Connect Session Management 1.0, served by the gateway in front of node-oidc-provider
// (which has none): discovery names the gateway's check_session_iframe, the authorization
// responses the RPs get carry its session_state, and in the real browser each RP page's iframe
// check answers `unchanged` for the RP's own state, `changed` for another client's or another
// origin's, `error` for garbage; after a single logout, `changed` for every RP (SM-01..04). The
// RPs are plain http and the gateway https, so the iframe is a third-party frame: the browser
// here allows third-party cookies; a last test shows what a browser that blocks them (Chromium's
// default) gets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launchBrowser } from '../lib/browser.js';
import { clickAndWait, signInEverywhere, useStack, waitForPage } from './helpers.js';

const ctx = useStack('session-management', { sessionManagement: true }, { thirdPartyCookies: true });

/**
 * In the page of `origin` (loaded first), frame `iframe` and post `message` to it as an RP's
 * own iframe would; resolves the answer (or rejects after 5 s).
 */
async function ask(origin, iframe, message, page = ctx.page) {
  if (new URL(page.url()).origin !== origin) await page.goto(`${origin}/`);
  return page.evaluate(async (src, msg) => {
    const f = document.createElement('iframe');
    f.src = src;
    document.body.appendChild(f);
    await new Promise((r) => f.addEventListener('load', r, { once: true }));
    try {
      return await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no answer from the check_session_iframe')), 5000);
        window.addEventListener('message', function answer(e) {
          if (e.source !== f.contentWindow) return;
          clearTimeout(t);
          window.removeEventListener('message', answer);
          resolve(e.data);
        });
        f.contentWindow.postMessage(msg, new URL(src).origin);
      });
    } finally {
      f.remove();
    }
  }, iframe, message);
}

let iframe;

test('discovery names the gateway\'s check_session_iframe, an https URL on the issuer\'s origin (SM-03)', async () => {
  const doc = await (await fetch(`${ctx.stack.issuer}/.well-known/openid-configuration`)).json();
  iframe = doc.check_session_iframe;
  assert.equal(iframe, `${ctx.stack.issuer}/check-session`);
  assert.ok(iframe.startsWith('https://'), iframe);
  const r = await fetch(iframe);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-security-policy'), /script-src 'sha256-[A-Za-z0-9+/=]+'; frame-ancestors \*/);
});

test('every RP\'s authorization response carried a session_state, and the iframe says unchanged for it, from its own page only (SM-01, SM-04)', async () => {
  await signInEverywhere(ctx);
  const [rp1, rp2] = ctx.stack.rps;
  const states = ctx.stack.rps.map((rp) => rp.records.logins.at(-1).sessionState);
  for (const s of states) assert.match(s ?? '', /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]+$/, `session_state ${s}`);
  assert.equal(await ask(rp1.origin, iframe, `${rp1.clientId} ${states[0]}`), 'unchanged');
  assert.equal(await ask(rp1.origin, iframe, `${rp2.clientId} ${states[0]}`), 'changed', 'another client\'s name');
  assert.equal(await ask(rp1.origin, iframe, `${rp2.clientId} ${states[1]}`), 'changed', 'rp2\'s state asked from rp1\'s origin');
  assert.equal(await ask(rp1.origin, iframe, `${rp1.clientId} garbage`), 'error');
  assert.equal(await ask(rp2.origin, iframe, `${rp2.clientId} ${states[1]}`), 'unchanged');
});

test('after rp1\'s single logout, every RP\'s check answers changed (SM-02)', async () => {
  const { page, stack } = ctx;
  const [rp1] = stack.rps;
  const states = stack.rps.map((rp) => rp.records.logins.at(-1).sessionState);
  await page.goto(`${rp1.origin}/`);
  await page.click('#logout');
  await waitForPage(page, `${rp1.origin}/logged-out`);
  for (const [i, rp] of stack.rps.entries()) {
    assert.equal(await ask(rp.origin, iframe, `${rp.clientId} ${states[i]}`), 'changed', rp.clientId);
  }
  // Signing in again gives a new session_state the iframe accepts.
  await page.goto(`${rp1.origin}/login`);
  if (page.url().includes('/interaction/')) {
    await page.type('#login', 'alice');
    await page.type('#password', 'wonderland');
    await clickAndWait(page, '#sign-in');
  }
  const again = rp1.records.logins.at(-1).sessionState;
  assert.notEqual(again, states[0]);
  assert.equal(await ask(rp1.origin, iframe, `${rp1.clientId} ${again}`), 'unchanged');
});

test('a browser that blocks third-party cookies (Chromium\'s default): the iframe cannot read the state and says changed, never a false unchanged', async () => {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    await signInEverywhere({ stack: ctx.stack, page, visited: [] });
    const [rp1] = ctx.stack.rps;
    const state = rp1.records.logins.at(-1).sessionState;
    assert.match(state ?? '', /^[A-Za-z0-9_-]{43}\./);
    assert.equal(await ask(rp1.origin, iframe, `${rp1.clientId} ${state}`, page), 'changed');
  } finally {
    await browser.close().catch(() => {});
  }
});
