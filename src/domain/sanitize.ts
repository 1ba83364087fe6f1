import sanitizeHtml from 'sanitize-html';

/*
 * Server-side HTML sanitising of user message content (spec: messages-and-content.md,
 * "HTML sanitising"). The original used ammonia (html5ever); sanitize-html (htmlparser2)
 * is configured and lightly post-processed to reproduce its output for everything the
 * Tiptap editor can produce. Known differences on hostile/unusual markup are listed at
 * the bottom of this file.
 */

const ALLOWED_TAGS = [
  'p', 'br', 'strong', 'b', 'em', 'i', 'u', 's', 'strike',
  'a', 'ul', 'ol', 'li', 'blockquote', 'code', 'pre', 'span',
];

// lang/title are ammonia's generic defaults, which the original kept.
const GLOBAL_ATTRIBUTES = ['lang', 'title'];
const ALLOWED_ATTRIBUTES: Record<string, string[]> = {
  '*': GLOBAL_ATTRIBUTES,
  // rel is listed only so the value forced by the `a` transform survives the allowlist;
  // the client-supplied value never reaches it.
  a: ['href', 'target', 'rel'],
  span: ['data-type', 'data-id', 'data-label', 'data-mention', 'class'],
  code: ['class'],
  pre: ['class'],
};

// html5ever writes an empty attribute as `name=""`; without this sanitize-html would
// either drop it (for "non-boolean" names like title/href) or write a bare `name`.
const EMPTY_ATTRIBUTES_KEPT = [...new Set(Object.values(ALLOWED_ATTRIBUTES).flat())];

const LINK_REL = 'noopener noreferrer';

/*
 * Elements dropped together with their content are renamed to this tag and listed in
 * nonTextTags. htmlparser2 lower-cases every tag name it reads, so an upper-case name can
 * never collide with real input.
 */
const DROP_TAG = 'DROPPED-WITH-CONTENT';

/*
 * script/style: spec. textarea/xmp: htmlparser2 reads them as raw text and sanitize-html
 * then copies that text out UNESCAPED when the element is unwrapped
 * (`<xmp><script>…` would come back as a live `<script>`), so they must be dropped whole
 * even though ammonia would keep their text.
 */
const NON_TEXT_TAGS = ['script', 'style', 'textarea', 'xmp', DROP_TAG];

// HTML start tags that make an HTML5 parser leave SVG/MathML content (HTML spec, "parsing
// tokens in foreign content"), so they are HTML elements, not foreign ones.
const FOREIGN_BREAKOUT_TAGS = new Set([
  'b', 'big', 'blockquote', 'body', 'br', 'center', 'code', 'dd', 'div', 'dl', 'dt',
  'em', 'embed', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'head', 'hr', 'i', 'img', 'li',
  'listing', 'menu', 'meta', 'nobr', 'ol', 'p', 'pre', 'ruby', 's', 'small', 'span',
  'strong', 'strike', 'sub', 'sup', 'table', 'tt', 'u', 'ul', 'var',
]);

type Context = 'html' | 'svg' | 'math' | 'drop';

/*
 * Per-call parser state. sanitizeHtml() is synchronous and our callbacks never re-enter
 * it, so module-level state reset at the start of each call is safe and lets the options
 * object (and its callbacks) be built once.
 */
let contextStack: Context[] = [];
let dropCurrentTag = false;
let atPreStart = false;

function isBreakout(name: string, attribs: sanitizeHtml.Attributes): boolean {
  if (FOREIGN_BREAKOUT_TAGS.has(name)) return true;
  return name === 'font' && ('color' in attribs || 'face' in attribs || 'size' in attribs);
}

/*
 * ammonia unwraps <svg>/<math>, after which any descendant still in the SVG/MathML
 * namespace sits under an HTML parent, fails its namespace check and is removed with its
 * content. htmlparser2 has no namespaces, so we track foreign content ourselves.
 */
function onOpenTag(name: string, attribs: sanitizeHtml.Attributes): void {
  const parent = contextStack[contextStack.length - 1] ?? 'html';
  let ctx: Context;
  if (parent === 'html') {
    ctx = name === 'svg' ? 'svg' : name === 'math' ? 'math' : 'html';
  } else if (parent === 'drop') {
    ctx = 'drop';
  } else if (isBreakout(name, attribs)) {
    ctx = 'html';
  } else if (name === parent) {
    // A nested <svg> in SVG (or <math> in MathML) passes ammonia's namespace check and is
    // merely unwrapped like the outer one.
    ctx = parent;
  } else {
    ctx = 'drop';
  }
  contextStack.push(ctx);
  // Only the outermost dropped element needs renaming: nonTextTags skips everything inside.
  dropCurrentTag = ctx === 'drop' && parent !== 'drop';
  atPreStart = name === 'pre';
}

function onCloseTag(): void {
  contextStack.pop();
  atPreStart = false;
}

// HTML5 tree construction replaces U+0000 in attribute values with U+FFFD.
const NUL = /\u0000/g;

function transformAny(tagName: string, attribs: sanitizeHtml.Attributes): sanitizeHtml.Tag {
  if (dropCurrentTag) {
    dropCurrentTag = false;
    return { tagName: DROP_TAG, attribs: {} };
  }
  for (const key of Object.keys(attribs)) {
    const value = attribs[key];
    if (value.includes('\u0000')) attribs[key] = value.replace(NUL, '\uFFFD');
  }
  return { tagName, attribs };
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
// What the URL Standard (and Rust's url crate) strips before parsing.
const URL_OUTER_JUNK = /^[\u0000-\u0020]+|[\u0000-\u0020]+$/g;
const URL_INNER_JUNK = /[\t\n\r]/g;

/*
 * Mirrors ammonia with UrlRelative::PassThrough: no scheme means a relative reference
 * (kept as is), otherwise the URL must parse and be http(s). sanitize-html's own scheme
 * check (allowedSchemes) still runs afterwards and can only remove more.
 */
function isAllowedHref(href: string): boolean {
  const normalised = href.replace(URL_OUTER_JUNK, '').replace(URL_INNER_JUNK, '');
  if (!SCHEME.test(normalised)) return true;
  try {
    const { protocol } = new URL(normalised);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

function transformLink(tagName: string, attribs: sanitizeHtml.Attributes): sanitizeHtml.Tag {
  const out: sanitizeHtml.Attributes = {};
  for (const [key, value] of Object.entries(attribs)) {
    if (key === 'rel') continue;
    if (key === 'href' && !isAllowedHref(value)) continue;
    out[key] = value;
  }
  // Inserted last so it is serialised as the last attribute, as ammonia does.
  out.rel = LINK_REL;
  return { tagName, attribs: out };
}

// sanitize-html hands textFilter text that is already escaped; U+0000 and LF survive that.
function textFilter(text: string): string {
  let out = text;
  if (atPreStart) {
    atPreStart = false;
    // HTML5 parsers ignore one LF directly after <pre>, and html5ever does not write it back.
    if (out.startsWith('\n')) out = out.slice(1);
  }
  return out.includes('\u0000') ? out.replace(NUL, '') : out;
}

// allowedEmptyAttributes exists in sanitize-html 2.17 but is missing from @types/sanitize-html.
type Options = sanitizeHtml.IOptions & { allowedEmptyAttributes: string[] };

// Built once: sanitising runs on every message send and edit.
const OPTIONS: Options = {
  allowedTags: ALLOWED_TAGS,
  allowedAttributes: ALLOWED_ATTRIBUTES,
  allowedEmptyAttributes: EMPTY_ATTRIBUTES_KEPT,
  allowedSchemes: ['http', 'https'],
  allowedSchemesByTag: {},
  allowedSchemesAppliedToAttributes: ['href'],
  allowProtocolRelative: true,
  disallowedTagsMode: 'discard',
  nonTextTags: NON_TEXT_TAGS,
  selfClosing: ['br'],
  parseStyleAttributes: false,
  enforceHtmlBoundary: false,
  transformTags: { a: transformLink, '*': transformAny },
  onOpenTag,
  onCloseTag,
  textFilter,
  parser: { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
};

const CRLF = /\r\n?/g;
const SELF_CLOSING_END = / \/>/g;
const NBSP = /\u00a0/g;

export function sanitizeContent(html: string): string {
  contextStack = [];
  dropCurrentTag = false;
  atPreStart = false;
  // HTML5 input-stream preprocessing; htmlparser2 does not do it.
  const input = html.includes('\r') ? html.replace(CRLF, '\n') : html;
  return (
    sanitizeHtml(input, OPTIONS)
      // sanitize-html writes void elements XHTML-style (`<br />`); html5ever writes `<br>`.
      // Text and attribute values always have `>` escaped, so ` />` can only end a tag.
      .replace(SELF_CLOSING_END, '>')
      // html5ever escapes U+00A0 in text and attribute values; sanitize-html has no hook
      // for attribute serialisation, and no other part of the output can contain it.
      .replace(NBSP, '&nbsp;')
  );
}

const TAG = /<[^>]*>/g;
const INVISIBLE = /&nbsp;|\s/g;

/** true when the sanitised HTML shows no visible text (only tags/whitespace/nbsp). */
export function hasVisibleText(sanitized: string): boolean {
  // On sanitised output `>` never occurs inside a tag's attribute values, so TAG is exact.
  return sanitized.replace(TAG, '').replace(INVISIBLE, '').length > 0;
}

/*
 * Known differences from ammonia/html5ever (none reachable from the Tiptap editor):
 * - `<` and `>` inside attribute values are written as `&lt;`/`&gt;` (html5ever leaves
 *   them raw; current browsers escape them too).
 * - Mis-nested inline tags are not repaired with the adoption agency algorithm:
 *   `<b><i>x</b>y</i>` gives `<b><i>x</i></b>y`, not `…<i>y</i>`.
 * - iframe/noembed/noframes/noscript/plaintext content is parsed as markup (html5ever
 *   treats it as text); textarea/xmp content is dropped rather than kept as text.
 * - In SVG/MathML, a breakout tag (e.g. `<p>`) nested below another foreign element is
 *   dropped with that element instead of escaping foreign content, and after a breakout
 *   the remaining siblings are still treated as foreign.
 * - Table foster-parenting, <template>, <select>, <image>→<img> are not emulated.
 */
