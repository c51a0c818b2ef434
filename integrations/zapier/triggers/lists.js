'use strict';

// Hidden triggers that fill the actions' dropdowns from the API.

const { api } = require('../lib/api');

const list = (key, noun, label, load, sample) => ({
  key,
  noun,
  display: { label, description: `Lists ${noun.toLowerCase()}s for dropdowns.`, hidden: true },
  operation: { perform: load, sample },
});

const channels = async (z, bundle) => {
  const response = await z.request({ url: api(bundle, '/channels') });
  return response.data.map((c) => ({
    id: c.id,
    name: `${c.name}${c.phone_number ? ` (${c.phone_number})` : ''} · ${c.connector}${c.enabled ? '' : ' · disabled'}`,
    connector: c.connector,
    phone_number: c.phone_number,
    enabled: c.enabled,
  }));
};

const devices = async (z, bundle) => {
  const channelId = bundle.inputData && bundle.inputData.channel_id;
  const response = await z.request({
    url: api(bundle, '/devices'),
    params: channelId ? { channel_id: channelId } : {},
  });
  return response.data.map((d) => ({
    id: d.id,
    name: `${d.name || d.external_id}${d.offline_at ? ' · offline' : ''}`,
    channel_id: d.channel_id,
    sim_slots: d.sim_slots,
  }));
};

const groups = async (z, bundle) => {
  const response = await z.request({ url: api(bundle, '/groups') });
  return response.data.map((g) => ({ id: g.id, name: `${g.name} (${g.member_count})` }));
};

const flows = async (z, bundle) => {
  const response = await z.request({ url: api(bundle, '/flows') });
  return response.data
    .filter((f) => f.published_version !== null)
    .map((f) => ({ id: f.id, name: `${f.name}${f.enabled ? '' : ' · paused'}` }));
};

module.exports = {
  channel_list: list('channel_list', 'Channel', 'List Channels', channels, {
    id: 'ch_01', name: 'Shop phone (+15550100000) · smsgate',
  }),
  device_list: list('device_list', 'Device', 'List Devices', devices, {
    id: 'dev_01', name: 'Pixel 7', channel_id: 'ch_01', sim_slots: [0, 1],
  }),
  group_list: list('group_list', 'Group', 'List Groups', groups, { id: 'grp_01', name: 'News (12)' }),
  flow_list: list('flow_list', 'Flow', 'List Published Flows', flows, { id: 'flw_01', name: 'Welcome' }),
};
