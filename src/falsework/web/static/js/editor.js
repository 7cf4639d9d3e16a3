// The template editor, for template authors (the templates:author role): start from a
// catalog template, a pasted YAML or an uploaded folder; as you type, the server validates
// the body (the messages of `falsework templates validate`, with lines) and the form's
// live preview follows; its last button dry-runs the template and shows the log and the
// files it made, each with its content.

import { api, ApiError } from './api.js';
import { ansiToFragment } from './ansi.js';
import { append, clear, h } from './dom.js';
import { renderTemplateForm } from './form.js';
import { markdownBlock } from './markdown.js';

const AUTHOR = 'templates:author';
const DELAY_MS = 400; // typing pause before the body is checked
const MAX_UPLOAD = 5_000_000;

const STARTER = `apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: my-template
  title: My template
  description: What it makes, in **Markdown**.
spec:
  owner: group:default/platform
  type: service
  parameters:
    - title: Basics
      required: [name]
      properties:
        name:
          title: Name
          type: string
          description: Lowercase letters, digits and dashes.
          pattern: '^[a-z][a-z0-9-]*$'
  steps:
    - id: write
      name: Write the catalog entry
      action: catalog:write
      input:
        entity:
          apiVersion: backstage.io/v1alpha1
          kind: Component
          metadata:
            name: \${{ parameters.name }}
          spec:
            type: service
            lifecycle: experimental
            owner: group:default/platform
    - id: log
      name: Say hello
      action: debug:log
      input:
        message: Hello, \${{ parameters.name }}!
  output:
    text:
      - title: Done
        content: Made \`\${{ parameters.name }}\`.
`;

function toBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(text) {
  const binary = atob(text || '');
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), size: bytes.length };
  } catch {
    return { text: null, size: bytes.length };
  }
}

/** An `<li>` indented by its depth in the tree (set through CSSOM: the CSP allows no inline style). */
function depthOf(depth, child) {
  const li = h('li', {}, child);
  li.style.setProperty('--depth', String(depth));
  return li;
}

export async function renderEditor(main, { identity, query, navigate }) {
  const isAuthor = identity.admin || (identity.roles || []).includes(AUTHOR);
  if (!isAuthor) {
    clear(main).append(
      h('h1', { text: 'Template editor' }),
      h('p', {
        class: 'card',
        role: 'alert',
        text: `The editor is for template authors: it needs the ${AUTHOR} role (an admin grants it with auth.roles in the server's config).`,
      }),
    );
    return () => {};
  }
  const templates = await api.templates().catch(() => []);
  const state = {
    files: [], // [{path, base64Content, executable}] beside the template
    document: null, // the last body that parsed, as JSON
    schemaKey: '',
    preview: { schemaDoc: null, values: {}, page: 0, onSubmit: dryRun, submitLabel: 'Dry run' },
    timer: null,
    checking: 0,
  };

  // ----- controls ------------------------------------------------------------------------
  const yaml = h('textarea', {
    id: 'editor-yaml',
    class: 'code-input',
    rows: 28,
    spellcheck: 'false',
    autocomplete: 'off',
    'aria-describedby': 'editor-status',
  });
  const status = h('p', { id: 'editor-status', class: 'muted', 'aria-live': 'polite' });
  const filesNote = h('p', { class: 'muted files-note' });
  const problems = h('ul', { class: 'problems', 'aria-label': 'Problems' });
  const previewBox = h('div', { class: 'editor-preview', id: 'editor-preview' });
  const result = h('section', { class: 'card dry-run', 'aria-labelledby': 'dry-run-title', hidden: true });
  const pick = h(
    'select',
    { id: 'editor-catalog' },
    h('option', { value: '', text: 'A catalog template…' }),
    templates.map((t) => h('option', { value: t.ref, text: `${t.title || t.name} (${t.ref})` })),
  );
  const upload = h('input', { id: 'editor-folder', type: 'file', webkitdirectory: true, multiple: true });

  pick.addEventListener('change', () => pick.value && loadCatalog(pick.value));
  upload.addEventListener('change', () => loadFolder([...upload.files]));
  yaml.addEventListener('input', () => {
    clearTimeout(state.timer);
    state.timer = setTimeout(check, DELAY_MS);
  });

  clear(main).append(
    h(
      'div',
      { class: 'page-head' },
      h('h1', { text: 'Template editor' }),
      h('p', {
        class: 'muted',
        text: 'Start from a catalog template, paste a template.yaml, or upload a template folder. The form follows as you type; its last button dry-runs the template: nothing is published.',
      }),
    ),
    h(
      'div',
      { class: 'filters' },
      h('div', { class: 'filter' }, h('label', { for: 'editor-catalog', text: 'Start from' }), pick),
      h('div', { class: 'filter' }, h('label', { for: 'editor-folder', text: 'Upload a template folder' }), upload),
    ),
    h(
      'div',
      { class: 'editor' },
      h(
        'section',
        { class: 'card editor-source' },
        h('label', { id: 'editor-yaml-label', for: 'editor-yaml', text: 'template.yaml' }),
        yaml,
        status,
        filesNote,
      ),
      h(
        'div',
        { class: 'editor-side' },
        h('section', { class: 'card', 'aria-labelledby': 'problems-title' }, h('h2', { id: 'problems-title', text: 'Problems' }), problems),
        h('section', { class: 'card', 'aria-labelledby': 'preview-title' }, h('h2', { id: 'preview-title', text: 'Form preview' }), previewBox),
      ),
    ),
    result,
  );

  // ----- sources ---------------------------------------------------------------------------
  function setSource(text, files) {
    yaml.value = text;
    state.files = files;
    state.preview.values = {};
    state.preview.page = 0;
    state.schemaKey = '';
    filesNote.textContent = files.length ? `With ${files.length} file(s) beside it: ${files.slice(0, 5).map((f) => f.path).join(', ')}${files.length > 5 ? ', …' : ''}` : '';
    result.hidden = true;
    check();
  }

  async function loadCatalog(ref) {
    const [, rest] = ref.split(':');
    const [ns, name] = rest.split('/');
    try {
      const source = await api.templateSource(ns, name);
      setSource(source.template, source.directoryContents || []);
      status.textContent = `Loaded ${ref}.`;
    } catch (err) {
      status.textContent = `Could not load ${ref}: ${err.message}`;
    }
  }

  async function loadFolder(list) {
    const withPath = list.map((f) => ({ file: f, path: f.webkitRelativePath || f.name }));
    const total = withPath.reduce((n, f) => n + f.file.size, 0);
    if (total > MAX_UPLOAD) {
      status.textContent = `That folder is ${Math.round(total / 1e6)} MB: the editor takes up to ${MAX_UPLOAD / 1e6} MB.`;
      return;
    }
    const candidates = [];
    for (const f of withPath) {
      if (!/(^|\/)template\.ya?ml$/.test(f.path) && !/\.ya?ml$/.test(f.path)) continue;
      const text = await f.file.text();
      if (/^kind:\s*['"]?Template['"]?\s*$/m.test(text)) candidates.push({ ...f, text });
    }
    candidates.sort((a, b) => a.path.split('/').length - b.path.split('/').length);
    const chosen = candidates[0];
    if (!chosen) {
      status.textContent = 'No template in that folder (a YAML file with kind: Template).';
      return;
    }
    const base = chosen.path.includes('/') ? chosen.path.slice(0, chosen.path.lastIndexOf('/') + 1) : '';
    const files = [];
    for (const f of withPath) {
      if (f.path === chosen.path || !f.path.startsWith(base)) continue;
      const bytes = new Uint8Array(await f.file.arrayBuffer());
      files.push({ path: f.path.slice(base.length), base64Content: toBase64(bytes), executable: false });
    }
    setSource(chosen.text, files);
    status.textContent = `Loaded ${chosen.path} from the folder.`;
  }

  // ----- validation and preview ------------------------------------------------------------
  function goToLine(line) {
    const lines = yaml.value.split('\n');
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    yaml.focus();
    yaml.setSelectionRange(start, start + (lines[line - 1] || '').length);
    const lineHeight = Number.parseFloat(getComputedStyle(yaml).lineHeight) || 18;
    yaml.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  function showProblems(list) {
    clear(problems);
    if (!list.length) {
      problems.append(h('li', { class: 'ok', text: 'No problems: falsework templates validate accepts it.' }));
      return;
    }
    for (const p of list) {
      const where = `${p.file}${p.line ? `:${p.line}` : ''}${p.path ? ` ${p.path}` : ''}`;
      const item = h('li', { class: 'problem' }, h('code', { text: where }), ` ${p.message}`);
      if (p.line) {
        item.prepend(
          h('button', {
            type: 'button',
            class: 'secondary small',
            text: `Line ${p.line}`,
            'aria-label': `Go to line ${p.line}`,
            onClick: () => goToLine(p.line),
          }),
          ' ',
        );
      }
      problems.append(item);
    }
  }

  async function check() {
    const mine = ++state.checking;
    status.textContent = 'Checking…';
    let answer;
    try {
      answer = await api.validateTemplate({ template: yaml.value, directoryContents: state.files });
    } catch (err) {
      if (mine === state.checking) status.textContent = `Could not check it: ${err.message}`;
      return;
    }
    if (mine !== state.checking) return; // the author typed on: a newer check is coming
    status.textContent = answer.problems.length ? `${answer.problems.length} problem(s).` : 'Valid.';
    showProblems(answer.problems);
    if (answer.template) state.document = answer.template;
    if (answer.parameterSchema) {
      const key = JSON.stringify(answer.parameterSchema);
      if (key !== state.schemaKey) {
        state.schemaKey = key;
        state.preview.schemaDoc = answer.parameterSchema;
        const meta = answer.template?.metadata || {};
        await renderTemplateForm(previewBox, {
          namespace: meta.namespace || 'default',
          name: meta.name || 'preview',
          identity,
          navigate,
          preview: state.preview,
        });
      }
    }
  }

  // ----- dry run ---------------------------------------------------------------------------
  async function dryRun({ values, secrets }) {
    clear(result).append(h('h2', { id: 'dry-run-title', text: 'Dry run' }), h('p', { class: 'muted', text: 'Running…' }));
    result.hidden = false;
    const body = { template: state.document, values, directoryContents: state.files };
    if (Object.keys(secrets).length) body.secrets = secrets;
    let run;
    try {
      run = await api.dryRun(body);
    } catch (err) {
      // A step that failed answers with Backstage's status and error, plus the run so far.
      if (err instanceof ApiError && Array.isArray(err.body?.log)) {
        showRun(err.body);
        return;
      }
      const errors = err instanceof ApiError && Array.isArray(err.body?.errors) ? err.body.errors : [];
      append(clear(result), [
        h('h2', { id: 'dry-run-title', text: 'Dry run' }),
        h('p', { class: 'task-error', role: 'alert', text: `The dry run did not start: ${err.message}` }),
        errors.length ? h('ul', {}, errors.map((e) => h('li', { text: e.message || JSON.stringify(e) }))) : null,
      ]);
      return;
    }
    showRun(run);
  }

  function showRun(run) {
    const log = h('div', { class: 'log dry-run-log', role: 'log', tabindex: '0', 'aria-label': 'Dry-run log' });
    for (const entry of run.log || []) {
      const message = entry.body?.message;
      if (message !== undefined) log.append(h('div', { class: 'line' }, ansiToFragment(String(message))));
    }
    const files = [...(run.directoryContents || [])].sort((a, b) => a.path.localeCompare(b.path));
    const tree = h('ul', { class: 'file-tree', 'aria-label': 'Files' });
    for (const file of files) {
      const { text, size } = fromBase64(file.base64Content);
      const depth = file.path.split('/').length - 1;
      const name = file.path.split('/').pop();
      const folder = file.path.includes('/') ? file.path.slice(0, file.path.lastIndexOf('/') + 1) : '';
      tree.append(
        depthOf(
          depth,
          h(
            'details',
            {},
            h('summary', {}, h('span', { class: 'muted', text: folder }), h('strong', { text: name }), h('span', { class: 'muted', text: ` · ${size} B` })),
            text === null
              ? h('p', { class: 'muted', text: `Binary, ${size} bytes.` })
              : h('pre', { class: 'file-content', 'aria-label': `Content of ${file.path}`, text }),
          ),
        ),
      );
    }
    const texts = Array.isArray(run.output?.text) ? run.output.text : [];
    append(clear(result), [
      h('h2', { id: 'dry-run-title', text: 'Dry run' }),
      run.error
        ? h('p', { class: 'task-error', role: 'alert', text: `${run.error.name}: ${run.error.message}` })
        : h('p', { class: 'status status-completed', text: 'completed' }),
      h('h3', { text: 'Log' }),
      log,
      h('h3', { text: `Files (${files.length})` }),
      files.length ? tree : h('p', { class: 'muted', text: 'The workspace is empty.' }),
      h('h3', { text: 'Output' }),
      (run.output?.links || []).length
        ? h('ul', {}, run.output.links.map((l) => h('li', { text: `${l.title || ''} ${l.url || l.entityRef || ''}`.trim() })))
        : null,
      texts.map((t) => h('section', { class: 'output-text' }, h('h4', { text: t.title || 'Text' }), markdownBlock(String(t.content ?? '')))),
    ]);
    result.scrollIntoView({ block: 'nearest' });
  }

  // ----- start -----------------------------------------------------------------------------
  const wanted = query.get('template');
  if (wanted && templates.some((t) => t.ref === wanted)) {
    pick.value = wanted;
    await loadCatalog(wanted);
  } else if (wanted) {
    setSource(STARTER, []);
    status.textContent = `${wanted} is not in the catalog: starting from an example.`;
  } else setSource(STARTER, []);
  return () => clearTimeout(state.timer);
}
