/**
 * Full-text tokens that work for CJK as well as space-separated scripts,
 * computed in the application so search needs no Postgres extension or
 * language configuration: Han, Kana and Hangul runs are indexed as single
 * characters and overlapping bigrams (there are no spaces between words);
 * other letters and digits as lower-cased NFKC words.
 */
const WORD = /[\p{L}\p{N}\p{M}]+/gu;
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
const ALL_CJK = /^[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]+$/u;
const MAX_TOKEN = 64;
const MAX_TOKENS = 2000;

function splitRuns(word: string): { cjk: boolean; text: string }[] {
  // Most words are in one script: one regex test instead of one per character (projection CPU, see ops/bench/projector-rebuild.ts).
  if (!CJK.test(word)) return [{ cjk: false, text: word }];
  if (ALL_CJK.test(word)) return [{ cjk: true, text: word }];
  const runs: { cjk: boolean; text: string }[] = [];
  for (const ch of word) {
    const cjk = CJK.test(ch);
    const last = runs[runs.length - 1];
    if (last && last.cjk === cjk) last.text += ch;
    else runs.push({ cjk, text: ch });
  }
  return runs;
}

/** Tokens of a stored text (unigrams and bigrams for CJK). */
export function indexTokens(text: string): string[] {
  const out = new Set<string>();
  for (const [word] of text.normalize('NFKC').toLowerCase().matchAll(WORD)) {
    for (const run of splitRuns(word)) {
      if (!run.cjk) {
        out.add(run.text.slice(0, MAX_TOKEN));
        continue;
      }
      const chars = [...run.text];
      chars.forEach((c, i) => {
        out.add(c);
        if (i + 1 < chars.length) out.add(c + chars[i + 1]);
      });
    }
    if (out.size >= MAX_TOKENS) break;
  }
  return [...out];
}

/**
 * A tsquery for a user's search text: every term must match. CJK runs match
 * by bigrams (a single character by itself); other words also match as a
 * prefix, so "recruit" finds "recruiter". Null when the text has no terms.
 */
export function searchQuery(text: string): string | null {
  const terms: string[] = [];
  for (const [word] of text.normalize('NFKC').toLowerCase().matchAll(WORD)) {
    for (const run of splitRuns(word)) {
      if (!run.cjk) {
        terms.push(`'${run.text.slice(0, MAX_TOKEN)}':*`);
        continue;
      }
      const chars = [...run.text];
      if (chars.length === 1) terms.push(`'${chars[0]}'`);
      for (let i = 0; i + 1 < chars.length; i++) terms.push(`'${chars[i]}${chars[i + 1]}'`);
    }
  }
  // Tokens are letters, marks and digits only, so quoting cannot be broken out of.
  return terms.length ? [...new Set(terms)].slice(0, 64).join(' & ') : null;
}
