// JSON Schema for the form: a validator (draft 7 / 2020-12 keywords that templates use),
// the "effective" schema of an object for the current values (allOf, dependencies and
// if/then/else merged in, which decides which fields are shown), defaults and pruning.
// The server validates the same values with Python's `jsonschema`; the messages differ,
// the rules do not.

/** Strict deep equality for JSON values (enum, const, uniqueItems). */
export function jsonEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
}

export function clone(value) {
  return value === undefined ? undefined : structuredClone(value);
}

export function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Follow a local `$ref` (`#/definitions/x`, `#/$defs/x`) against `root`. */
export function deref(schema, root) {
  let current = schema;
  const seen = new Set();
  while (isObject(current) && typeof current.$ref === 'string' && !seen.has(current.$ref)) {
    seen.add(current.$ref);
    const ref = current.$ref;
    if (!ref.startsWith('#')) break;
    let target = root;
    for (const raw of ref.slice(1).split('/').filter(Boolean)) {
      const part = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
      target = target?.[part];
    }
    if (!isObject(target)) break;
    const { $ref: _ignored, ...rest } = current;
    current = { ...target, ...rest };
  }
  return current;
}

export function typeOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value; // string, boolean, object
}

function matchesType(value, type) {
  const actual = typeOf(value);
  if (type === 'number') return actual === 'number' || actual === 'integer';
  return actual === type;
}

// Exactly the formats the server's `jsonschema` FORMAT_CHECKER enforces (draft 7, with no
// optional format packages installed): checking more here would refuse values the server
// accepts. Other formats (uri, hostname, date-time, ...) only choose the input's type.
function isIpv4(s) {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

function isIpv6(s) {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || s.split('::').length > 2) return false;
  let groups = s.split(':');
  let needed = 8;
  if (groups[groups.length - 1].includes('.')) {
    if (!isIpv4(groups.pop())) return false;
    needed = 6;
  }
  if (s.includes('::')) {
    const [head, tail] = s.split('::');
    groups = [...(head ? head.split(':') : []), ...(tail ? tail.split(':') : [])];
    if (groups.length > 0 && groups[groups.length - 1].includes('.')) groups.pop();
    return groups.length < needed && groups.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g));
  }
  return groups.length === needed && groups.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g));
}

function isDate(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return y >= 1 && date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

function isRegex(s) {
  try {
    new RegExp(s); // eslint-disable-line no-new
    return true;
  } catch {
    return false;
  }
}

const FORMAT_NAMES = {
  email: 'an email address',
  'idn-email': 'an email address',
  date: 'a date (YYYY-MM-DD)',
  ipv4: 'an IPv4 address',
  ipv6: 'an IPv6 address',
  regex: 'a regular expression',
};

const FORMATS = {
  email: (s) => s.includes('@'),
  'idn-email': (s) => s.includes('@'),
  date: isDate,
  ipv4: isIpv4,
  ipv6: isIpv6,
  regex: isRegex,
};

const regexCache = new Map();
function regex(pattern) {
  if (!regexCache.has(pattern)) {
    let re = null;
    try {
      re = new RegExp(pattern, 'u');
    } catch {
      try {
        re = new RegExp(pattern);
      } catch {
        re = null; // an invalid pattern is the template author's problem; the server says so
      }
    }
    regexCache.set(pattern, re);
  }
  return regexCache.get(pattern);
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function describe(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Validate `value` against `schema`. Returns `[{path, message, keyword}]`, `path` being
 * the list of keys / indexes to the failing value (for `required`, the missing key).
 */
export function validate(schema, value, root = schema, path = []) {
  const errors = [];
  check(schema, value, root, path, errors);
  return errors;
}

function check(rawSchema, value, root, path, errors) {
  if (rawSchema === true || rawSchema === undefined) return;
  if (rawSchema === false) {
    errors.push({ path, keyword: 'false', message: 'No value is allowed here.' });
    return;
  }
  const schema = deref(rawSchema, root);
  if (!isObject(schema)) return;
  const push = (keyword, message, at = path) => errors.push({ path: at, keyword, message });

  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => matchesType(value, t))) {
      const names = types.map((t) => (t === 'integer' ? 'a whole number' : t === 'array' ? 'a list' : `a ${t}`));
      push('type', `Must be ${names.join(' or ')}.`);
      return; // the other keywords would only repeat the same problem
    }
  }
  if (schema.enum !== undefined && !schema.enum.some((e) => jsonEqual(e, value))) {
    push('enum', `Must be one of: ${schema.enum.map(describe).join(', ')}.`);
  }
  if (schema.const !== undefined && !jsonEqual(schema.const, value)) {
    push('const', `Must be ${describe(schema.const)}.`);
  }

  if (typeof value === 'string') checkString(schema, value, push);
  if (typeof value === 'number') checkNumber(schema, value, push);
  if (Array.isArray(value)) checkArray(schema, value, root, path, errors, push);
  if (isObject(value)) checkObject(schema, value, root, path, errors, push);

  for (const sub of schema.allOf || []) check(sub, value, root, path, errors);
  if (Array.isArray(schema.anyOf) && !schema.anyOf.some((s) => validate(s, value, root).length === 0)) {
    push('anyOf', 'Must match at least one of the allowed forms.');
  }
  if (Array.isArray(schema.oneOf)) {
    const matching = schema.oneOf.filter((s) => validate(s, value, root).length === 0).length;
    if (matching !== 1) push('oneOf', 'Must match exactly one of the allowed forms.');
  }
  if (schema.not !== undefined && validate(schema.not, value, root).length === 0) {
    push('not', 'This value is not allowed.');
  }
  if (schema.if !== undefined) {
    const branch = validate(schema.if, value, root).length === 0 ? schema.then : schema.else;
    if (branch !== undefined) check(branch, value, root, path, errors);
  }
}

function checkString(schema, value, push) {
  const length = [...value].length;
  if (schema.minLength !== undefined && length < schema.minLength) {
    const least = `Must be at least ${plural(schema.minLength, 'character')}.`;
    push('minLength', schema.minLength === 1 ? 'Must not be empty.' : least);
  }
  if (schema.maxLength !== undefined && length > schema.maxLength) {
    push('maxLength', `Must be at most ${plural(schema.maxLength, 'character')}.`);
  }
  if (typeof schema.pattern === 'string') {
    const re = regex(schema.pattern);
    if (re && !re.test(value)) {
      // the author's words for the rule, when the schema has them, before the regex
      const words = schema['ui:help'] || schema.description;
      const said = typeof words === 'string' && words.trim() ? words.trim().replace(/[.\s]*$/, '') : null;
      push('pattern', said ? `Not in the expected form: ${said}.` : `Must match the pattern ${schema.pattern}`);
    }
  }
  if (typeof schema.format === 'string' && FORMATS[schema.format] && !FORMATS[schema.format](value)) {
    push('format', `Must be ${FORMAT_NAMES[schema.format]}.`);
  }
}

function checkNumber(schema, value, push) {
  // draft 7: exclusiveMinimum / exclusiveMaximum are numbers of their own
  if (typeof schema.minimum === 'number' && value < schema.minimum) {
    push('minimum', `Must be at least ${schema.minimum}.`);
  }
  if (typeof schema.maximum === 'number' && value > schema.maximum) {
    push('maximum', `Must be at most ${schema.maximum}.`);
  }
  if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) {
    push('exclusiveMinimum', `Must be greater than ${schema.exclusiveMinimum}.`);
  }
  if (typeof schema.exclusiveMaximum === 'number' && value >= schema.exclusiveMaximum) {
    push('exclusiveMaximum', `Must be less than ${schema.exclusiveMaximum}.`);
  }
  if (typeof schema.multipleOf === 'number' && schema.multipleOf > 0) {
    const q = value / schema.multipleOf;
    if (Math.abs(q - Math.round(q)) > 1e-9) push('multipleOf', `Must be a multiple of ${schema.multipleOf}.`);
  }
}

function checkArray(schema, value, root, path, errors, push) {
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    push('minItems', `Choose or add at least ${plural(schema.minItems, 'item')}.`);
  }
  if (schema.maxItems !== undefined && value.length > schema.maxItems) {
    push('maxItems', `At most ${plural(schema.maxItems, 'item')} allowed.`);
  }
  if (schema.uniqueItems === true) {
    const dup = value.some((x, i) => value.slice(0, i).some((y) => jsonEqual(x, y)));
    if (dup) push('uniqueItems', 'Must not contain the same item twice.');
  }
  // a tuple: `prefixItems` (2020-12, then `items` for the rest) or an `items` list (draft 7,
  // then `additionalItems`)
  const itemsList = Array.isArray(schema.items);
  const tuple = Array.isArray(schema.prefixItems) ? schema.prefixItems : itemsList ? schema.items : null;
  const rest = itemsList ? schema.additionalItems : schema.items;
  value.forEach((item, i) => {
    const sub = tuple && i < tuple.length ? tuple[i] : rest;
    if (sub !== undefined) check(sub, item, root, [...path, i], errors);
  });
  if (schema.contains !== undefined && !value.some((item) => validate(schema.contains, item, root).length === 0)) {
    push('contains', 'Must contain at least one matching item.');
  }
}

function checkObject(schema, value, root, path, errors, push) {
  for (const key of schema.required || []) {
    if (value[key] === undefined) push('required', 'This field is required.', [...path, key]);
  }
  const keys = Object.keys(value).filter((k) => value[k] !== undefined);
  if (schema.minProperties !== undefined && keys.length < schema.minProperties) {
    push('minProperties', `Needs at least ${plural(schema.minProperties, 'entry')}.`);
  }
  if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) {
    push('maxProperties', `At most ${plural(schema.maxProperties, 'entry')} allowed.`);
  }
  const props = schema.properties || {};
  const patterns = Object.entries(schema.patternProperties || {});
  for (const key of keys) {
    let known = false;
    if (Object.hasOwn(props, key)) {
      known = true;
      check(props[key], value[key], root, [...path, key], errors);
    }
    for (const [pattern, sub] of patterns) {
      if (regex(pattern)?.test(key)) {
        known = true;
        check(sub, value[key], root, [...path, key], errors);
      }
    }
    if (!known && schema.additionalProperties !== undefined) {
      if (schema.additionalProperties === false) push('additionalProperties', `Unexpected field "${key}".`);
      else check(schema.additionalProperties, value[key], root, [...path, key], errors);
    }
  }
  const requiredDeps = { ...(schema.dependentRequired || {}) };
  const schemaDeps = { ...(schema.dependentSchemas || {}) };
  for (const [key, dep] of Object.entries(schema.dependencies || {})) {
    if (Array.isArray(dep)) requiredDeps[key] = dep;
    else schemaDeps[key] = dep;
  }
  for (const [key, needed] of Object.entries(requiredDeps)) {
    if (value[key] === undefined) continue;
    for (const other of needed) {
      if (value[other] === undefined) push('dependencies', 'This field is required.', [...path, other]);
    }
  }
  for (const [key, sub] of Object.entries(schemaDeps)) {
    if (value[key] !== undefined) checkDependency(key, deref(sub, root), value, root, path, errors);
  }
}

// A dependency's `oneOf` (RJSF's way to show fields for a choice) fails as a whole; when it
// does, report the errors of the branch the triggering field selects ("Environment is
// required"), which is what the form shows. The verdict is the same as plain `oneOf`.
function checkDependency(key, sub, value, root, path, errors) {
  if (!isObject(sub) || !Array.isArray(sub.oneOf)) {
    check(sub, value, root, path, errors);
    return;
  }
  const { oneOf, ...rest } = sub;
  check(rest, value, root, path, errors);
  const matching = oneOf.filter((b) => validate(b, value, root).length === 0).length;
  if (matching === 1) return;
  const chosen = oneOf.find((b) => {
    const trigger = deref(b, root)?.properties?.[key];
    return trigger !== undefined && validate(trigger, value[key], root).length === 0;
  });
  const specific = chosen ? validate(chosen, value, root, path) : [];
  if (specific.length) errors.push(...specific);
  else errors.push({ path, keyword: 'oneOf', message: 'Must match exactly one of the allowed forms.' });
}

// ---------------------------------------------------------------------------------------
// The effective schema of an object: what the form shows for the current values.

const CONDITIONAL = new Set(['allOf', 'oneOf', 'anyOf', 'if', 'then', 'else', 'dependencies']);

function mergeInto(base, extra) {
  const out = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    if (key === 'properties') {
      const props = { ...(out.properties || {}) };
      for (const [name, sub] of Object.entries(value)) {
        props[name] = isObject(props[name]) && isObject(sub) ? mergeInto(props[name], sub) : sub;
      }
      out.properties = props;
    } else if (key === 'required') {
      out.required = [...new Set([...(out.required || []), ...value])];
    } else if (CONDITIONAL.has(key)) {
      // conditional parts are resolved by effectiveSchema, not copied
    } else if (out[key] === undefined) {
      out[key] = value;
    }
  }
  return out;
}

/**
 * The object schema to render for `value`: `allOf` merged, the branch of each
 * `dependencies` / `if` that applies merged in, `$ref`s followed. Property order:
 * declared first, then the ones that conditions add.
 */
export function effectiveSchema(rawSchema, value, root) {
  const schema = deref(rawSchema, root);
  if (!isObject(schema)) return {};
  const obj = isObject(value) ? value : {};
  const { allOf, dependencies, if: cond, then: thenSchema, else: elseSchema, ...rest } = schema;
  let out = { ...rest };
  for (const sub of allOf || []) out = mergeInto(out, effectiveSchema(sub, obj, root));
  for (const [key, dep] of Object.entries(dependencies || {})) {
    if (obj[key] === undefined) continue;
    if (Array.isArray(dep)) {
      out = mergeInto(out, { required: dep });
      continue;
    }
    const resolved = deref(dep, root);
    if (Array.isArray(resolved.oneOf)) {
      // RJSF style: the branch whose own schema of `key` accepts the current value
      const branch = resolved.oneOf.find((b) => {
        const sub = deref(b, root)?.properties?.[key];
        return sub !== undefined && validate(sub, obj[key], root).length === 0;
      });
      if (branch) {
        const b = deref(branch, root);
        const props = { ...(b.properties || {}) };
        delete props[key];
        out = mergeInto(out, effectiveSchema({ ...b, properties: props }, obj, root));
      }
      const { oneOf: _o, ...plain } = resolved;
      out = mergeInto(out, effectiveSchema(plain, obj, root));
    } else {
      out = mergeInto(out, effectiveSchema(resolved, obj, root));
    }
  }
  if (cond !== undefined) {
    const branch = validate(cond, obj, root).length === 0 ? thenSchema : elseSchema;
    if (branch !== undefined) out = mergeInto(out, effectiveSchema(branch, obj, root));
  }
  return out;
}

/** The keys of an object schema in display order, honouring `ui:order` (with `*`). */
export function orderedKeys(schema) {
  const keys = Object.keys(schema.properties || {});
  const order = schema['ui:order'];
  if (!Array.isArray(order)) return keys;
  const listed = order.filter((k) => k !== '*' && keys.includes(k));
  const rest = keys.filter((k) => !listed.includes(k));
  const star = order.indexOf('*');
  if (star === -1) return [...listed, ...rest];
  const before = order.slice(0, star).filter((k) => keys.includes(k));
  const after = order.slice(star + 1).filter((k) => keys.includes(k));
  return [...before, ...rest, ...after];
}

/**
 * Fill in `default` and `const` values for fields that have no value yet. `skip` holds
 * paths (joined by '\u0000') the user cleared on purpose, which stay empty.
 */
export function applyDefaults(rawSchema, value, root, skip = new Set(), path = []) {
  const schema = effectiveSchema(rawSchema, value, root);
  const obj = isObject(value) ? value : {};
  for (const key of Object.keys(schema.properties || {})) {
    const sub = deref(schema.properties[key], root);
    const here = [...path, key];
    if (!isObject(sub) || skip.has(here.join('\u0000'))) continue;
    if (obj[key] === undefined && sub.const !== undefined) obj[key] = clone(sub.const);
    else if (obj[key] === undefined && sub.default !== undefined) obj[key] = clone(sub.default);
    const isObj = sub.type === 'object' || (sub.type === undefined && isObject(sub.properties));
    if (isObj && !sub['ui:field']) {
      const inner = isObject(obj[key]) ? obj[key] : {};
      applyDefaults(sub, inner, root, skip, here);
      if (Object.keys(inner).length > 0 || obj[key] !== undefined) obj[key] = inner;
    }
  }
  return obj;
}

/** A copy of `value` with only the fields the effective schema shows (recursively). */
export function prune(rawSchema, value, root) {
  if (!isObject(value)) return value;
  const schema = effectiveSchema(rawSchema, value, root);
  if (!isObject(schema.properties) || schema['ui:field']) return value;
  const out = {};
  for (const key of Object.keys(schema.properties)) {
    if (value[key] === undefined) continue;
    const sub = deref(schema.properties[key], root);
    out[key] = isObject(value[key]) && isObject(sub?.properties) ? prune(sub, value[key], root) : value[key];
  }
  if (schema.additionalProperties !== undefined && schema.additionalProperties !== false) {
    for (const [key, v] of Object.entries(value)) if (!(key in out)) out[key] = v;
  }
  return out;
}

/** A stable string describing which fields are shown; when it changes, re-render. */
export function shapeKey(rawSchema, value, root) {
  const schema = effectiveSchema(rawSchema, value, root);
  const parts = [];
  for (const key of orderedKeys(schema)) {
    const sub = deref(schema.properties[key], root);
    parts.push(key);
    if (isObject(sub) && (sub.type === 'object' || isObject(sub.properties)) && !sub['ui:field']) {
      parts.push(`{${shapeKey(sub, isObject(value) ? value[key] : undefined, root)}}`);
    }
    if ((schema.required || []).includes(key)) parts.push('!');
  }
  return parts.join(',');
}
