// BPE tokenizer read from a Hugging Face tokenizer.json, in one of two pipelines:
//   Metaspace + Punctuation (the bundled model's): models/flamingo/tokenizer.py is its twin;
//   byte-level (GPT-2, GPT-NeoX: OpenFlamingo's MPT and RedPajama): models/flamingo/byte_bpe.py.
// Parity tests encode one corpus with each pair (and the byte-level one with @huggingface/tokenizers).
import { FlamingoError } from './types';

const SPACE = '\u2581'; // '▁'
const ASCII_PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
const UNICODE_PUNCTUATION = /^\p{P}$/u;

interface TokenizerJson {
  added_tokens: { id: number; content: string }[];
  normalizer?: { type: string } | null;
  pre_tokenizer?: { type: string; add_prefix_space?: boolean } | null;
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[]; unk_token: string | null };
}

// GPT-2's pre-tokenizer, \s read as Unicode White_Space (what the Oniguruma regex of Hugging Face
// tokenizers means by it).
const BYTE_LEVEL_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for chars from U+0100 on. */
function byteChars(): string[] {
  const chars: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars.push(String.fromCharCode(printable ? b : 256 + extra++));
  }
  return chars;
}
const BYTE_CHAR = byteChars();
const CHAR_BYTE = new Map(BYTE_CHAR.map((c, b) => [c, b]));

export function byteLevelPreTokenize(text: string): string[] {
  return text.match(BYTE_LEVEL_SPLIT) ?? [];
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
  /** Byte-level BPE (GPT-2's scheme) rather than Metaspace over characters. */
  private readonly byteLevel: boolean;
  private readonly normalization?: 'NFC' | 'NFKC' | 'NFD' | 'NFKD';
  private readonly addPrefixSpace: boolean;
  private readonly addedById = new Map<number, string>();

  constructor(json: TokenizerJson) {
    if (json?.model?.type !== 'BPE') throw new FlamingoError('tokenizer.json: only BPE models are supported');
    this.byteLevel = json.pre_tokenizer?.type === 'ByteLevel';
    const norm = json.normalizer?.type;
    if (norm !== undefined && !['NFC', 'NFKC', 'NFD', 'NFKD'].includes(norm)) throw new FlamingoError(`tokenizer.json: normalizer ${norm} is not supported`);
    this.normalization = norm as Tokenizer['normalization'];
    this.addPrefixSpace = json.pre_tokenizer?.add_prefix_space ?? false;
    this.vocab = new Map(Object.entries(json.model.vocab));
    this.pieces = [];
    for (const [piece, id] of this.vocab) this.pieces[id] = piece;
    for (const t of json.added_tokens) {
      this.addedById.set(t.id, t.content);
      this.pieces[t.id] ??= t.content;
    }
    this.ranks = new Map();
    json.model.merges.forEach((m, rank) => {
      const [a, b] = typeof m === 'string' ? m.split(' ') : m;
      this.ranks.set(`${a} ${b}`, rank);
    });
    this.specials = new Map(json.added_tokens.map((t) => [t.content, t.id]));
    // longest first: at one position the longest added token wins (GPT-NeoX's runs of spaces)
    const added = [...this.specials.keys()].filter(Boolean).sort((a, b) => b.length - a.length);
    this.specialRe = new RegExp(`(${added.map(escapeRegExp).join('|')})`);
    const unk = json.model.unk_token === null ? undefined : this.vocab.get(json.model.unk_token);
    // byte-level BPE spells any text from its 256 bytes: no unknown token
    if (unk === undefined && !this.byteLevel) throw new FlamingoError('tokenizer.json: the unk token is not in the vocabulary');
    this.unkId = unk ?? -1;
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
    const parts = this.byteLevel ? Array.from(new TextEncoder().encode(word), (b) => BYTE_CHAR[b]) : Array.from(word);
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
      else for (const word of this.preTokenize(piece)) ids.push(...this.encodeWord(word));
    }
    return ids;
  }

  private preTokenize(piece: string): string[] {
    if (!this.byteLevel) return preTokenize(piece);
    let text = this.normalization ? piece.normalize(this.normalization) : piece;
    if (this.addPrefixSpace && !text.startsWith(' ')) text = ' ' + text;
    return byteLevelPreTokenize(text);
  }

  /** Text of a token sequence; `leading` keeps a leading space (for streaming pieces). */
  decode(ids: ArrayLike<number>, leading = false): string {
    if (this.byteLevel) return this.decodeBytes(ids);
    let text = '';
    for (let i = 0; i < ids.length; i++) text += this.pieces[ids[i]] ?? '';
    text = text.replaceAll(SPACE, ' ');
    return !leading && text.startsWith(' ') ? text.slice(1) : text;
  }

  /** Byte-level: pieces back to bytes, UTF-8 decoded (a character cut between tokens shows as U+FFFD). */
  private decodeBytes(ids: ArrayLike<number>): string {
    let text = '';
    let bytes: number[] = [];
    const flush = () => {
      text += new TextDecoder().decode(Uint8Array.from(bytes));
      bytes = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const added = this.addedById.get(ids[i]);
      if (added !== undefined) {
        flush();
        text += added;
      } else {
        for (const ch of this.pieces[ids[i]] ?? '') bytes.push(CHAR_BYTE.get(ch) ?? 0);
      }
    }
    flush();
    return text;
  }
}
