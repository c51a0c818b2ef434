'use strict';

const { api } = require('./lib/api');

// An smshub API key (`smshub apikey create --name zapier`, or the API keys page) and the
// hub's address. The test lists the channels: a cheap authenticated read.
module.exports = {
  type: 'custom',
  fields: [
    {
      key: 'base_url',
      label: 'smshub URL',
      required: true,
      type: 'string',
      helpText: 'Where your hub answers, e.g. `https://sms.example.com` (its SMSHUB_PUBLIC_URL).',
    },
    {
      key: 'api_key',
      label: 'API key',
      required: true,
      type: 'password',
      helpText: 'Create one on the **API keys** page or with `smshub apikey create --name zapier`.',
    },
  ],
  test: async (z, bundle) => {
    const response = await z.request({ url: api(bundle, '/channels') });
    return { channels: response.data.length };
  },
  connectionLabel: '{{bundle.authData.base_url}}',
};
