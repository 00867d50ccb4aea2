import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { indexTokens, searchQuery } from './search-tokens.js';

// Stored tokens must never change for the same text: a rebuilt read model is compared with the live one.
describe('search tokens', () => {
  it('index CJK runs as characters and bigrams, other scripts as lower-cased words', () => {
    expect(indexTokens('个人开发')).toEqual(['个', '个人', '人', '人开', '开', '开发', '发']);
    expect(indexTokens('Hello, WORLD 👋 ok')).toEqual(['hello', 'world', 'ok']);
    expect(indexTokens('abc中文def')).toEqual(['abc', '中', '中文', '文', 'def']);
    expect(indexTokens('ｶﾀｶﾅ とひらがな')).toEqual(['カ', 'カタ', 'タ', 'タカ', 'カナ', 'ナ', 'と', 'とひ', 'ひ', 'ひら', 'ら', 'らが', 'が', 'がな', 'な']);
    expect(indexTokens('مرحبا بالجميع #12')).toEqual(['مرحبا', 'بالجميع', '12']);
    expect(searchQuery('Recruit 中文')).toBe("'recruit':* & '中文'");
  });

  it('are the same as splitting every word character by character', () => {
    const alphabet = fc.constantFrom('a', 'Z', '9', 'é', 'e\u0301', '中', '文', 'か', 'カ', '한', '국', ' ', '-', '👍', 'ß', 'ﬁ', 'ｱ', '\u0300');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 30 }), (chars) => {
        const text = chars.join('');
        expect(indexTokens(text)).toEqual(byCharacter(text));
      }),
      { numRuns: 2000 },
    );
  });
});

/** The definition, one character at a time (the implementation takes shortcuts for words in one script). */
function byCharacter(text: string): string[] {
  const cjk = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
  const out = new Set<string>();
  for (const [word] of text
    .normalize('NFKC')
    .toLowerCase()
    .matchAll(/[\p{L}\p{N}\p{M}]+/gu)) {
    const runs: { cjk: boolean; text: string }[] = [];
    for (const ch of word) {
      const last = runs[runs.length - 1];
      if (last && last.cjk === cjk.test(ch)) last.text += ch;
      else runs.push({ cjk: cjk.test(ch), text: ch });
    }
    for (const run of runs) {
      if (!run.cjk) out.add(run.text.slice(0, 64));
      else [...run.text].forEach((c, i, all) => (out.add(c), i + 1 < all.length && out.add(c + all[i + 1])));
    }
  }
  return [...out];
}
