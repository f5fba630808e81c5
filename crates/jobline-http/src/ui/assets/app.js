// jobline dashboard: a small single-page app over the /v1 API.
//
// No framework and no build step: the binary embeds this file as it is. Views are chosen by
// the URL's hash (#/jobs, #/jobs/{id}, #/queues). Data is rendered with textContent only, never
// innerHTML, so a job's error message or record can never become markup. The page is served
// with `Content-Security-Policy: default-src 'self'`, so nothing here may be inline.
'use strict';

(function () {
  const TOKEN_KEY = 'jobline.token';
  const CLIENT_KEY = 'jobline.client';
  const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
  const PAGE_SIZE = 100;
  const POLL_MS = 5000;

  const $ = (id) => document.getElementById(id);

  // ---- session --------------------------------------------------------------------------

  /** The bearer token of this tab's session (sessionStorage: gone when the tab closes). */
  function token() {
    const raw = sessionStorage.getItem(TOKEN_KEY);
    if (!raw) return null;
    try {
      const t = JSON.parse(raw);
      return t.expires_at > Date.now() ? t.value : null;
    } catch (_) {
      return null;
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(CLIENT_KEY);
    stopView();
    $('signin-error').textContent = message || '';
    route();
  }

  async function signIn(clientId, secret) {
    const body = new URLSearchParams({
      grant_type: 'client_credentials', client_id: clientId, client_secret: secret,
    });
    const r = await fetch('/oauth/access_token', { method: 'POST', body });
    if (!r.ok) {
      throw new Error(r.status === 401 || r.status === 400 || r.status === 422
        ? 'Those credentials were refused.' : `Sign-in failed (HTTP ${r.status}).`);
    }
    const t = await r.json();
    const expiresAt = Date.now() + (Number(t.expires_in) || 3600) * 1000;
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ value: t.access_token, expires_at: expiresAt }));
    sessionStorage.setItem(CLIENT_KEY, clientId);
  }

  // ---- API ------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || `HTTP ${status}`);
      this.status = status;
      this.code = e.code;
      this.state = e.state;
    }
  }

  /** Calls the /v1 API; a 401 ends the session (the token expired or was revoked). */
  async function api(path, options) {
    const t = token();
    if (!t) {
      signOut('Your session has ended; sign in again.');
      throw new ApiError(401, null);
    }
    const init = Object.assign({ headers: {} }, options);
    init.headers.Authorization = `Bearer ${t}`;
    const r = await fetch(path, init);
    const type = r.headers.get('content-type') || '';
    const body = type.includes('json') ? await r.json().catch(() => null) : null;
    if (r.status === 401) {
      signOut('Your session has ended; sign in again.');
      throw new ApiError(401, body);
    }
    if (!r.ok) throw new ApiError(r.status, body);
    return body;
  }

  /** Opens the live event stream (EventSource cannot send headers: the token goes in the query). */
  function events(params) {
    const q = new URLSearchParams(params);
    q.set('access_token', token() || '');
    return new EventSource(`/v1/events?${q}`);
  }

  // ---- small renderers ------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function stateBadge(state) {
    return el('span', { class: `state state-${state}`, 'data-state': state, text: state.replace('_', ' ') });
  }

  function progressCell(progress, state) {
    const done = progress ? Number(progress.done) || 0 : 0;
    const total = progress && progress.total != null ? Number(progress.total) : null;
    const frag = document.createDocumentFragment();
    if (total && total > 0) {
      const pct = Math.min(100, Math.round((done / total) * 100));
      frag.append(el('progress', { max: String(total), value: String(Math.min(done, total)), 'aria-label': `${pct}% done` }));
      frag.append(el('span', { class: 'progress-text', text: `${done.toLocaleString()} / ${total.toLocaleString()}` }));
    } else if (done > 0) {
      frag.append(el('span', { class: 'progress-text', text: `${done.toLocaleString()} done` }));
    } else if (state === 'succeeded') {
      frag.append(el('progress', { max: '1', value: '1', 'aria-label': '100% done' }));
    } else {
      frag.append(el('span', { class: 'progress-text', text: '–' }));
    }
    return frag;
  }

  function age(iso) {
    const secs = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (secs < 60) return `${Math.floor(secs)}s`;
    if (secs < 3600) return `${Math.floor(secs / 60)}m ${Math.floor(secs % 60)}s`;
    if (secs < 86400) return `${Math.floor(secs / 3600)}h ${Math.floor((secs % 3600) / 60)}m`;
    return `${Math.floor(secs / 86400)}d ${Math.floor((secs % 86400) / 3600)}h`;
  }

  function when(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  function shortId(id) {
    return id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
  }

  /** Says `text` to screen readers (the live region keeps the last few messages). */
  function announce(text) {
    const box = $('announcer');
    box.append(el('p', { text }));
    while (box.childElementCount > 5) box.firstElementChild.remove();
  }

  // ---- views ----------------------------------------------------------------------------

  // What the current view must stop when another replaces it: streams, timers.
  let cleanups = [];
  function onStop(fn) { cleanups.push(fn); }
  function stopView() {
    for (const fn of cleanups) { try { fn(); } catch (_) { /* already closed */ } }
    cleanups = [];
  }

  function show(view) {
    for (const v of ['signin', 'jobs', 'job', 'queues']) $(`view-${v}`).hidden = v !== view;
    const signedIn = view !== 'signin';
    $('nav').hidden = !signedIn;
    $('sign-out').hidden = !signedIn;
    $('who').textContent = signedIn ? `client ${shortId(sessionStorage.getItem(CLIENT_KEY) || '')}` : '';
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === (view === 'job' ? 'jobs' : view)) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  /**
   * Follows the event stream with `params`, calling `onJob(event)` for each job event; while the
   * stream is down, calls `poll()` every few seconds instead, so the view stays current either way.
   */
  function follow(params, onJob, poll, stateEl) {
    let source = null;
    let timer = null;
    const setLive = (cls, text) => {
      if (!stateEl) return;
      stateEl.className = `live-state ${cls}`;
      stateEl.textContent = text;
    };
    const startPolling = () => {
      if (timer) return;
      setLive('down', 'live updates unavailable; refreshing every 5 s');
      timer = setInterval(poll, POLL_MS);
    };
    try {
      source = events(params);
      source.addEventListener('open', () => {
        setLive('live', 'live');
        if (timer) { clearInterval(timer); timer = null; poll(); }
      });
      source.addEventListener('job', (m) => {
        let data;
        try { data = JSON.parse(m.data); } catch (_) { return; }
        onJob(data);
      });
      // EventSource reconnects by itself (sending Last-Event-ID, so nothing is missed) unless
      // the server refused the stream outright; poll meanwhile either way.
      source.addEventListener('error', () => {
        if (source.readyState === EventSource.CLOSED) startPolling();
        else setLive('down', 'reconnecting…');
      });
    } catch (_) {
      startPolling();
    }
    onStop(() => { if (source) source.close(); if (timer) clearInterval(timer); });
  }

  // ---- jobs list ------------------------------------------------------------------------

  function filtersFromHash(query) {
    const q = new URLSearchParams(query);
    const f = {};
    for (const k of ['state', 'dialect', 'tenant', 'kind']) if (q.get(k)) f[k] = q.get(k);
    return f;
  }

  function matches(job, f) {
    if (f.state && !f.state.split(',').includes(job.state)) return false;
    if (f.dialect && job.dialect !== f.dialect) return false;
    if (f.tenant && job.tenant !== f.tenant) return false;
    if (f.kind && job.kind !== f.kind) return false;
    return true;
  }

  function jobRow(job) {
    const link = el('a', { href: `#/jobs/${job.id}`, 'aria-label': `Open job ${job.id}` }, el('code', { text: shortId(job.id) }));
    const tr = el('tr', { 'data-job-id': job.id, 'data-state': job.state },
      el('td', {}, stateBadge(job.state)),
      el('td', {}, el('code', { text: job.kind })),
      el('td', { text: job.tenant }),
      el('td', { class: 'queue', text: job.queue }),
      el('td', {}, progressCell(job.progress, job.state)),
      el('td', { class: 'num age', 'data-created': job.created_at, title: when(job.created_at), text: age(job.created_at) }),
      el('td', { class: 'id' }, link));
    return tr;
  }

  async function showJobs(query) {
    show('jobs');
    const f = filtersFromHash(query);
    const form = $('filters');
    for (const k of ['state', 'dialect', 'tenant', 'kind']) form.elements[k].value = f[k] || '';
    const body = $('jobs-body');
    const rows = new Map();
    let next = null;

    const setCount = () => {
      $('jobs-count').textContent = `${rows.size} shown`;
      $('jobs-empty').hidden = rows.size > 0;
      $('jobs-more').hidden = !next;
    };
    const load = async (cursor) => {
      const q = new URLSearchParams(f);
      q.set('limit', String(PAGE_SIZE));
      if (cursor) q.set('cursor', cursor);
      const page = await api(`/v1/jobs?${q}`);
      next = page.next || null;
      return page.data || [];
    };
    const renderAll = (jobs) => {
      body.replaceChildren();
      rows.clear();
      for (const job of jobs) {
        const tr = jobRow(job);
        rows.set(job.id, tr);
        body.append(tr);
      }
      setCount();
    };
    const upsert = (job) => {
      const old = rows.get(job.id);
      if (!matches(job, f)) {
        if (old) { old.remove(); rows.delete(job.id); setCount(); }
        return;
      }
      const tr = jobRow(job);
      if (old) {
        if (old.dataset.state !== job.state) {
          tr.classList.add('flash');
          announce(`Job ${job.kind} ${shortId(job.id)} is now ${job.state.replace('_', ' ')}`);
        }
        old.replaceWith(tr);
      } else {
        // Newest first: a job created now belongs at the top.
        tr.classList.add('flash');
        body.prepend(tr);
        announce(`New job ${job.kind} ${shortId(job.id)}, ${job.state.replace('_', ' ')}`);
      }
      rows.set(job.id, tr);
      setCount();
    };

    $('jobs-more').onclick = async () => {
      if (!next) return;
      for (const job of await load(next)) {
        if (rows.has(job.id)) continue;
        const tr = jobRow(job);
        rows.set(job.id, tr);
        body.append(tr);
      }
      setCount();
    };

    try {
      renderAll(await load(null));
    } catch (e) {
      if (e.status !== 401) $('live-state').textContent = `cannot list jobs: ${e.message}`;
      return;
    }
    const params = {};
    if (f.tenant) params.tenant = f.tenant;
    follow(params, (ev) => { if (ev.job) upsert(ev.job); },
      async () => { try { renderAll(await load(null)); } catch (_) { /* shown next time */ } },
      $('live-state'));
    const ticker = setInterval(() => {
      for (const td of body.querySelectorAll('td.age')) td.textContent = age(td.dataset.created);
    }, 1000);
    onStop(() => clearInterval(ticker));
  }

  // ---- one job --------------------------------------------------------------------------

  function dlRow(dl, name, value) {
    dl.append(el('dt', { text: name }), el('dd', {}, value));
  }

  async function download(url, name) {
    const t = token();
    const r = await fetch(url, { headers: { Authorization: `Bearer ${t}` } });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const blob = await r.blob();
    const href = URL.createObjectURL(blob);
    const a = el('a', { href, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 10000);
  }

  function renderJob(job) {
    $('job-title').textContent = `Job ${job.kind}`;
    const dl = $('job-summary');
    dl.replaceChildren();
    dlRow(dl, 'State', stateBadge(job.state));
    dlRow(dl, 'Id', el('code', { text: job.id }));
    dlRow(dl, 'Tenant', job.tenant);
    dlRow(dl, 'Queue', job.queue);
    if (job.subject) dlRow(dl, 'Subject', job.subject);
    dlRow(dl, 'Progress', progressCell(job.progress, job.state));
    dlRow(dl, 'Attempt', `${job.attempt} of ${job.max_attempts}`);
    dlRow(dl, 'Created', when(job.created_at));
    dlRow(dl, 'Started', when(job.started_at));
    dlRow(dl, 'Finished', when(job.completed_at));
    if (job.error) dlRow(dl, 'Error', typeof job.error === 'string' ? job.error : JSON.stringify(job.error));
    if (job.result !== undefined && job.result !== null) {
      dlRow(dl, 'Result', el('code', { text: JSON.stringify(job.result) }));
    }
    $('job-cancel').disabled = TERMINAL.has(job.state) || job.state === 'cancelling';
    $('job-summary').dataset.state = job.state;

    if (job.files) {
      const files = $('job-files');
      files.replaceChildren();
      for (const f of job.files) {
        const a = el('a', { href: f.url, 'data-file': f.name, text: f.name });
        a.addEventListener('click', (ev) => {
          ev.preventDefault();
          download(f.url, f.name).catch((e) => { $('job-message').textContent = `Download failed: ${e.message}`; });
        });
        files.append(el('li', {}, a, el('span', { class: 'muted', text: ` (${f.content_type})` })));
      }
      if (job.files.length === 0) files.append(el('li', { class: 'muted', text: 'No files.' }));
    }

    if (job.errors) {
      const tbody = $('job-errors').tBodies[0];
      tbody.replaceChildren();
      for (const e of job.errors.data || []) tbody.append(errorRow(e));
      const shown = (job.errors.data || []).length;
      $('errors-title').textContent = job.errors.total
        ? `Errors (${job.errors.total}${shown < job.errors.total ? `, first ${shown} shown` : ''})`
        : 'Errors (none)';
    }

    if (job.timeline) {
      const tbody = $('job-timeline').tBodies[0];
      tbody.replaceChildren();
      for (const ev of job.timeline) tbody.append(timelineRow(ev));
    }
  }

  function errorRow(e) {
    return el('tr', {},
      el('td', { text: e.row ?? '–' }),
      el('td', { text: e.code ?? '–' }),
      el('td', { text: e.message }),
      el('td', { class: 'record' }, e.record == null ? '–' : el('code', { text: JSON.stringify(e.record) })));
  }

  function timelineRow(ev) {
    return el('tr', {},
      el('td', { title: ev.at, text: when(ev.at) }),
      el('td', {}, ev.from ? stateBadge(ev.from) : '–'),
      el('td', {}, stateBadge(ev.to)),
      el('td', { text: ev.attempt ?? '–' }),
      el('td', {}, ev.node ? el('code', { text: ev.node }) : '–'),
      el('td', { text: ev.cause || '' }));
  }

  async function showJob(id) {
    show('job');
    $('job-message').textContent = '';
    $('job-summary').replaceChildren();
    $('job-files').replaceChildren();
    $('job-errors').tBodies[0].replaceChildren();
    $('job-timeline').tBodies[0].replaceChildren();
    let current = null;
    const refresh = async () => {
      try {
        current = await api(`/v1/jobs/${encodeURIComponent(id)}`);
        renderJob(current);
      } catch (e) {
        if (e.status === 404) {
          $('job-title').textContent = 'Job not found';
          $('job-message').textContent = `No job ${id} that this client may see.`;
          $('job-cancel').disabled = true;
        } else if (e.status !== 401) {
          $('job-message').textContent = `Cannot load the job: ${e.message}`;
        }
      }
    };
    $('job-cancel').onclick = async () => {
      const button = $('job-cancel');
      button.disabled = true;
      $('job-message').textContent = 'Cancelling…';
      try {
        const job = await api(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
        $('job-message').textContent = job.state === 'cancelling'
          ? 'Cancel requested: the job stops at its next checkpoint.'
          : `The job is ${job.state}.`;
        announce(`Job is now ${job.state}`);
        await refresh();
      } catch (e) {
        if (e.status === 409) {
          $('job-message').textContent = `Not cancelled: ${e.message}${e.state ? ` (the job is ${e.state})` : ''}.`;
        } else if (e.status !== 401) {
          $('job-message').textContent = `Cancel failed: ${e.message}`;
        }
        await refresh();
      }
    };
    await refresh();
    if (!current) return;
    follow({ job: id }, (ev) => {
      const before = current && current.state;
      refresh().then(() => {
        if (current && current.state !== before) {
          announce(`Job is now ${current.state.replace('_', ' ')}`);
          if (TERMINAL.has(current.state) && before === 'cancelling') {
            $('job-message').textContent = `The job is ${current.state}.`;
          }
        }
      });
      return ev;
    }, async () => {
      const before = current && current.state;
      if (current && TERMINAL.has(current.state)) return;
      await refresh();
      if (current && before === 'cancelling' && TERMINAL.has(current.state)) {
        $('job-message').textContent = `The job is ${current.state}.`;
      }
    }, null);
  }

  // ---- queues ---------------------------------------------------------------------------

  async function showQueues() {
    show('queues');
    const load = async () => {
      let page;
      try {
        page = await api('/v1/queues');
      } catch (e) {
        if (e.status !== 401) $('queues-updated').textContent = `cannot load queues: ${e.message}`;
        return;
      }
      const tbody = $('queues-table').tBodies[0];
      tbody.replaceChildren();
      for (const q of page.data || []) {
        const c = q.counts || {};
        const num = (v) => el('td', { class: 'num', text: v ?? 0 });
        tbody.append(el('tr', {},
          el('td', {}, el('code', { text: q.queue })),
          el('td', { text: q.tenant }),
          el('td', { class: 'num', text: q.concurrency ?? 'default' }),
          num(q.running), num(c.pending), num(c.awaiting_input),
          el('td', { class: 'num', text: q.oldest_pending_age_secs == null ? '–' : age(new Date(Date.now() - q.oldest_pending_age_secs * 1000).toISOString()) }),
          num(q.finished_last_minute), num(c.succeeded), num(c.failed), num(c.cancelled)));
      }
      $('queues-empty').hidden = (page.data || []).length > 0;
      $('queues-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    };
    $('queues-refresh').onclick = load;
    await load();
    const timer = setInterval(load, POLL_MS);
    onStop(() => clearInterval(timer));
  }

  // ---- routing --------------------------------------------------------------------------

  function route() {
    stopView();
    if (!token()) {
      show('signin');
      $('client-id').focus();
      return;
    }
    const hash = location.hash.replace(/^#/, '') || '/jobs';
    const [path, query] = hash.split('?');
    const job = path.match(/^\/jobs\/([^/]+)$/);
    if (job) showJob(decodeURIComponent(job[1]));
    else if (path === '/queues') showQueues();
    else showJobs(query || '');
  }

  function init() {
    $('signin-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('signin-error').textContent = '';
      try {
        await signIn($('client-id').value.trim(), $('client-secret').value);
        $('client-secret').value = '';
        if (!location.hash || location.hash === '#/') location.hash = '#/jobs';
        else route();
        $('main').focus();
      } catch (e) {
        $('signin-error').textContent = e.message;
      }
    });
    $('sign-out').addEventListener('click', () => signOut(''));
    $('filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const [k, v] of new FormData(ev.target)) if (String(v).trim()) q.set(k, String(v).trim());
      const next = `#/jobs${q.toString() ? `?${q}` : ''}`;
      if (location.hash === next) route(); else location.hash = next;
    });
    $('filters').addEventListener('reset', () => { setTimeout(() => { location.hash = '#/jobs'; }, 0); });
    window.addEventListener('hashchange', route);
    route();
  }

  document.addEventListener('DOMContentLoaded', init);
}());
