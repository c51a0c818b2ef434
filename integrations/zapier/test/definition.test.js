'use strict';

// Without a hub: the app definition passes Zapier's schema (what `zapier validate` checks
// locally), the flat shape matches smshub's zapier preset, and signatures verify.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { test } = require('node:test');

const schema = require('zapier-platform-core/src/tools/schema');

const App = require('../index');
const { eventForZapier } = require('../lib/shape');
const { verify, SignatureError } = require('../lib/signature');
const samples = require('../lib/samples.json');

const SECRET = `whsec_${Buffer.alloc(24, 7).toString('base64')}`;

const sign = (secret, id, timestamp, body) =>
  crypto
    .createHmac('sha256', Buffer.from(secret.replace(/^whsec_/, ''), 'base64'))
    .update(`${id}.${timestamp}.${body}`)
    .digest('base64');

test('the app definition is valid for zapier-platform-schema', () => {
  assert.deepEqual(schema.validateApp(schema.prepareApp(App)), []);
  assert.deepEqual(Object.keys(App.creates).sort(), ['add_to_group', 'send_sms', 'start_flow']);
  assert.deepEqual(Object.keys(App.searches), ['find_contact']);
  for (const key of ['sms_received', 'message_status', 'flow_run_failed']) {
    const op = App.triggers[key].operation;
    assert.equal(op.type, 'hook', key);
    for (const fn of ['performSubscribe', 'performUnsubscribe', 'perform', 'performList']) {
      assert.equal(typeof op[fn], 'function', `${key}.${fn}`);
    }
    assert.ok(op.sample.id, `${key} sample has an id`);
  }
});

test('an envelope is flattened like the zapier preset, with id = event id', () => {
  const envelope = {
    id: 'evt_1',
    type: 'sms.received',
    timestamp: '2026-01-01T10:00:00Z',
    data: { from: '+1555', body: 'hi', channel: { id: 'ch_1', name: 'Shop' }, tags: ['a'], event_id: 'x', id: 'y' },
  };
  assert.deepEqual(eventForZapier(envelope), {
    id: 'evt_1',
    event_id: 'evt_1',
    event_type: 'sms.received',
    timestamp: '2026-01-01T10:00:00Z',
    from: '+1555',
    body: 'hi',
    channel__id: 'ch_1',
    channel__name: 'Shop',
    tags: ['a'],
    data__event_id: 'x', // clashes keep the data__ prefix, as the preset does
    data__id: 'y',
  });
  // A body flattened by the hub already only gains the id.
  const flat = { ...samples['sms.received'] };
  delete flat.id;
  assert.deepEqual(eventForZapier(flat), samples['sms.received']);
});

test('signatures: good, rotated, tampered, stale, missing, any header case', () => {
  const now = 1_800_000_000;
  const body = '{"a":1}';
  const good = sign(SECRET, 'msg_1', String(now), body);
  const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(now), 'webhook-signature': `v1,${good}` };
  verify([SECRET], headers, body, now);
  // Zapier's raw request may capitalize or prefix the header names.
  verify([SECRET], { 'Http-Webhook-Id': 'msg_1', 'Http-Webhook-Timestamp': String(now), 'Http-Webhook-Signature': `v1,${good}` }, body, now);
  // During a rotation two signatures come, either may match.
  verify([SECRET], { ...headers, 'webhook-signature': `v1,${'A'.repeat(44)} v1,${good}` }, body, now);
  const other = `whsec_${Buffer.alloc(24, 9).toString('base64')}`;
  assert.throws(() => verify([other], headers, body, now), SignatureError);
  assert.throws(() => verify([SECRET], headers, '{"a":2}', now), SignatureError);
  assert.throws(() => verify([SECRET], headers, body, now + 301), /5 minutes/);
  assert.throws(() => verify([SECRET], { 'webhook-id': 'msg_1' }, body, now), /missing/);
});

test('perform refuses a forged delivery and takes a genuine one', async () => {
  const zapier = require('zapier-platform-core');
  const appTester = zapier.createAppTester(App);
  const now = Math.floor(Date.now() / 1000);
  const content = JSON.stringify({ id: 'evt_9', type: 'sms.received', timestamp: 't', data: { body: 'JOIN' } });
  const headers = {
    'webhook-id': 'evt_9',
    'webhook-timestamp': String(now),
    'webhook-signature': `v1,${sign(SECRET, 'evt_9', String(now), content)}`,
  };
  const bundle = {
    authData: { base_url: 'http://127.0.0.1:9', api_key: 'unused' },
    subscribeData: { id: 'ep_1', hooks: [{ id: 'ep_1', event: 'sms.received', secret: SECRET }] },
    rawRequest: { headers, content },
    cleanedRequest: JSON.parse(content),
  };
  const [event] = await appTester(App.triggers.sms_received.operation.perform, bundle);
  assert.equal(event.body, 'JOIN');
  assert.equal(event.id, 'evt_9');
  const forged = { ...bundle, rawRequest: { headers, content: content.replace('JOIN', 'STOP') } };
  await assert.rejects(appTester(App.triggers.sms_received.operation.perform, forged), /InvalidSignature|Refused a delivery/);
});
