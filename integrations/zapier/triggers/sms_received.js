'use strict';

const { hookTrigger } = require('../lib/hooks');
const samples = require('../lib/samples.json');

module.exports = hookTrigger({
  key: 'sms_received',
  noun: 'SMS',
  label: 'New Inbound SMS',
  description: 'Triggers instantly when an SMS arrives on any of your smshub channels.',
  eventsOf: () => ['sms.received'],
  sample: samples['sms.received'],
  outputFields: [
    { key: 'from', label: 'From (E.164)' },
    { key: 'to', label: 'To (your number)' },
    { key: 'body', label: 'Text' },
    { key: 'message_id', label: 'Message ID' },
    { key: 'contact_id', label: 'Contact ID' },
    { key: 'channel_id', label: 'Channel ID' },
    { key: 'received_at', label: 'Received at', type: 'datetime' },
  ],
});
