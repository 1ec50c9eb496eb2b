"""EmojiWorld: the default model's world of emoji artwork, names and few-shot episodes.

    from emojiworld import load_world, samples
    world = load_world(seed=0)
    page = samples.interleaved_page(world, np.random.default_rng(0))   # [{'image'}, {'text'}, ...]
"""
from .concepts import Concept, World, load_world, pseudo_word, pseudo_words
from .samples import (caption_pair, clip_pair, interleaved_page, scene_pair, text_episode,
                      training_corpus_sample)
from .text import to_text
