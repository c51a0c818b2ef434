'use strict';

// Against a real `smshub serve` on loopback (tests/integration/test_zapier_app.py starts
// it): HUB_URL, HUB_API_KEY, and HUB_SIMULATE, a JSON array that runs
// `smshub simulate inbound` (the signed simulator webhook, as a phone would post it).
// Skipped without HUB_URL. A local receiver stands in for hooks.zapier.com: it records
// what the hub posts, checks the Standard Webhooks signature with node's crypto, and the
// recorded request goes through the trigger's perform as Zapier would hand it over.

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const http = require('node:http');
const { after, before, describe, test } = require('node:test');

const zapier = require('zapier-platform-core');
const App = require('../index');

const { HUB_URL, HUB_API_KEY, HUB_SIMULATE } = process.env;
const appTester = zapier.createAppTester(App);
const authData = { base_url: `${HUB_URL}/`, api_key: HUB_API_KEY };
const ALICE = '+15550001234';

/** The hub's own API, outside the app (to check what the app did). */
const hub = async (method, path, body) => {
  const response = await fetch(`${HUB_URL}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${HUB_API_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
};

const simulateInbound = (text) => {
  const [cmd, ...args] = JSON.parse(HUB_SIMULATE);
  execFileSync(cmd, [...args, '--from', ALICE, '--text', text, '--url', HUB_URL], { stdio: 'pipe' });
};

const waitFor = async (what, predicate, timeoutMs = 20000) => {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
};

/** Standard Webhooks, checked independently of the app's own code. */
const genuine = (secret, request) => {
  const id = request.headers['webhook-id'];
  const ts = request.headers['webhook-timestamp'];
  const expected = crypto
    .createHmac('sha256', Buffer.from(secret.replace(/^whsec_/, ''), 'base64'))
    .update(`${id}.${ts}.${request.content}`)
    .digest('base64');
  const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
  return fresh && request.headers['webhook-signature'].split(' ').includes(`v1,${expected}`);
};

/** A receiver standing in for Zapier's hook URLs: one path per subscription. */
const receiver = { requests: [], server: null, url: '' };
const caught = (path) => receiver.requests.filter((r) => r.path === path);

/** The recorded request as Zapier hands it to perform. */
const hookBundle = (subscribeData, request, inputData = {}) => ({
  authData,
  inputData,
  subscribeData,
  rawRequest: { method: 'POST', headers: request.headers, content: request.content },
  cleanedRequest: JSON.parse(request.content),
});

describe('against a running hub', { skip: !HUB_URL && 'HUB_URL is not set' }, () => {
  before(async () => {
    receiver.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (chunk) => chunks.push(chunk));
      req.on('end', () => {
        receiver.requests.push({ path: req.url, headers: req.headers, content: Buffer.concat(chunks).toString() });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"success"}');
      });
    });
    await new Promise((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    receiver.url = `http://127.0.0.1:${receiver.server.address().port}`;
  });
  after(() => receiver.server && receiver.server.close());

  test('the connection test lists channels; a wrong key asks to reconnect', async () => {
    assert.ok((await appTester(App.authentication.test, { authData })).channels >= 1);
    await assert.rejects(
      appTester(App.authentication.test, { authData: { ...authData, api_key: 'shk_wrong' } }),
      /AuthenticationError|API key was refused/,
    );
  });

  test('New Inbound SMS: subscribe, a signed delivery, perform, samples, unsubscribe', async () => {
    const op = App.triggers.sms_received.operation;
    const targetUrl = `${receiver.url}/inbound`;
    const subscribeData = await appTester(op.performSubscribe, { authData, targetUrl });
    const [hook] = subscribeData.hooks;
    assert.match(hook.secret, /^whsec_/);
    const shown = await hub('GET', `/endpoints/${hook.id}`);
    assert.equal(shown.status, 200);
    assert.equal(shown.json.kind, 'hook');
    assert.equal(shown.json.url, targetUrl);
    assert.deepEqual(shown.json.event_types, ['sms.received']);

    simulateInbound('JOIN zapier');
    const [request] = await waitFor('the inbound SMS at the hook', () => caught('/inbound').length && caught('/inbound'));
    assert.ok(genuine(hook.secret, request), 'the Standard Webhooks signature verifies');
    const [event] = await appTester(op.perform, hookBundle(subscribeData, request));
    assert.equal(event.event_type, 'sms.received');
    assert.equal(event.body, 'JOIN zapier');
    assert.equal(event.from, ALICE);
    assert.equal(event.id, event.event_id);
    assert.ok(event.message_id.startsWith('msg_'));
    // A delivery altered on the way is refused.
    const forged = { ...request, content: request.content.replace('JOIN zapier', 'STOP') };
    await assert.rejects(appTester(op.perform, hookBundle(subscribeData, forged)), /Refused a delivery/);

    // performList: the real payload, in the same flat shape perform gives.
    const listed = await appTester(op.performList, { authData });
    const same = listed.find((item) => item.id === event.id);
    assert.ok(same, 'the recent inbound SMS is a sample');
    assert.deepEqual(Object.keys(same).sort(), Object.keys(event).sort());

    await appTester(op.performUnsubscribe, { authData, subscribeData });
    assert.equal((await hub('GET', `/endpoints/${hook.id}`)).status, 404);
    simulateInbound('after unsubscribe');
    await waitFor('the second SMS stored', async () => {
      const page = await hub('GET', '/messages?direction=inbound&limit=5');
      return page.json.items.some((m) => m.body === 'after unsubscribe');
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(caught('/inbound').length, 1, 'nothing more reaches an unsubscribed hook');
    // Unsubscribing twice is harmless (Zapier may retry).
    await appTester(op.performUnsubscribe, { authData, subscribeData });
  });

  test('Send SMS reaches the gateway once; Message Status Changed fires on delivery', async () => {
    const statusOp = App.triggers.message_status.operation;
    const targetUrl = `${receiver.url}/status`;
    const inputData = { status: 'final' };
    const subscribeData = await appTester(statusOp.performSubscribe, { authData, targetUrl, inputData });
    assert.deepEqual(subscribeData.hooks.map((h) => h.event), ['sms.delivered', 'sms.failed']);
    for (const hook of subscribeData.hooks) {
      assert.deepEqual((await hub('GET', `/endpoints/${hook.id}`)).json.event_types, [hook.event]);
    }

    const channels = await appTester(App.triggers.channel_list.operation.perform, { authData });
    const sim = channels.find((c) => c.connector === 'simulator');
    assert.ok(sim, 'the simulator channel is in the dropdown');
    const devices = await appTester(App.triggers.device_list.operation.perform, { authData, inputData: { channel_id: sim.id } });
    assert.ok(devices.every((d) => d.channel_id === sim.id));
    // The simulated phone became a device with the inbound SMS of the test above.
    assert.equal(devices.length, 1, 'the simulator phone is in the device dropdown');
    const [device] = devices;
    const simField = App.creates.send_sms.operation.inputFields.find((f) => typeof f === 'function');
    const [simChoice] = await appTester(simField, { authData, inputData: { channel_id: sim.id, device_id: device.id } });
    assert.deepEqual(Object.keys(simChoice.choices), device.sim_slots.map(String));
    const slot = device.sim_slots[device.sim_slots.length - 1];

    const text = `Your order ${crypto.randomUUID().slice(0, 8)} has shipped`;
    const send = App.creates.send_sms.operation.perform;
    const input = {
      to: '+15550009999',
      message: text,
      channel_id: sim.id,
      device_id: device.id,
      sim_slot: String(slot), // Zapier hands dropdown values over as strings
      idempotency_key: text,
    };
    const sent = await appTester(send, { authData, inputData: input });
    assert.equal(sent.duplicate, false);
    const again = await appTester(send, { authData, inputData: input });
    assert.equal(again.id, sent.id);
    assert.equal(again.duplicate, true);

    const delivered = await waitFor('the SMS delivered', async () => {
      const m = await hub('GET', `/messages/${sent.id}`);
      return m.json.status === 'delivered' && m.json;
    });
    const outbound = await hub('GET', '/messages?direction=outbound&limit=50');
    assert.equal(outbound.json.items.filter((m) => m.body === text).length, 1, 'one message');
    assert.equal(delivered.history.filter((h) => h.status === 'sent').length, 1, 'handed over once');
    assert.equal(delivered.channel_id, sim.id);
    assert.equal(delivered.device_id, device.id);
    assert.equal(delivered.sim_slot, slot);

    const [request] = await waitFor('the delivery report at the hook', () =>
      caught('/status').filter((r) => JSON.parse(r.content).data.message_id === sent.id).length &&
      caught('/status').filter((r) => JSON.parse(r.content).data.message_id === sent.id),
    );
    const hookOfEvent = subscribeData.hooks.find((h) => h.event === 'sms.delivered');
    assert.ok(genuine(hookOfEvent.secret, request));
    const [event] = await appTester(statusOp.perform, hookBundle(subscribeData, request, inputData));
    assert.equal(event.event_type, 'sms.delivered');
    assert.equal(event.status, 'delivered');
    assert.equal(event.message_id, sent.id);

    await appTester(statusOp.performUnsubscribe, { authData, subscribeData });
    for (const hook of subscribeData.hooks) {
      assert.equal((await hub('GET', `/endpoints/${hook.id}`)).status, 404);
    }
  });

  test('Add Contact to Group creates the contact once; Find Contact finds it', async () => {
    const group = await hub('POST', '/groups', { name: `zapier-${crypto.randomUUID().slice(0, 8)}` });
    assert.equal(group.status, 201);
    const groups = await appTester(App.triggers.group_list.operation.perform, { authData });
    assert.ok(groups.some((g) => g.id === group.json.id));
    const add = App.creates.add_to_group.operation.perform;
    const inputData = { phone: '+15554440002', group_id: group.json.id, name: 'Zed' };
    const first = await appTester(add, { authData, inputData });
    assert.equal(first.added, true);
    assert.equal(first.phone, '+15554440002');
    assert.equal(first.name, 'Zed');
    const second = await appTester(add, { authData, inputData });
    assert.equal(second.added, false);
    assert.equal(second.already_member, true);
    assert.equal((await hub('GET', `/groups/${group.json.id}`)).json.member_count, 1);
    await assert.rejects(
      appTester(add, { authData, inputData: { ...inputData, group_id: 'grp_nope' } }),
      /404/,
    );

    const find = App.searches.find_contact.operation.perform;
    const [byPhone] = await appTester(find, { authData, inputData: { phone: '+15554440002' } });
    assert.equal(byPhone.id, first.id);
    const byName = await appTester(find, { authData, inputData: { phone: 'Zed' } });
    assert.deepEqual(byName.map((c) => c.id), [first.id]);
    assert.deepEqual(await appTester(find, { authData, inputData: { phone: '+15559990000' } }), []);
  });

  test('Start a Flow for a Contact runs the published flow; a failed run fires Flow Run Failed', async () => {
    const flow = {
      name: `zapier start ${crypto.randomUUID().slice(0, 8)}`,
      nodes: [
        { id: 'start', type: 'trigger.sms_received', config: { keywords: ['never-typed-zapier'] } },
        { id: 'hello', type: 'sms.send', config: { to: '{{ contact.phone }}', text: 'code {{ trigger.data.params.code }}' } },
      ],
      edges: [{ from: 'start', port: 'next', to: 'hello' }],
    };
    const created = await hub('POST', '/flows/import?publish=true', flow);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const flows = await appTester(App.triggers.flow_list.operation.perform, { authData });
    assert.ok(flows.some((f) => f.id === created.json.id));
    const start = App.creates.start_flow.operation.perform;
    const inputData = { flow_id: created.json.id, phone: '+15554440003', params: { code: '7' } };
    const run = await appTester(start, { authData, inputData });
    assert.equal(run.status, 'completed');
    const stored = await hub('GET', `/runs/${run.run_id}`);
    assert.equal(stored.json.run.trigger.type, 'flow.started');
    assert.deepEqual(stored.json.run.trigger.data.params, { code: '7' });
    await waitFor('the flow SMS', async () => {
      const page = await hub('GET', '/messages?direction=outbound&limit=50');
      return page.json.items.some((m) => m.body === 'code 7' && m.to === '+15554440003');
    });
    await assert.rejects(appTester(start, { authData, inputData: { ...inputData, flow_id: 'flw_nope' } }), /flow_not_found/);

    // Flow Run Failed: a run that fails (flow.start of a flow that does not exist, its
    // error port unconnected) reaches the trigger, signed.
    const failedOp = App.triggers.flow_run_failed.operation;
    const subscribeData = await appTester(failedOp.performSubscribe, { authData, targetUrl: `${receiver.url}/failed` });
    assert.deepEqual((await hub('GET', `/endpoints/${subscribeData.id}`)).json.event_types, ['flow.run.failed']);
    const failing = await hub('POST', '/flows/import?publish=true', {
      ...flow,
      name: `${flow.name} failing`,
      nodes: [flow.nodes[0], { id: 'boom', type: 'flow.start', config: { flow_id: 'flw_nope' } }],
      edges: [{ from: 'start', port: 'next', to: 'boom' }],
    });
    const failedRun = await appTester(start, { authData, inputData: { flow_id: failing.json.id, phone: '+15554440004' } });
    assert.equal(failedRun.status, 'failed');
    const [request] = await waitFor('the failed run at the hook', () => caught('/failed').length && caught('/failed'));
    assert.ok(genuine(subscribeData.hooks[0].secret, request));
    const [event] = await appTester(failedOp.perform, hookBundle(subscribeData, request));
    assert.equal(event.event_type, 'flow.run.failed');
    assert.equal(event.run_id, failedRun.run_id);
    assert.equal(event.flow_id, failing.json.id);
    assert.match(event.error, /flw_nope/);
    const samples = await appTester(failedOp.performList, { authData });
    assert.ok(samples.some((item) => item.run_id === failedRun.run_id), 'the real failure is a sample');
    await appTester(failedOp.performUnsubscribe, { authData, subscribeData });
    assert.equal((await hub('GET', `/endpoints/${subscribeData.id}`)).status, 404);
  });
});
