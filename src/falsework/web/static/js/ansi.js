// ANSI SGR colour codes (as action loggers write them) to styled spans. Any other escape
// sequence is dropped. Text goes in as text nodes: nothing is parsed as HTML.

const BASIC = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];
// eslint-disable-next-line no-control-regex
const ESCAPES = /\u001b\[([0-9;]*)([A-Za-z])|\u001b[\]PX^_][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-Z\\-_]/g;

const PLAIN = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };

function color256(n) {
  if (n < 16) return { cls: `${n < 8 ? '' : 'bright-'}${BASIC[n % 8]}` };
  if (n < 232) {
    const v = n - 16;
    const c = (x) => (x === 0 ? 0 : 55 + x * 40);
    return { rgb: `rgb(${c(Math.floor(v / 36))}, ${c(Math.floor(v / 6) % 6)}, ${c(v % 6)})` };
  }
  const g = 8 + (n - 232) * 10;
  return { rgb: `rgb(${g}, ${g}, ${g})` };
}

function applyCodes(style, codes) {
  const list = codes.length ? codes : [0];
  for (let i = 0; i < list.length; i += 1) {
    const c = list[i];
    if (c === 0) Object.assign(style, PLAIN);
    else if (c === 1) style.bold = true;
    else if (c === 2) style.dim = true;
    else if (c === 3) style.italic = true;
    else if (c === 4) style.underline = true;
    else if (c === 22) Object.assign(style, { bold: false, dim: false });
    else if (c === 23) style.italic = false;
    else if (c === 24) style.underline = false;
    else if (c >= 30 && c <= 37) style.fg = { cls: BASIC[c - 30] };
    else if (c >= 90 && c <= 97) style.fg = { cls: `bright-${BASIC[c - 90]}` };
    else if (c === 39) style.fg = null;
    else if (c >= 40 && c <= 47) style.bg = { cls: BASIC[c - 40] };
    else if (c >= 100 && c <= 107) style.bg = { cls: `bright-${BASIC[c - 100]}` };
    else if (c === 49) style.bg = null;
    else if ((c === 38 || c === 48) && list[i + 1] === 5) {
      style[c === 38 ? 'fg' : 'bg'] = color256(list[i + 2] ?? 0);
      i += 2;
    } else if ((c === 38 || c === 48) && list[i + 1] === 2) {
      const [r, g, b] = list.slice(i + 2, i + 5).map((x) => Math.max(0, Math.min(255, x ?? 0)));
      style[c === 38 ? 'fg' : 'bg'] = { rgb: `rgb(${r}, ${g}, ${b})` };
      i += 4;
    }
  }
}

function span(text, style) {
  const plain = !style.fg && !style.bg && !style.bold && !style.dim && !style.italic && !style.underline;
  if (plain) return document.createTextNode(text);
  const el = document.createElement('span');
  const classes = [];
  if (style.fg?.cls) classes.push(`ansi-fg-${style.fg.cls}`);
  if (style.bg?.cls) classes.push(`ansi-bg-${style.bg.cls}`);
  if (style.bold) classes.push('ansi-bold');
  if (style.dim) classes.push('ansi-dim');
  if (style.italic) classes.push('ansi-italic');
  if (style.underline) classes.push('ansi-underline');
  if (classes.length) el.className = classes.join(' ');
  if (style.fg?.rgb) el.style.color = style.fg.rgb;
  if (style.bg?.rgb) el.style.backgroundColor = style.bg.rgb;
  el.textContent = text;
  return el;
}

/** A fragment rendering `text` with its colours; the escape codes themselves are removed. */
export function ansiToFragment(text) {
  const fragment = document.createDocumentFragment();
  const style = { ...PLAIN };
  let last = 0;
  for (const match of String(text).matchAll(ESCAPES)) {
    if (match.index > last) fragment.append(span(text.slice(last, match.index), style));
    if (match[2] === 'm') {
      const codes = match[1] === '' ? [] : match[1].split(';').map((x) => Number.parseInt(x || '0', 10));
      applyCodes(style, codes);
    }
    last = match.index + match[0].length;
  }
  if (last < text.length) fragment.append(span(text.slice(last), style));
  return fragment;
}
