// Helios report UI: one file, no framework, no build step.
//
// Event content is untrusted. Everything that comes from the server is put
// on the page with textContent / createTextNode (and setAttribute for SVG
// geometry computed here); nothing here parses markup from a string, and
// the CSP forbids inline script and style anyway (tests/security.rs checks
// both).
'use strict';

(() => {
  /** Relative ranges the picker offers, in ms. */
  const RANGES = { '15m': 15 * 60e3, '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 };
  const DEFAULT_RANGE = '1h';
  /** Rows fetched per page of results. */
  const PAGE_SIZE = 100;
  /** Rows kept in the table while tailing (older ones drop off the bottom). */
  const MAX_TAIL_ROWS = 500;
  /** Bars in the histogram. */
  const HISTOGRAM_BUCKETS = 60;
  /** Values shown in the group-by panel and series in a split histogram. */
  const GROUP_TOP = 10;
  const SPLIT_TOP = 7;
  /** Fields already shown in their own columns (or too noisy for chips). */
  const ENVELOPE = new Set(['_id', 'type', 'ts', 'recv']);
  /** Longest value text shown in a chip before it is cut. */
  const CHIP_MAX_CHARS = 120;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  /** Creates an element with an optional class and text (as text, never markup). */
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  // ---------------------------------------------------------------- state

  /** Everything the page shows is a function of this, and it lives in the URL. */
  let state = defaultState();
  /**
   * The [from, to) window the shown results were queried with, fixed when
   * the query runs: "Load more", the histogram, the panels and the export
   * links reuse it, so a relative range ("1h") does not drift between pages.
   */
  let runWindow = timeWindow(state);
  let cursor = null;
  let tail = null;
  let generation = 0;

  function defaultState() {
    return { range: DEFAULT_RANGE, from: '', to: '', mode: 'text', q: '', group: '', split: '', tail: false, open: '' };
  }

  function stateFromUrl() {
    const p = new URLSearchParams(location.search);
    const s = defaultState();
    if (p.has('from') || p.has('to')) {
      s.range = 'custom';
      s.from = p.get('from') || '';
      s.to = p.get('to') || '';
    } else if (rangeMs(p.get('range'))) {
      s.range = p.get('range');
    }
    s.mode = p.get('mode') === 'mongo' ? 'mongo' : 'text';
    s.q = p.get('q') || '';
    s.group = p.get('group') || '';
    s.split = p.get('split') || '';
    s.tail = p.get('tail') === '1';
    s.open = p.get('open') || '';
    return s;
  }

  function stateToUrl(s) {
    const p = new URLSearchParams();
    if (s.range === 'custom') {
      if (s.from) p.set('from', s.from);
      if (s.to) p.set('to', s.to);
    } else if (s.range !== DEFAULT_RANGE) {
      p.set('range', s.range);
    }
    if (s.mode !== 'text') p.set('mode', s.mode);
    if (s.q) p.set('q', s.q);
    if (s.group) p.set('group', s.group);
    if (s.split) p.set('split', s.split);
    if (s.tail) p.set('tail', '1');
    if (s.open) p.set('open', s.open);
    const qs = p.toString();
    return location.pathname + (qs ? '?' + qs : '');
  }

  function writeForm(s) {
    $('range').value = s.range;
    $('custom-range').hidden = s.range !== 'custom';
    $('from').value = s.from ? toLocalInput(Number(s.from)) : '';
    $('to').value = s.to ? toLocalInput(Number(s.to)) : '';
    $('mode').value = s.mode;
    $('query').value = s.q;
    $('query').placeholder = s.mode === 'mongo'
      ? '{"type": "signup", "latency_ms": {"$gt": 250}}'
      : 'type:signup plan:pro latency_ms>250 NOT country:US';
    $('group-field').value = s.group;
    $('split-field').value = s.split;
    $('tail-toggle').checked = s.tail;
  }

  function readForm() {
    const s = Object.assign({}, state);
    s.range = $('range').value;
    s.mode = $('mode').value;
    s.q = $('query').value.trim();
    s.group = $('group-field').value.trim();
    s.split = $('split-field').value.trim();
    s.tail = $('tail-toggle').checked;
    if (s.range === 'custom') {
      const win = runWindow;
      s.from = $('from').value ? String(fromLocalInput($('from').value)) : String(win.from);
      s.to = $('to').value ? String(fromLocalInput($('to').value)) : String(win.to);
    } else {
      s.from = '';
      s.to = '';
    }
    return s;
  }

  /** The [from, to) window in epoch ms the state means right now. */
  function timeWindow(s) {
    const now = Date.now();
    if (s.range === 'custom') {
      const to = s.to ? Number(s.to) : now;
      const from = s.from ? Number(s.from) : to - RANGES[DEFAULT_RANGE];
      return { from, to };
    }
    return { from: now - (rangeMs(s.range) || RANGES[DEFAULT_RANGE]), to: now };
  }

  /** A relative range's length in ms; undefined for any other name (even "__proto__"). */
  function rangeMs(name) {
    return Object.hasOwn(RANGES, name) ? RANGES[name] : undefined;
  }

  function toLocalInput(ms) {
    if (!Number.isFinite(ms)) return '';
    const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
    return d.toISOString().slice(0, 19);
  }

  function fromLocalInput(text) {
    return new Date(text).getTime();
  }

  /** Query parameters shared by every API call: the filter of `s` and, when given, the window `win`. */
  function filterParams(s, win) {
    const p = new URLSearchParams();
    if (win) {
      p.set('from', String(win.from));
      p.set('to', String(win.to));
    }
    if (s.q) p.set(s.mode === 'mongo' ? 'filter' : 'q', s.q);
    return p;
  }

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.error)) || ('HTTP ' + status));
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(path, params) {
    const url = params ? path + '?' + params.toString() : path;
    const response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (response.status === 401) showLogin();
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  // -------------------------------------------------------------- running

  async function run(push) {
    const mine = ++generation;
    if (push) history.pushState(null, '', stateToUrl(state));
    else history.replaceState(null, '', stateToUrl(state));
    hideError();
    runWindow = timeWindow(state);
    updateExports();
    setStatus('Loading…');
    const jobs = [loadEvents(true, mine), loadHistogram(mine), loadTypes(mine), loadGroups(mine), loadFields(mine)];
    const results = await Promise.allSettled(jobs);
    if (mine !== generation) return;
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) showError(failed.reason);
    setStatus(failed ? '' : 'Updated ' + new Date().toLocaleTimeString());
    restartTail();
    if (state.open) openById(state.open);
  }

  function stale(mine) { return mine !== generation; }

  async function loadEvents(reset, mine) {
    const p = filterParams(state, runWindow);
    p.set('limit', String(PAGE_SIZE));
    if (!reset && cursor) p.set('cursor', cursor);
    const body = await api('/api/events', p);
    if (stale(mine)) return;
    const tbody = $('results').tBodies[0];
    if (reset) tbody.replaceChildren();
    for (const doc of body.events || []) tbody.appendChild(eventRow(doc, false));
    cursor = body.next_cursor || null;
    $('more').hidden = !cursor;
    const shown = tbody.querySelectorAll('tr.event-row').length;
    $('result-count').textContent = shown + (cursor ? '+' : '') + (shown === 1 ? ' event' : ' events');
    $('empty').hidden = shown > 0;
    $('results').hidden = shown === 0;
  }

  async function loadTypes(mine) {
    const p = new URLSearchParams({ from: String(runWindow.from), to: String(runWindow.to) });
    const body = await api('/api/types', p);
    if (stale(mine)) return;
    const rows = (body.types || []).map((t) => ({ label: t.type, value: t.type, clickable: true, count: t.count }));
    fillCounts($('types'), rows, 'type', 'No events in this range');
  }

  async function loadGroups(mine) {
    const list = $('groups');
    const note = $('group-note');
    note.hidden = true;
    if (!state.group) {
      list.replaceChildren(el('li', 'none', 'Pick a field to see its top values'));
      return;
    }
    const p = filterParams(state, runWindow);
    p.set('field', state.group);
    p.set('top', String(GROUP_TOP));
    const body = await api('/api/groups', p);
    if (stale(mine)) return;
    const rows = (body.groups || []).map((g) => ({
      label: g.label, value: g.value, clickable: g.key && g.key.kind === 'value', count: g.count,
    }));
    if (body.other_count > 0) rows.push({ label: '(other)', value: null, clickable: false, count: body.other_count });
    fillCounts(list, rows, state.group, 'No values');
    // The store says when older events hold this field only inside their
    // documents: such a count reads every document, so it is slower.
    if (body.column === false) {
      note.textContent = state.group + ' is not a column in every stored file of this range: '
        + 'its top values were counted from whole documents (slower over long ranges).';
      note.hidden = false;
    }
  }

  async function loadFields(mine) {
    const p = filterParams(state, runWindow);
    const body = await api('/api/fields', p);
    if (stale(mine)) return;
    const list = $('field-names');
    list.replaceChildren();
    for (const f of body.fields || []) {
      const option = document.createElement('option');
      option.value = typeof f === 'string' ? f : f.name;
      if (f.column === true) option.label = option.value + ' (column)';
      if (f.column === false) option.label = option.value + ' (in documents: slower)';
      list.appendChild(option);
    }
  }

  /** A count list (types, group-by): label, count and a meter; click filters. */
  function fillCounts(list, rows, field, emptyText) {
    list.replaceChildren();
    if (rows.length === 0) {
      list.appendChild(el('li', 'none', emptyText));
      return;
    }
    const max = Math.max(...rows.map((r) => r.count), 1);
    for (const row of rows) {
      const li = el('li', 'value-row');
      li.dataset.field = field;
      const meter = el('span', 'meter');
      meter.style.transform = 'scaleX(' + (row.count / max).toFixed(4) + ')';
      meter.style.width = '100%';
      li.append(meter, el('span', 'label', row.label), el('span', 'count', row.count.toLocaleString()));
      if (row.clickable) {
        li.title = 'Filter on ' + field + ' = ' + row.label;
        li.addEventListener('click', () => addFilter(field, row.value));
      } else {
        li.classList.add('inert');
      }
      list.appendChild(li);
    }
  }

  // ------------------------------------------------------------ histogram

  async function loadHistogram(mine) {
    const p = filterParams(state, runWindow);
    p.set('buckets', String(HISTOGRAM_BUCKETS));
    if (state.split) {
      p.set('split', state.split);
      p.set('top', String(SPLIT_TOP));
    }
    const body = await api('/api/histogram', p);
    if (stale(mine)) return;
    drawHistogram(body);
  }

  function drawHistogram(h) {
    const box = $('histogram');
    const width = Math.max(box.clientWidth, 300);
    const height = Math.max(box.clientHeight, 100);
    const pad = { l: 40, r: 8, t: 6, b: 18 };
    const buckets = h.buckets || [];
    const series = (h.series || [{ label: 'count' }]).map((s) => s.label);
    const totals = buckets.map((b) => b.counts.reduce((a, c) => a + c, 0));
    const max = Math.max(1, ...totals);
    const total = totals.reduce((a, c) => a + c, 0);
    const root = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': 'Events over time' });
    const plotW = width - pad.l - pad.r;
    const plotH = height - pad.t - pad.b;
    // Grid lines at 0, the middle (when it is a whole count) and the top.
    const marks = max % 2 === 0 || max > 10 ? [0, 0.5, 1] : [0, 1];
    for (const frac of marks) {
      const y = pad.t + plotH - frac * plotH;
      root.appendChild(svg('line', { x1: pad.l, x2: width - pad.r, y1: y, y2: y, class: 'grid' }));
      const label = svg('text', { x: pad.l - 4, y: y + 3, 'text-anchor': 'end', class: 'axis' });
      label.textContent = formatCount(Math.round(max * frac));
      root.appendChild(label);
    }
    const bw = buckets.length ? plotW / buckets.length : plotW;
    buckets.forEach((b, i) => {
      let y = pad.t + plotH;
      b.counts.forEach((count, si) => {
        if (!count) return;
        const hgt = Math.max(1, (count / max) * plotH);
        y -= hgt;
        const rect = svg('rect', {
          x: (pad.l + i * bw + 0.5).toFixed(2), y: y.toFixed(2),
          width: Math.max(1, bw - 1).toFixed(2), height: hgt.toFixed(2),
          class: 'bar' + (series.length > 1 ? ' s' + (si % 8) : ''),
        });
        const tip = svg('title');
        tip.textContent = formatTime(b.start) + (series.length > 1 ? ' · ' + series[si] : '') + ': ' + count.toLocaleString();
        rect.appendChild(tip);
        rect.addEventListener('click', () => zoomTo(b.start, b.start + h.interval_ms));
        root.appendChild(rect);
      });
    });
    const ticks = Math.min(6, buckets.length);
    for (let k = 0; k < ticks; k++) {
      const i = Math.round((k * (buckets.length - 1)) / Math.max(1, ticks - 1));
      const label = svg('text', { x: pad.l + i * bw + bw / 2, y: height - 4, 'text-anchor': 'middle', class: 'axis' });
      label.textContent = formatTick(buckets[i].start, h.interval_ms * buckets.length);
      root.appendChild(label);
    }
    box.replaceChildren(root);
    $('summary').textContent = total.toLocaleString() + (total === 1 ? ' event' : ' events') + ' · ' + formatDuration(h.interval_ms) + ' buckets';
    const legend = $('legend');
    legend.replaceChildren();
    if (series.length > 1) {
      series.forEach((name, si) => {
        const item = el('span', 'legend-item');
        item.append(el('span', 'swatch s' + (si % 8)), document.createTextNode(name));
        legend.appendChild(item);
      });
    }
  }

  function zoomTo(from, to) {
    state = Object.assign({}, state, { range: 'custom', from: String(from), to: String(to), open: '' });
    writeForm(state);
    run(true);
  }

  // --------------------------------------------------------------- events

  function eventRow(doc, fresh) {
    const tr = el('tr', 'event-row' + (fresh ? ' fresh' : ''));
    tr.dataset.id = String(doc._id);
    tr.appendChild(el('td', 'time', formatTime(Date.parse(doc.ts))));
    const typeCell = el('td');
    typeCell.appendChild(valueNode('type', doc.type, 'value type-tag'));
    tr.appendChild(typeCell);
    const fields = el('td');
    const chips = el('div', 'chips');
    for (const [key, value] of Object.entries(doc)) {
      if (ENVELOPE.has(key)) continue;
      for (const [path, leaf] of flatten(key, value)) {
        const chip = el('span', 'chip');
        chip.append(el('span', 'key', path + '='), valueNode(path, leaf, 'value'));
        chips.appendChild(chip);
      }
    }
    fields.appendChild(chips);
    tr.appendChild(fields);
    tr.addEventListener('click', (ev) => {
      if (ev.target.closest('.value')) return;
      toggleDetail(tr);
    });
    return tr;
  }

  /** Leaves of a nested value as [dotted path, value], objects flattened, arrays kept whole. */
  function flatten(path, value) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const out = [];
      for (const [k, v] of Object.entries(value)) out.push(...flatten(path + '.' + k, v));
      return out;
    }
    return [[path, value]];
  }

  /** A clickable value: clicking adds field = value to the filter. */
  function valueNode(field, value, cls) {
    let text = displayValue(value);
    if (text.length > CHIP_MAX_CHARS) text = text.slice(0, CHIP_MAX_CHARS) + '…';
    const span = el('span', cls, text);
    span.dataset.field = field;
    span.title = 'Filter on ' + field;
    span.addEventListener('click', (ev) => {
      ev.stopPropagation();
      addFilter(field, value);
    });
    return span;
  }

  function displayValue(v) {
    if (typeof v === 'string') return v;
    if (v === undefined) return '';
    return JSON.stringify(v);
  }

  async function toggleDetail(tr) {
    const next = tr.nextElementSibling;
    if (next && next.classList.contains('detail')) {
      next.remove();
      setOpen('');
      return;
    }
    await showDetail(tr);
  }

  async function showDetail(tr) {
    const id = tr.dataset.id;
    const detail = el('tr', 'detail');
    const cell = el('td');
    cell.colSpan = 3;
    const pre = el('pre', 'json', 'Loading…');
    cell.appendChild(pre);
    detail.appendChild(cell);
    tr.after(detail);
    setOpen(id);
    try {
      const body = await api('/api/events/' + encodeURIComponent(id));
      pre.replaceChildren(prettyJson(body.event, '', 0));
    } catch (e) {
      pre.textContent = 'Could not load the event: ' + e.message;
    }
  }

  function openById(id) {
    const rows = $('results').tBodies[0].querySelectorAll('tr.event-row');
    for (const tr of rows) {
      if (tr.dataset.id === id) {
        const next = tr.nextElementSibling;
        if (!(next && next.classList.contains('detail'))) showDetail(tr);
        return;
      }
    }
  }

  function setOpen(id) {
    state = Object.assign({}, state, { open: id });
    history.replaceState(null, '', stateToUrl(state));
  }

  /** Pretty JSON as DOM nodes (text only); leaf values are clickable filters. */
  function prettyJson(value, path, depth) {
    const frag = document.createDocumentFragment();
    const indent = '  '.repeat(depth);
    const punct = (t) => el('span', 'json-punct', t);
    if (Array.isArray(value)) {
      if (value.length === 0) { frag.appendChild(punct('[]')); return frag; }
      frag.appendChild(punct('[\n'));
      value.forEach((v, i) => {
        frag.appendChild(document.createTextNode(indent + '  '));
        frag.appendChild(prettyJson(v, path, depth + 1));
        frag.appendChild(punct(i + 1 < value.length ? ',\n' : '\n'));
      });
      frag.appendChild(document.createTextNode(indent));
      frag.appendChild(punct(']'));
      return frag;
    }
    if (value !== null && typeof value === 'object') {
      const entries = Object.entries(value);
      if (entries.length === 0) { frag.appendChild(punct('{}')); return frag; }
      frag.appendChild(punct('{\n'));
      entries.forEach(([k, v], i) => {
        frag.appendChild(document.createTextNode(indent + '  '));
        frag.appendChild(el('span', 'json-key', JSON.stringify(k)));
        frag.appendChild(punct(': '));
        frag.appendChild(prettyJson(v, path ? path + '.' + k : k, depth + 1));
        frag.appendChild(punct(i + 1 < entries.length ? ',\n' : '\n'));
      });
      frag.appendChild(document.createTextNode(indent));
      frag.appendChild(punct('}'));
      return frag;
    }
    const leaf = el('span', 'value', JSON.stringify(value));
    if (path) {
      leaf.dataset.field = path;
      leaf.title = 'Filter on ' + path;
      leaf.addEventListener('click', (ev) => { ev.stopPropagation(); addFilter(path, value); });
    }
    frag.appendChild(leaf);
    return frag;
  }

  // -------------------------------------------------------------- filters

  /** Adds "field equals value" to the current filter, in its language, and runs. */
  function addFilter(field, value) {
    const current = $('query').value.trim();
    if (value !== null && typeof value === 'object') {
      // Filters compare scalars; an array matches when any element does.
      showError(new Error('Open the event and click one element of "' + field + '" to filter on it.'));
      return;
    }
    let next;
    if (state.mode === 'mongo') {
      next = addMongoFilter(current, field, value);
    } else {
      try {
        next = (current ? current + ' ' : '') + textTerm(field, value);
      } catch (e) {
        showError(e);
        return;
      }
    }
    state = Object.assign({}, readForm(), { q: next, open: '' });
    writeForm(state);
    run(true);
  }

  function addMongoFilter(current, field, value) {
    // No prototype, members defined rather than assigned: a field named
    // "__proto__" (event data is arbitrary) must become a member, not a
    // silent no-op that filters nothing.
    const term = Object.create(null);
    // Envelope fields are typed in MongoDB: dates and an ObjectId.
    if ((field === 'ts' || field === 'recv') && typeof value === 'string') value = { $date: value };
    else if (field === '_id' && typeof value === 'string') value = { $oid: value };
    setMember(term, field, value);
    if (!current) return JSON.stringify(term);
    try {
      const parsed = JSON.parse(current);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && !Object.hasOwn(parsed, field)) {
        setMember(parsed, field, value);
        return JSON.stringify(parsed);
      }
      return JSON.stringify({ $and: [parsed, term] });
    } catch (_) {
      return current;
    }
  }

  /** Sets an own, enumerable member, whatever its name (even "__proto__"). */
  function setMember(obj, key, value) {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  }

  /** `field:value` in the text language, quoting values that would not read back as themselves. */
  function textTerm(field, value) {
    // Field names are bare in the text language: anything but spaces,
    // parentheses, quotes and :<>=!, and not starting with '-' (negation).
    if (!/^[^\s()"':<>=!\-][^\s()"':<>=!]*$/.test(field) || /^(AND|OR|NOT)$/.test(field)) {
      throw new Error('The field "' + field + '" cannot be named in the text language; switch to MongoDB JSON to filter on it.');
    }
    const name = field;
    if (typeof value === 'string') return name + ':' + quote(value);
    return name + ':' + JSON.stringify(value);
  }

  function quote(text) {
    return '"' + text.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
  }

  // ------------------------------------------------------------ live tail

  function restartTail() {
    const url = '/api/tail?' + filterParams(state, null).toString();
    // Same filter, same stream: reopening would skip what arrives meanwhile.
    if (tail && state.tail && tail.url.endsWith(url) && tail.readyState !== EventSource.CLOSED) return;
    if (tail) { tail.close(); tail = null; }
    document.body.dataset.tail = 'off';
    if (!state.tail) return;
    tail = new EventSource(url);
    tail.addEventListener('event', (msg) => {
      let doc;
      try { doc = JSON.parse(msg.data); } catch (_) { return; }
      const tbody = $('results').tBodies[0];
      // A reconnect resumes from the last acknowledged id and may repeat a few.
      if (tbody.querySelector('tr.event-row[data-id="' + CSS.escape(String(doc._id)) + '"]')) return;
      tbody.insertBefore(eventRow(doc, true), tbody.firstChild);
      const rows = tbody.querySelectorAll('tr.event-row');
      for (let i = MAX_TAIL_ROWS; i < rows.length; i++) {
        const next = rows[i].nextElementSibling;
        if (next && next.classList.contains('detail')) next.remove();
        rows[i].remove();
      }
      $('empty').hidden = true;
      $('results').hidden = false;
      setStatus('Live: last event ' + new Date().toLocaleTimeString());
    });
    tail.addEventListener('open', () => {
      document.body.dataset.tail = 'open';
      setStatus('Live tail connected');
    });
    tail.addEventListener('error', () => {
      // CLOSED: the server refused (401, 503 at the limit); the browser
      // gives up, and the next run opens a new one.
      const closed = tail && tail.readyState === EventSource.CLOSED;
      document.body.dataset.tail = closed ? 'closed' : 'reconnecting';
      setStatus(closed ? 'Live tail refused; run again to retry' : 'Live tail reconnecting…');
    });
  }

  // -------------------------------------------------------------- exports

  function updateExports() {
    const p = filterParams(state, runWindow);
    p.set('format', 'ndjson');
    $('export-ndjson').href = '/api/export?' + p.toString();
    p.set('format', 'csv');
    $('export-csv').href = '/api/export?' + p.toString();
  }

  // ------------------------------------------------------- errors, status

  function showError(err) {
    $('error').hidden = false;
    $('error-message').textContent = err && err.message ? err.message : String(err);
    const caret = $('error-caret');
    const pos = err && err.body && Number.isInteger(err.body.position) ? err.body.position : null;
    if (pos !== null && state.q) {
      // The server's position counts characters of the query text.
      caret.textContent = state.q + '\n' + ' '.repeat(Math.min(pos, state.q.length)) + '^';
      caret.hidden = false;
    } else {
      caret.hidden = true;
    }
  }

  function hideError() {
    $('error').hidden = true;
  }

  function setStatus(text) {
    $('status').textContent = text;
  }

  function showLogin() {
    $('login').hidden = false;
    $('login-token').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const response = await fetch('/api/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: $('login-token').value }),
      credentials: 'same-origin',
    });
    if (response.ok) {
      $('login').hidden = true;
      $('login-token').value = '';
      run(false);
    } else {
      showError(new Error('That token was not accepted.'));
    }
  }

  // -------------------------------------------------------------- formats

  function pad2(n) { return String(n).padStart(2, '0'); }

  function formatTime(ms) {
    if (!Number.isFinite(ms)) return '';
    const d = new Date(ms);
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' +
      pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds()) + '.' +
      String(d.getMilliseconds()).padStart(3, '0');
  }

  function formatTick(ms, spanMs) {
    const d = new Date(ms);
    const hm = pad2(d.getHours()) + ':' + pad2(d.getMinutes());
    return spanMs > 2 * 86400e3 ? pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' + hm : hm;
  }

  function formatDuration(ms) {
    if (ms >= 86400e3 && ms % 86400e3 === 0) return ms / 86400e3 + ' d';
    if (ms >= 3600e3 && ms % 3600e3 === 0) return ms / 3600e3 + ' h';
    if (ms >= 60e3 && ms % 60e3 === 0) return ms / 60e3 + ' min';
    if (ms >= 1000) return Math.round(ms / 1000) + ' s';
    return ms + ' ms';
  }

  function formatCount(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (n >= 1e4) return Math.round(n / 1e3) + 'k';
    return String(n);
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    state = stateFromUrl();
    writeForm(state);
    $('query-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state = Object.assign(readForm(), { open: '' });
      run(true);
    });
    $('range').addEventListener('change', () => {
      if ($('range').value === 'custom') {
        const win = runWindow;
        $('from').value = toLocalInput(win.from);
        $('to').value = toLocalInput(win.to);
        $('custom-range').hidden = false;
        return;
      }
      state = readForm();
      writeForm(state);
      run(true);
    });
    $('mode').addEventListener('change', () => {
      state = Object.assign(readForm(), { q: '' });
      writeForm(state);
      run(true);
    });
    $('tail-toggle').addEventListener('change', () => {
      state = readForm();
      history.replaceState(null, '', stateToUrl(state));
      restartTail();
    });
    $('group-field').addEventListener('change', () => {
      state = readForm();
      run(true);
    });
    $('split-field').addEventListener('change', () => {
      state = readForm();
      run(true);
    });
    $('more').addEventListener('click', () => loadEvents(false, generation).catch(showError));
    $('login').addEventListener('submit', login);
    window.addEventListener('popstate', () => {
      state = stateFromUrl();
      writeForm(state);
      run(false);
    });
    let resizeTimer = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => loadHistogram(generation).catch(() => {}), 200);
    });
    run(false);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
