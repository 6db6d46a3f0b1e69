// asg operator console. No framework, no external resources.
//
// Everything shown comes from the audit log and approvals, which carry
// attacker-influenced text (tool arguments, session ids, reasons). It is
// only ever inserted with textContent / text nodes, never as HTML.
'use strict';

(function () {
  const KEY_STORE = 'asg-operator-key';
  const REFRESH_MS = 2000;
  const AUDIT_ROWS = 200;

  let key = sessionStorage.getItem(KEY_STORE) || '';
  let selectedSession = new URLSearchParams(location.search).get('session_id') || '';
  let lastSeq = null;
  let pendingKey = '';
  let auditRows = [];
  let timer = null;

  const $ = (id) => document.getElementById(id);

  // Build an element; children are nodes or text (always text nodes).
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else if (k === 'title') e.title = String(v);
      else if (k === 'type') e.type = v;
      else if (k === 'onclick') e.addEventListener('click', v);
      else if (k.startsWith('data-')) e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function replaceRows(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  function pill(text, cls) {
    return el('span', { class: 'pill ' + (cls || text) }, text);
  }

  function ago(iso) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return '';
    const s = Math.round((Date.now() - t) / 1000);
    if (s < 0) return 'in ' + human(-s);
    return human(s) + ' ago';
  }

  function until(iso) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return '';
    const s = Math.round((t - Date.now()) / 1000);
    return s <= 0 ? 'expired' : 'in ' + human(s);
  }

  // A timestamp cell: local time, the full UTC time on hover.
  function timeCell(iso) {
    const t = new Date(iso);
    const text = Number.isNaN(t.getTime()) ? String(iso) : t.toLocaleTimeString();
    return el('td', { title: iso }, text);
  }

  function human(s) {
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' d';
  }

  function short(text, n) {
    const s = String(text == null ? '' : text);
    return s.length > n ? s.slice(0, n) + '…' : s;
  }

  class Unauthorized extends Error {}

  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    if (key) opts.headers['authorization'] = 'Bearer ' + key;
    const resp = await fetch(path, opts);
    if (resp.status === 401) throw new Unauthorized('operator key required');
    let body = null;
    try { body = await resp.json(); } catch (_) { /* not JSON */ }
    if (!resp.ok) {
      const msg = body && body.error ? body.error : 'HTTP ' + resp.status;
      throw new Error(msg);
    }
    return body;
  }

  function setConn(ok, text) {
    const c = $('conn');
    c.textContent = text;
    c.className = 'conn ' + (ok ? 'ok' : 'bad');
  }

  function needKey(message) {
    $('auth').hidden = false;
    $('auth-error').textContent = message || '';
    setConn(false, 'key required');
  }

  // ---- overview -------------------------------------------------------

  function renderStats(stats) {
    $('policy-version').textContent = stats.policy_version;
    const minutes = stats.decisions_per_minute || [];
    const last = minutes[minutes.length - 1] || {};
    const total = (m) => (m.allow || 0) + (m.allow_with_redaction || 0) + (m.challenge || 0) +
      (m.require_approval || 0) + (m.block || 0);
    $('stat-rate').textContent = String(total(last));
    $('stat-blocked').textContent = String(last.block || 0);
    $('stat-sessions').textContent = String(stats.active_sessions);
    $('stat-pending').textContent = String(stats.pending_approvals);

    const max = Math.max(1, ...minutes.map(total));
    const bars = minutes.map((m) => {
      const bar = el('div', { class: 'bar', title: new Date(m.minute * 60000).toLocaleTimeString() + ': ' + total(m) });
      for (const [cls, n] of [['allow', m.allow], ['redact', m.allow_with_redaction],
        ['approval', (m.challenge || 0) + (m.require_approval || 0)], ['block', m.block]]) {
        if (!n) continue;
        const seg = el('span', { class: cls });
        seg.style.height = (100 * n / max) + 'px'; // CSSOM, allowed by the CSP
        bar.append(seg);
      }
      return bar;
    });
    $('chart').replaceChildren(...bars);

    replaceRows($('top-findings'), (stats.top_findings || []).map((f) =>
      el('tr', {}, el('td', {}, f.rule), el('td', { class: 'num' }, f.count))));
  }

  // ---- approvals ------------------------------------------------------

  function notice(text) {
    const n = $('notice');
    n.textContent = text;
    n.hidden = !text;
  }

  async function resolve(approval, approve, buttons) {
    buttons.forEach((b) => { b.disabled = true; });
    const resolver = $('resolver').value.trim() || 'operator';
    try {
      const a = await api('/approval/resolve', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          approval_id: approval.approval_id,
          approve: approve,
          resolver: resolver,
          note: $('resolve-note').value,
        }),
      });
      let text = (approve ? 'Approved ' : 'Denied ') + a.action_type + ' (' + a.approval_id + ').';
      // A held call spends its approval at once; otherwise the permit is
      // shown here, once, for the operator to hand over (release = permit).
      if (approve && a.permit_token && !a.hold) {
        text += ' Permit, shown once: ' + a.permit_token;
      }
      notice(text);
      pendingKey = '';
      refresh();
    } catch (e) {
      buttons.forEach((b) => { b.disabled = false; });
      if (e instanceof Unauthorized) needKey();
      else notice('Could not resolve: ' + e.message);
    }
  }

  function renderPending(list) {
    const k = JSON.stringify(list.map((a) => [a.approval_id, a.status]));
    $('pending-empty').hidden = list.length > 0;
    if (k === pendingKey) {
      // Same approvals: only refresh the relative times.
      for (const row of $('pending').children) {
        const a = list.find((x) => x.approval_id === row.getAttribute('data-approval-id'));
        if (a) {
          row.querySelector('.created').textContent = ago(a.created_at);
          row.querySelector('.expires').textContent = until(a.expires_at);
        }
      }
      return;
    }
    pendingKey = k;
    replaceRows($('pending'), list.map((a) => {
      const approveBtn = el('button', { class: 'approve', type: 'button', 'data-action': 'approve' }, 'Approve');
      const denyBtn = el('button', { class: 'deny', type: 'button', 'data-action': 'deny' }, 'Deny');
      const buttons = [approveBtn, denyBtn];
      approveBtn.addEventListener('click', () => resolve(a, true, buttons));
      denyBtn.addEventListener('click', () => resolve(a, false, buttons));
      const why = el('td', {});
      for (const f of (a.findings || []).slice(0, 3)) {
        why.append(el('div', {}, pill(f.severity, f.severity === 'critical' || f.severity === 'high' ? 'block' : 'pending'), ' ', f.message));
      }
      if (!a.findings || a.findings.length === 0) {
        why.append(el('div', {}, short((a.reasons || []).join(' '), 200)));
      }
      return el('tr', { 'data-approval-id': a.approval_id },
        el('td', {}, el('span', { class: 'created' }, ago(a.created_at)),
          el('div', { class: 'small' }, a.origin, a.hold ? ' ' : null, a.hold ? pill('held', 'hold') : null)),
        el('td', {}, el('div', {}, short(a.session_id, 48)), el('div', { class: 'small' }, short(a.agent_id, 48))),
        el('td', { class: 'tool' }, a.action_type),
        el('td', { class: 'target' }, short(a.action_target, 400)),
        why,
        el('td', { class: 'expires' }, until(a.expires_at)),
        el('td', {}, approveBtn, ' ', denyBtn));
    }));
  }

  function renderRecent(list) {
    replaceRows($('recent-approvals'), list.slice(0, 20).map((a) =>
      el('tr', {},
        el('td', {}, ago(a.resolved_at || a.created_at)),
        el('td', {}, pill(a.status)),
        el('td', {}, a.action_type),
        el('td', {}, short(a.session_id, 40)),
        el('td', {}, a.resolver))));
  }

  // ---- sessions and timeline -----------------------------------------

  function renderSessions(list) {
    replaceRows($('session-list'), list.map((s) => {
      const row = el('tr', { class: 'clickable', 'data-session-id': s.session_id },
        el('td', {}, short(s.session_id, 60)),
        el('td', {}, short(s.agent_id, 40)),
        el('td', { class: 'num' }, Number(s.cumulative_risk).toFixed(2)),
        el('td', { class: 'num' }, s.request_count),
        el('td', {}, (s.staged_actions || []).length),
        el('td', {}, ago(s.updated_at)));
      row.addEventListener('click', () => selectSession(s.session_id));
      return row;
    }));
  }

  function selectSession(id) {
    selectedSession = id;
    $('timeline-input').value = id;
    const url = new URL(location.href);
    if (id) url.searchParams.set('session_id', id); else url.searchParams.delete('session_id');
    history.replaceState(null, '', url);
    loadTimeline();
  }

  async function loadTimeline() {
    $('timeline-session').textContent = selectedSession;
    if (!selectedSession) {
      $('timeline-state').textContent = 'Pick a session above or enter its id.';
      replaceRows($('timeline-list'), []);
      return;
    }
    const t = await api('/operator/api/session/' + encodeURIComponent(selectedSession) + '/timeline?limit=200');
    const s = t.session;
    $('timeline-state').textContent = s
      ? 'agent ' + s.agent_id + ' · risk ' + Number(s.cumulative_risk).toFixed(2) + ' · ' +
        s.request_count + ' requests · ' + (s.staged_actions || []).length + ' staged · markers: ' +
        (s.sensitive_markers || []).join(', ')
      : 'No stored state for this session.';
    replaceRows($('timeline-list'), (t.timeline || []).map((e) =>
      el('tr', {},
        timeCell(e.created_at),
        el('td', {}, pill(e.decision)),
        el('td', {}, e.route),
        el('td', { class: 'target' }, short((e.tools || []).join('; '), 200)),
        el('td', {}, short((e.reasons || []).join(' '), 240)))));
  }

  // ---- audit tail ----------------------------------------------------

  function renderAudit() {
    const flaggedOnly = $('audit-flagged').checked;
    const rows = auditRows.filter((e) => !flaggedOnly || e.decision !== 'allow' && e.decision !== 'allow_with_redaction');
    replaceRows($('audit-list'), rows.map((e) => {
      const row = el('tr', {},
        timeCell(e.created_at),
        el('td', {}, pill(e.decision)),
        el('td', {}, el('div', {}, short(e.session_id, 40)), el('div', { class: 'small' }, short(e.agent_id, 40))),
        el('td', {}, e.route, el('div', { class: 'small' }, e.dialect)),
        el('td', { class: 'target' }, short((e.tools || []).join('; '), 200)),
        el('td', {}, short((e.findings || []).map((f) => f.rule_id + (f.evidence ? ' (' + f.evidence + ')' : '')).join(', '), 240)),
        el('td', { class: 'num' }, Number(e.latency_ms).toFixed(1)));
      if (e.session_id) {
        row.className = 'clickable';
        row.addEventListener('click', () => selectSession(e.session_id));
      }
      return row;
    }));
  }

  async function loadAudit() {
    if ($('audit-pause').checked) return;
    if (lastSeq === null) {
      const r = await api('/operator/api/audit?limit=' + AUDIT_ROWS);
      auditRows = r.events; // newest first
      lastSeq = r.last_seq; // stays null while the log is empty
    } else {
      const r = await api('/operator/api/audit?after=' + lastSeq + '&limit=500');
      lastSeq = r.last_seq;
      auditRows = r.events.slice().reverse().concat(auditRows).slice(0, AUDIT_ROWS);
    }
    renderAudit();
  }

  // ---- refresh loop ----------------------------------------------------

  async function refresh() {
    clearTimeout(timer);
    try {
      const o = await api('/operator/api/overview?limit=50');
      $('auth').hidden = true;
      setConn(true, 'live');
      renderStats(o.stats);
      renderPending(o.approvals_pending);
      renderRecent(o.approvals_recent);
      renderSessions(o.sessions);
      await loadAudit();
      await loadTimeline();
    } catch (e) {
      if (e instanceof Unauthorized) {
        needKey(key ? 'That key was not accepted (an operator key is needed).' : '');
        return; // wait for a key
      }
      setConn(false, 'error: ' + e.message);
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  $('auth-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    key = $('auth-key').value.trim();
    sessionStorage.setItem(KEY_STORE, key);
    $('auth-key').value = '';
    refresh();
  });
  $('timeline-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    selectSession($('timeline-input').value.trim());
  });
  $('audit-flagged').addEventListener('change', renderAudit);
  $('timeline-input').value = selectedSession;
  refresh();
})();
