'use strict';

// smshub for Zapier: instant triggers on REST hooks, actions and a search on the API.
// What each does and how to install it: docs/integrations.md ("Zapier").

const { version: platformVersion } = require('zapier-platform-core');

const { version } = require('./package.json');
const authentication = require('./authentication');
const { addApiKey, raiseForError } = require('./lib/api');
const smsReceived = require('./triggers/sms_received');
const messageStatus = require('./triggers/message_status');
const flowRunFailed = require('./triggers/flow_run_failed');
const lists = require('./triggers/lists');
const sendSms = require('./creates/send_sms');
const addToGroup = require('./creates/add_to_group');
const startFlow = require('./creates/start_flow');
const findContact = require('./searches/find_contact');

const byKey = (...items) => Object.fromEntries(items.map((item) => [item.key, item]));

module.exports = {
  version,
  platformVersion,
  authentication,
  beforeRequest: [addApiKey],
  afterResponse: [raiseForError],
  triggers: byKey(smsReceived, messageStatus, flowRunFailed, ...Object.values(lists)),
  creates: byKey(sendSms, addToGroup, startFlow),
  searches: byKey(findContact),
  searchOrCreates: {},
};
