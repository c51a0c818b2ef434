import { createHmac, timingSafeEqual } from 'node:crypto';

/** Seconds a delivery's `webhook-timestamp` may be away from our clock (the hub's docs say 5 min). */
export const TOLERANCE_S = 5 * 60;

/** The three Standard Webhooks headers of a delivery (lower-case names, as Node gives them). */
export interface SignedHeaders {
	'webhook-id'?: string;
	'webhook-timestamp'?: string;
	'webhook-signature'?: string;
}

/**
 * Why a delivery is not genuine, or `null` when it is: docs/webhooks.md "Verifying our
 * signature". HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{raw body}` keyed with the
 * base64-decoded part of the `whsec_` secret after the prefix; `webhook-signature` is a
 * space-separated list of `v1,<base64>` (two during a secret rotation), any of which may match.
 */
export function verifySignature(
	secret: string,
	headers: SignedHeaders,
	rawBody: Buffer,
	nowS: number = Date.now() / 1000,
): string | null {
	const id = headers['webhook-id'];
	const timestamp = headers['webhook-timestamp'];
	const signatures = headers['webhook-signature'];
	if (!id || !timestamp || !signatures) return 'missing webhook-id, webhook-timestamp or webhook-signature';
	if (!/^\d+$/.test(timestamp)) return 'webhook-timestamp is not Unix seconds';
	if (Math.abs(nowS - Number(timestamp)) > TOLERANCE_S) return 'webhook-timestamp is more than 5 minutes away';
	const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
	const expected = createHmac('sha256', key)
		.update(`${id}.${timestamp}.`)
		.update(rawBody)
		.digest();
	for (const entry of signatures.split(' ')) {
		const [version, value] = entry.split(',', 2);
		if (version !== 'v1' || !value) continue;
		const given = Buffer.from(value, 'base64');
		if (given.length === expected.length && timingSafeEqual(given, expected)) return null;
	}
	return 'no v1 signature matches';
}
