import type { INodeProperties } from 'n8n-workflow';

/** The form of the action node: one resource, then its operations and their fields. */
export const resourceField: INodeProperties = {
	displayName: 'Resource',
	name: 'resource',
	type: 'options',
	noDataExpression: true,
	default: 'message',
	options: [
		{ name: 'Flow', value: 'flow' },
		{ name: 'Group', value: 'group' },
		{ name: 'Message', value: 'message' },
	],
};

const onMessage = { show: { resource: ['message'] } };

export const messageFields: INodeProperties[] = [
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		displayOptions: onMessage,
		default: 'send',
		options: [
			{ name: 'Get', value: 'get', action: 'Get a message', description: 'One message with its status history' },
			{ name: 'Get Many', value: 'getAll', action: 'Get many messages', description: 'Messages, newest first' },
			{ name: 'Send', value: 'send', action: 'Send an SMS', description: 'Queue an SMS through your gateways' },
		],
	},
	{
		displayName: 'To',
		name: 'to',
		type: 'string',
		required: true,
		default: '',
		placeholder: '+15550001234',
		description: 'Recipient, E.164 or national',
		displayOptions: { show: { resource: ['message'], operation: ['send'] } },
	},
	{
		displayName: 'Message',
		name: 'message',
		type: 'string',
		required: true,
		default: '',
		typeOptions: { rows: 3 },
		description: 'Text of the SMS (up to 1600 characters)',
		displayOptions: { show: { resource: ['message'], operation: ['send'] } },
	},
	{
		displayName: 'Additional Fields',
		name: 'additionalFields',
		type: 'collection',
		placeholder: 'Add Field',
		default: {},
		displayOptions: { show: { resource: ['message'], operation: ['send'] } },
		options: [
			{ displayName: 'Channel ID', name: 'channel_id', type: 'string', default: '', description: 'Send through this channel (default: the routing policy picks)' },
			{ displayName: 'Device ID', name: 'device_id', type: 'string', default: '', description: 'Send from this gateway phone' },
			{
				displayName: 'Idempotency Key',
				name: 'idempotency_key',
				type: 'string',
				default: '',
				description: 'The same key gives the same message, never a second SMS. Default: this execution, node and item, so a retried execution does not send twice.',
			},
			{ displayName: 'Send At', name: 'send_at', type: 'dateTime', default: '', description: 'Send later (at most 365 days ahead)' },
			{ displayName: 'SIM Slot', name: 'sim_slot', type: 'number', default: 0, typeOptions: { minValue: 0, maxValue: 7 }, description: '0 = SIM1, 1 = SIM2' },
		],
	},
	{
		displayName: 'Message ID',
		name: 'messageId',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'msg_…',
		displayOptions: { show: { resource: ['message'], operation: ['get'] } },
	},
	{
		displayName: 'Return All',
		name: 'returnAll',
		type: 'boolean',
		default: false,
		description: 'Whether to return all results or only up to a given limit',
		displayOptions: { show: { resource: ['message'], operation: ['getAll'] } },
	},
	{
		displayName: 'Limit',
		name: 'limit',
		type: 'number',
		default: 50,
		typeOptions: { minValue: 1 },
		description: 'Max number of results to return',
		displayOptions: { show: { resource: ['message'], operation: ['getAll'], returnAll: [false] } },
	},
	{
		displayName: 'Filters',
		name: 'filters',
		type: 'collection',
		placeholder: 'Add Filter',
		default: {},
		displayOptions: { show: { resource: ['message'], operation: ['getAll'] } },
		options: [
			{ displayName: 'Channel ID', name: 'channel_id', type: 'string', default: '' },
			{ displayName: 'Contact', name: 'contact', type: 'string', default: '', description: 'Contact ID or phone number' },
			{
				displayName: 'Direction',
				name: 'direction',
				type: 'options',
				default: 'inbound',
				options: [
					{ name: 'Inbound', value: 'inbound' },
					{ name: 'Outbound', value: 'outbound' },
				],
			},
			{ displayName: 'Status', name: 'status', type: 'string', default: '', placeholder: 'delivered', description: 'E.g. scheduled, queued, delivered, failed.' },
		],
	},
];

export const groupFields: INodeProperties[] = [
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		displayOptions: { show: { resource: ['group'] } },
		default: 'addContact',
		options: [
			{ name: 'Add Contact', value: 'addContact', action: 'Add a contact to a group', description: 'By phone; a new number becomes a contact' },
		],
	},
	{
		displayName: 'Group ID',
		name: 'groupId',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'grp_…',
		displayOptions: { show: { resource: ['group'], operation: ['addContact'] } },
	},
	{
		displayName: 'Phone',
		name: 'phone',
		type: 'string',
		required: true,
		default: '',
		placeholder: '+15550001234',
		description: 'The contact’s number; several separated by commas',
		displayOptions: { show: { resource: ['group'], operation: ['addContact'] } },
	},
];

export const flowFields: INodeProperties[] = [
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		displayOptions: { show: { resource: ['flow'] } },
		default: 'start',
		options: [
			{ name: 'Start', value: 'start', action: 'Start a flow for a contact', description: 'Run the published flow (its flow.started trigger) for one phone number' },
		],
	},
	{
		displayName: 'Flow ID',
		name: 'flowId',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'flw_…',
		displayOptions: { show: { resource: ['flow'], operation: ['start'] } },
	},
	{
		displayName: 'Phone',
		name: 'phone',
		type: 'string',
		required: true,
		default: '',
		placeholder: '+15550001234',
		description: 'The contact the run is for (created if new)',
		displayOptions: { show: { resource: ['flow'], operation: ['start'] } },
	},
	{
		displayName: 'Parameters (JSON)',
		name: 'params',
		type: 'json',
		default: '{}',
		description: 'Handed to the run as trigger.data.params',
		displayOptions: { show: { resource: ['flow'], operation: ['start'] } },
	},
];
