'use strict';

const { api } = require('../lib/api');

const perform = async (z, bundle) => {
  const { flow_id: flowId, phone, params, idempotency_key: key } = bundle.inputData;
  const body = { phone, params: params || {} };
  if (key) body.idempotency_key = key;
  const response = await z.request({
    url: api(bundle, `/flows/${encodeURIComponent(flowId)}/start`),
    method: 'POST',
    body,
  });
  return { id: response.data.run_id, ...response.data, flow_id: flowId, phone };
};

module.exports = {
  key: 'start_flow',
  noun: 'Flow Run',
  display: {
    label: 'Start a Flow for a Contact',
    description: 'Starts the published version of a flow for one phone number.',
  },
  operation: {
    inputFields: [
      { key: 'flow_id', label: 'Flow', required: true, dynamic: 'flow_list.id.name' },
      { key: 'phone', label: 'Phone', required: true, helpText: 'The contact is created when new.' },
      {
        key: 'params',
        label: 'Parameters',
        required: false,
        dict: true,
        helpText: 'Handed to the flow as {{ trigger.data.params.NAME }}.',
      },
      {
        key: 'idempotency_key',
        label: 'Idempotency key',
        required: false,
        helpText: 'The same key starts the flow only once.',
      },
    ],
    perform,
    sample: {
      id: 'run_01JB3Q4W9Y0Z1A2B3C4D5E6F7G',
      run_id: 'run_01JB3Q4W9Y0Z1A2B3C4D5E6F7G',
      status: 'waiting',
      flow_id: 'flw_01JB3Q4W9Y0Z1A2B3C4D5E6F7G',
      phone: '+15550001234',
    },
  },
};
