'use strict';

const { hookTrigger } = require('../lib/hooks');
const samples = require('../lib/samples.json');

module.exports = hookTrigger({
  key: 'flow_run_failed',
  noun: 'Flow Run',
  label: 'Flow Run Failed',
  description: 'Triggers instantly when a run of one of your flows ends with an error.',
  eventsOf: () => ['flow.run.failed'],
  sample: samples['flow.run.failed'],
  outputFields: [
    { key: 'run_id', label: 'Run ID' },
    { key: 'flow_id', label: 'Flow ID' },
    { key: 'error', label: 'Error' },
  ],
});
