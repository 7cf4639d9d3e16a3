// The template gallery: a card per template, a search box and a tag filter (kept in the URL).
// Templates tagged `recommended` come first, then by title. A broken template (one the
// server's `templates validate` checks reject) reaches only authors and admins: its card
// says so, lists the problems and links to the editor instead of the form.

import { api } from './api.js';
import { clear, h } from './dom.js';
import { markdownBlock } from './markdown.js';

function matches(t, words) {
  const hay = [t.title, t.name, t.description, t.owner, t.type, ...(t.tags || [])].join(' ').toLowerCase();
  return words.every((w) => hay.includes(w));
}

const byRecommendedThenTitle = (a, b) => {
  const rec = (t) => ((t.tags || []).includes('recommended') ? 0 : 1);
  const title = (t) => (t.title || t.name || '').toLowerCase();
  return rec(a) - rec(b) || title(a).localeCompare(title(b)) || a.ref?.localeCompare(b.ref);
};

function problemText(p) {
  const where = [p.file, p.line].filter((x) => x !== null && x !== undefined && x !== '').join(':');
  return `${where}${p.path ? ` ${p.path}` : ''}: ${p.message}`;
}

export async function renderGallery(main, { query, replaceQuery }) {
  const templates = (await api.templates()).sort(byRecommendedThenTitle);
  const tags = [...new Set(templates.flatMap((t) => t.tags || []))].sort();
  const search = h('input', {
    id: 'template-search',
    type: 'search',
    placeholder: 'Title, description, tag, owner',
    autocomplete: 'off',
  });
  search.value = query.get('q') || '';
  const tagSelect = h(
    'select',
    { id: 'template-tag' },
    h('option', { value: '', text: 'All tags' }),
    tags.map((t) => h('option', { value: t, text: t })),
  );
  tagSelect.value = tags.includes(query.get('tag')) ? query.get('tag') : '';
  const grid = h('ul', { class: 'gallery', 'aria-label': 'Templates' });
  const count = h('p', { class: 'muted count', 'aria-live': 'polite' });

  function tagButton(tag) {
    const choose = () => {
      tagSelect.value = tag;
      update();
    };
    const label = `Show templates tagged ${tag}`;
    return h('button', { type: 'button', class: 'tag', 'aria-label': label, text: tag, onClick: choose });
  }

  function card(t) {
    const ns = t.namespace || 'default';
    const href = `/create/templates/${encodeURIComponent(ns)}/${encodeURIComponent(t.name)}`;
    const headingId = `tpl-${ns}-${t.name}`.replace(/[^A-Za-z0-9_-]/g, '_');
    const ref = t.ref || `template:${ns}/${t.name}`;
    const problems = t.broken
      ? h(
          'div',
          { class: 'broken-problems', role: 'note' },
          h('p', { text: 'This template is broken: users do not see it until it is fixed.' }),
          h('ul', {}, (t.problems || []).map((p) => h('li', {}, h('code', { text: problemText(p) })))),
        )
      : null;
    const action = t.broken
      ? h('a', {
          class: 'button-link secondary choose',
          href: `/edit?template=${encodeURIComponent(ref)}`,
          'data-link': true,
          'aria-label': `Fix ${t.title || t.name} in the editor`,
          text: 'Fix in the editor',
        })
      : h('a', {
          class: 'button-link primary choose',
          href,
          'data-link': true,
          'aria-label': `Choose ${t.title || t.name}`,
          text: 'Choose',
        });
    return h(
      'li',
      { class: `card template-card${t.broken ? ' broken' : ''}`, 'aria-labelledby': headingId },
      h(
        'div',
        { class: 'card-top' },
        t.type ? h('span', { class: 'type', text: t.type }) : null,
        t.broken ? h('span', { class: 'badge badge-broken', text: 'broken' }) : null,
      ),
      h('h2', { id: headingId, text: t.title || t.name }),
      markdownBlock(t.description || '', 'description'),
      problems,
      (t.tags || []).length
          ? h('ul', { class: 'tags', 'aria-label': 'Tags' }, t.tags.map((tag) => h('li', {}, tagButton(tag))))
        : null,
      h('p', { class: 'owner muted' }, t.owner ? `Owner: ${t.owner}` : ''),
      action,
    );
  }

  function update() {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const tag = tagSelect.value;
    const shown = templates.filter((t) => matches(t, words) && (!tag || (t.tags || []).includes(tag)));
    clear(grid).append(...shown.map(card));
    count.textContent =
      templates.length === 0
        ? 'No templates are loaded. Add a folder with FALSEWORK_TEMPLATES.'
        : `${shown.length} of ${templates.length} templates`;
    replaceQuery({ q: search.value || null, tag: tag || null });
  }

  search.addEventListener('input', update);
  tagSelect.addEventListener('change', update);
  clear(main).append(
    h(
      'div',
      { class: 'page-head' },
      h('h1', { text: 'Create something new' }),
      h('p', { class: 'muted', text: 'Choose a template: fill in its form and a task builds it.' }),
    ),
    h(
      'div',
      { class: 'filters', role: 'search' },
      h('div', { class: 'filter' }, h('label', { for: 'template-search', text: 'Search' }), search),
      h('div', { class: 'filter' }, h('label', { for: 'template-tag', text: 'Tag' }), tagSelect),
    ),
    count,
    grid,
  );
  update();
  return () => {};
}
