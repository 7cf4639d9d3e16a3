// Server-sent events over fetch(): unlike EventSource it can send the bearer token. After a
// dropped connection it reconnects with Last-Event-ID, and it drops any event whose id it
// has already delivered, so no line is lost or repeated.

import { authFetch } from './api.js';

/**
 * Follow `url`. `onEvent({type, id, data})` gets each event once, in order. `isDone()` tells
 * whether a closed stream is the normal end (no reconnect); `isSettled()` whether the source
 * has finished anyway, so a reconnection that brought nothing new is the last one.
 * Returns `{close(), resume()}`.
 */
export function followEvents(url, options) {
  const { onEvent, onStatus = () => {}, isDone = () => false, isSettled = () => false } = options;
  let lastId = options.lastEventId ?? null;
  let delivered = 0; // events delivered by the current connection
  let controller = null;
  let closed = false;
  let running = false;
  let delay = 500;

  async function readOnce() {
    controller = new AbortController();
    delivered = 0;
    const headers = { Accept: 'text/event-stream' };
    if (lastId !== null) headers['Last-Event-ID'] = String(lastId);
    const response = await authFetch(url, { headers, signal: controller.signal, cache: 'no-store' });
    if (!response.ok || !response.body) {
      const err = new Error(`event stream: HTTP ${response.status}`);
      err.status = response.status;
      throw err;
    }
    onStatus('live');
    delay = 500;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let event = { type: 'message', data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === '') {
          if (event.data.length) dispatch(event);
          event = { type: 'message', data: [], id: null };
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          let val = colon === -1 ? '' : line.slice(colon + 1);
          if (val.startsWith(' ')) val = val.slice(1);
          if (field === 'event') event.type = val;
          else if (field === 'data') event.data.push(val);
          else if (field === 'id') event.id = val;
        }
      }
    }
  }

  function dispatch(raw) {
    let data;
    try {
      data = JSON.parse(raw.data.join('\n'));
    } catch {
      return;
    }
    const idText = raw.id ?? data?.id;
    const id = idText === null || idText === undefined || idText === '' ? null : Number(idText);
    if (id !== null && !Number.isNaN(id)) {
      if (lastId !== null && id <= lastId) return; // already delivered before a reconnect
      lastId = id;
    }
    delivered += 1;
    onEvent({ type: raw.type, id, data });
  }

  async function loop() {
    if (running) return;
    running = true;
    while (!closed) {
      try {
        await readOnce();
        if (closed || isDone() || (delivered === 0 && isSettled())) break;
        onStatus('reconnecting');
      } catch (err) {
        if (closed) break;
        if (err.status === 404 || err.status === 403) {
          onStatus('error', err);
          break;
        }
        onStatus('reconnecting');
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 8000);
    }
    running = false;
    if (!closed) onStatus('ended');
  }

  loop();
  return {
    close() {
      closed = true;
      controller?.abort();
    },
    resume() {
      if (!closed) loop();
    },
    get lastId() {
      return lastId;
    },
  };
}
