// BPE tokenizer read from a Hugging Face tokenizer.json. The same pipeline as
// models/flamingo/tokenizer.py (see there); a parity test encodes one corpus with both.
import { FlamingoError } from './types';

const SPACE = '\u2581'; // '▁'
const ASCII_PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
const UNICODE_PUNCTUATION = /^\p{P}$/u;

interface TokenizerJson {
  added_tokens: { id: number; content: string }[];
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[]; unk_token: string };
}

function isPunctuation(ch: string): boolean {
  return ASCII_PUNCTUATION.has(ch) || UNICODE_PUNCTUATION.test(ch);
}

/** NFC, Metaspace (prepend ▁, split before each ▁), punctuation isolated. */
export function preTokenize(text: string): string[] {
  const t = SPACE + text.normalize('NFC').replaceAll(' ', SPACE);
  const words: string[] = [];
  for (const chunk of t.split(new RegExp(`(?=${SPACE})`, 'u'))) {
    let cur = '';
    for (const ch of chunk) {
      if (isPunctuation(ch)) {
        if (cur) words.push(cur);
        words.push(ch);
        cur = '';
      } else {
        cur += ch;
      }
    }
    if (cur) words.push(cur);
  }
  return words;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class Tokenizer {
  private readonly vocab: Map<string, number>;
  private readonly pieces: string[];
  private readonly ranks: Map<string, number>;
  private readonly specials: Map<string, number>;
  private readonly specialRe: RegExp;
  private readonly unkId: number;
  private readonly cache = new Map<string, number[]>();

  constructor(json: TokenizerJson) {
    if (json?.model?.type !== 'BPE') throw new FlamingoError('tokenizer.json: only BPE models are supported');
    this.vocab = new Map(Object.entries(json.model.vocab));
    this.pieces = [];
    for (const [piece, id] of this.vocab) this.pieces[id] = piece;
    this.ranks = new Map();
    json.model.merges.forEach((m, rank) => {
      const [a, b] = typeof m === 'string' ? m.split(' ') : m;
      this.ranks.set(`${a} ${b}`, rank);
    });
    this.specials = new Map(json.added_tokens.map((t) => [t.content, t.id]));
    this.specialRe = new RegExp(`(${[...this.specials.keys()].map(escapeRegExp).join('|')})`);
    const unk = this.vocab.get(json.model.unk_token);
    if (unk === undefined) throw new FlamingoError('tokenizer.json: the unk token is not in the vocabulary');
    this.unkId = unk;
  }

  static fromJson(text: string): Tokenizer {
    return new Tokenizer(JSON.parse(text) as TokenizerJson);
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  tokenId(token: string): number {
    const id = this.specials.get(token) ?? this.vocab.get(token);
    if (id === undefined) throw new FlamingoError(`The tokenizer has no token ${JSON.stringify(token)}`);
    return id;
  }

  private encodeWord(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const parts = Array.from(word);
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          best = i;
          bestRank = r;
        }
      }
      if (best < 0) break;
      parts.splice(best, 2, parts[best] + parts[best + 1]);
    }
    const ids = parts.map((p) => this.vocab.get(p) ?? this.unkId);
    this.cache.set(word, ids);
    return ids;
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    for (const piece of text.split(this.specialRe)) {
      if (!piece) continue;
      const special = this.specials.get(piece);
      if (special !== undefined) ids.push(special);
      else for (const word of preTokenize(piece)) ids.push(...this.encodeWord(word));
    }
    return ids;
  }

  /** Text of a token sequence; `leading` keeps a leading space (for streaming pieces). */
  decode(ids: ArrayLike<number>, leading = false): string {
    let text = '';
    for (let i = 0; i < ids.length; i++) text += this.pieces[ids[i]] ?? '';
    text = text.replaceAll(SPACE, ' ');
    return !leading && text.startsWith(' ') ? text.slice(1) : text;
  }
}
