'use strict';

const { api } = require('../lib/api');

const perform = async (z, bundle) => {
  const { phone, group_id: groupId, name } = bundle.inputData;
  const response = await z.request({
    url: api(bundle, `/groups/${encodeURIComponent(groupId)}/members`),
    method: 'POST',
    body: { phones: [phone] },
  });
  const { added, already_members: already, refused } = response.data;
  if (refused.length) {
    throw new z.errors.Error(`smshub refused ${phone}: ${refused[0].reason}`, 'ContactRefused', 422);
  }
  // The hub normalizes the number; read the contact back under it.
  let contact = (await z.request({ url: api(bundle, `/contacts/${encodeURIComponent(phone)}`) })).data;
  if (name && !contact.name) {
    contact = (
      await z.request({
        url: api(bundle, `/contacts/${encodeURIComponent(contact.id)}`),
        method: 'PATCH',
        body: { name },
      })
    ).data;
  }
  return { ...contact, group_id: groupId, added: added.length > 0, already_member: already.length > 0 };
};

module.exports = {
  key: 'add_to_group',
  noun: 'Contact',
  display: {
    label: 'Add Contact to Group',
    description: 'Adds a phone number to a group, creating the contact when it is new.',
  },
  operation: {
    inputFields: [
      { key: 'phone', label: 'Phone', required: true, helpText: 'E.164 (+15550001234) or national.' },
      { key: 'group_id', label: 'Group', required: true, dynamic: 'group_list.id.name' },
      { key: 'name', label: 'Name', required: false, helpText: 'Set on a contact that has none yet.' },
    ],
    perform,
    sample: {
      id: 'ct_01JB3Q4W9Y0Z1A2B3C4D5E6F7G',
      phone: '+15550001234',
      name: 'Ann',
      opted_out: false,
      blocked: false,
      tags: [],
      group_id: 'grp_01JB3Q4W9Y0Z1A2B3C4D5E6F7G',
      added: true,
      already_member: false,
    },
  },
};
