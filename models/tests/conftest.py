import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/ -> `import flamingo`, `import emojiworld`


class Magenta:
    """A restyle that paints a sprite pure magenta, and a test for it in an image: no light background
    and no emoji artwork is pure magenta, so a restyled image is told from any other."""
    COLOUR = (255, 0, 255)

    @staticmethod
    def paint(sprite):
        out = sprite.copy()
        out[..., :3] = Magenta.COLOUR
        return out

    @staticmethod
    def shown_in(img) -> bool:
        return bool((img[..., :3].astype(int) == Magenta.COLOUR).all(-1).any())


@pytest.fixture
def magenta():
    return Magenta
