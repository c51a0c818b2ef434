'use strict';

// REST-hook triggers on smshub's /api/v1/hooks. Turning a Zap on subscribes
// (POST /hooks {target_url, event}: one hook per event type), turning it off
// unsubscribes (DELETE /hooks/{id}); "Test trigger" and field mapping read real recent
// payloads (GET /hooks/sample/{event}?preset=zapier). The subscribe answer holds the
// hook's whsec_ secret; it is kept in subscribeData so that `perform` can verify each
// delivery's Standard Webhooks signature against the raw request.

const { api, describeError } = require('./api');
const { eventForZapier } = require('./shape');
const { verify, SignatureError } = require('./signature');

/** The hook's signing secret: from the subscribe answer, else from the endpoint's own page. */
const secretOf = async (z, bundle, hook) => {
  if (hook.secret) return hook.secret;
  const shown = await z.request({ url: api(bundle, `/endpoints/${encodeURIComponent(hook.id)}`) });
  return shown.data.secret || null;
};

/** Subscribe one hook per event; subscribeData = {id, hooks: [{id, event, secret}]}. */
const subscribe = async (z, bundle, events) => {
  const hooks = [];
  for (const event of events) {
    const response = await z.request({
      url: api(bundle, '/hooks'),
      method: 'POST',
      body: { target_url: bundle.targetUrl, event },
    });
    const hook = response.data;
    hooks.push({ id: hook.id, event, secret: await secretOf(z, bundle, hook) });
  }
  return { id: hooks[0].id, hooks };
};

/** The hooks a subscribeData names (also the single {id} of an older subscription). */
const hooksOf = (subscribeData) => {
  if (!subscribeData) return [];
  if (Array.isArray(subscribeData.hooks)) return subscribeData.hooks;
  return subscribeData.id ? [{ id: subscribeData.id, secret: subscribeData.secret || null }] : [];
};

/** Delete every hook of the subscription; one gone already (404) is fine. */
const unsubscribe = async (z, bundle) => {
  for (const hook of hooksOf(bundle.subscribeData)) {
    const response = await z.request({
      url: api(bundle, `/hooks/${encodeURIComponent(hook.id)}`),
      method: 'DELETE',
      skipThrowForStatus: true,
    });
    if (response.status >= 400 && response.status !== 404) {
      throw new z.errors.Error(describeError(response).text, 'UnsubscribeFailed', response.status);
    }
  }
  return {};
};

/**
 * The delivery Zapier caught, verified and flattened. With the raw request (Zapier hands
 * it to hook triggers) and a stored secret, a delivery whose signature does not match is
 * refused with an error in the Zap's history; without either there is nothing to verify
 * against, and the payload is taken as it is.
 */
const receive = (z, bundle, allowedEvents) => {
  const raw = bundle.rawRequest;
  const secrets = hooksOf(bundle.subscribeData)
    .map((hook) => hook.secret)
    .filter(Boolean);
  let body = bundle.cleanedRequest;
  if (raw && typeof raw.content === 'string' && raw.content) {
    if (secrets.length) {
      try {
        verify(secrets, raw.headers, raw.content);
      } catch (err) {
        if (err instanceof SignatureError) {
          throw new z.errors.Error(`Refused a delivery: ${err.message}`, 'InvalidSignature', 401);
        }
        throw err;
      }
    }
    try {
      body = JSON.parse(raw.content);
    } catch (err) {
      throw new z.errors.Error(`Refused a delivery: the body is not JSON (${err.message})`, 'InvalidBody', 400);
    }
  }
  const event = eventForZapier(body);
  if (allowedEvents && event.event_type && !allowedEvents.includes(event.event_type)) return [];
  return [event];
};

/** Real recent payloads of the events (a realistic made-up one when there is none yet). */
const samples = async (z, bundle, events) => {
  const found = [];
  for (const event of events) {
    const response = await z.request({
      url: api(bundle, `/hooks/sample/${encodeURIComponent(event)}`),
      params: { preset: 'zapier' },
    });
    found.push(...response.data.map(eventForZapier));
  }
  return found.sort((a, b) => String(b.timestamp).localeCompare(String(a.timestamp)));
};

/**
 * A REST-hook trigger definition. `eventsOf(bundle)` says which smshub event types the
 * Zap wants (from its input fields, or fixed).
 */
const hookTrigger = ({ key, noun, label, description, inputFields = [], eventsOf, sample, outputFields }) => ({
  key,
  noun,
  display: { label, description },
  operation: {
    type: 'hook',
    inputFields,
    performSubscribe: (z, bundle) => subscribe(z, bundle, eventsOf(bundle)),
    performUnsubscribe: unsubscribe,
    perform: (z, bundle) => receive(z, bundle, eventsOf(bundle)),
    performList: (z, bundle) => samples(z, bundle, eventsOf(bundle)),
    sample,
    outputFields,
  },
});

module.exports = { hookTrigger, subscribe, unsubscribe, receive, samples, hooksOf };
