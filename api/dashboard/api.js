/**
 * Every number on the page comes from the JSON API through these functions. When the server answers 401, the user is
 * asked for the token once (however many requests were refused); it is kept in session storage for this tab and sent
 * as `Authorization: Bearer …` with every request, the event streams included (which is why they are read with
 * `fetch`, not `EventSource`, which cannot send headers).
 */

const TOKEN_KEY = 'selfharness-token';

/** A failed API call: its HTTP status, and the `detail` of the problem document as the message. */
export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.title = title;
  }
}

let tokenPrompt;

/** The token entered in this tab, if any. */
export function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** Drops the token, so the next API call asks for one again (where the server needs one). */
export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById('forget-token').hidden = true;
}

/** Shows the token form and resolves with what the user entered; concurrent callers share one form. */
function askForToken(reason) {
  const dialog = document.getElementById('token-dialog');
  document.getElementById('token-reason').textContent = reason;
  if (tokenPrompt) return tokenPrompt;
  const form = document.getElementById('token-form');
  dialog.hidden = false;
  form.elements.token.value = '';
  form.elements.token.focus();
  tokenPrompt = new Promise((resolve) => {
    form.addEventListener(
      'submit',
      (event) => {
        event.preventDefault();
        const token = form.elements.token.value.trim();
        sessionStorage.setItem(TOKEN_KEY, token);
        document.getElementById('forget-token').hidden = false;
        dialog.hidden = true;
        tokenPrompt = undefined;
        resolve(token);
      },
      { once: true },
    );
  });
  return tokenPrompt;
}

async function problemOf(response, path) {
  let title = response.statusText;
  let detail = `${path} answered HTTP ${response.status}.`;
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('json')) {
    try {
      const body = await response.json();
      if (typeof body?.detail === 'string') detail = body.detail;
      if (typeof body?.title === 'string') title = body.title;
    } catch {
      // The body was not the problem document it claimed to be; the status line says enough.
    }
  } else {
    const text = (await response.text()).trim();
    if (text !== '') detail = text.slice(0, 500);
  }
  return new ApiError(response.status, title, detail);
}

/**
 * Sends a request with the token, asking for one on 401 and trying again with it; any other failure throws an
 * `ApiError` holding the problem's `detail`.
 */
export async function request(path, options = {}) {
  for (;;) {
    const headers = new Headers(options.headers);
    const token = currentToken();
    if (token) headers.set('Authorization', `Bearer ${token}`);
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch (error) {
      if (error?.name === 'AbortError') throw error;
      throw new ApiError(0, 'Network error', `Cannot reach the server for ${path}: ${error.message}. Is it running?`);
    }
    if (response.status === 401) {
      const problem = await problemOf(response, path);
      await askForToken(token ? `The server refused this token: ${problem.message}` : problem.message);
      continue;
    }
    if (!response.ok) throw await problemOf(response, path);
    return response;
  }
}

/** A GET of a JSON route. */
export async function getJson(path, signal) {
  return (await request(path, { signal })).json();
}

/** A POST of a JSON body; answers the status (200, 202, …) and the JSON answer. */
export async function postJson(path, body, signal) {
  const response = await request(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
  return { status: response.status, body: await response.json() };
}

/**
 * A parser of the server-sent events format: feed it text as it arrives (in chunks cut anywhere); it calls `onEvent`
 * with `{ event, data, id }` for each complete event. Comment lines (`:`) are keep-alives and are skipped.
 */
export function createEventStreamParser(onEvent) {
  let buffer = '';
  let event = 'message';
  let data = [];
  let id;
  const line = (text) => {
    if (text === '') {
      if (data.length > 0) onEvent({ event, data: data.join('\n'), id });
      event = 'message';
      data = [];
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  };
  return (chunk) => {
    buffer += chunk;
    // A chunk may end between the \r and \n of one line end: hold the \r back until the next chunk shows which.
    const held = buffer.endsWith('\r') ? '\r' : '';
    const lines = (held ? buffer.slice(0, -1) : buffer).split(/\r\n|\r|\n/);
    buffer = (lines.pop() ?? '') + held;
    for (const text of lines) line(text);
  };
}

/**
 * Reads a server-sent event stream with the token, calling `onEvent` per event until the stream ends or `signal`
 * aborts. Event data that is JSON is parsed.
 */
export async function readEventStream(path, onEvent, signal) {
  const response = await request(path, { headers: { Accept: 'text/event-stream' }, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const push = createEventStreamParser((message) => {
    let data = message.data;
    try {
      data = JSON.parse(message.data);
    } catch {
      // Not JSON: handed on as text.
    }
    onEvent({ ...message, data });
  });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      push(value);
    }
    push('\n\n');
  } finally {
    reader.releaseLock();
  }
}
