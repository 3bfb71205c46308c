// The pages of an example relying party: its home (signed in or not, with sign-in, silent
// sign-in and sign-out buttons), the post-logout page, and the tiny page its front-channel
// logout URL answers inside the gateway's iframe.
import { escapeHtml, page } from './html.js';

function peerLinks(rp) {
  if (!rp.peers.length) return '';
  const links = rp.peers.map((p) => `<a href="${escapeHtml(p.origin)}/">${escapeHtml(p.name)}</a>`).join(' · ');
  return `<p class="muted">Other relying parties: ${links}</p>`;
}

/** `endSession`: the gateway's end_session URL, for a sign-out without hint (it asks first). */
export function homePage(rp, session, note, endSession) {
  const body = session
    ? `<h1>${escapeHtml(rp.name)}: signed in</h1>
<p id="status" data-state="signed-in">Signed in as <strong id="sub">${escapeHtml(session.sub)}</strong>${session.name ? ` (${escapeHtml(session.name)})` : ''}.</p>
<table>
<tr><td>session id (sid) this RP got</td><td><code id="sid">${escapeHtml(session.sid)}</code></td></tr>
<tr><td>issuer</td><td><code>${escapeHtml(session.iss)}</code></td></tr>
</table>
<p><a class="button" id="logout" href="/logout">Sign out (single logout)</a></p>
${endSession ? `<p class="muted">or <a href="${escapeHtml(endSession)}" id="logout-no-hint">sign out at the gateway without a hint</a> (it asks you first)</p>` : ''}`
    : `<h1>${escapeHtml(rp.name)}: not signed in</h1>
<p id="status" data-state="signed-out">${note ? escapeHtml(note) : 'You are not signed in to this relying party.'}</p>
<p><a class="button" id="login" href="/login">Sign in</a> <a href="/login?prompt=none" id="silent">Try silent sign-in (prompt=none)</a></p>`;
  return page(rp.name, `${body}\n${peerLinks(rp)}\n<p class="muted"><a href="/recorded">What this RP recorded (JSON)</a></p>`, {
    accent: rp.accent,
  });
}

export function loggedOutPage(rp, state, known) {
  return page(`${rp.name}: signed out`, `<h1>${escapeHtml(rp.name)}: signed out</h1>
<p id="status" data-state="logged-out">The gateway sent you back after single logout.</p>
<p>state: <code id="state">${escapeHtml(state ?? '')}</code> (${known ? 'the state this RP sent' : 'unknown state'})</p>
<p><a class="button" href="/">Home</a></p>${peerLinks(rp)}`, { accent: rp.accent });
}

/**
 * Shown inside the gateway's (normally hidden) iframe: small, no scripts. `outcome`: 'ended' (a
 * local session had that sid), 'none' (none had: the back-channel token usually comes first) or
 * 'foreign' (the iss is not this RP's issuer, so nothing was done).
 */
export function frontchannelPage(rp, sid, outcome) {
  const say = { ended: 'signed out', none: 'already signed out', foreign: 'ignored (unknown issuer)' }[outcome];
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHtml(rp.name)}</title></head>
<body style="font: 13px system-ui, sans-serif; margin: .4rem; color: ${escapeHtml(rp.accent)}">
<strong>${escapeHtml(rp.name)}</strong>: ${say}<br>sid <code>${escapeHtml(sid ?? '')}</code>
</body></html>`;
}

export function messagePage(rp, title, text) {
  return page(`${rp.name}: ${title}`, `<h1>${escapeHtml(title)}</h1><p id="message">${escapeHtml(text)}</p><p><a href="/">Home</a></p>`, {
    accent: rp.accent,
  });
}
