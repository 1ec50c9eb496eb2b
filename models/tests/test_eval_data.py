"""The committed evaluation data and the model folder agree with the generator: the episodes in
models/eval/episodes are exactly what `python -m emojiworld.episodes --n 50` writes, and the bundled
model's splits.json is the split they hold out."""
import filecmp
import json
from pathlib import Path

from emojiworld.concepts import load_world
from emojiworld.episodes import write_episodes

REPO = Path(__file__).resolve().parents[2]
EPISODES = REPO / "models" / "eval" / "episodes"


def test_committed_episodes_are_reproducible(tmp_path):
    task = "binding-5way-1shot"
    write_episodes(tmp_path, [task], n=50, seed=0)
    assert (tmp_path / f"{task}.jsonl").read_bytes() == (EPISODES / f"{task}.jsonl").read_bytes()
    images = sorted((tmp_path / "img" / task).iterdir())
    assert len(images) == 50 * 6
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "img" / task, EPISODES / "img" / task,
                                           [p.name for p in images], shallow=False)
    assert not mismatch and not errors


def test_committed_rices_pools_are_reproducible(tmp_path):
    write_episodes(tmp_path, ["scene-qa-rices-4shot"], n=2, seed=0)
    pool = "pools/scene-qa-openmoji.jsonl"
    assert (tmp_path / pool).read_bytes() == (EPISODES / pool).read_bytes()


def test_bundled_model_holds_out_what_the_evaluation_tests():
    splits = json.loads((REPO / "public" / "models" / "emojiworld" / "splits.json").read_text())
    world = load_world()
    heldout = {world.concepts[i].key for i in world.split("heldout")}
    assert set(splits["heldout"]) == heldout
    assert splits["heldout_style"] == "openmoji"
    # every binding / novel-naming answer in the committed episodes is a held-out concept or a pseudo-word
    names = {c.name for c in world.concepts if c.split == "train"}
    for line in (EPISODES / "naming-novel-1shot.jsonl").read_text().splitlines():
        assert json.loads(line)["answer"] not in names
