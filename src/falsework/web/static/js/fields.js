// Widgets for one field of the form: the built-in JSON Schema types, `ui:widget` options
// and Backstage's custom fields (RepoUrlPicker, EntityNamePicker, OwnerPicker,
// EntityPicker, OwnedEntityPicker, MultiEntityPicker, Secret). Each widget reads and writes
// its value through `ctx`. The entity pickers list the catalog's entities (the server's
// entities files and Backstage catalog), searched as the user types; RepoUrlPicker offers
// the configured hosts and the owners the server's token may publish to.

import { api } from './api.js';
import { clear, h } from './dom.js';
import { markdownBlock } from './markdown.js';
import { deref, isObject } from './schema.js';

const ENTITY_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const ENTITY_PICKERS = new Set(['OwnerPicker', 'EntityPicker', 'OwnedEntityPicker', 'MyGroupsPicker']);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

export function pathKey(path) {
  return path.join('\u0000');
}

export function fieldId(prefix, path) {
  const safe = path.map((p) => String(p).replace(/[^A-Za-z0-9_-]/g, '_')).join('__');
  return `${prefix}-${safe || 'root'}`;
}

/** `[{value, label}]` for an enum-like schema (`enum` + `enumNames`, or `oneOf` of consts). */
export function enumOptions(schema) {
  if (Array.isArray(schema.enum)) {
    const names = schema.enumNames || schema['ui:enumNames'] || [];
    return schema.enum.map((value, i) => ({ value, label: String(names[i] ?? value) }));
  }
  const alts = schema.oneOf || schema.anyOf;
  if (Array.isArray(alts) && alts.length > 0 && alts.every((s) => isObject(s) && s.const !== undefined)) {
    return alts.map((s) => ({ value: s.const, label: String(s.title ?? s.const) }));
  }
  return null;
}

/** Parse `host?owner=o&repo=r` into its parts. */
export function parseRepoUrl(value) {
  if (typeof value !== 'string' || !value) return { host: '', owner: '', repo: '', extra: {} };
  const q = value.indexOf('?');
  const host = q === -1 ? value : value.slice(0, q);
  const params = new URLSearchParams(q === -1 ? '' : value.slice(q + 1));
  const extra = {};
  for (const [k, v] of params) if (k !== 'owner' && k !== 'repo') extra[k] = v;
  return { host, owner: params.get('owner') || '', repo: params.get('repo') || '', extra };
}

export function formatRepoUrl({ host, owner, repo, extra = {} }) {
  if (!owner && !repo) return undefined;
  const params = new URLSearchParams({ ...extra });
  if (owner) params.set('owner', owner);
  if (repo) params.set('repo', repo);
  return `${host}?${params}`;
}

/**
 * Render one field. `ctx` offers: get(path), set(path, value), idPrefix, required(path),
 * register(path, entry) (entry: {element, errorEl, focus, check?}), secretGet/secretSet,
 * identity, rerender().
 */
export function renderField(ctx, rawSchema, path, { required = false, label } = {}) {
  const schema = deref(rawSchema, ctx.root);
  if (!isObject(schema)) return null;
  const key = path[path.length - 1];
  const title = label ?? schema.title ?? String(key);
  const widget = schema['ui:widget'];
  const field = schema['ui:field'];
  if (widget === 'hidden') return null;

  const id = fieldId(ctx.idPrefix, path);
  const helpText = schema['ui:help'] || schema.description;
  const help = helpText ? markdownBlock(String(helpText), 'help', { id: `${id}-help` }) : null;
  const errorEl = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const describedBy = [help ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(' ');
  const common = { id, describedBy, title, required, schema, path, help, errorEl };

  let built;
  if (field === 'RepoUrlPicker') built = repoUrlPicker(ctx, common);
  else if (field === 'Secret') built = secretField(ctx, common);
  else if (field === 'EntityNamePicker') built = entityNamePicker(ctx, common);
  else if (ENTITY_PICKERS.has(field)) built = entityPicker(ctx, common, field);
  else if (field === 'MultiEntityPicker') built = multiEntityPicker(ctx, common);
  else built = byType(ctx, common);
  if (!built) return null;
  const { wrapper: element, focus, check, controlsFor } = built;
  ctx.register(path, { element, errorEl, focus, check, controlsFor, title });
  return built.wrapper;
}

function labelFor(common, text = common.title) {
  // The asterisk sits outside the <label>, so the accessible name is exactly the title.
  return h(
    'span',
    { class: 'label-row' },
    h('label', { for: common.id, text }),
    common.required ? h('span', { class: 'required', 'aria-hidden': 'true', text: ' *' }) : null,
  );
}

function wrap(common, ...children) {
  const attrs = { class: 'field', dataset: { path: common.path.join('.') } };
  return h('div', attrs, ...children, common.help, common.errorEl);
}

/** A fieldset for a field made of several controls; its legend is the field's title. */
function group(common, cls, ...children) {
  const attrs = {
    class: `field group ${cls}`.trim(),
    id: common.id,
    'aria-describedby': common.describedBy,
    dataset: { path: common.path.join('.') },
  };
  return h('fieldset', attrs, legendFor(common), ...children, common.help, common.errorEl);
}

function legendFor(common) {
  return h(
    'legend',
    {},
    common.title,
    common.required ? h('span', { class: 'required', 'aria-hidden': 'true', text: ' *' }) : null,
  );
}

function applyUi(input, common) {
  const s = common.schema;
  if (s['ui:placeholder']) input.placeholder = s['ui:placeholder'];
  if (s['ui:autofocus']) input.dataset.autofocus = 'true';
  if (s['ui:readonly'] || s.readOnly || s.const !== undefined) {
    if (input.tagName === 'SELECT' || input.type === 'checkbox' || input.type === 'radio') input.disabled = true;
    else input.readOnly = true;
  }
  input.setAttribute('aria-describedby', common.describedBy);
  if (common.required) input.setAttribute('aria-required', 'true');
  return input;
}

function typeOfSchema(schema) {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== 'null') || 'string';
  if (schema.type) return schema.type;
  if (isObject(schema.properties)) return 'object';
  if (schema.items) return 'array';
  return 'string';
}

function byType(ctx, common) {
  const { schema } = common;
  const type = typeOfSchema(schema);
  const options = enumOptions(schema);
  if (type === 'object') return objectField(ctx, common);
  if (type === 'array') return arrayField(ctx, common);
  if (options && schema['ui:widget'] === 'radio') return radioGroup(ctx, common, options);
  if (options) return selectField(ctx, common, options);
  if (type === 'boolean') {
    if (schema['ui:widget'] === 'radio' || schema['ui:widget'] === 'select') {
      const yesNo = [
        { value: true, label: schema.enumNames?.[0] ?? 'Yes' },
        { value: false, label: schema.enumNames?.[1] ?? 'No' },
      ];
      return schema['ui:widget'] === 'radio' ? radioGroup(ctx, common, yesNo) : selectField(ctx, common, yesNo);
    }
    return checkboxField(ctx, common);
  }
  if (type === 'number' || type === 'integer') return numberField(ctx, common, type);
  return textField(ctx, common);
}

function textField(ctx, common, extra = {}) {
  const { schema, path } = common;
  const widget = schema['ui:widget'];
  const value = ctx.get(path);
  let input;
  if (widget === 'textarea') {
    const rows = schema['ui:options']?.rows ?? 5;
    input = h('textarea', { id: common.id, name: common.id, rows });
    input.value = value ?? '';
  } else {
    const formats = { email: 'email', uri: 'url', url: 'url', date: 'date', time: 'time' };
    const type = widget === 'password' ? 'password' : widget === 'email' ? 'email' : formats[schema.format] || 'text';
    input = h('input', { id: common.id, name: common.id, type, autocomplete: 'off' });
    input.value = value === undefined || value === null ? '' : String(value);
    if (extra.list) input.setAttribute('list', extra.list);
  }
  // one more than allowed, so the message explains the limit instead of the input ignoring keys
  if (schema.maxLength !== undefined) input.setAttribute('maxlength', String(schema.maxLength + 1));
  applyUi(input, common);
  input.addEventListener('input', () => ctx.set(path, input.value === '' ? undefined : input.value));
  return { wrapper: wrap(common, labelFor(common), input, extra.after), focus: input, check: extra.check };
}

function numberField(ctx, common, type) {
  const { schema, path } = common;
  const integer = type === 'integer';
  const input = h('input', {
    id: common.id,
    name: common.id,
    type: 'number',
    step: integer ? '1' : 'any',
    inputmode: integer ? 'numeric' : 'decimal',
  });
  if (typeof schema.minimum === 'number') input.min = String(schema.minimum);
  if (typeof schema.maximum === 'number') input.max = String(schema.maximum);
  const value = ctx.get(path);
  input.value = value === undefined ? '' : String(value);
  applyUi(input, common);
  input.addEventListener('input', () => {
    if (input.value === '') {
      // an unparseable number also reads as '' (badInput): say so instead of "required"
      ctx.set(path, input.validity.badInput ? Number.NaN : undefined);
    } else ctx.set(path, Number(input.value));
  });
  const check = () => (input.validity.badInput ? 'Must be a number.' : null);
  return { wrapper: wrap(common, labelFor(common), input), focus: input, check };
}

function checkboxField(ctx, common) {
  const { path } = common;
  const input = h('input', { id: common.id, name: common.id, type: 'checkbox' });
  input.checked = ctx.get(path) === true;
  applyUi(input, common);
  input.addEventListener('change', () => ctx.set(path, input.checked));
  const wrapper = h(
    'div',
    { class: 'field field-checkbox', dataset: { path: path.join('.') } },
    h('div', { class: 'checkbox-row' }, input, labelFor(common)),
    common.help,
    common.errorEl,
  );
  return { wrapper, focus: input };
}

function selectField(ctx, common, options) {
  const { schema, path } = common;
  const select = h('select', { id: common.id, name: common.id });
  const current = ctx.get(path);
  const hasDefault = schema.default !== undefined;
  if (!(common.required && hasDefault)) {
    select.append(h('option', { value: '', text: schema['ui:placeholder'] || '—' }));
  }
  options.forEach((opt, i) => {
    const option = h('option', { value: String(i), text: opt.label });
    if (current !== undefined && same(current, opt.value)) option.selected = true;
    select.append(option);
  });
  applyUi(select, common);
  select.addEventListener('change', () => {
    ctx.set(path, select.value === '' ? undefined : options[Number(select.value)].value);
  });
  return { wrapper: wrap(common, labelFor(common), select), focus: select };
}

function radioGroup(ctx, common, options) {
  const { path } = common;
  const current = ctx.get(path);
  const inputs = [];
  const items = options.map((opt, i) => {
    const input = h('input', { type: 'radio', id: `${common.id}-${i}`, name: common.id, value: String(i) });
    input.checked = current !== undefined && same(current, opt.value);
    applyUi(input, common);
    input.addEventListener('change', () => input.checked && ctx.set(path, opt.value));
    inputs.push(input);
    return h('div', { class: 'checkbox-row' }, input, h('label', { for: input.id, text: opt.label }));
  });
  return { wrapper: group(common, '', items), focus: inputs.find((i) => i.checked) || inputs[0] };
}

function objectField(ctx, common) {
  const { schema, path } = common;
  const body = h('div', { class: 'object-body' });
  ctx.renderObject(schema, path, body);
  const fieldset = group(common, 'object', body);
  return { wrapper: fieldset, focus: fieldset.querySelector('input, select, textarea') };
}

function arrayField(ctx, common) {
  const { schema, path } = common;
  const items = deref(schema.items, ctx.root) || {};
  const options = isObject(items) ? enumOptions(items) : null;
  const widget = schema['ui:widget'];
  if (options && (schema.uniqueItems || widget === 'checkboxes') && widget !== 'select') {
    return checkboxGroup(ctx, common, options);
  }
  if (options && widget === 'select') return multiSelect(ctx, common, options);
  const list = Array.isArray(ctx.get(path)) ? ctx.get(path) : [];
  const itemName = isObject(items) && items.title ? items.title : singular(common.title);
  const rows = h('ol', { class: 'array-rows' });
  list.forEach((_item, i) => {
    const itemPath = [...path, i];
    const itemLabel = `${itemName} ${i + 1}`;
    const rendered = renderField(ctx, items, itemPath, { label: itemLabel });
    const remove = h('button', {
      type: 'button',
      class: 'secondary small',
      'aria-label': `Remove ${itemLabel}`,
      text: 'Remove',
      onClick: () => {
        const next = [...ctx.get(path)];
        next.splice(i, 1);
        ctx.set(path, next.length ? next : undefined, { rerender: true });
      },
    });
    rows.append(h('li', { class: 'array-row' }, rendered, remove));
  });
  const add = h('button', {
    type: 'button',
    class: 'secondary small',
    text: `Add ${common.title}`,
    onClick: () => {
      const next = [...(ctx.get(path) || [])];
      if (items.default !== undefined) next.push(structuredClone(items.default));
      else next.push(typeOfSchema(items) === 'object' ? {} : undefined);
      ctx.set(path, next, { rerender: true, focusLast: fieldId(ctx.idPrefix, [...path, next.length - 1]) });
    },
  });
  const fieldset = group(common, 'array', rows, add);
  return { wrapper: fieldset, focus: fieldset.querySelector('input, select, textarea') || add };
}

/** "Tags" → "Tag", "Dependencies" → "Dependency": an array's item, named after the array. */
export function singular(title) {
  const t = String(title);
  if (/ies$/i.test(t)) return `${t.slice(0, -3)}y`;
  if (/(sh|ch|x|ss)es$/i.test(t)) return t.slice(0, -2);
  if (/s$/i.test(t) && !/(ss|us|is)$/i.test(t)) return t.slice(0, -1);
  return `${t} item`;
}

function checkboxGroup(ctx, common, options) {
  const { path } = common;
  const current = () => (Array.isArray(ctx.get(path)) ? ctx.get(path) : []);
  const inputs = options.map((opt, i) => {
    const input = h('input', { type: 'checkbox', id: `${common.id}-${i}`, name: common.id });
    input.checked = current().some((v) => same(v, opt.value));
    applyUi(input, { ...common, required: false });
    input.addEventListener('change', () => {
      // keep the enum's order, whatever order the boxes were ticked in
      const ticked = (o, j) => (j === i ? input.checked : current().some((v) => same(v, o.value)));
      const chosen = options.filter(ticked);
      ctx.set(path, chosen.length ? chosen.map((o) => o.value) : undefined);
    });
    return input;
  });
  const rows = options.map((opt, i) =>
    h('div', { class: 'checkbox-row' }, inputs[i], h('label', { for: inputs[i].id, text: opt.label })),
  );
  return { wrapper: group(common, '', rows), focus: inputs[0] };
}

function multiSelect(ctx, common, options) {
  const { path } = common;
  const select = h('select', { id: common.id, name: common.id, multiple: true });
  const current = Array.isArray(ctx.get(path)) ? ctx.get(path) : [];
  options.forEach((opt, i) => {
    const option = h('option', { value: String(i), text: opt.label });
    option.selected = current.some((v) => same(v, opt.value));
    select.append(option);
  });
  applyUi(select, common);
  select.addEventListener('change', () => {
    const chosen = [...select.selectedOptions].map((o) => options[Number(o.value)].value);
    ctx.set(path, chosen.length ? chosen : undefined);
  });
  return { wrapper: wrap(common, labelFor(common), select), focus: select };
}

// --- Backstage's custom fields -------------------------------------------------------

function repoUrlPicker(ctx, common) {
  const { schema, path } = common;
  const opts = schema['ui:options'] || {};
  const configured = (ctx.repoHosts || []).map((x) => x.host);
  const hosts =
    Array.isArray(opts.allowedHosts) && opts.allowedHosts.length
      ? opts.allowedHosts
      : configured.length
        ? configured
        : ['github.com'];
  // the owners the server's token for the chosen host may publish to, as suggestions
  const ownersOf = (host) => (ctx.repoHosts || []).find((x) => x.host === host)?.owners || [];
  const parts = parseRepoUrl(ctx.get(path));
  if (!parts.host || !hosts.includes(parts.host)) parts.host = hosts[0];
  const update = () => ctx.set(path, formatRepoUrl(parts));

  const choice = (name, label, allowed, value) => {
    const id = `${common.id}-${name}`;
    let control;
    if (Array.isArray(allowed) && allowed.length) {
      const choices = allowed.map((a) => h('option', { value: a, text: a, selected: a === value }));
      control = h('select', { id, name: id }, choices);
      if (!value) parts[name] = allowed[0];
      control.addEventListener('change', () => {
        parts[name] = control.value;
        update();
      });
    } else {
      control = h('input', { id, name: id, type: 'text', autocomplete: 'off' });
      control.value = value;
      control.addEventListener('input', () => {
        parts[name] = control.value.trim();
        update();
      });
    }
    applyUi(control, common);
    return { control, row: h('div', { class: 'subfield' }, h('label', { for: id, text: label }), control) };
  };
  const host = choice('host', 'Host', hosts, parts.host);
  const owner = choice('owner', 'Owner', opts.allowedOwners, parts.owner);
  const repo = choice('repo', 'Repository', opts.allowedRepos, parts.repo);
  if (owner.control.tagName === 'INPUT') {
    const listId = `${common.id}-owners`;
    const owners = h('datalist', { id: listId });
    const fillOwners = () => {
      clear(owners).append(...ownersOf(parts.host).map((o) => h('option', { value: o })));
    };
    fillOwners();
    owner.control.setAttribute('list', listId);
    owner.row.append(owners);
    host.control.addEventListener('change', fillOwners);
  }
  const fieldset = group(common, 'repo-url', h('div', { class: 'subfields' }, host.row, owner.row, repo.row));
  const messages = {
    owner: 'Enter the owner of the repository.',
    repo: 'Enter the name of the repository.',
    repoName: 'A repository name may contain letters, digits, "-", "_" and "." only.',
  };
  const check = (value) => {
    if (value === undefined) return null;
    const p = parseRepoUrl(value);
    if (!p.owner) return messages.owner;
    if (!p.repo) return messages.repo;
    if (!/^[A-Za-z0-9_.-]+$/.test(p.repo)) return messages.repoName;
    return null;
  };
  // a wrong name outlines the name's input, not the host and owner beside it
  const controlsFor = (message) => {
    if (message === messages.owner) return [owner.control];
    if (message === messages.repo || message === messages.repoName) return [repo.control];
    return null;
  };
  return { wrapper: fieldset, focus: parts.owner ? repo.control : owner.control, check, controlsFor };
}

function entityNamePicker(ctx, common) {
  const check = (value) => {
    if (value === undefined) return null;
    if (typeof value !== 'string' || value.length > 63 || !ENTITY_NAME.test(value)) {
      return 'Use letters, digits, "-", "_" and "." (at most 63), starting and ending with a letter or digit.';
    }
    return null;
  };
  return textField(ctx, common, { check });
}

// --- entity pickers ---------------------------------------------------------------------

/** What to ask the server for: kinds and field filters (ui:options.catalogFilter), owned. */
function entityQuery(field, opts) {
  const filter = Array.isArray(opts.catalogFilter) ? opts.catalogFilter[0] : opts.catalogFilter;
  let kinds = [];
  const filters = [];
  if (isObject(filter)) {
    for (const [key, value] of Object.entries(filter)) {
      if (key === 'kind') kinds = (Array.isArray(value) ? value : [value]).map(String);
      else if (typeof value === 'string' || typeof value === 'number') filters.push(`${key}=${value}`);
    }
  }
  if (!kinds.length && Array.isArray(opts.allowedKinds)) kinds = opts.allowedKinds.map(String);
  if (!kinds.length && field === 'OwnerPicker') kinds = ['Group', 'User'];
  const query = {};
  if (kinds.length) query.kind = kinds.join(',');
  if (filters.length) query.filter = filters.join(',');
  if (field === 'OwnedEntityPicker') query.owned = 'true';
  return { query, kinds: kinds.map((k) => k.toLowerCase()) };
}

/** A ref as the template wants it: `defaultKind` / `defaultNamespace` left out, as Backstage does. */
function shortRef(ref, opts) {
  const m = /^([^:]+):([^/]+)\/(.+)$/.exec(ref);
  if (!m) return ref;
  const [, kind, namespace, name] = m;
  const sameKind = opts.defaultKind && opts.defaultKind.toLowerCase() === kind;
  const sameNs = (opts.defaultNamespace || (sameKind ? 'default' : null)) === namespace;
  if (sameKind && sameNs) return name;
  if (sameKind) return `${namespace}/${name}`;
  return ref;
}

/** A datalist kept filled with the entities matching what is typed (debounced). */
function entityOptions(ctx, field, opts, listId, known) {
  const { query } = entityQuery(field, opts);
  const datalist = h('datalist', { id: listId });
  let timer = null;
  let asked = 0;
  const fill = (items) => {
    clear(datalist);
    for (const s of known.extra) datalist.append(h('option', { value: s }));
    for (const e of items) {
      const value = shortRef(e.ref, opts);
      known.refs.add(value);
      if (!known.extra.has(value)) datalist.append(h('option', { value, label: e.title ? `${e.title} (${e.ref})` : e.ref }));
    }
  };
  const load = async (text) => {
    const mine = ++asked;
    try {
      const answer = await api.entities({ ...query, q: text || '' });
      if (mine === asked) fill(answer.items || []);
    } catch {
      // no catalog to ask: the field still takes a typed reference
    }
  };
  fill([]);
  load('');
  const search = (text) => {
    clearTimeout(timer);
    timer = setTimeout(() => load(text), 250);
  };
  return { datalist, search };
}

function entityPicker(ctx, common, field) {
  const opts = common.schema['ui:options'] || {};
  const extra = new Set(Array.isArray(opts.suggestions) ? opts.suggestions.map(String) : []);
  const { kinds } = entityQuery(field, opts);
  if (field === 'OwnerPicker' && ctx.identity?.user && (!kinds.length || kinds.includes('user'))) {
    extra.add(ctx.identity.user);
  }
  const known = { refs: new Set(extra), extra };
  const listId = `${common.id}-suggestions`;
  const { datalist, search } = entityOptions(ctx, field, opts, listId, known);
  const check = (value) => {
    if (value === undefined) return null;
    // Backstage's allowArbitraryValues: false limits the value to the offered entities
    if (opts.allowArbitraryValues === false && known.refs.size > 0 && !known.refs.has(value)) {
      return 'Choose one of the suggestions.';
    }
    const kind = value.includes(':') ? value.split(':')[0].toLowerCase() : null;
    if (kinds.length && kind && !kinds.includes(kind)) {
      return `Must be one of the kinds: ${kinds.join(', ')}.`;
    }
    return null;
  };
  const built = textField(ctx, common, { list: listId, after: datalist, check });
  built.focus.addEventListener('input', () => search(built.focus.value));
  return built;
}

function multiEntityPicker(ctx, common) {
  const { path, schema } = common;
  const opts = schema['ui:options'] || {};
  const known = { refs: new Set(), extra: new Set() };
  const listId = `${common.id}-suggestions`;
  const { datalist, search } = entityOptions(ctx, 'MultiEntityPicker', opts, listId, known);
  const chosen = () => (Array.isArray(ctx.get(path)) ? ctx.get(path) : []);
  const input = h('input', { id: common.id, name: common.id, type: 'text', autocomplete: 'off', list: listId });
  applyUi(input, common);
  const add = () => {
    const value = input.value.trim();
    if (!value || chosen().includes(value)) return;
    if (opts.allowArbitraryValues === false && known.refs.size && !known.refs.has(value)) return;
    input.value = '';
    ctx.set(path, [...chosen(), value], { rerender: true, focusLast: common.id });
  };
  input.addEventListener('input', () => search(input.value));
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      add();
    }
  });
  const chips = h(
    'ul',
    { class: 'chips', 'aria-label': `Chosen: ${common.title}` },
    chosen().map((ref) =>
      h(
        'li',
        { class: 'chip' },
        h('span', { text: ref }),
        h('button', {
          type: 'button',
          class: 'secondary small',
          'aria-label': `Remove ${ref}`,
          text: '×',
          onClick: () => {
            const next = chosen().filter((r) => r !== ref);
            ctx.set(path, next.length ? next : undefined, { rerender: true, focusLast: common.id });
          },
        }),
      ),
    ),
  );
  const addButton = h('button', { type: 'button', class: 'secondary small', text: 'Add', onClick: add });
  const row = h('div', { class: 'chip-input' }, input, addButton);
  return { wrapper: wrap(common, labelFor(common), chips, row, datalist), focus: input };
}

function secretField(ctx, common) {
  const { path } = common;
  const input = h('input', { id: common.id, name: common.id, type: 'password', autocomplete: 'off' });
  input.value = ctx.secretGet(path) ?? '';
  applyUi(input, common);
  input.addEventListener('input', () => ctx.secretSet(path, input.value === '' ? undefined : input.value));
  return { wrapper: wrap(common, labelFor(common), input), focus: input };
}
