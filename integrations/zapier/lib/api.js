'use strict';

// The smshub HTTP API as this app uses it: the base URL from the connection, the API key
// on every request, and smshub's error body ({"error": {"code", "message", "details"}})
// turned into an error the Zap editor shows in words.

/** The connection's base URL without a trailing slash, e.g. https://sms.example.com. */
const baseUrl = (bundle) => String(bundle.authData.base_url || '').trim().replace(/\/+$/, '');

/** The URL of an API route: api(bundle, '/channels') → https://…/api/v1/channels. */
const api = (bundle, path) => `${baseUrl(bundle)}/api/v1${path}`;

/** beforeRequest middleware: the API key as a Bearer token, JSON both ways. */
const addApiKey = (request, z, bundle) => {
  request.headers = request.headers || {};
  if (bundle.authData && bundle.authData.api_key) {
    request.headers.Authorization = `Bearer ${bundle.authData.api_key}`;
  }
  request.headers.Accept = 'application/json';
  return request;
};

/** What an smshub error answer says, in one line ("409 opted_out: … (field: why)"). */
const describeError = (response) => {
  let error = null;
  try {
    error = JSON.parse(response.content).error;
  } catch (_) {
    // not our JSON (a proxy's HTML page…): the status says enough
  }
  if (!error || typeof error !== 'object') {
    return { code: `http_${response.status}`, text: `smshub answered ${response.status}` };
  }
  const details = Array.isArray(error.details)
    ? error.details
        .filter((d) => d && d.field)
        .map((d) => `${d.field}: ${d.message}`)
        .join('; ')
    : '';
  const text = `${response.status} ${error.code}: ${error.message}${details ? ` (${details})` : ''}`;
  return { code: error.code, text };
};

/** afterResponse middleware: 401 asks for a new connection, other 4xx/5xx say what smshub said. */
const raiseForError = (response, z) => {
  if (response.status < 400 || (response.request && response.request.skipThrowForStatus)) {
    return response;
  }
  const { code, text } = describeError(response);
  if (response.status === 401) {
    throw new z.errors.Error(
      `The API key was refused (${text}). Create a new one with \`smshub apikey create\`.`,
      'AuthenticationError',
      401,
    );
  }
  throw new z.errors.Error(text, code, response.status);
};

module.exports = { api, baseUrl, addApiKey, raiseForError, describeError };
