// Markdown for template descriptions, parameter help and output text, as Backstage renders
// them. markdown-it (MIT, vendored as one ES module in ../vendor/, no network) with raw HTML
// off: `<script>` or `<img onerror>` in a template is shown as text. Its link check
// refuses javascript:, vbscript:, file: and data: URLs. On top of that, what it produced is
// rebuilt here from an allow-list of elements and attributes, so nothing else can reach
// the page even if a future version let it through; links open in a new tab without
// the opener, and images become links (the page's CSP loads no image from elsewhere).

import markdownit from '../vendor/markdown-it.js';

const md = markdownit({ html: false, linkify: true, typographer: false, breaks: false });

const ELEMENTS = new Set([
  'a', 'p', 'br', 'hr', 'em', 'strong', 's', 'code', 'pre', 'blockquote', 'ul', 'ol', 'li',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'table', 'thead', 'tbody', 'tr', 'th', 'td',
]);
// (a table cell's alignment comes as a style attribute, which the CSP refuses: a class instead)
const ATTRIBUTES = { a: ['href', 'title'], ol: ['start'], th: ['style'], td: ['style'], code: ['class'] };
const SCHEMES = new Set(['http:', 'https:', 'mailto:']);

/** The URL a link may point to, or null: web and mail links only, anchors on this page. */
export function safeHref(raw) {
  if (typeof raw !== 'string') return null;
  const value = raw.trim();
  if (value.startsWith('#')) return value;
  try {
    const url = new URL(value, window.location.href);
    if (!SCHEMES.has(url.protocol)) return null;
    return url.href;
  } catch {
    return null;
  }
}

function copyClean(node, into) {
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) {
      into.append(document.createTextNode(child.textContent));
      continue;
    }
    if (child.nodeType !== Node.ELEMENT_NODE) continue;
    const tag = child.tagName.toLowerCase();
    if (tag === 'img') {
      // an image becomes a link to it, labelled with its alt text
      const href = safeHref(child.getAttribute('src'));
      const label = child.getAttribute('alt') || child.getAttribute('src') || 'image';
      if (href) {
        const a = document.createElement('a');
        a.href = href;
        a.textContent = label;
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        into.append(a);
      } else into.append(document.createTextNode(label));
      continue;
    }
    if (!ELEMENTS.has(tag)) {
      copyClean(child, into); // keep the text, drop the element
      continue;
    }
    const el = document.createElement(tag);
    for (const name of ATTRIBUTES[tag] || []) {
      const value = child.getAttribute(name);
      if (value === null) continue;
      if (name === 'style') {
        const align = /^text-align:(left|right|center)$/.exec(value);
        if (align) el.classList.add(`align-${align[1]}`);
        continue;
      }
      if (name === 'class' && !/^language-[\w+-]+$/.test(value)) continue;
      if (name === 'href') {
        const href = safeHref(value);
        if (href === null) continue;
        el.setAttribute('href', href);
        if (!href.startsWith('#')) {
          el.target = '_blank';
          el.rel = 'noopener noreferrer';
        }
      } else el.setAttribute(name, value);
    }
    if (tag === 'code' && node.nodeName?.toLowerCase() !== 'pre') {
      // inline code breaks between words only, never inside one (`--values`, a path)
      for (const part of child.textContent.split(/(\s+)/)) {
        if (!part) continue;
        if (/^\s+$/.test(part)) el.append(document.createTextNode(part));
        else el.append(Object.assign(document.createElement('span'), { className: 'nowrap', textContent: part }));
      }
    } else copyClean(child, el);
    into.append(el);
  }
  return into;
}

/** A DocumentFragment of `text` rendered as Markdown (block level). */
export function markdownFragment(text, { inline = false } = {}) {
  const source = typeof text === 'string' ? text : String(text ?? '');
  const html = inline ? md.renderInline(source) : md.render(source);
  // a <template>'s content is inert: nothing in it runs or loads while it is parsed
  const holder = document.createElement('template');
  holder.innerHTML = html;
  return copyClean(holder.content, document.createDocumentFragment());
}

/** A `<div class="markdown ...">` with `text` rendered, or null for empty text. */
export function markdownBlock(text, cls = '', attrs = {}) {
  if (text === undefined || text === null || String(text).trim() === '') return null;
  const div = document.createElement('div');
  div.className = `markdown ${cls}`.trim();
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) div.setAttribute(k, v);
  div.append(markdownFragment(text));
  return div;
}
