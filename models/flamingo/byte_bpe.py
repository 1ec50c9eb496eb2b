"""Byte-level BPE from a Hugging Face tokenizer.json: GPT-2's scheme, which GPT-NeoX (OpenFlamingo's
MPT and RedPajama models) uses. The same pipeline as src/engine/tokenizer.ts; a parity test
encodes one corpus with both and with @huggingface/tokenizers.

  1. added tokens (<|endofchunk|>, <image>, GPT-NeoX's runs of spaces) are split out first, the
     longest at a position winning;
  2. each other piece: the normalizer (NFC), then GPT-2's pre-tokenizer: the first of
     's 't 're 've 'm 'll 'd | ' '?letters | ' '?digits | ' '?other | spaces not before a non-space | spaces
     (written out as a scanner: Python's re has no \\p{L});
  3. each word's UTF-8 bytes, one printable character per byte (GPT-2's bytes_to_unicode),
     merged by rank. Every byte is in the vocabulary, so there is no unknown token.
Decoding maps the characters back to bytes and decodes UTF-8 (invalid sequences as U+FFFD).
"""
from __future__ import annotations

import json
import unicodedata
from collections import Counter

from .tokenizer import merge_pair

# Unicode's White_Space: what \s means in the Oniguruma regex Hugging Face tokenizers runs (and
# \p{White_Space} in the TypeScript twin)
WHITESPACE = set("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {chr(c) for c in range(0x2000, 0x200b)}
CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map: printable bytes stand for themselves, the others for chars from U+0100 on."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


BYTE_CHAR = bytes_to_unicode()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}


def kind(ch: str) -> str:
    if ch in WHITESPACE:
        return "space"
    cat = unicodedata.category(ch)
    return "letter" if cat[0] == "L" else "digit" if cat[0] == "N" else "other"


def pre_tokenize(text: str) -> list[str]:
    """GPT-2's regex, alternative by alternative, the first that matches at each position."""
    words, i, n = [], 0, len(text)
    while i < n:
        if text[i] == "'":
            c = next((c for c in CONTRACTIONS if text.startswith(c, i + 1)), None)
            if c is not None:
                words.append(text[i:i + 1 + len(c)])
                i += 1 + len(c)
                continue
        start = i + 1 if text[i] == " " and i + 1 < n and kind(text[i + 1]) != "space" else i
        k = kind(text[start])
        j = start
        if k != "space":  # ' '?letters, ' '?digits or ' '?other: a run of one kind
            while j < n and kind(text[j]) == k:
                j += 1
        else:  # a run of spaces; before a non-space its last one goes with the next word
            while j < n and kind(text[j]) == "space":
                j += 1
            if j < n and j - i > 1:
                j -= 1
        words.append(text[i:j])
        i = j
    return words


def normalize(text: str, normalizer: dict | None) -> str:
    if normalizer is None:
        return text
    if normalizer["type"] in ("NFC", "NFKC", "NFD", "NFKD"):
        return unicodedata.normalize(normalizer["type"], text)
    raise ValueError(f"tokenizer.json: normalizer {normalizer['type']} is not supported")


class ByteLevelTokenizer:
    def __init__(self, d: dict):
        model = d["model"]
        if model["type"] != "BPE" or d.get("pre_tokenizer", {}).get("type") != "ByteLevel":
            raise ValueError("tokenizer.json: not a byte-level BPE")
        self.vocab: dict[str, int] = model["vocab"]
        self.ranks = {tuple(m.split(" ") if isinstance(m, str) else m): r for r, m in enumerate(model["merges"])}
        self.added = {t["content"]: t["id"] for t in d.get("added_tokens", [])}
        self.pieces = {i: p for p, i in self.vocab.items()}
        self.added_by_id = {i: t for t, i in self.added.items()}
        self.normalizer = d.get("normalizer")
        self.add_prefix_space = d["pre_tokenizer"].get("add_prefix_space", False)
        self.cache: dict[str, list[int]] = {}

    @classmethod
    def load(cls, path) -> "ByteLevelTokenizer":
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def token_id(self, token: str) -> int:
        return self.added.get(token, self.vocab.get(token))

    def split_added(self, text: str) -> list[str]:
        """Text and added tokens, in order; at each position the longest added token wins."""
        out, i, start = [], 0, 0
        by_length = sorted(self.added, key=len, reverse=True)
        while i < len(text):
            hit = next((t for t in by_length if t and text.startswith(t, i)), None)
            if hit is None:
                i += 1
                continue
            if start < i:
                out.append(text[start:i])
            out.append(hit)
            i += len(hit)
            start = i
        if start < len(text):
            out.append(text[start:])
        return out

    def encode_word(self, word: str) -> list[int]:
        if word in self.cache:
            return self.cache[word]
        parts = [BYTE_CHAR[b] for b in word.encode("utf-8")]
        while len(parts) > 1:
            ranked = [(self.ranks.get((a, b)), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            ranked = [(r, i) for r, i in ranked if r is not None]
            if not ranked:
                break
            _, i = min(ranked)
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in self.split_added(text):
            if piece in self.added:
                ids.append(self.added[piece])
                continue
            piece = normalize(piece, self.normalizer)
            if self.add_prefix_space and not piece.startswith(" "):
                piece = " " + piece
            for word in pre_tokenize(piece):
                ids.extend(self.encode_word(word))
        return ids

    def decode(self, ids: list[int]) -> str:
        out, buf = [], bytearray()
        for i in ids:
            if i in self.added_by_id:
                out.append(buf.decode("utf-8", errors="replace"))
                buf = bytearray()
                out.append(self.added_by_id[i])
            else:
                buf.extend(CHAR_BYTE[c] for c in self.pieces.get(i, ""))
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)


def train_byte_bpe(texts: list[str], n_merges: int, added_tokens: list[str]) -> dict:
    """A small byte-level BPE in tokenizer.json form (fixtures: the real models bring their own)."""
    words = Counter()
    for text in texts:
        for w in pre_tokenize(text):
            words["".join(BYTE_CHAR[b] for b in w.encode("utf-8"))] += 1
    vocab = {BYTE_CHAR[b]: b for b in range(256)}
    splits = {w: list(w) for w in words}
    merges = []
    for _ in range(n_merges):
        pairs = Counter()
        for w, n in words.items():
            for a, b in zip(splits[w], splits[w][1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        merges.append(f"{a} {b}")
        vocab[a + b] = len(vocab)
        for w, parts in splits.items():
            splits[w] = merge_pair(parts, a, b)
    added = [{"id": len(vocab) + k, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for k, t in enumerate(added_tokens)]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": merges},
    }
