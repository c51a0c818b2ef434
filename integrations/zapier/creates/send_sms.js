'use strict';

const { api } = require('../lib/api');

/** The SIM dropdown: the slots of the chosen device (else of every device of the channel). */
const simField = async (z, bundle) => {
  const { channel_id: channelId, device_id: deviceId } = bundle.inputData || {};
  const response = await z.request({
    url: api(bundle, '/devices'),
    params: channelId ? { channel_id: channelId } : {},
  });
  const slots = new Set();
  for (const device of response.data) {
    if (!deviceId || device.id === deviceId) device.sim_slots.forEach((slot) => slots.add(slot));
  }
  if (!slots.size) return [];
  const choices = {};
  for (const slot of [...slots].sort()) choices[String(slot)] = `SIM${slot + 1} (slot ${slot})`;
  return [
    {
      key: 'sim_slot',
      label: 'SIM',
      required: false,
      choices,
      helpText: 'Leave empty to let smshub pick the SIM by its routing and pacing.',
    },
  ];
};

const perform = async (z, bundle) => {
  const input = bundle.inputData;
  const body = { to: input.to, message: input.message };
  if (input.channel_id) body.channel_id = input.channel_id;
  if (input.device_id) body.device_id = input.device_id;
  if (input.sim_slot !== undefined && input.sim_slot !== null && input.sim_slot !== '') {
    body.sim_slot = Number(input.sim_slot);
  }
  if (input.idempotency_key) body.idempotency_key = input.idempotency_key;
  const response = await z.request({ url: api(bundle, '/send'), method: 'POST', body });
  return { ...response.data, to: input.to, message: input.message };
};

module.exports = {
  key: 'send_sms',
  noun: 'SMS',
  display: {
    label: 'Send SMS',
    description: 'Sends an SMS through one of your gateways (opted-out contacts are refused).',
  },
  operation: {
    inputFields: [
      { key: 'to', label: 'To', required: true, helpText: 'E.164 (+15550001234) or a national number.' },
      { key: 'message', label: 'Message', required: true, type: 'text' },
      {
        key: 'channel_id',
        label: 'Channel',
        required: false,
        dynamic: 'channel_list.id.name',
        altersDynamicFields: true,
        helpText: 'Leave empty for the default routing.',
      },
      {
        key: 'device_id',
        label: 'Device (phone)',
        required: false,
        dynamic: 'device_list.id.name',
        altersDynamicFields: true,
      },
      simField,
      {
        key: 'idempotency_key',
        label: 'Idempotency key',
        required: false,
        helpText: 'The same key sends the SMS only once (map an order or record id here).',
      },
    ],
    perform,
    sample: {
      id: 'msg_01JB3Q4W9Y0Z1A2B3C4D5E6F7G',
      sms_id: 'msg_01JB3Q4W9Y0Z1A2B3C4D5E6F7G',
      status: 'queued',
      duplicate: false,
      to: '+15550001234',
      message: 'Your order has shipped.',
    },
    outputFields: [
      { key: 'id', label: 'Message ID' },
      { key: 'status', label: 'Status' },
      { key: 'duplicate', label: 'Duplicate (same idempotency key)', type: 'boolean' },
    ],
  },
};
