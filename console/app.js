// qianmian operator console (browser side). Plain JavaScript, no build step, no network but the
// console's own API (served under /console/, so every URL here is relative). The server's
// Content-Security-Policy forbids inline scripts, inline styles and eval: all behaviour is wired
// with addEventListener and all styling is by class. Data never goes through innerHTML: every
// value from the server is put in the DOM with textContent (customer ids, campaign names and
// reasons can hold anything).
(function () {
  'use strict';

  // ---------------------------------------------------------------- state

  const S = {
    me: null,            // the login / me reply: {name, role, csrf, expires_ms, ops, transitions}
    csrf: '',
    lang: 'en',
    page: '',
    statsTimer: 0,
    statsBusy: false,
    lastStats: null,
    campaigns: [],
    detail: null,        // the campaign shown in the detail panel
    detailSeq: 0,        // ignores stale detail replies
    editing: null,       // the campaign being edited (null: creating)
    lastLookup: null,    // {customer, history, portrait}
    lastReport: null,
    users: [],
    auditName: '',
    auditEntries: null,
    expiryTimer: 0,
  };

  const STATES = ['draft', 'submitted', 'approved', 'scheduled', 'running', 'completed', 'paused', 'rejected', 'cancelled'];
  // The campaign state machine (campaign/src/campaign.cc AllowedTransitions): only offer moves
  // the server would take; the server still decides.
  const MACHINE = {
    draft: ['submitted', 'cancelled'],
    submitted: ['approved', 'rejected', 'draft', 'cancelled'],
    approved: ['scheduled', 'draft', 'cancelled'],
    scheduled: ['running', 'paused', 'cancelled'],
    running: ['completed', 'paused', 'cancelled'],
    paused: ['scheduled', 'running', 'cancelled'],
    rejected: ['draft', 'cancelled'],
    completed: [],
    cancelled: [],
  };
  const ROLES = ['viewer', 'marketer', 'approver', 'service_agent', 'admin'];
  const PAGES = [
    { page: 'overview', op: 'stats' },
    { page: 'campaigns', op: 'campaigns.list' },
    { page: 'experiments', op: 'report' },
    { page: 'lookup', op: 'history' },
    { page: 'pressure', op: 'pressure' },
    { page: 'users', op: 'users.list' },
  ];

  // ---------------------------------------------------------------- helpers

  function $(id) { return document.getElementById(id); }

  function t(key, vars) {
    const dict = window.QM_I18N || {};
    let s = (dict[S.lang] && dict[S.lang][key]) || (dict.en && dict.en[key]);
    if (s === undefined) s = key;
    if (vars) {
      s = s.replace(/\{(\w+)\}/g, function (m, k) { return vars[k] === undefined ? m : String(vars[k]); });
    }
    return s;
  }

  // el('td', {className: 'x', text: 'y', dataset: {test: 'z'}, title: 't'}, [children])
  function el(tag, props, children) {
    const e = document.createElement(tag);
    if (props) {
      for (const k of Object.keys(props)) {
        const v = props[k];
        if (v === undefined || v === null) continue;
        if (k === 'text') e.textContent = String(v);
        else if (k === 'className') e.className = v;
        else if (k === 'dataset') { for (const d of Object.keys(v)) e.dataset[d] = String(v[d]); }
        else if (k === 'attrs') { for (const a of Object.keys(v)) e.setAttribute(a, String(v[a])); }
        else e[k] = v;
      }
    }
    if (children) {
      for (const c of children) {
        if (c === null || c === undefined || c === false) continue;
        e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
      }
    }
    return e;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function show(node, on) { node.classList.toggle('hidden', !on); }
  function has(op) { return !!(S.me && Array.isArray(S.me.ops) && S.me.ops.indexOf(op) >= 0); }
  function canMoveTo(state) { return !!(S.me && Array.isArray(S.me.transitions) && S.me.transitions.indexOf(state) >= 0); }

  function pad(n) { return n < 10 ? '0' + n : String(n); }
  // Epoch ms as local YYYY-MM-DD HH:MM.
  function fmtTime(ms) {
    if (typeof ms !== 'number' || !isFinite(ms) || ms <= 0) return '—';
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes());
  }
  function fmtNum(v, digits) {
    if (v === null || v === undefined || v === '') return '—';
    if (typeof v !== 'number') return String(v);
    if (!isFinite(v)) return String(v);
    if (Number.isInteger(v) && digits === undefined) return v.toLocaleString('en-US');
    const dg = digits === undefined ? 4 : digits;
    if (v !== 0 && Math.abs(v) < Math.pow(10, -dg)) return v.toExponential(2);
    return v.toFixed(dg);
  }
  function fmtDuration(ms) {
    if (typeof ms !== 'number' || !isFinite(ms) || ms < 0) return '—';
    let s = Math.round(ms / 1000);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    const parts = [];
    if (d) parts.push(d + t('unit.d'));
    if (h) parts.push(h + t('unit.h'));
    if (m) parts.push(m + t('unit.m'));
    if (s && !d) parts.push(s + t('unit.s'));
    return parts.length ? parts.join(' ') : '0' + t('unit.s');
  }
  function stateBadge(state) {
    return el('span', { className: 'state state-' + String(state || '').replace(/[^a-z_]/g, ''), text: t('state.' + state), dataset: { state: state || '' } });
  }
  function roleName(role) { return t('role.' + role); }
  function jsonText(v) { try { return JSON.stringify(v, null, 2); } catch (e) { return String(v); } }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  async function call(method, path, body, withCsrf) {
    const headers = { 'Accept': 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (withCsrf && S.csrf) headers['X-CSRF-Token'] = S.csrf;
    let res;
    try {
      res = await fetch(path, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'network', t('err.network'));
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok || !data || typeof data !== 'object' || data.ok === false) {
      const er = (data && data.error) || {};
      let msg = er.message || t('err.http', { status: res.status });
      throw new ApiError(res.status, er.code || ('http_' + res.status), msg, res.headers.get('Retry-After'));
    }
    return data;
  }

  // One console op. A 401 means the session ended: back to the login form.
  async function op(name, body) {
    try {
      return await call('POST', 'api/op/' + encodeURIComponent(name), body || {}, true);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) sessionEnded(e.message);
      throw e;
    }
  }

  function errorText(e) {
    if (!(e instanceof ApiError)) return String(e && e.message || e);
    let s = e.message;
    if (e.code && e.code !== 'network' && s.indexOf(e.code) < 0) s += ' (' + e.code + ')';
    if (e.status === 429 && e.retryAfter) s += ' — ' + t('err.retry_after', { s: e.retryAfter });
    return s;
  }
  function showError(node, e) {
    if (!e) { node.textContent = ''; show(node, false); return; }
    node.textContent = typeof e === 'string' ? e : errorText(e);
    if (e instanceof ApiError) node.dataset.code = e.code; else delete node.dataset.code;
    show(node, true);
  }
  function showNotice(node, text) {
    node.textContent = text || '';
    show(node, !!text);
  }

  // ---------------------------------------------------------------- language

  function initialLang() {
    let l = null;
    try { l = window.localStorage.getItem('qm.console.lang'); } catch (e) { l = null; }
    if (l === 'zh' || l === 'en') return l;
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
    return /^zh/i.test(nav) ? 'zh' : 'en';
  }

  function setLang(lang) {
    S.lang = lang === 'zh' ? 'zh' : 'en';
    try { window.localStorage.setItem('qm.console.lang', S.lang); } catch (e) { /* private mode */ }
    applyLang();
  }

  function applyLang() {
    document.documentElement.lang = S.lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('app.doc_title');
    document.querySelectorAll('[data-i18n]').forEach(function (n) { n.textContent = t(n.dataset.i18n); });
    document.querySelectorAll('[data-i18n-placeholder]').forEach(function (n) { n.placeholder = t(n.dataset.i18nPlaceholder); });
    document.querySelectorAll('.lang-btn').forEach(function (b) { b.classList.toggle('active', b.dataset.lang === S.lang); });
    fillStaticSelects();
    renderWho();
    // Re-render what is on screen from the data already loaded.
    if (S.me) {
      if (S.lastStats) renderStats(S.lastStats);
      renderCampaignList();
      if (S.detail) renderDetail(S.detail);
      if (S.lastLookup) renderLookup(S.lastLookup);
      if (S.lastReport) renderReport(S.lastReport);
      renderUsers();
      if (S.auditEntries) renderOpAudit();
    }
  }

  function fillStaticSelects() {
    const f = $('campaign-filter');
    const cur = f.value;
    clear(f);
    f.appendChild(el('option', { value: '', text: t('campaigns.filter_all') }));
    for (const s of STATES) f.appendChild(el('option', { value: s, text: t('state.' + s) }));
    f.value = cur;
    for (const id of ['ua-role', 'ur-role']) {
      const r = $(id);
      const rc = r.value || 'viewer';
      clear(r);
      for (const role of ROLES) r.appendChild(el('option', { value: role, text: roleName(role) + ' (' + role + ')' }));
      r.value = rc;
    }
  }

  // ---------------------------------------------------------------- session

  function renderWho() {
    const w = $('whoami');
    clear(w);
    if (!S.me) { delete w.dataset.name; delete w.dataset.role; return; }
    w.dataset.name = S.me.name;
    w.dataset.role = S.me.role;
    w.appendChild(el('span', { className: 'who-name', text: S.me.name }));
    w.appendChild(el('span', { className: 'who-role', text: roleName(S.me.role) }));
  }

  function showLogin(message) {
    stopStats();
    S.me = null;
    S.csrf = '';
    resetData();
    show($('loading'), false);
    show($('app'), false);
    show($('login-view'), true);
    showError($('login-error'), message || null);
    $('login-password').value = '';
    $('login-submit').disabled = false;
    renderWho();
    $('login-name').focus();
  }

  function sessionEnded(message) {
    if (!S.me) return;
    showLogin(t('login.expired') + (message ? ' (' + message + ')' : ''));
  }

  function resetData() {
    S.lastStats = null;
    S.campaigns = [];
    S.detail = null;
    S.detailSeq++;
    S.editing = null;
    S.lastLookup = null;
    S.lastReport = null;
    S.users = [];
    S.auditName = '';
    S.auditEntries = null;
    S.page = '';
    if (S.expiryTimer) { clearTimeout(S.expiryTimer); S.expiryTimer = 0; }
    clear($('overview-body'));
    clear($('campaign-rows'));
    show($('campaign-form'), false);
    show($('campaign-detail'), false);
    clear($('lookup-result'));
    show($('lookup-result'), false);
    $('lookup-id').value = '';
    clear($('report-result'));
    clear($('users-rows'));
    clear($('op-audit-rows'));
    show($('op-audit'), false);
    $('audit-name').value = '';
    document.querySelectorAll('.error, .notice').forEach(function (n) { if (n.id !== 'login-error') showError(n, null); });
  }

  function startSession(me) {
    S.me = me;
    S.csrf = me.csrf || '';
    show($('loading'), false);
    show($('login-view'), false);
    show($('app'), true);
    showError($('login-error'), null);
    renderWho();
    for (const p of PAGES) show($('nav-' + p.page), has(p.op));
    show($('campaign-new'), has('campaigns.create'));
    show($('reload-btn'), has('reload'));
    show($('my-password'), has('password.change'));
    show($('password-change-form'), false);
    if (S.expiryTimer) clearTimeout(S.expiryTimer);
    if (typeof me.expires_ms === 'number') {
      const wait = me.expires_ms - Date.now();
      if (wait > 0 && wait < 0x7fffffff) S.expiryTimer = setTimeout(checkSession, wait + 1000);
    }
    route();
  }

  async function checkSession() {
    try {
      const me = await call('GET', 'api/me');
      S.me = me;
      S.csrf = me.csrf || S.csrf;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) sessionEnded(e.message);
    }
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const name = $('login-name').value.trim();
    const password = $('login-password').value;
    if (!name || !password) { showError($('login-error'), t('login.missing')); return; }
    $('login-submit').disabled = true;
    showError($('login-error'), null);
    try {
      const me = await call('POST', 'api/login', { name: name, password: password });
      $('login-password').value = '';
      startSession(me);
    } catch (e) {
      $('login-password').value = '';
      showError($('login-error'), e);
    } finally {
      $('login-submit').disabled = false;
    }
  }

  async function onLogout() {
    try { await call('POST', 'api/logout', {}, true); } catch (e) { /* the session may be gone already */ }
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    showLogin(null);
  }

  // ---------------------------------------------------------------- routing

  function allowedPages() { return PAGES.filter(function (p) { return has(p.op); }).map(function (p) { return p.page; }); }

  function route() {
    if (!S.me) return;
    const allowed = allowedPages();
    let page = (location.hash || '').replace(/^#/, '');
    if (allowed.indexOf(page) < 0) page = allowed[0] || '';
    const changed = page !== S.page;
    S.page = page;
    for (const p of PAGES) {
      show($('page-' + p.page), p.page === page);
      $('nav-' + p.page).classList.toggle('active', p.page === page);
    }
    if (page !== 'overview') stopStats();
    if (!changed) return;
    if (page === 'overview') startStats();
    else if (page === 'campaigns') loadCampaigns();
    else if (page === 'experiments') loadExperimentNames();
    else if (page === 'lookup') $('lookup-id').focus();
    else if (page === 'pressure') $('pressure-channel').focus();
    else if (page === 'users') loadUsers();
  }

  // ---------------------------------------------------------------- contact pressure

  async function onPressure(ev) {
    ev.preventDefault();
    const btn = $('pressure-go');
    showError($('pressure-error'), null);
    btn.disabled = true;
    try {
      const r = await op('pressure', { channel: $('pressure-channel').value });
      renderPressure(r.pressure || {});
    } catch (e) {
      showError($('pressure-error'), e);
    } finally {
      btn.disabled = false;
    }
  }

  function renderPressure(p) {
    const kv = kvList([
      [t('pressure.channel'), p.channel], [t('pressure.customers'), fmtNum(p.customers)],
      [t('pressure.at'), fmtTime(p.now_ms)], [t('pressure.most'), fmtNum(p.most_30d)],
      [t('dryrun.seconds'), fmtNum(p.seconds, 2)],
    ]);
    const meta = clear($('pressure-meta'));
    while (kv.firstChild) meta.appendChild(kv.firstChild);
    const table = clear($('pressure-table'));
    const n = ((p['7d'] || {}).customers_by_bucket || []).length;
    const head = [el('th', { text: t('dryrun.window') })];
    for (let i = 0; i < n; ++i) head.push(el('th', { text: i === n - 1 ? (n - 1) + '+' : String(i) }));
    head.push(el('th', { text: t('dryrun.mean') }));
    table.appendChild(el('thead', null, [el('tr', null, head)]));
    const body = el('tbody');
    ['7d', '30d'].forEach(function (w) {
      const row = p[w];
      if (!row) return;
      const cells = [el('td', { text: t('pressure.last_' + w) })];
      (row.customers_by_bucket || []).forEach(function (v) { cells.push(el('td', { className: 'num', text: fmtNum(v) })); });
      cells.push(el('td', { className: 'num', text: fmtNum(row.mean, 3) }));
      body.appendChild(el('tr', { dataset: { test: 'pressure-row', window: w } }, cells));
    });
    table.appendChild(body);
    clear($('pressure-chart')).appendChild(pressureChart(((p['30d'] || {}).customers_by_bucket) || []));
    show($('pressure-result'), true);
  }

  // Bars of customers by pushes in 30 days (a square-root scale, so the few heavily contacted
  // customers stay visible beside the many with none).
  function pressureChart(counts) {
    const width = 720, height = 220, left = 60, bottom = 30, top = 16;
    const root = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'chart', role: 'img', 'data-test': 'pressure-chart' });
    root.appendChild(svg('title', {}, t('pressure.chart_title')));
    const most = Math.max(1, Math.max.apply(null, counts.concat([1])));
    const bw = (width - left - 10) / Math.max(1, counts.length);
    counts.forEach(function (v, i) {
      const h = Math.sqrt(v / most) * (height - top - bottom);
      const x = left + i * bw + 4;
      const bar = svg('rect', { x: x, y: height - bottom - h, width: Math.max(1, bw - 8), height: Math.max(0, h), class: 'bar pos' });
      bar.appendChild(svg('title', {}, (i === counts.length - 1 ? (counts.length - 1) + '+' : i) + ': ' + fmtNum(v)));
      root.appendChild(bar);
      root.appendChild(svg('text', { x: x + (bw - 8) / 2, y: height - 10, class: 'tick', 'text-anchor': 'middle' }, i === counts.length - 1 ? (counts.length - 1) + '+' : String(i)));
      root.appendChild(svg('text', { x: x + (bw - 8) / 2, y: height - bottom - h - 4, class: 'tick', 'text-anchor': 'middle' }, fmtNum(v)));
    });
    return root;
  }

  // ---------------------------------------------------------------- overview

  function startStats() {
    stopStats();
    loadStats();
    S.statsTimer = setInterval(function () { if ($('overview-auto').checked) loadStats(); }, 5000);
  }
  function stopStats() { if (S.statsTimer) { clearInterval(S.statsTimer); S.statsTimer = 0; } }

  async function loadStats() {
    if (S.statsBusy || !has('stats')) return;
    S.statsBusy = true;
    try {
      const st = await op('stats', {});
      S.lastStats = st;
      showError($('overview-error'), null);
      if (S.page === 'overview') renderStats(st);
      $('overview-updated').textContent = t('overview.updated', { time: new Date().toLocaleTimeString() });
    } catch (e) {
      showError($('overview-error'), e);
    } finally {
      S.statsBusy = false;
    }
  }

  function card(label, value, extraClass, test) {
    return el('div', { className: 'stat ' + (extraClass || ''), dataset: test ? { test: test } : undefined }, [
      el('div', { className: 'stat-label', text: label }),
      el('div', { className: 'stat-value', text: value }),
    ]);
  }

  function kvList(pairs) {
    const dl = el('dl', { className: 'kv' });
    for (const p of pairs) {
      dl.appendChild(el('dt', { text: p[0] }));
      const dd = el('dd');
      if (p[1] instanceof Node) dd.appendChild(p[1]); else dd.textContent = (p[1] === undefined || p[1] === null || p[1] === '') ? '—' : String(p[1]);
      dl.appendChild(dd);
    }
    return dl;
  }

  function sumValues(obj) {
    let n = 0;
    if (obj && typeof obj === 'object') for (const k of Object.keys(obj)) if (typeof obj[k] === 'number') n += obj[k];
    return n;
  }

  // The last reloads, newest first: when, asked for what, by the op or the CURRENT watch, the result.
  function reloadHistory(recent) {
    if (!Array.isArray(recent) || !recent.length) return el('div', { className: 'muted', text: t('overview.r.none') });
    const tb = el('tbody');
    recent.slice().reverse().forEach(function (r) {
      tb.appendChild(el('tr', { dataset: { test: 'reload-row' } }, [
        el('td', { text: fmtTime(r.ts_ms) }), el('td', { text: r.asked }), el('td', { text: t('overview.r.by_' + r.by) }),
        el('td', { text: r.error ? t('overview.r.refused') + ': ' + r.error : r.served }),
      ]));
    });
    return el('table', { className: 'data', id: 'reload-history' }, [
      el('thead', null, [el('tr', null, [el('th', { text: t('overview.r.when') }), el('th', { text: t('overview.r.asked') }),
        el('th', { text: t('overview.r.by') }), el('th', { text: t('overview.r.result') })])]), tb]);
  }

  function renderStats(st) {
    const body = clear($('overview-body'));
    const totals = st.totals || {};
    const errors = totals.errors || {};
    const queue = st.queue || {};
    const store = st.store || {};
    const versions = st.versions || {};
    const reloads = st.reloads || {};
    const errTotal = sumValues(errors);

    const cards = el('div', { className: 'stat-cards' });
    cards.appendChild(card(t('overview.requests'), fmtNum(totals.requests), '', 'stat-requests'));
    cards.appendChild(card(t('overview.errors'), fmtNum(errTotal), errTotal ? 'warn' : '', 'stat-errors'));
    cards.appendChild(card(t('overview.queue'), fmtNum(queue.depth) + ' / ' + fmtNum(queue.capacity), queue.depth ? 'warn' : '', 'stat-queue'));
    cards.appendChild(card(t('overview.shed'), fmtNum((queue.shed || 0) + (queue.shed_delay || 0)), (queue.shed || queue.shed_delay) ? 'warn' : ''));
    cards.appendChild(card(t('overview.store'), store.status || '—', store.status && store.status !== 'ok' ? 'bad' : 'good', 'stat-store'));
    cards.appendChild(card(t('overview.model'), versions.model || '—', '', 'stat-model'));
    cards.appendChild(card(t('overview.uptime'), fmtDuration((st.uptime_s || 0) * 1000)));
    body.appendChild(cards);

    const grid = el('div', { className: 'cards3' });
    // Errors by code.
    const et = el('table', { className: 'data compact' });
    et.appendChild(el('thead', null, [el('tr', null, [el('th', { text: t('overview.code') }), el('th', { className: 'num', text: t('overview.count') })])]));
    const etb = el('tbody');
    for (const code of Object.keys(errors).sort()) {
      etb.appendChild(el('tr', { className: errors[code] ? 'warn' : 'muted' }, [el('td', { text: code }), el('td', { className: 'num', text: fmtNum(errors[code]) })]));
    }
    et.appendChild(etb);
    grid.appendChild(el('div', { className: 'card' }, [el('h3', { text: t('overview.errors_by_code') }), et]));
    // Queue, store, versions, reloads.
    grid.appendChild(el('div', { className: 'card' }, [
      el('h3', { text: t('overview.queue_title') }),
      kvList([
        [t('overview.q.depth'), fmtNum(queue.depth)], [t('overview.q.capacity'), fmtNum(queue.capacity)],
        [t('overview.q.write_depth'), fmtNum(queue.write_depth)], [t('overview.q.busy'), fmtNum(queue.busy_workers)],
        [t('overview.q.shed'), fmtNum(queue.shed)], [t('overview.q.shed_delay'), fmtNum(queue.shed_delay)],
        [t('overview.q.deadline'), fmtNum(queue.queue_deadline)],
      ]),
      el('h3', { text: t('overview.store_title') }),
      kvList([
        [t('overview.s.backend'), store.backend], [t('overview.s.status'), store.status],
        [t('overview.s.compactions'), fmtNum(store.compactions)], [t('overview.s.compaction_failures'), fmtNum(store.compaction_failures)],
        [t('overview.s.last_error'), store.last_compaction_error],
      ]),
    ]));
    grid.appendChild(el('div', { className: 'card' }, [
      el('h3', { text: t('overview.versions_title') }),
      kvList([[t('overview.v.server'), versions.server], [t('overview.v.model'), versions.model], [t('overview.v.current'), versions.current]]),
      el('h3', { text: t('overview.reloads_title') }),
      kvList([[t('overview.r.ok'), fmtNum(reloads.ok)], [t('overview.r.failed'), fmtNum(reloads.failed)], [t('overview.r.last_error'), reloads.last_error]]),
      reloadHistory(reloads.recent),
      el('h3', { text: t('overview.experiments_title') }),
      el('div', { text: Array.isArray(st.experiments) && st.experiments.length ? st.experiments.join(', ') : t('experiments.none') }),
    ]));
    body.appendChild(grid);

    // Per-op table.
    const ops = st.ops || {};
    const showIdle = $('overview-idle').checked;
    const names = Object.keys(ops).filter(function (n) { return showIdle || (ops[n] && ops[n].count); });
    names.sort(function (a, b) { return ((ops[b] || {}).count || 0) - ((ops[a] || {}).count || 0) || (a < b ? -1 : a > b ? 1 : 0); });
    const ot = el('table', { className: 'data', id: 'ops-table' });
    ot.appendChild(el('thead', null, [el('tr', null, [
      el('th', { text: t('overview.op') }), el('th', { className: 'num', text: t('overview.count') }),
      el('th', { className: 'num', text: t('overview.errors') }), el('th', { text: t('overview.error_codes') }),
      el('th', { className: 'num', text: 'p50 µs' }), el('th', { className: 'num', text: 'p90 µs' }),
      el('th', { className: 'num', text: 'p99 µs' }), el('th', { className: 'num', text: 'p99.9 µs' }),
    ])]));
    const otb = el('tbody');
    for (const n of names) {
      const o = ops[n] || {};
      const errs = o.errors || {};
      const codes = Object.keys(errs).filter(function (c) { return errs[c]; }).map(function (c) { return c + ' ' + errs[c]; }).join(', ');
      otb.appendChild(el('tr', { dataset: { test: 'op-row', op: n } }, [
        el('td', { className: 'mono', text: n }), el('td', { className: 'num', text: fmtNum(o.count) }),
        el('td', { className: 'num' + (sumValues(errs) ? ' warn' : ''), text: fmtNum(sumValues(errs)) }), el('td', { text: codes }),
        el('td', { className: 'num', text: fmtNum(o.p50_us) }), el('td', { className: 'num', text: fmtNum(o.p90_us) }),
        el('td', { className: 'num', text: fmtNum(o.p99_us) }), el('td', { className: 'num', text: fmtNum(o.p999_us) }),
      ]));
    }
    if (!names.length) otb.appendChild(el('tr', null, [el('td', { className: 'muted', colSpan: 8, text: t('overview.no_ops') })]));
    ot.appendChild(otb);
    body.appendChild(el('div', { className: 'card' }, [el('h3', { text: t('overview.ops_title') }), el('div', { className: 'table-wrap' }, [ot])]));
  }

  async function onReload() {
    if (!window.confirm(t('overview.reload_confirm'))) return;
    const btn = $('reload-btn');
    btn.disabled = true;
    showNotice($('overview-notice'), '');
    try {
      const r = await op('reload', {});
      showError($('overview-error'), null);
      showNotice($('overview-notice'), t('overview.reloaded', { version: r.model_version || '' }));
      loadStats();
    } catch (e) {
      showError($('overview-error'), e);
    } finally {
      btn.disabled = false;
    }
  }

  // ---------------------------------------------------------------- campaigns

  async function loadCampaigns() {
    if (!has('campaigns.list')) return;
    const state = $('campaign-filter').value;
    try {
      const r = await op('campaigns.list', state ? { state: state } : {});
      S.campaigns = Array.isArray(r.campaigns) ? r.campaigns : [];
      showError($('campaigns-error'), null);
      renderCampaignList();
    } catch (e) {
      showError($('campaigns-error'), e);
    }
  }

  function campaignName(c) { return (c && c.definition && c.definition.name) || ''; }

  function renderCampaignList() {
    const tb = clear($('campaign-rows'));
    const list = S.campaigns.slice().sort(function (a, b) { return (b.updated_at || 0) - (a.updated_at || 0); });
    for (const c of list) {
      const d = c.definition || {};
      const tr = el('tr', { className: 'clickable' + (S.detail && S.detail.id === c.id ? ' selected' : ''), dataset: { test: 'campaign-row', id: c.id, state: c.state }, tabIndex: 0 }, [
        el('td', { className: 'mono', text: c.id }),
        el('td', { text: d.name || '' }),
        el('td', { text: d.channel || '' }),
        el('td', { dataset: { test: 'campaign-state' } }, [stateBadge(c.state)]),
        el('td', { className: 'num', text: fmtNum(c.revision) }),
        el('td', { text: c.created_by || '' }),
        el('td', { text: c.approved_by || '' }),
        el('td', { text: fmtTime(c.updated_at) }),
      ]);
      tr.addEventListener('click', function () { openCampaign(c.id); });
      tr.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') openCampaign(c.id); });
      tb.appendChild(tr);
    }
    show($('campaign-empty'), list.length === 0);
  }

  async function openCampaign(id) {
    const seq = ++S.detailSeq;
    showError($('detail-error'), null);
    showError($('dryrun-error'), null);
    show($('dryrun-result'), false);
    $('act-reason').value = '';
    try {
      const r = await op('campaigns.get', { campaign_id: id });
      if (seq !== S.detailSeq) return;
      S.detail = r.campaign;
      renderDetail(S.detail);
      renderCampaignList();
      loadAudit(id, seq);
      $('campaign-detail').scrollIntoView({ block: 'nearest' });
    } catch (e) {
      if (seq !== S.detailSeq) return;
      showError($('campaigns-error'), e);
    }
  }

  async function loadAudit(id, seq) {
    const tb = $('audit-rows');
    try {
      const r = await op('campaigns.audit', { campaign_id: id });
      if (seq !== S.detailSeq) return;
      clear(tb);
      const entries = Array.isArray(r.entries) ? r.entries : [];
      for (const e of entries) {
        const changes = e.changes === null || e.changes === undefined ? '' : (typeof e.changes === 'string' ? e.changes : JSON.stringify(e.changes));
        tb.appendChild(el('tr', { dataset: { test: 'audit-row', who: e.who || '', action: e.action || '', to: e.to_state || '', fromState: e.from_state || '', revision: e.revision } }, [
          el('td', { className: 'num', text: fmtNum(e.revision) }),
          el('td', { text: fmtTime(e.ts) }),
          el('td', { dataset: { test: 'audit-who' }, text: e.who || '' }),
          el('td', { className: 'muted', text: e.from || '' }),
          el('td', { text: e.action || '' }),
          el('td', null, [e.from_state ? stateBadge(e.from_state) : null, e.from_state ? ' → ' : null, e.to_state ? stateBadge(e.to_state) : null]),
          el('td', { text: e.reason || '' }),
          el('td', { className: 'mono small changes', text: changes, title: changes }),
        ]));
      }
      $('audit-table').dataset.id = id;
      $('audit-table').dataset.count = String(entries.length);
    } catch (e) {
      if (seq !== S.detailSeq) return;
      showError($('detail-error'), e);
    }
  }

  // The transitions offered on a campaign in `state`: [{to, key}] in button order.
  function offeredActions(c) {
    const state = c.state;
    const next = MACHINE[state] || [];
    const out = [];
    const add = function (to, key, id) { if (next.indexOf(to) >= 0 && canMoveTo(to)) out.push({ to: to, key: key, id: id || to }); };
    add('submitted', 'act.submit');
    add('approved', 'act.approve');
    add('rejected', 'act.reject');
    add('draft', state === 'submitted' ? 'act.withdraw' : 'act.to_draft');
    if (state === 'approved') add('scheduled', 'act.schedule');
    add('paused', 'act.pause');
    if (state === 'paused' && (c.paused_from === 'scheduled' || c.paused_from === 'running')) add(c.paused_from, 'act.resume', 'resume');
    add('cancelled', 'act.cancel');
    return out;
  }

  function renderDetail(c) {
    if (!c) { show($('campaign-detail'), false); return; }
    const d = c.definition || {};
    const panel = $('campaign-detail');
    panel.dataset.id = c.id;
    panel.dataset.state = c.state;
    $('detail-title').textContent = c.id + (d.name ? ' — ' + d.name : '');
    const st = clear($('detail-state'));
    st.dataset.state = c.state;
    st.appendChild(stateBadge(c.state));
    const sched = d.schedule || {};
    let schedText = sched.kind || '—';
    if (sched.kind === 'once') schedText = t('sched.once', { at: sched.at || '' });
    else if (sched.kind === 'daily') schedText = t('sched.daily', { time: sched.time || '', from: sched.from || '', to: sched.to || '' });
    else if (sched.kind === 'none') schedText = t('sched.none');
    const meta = clear($('detail-meta'));
    const pairs = [
      [t('campaigns.col.channel'), d.channel], [t('campaigns.form.audience'), d.audience],
      [t('campaigns.schedule'), schedText], [t('campaigns.form.holdout'), fmtNum(d.holdout, 2)],
      [t('campaigns.form.priority'), fmtNum(d.priority)],
      [t('campaigns.categories'), ((d.content && d.content.categories) || []).join(', ')],
      [t('campaigns.col.revision'), fmtNum(c.revision)],
      [t('campaigns.authors'), (c.authors || []).join(', ')],
      [t('campaigns.col.created_by'), (c.created_by || '') + ' · ' + fmtTime(c.created_at)],
      [t('campaigns.col.approved_by'), c.approved_by ? c.approved_by + ' · ' + fmtTime(c.approved_at) : ''],
      [t('campaigns.col.updated'), fmtTime(c.updated_at)],
    ];
    if (d.trigger) pairs.push([t('campaigns.trigger'), (d.trigger.event || '') + (d.trigger.condition ? ' if ' + d.trigger.condition : '')]);
    if (c.reason) pairs.push([t('campaigns.reason'), c.reason]);
    if (c.state === 'paused') pairs.push([t('campaigns.paused_from'), t('state.' + c.paused_from)]);
    if (Array.isArray(c.missed) && c.missed.length) pairs.push([t('campaigns.missed'), c.missed.join(', ')]);
    const occ = c.occurrences && typeof c.occurrences === 'object' ? Object.keys(c.occurrences) : [];
    if (occ.length) pairs.push([t('campaigns.occurrences'), occ.map(function (k) { return k + ': ' + c.occurrences[k]; }).join(', ')]);
    const kv = kvList(pairs);
    while (kv.firstChild) meta.appendChild(kv.firstChild);
    $('detail-definition').textContent = jsonText(d);

    const acts = clear($('detail-actions'));
    const offered = offeredActions(c);
    for (const a of offered) {
      const b = el('button', {
        type: 'button', id: 'act-' + a.id, text: t(a.key),
        className: a.to === 'approved' ? 'primary' : (a.to === 'rejected' || a.to === 'cancelled' ? 'danger' : ''),
        dataset: { test: 'action', to: a.to },
      });
      b.addEventListener('click', function () { doTransition(c, a.to, b); });
      acts.appendChild(b);
    }
    if (!offered.length) acts.appendChild(el('span', { className: 'muted', text: t('campaigns.no_actions') }));
    show($('act-reason-label'), offered.length > 0);
    show($('campaign-edit'), has('campaigns.update') && ['running', 'completed', 'cancelled'].indexOf(c.state) < 0);
    show($('dryrun-bar'), has('campaigns.dryrun') && ['completed', 'cancelled', 'rejected'].indexOf(c.state) < 0);
    show(panel, true);
  }

  // --- the dry run: what the campaign would send now, before anyone approves it

  async function onDryRun() {
    const c = S.detail;
    if (!c) return;
    const seq = S.detailSeq;
    const btn = $('dryrun-go');
    showError($('dryrun-error'), null);
    btn.disabled = true;
    try {
      const r = await op('campaigns.dryrun', { campaign_id: c.id });
      if (seq !== S.detailSeq) return;
      renderDryRun(r.summary || {});
    } catch (e) {
      if (seq === S.detailSeq) showError($('dryrun-error'), e);
    } finally {
      btn.disabled = false;
    }
  }

  function renderDryRun(s) {
    const skipped = s.skipped_by && typeof s.skipped_by === 'object' ? Object.keys(s.skipped_by) : [];
    const kv = kvList([
      [t('dryrun.audience'), fmtNum(s.audience)],
      [t('dryrun.sent_customers'), fmtNum(s.sent_customers)],
      [t('dryrun.sends'), fmtNum(s.sends)],
      [t('dryrun.skipped'), fmtNum(s.skipped) + (skipped.length ? ' (' + skipped.map(function (k) { return k + ' ' + s.skipped_by[k]; }).join(', ') + ')' : '')],
      [t('dryrun.expected_clicks'), fmtNum(s.expected_clicks, 1)],
      [t('dryrun.expected_conversions'), fmtNum(s.expected_conversions, 2)],
      [t('dryrun.model'), s.model_version],
      [t('dryrun.seconds'), fmtNum(s.seconds, 2)],
    ]);
    const meta = clear($('dryrun-meta'));
    while (kv.firstChild) meta.appendChild(kv.firstChild);
    const table = clear($('dryrun-pressure'));
    const p = s.pressure || {};
    const n = ((p.before || {})['7d'] || {}).customers_by_bucket ? p.before['7d'].customers_by_bucket.length : 0;
    const head = [el('th', { text: t('dryrun.window') })];
    for (let i = 0; i < n; ++i) head.push(el('th', { text: i === n - 1 ? (n - 1) + '+' : String(i) }));
    head.push(el('th', { text: t('dryrun.mean') }));
    table.appendChild(el('thead', null, [el('tr', null, head)]));
    const body = el('tbody');
    [['before', '7d'], ['after', '7d'], ['before', '30d'], ['after', '30d']].forEach(function (w) {
      const row = (p[w[0]] || {})[w[1]];
      if (!row) return;
      const cells = [el('td', { text: t('dryrun.' + w[0]) + ' · ' + w[1] })];
      (row.customers_by_bucket || []).forEach(function (v) { cells.push(el('td', { className: 'num', text: fmtNum(v) })); });
      cells.push(el('td', { className: 'num', text: fmtNum(row.mean, 3) }));
      body.appendChild(el('tr', { dataset: { test: 'pressure-row', when: w[0], window: w[1] } }, cells));
    });
    table.appendChild(body);
    const items = clear($('dryrun-items'));
    items.appendChild(el('thead', null, [el('tr', null, [el('th', { text: t('dryrun.item') }), el('th', { text: t('dryrun.sends') })])]));
    const ib = el('tbody');
    (s.top_items || []).forEach(function (it) {
      ib.appendChild(el('tr', null, [el('td', { text: it.item_id }), el('td', { className: 'num', text: fmtNum(it.sends) })]));
    });
    items.appendChild(ib);
    show($('dryrun-result'), true);
  }

  async function doTransition(c, to, btn) {
    const reason = $('act-reason').value.trim();
    showError($('detail-error'), null);
    if (to === 'rejected' && !reason) {
      showError($('detail-error'), t('campaigns.reason_required'));
      $('act-reason').focus();
      return;
    }
    if (to === 'cancelled' && !window.confirm(t('campaigns.cancel_confirm', { id: c.id }))) return;
    const body = { campaign_id: c.id, to: to };
    if (reason) body.reason = reason;
    if (typeof c.revision === 'number' && c.revision > 0) body.revision = c.revision;
    document.querySelectorAll('#detail-actions button').forEach(function (b) { b.disabled = true; });
    const seq = S.detailSeq;
    try {
      const r = await op('campaigns.transition', body);
      if (seq !== S.detailSeq) return;
      S.detail = r.campaign;
      $('act-reason').value = '';
      renderDetail(S.detail);
      loadAudit(c.id, seq);
      loadCampaigns();
    } catch (e) {
      if (seq !== S.detailSeq) return;
      showError($('detail-error'), e);
      document.querySelectorAll('#detail-actions button').forEach(function (b) { b.disabled = false; });
      // Show what the server holds now (a conflict means someone else moved it).
      try {
        const g = await op('campaigns.get', { campaign_id: c.id });
        if (seq !== S.detailSeq) return;
        S.detail = g.campaign;
        renderDetail(S.detail);
        loadAudit(c.id, seq);
        loadCampaigns();
      } catch (e2) { /* keep the first error on screen */ }
    }
  }

  // --- the create / edit form

  function defaultDefinition() {
    return {
      id: '', name: '', channel: 'wechat_push', audience: '',
      content: { categories: [], items: [], tags: [] },
      schedule: { kind: 'none' }, holdout: 0.2, priority: 0,
      objective: { w_click: 1, w_convert: 0 }, budget: { per_day: 0, total: 0 },
    };
  }

  function openForm(campaign) {
    S.editing = campaign || null;
    const d = campaign ? JSON.parse(JSON.stringify(campaign.definition || {})) : defaultDefinition();
    const title = $('cf-title');
    if (campaign) { delete title.dataset.i18n; title.textContent = t('campaigns.form.edit', { id: campaign.id }); }
    else { title.dataset.i18n = 'campaigns.form.create'; title.textContent = t('campaigns.form.create'); }
    fillForm(d);
    $('cf-id').readOnly = !!campaign;
    $('cf-raw-mode').checked = false;
    show($('cf-raw'), false);
    show($('cf-simple'), true);
    showError($('cf-error'), null);
    show($('campaign-form'), true);
    (campaign ? $('cf-name') : $('cf-id')).focus();
  }

  function fillForm(d) {
    $('cf-id').value = d.id || '';
    $('cf-name').value = d.name || '';
    const ch = $('cf-channel');
    if (d.channel && !Array.from(ch.options).some(function (o) { return o.value === d.channel; })) ch.appendChild(el('option', { value: d.channel, text: d.channel }));
    ch.value = d.channel || 'wechat_push';
    $('cf-audience').value = d.audience || '';
    const s = d.schedule || { kind: 'none' };
    $('cf-at').value = s.kind === 'once' && typeof s.at === 'string' ? s.at.slice(0, 16) : '';
    const note = $('cf-schedule-note');
    if (s.kind && s.kind !== 'once' && s.kind !== 'none') {
      note.textContent = t('campaigns.form.sched_kept', { kind: s.kind });
      show(note, true);
    } else show(note, false);
    $('cf-holdout').value = typeof d.holdout === 'number' ? String(d.holdout) : '0';
    $('cf-priority').value = typeof d.priority === 'number' ? String(d.priority) : '0';
    $('cf-categories').value = ((d.content && d.content.categories) || []).join(', ');
    $('cf-raw').dataset.base = JSON.stringify(d);
  }

  // The definition the simple form describes, over the definition being edited (so fields the
  // form has no input for, such as a trigger or a daily schedule, are kept).
  function formDefinition() {
    let base;
    try { base = JSON.parse($('cf-raw').dataset.base || 'null'); } catch (e) { base = null; }
    const d = base && typeof base === 'object' ? base : defaultDefinition();
    d.id = $('cf-id').value.trim();
    d.name = $('cf-name').value.trim();
    d.channel = $('cf-channel').value;
    d.audience = $('cf-audience').value.trim();
    const at = $('cf-at').value;
    const prev = d.schedule || { kind: 'none' };
    if (at) d.schedule = { kind: 'once', at: at.slice(0, 16) };
    else if (prev.kind && prev.kind !== 'once' && prev.kind !== 'none') d.schedule = prev;
    else d.schedule = { kind: 'none' };
    const h = $('cf-holdout').value.trim();
    d.holdout = h === '' ? 0 : Number(h);
    const p = $('cf-priority').value.trim();
    d.priority = p === '' ? 0 : Number(p);
    if (!d.content || typeof d.content !== 'object') d.content = { categories: [], items: [], tags: [] };
    d.content.categories = $('cf-categories').value.split(/[,，]/).map(function (x) { return x.trim(); }).filter(Boolean);
    if (!Array.isArray(d.content.items)) d.content.items = [];
    if (!Array.isArray(d.content.tags)) d.content.tags = [];
    if (!d.objective) d.objective = { w_click: 1, w_convert: 0 };
    if (!d.budget) d.budget = { per_day: 0, total: 0 };
    return d;
  }

  function onRawToggle() {
    const raw = $('cf-raw-mode').checked;
    showError($('cf-error'), null);
    if (raw) {
      $('cf-raw').value = jsonText(formDefinition());
    } else {
      let d;
      try { d = JSON.parse($('cf-raw').value); } catch (e) {
        showError($('cf-error'), t('campaigns.form.bad_json', { error: e.message }));
        $('cf-raw-mode').checked = true;
        return;
      }
      if (!d || typeof d !== 'object' || Array.isArray(d)) { showError($('cf-error'), t('campaigns.form.not_object')); $('cf-raw-mode').checked = true; return; }
      fillForm(d);
    }
    show($('cf-raw'), raw);
    show($('cf-simple'), !raw);
  }

  async function onSaveCampaign(ev) {
    ev.preventDefault();
    showError($('cf-error'), null);
    let d;
    if ($('cf-raw-mode').checked) {
      try { d = JSON.parse($('cf-raw').value); } catch (e) { showError($('cf-error'), t('campaigns.form.bad_json', { error: e.message })); return; }
      if (!d || typeof d !== 'object' || Array.isArray(d)) { showError($('cf-error'), t('campaigns.form.not_object')); return; }
    } else {
      d = formDefinition();
      if (!d.id) { showError($('cf-error'), t('campaigns.form.id_required')); $('cf-id').focus(); return; }
      if (!isFinite(d.holdout)) { showError($('cf-error'), t('campaigns.form.bad_number', { field: t('campaigns.form.holdout') })); return; }
      if (!isFinite(d.priority)) { showError($('cf-error'), t('campaigns.form.bad_number', { field: t('campaigns.form.priority') })); return; }
    }
    const editing = S.editing;
    const btn = $('cf-save');
    btn.disabled = true;
    try {
      let r;
      if (editing) {
        const body = { definition: d };
        if (typeof editing.revision === 'number' && editing.revision > 0) body.revision = editing.revision;
        r = await op('campaigns.update', body);
      } else {
        r = await op('campaigns.create', { definition: d });
      }
      show($('campaign-form'), false);
      S.editing = null;
      await loadCampaigns();
      const id = (r.campaign && r.campaign.id) || d.id;
      if (id) openCampaign(id);
    } catch (e) {
      showError($('cf-error'), e);
    } finally {
      btn.disabled = false;
    }
  }

  // ---------------------------------------------------------------- experiments

  async function loadExperimentNames() {
    const note = $('experiments-note');
    if (!has('stats')) { note.textContent = ''; return; }
    try {
      const st = await op('stats', {});
      const names = Array.isArray(st.experiments) ? st.experiments : null;
      const dl = clear($('experiment-list'));
      if (names) for (const n of names) dl.appendChild(el('option', { value: n }));
      if (names && names.length && !$('report-experiment').value) $('report-experiment').value = names[0];
      note.textContent = names === null ? '' : (names.length ? t('experiments.configured', { names: names.join(', ') }) : t('experiments.none'));
    } catch (e) {
      note.textContent = '';
    }
  }

  function dateMs(v, endOfDay) {
    if (!v) return null;
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
    if (!m) return null;
    const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + (endOfDay ? 1 : 0), 0, 0, 0, 0);
    return d.getTime();
  }

  async function onReport(ev) {
    ev.preventDefault();
    const name = $('report-experiment').value.trim();
    showError($('report-error'), null);
    if (!name) { showError($('report-error'), t('experiments.name_required')); return; }
    const body = { experiment: name };
    const from = dateMs($('report-from').value, false);
    const to = dateMs($('report-to').value, true);
    if (from !== null) body.from_ms = from;
    if (to !== null) body.to_ms = to;
    $('report-go').disabled = true;
    try {
      const r = await op('report', body);
      S.lastReport = r;
      renderReport(r);
    } catch (e) {
      showError($('report-error'), e);
    } finally {
      $('report-go').disabled = false;
    }
  }

  function metricNames(r) {
    const names = [];
    for (const a of (r.arms || [])) {
      if (a && a.metrics && typeof a.metrics === 'object') for (const m of Object.keys(a.metrics)) if (names.indexOf(m) < 0) names.push(m);
    }
    return names;
  }

  function renderReport(r) {
    const out = clear($('report-result'));
    if (!r) return;
    const arms = Array.isArray(r.arms) ? r.arms : null;
    const metrics = arms ? metricNames(r) : [];
    if (!arms || !metrics.length) {
      out.appendChild(el('div', { className: 'card' }, [renderGeneric(stripOk(r))]));
      return;
    }
    const sel = $('report-metric');
    const cur = sel.value;
    clear(sel);
    for (const m of metrics) sel.appendChild(el('option', { value: m, text: t('metric.' + m) === 'metric.' + m ? m : t('metric.' + m) }));
    sel.value = metrics.indexOf(cur) >= 0 ? cur : (metrics.indexOf('clicks') >= 0 ? 'clicks' : metrics[0]);
    const metric = sel.value;

    const sr = r.sample_ratio || {};
    const head = el('div', { className: 'card' }, [
      el('h3', { text: t('experiments.report_title', { name: r.experiment || '' }) }),
      kvList([
        [t('experiments.window'), (r.from_ms ? fmtTime(r.from_ms) : '…') + ' — ' + (r.to_ms ? fmtTime(r.to_ms) : '…')],
        [t('experiments.cuped'), r.cuped ? t('common.yes') : t('common.no')],
        [t('experiments.holdout_customers'), fmtNum(r.holdout_customers)],
        [t('experiments.srm'), 'χ² ' + fmtNum(sr.chi_square, 3) + ', p ' + fmtNum(sr.p_value, 4) + (sr.mismatch ? ' — ' + t('experiments.srm_mismatch') : '')],
      ]),
    ]);
    if (sr.mismatch) head.classList.add('warn-card');
    out.appendChild(head);

    // Arms table for the chosen metric.
    const tbl = el('table', { className: 'data', id: 'report-table' });
    tbl.appendChild(el('thead', null, [el('tr', null, [
      el('th', { text: t('experiments.arm') }), el('th', { className: 'num', text: t('experiments.share') }),
      el('th', { className: 'num', text: t('experiments.assigned') }), el('th', { className: 'num', text: t('experiments.contacted') }),
      el('th', { className: 'num', text: t('experiments.ghosted') }), el('th', { className: 'num', text: t('experiments.total') }),
      el('th', { className: 'num', text: t('experiments.per_customer') }), el('th', { text: t('experiments.ci') }),
      el('th', { className: 'num', text: t('experiments.lift') }), el('th', { text: t('experiments.ci') }),
      el('th', { className: 'num', text: t('experiments.relative') }), el('th', { className: 'num', text: 'p' }),
    ])]));
    const tb = el('tbody');
    for (const a of arms) {
      const m = (a.metrics || {})[metric] || {};
      const l = m.lift || {};
      const rel = typeof l.relative === 'number' && isFinite(l.relative) ? (l.relative * 100).toFixed(1) + '%' : '—';
      tb.appendChild(el('tr', { className: a.control ? 'control' : '', dataset: { test: 'arm-row', arm: a.arm || '' } }, [
        el('td', { text: (a.arm || '') + (a.control ? ' (' + t('experiments.control') + ')' : '') }),
        el('td', { className: 'num', text: typeof a.share === 'number' ? (a.share * 100).toFixed(1) + '%' : '—' }),
        el('td', { className: 'num', text: fmtNum(a.assigned) }), el('td', { className: 'num', text: fmtNum(a.contacted) }),
        el('td', { className: 'num', text: fmtNum(a.ghosted) }), el('td', { className: 'num', text: fmtNum(m.total, 2) }),
        el('td', { className: 'num', text: fmtNum(m.per_customer, 4) }),
        el('td', { className: 'mono', text: '[' + fmtNum(m.low, 4) + ', ' + fmtNum(m.high, 4) + ']' }),
        el('td', { className: 'num', text: a.control ? '—' : fmtNum(l.difference, 4) }),
        el('td', { className: 'mono', text: a.control ? '—' : '[' + fmtNum(l.low, 4) + ', ' + fmtNum(l.high, 4) + ']' }),
        el('td', { className: 'num', text: a.control ? '—' : rel }),
        el('td', { className: 'num' + (!a.control && typeof l.p_value === 'number' && l.p_value < 0.05 ? ' good' : ''), text: a.control ? '—' : fmtNum(l.p_value, 4) }),
      ]));
    }
    tbl.appendChild(tb);
    out.appendChild(el('div', { className: 'card' }, [
      el('h3', { text: t('experiments.metric_title', { metric: sel.options[sel.selectedIndex] ? sel.options[sel.selectedIndex].textContent : metric }) }),
      el('div', { className: 'table-wrap' }, [tbl]),
    ]));

    // Lift chart: each non-control arm's lift with its 95% interval.
    const points = arms.filter(function (a) { return !a.control; }).map(function (a) {
      const l = (((a.metrics || {})[metric] || {}).lift) || {};
      return { label: a.arm || '', diff: l.difference, low: l.low, high: l.high, p: l.p_value };
    }).filter(function (p) { return typeof p.diff === 'number' && isFinite(p.diff); });
    if (points.length) out.appendChild(el('div', { className: 'card' }, [el('h3', { text: t('experiments.chart_title') }), liftChart(points)]));
  }

  const SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k of Object.keys(attrs || {})) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Horizontal bars from 0 to each arm's lift, a whisker for the 95% interval, a zero line.
  function liftChart(points) {
    const rowH = 34, left = 150, right = 30, top = 24, width = 720;
    const height = top + points.length * rowH + 30;
    let lo = 0, hi = 0;
    for (const p of points) {
      for (const v of [p.diff, p.low, p.high]) if (typeof v === 'number' && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
    if (hi === lo) { hi = lo + 1; }
    const span = hi - lo;
    lo -= span * 0.05; hi += span * 0.05;
    const x = function (v) { return left + (v - lo) / (hi - lo) * (width - left - right); };
    const root = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'chart', role: 'img', 'data-test': 'lift-chart' });
    root.appendChild(svg('title', {}, t('experiments.chart_title')));
    // Axis ticks.
    for (let i = 0; i <= 4; i++) {
      const v = lo + (hi - lo) * i / 4;
      root.appendChild(svg('line', { x1: x(v), x2: x(v), y1: top - 6, y2: height - 24, class: 'grid' }));
      root.appendChild(svg('text', { x: x(v), y: height - 8, class: 'tick', 'text-anchor': 'middle' }, fmtNum(v, 4)));
    }
    root.appendChild(svg('line', { x1: x(0), x2: x(0), y1: top - 10, y2: height - 24, class: 'zero' }));
    points.forEach(function (p, i) {
      const cy = top + i * rowH + rowH / 2;
      root.appendChild(svg('text', { x: left - 8, y: cy + 4, class: 'label', 'text-anchor': 'end' }, p.label));
      const x0 = x(0), x1 = x(p.diff);
      const sig = typeof p.low === 'number' && typeof p.high === 'number' && (p.low > 0 || p.high < 0);
      const bar = svg('rect', { x: Math.min(x0, x1), y: cy - 9, width: Math.max(1, Math.abs(x1 - x0)), height: 18, class: 'bar' + (p.diff >= 0 ? ' pos' : ' neg') + (sig ? ' sig' : '') });
      root.appendChild(bar);
      if (typeof p.low === 'number' && typeof p.high === 'number' && isFinite(p.low) && isFinite(p.high)) {
        root.appendChild(svg('line', { x1: x(p.low), x2: x(p.high), y1: cy, y2: cy, class: 'whisker' }));
        root.appendChild(svg('line', { x1: x(p.low), x2: x(p.low), y1: cy - 6, y2: cy + 6, class: 'whisker' }));
        root.appendChild(svg('line', { x1: x(p.high), x2: x(p.high), y1: cy - 6, y2: cy + 6, class: 'whisker' }));
      }
      const title = svg('title', {}, p.label + ': ' + fmtNum(p.diff, 4) + ' [' + fmtNum(p.low, 4) + ', ' + fmtNum(p.high, 4) + ']' + (typeof p.p === 'number' ? ' p=' + fmtNum(p.p, 4) : ''));
      bar.appendChild(title);
    });
    return root;
  }

  function stripOk(obj) {
    if (!obj || typeof obj !== 'object') return obj;
    const c = {};
    for (const k of Object.keys(obj)) if (k !== 'ok') c[k] = obj[k];
    return c;
  }

  // Any JSON value as nested tables (a list of objects as one table with their keys as columns).
  function renderGeneric(v, depth) {
    depth = depth || 0;
    if (v === null || v === undefined) return el('span', { className: 'muted', text: '—' });
    if (typeof v !== 'object') return el('span', { text: typeof v === 'number' ? fmtNum(v) : String(v) });
    if (depth > 6) return el('span', { className: 'mono', text: JSON.stringify(v) });
    if (Array.isArray(v)) {
      if (!v.length) return el('span', { className: 'muted', text: '[]' });
      if (v.every(function (x) { return x && typeof x === 'object' && !Array.isArray(x); })) {
        const cols = [];
        for (const x of v) for (const k of Object.keys(x)) if (cols.indexOf(k) < 0) cols.push(k);
        const tbl = el('table', { className: 'data compact' });
        tbl.appendChild(el('thead', null, [el('tr', null, cols.map(function (c) { return el('th', { text: c }); }))]));
        const tb = el('tbody');
        for (const x of v) tb.appendChild(el('tr', null, cols.map(function (c) { return el('td', null, [renderGeneric(x[c], depth + 1)]); })));
        tbl.appendChild(tb);
        return tbl;
      }
      if (v.every(function (x) { return x === null || typeof x !== 'object'; })) return el('span', { text: v.map(String).join(', ') });
      return el('div', null, v.map(function (x) { return renderGeneric(x, depth + 1); }));
    }
    const tbl = el('table', { className: 'data kvtable compact' });
    const tb = el('tbody');
    for (const k of Object.keys(v)) tb.appendChild(el('tr', null, [el('th', { text: k }), el('td', null, [renderGeneric(v[k], depth + 1)])]));
    tbl.appendChild(tb);
    return tbl;
  }

  // ---------------------------------------------------------------- customer lookup

  async function onLookup(ev) {
    ev.preventDefault();
    const id = $('lookup-id').value.trim();
    showError($('lookup-error'), null);
    if (!id) { showError($('lookup-error'), t('lookup.id_required')); return; }
    const body = { customer_id: id };
    const lim = parseInt($('lookup-limit').value, 10);
    if (lim > 0) body.limit = lim;
    $('lookup-go').disabled = true;
    try {
      const h = await op('history', body);
      let portrait = h.portrait;
      let portraitVersion = '';
      if (portrait === undefined && has('profile')) {
        try {
          const p = await op('profile', { customer_id: id });
          portrait = p.portrait;
          portraitVersion = p.version || '';
        } catch (e) { portrait = undefined; }
      }
      S.lastLookup = { customer: id, history: h, portrait: portrait, portraitVersion: portraitVersion };
      renderLookup(S.lastLookup);
    } catch (e) {
      showError($('lookup-error'), e);
      show($('lookup-result'), false);
    } finally {
      $('lookup-go').disabled = false;
    }
  }

  // Decisions grouped by request id (a page), newest first; a page's items by position.
  function groupPages(decisions) {
    const groups = new Map();
    decisions.forEach(function (d, i) {
      const key = d.request_id || '';
      let g = groups.get(key);
      if (!g) { g = { request_id: key, ts: 0, first: i, items: [] }; groups.set(key, g); }
      g.items.push(d);
      if (typeof d.ts_ms === 'number' && d.ts_ms > g.ts) g.ts = d.ts_ms;
    });
    const list = Array.from(groups.values());
    list.sort(function (a, b) { return (b.ts - a.ts) || (a.first - b.first); });
    for (const g of list) g.items.sort(function (a, b) { return (a.position || 0) - (b.position || 0); });
    return list;
  }

  function decisionTable(items, test) {
    const tbl = el('table', { className: 'data', dataset: { test: test } });
    tbl.appendChild(el('thead', null, [el('tr', null, [
      el('th', { className: 'num', text: '#' }), el('th', { text: t('lookup.item') }), el('th', { text: t('lookup.kind') }),
      el('th', { text: t('lookup.channel') }),
      el('th', { className: 'num', text: t('lookup.score') }), el('th', { className: 'num', text: 'p_click' }),
      el('th', { className: 'num', text: 'p_convert' }), el('th', { text: t('lookup.reasons') }), el('th', { text: t('lookup.arms') }),
    ])]));
    const tb = el('tbody');
    for (const d of items) {
      const reasons = Array.isArray(d.reasons) ? d.reasons : [];
      const rc = el('td', { className: 'reasons', dataset: { test: 'decision-reasons' } });
      reasons.forEach(function (r, i) {
        rc.appendChild(el('span', { className: 'chip ' + (String(r).indexOf('rank:') === 0 ? 'chip-rank' : String(r).indexOf('recall:') === 0 ? 'chip-recall' : ''), text: String(r) }));
        if (i < reasons.length - 1) rc.appendChild(document.createTextNode(' '));
      });
      const arms = Array.isArray(d.arms) ? d.arms.map(function (a) { return typeof a === 'object' ? JSON.stringify(a) : String(a); }).join(', ') : '';
      tb.appendChild(el('tr', { dataset: { test: 'decision-row', item: d.item_id || '', requestId: d.request_id || '' } }, [
        el('td', { className: 'num', text: fmtNum(d.position) }), el('td', { className: 'mono', text: d.item_id || '' }),
        el('td', { text: d.kind || '' }), el('td', { text: d.channel || '' }),
        el('td', { className: 'num', text: fmtNum(d.score, 4) }), el('td', { className: 'num', text: fmtNum(d.p_click, 4) }),
        el('td', { className: 'num', text: fmtNum(d.p_convert, 4) }), rc, el('td', { className: 'small', text: arms }),
      ]));
    }
    tbl.appendChild(tb);
    return el('div', { className: 'table-wrap' }, [tbl]);
  }

  function renderLookup(L) {
    const out = clear($('lookup-result'));
    const h = L.history || {};
    out.dataset.customer = L.customer;
    out.appendChild(el('h3', { className: 'mono', text: t('lookup.customer_title', { id: L.customer }) }));

    // Caps.
    const caps = Array.isArray(h.caps) ? h.caps : [];
    const ct = el('table', { className: 'data', id: 'caps-table' });
    ct.appendChild(el('thead', null, [el('tr', null, [
      el('th', { text: t('lookup.cap_rule') }), el('th', { text: t('lookup.cap_scope') }),
      el('th', { className: 'num', text: t('lookup.cap_used') }), el('th', { className: 'num', text: t('lookup.cap_limit') }),
      el('th', { className: 'num', text: t('lookup.cap_left') }), el('th', { text: t('lookup.cap_window') }),
    ])]));
    const ctb = el('tbody');
    for (const c of caps) {
      const left = (typeof c.limit === 'number' && typeof c.used === 'number') ? Math.max(0, c.limit - c.used) : null;
      ctb.appendChild(el('tr', { className: left === 0 ? 'warn' : '', dataset: { test: 'cap-row', rule: c.rule || '' } }, [
        el('td', { className: 'mono', text: c.rule || '' }), el('td', { text: c.scope || t('lookup.all_channels') }),
        el('td', { className: 'num', dataset: { test: 'cap-used' }, text: fmtNum(c.used) }),
        el('td', { className: 'num', dataset: { test: 'cap-limit' }, text: fmtNum(c.limit) }),
        el('td', { className: 'num', dataset: { test: 'cap-left' }, text: fmtNum(left) }),
        el('td', { text: fmtDuration(c.window_ms) }),
      ]));
    }
    if (!caps.length) ctb.appendChild(el('tr', null, [el('td', { className: 'muted', colSpan: 6, text: t('lookup.no_caps') })]));
    ct.appendChild(ctb);
    out.appendChild(el('div', { className: 'card' }, [el('h4', { text: t('lookup.caps') }), el('div', { className: 'table-wrap' }, [ct])]));

    // Last page, then earlier pages.
    const pages = groupPages(Array.isArray(h.decisions) ? h.decisions : []);
    const lastCard = el('div', { className: 'card', id: 'last-page' });
    lastCard.appendChild(el('h4', { text: t('lookup.last_page') }));
    if (pages.length) {
      const p = pages[0];
      const versions = [];
      for (const d of p.items) if (d.model_version && versions.indexOf(d.model_version) < 0) versions.push(d.model_version);
      lastCard.dataset.requestId = p.request_id;
      lastCard.appendChild(kvList([
        [t('lookup.request_id'), p.request_id || '—'],
        [t('lookup.time'), fmtTime(p.ts)],
        [t('lookup.channel'), Array.from(new Set(p.items.map(function (d) { return d.channel || ''; }))).join(', ')],
        [t('lookup.model_version'), el('span', { id: 'model-version', className: 'mono', text: versions.join(', ') || '—' })],
      ]));
      lastCard.appendChild(decisionTable(p.items, 'last-page-decisions'));
    } else {
      lastCard.appendChild(el('div', { className: 'muted', id: 'no-decisions', text: t('lookup.no_decisions') }));
    }
    out.appendChild(lastCard);
    if (pages.length > 1) {
      const older = el('div', { className: 'card' }, [el('h4', { text: t('lookup.older_pages', { n: pages.length - 1 }) })]);
      for (const p of pages.slice(1)) {
        const det = el('details', null, [el('summary', { text: fmtTime(p.ts) + ' · ' + (p.request_id || '—') + ' · ' + t('lookup.n_items', { n: p.items.length }) })]);
        det.appendChild(decisionTable(p.items, 'page-decisions'));
        older.appendChild(det);
      }
      out.appendChild(older);
    }

    // Events.
    const events = Array.isArray(h.events) ? h.events : [];
    const evCard = el('div', { className: 'card' }, [el('h4', { text: t('lookup.events', { n: events.length }) })]);
    if (events.length) {
      const et = el('table', { className: 'data compact', id: 'events-table' });
      et.appendChild(el('thead', null, [el('tr', null, [
        el('th', { text: t('lookup.time') }), el('th', { text: t('lookup.event_type') }), el('th', { text: t('lookup.channel') }),
        el('th', { text: t('lookup.item') }), el('th', { text: t('lookup.request_id') }),
      ])]));
      const etb = el('tbody');
      const sorted = events.slice().sort(function (a, b) { return (b.ts_ms || 0) - (a.ts_ms || 0); });
      for (const e of sorted) {
        etb.appendChild(el('tr', { dataset: { test: 'event-row' } }, [
          el('td', { text: fmtTime(e.ts_ms) }), el('td', { text: e.type || '' }), el('td', { text: e.channel || '' }),
          el('td', { className: 'mono', text: e.item_id || '' }), el('td', { className: 'mono small', text: e.request_id || '' }),
        ]));
      }
      et.appendChild(etb);
      evCard.appendChild(el('div', { className: 'table-wrap' }, [et]));
    } else evCard.appendChild(el('div', { className: 'muted', text: t('lookup.no_events') }));
    out.appendChild(evCard);

    // Portrait.
    const pc = el('div', { className: 'card', id: 'portrait' }, [el('h4', { text: t('lookup.portrait') })]);
    if (L.portrait && typeof L.portrait === 'object') pc.appendChild(renderGeneric(L.portrait));
    else pc.appendChild(el('div', { className: 'muted', text: t('lookup.no_portrait') }));
    if (L.portraitVersion) pc.appendChild(el('div', { className: 'muted small', text: t('lookup.portrait_version', { v: L.portraitVersion }) }));
    out.appendChild(pc);
    show(out, true);
  }

  // ---------------------------------------------------------------- users

  async function loadUsers() {
    if (!has('users.list')) return;
    try {
      const r = await op('users.list', {});
      S.users = Array.isArray(r.users) ? r.users : [];
      showError($('users-error'), null);
      renderUsers();
    } catch (e) {
      showError($('users-error'), e);
    }
  }

  function renderUsers() {
    const tb = clear($('users-rows'));
    const users = S.users.slice().sort(function (a, b) { return a.name < b.name ? -1 : a.name > b.name ? 1 : 0; });
    for (const u of users) {
      const actions = el('td', { className: 'row-buttons' });
      const audit = el('button', { type: 'button', text: t('users.audit_btn'), dataset: { test: 'user-audit' } });
      audit.addEventListener('click', function () { $('audit-name').value = u.name; loadOpAudit(u.name); });
      actions.appendChild(audit);
      if (has('users.passwd')) {
        const pw = el('button', { type: 'button', text: t('users.passwd_btn'), dataset: { test: 'user-passwd' } });
        pw.addEventListener('click', function () { $('up-name').value = u.name; $('up-password').focus(); });
        actions.appendChild(pw);
      }
      if (has('users.role')) {
        const rb = el('button', { type: 'button', text: t('users.role_btn'), dataset: { test: 'user-role-btn' } });
        rb.addEventListener('click', function () { $('ur-name').value = u.name; $('ur-role').value = u.role; $('ur-role').focus(); });
        actions.appendChild(rb);
      }
      const toggleOp = u.disabled ? 'users.enable' : 'users.disable';
      if (has(toggleOp) && !(S.me && u.name === S.me.name && !u.disabled)) {
        const b = el('button', { type: 'button', className: u.disabled ? '' : 'danger', text: t(u.disabled ? 'users.enable' : 'users.disable'), dataset: { test: u.disabled ? 'user-enable' : 'user-disable' } });
        b.addEventListener('click', function () { userOp(toggleOp, { name: u.name }, t(u.disabled ? 'users.enabled_ok' : 'users.disabled_ok', { name: u.name }), b); });
        actions.appendChild(b);
      }
      tb.appendChild(el('tr', { className: u.disabled ? 'disabled' : '', dataset: { test: 'user-row', name: u.name, role: u.role, disabled: u.disabled ? 'true' : 'false' } }, [
        el('td', { className: 'mono', dataset: { test: 'user-name' }, text: u.name }),
        el('td', { dataset: { test: 'user-role', role: u.role }, text: roleName(u.role) }),
        el('td', { text: u.disabled ? t('users.disabled') : t('users.active') }),
        el('td', { text: fmtTime(u.created_at) }),
        el('td', { text: u.created_by || '' }),
        el('td', { text: fmtTime(u.password_set_at) }),
        actions,
      ]));
    }
    show($('user-add-form'), has('users.add'));
    show($('user-passwd-form'), has('users.passwd'));
    show($('user-role-form'), has('users.role'));
    show($('op-audit-panel'), has('operators.audit'));
  }

  async function userOp(name, body, okText, btn) {
    showError($('users-error'), null);
    showNotice($('users-notice'), '');
    if (btn) btn.disabled = true;
    try {
      await op(name, body);
      showNotice($('users-notice'), okText);
      await loadUsers();
      return true;
    } catch (e) {
      showError($('users-error'), e);
      return false;
    } finally {
      if (btn) btn.disabled = false;
    }
  }

  async function onAddUser(ev) {
    ev.preventDefault();
    const name = $('ua-name').value.trim();
    const role = $('ua-role').value;
    const password = $('ua-password').value;
    if (!name || !password) { showError($('users-error'), t('users.missing')); return; }
    if (await userOp('users.add', { name: name, role: role, password: password }, t('users.added_ok', { name: name }), $('ua-submit'))) {
      $('ua-name').value = '';
      $('ua-password').value = '';
    }
  }

  async function onPasswd(ev) {
    ev.preventDefault();
    const name = $('up-name').value.trim();
    const password = $('up-password').value;
    if (!name || !password) { showError($('users-error'), t('users.missing')); return; }
    if (await userOp('users.passwd', { name: name, password: password }, t('users.passwd_ok', { name: name }), $('up-submit'))) {
      $('up-password').value = '';
    }
  }

  async function onSetRole(ev) {
    ev.preventDefault();
    const name = $('ur-name').value.trim();
    const role = $('ur-role').value;
    if (!name) { showError($('users-error'), t('users.missing_name')); return; }
    await userOp('users.role', { name: name, role: role }, t('users.role_ok', { name: name, role: roleName(role) }), $('ur-submit'));
  }

  // ---------------------------------------------------------------- one's own password

  function openPasswordChange() {
    const f = $('password-change-form');
    const on = f.classList.contains('hidden');
    ['pc-old', 'pc-new', 'pc-new2'].forEach(function (id) { $(id).value = ''; });
    showError($('pc-error'), null);
    showNotice($('pc-notice'), '');
    show(f, on);
    if (on) $('pc-old').focus();
  }

  async function onPasswordChange(ev) {
    ev.preventDefault();
    showError($('pc-error'), null);
    showNotice($('pc-notice'), '');
    const oldPw = $('pc-old').value, pw = $('pc-new').value;
    if (!oldPw || !pw) { showError($('pc-error'), t('login.missing')); return; }
    if (pw !== $('pc-new2').value) { showError($('pc-error'), t('pc.mismatch')); return; }
    $('pc-submit').disabled = true;
    try {
      await op('password.change', { old_password: oldPw, password: pw });
      ['pc-old', 'pc-new', 'pc-new2'].forEach(function (id) { $(id).value = ''; });
      showNotice($('pc-notice'), t('pc.done'));
    } catch (e) {
      showError($('pc-error'), e);
    } finally {
      $('pc-submit').disabled = false;
    }
  }

  async function loadOpAudit(name) {
    showError($('op-audit-error'), null);
    try {
      const r = await op('operators.audit', { name: name });
      S.auditName = name;
      S.auditEntries = Array.isArray(r.entries) ? r.entries : [];
      renderOpAudit();
    } catch (e) {
      showError($('op-audit-error'), e);
      show($('op-audit'), false);
    }
  }

  function renderOpAudit() {
    const tbl = $('op-audit');
    const tb = clear($('op-audit-rows'));
    tbl.dataset.name = S.auditName;
    const entries = (S.auditEntries || []).slice().sort(function (a, b) { return (b.ts || 0) - (a.ts || 0); });
    for (const e of entries) {
      tb.appendChild(el('tr', { className: e.action === 'login_failed' ? 'warn' : '', dataset: { test: 'op-audit-row', action: e.action || '' } }, [
        el('td', { text: fmtTime(e.ts) }), el('td', { className: 'muted', text: e.from || '' }),
        el('td', { className: 'mono', text: e.action || '' }), el('td', { dataset: { test: 'op-audit-detail' }, text: e.detail || '' }),
      ]));
    }
    if (!entries.length) tb.appendChild(el('tr', null, [el('td', { className: 'muted', colSpan: 4, text: t('users.no_entries') })]));
    tbl.dataset.count = String(entries.length);
    show(tbl, true);
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    $('login-form').addEventListener('submit', onLogin);
    $('logout').addEventListener('click', onLogout);
    document.querySelectorAll('.lang-btn').forEach(function (b) { b.addEventListener('click', function () { setLang(b.dataset.lang); }); });
    window.addEventListener('hashchange', route);

    $('overview-refresh').addEventListener('click', loadStats);
    $('overview-idle').addEventListener('change', function () { if (S.lastStats) renderStats(S.lastStats); });
    $('reload-btn').addEventListener('click', onReload);

    $('campaign-filter').addEventListener('change', loadCampaigns);
    $('campaign-refresh').addEventListener('click', function () {
      loadCampaigns();
      if (S.detail) openCampaign(S.detail.id);
    });
    $('campaign-new').addEventListener('click', function () { openForm(null); });
    $('campaign-edit').addEventListener('click', function () { if (S.detail) openForm(S.detail); });
    $('dryrun-go').addEventListener('click', onDryRun);
    $('cf-cancel').addEventListener('click', function () { show($('campaign-form'), false); S.editing = null; });
    $('cf-raw-mode').addEventListener('change', onRawToggle);
    $('campaign-form').addEventListener('submit', onSaveCampaign);
    $('detail-close').addEventListener('click', function () {
      S.detail = null; S.detailSeq++;
      show($('campaign-detail'), false);
      renderCampaignList();
    });

    $('report-form').addEventListener('submit', onReport);
    $('report-metric').addEventListener('change', function () { if (S.lastReport) renderReport(S.lastReport); });
    $('lookup-form').addEventListener('submit', onLookup);
    $('pressure-form').addEventListener('submit', onPressure);

    $('users-refresh').addEventListener('click', loadUsers);
    $('user-add-form').addEventListener('submit', onAddUser);
    $('user-passwd-form').addEventListener('submit', onPasswd);
    $('user-role-form').addEventListener('submit', onSetRole);
    $('my-password').addEventListener('click', openPasswordChange);
    $('pc-cancel').addEventListener('click', openPasswordChange);
    $('password-change-form').addEventListener('submit', onPasswordChange);
    $('audit-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      const n = $('audit-name').value.trim();
      if (n) loadOpAudit(n);
    });
  }

  async function boot() {
    S.lang = initialLang();
    wire();
    applyLang();
    try {
      const me = await call('GET', 'api/me');
      startSession(me);
    } catch (e) {
      // 401: not logged in. Anything else: say so above the form.
      showLogin(e instanceof ApiError && e.status === 401 ? null : errorText(e));
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
