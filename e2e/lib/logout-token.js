// What a relying party checks in a back-channel logout token (OpenID Back-Channel Logout 1.0
// §2.6, with BCL-23's typ): signature against the issuer's published keys (the gateway merges
// its signing key into the JWKS at discovery's jwks_uri, GW-04), iss, aud, iat, jti, the events
// claim, a sid (the RPs register backchannel_logout_session_required), and no nonce.
import { jwtVerify } from 'jose';

export const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Verify `token` for `clientId`; resolves the payload or rejects with the reason. */
export async function verifyLogoutToken(token, { issuer, clientId, jwks }) {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience: clientId,
    typ: 'logout+jwt',
    algorithms: ['RS256', 'ES256'],
    requiredClaims: ['iat', 'jti', 'events', 'sid'],
    maxTokenAge: '2m', // BCL-22: short-lived
  });
  const event = payload.events?.[BACKCHANNEL_EVENT];
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new Error('events claim lacks the back-channel logout event object');
  }
  if ('nonce' in payload) throw new Error('a logout token must not carry a nonce');
  if (typeof payload.sid !== 'string' || payload.sid === '') throw new Error('sid missing');
  return { payload, header: protectedHeader };
}
