/**
 * Model cards as HTML: Markdown by `marked` with raw HTML escaped (shown as text), except the bare
 * <details>/<summary> tags git zoo's own cards use; links only to http(s), mailto, in-page anchors
 * and relative paths; the YAML front matter is shown as a code block.
 */
import { Marked } from 'marked'

const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
const TAGS = /&lt;(\/?)(details|summary)&gt;/g
const safeHref = (href: string): string | undefined => (/^(https?:|mailto:|#)/i.test(href) || !/^[a-z][a-z0-9+.-]*:/i.test(href) ? href : undefined)

const marked = new Marked({
  gfm: true,
  renderer: {
    html({ text }) { return escapeHtml(text).replace(TAGS, '<$1$2>') },
    link({ href, title, tokens }) {
      const inner = this.parser.parseInline(tokens)
      const ok = safeHref(href)
      if (!ok) return inner
      return `<a href="${escapeHtml(ok)}"${title ? ` title="${escapeHtml(title)}"` : ''} rel="noopener noreferrer">${inner}</a>`
    },
    image({ text }) { return `<span class="muted">[image: ${escapeHtml(text)}]</span>` },
  },
})

/** Card Markdown -> { front matter, HTML body }. */
export function renderCard(text: string): { front: string; html: string } {
  const m = /^---\n([\s\S]*?)\n---\n/.exec(text)
  const body = m ? text.slice(m[0].length) : text
  return { front: m ? m[1]! : '', html: marked.parse(body, { async: false }) }
}
