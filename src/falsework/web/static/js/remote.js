// A repository on the server's own disk (publish:git to a folder, `file://`, a path) is
// not a web page: a link to it would be a 404 relative to this page. It is shown as the
// `git clone` command to copy instead; ssh remotes (`git@host:x.git`, `ssh://`) too.

import { h } from './dom.js';

const WEB = /^(https?|mailto):/i;

/** `{remote, branch}` for a link to a repository that is not a web page, else null. */
export function localRemote(url) {
  if (typeof url !== 'string') return null;
  const value = url.trim();
  if (!value || WEB.test(value)) return null;
  const hash = value.indexOf('#');
  const remote = hash === -1 ? value : value.slice(0, hash);
  const branch = hash === -1 ? '' : value.slice(hash + 1);
  const isPath = /^(\/|~\/|\.\.?\/|[A-Za-z]:[\\/])/.test(remote);
  const isGitUrl = /^(file|ssh|git):\/\//i.test(remote) || /^[\w.-]+@[\w.-]+:/.test(remote);
  if (!isPath && !isGitUrl) return null;
  return { remote, branch };
}

function shellQuote(text) {
  return /^[\w@%+=:,./~-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

export function cloneText({ remote, branch }) {
  const b = branch && /^[\w./-]+$/.test(branch) ? `-b ${shellQuote(branch)} ` : '';
  return `git clone ${b}${shellQuote(remote)}`;
}

/** A titled, copyable `git clone …` command for `{remote, branch}`. */
export function cloneCommand(title, target) {
  const text = cloneText(target);
  const code = h('code', { class: 'clone-command', text });
  const status = h('span', { class: 'muted copy-status', 'aria-live': 'polite' });
  const copy = h('button', {
    type: 'button',
    class: 'secondary small',
    text: 'Copy',
    'aria-label': `Copy the command to clone ${title || 'the repository'}`,
    onClick: async () => {
      try {
        await navigator.clipboard.writeText(text);
        status.textContent = 'Copied';
      } catch {
        // no clipboard (an insecure origin): select the command for Ctrl+C
        const range = document.createRange();
        range.selectNodeContents(code);
        window.getSelection().removeAllRanges();
        window.getSelection().addRange(range);
        status.textContent = 'Selected: press Ctrl+C';
      }
    },
  });
  return h(
    'div',
    { class: 'clone' },
    h('span', { class: 'clone-title', text: `${title || 'Repository'}: ` }),
    code,
    copy,
    status,
  );
}
