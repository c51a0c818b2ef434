'use strict';

const { hookTrigger } = require('../lib/hooks');
const samples = require('../lib/samples.json');

// Which smshub events each choice subscribes to ("final": one hook per event type).
const EVENTS = {
  final: ['sms.delivered', 'sms.failed'],
  delivered: ['sms.delivered'],
  failed: ['sms.failed'],
  sent: ['sms.sent'],
};

module.exports = hookTrigger({
  key: 'message_status',
  noun: 'Message Status',
  label: 'Message Status Changed',
  description:
    'Triggers instantly when an SMS you sent is delivered, fails, or is handed to the gateway.',
  inputFields: [
    {
      key: 'status',
      label: 'Status',
      required: true,
      default: 'final',
      choices: {
        final: 'Delivered or failed',
        delivered: 'Delivered',
        failed: 'Failed',
        sent: 'Sent (handed to the gateway)',
      },
      helpText: 'Which status changes start the Zap.',
    },
  ],
  eventsOf: (bundle) => EVENTS[(bundle.inputData && bundle.inputData.status) || 'final'] || EVENTS.final,
  sample: samples['sms.delivered'],
  outputFields: [
    { key: 'event_type', label: 'Event (sms.delivered, sms.failed, sms.sent)' },
    { key: 'status', label: 'Status' },
    { key: 'message_id', label: 'Message ID' },
    { key: 'to', label: 'To' },
    { key: 'error', label: 'Error (failed only)' },
  ],
});
