// n8n loads the classes named in package.json "n8n"; this re-export is for code and tests.
export { SmsHubApi } from './credentials/SmsHubApi.credentials';
export { SmsHub } from './nodes/SmsHub/SmsHub.node';
export { SmsHubTrigger } from './nodes/SmsHubTrigger/SmsHubTrigger.node';
export { verifySignature } from './nodes/SmsHubTrigger/signature';
