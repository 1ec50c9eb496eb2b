"""A small BPE tokenizer saved in the Hugging Face `tokenizer.json` format.

Pipeline (the same in src/engine/tokenizer.ts; a parity test compares them):
  1. added (special) tokens such as <image> and <|endofchunk|> are split out first;
  2. each remaining piece: NFC normalisation, then Metaspace (spaces -> '▁', a '▁' prepended,
     split before each '▁'), then punctuation isolated into its own word;
  3. each word: BPE merges by rank, starting from its characters; unknown characters -> <unk>.
Decoding joins the pieces, turns '▁' back into spaces and drops the leading one.

New words (novel-word binding) are spelt from pieces the model has trained on, so a word seen only
in the prompt can still be produced (see EMOJIWORLD.md: whole-word vocabularies make that
impossible by construction).
"""
from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter

SPACE = "\u2581"  # '▁'
SPECIAL_TOKENS = ["<unk>", "<pad>", "<bos>", "<|endofchunk|>", "<image>"]


def is_punctuation(ch: str) -> bool:
    # As Hugging Face tokenizers: ASCII punctuation or any Unicode P* category.
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


def pre_tokenize(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", text)
    text = SPACE + text.replace(" ", SPACE)
    words = []
    for chunk in re.split(f"(?={SPACE})", text):
        cur = ""
        for ch in chunk:
            if is_punctuation(ch):
                if cur:
                    words.append(cur)
                words.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            words.append(cur)
    return words


class Tokenizer:
    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], special_tokens: list[str]):
        self.vocab = vocab
        self.inv_vocab = {i: t for t, i in vocab.items()}
        self.merges = merges
        self.ranks = {pair: r for r, pair in enumerate(merges)}
        self.special_tokens = special_tokens
        self.special_re = re.compile("(" + "|".join(re.escape(t) for t in special_tokens) + ")")
        self.cache: dict[str, list[int]] = {}

    def token_id(self, token: str) -> int:
        return self.vocab[token]

    def encode_word(self, word: str) -> list[int]:
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        unk = self.vocab["<unk>"]
        ids = [self.vocab.get(p, unk) for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in self.special_re.split(text):
            if not piece:
                continue
            if piece in self.special_tokens:
                ids.append(self.vocab[piece])
            else:
                for word in pre_tokenize(piece):
                    ids.extend(self.encode_word(word))
        return ids

    def decode(self, ids: list[int]) -> str:
        text = "".join(self.inv_vocab.get(i, "") for i in ids)
        text = text.replace(SPACE, " ")
        return text[1:] if text.startswith(" ") else text

    # --------------------------------------------------------------- Hugging Face format
    def to_json(self) -> dict:
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [
                {"id": self.vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": False, "special": True}
                for t in self.special_tokens
            ],
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Metaspace", "replacement": SPACE, "prepend_scheme": "always", "split": True},
                {"type": "Punctuation", "behavior": "Isolated"},
            ]},
            "post_processor": None,
            "decoder": {"type": "Metaspace", "replacement": SPACE, "prepend_scheme": "always", "split": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": self.vocab, "merges": [[a, b] for a, b in self.merges]},
        }

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, ensure_ascii=False, indent=None, separators=(",", ":"))

    @classmethod
    def load(cls, path) -> "Tokenizer":
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        specials = [t["content"] for t in sorted(d["added_tokens"], key=lambda t: t["id"])]
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in d["model"]["merges"]]
        return cls(d["model"]["vocab"], merges, specials)


def merge_pair(parts: list[str], a: str, b: str) -> list[str]:
    """One BPE merge applied to a word's pieces: every adjacent (a, b) becomes a + b, left to right."""
    i, out = 0, []
    while i < len(parts):
        if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return out


def train_bpe(texts: list[str], vocab_size: int, special_tokens=SPECIAL_TOKENS, min_frequency: int = 2) -> Tokenizer:
    """Classic BPE: start from characters, merge the most frequent adjacent pair until vocab_size."""
    words = Counter()
    for text in texts:
        for piece in re.split("(" + "|".join(re.escape(t) for t in special_tokens) + ")", text):
            if piece and piece not in special_tokens:
                words.update(pre_tokenize(piece))
    vocab = {t: i for i, t in enumerate(special_tokens)}
    for ch in sorted({c for w in words for c in w}):
        vocab[ch] = len(vocab)
    splits = {w: list(w) for w in words}
    merges = []
    while len(vocab) < vocab_size:
        pairs = Counter()
        for w, n in words.items():
            parts = splits[w]
            for a, b in zip(parts, parts[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        # most frequent, ties broken by the pair itself so training is deterministic
        (a, b), n = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if n < min_frequency:
            break
        merges.append((a, b))
        vocab[a + b] = len(vocab)
        for w, parts in splits.items():
            splits[w] = merge_pair(parts, a, b)
    return Tokenizer(vocab, merges, list(special_tokens))
