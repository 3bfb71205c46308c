// Scenario 3: one RP's front-channel endpoint never answers (rp3 hangs). With
// end_session.frontchannel_timeout 1s the gateway's page gives up on it, shows its notice, and
// still takes the browser on to rp1's post-logout page with the exact state (FCL-14, RPI-22).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../lib/paths.js';
import { assertBackchannel, assertScreenshot, signInEverywhere, useStack, waitForPage } from './helpers.js';

const FC_TIMEOUT_MS = 1000;
// The page waits the timeout, then shows its notice for a while before it moves on; how long is
// the template's (templates/frontchannel.hbs: `timedOut ? 2000 : 0`), read from there. So the
// config implies timeout + notice from the page's load; the margin covers the click, the
// redirects and both page loads on a loaded 2-core machine.
const NOTICE_MS = Number(readFileSync(join(repoRoot, 'templates', 'frontchannel.hbs'), 'utf8').match(/timedOut \? (\d+) : 0/)?.[1]);
const MARGIN_MS = 1500;
const IMPLIED_MS = FC_TIMEOUT_MS + NOTICE_MS;

const ctx = useStack('hanging-frontchannel', { fcTimeout: `${FC_TIMEOUT_MS}ms`, frontchannel: { rp3: 'hang' } });

test('the browser signs in to all three RPs', async () => {
  assert.ok(NOTICE_MS > 0, 'the notice delay is read from templates/frontchannel.hbs');
  await signInEverywhere(ctx);
});

test('rp1 logs out while rp3 hangs: the browser reaches rp1\'s post-logout page within the front-channel timeout', async () => {
  const { page, stack } = ctx;
  const [rp1, rp2, rp3] = stack.rps;
  await page.goto(`${rp1.origin}/`);
  const started = Date.now();
  await page.click('#logout');
  // The gateway's page, once it gave up on rp3: its notice is shown for a moment.
  await page.waitForSelector('body[data-logout="timeout"] #notice:not([hidden])');
  await assertScreenshot(page, 'gateway-frontchannel-page-timeout');
  await waitForPage(page, `${rp1.origin}/logged-out`, IMPLIED_MS + MARGIN_MS);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= IMPLIED_MS, `waited for the iframes, then showed the notice (${elapsed} ms)`);
  assert.ok(elapsed < IMPLIED_MS + MARGIN_MS, `moved on in ${elapsed} ms, at most ${MARGIN_MS} ms after the ${IMPLIED_MS} ms the config implies`);
  assert.equal(page.url(), `${rp1.origin}/logged-out?state=${rp1.records.logoutStates[0]}`);
  // rp3 was asked (by the browser, in its iframe) and never answered; the others answered.
  assert.equal(rp3.records.frontchannel.length, 1, 'rp3\'s front-channel URL was requested');
  assert.equal(rp3.records.frontchannel[0].dest, 'iframe');
  for (const rp of [rp1, rp2]) assert.equal(rp.records.frontchannel.length, 1, `${rp.clientId} notified`);
});

test('the back-channel still reaches every RP, the hanging one included', async () => {
  await assertBackchannel(ctx.stack.rps, ctx.stack.issuer);
});
