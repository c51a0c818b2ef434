'use strict';

// The flat object Zapier gets for an event, the same as smshub's "zapier" preset makes
// (hub/delivery/presets.py): the envelope's fields renamed event_id / event_type /
// timestamp, data's fields lifted to the top level (a clashing one keeps a "data__"
// prefix), nested objects joined with "__", lists kept. Deliveries to a hooks.zapier.com
// URL arrive flat already; anything else (a self-hosted test receiver) arrives as the
// standard envelope and is flattened here, so a Zap sees one shape either way.

const SEPARATOR = '__';

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** Nested objects joined into one level with "__" (lists and scalars kept). */
const flatten = (value, prefix = '') => {
  const flat = {};
  for (const [key, item] of Object.entries(value)) {
    const name = prefix ? `${prefix}${SEPARATOR}${key}` : key;
    if (isObject(item) && Object.keys(item).length) Object.assign(flat, flatten(item, name));
    else flat[name] = item;
  }
  return flat;
};

const isEnvelope = (body) =>
  isObject(body) && 'id' in body && 'type' in body && isObject(body.data);

/** One event as Zapier shows it, with `id` (Zapier's dedupe key) = the event id. */
const eventForZapier = (body) => {
  let flat;
  if (isEnvelope(body)) {
    flat = { event_id: body.id, event_type: body.type, timestamp: body.timestamp };
    for (const [key, value] of Object.entries(flatten(body.data))) {
      flat[key in flat ? `data${SEPARATOR}${key}` : key] = value;
    }
  } else {
    flat = isObject(body) ? { ...body } : { body };
  }
  const out = { ...flat };
  if ('id' in out && out.id !== flat.event_id) out[`data${SEPARATOR}id`] = out.id;
  out.id = flat.event_id;
  return out;
};

module.exports = { eventForZapier, flatten };
