"""The training stages, in pipeline order; each is run from models/ as a module, settings as --name=value:

    python3 -m train.tokenizer   # stage 0: BPE on EmojiWorld's training text only
    python3 -m train.vision      # stage 1: vision encoder, contrastive image <-> caption, then frozen
    python3 -m train.lm          # stage 2: language model on text alone, then frozen
    python3 -m train.flamingo    # stage 3: Perceiver Resampler + gated xattn-dense (torchrun ... -m train.flamingo)

reproduce.sh runs them in order.
"""
