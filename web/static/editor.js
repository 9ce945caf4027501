// The source editor: a <textarea> (the real input) with transparent text
// over a <pre><code> that shows the same text highlighted, and a gutter of
// line numbers; the three scroll together. A small tokenizer per language.

/** Escapes text for HTML. */
export function escapeHTML(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

const words = (s) => new Set(s.split(/\s+/).filter(Boolean));

const C_KEYWORDS = words(`auto break case const continue default do else enum extern for goto if inline
  register restrict return sizeof static struct switch typedef union volatile while _Alignas _Alignof
  _Atomic _Bool _Generic _Noreturn _Static_assert _Thread_local NULL true false`);
const C_TYPES = words(`void char short int long float double signed unsigned bool size_t ssize_t
  int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t FILE ptrdiff_t`);
const CPP_KEYWORDS = words(`${[...C_KEYWORDS].join(' ')} alignas alignof and asm catch class concept
  consteval constexpr constinit const_cast co_await co_return co_yield decltype delete dynamic_cast
  explicit export friend mutable namespace new noexcept not nullptr operator or private protected public
  reinterpret_cast requires static_assert static_cast template this throw try typeid typename using
  virtual xor override final`);
const CPP_TYPES = words(`${[...C_TYPES].join(' ')} auto wchar_t char8_t char16_t char32_t string vector map
  set unordered_map pair std`);
const JAVA_KEYWORDS = words(`abstract assert break case catch class const continue default do else enum
  extends final finally for goto if implements import instanceof interface native new package private
  protected public return static strictfp super switch synchronized this throw throws transient try
  volatile while var record yield sealed permits non-sealed true false null`);
const JAVA_TYPES = words(`boolean byte char double float int long short void String Object Integer Long
  Double System Scanner List ArrayList Map HashMap StringBuilder BufferedReader InputStreamReader`);
const PY_KEYWORDS = words(`False None True and as assert async await break class continue def del elif
  else except finally for from global if import in is lambda nonlocal not or pass raise return try while
  with yield match case`);
const PY_BUILTINS = words(`abs all any bin bool bytes chr dict dir divmod enumerate filter float format
  frozenset getattr hasattr hash hex id input int isinstance iter len list map max min next object oct
  open ord pow print range repr reversed round set setattr slice sorted str sum super tuple type zip
  self cls Exception ValueError TypeError KeyError IndexError`);
const SH_KEYWORDS = words(`if then else elif fi for while until do done case esac in function select
  time return break continue local export readonly declare unset shift exit set trap source`);
const SH_BUILTINS = words(`echo printf read cd pwd test true false eval exec wait kill cat grep sed awk
  printenv env`);

// A rule: the token's kind (null: plain text), a sticky regexp, and when
// it may start: bol (only whitespace before it on its line) or word
// (after a blank, an operator or the start).
const C_NUMBER = /(?:0[xX][\da-fA-F']+|0[bB][01']+|(?:\d[\d']*(?:\.[\d']*)?|\.\d[\d']*)(?:[eE][+-]?\d+)?)[uUlLfFzZ]*/y;
const IDENT = /[A-Za-z_$][\w$]*/y;

function cRules(keywords, types) {
  return [
    { kind: 'pre', re: /#(?:[^\n\\]|\\[\s\S])*/y, bol: true },
    { kind: 'com', re: /\/\/(?:[^\n\\]|\\[\s\S])*/y },
    { kind: 'com', re: /\/\*[\s\S]*?(?:\*\/|$)/y },
    { kind: 'str', re: /(?:u8|[uUL])?R"([^()\\\s]{0,16})\([\s\S]*?(?:\)\1"|$)/y },
    { kind: 'str', re: /(?:u8|[uUL])?"(?:[^"\\\n]|\\[\s\S])*"?/y },
    { kind: 'str', re: /(?:u8|[uUL])?'(?:[^'\\\n]|\\[\s\S])*'?/y },
    { kind: 'num', re: C_NUMBER },
    { kind: 'ident', re: IDENT, keywords, types },
  ];
}

const LANGS = {
  c: cRules(C_KEYWORDS, C_TYPES),
  cpp: cRules(CPP_KEYWORDS, CPP_TYPES),
  java: [
    { kind: 'com', re: /\/\/[^\n]*/y },
    { kind: 'com', re: /\/\*[\s\S]*?(?:\*\/|$)/y },
    { kind: 'str', re: /"""[\s\S]*?(?:"""|$)/y },
    { kind: 'str', re: /"(?:[^"\\\n]|\\[\s\S])*"?/y },
    { kind: 'str', re: /'(?:[^'\\\n]|\\[\s\S])*'?/y },
    { kind: 'dec', re: /@[A-Za-z_][\w.]*/y },
    { kind: 'num', re: /(?:0[xX][\da-fA-F_]+|0[bB][01_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)[lLfFdD]?/y },
    { kind: 'ident', re: IDENT, keywords: JAVA_KEYWORDS, types: JAVA_TYPES },
  ],
  python: [
    { kind: 'com', re: /#[^\n]*/y },
    { kind: 'str', re: /(?:[rRbBuUfF]{1,2})?(?:"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$))/y },
    { kind: 'str', re: /(?:[rRbBuUfF]{1,2})?(?:"(?:[^"\\\n]|\\[\s\S])*"?|'(?:[^'\\\n]|\\[\s\S])*'?)/y },
    { kind: 'dec', re: /@[A-Za-z_][\w.]*/y, bol: true },
    { kind: 'num', re: /(?:0[xX][\da-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?[jJ]?)/y },
    { kind: 'ident', re: /[A-Za-z_]\w*/y, keywords: PY_KEYWORDS, builtins: PY_BUILTINS },
  ],
  sh: [
    { kind: 'com', re: /#[^\n]*/y, word: true },
    { kind: 'str', re: /'[^']*'?/y },
    { kind: 'str', re: /"(?:[^"\\]|\\[\s\S])*"?/y },
    { kind: 'var', re: /\$(?:\{[^}\n]*\}?|[A-Za-z_]\w*|[@*#?$!0-9-])/y },
    { kind: 'num', re: /\d+(?![\w.])/y, word: true },
    { kind: 'ident', re: /[A-Za-z_][\w-]*/y, keywords: SH_KEYWORDS, builtins: SH_BUILTINS },
  ],
};

LANGS['c++'] = LANGS.cpp; // the executors' name for it
LANGS.bash = LANGS.sh;

/** The languages the editor knows. */
export const LANGUAGES = Object.keys(LANGS);

/**
 * Splits src into tokens [{kind, text}] for lang (kind null: plain).
 * The concatenation of the texts is src.
 */
export function tokenize(src, lang) {
  const rules = LANGS[lang];
  if (!rules) return [{ kind: null, text: src }];
  const out = [];
  let plainFrom = 0;
  let pos = 0;
  let bol = true; // only blanks since the line's start
  const n = src.length;
  const flush = (to) => {
    if (to > plainFrom) out.push({ kind: null, text: src.slice(plainFrom, to) });
  };
  while (pos < n) {
    const ch = src.charCodeAt(pos);
    if (ch === 32 || ch === 10 || ch === 9 || ch === 13) {
      if (ch === 10) bol = true;
      pos++; // no token starts with a blank
      continue;
    }
    let matched = false;
    for (const rule of rules) {
      if (rule.bol && !bol) continue;
      rule.re.lastIndex = pos;
      const m = rule.re.exec(src);
      if (!m || m[0].length === 0) continue;
      if (rule.word && pos > 0 && /[\w$}\])'"]/.test(src[pos - 1])) continue;
      const text = m[0];
      let kind = rule.kind;
      if (kind === 'ident') {
        if (rule.keywords && rule.keywords.has(text)) kind = 'kw';
        else if (rule.types && rule.types.has(text)) kind = 'type';
        else if (rule.builtins && rule.builtins.has(text)) kind = 'builtin';
        else kind = null;
      }
      if (kind === null) {
        pos += text.length; // stays in the plain run
      } else {
        flush(pos);
        out.push({ kind, text });
        pos += text.length;
        plainFrom = pos;
      }
      matched = true;
      bol = text.endsWith('\n');
      break;
    }
    if (!matched) {
      pos++;
      bol = false;
    }
  }
  flush(n);
  return out;
}

/** The highlighted HTML of src: escaped text in <span class="tok-KIND">. */
export function highlight(src, lang) {
  let html = '';
  for (const t of tokenize(src, lang)) {
    const text = escapeHTML(t.text);
    html += t.kind ? `<span class="tok-${t.kind}">${text}</span>` : text;
  }
  return html;
}

// Above this size the text is shown without colours (typing stays fast).
const HIGHLIGHT_MAX = 256 * 1024;
const INDENT = '    ';

/**
 * Editor wires a textarea, the <code> under it and the gutter.
 * onChange is called after every edit.
 */
export class Editor {
  constructor({ textarea, code, gutter, lang = 'python', onChange = () => {} }) {
    this.ta = textarea;
    this.code = code;
    this.pre = code.parentElement;
    this.gutter = gutter;
    this.lang = lang;
    this.onChange = onChange;
    this.lines = 0;
    this.frame = 0;
    this.tabMovesFocus = false;
    this.ta.addEventListener('input', () => { this.schedule(); this.onChange(); });
    this.ta.addEventListener('scroll', () => this.syncScroll());
    this.ta.addEventListener('keydown', (e) => this.keydown(e));
    this.ta.addEventListener('blur', () => { this.tabMovesFocus = false; });
    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(() => this.syncScroll()).observe(this.ta);
    }
    this.render();
  }

  get value() { return this.ta.value; }

  /** Replaces the whole text (not an edit the user can undo). */
  set value(v) {
    this.ta.value = v.replace(/\r\n?/g, '\n');
    this.ta.scrollTop = 0;
    this.ta.scrollLeft = 0;
    this.render();
    this.onChange();
  }

  setLanguage(lang) {
    this.lang = lang;
    this.render();
  }

  schedule() {
    if (this.frame) return;
    this.frame = window.requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  render() {
    const src = this.ta.value;
    // A trailing newline needs a character after it to take its height.
    const shown = src.endsWith('\n') || src === '' ? `${src} ` : src;
    this.code.innerHTML = src.length > HIGHLIGHT_MAX ? escapeHTML(shown) : highlight(shown, this.lang);
    const lines = src.split('\n').length;
    if (lines !== this.lines) {
      this.lines = lines;
      let nums = '';
      for (let i = 1; i <= lines; i++) nums += `${i}\n`;
      this.gutter.textContent = nums;
    }
    this.syncScroll();
  }

  syncScroll() {
    this.pre.scrollTop = this.ta.scrollTop;
    this.pre.scrollLeft = this.ta.scrollLeft;
    this.gutter.scrollTop = this.ta.scrollTop;
  }

  /** Inserts text at the selection as an edit the browser can undo. */
  insert(text) {
    this.ta.focus();
    let done = false;
    try {
      done = document.execCommand('insertText', false, text);
    } catch {
      done = false;
    }
    if (!done) {
      this.ta.setRangeText(text, this.ta.selectionStart, this.ta.selectionEnd, 'end');
      this.ta.dispatchEvent(new Event('input', { bubbles: true }));
    }
  }

  keydown(e) {
    const ta = this.ta;
    if (e.key === 'Escape') {
      // Escape then Tab leaves the editor (keyboard users are not trapped).
      this.tabMovesFocus = true;
      return;
    }
    if (e.key === 'Tab' && !e.ctrlKey && !e.altKey && !e.metaKey) {
      if (this.tabMovesFocus) {
        this.tabMovesFocus = false;
        return;
      }
      e.preventDefault();
      const { selectionStart: s, selectionEnd: t, value: v } = ta;
      const lineStart = v.lastIndexOf('\n', s - 1) + 1;
      if (e.shiftKey || v.slice(s, t).includes('\n')) {
        // Indent or dedent every line of the selection.
        const end = t > s && v[t - 1] === '\n' ? t - 1 : t;
        const block = v.slice(lineStart, end);
        const changed = block.split('\n').map((line) => {
          if (!e.shiftKey) return INDENT + line;
          const m = /^( {1,4}|\t)/.exec(line);
          return m ? line.slice(m[0].length) : line;
        }).join('\n');
        ta.setSelectionRange(lineStart, end);
        this.insert(changed);
        ta.setSelectionRange(lineStart, lineStart + changed.length);
      } else {
        const col = s - lineStart;
        this.insert(' '.repeat(INDENT.length - (col % INDENT.length)));
      }
      return;
    }
    this.tabMovesFocus = false;
    if (e.key === 'Enter' && !e.ctrlKey && !e.metaKey && !e.altKey && !e.shiftKey) {
      // Keep the indentation of the line.
      const v = ta.value;
      const s = ta.selectionStart;
      const lineStart = v.lastIndexOf('\n', s - 1) + 1;
      const indent = /^[ \t]*/.exec(v.slice(lineStart, s))[0];
      let more = '';
      const before = v.slice(lineStart, s).trimEnd();
      if (/[{:([]$/.test(before) && !(this.lang === 'sh' && before.endsWith(':'))) more = INDENT;
      if (indent || more) {
        e.preventDefault();
        this.insert(`\n${indent}${more}`);
      }
    }
  }
}
