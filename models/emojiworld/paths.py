"""Where EmojiWorld reads and writes on disk; imports nothing of emojiworld, so every module can use it."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / 'node_modules'  # emojibase-data and the @iconify-json artwork sets (npm ci)
CACHE_DIR = REPO / '.cache' / 'emojiworld'  # rendered sprites (render.py), gitignored
