'use strict';

const { api } = require('../lib/api');

// The number as the hub reads it first (GET /contacts/{phone} normalizes national
// numbers); then contacts whose number or name contains the text (?q=).
const perform = async (z, bundle) => {
  const query = String(bundle.inputData.phone || '').trim();
  const exact = await z.request({
    url: api(bundle, `/contacts/${encodeURIComponent(query)}`),
    skipThrowForStatus: true,
  });
  if (exact.status === 200) return [exact.data];
  if (exact.status !== 404) exact.throwForStatus();
  const found = await z.request({ url: api(bundle, '/contacts'), params: { q: query, limit: 10 } });
  return found.data.items;
};

module.exports = {
  key: 'find_contact',
  noun: 'Contact',
  display: { label: 'Find Contact', description: 'Finds a contact by phone number (or part of a name).' },
  operation: {
    inputFields: [{ key: 'phone', label: 'Phone', required: true, helpText: 'E.164, national, or a name.' }],
    perform,
    sample: {
      id: 'ct_01JB3Q4W9Y0Z1A2B3C4D5E6F7G',
      phone: '+15550001234',
      name: 'Ann',
      opted_out: false,
      blocked: false,
      tags: ['vip'],
      fields: {},
      language: 'en',
      timezone: null,
      created_at: '2026-01-01T10:00:00Z',
      updated_at: '2026-01-01T10:00:00Z',
    },
  },
};
