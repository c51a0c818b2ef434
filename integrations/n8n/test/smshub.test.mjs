// The nodes against a real smshub on loopback (tests/integration/test_n8n_node.py starts it
// and passes HUB_URL, HUB_API_KEY, SIM_CHANNEL_ID, SIM_SECRET, SIM_NUMBER, GATEWAY_CHANNEL_ID).
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';

import { credentials, executeContext, hookContext, httpRequest, webhookContext } from './context.mjs';

const require = createRequire(import.meta.url);
const { SmsHub, SmsHubApi, SmsHubTrigger, verifySignature } = require('../dist/index.js');

const HUB = process.env.HUB_URL;
const ALICE = '+15550001234';

/** The hub's API with the test's key (checks made beside the nodes, not through them). */
function api(method, path, body) {
	return httpRequest({
		method,
		url: `${HUB}/api/v1${path}`,
		headers: { authorization: `Bearer ${process.env.HUB_API_KEY}` },
		body,
	});
}

async function status(method, path) {
	try {
		await api(method, path);
		return 200;
	} catch (error) {
		return error.response.status;
	}
}

async function eventually(check, what, timeoutMs = 20_000) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await check();
		if (value) return value;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

/** Alice texts the simulator channel: a signed simulator webhook, as a phone would post it. */
async function inboundSms(text) {
	const body = JSON.stringify({
		event: 'sms.received',
		id: `n8n-${randomUUID()}`,
		from: ALICE,
		to: process.env.SIM_NUMBER,
		text,
	});
	const ts = String(Math.floor(Date.now() / 1000));
	const signature = createHmac('sha256', process.env.SIM_SECRET).update(`${ts}.${body}`).digest('hex');
	const resp = await fetch(`${HUB}/webhooks/${process.env.SIM_CHANNEL_ID}`, {
		method: 'POST',
		headers: { 'content-type': 'application/json', 'x-simulator-timestamp': ts, 'x-simulator-signature': signature },
		body,
	});
	assert.equal(resp.status, 200, await resp.text());
}

describe('credentials', () => {
	test('the credential test request passes with the key and fails without it', async () => {
		const { request } = new SmsHubApi().test;
		const baseURL = HUB.replace(/\/+$/, '');
		const call = (apiKey) =>
			fetch(`${baseURL}${request.url}?limit=${request.qs.limit}`, {
				headers: { authorization: `Bearer ${apiKey}` },
			});
		assert.equal((await call(process.env.HUB_API_KEY)).status, 200);
		assert.equal((await call('wrong-key')).status, 401);
	});
});

describe('smshub Trigger', () => {
	const trigger = new SmsHubTrigger();
	const data = {}; // the node's workflow static data, kept across activation, webhooks, deactivation
	const params = { event: 'sms.received' };
	const received = []; // every delivery the hub made: { status, workflowData, body }
	let server;
	let webhookUrl;

	before(async () => {
		// The trigger's n8n URL: /webhook/<id>/webhook, which the hub recognises as n8n's.
		const path = `/webhook/${randomUUID()}/webhook`;
		server = createServer((req, res) => {
			const chunks = [];
			req.on('data', (chunk) => chunks.push(chunk));
			req.on('end', async () => {
				const request = { headers: req.headers, rawBody: Buffer.concat(chunks) };
				const { ctx, response } = webhookContext({ params, data, request });
				const answer = await trigger.webhook.call(ctx);
				const code = response.statusCode ?? 200;
				received.push({ code, answer, request });
				res.writeHead(code, { 'content-type': 'application/json' });
				res.end(JSON.stringify(response.body ?? { received: true }));
			});
		});
		await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
		webhookUrl = `http://127.0.0.1:${server.address().port}${path}`;
	});

	after(() => server.close());

	const hook = () => hookContext({ params, data, webhookUrl });
	const methods = trigger.webhookMethods.default;

	test('activation subscribes a REST hook for the event and keeps its secret', async () => {
		assert.equal(await methods.checkExists.call(hook()), false);
		assert.equal(await methods.create.call(hook()), true);
		assert.match(data.hookId, /^ep_/);
		assert.match(data.secret, /^whsec_/);
		const endpoint = await api('GET', `/endpoints/${data.hookId}`);
		assert.equal(endpoint.kind, 'hook');
		assert.equal(endpoint.url, webhookUrl);
		assert.deepEqual(endpoint.event_types, ['sms.received']);
		assert.equal(endpoint.preset, 'n8n');
		assert.equal(endpoint.secret, data.secret);
		assert.equal(await methods.checkExists.call(hook()), true);
	});

	test('an inbound SMS reaches the trigger with a valid signature and is emitted', async () => {
		await inboundSms('JOIN news');
		const delivery = await eventually(() => received[0], 'the delivery');
		assert.equal(delivery.code, 200);
		const [[item]] = delivery.answer.workflowData;
		// The n8n preset flattens the event: envelope fields as event_*, data lifted up.
		assert.equal(item.json.event_type, 'sms.received');
		assert.equal(item.json.body, 'JOIN news');
		assert.equal(item.json.from, ALICE);
		assert.match(item.json.message_id, /^msg_/);
		assert.equal(item.json.webhook_id, delivery.request.headers['webhook-id']);
		assert.equal(verifySignature(data.secret, delivery.request.headers, delivery.request.rawBody), null);
	});

	test('a tampered, replayed or foreign delivery is refused with 401 and not emitted', async () => {
		const genuine = received[0].request;
		const forged = (changes) => {
			const request = { headers: { ...genuine.headers, ...(changes.headers ?? {}) }, rawBody: changes.rawBody ?? genuine.rawBody };
			return webhookContext({ params, data, request });
		};
		const cases = [
			// the body changed in transit
			{ rawBody: Buffer.from(genuine.rawBody.toString().replace('JOIN news', 'JOIN spam')) },
			// another event id under the same signature
			{ headers: { 'webhook-id': 'evt_someone_else' } },
			// the signature gone
			{ headers: { 'webhook-signature': '' } },
		];
		for (const changes of cases) {
			const { ctx, response } = forged(changes);
			const answer = await trigger.webhook.call(ctx);
			assert.deepEqual(answer, { noWebhookResponse: true });
			assert.equal(response.statusCode, 401);
			assert.equal(response.body.error.code, 'invalid_signature');
		}
		// Signed with another hook's secret, or six minutes ago.
		const other = 'whsec_' + Buffer.from('another secret, 32 bytes long!!!').toString('base64');
		assert.equal(verifySignature(other, genuine.headers, genuine.rawBody), 'no v1 signature matches');
		const sixMinutesLate = Number(genuine.headers['webhook-timestamp']) + 360;
		assert.match(verifySignature(data.secret, genuine.headers, genuine.rawBody, sixMinutesLate), /5 minutes/);
	});

	test('deactivation removes the hook', async () => {
		const id = data.hookId;
		assert.equal(await methods.delete.call(hook()), true);
		assert.equal(data.hookId, undefined);
		assert.equal(await status('GET', `/endpoints/${id}`), 404);
		assert.equal(await methods.checkExists.call(hook()), false);
		// Deactivating again (the hook already gone) is harmless.
		data.hookId = id;
		assert.equal(await methods.delete.call(hook()), true);
	});
});

describe('smshub', () => {
	const node = new SmsHub();
	const run = async (params, executionId) => {
		const [items] = await node.execute.call(executeContext({ params, executionId }));
		return items.map((item) => item.json);
	};

	test('send SMS queues one message through the gateway; a retried execution sends nothing more', async () => {
		const params = {
			resource: 'message',
			operation: 'send',
			to: ALICE,
			message: 'Hello from n8n',
			additionalFields: { channel_id: process.env.GATEWAY_CHANNEL_ID },
		};
		const [sent] = await run(params, 'exec-send');
		assert.equal(sent.status, 'queued');
		assert.equal(sent.duplicate, false);
		const [again] = await run(params, 'exec-send');
		assert.equal(again.id, sent.id);
		assert.equal(again.duplicate, true);

		// Get: the message with its history, once the gateway has taken it.
		const taken = await eventually(async () => {
			const [message] = await run({ resource: 'message', operation: 'get', messageId: sent.id });
			return ['accepted', 'sent', 'delivered'].includes(message.status) && message;
		}, 'the gateway to take the message');
		assert.equal(taken.to, ALICE);
		assert.equal(taken.body, 'Hello from n8n');
		assert.equal(taken.channel_id, process.env.GATEWAY_CHANNEL_ID);

		// Get many: with a filter, and paging past the first page.
		const outbound = await run({ resource: 'message', operation: 'getAll', returnAll: true, filters: { direction: 'outbound' } });
		assert.deepEqual(outbound.map((m) => m.id), [sent.id]);
		const one = await run({ resource: 'message', operation: 'getAll', returnAll: false, limit: 1, filters: {} });
		assert.equal(one.length, 1);
		const all = await run({ resource: 'message', operation: 'getAll', returnAll: true, filters: {} });
		assert.ok(all.length >= 2, 'the inbound SMS and the sent one');
	});

	test('an unknown message is the hub error, not a crash', async () => {
		await assert.rejects(run({ resource: 'message', operation: 'get', messageId: 'msg_nope' }), (error) => {
			assert.equal(error.httpCode, '404');
			return true;
		});
	});

	test('add contact to group', async () => {
		const group = await api('POST', '/groups', { name: `n8n ${randomUUID()}` });
		const [answer] = await run({ resource: 'group', operation: 'addContact', groupId: group.id, phone: `${ALICE}, +15550009999` });
		assert.deepEqual(answer.added, [ALICE, '+15550009999']);
		const [again] = await run({ resource: 'group', operation: 'addContact', groupId: group.id, phone: ALICE });
		assert.deepEqual(again.already_members, [ALICE]);
	});

	test('start flow runs the published flow for the phone with the parameters, once per execution', async () => {
		const phone = '+15550007777';
		const flow = await api('POST', '/flows/import?publish=true', {
			name: `n8n start ${randomUUID()}`,
			nodes: [
				{ id: 'start', type: 'trigger.sms_received', config: { keywords: ['never-typed'] } },
				{ id: 'mark', type: 'contact.update', config: { fields: { code: '{{ trigger.data.params.code }}' } } },
			],
			edges: [{ from: 'start', port: 'next', to: 'mark' }],
		});
		const params = { resource: 'flow', operation: 'start', flowId: flow.id, phone, params: '{"code": "n8n-42"}' };
		const [started] = await run(params, 'exec-flow');
		assert.match(started.run_id, /^run_/);
		assert.equal(started.status, 'completed');
		const [again] = await run(params, 'exec-flow');
		assert.equal(again.run_id, started.run_id);
		const { items } = await api('GET', `/contacts?q=${encodeURIComponent(phone)}`);
		assert.equal(items.length, 1);
		assert.equal(items[0].fields.code, 'n8n-42');
		// Parameters that are not a JSON object are the node's error, before any request.
		await assert.rejects(run({ ...params, params: '[1, 2]' }, 'exec-bad'), /JSON object/);
	});
});

// Not through the nodes: the fake context must not pass for something n8n would refuse.
test('the fake context applies the credential like n8n: a wrong key is a 401 from the hub', async () => {
	const ctx = executeContext({ params: { resource: 'message', operation: 'get', messageId: 'msg_x' } });
	const wrong = { ...ctx, getCredentials: async () => credentials({ apiKey: 'nope' }) };
	wrong.helpers = hookContext({ params: {}, data: {}, webhookUrl: '', creds: credentials({ apiKey: 'nope' }) }).helpers;
	await assert.rejects(new SmsHub().execute.call(wrong), (error) => error.httpCode === '401');
});
