'use strict';

// Standard Webhooks verification of what smshub posts to a REST hook: the signed content
// is "{webhook-id}.{webhook-timestamp}.{raw body}", HMAC-SHA256 keyed with the base64 part
// of the hook's whsec_ secret, base64 in the webhook-signature header as "v1,<sig>" (two,
// space-separated, while a secret is being rotated). Node's crypto only.

const crypto = require('node:crypto');

/** Deliveries signed further than this from our clock are refused (replays). */
const TOLERANCE_S = 5 * 60;

class SignatureError extends Error {}

/** A header of a raw request, whatever its case, also under Zapier's "Http-" prefix. */
const headerOf = (headers, name) => {
  const wanted = [name.toLowerCase(), `http-${name.toLowerCase()}`];
  for (const [key, value] of Object.entries(headers || {})) {
    if (wanted.includes(key.toLowerCase())) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
};

/** Throws SignatureError unless one of `secrets` signed `body` (a string or Buffer). */
const verify = (secrets, headers, body, nowS = Date.now() / 1000) => {
  const id = headerOf(headers, 'webhook-id');
  const timestamp = headerOf(headers, 'webhook-timestamp');
  const signatures = headerOf(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) {
    throw new SignatureError('the webhook-id, webhook-timestamp and webhook-signature headers are missing');
  }
  if (!/^\d+$/.test(timestamp)) throw new SignatureError('webhook-timestamp is not a number');
  if (Math.abs(nowS - Number(timestamp)) > TOLERANCE_S) {
    throw new SignatureError('webhook-timestamp is more than 5 minutes away');
  }
  const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), Buffer.from(body)]);
  for (const secret of secrets) {
    const key = Buffer.from(String(secret).replace(/^whsec_/, ''), 'base64');
    const expected = Buffer.from(crypto.createHmac('sha256', key).update(content).digest('base64'));
    for (const candidate of String(signatures).split(' ')) {
      const [version, value = ''] = candidate.split(',', 2);
      const given = Buffer.from(value);
      if (version === 'v1' && given.length === expected.length && crypto.timingSafeEqual(given, expected)) {
        return;
      }
    }
  }
  throw new SignatureError('no signature matches the hook secret');
};

module.exports = { verify, headerOf, SignatureError, TOLERANCE_S };
