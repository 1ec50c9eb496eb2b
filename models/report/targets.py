"""Model v2's targets (issue 18) against CLI evaluation reports: old model beside new, same episodes.

    cd models && /usr/bin/python3 -m report.targets v1=eval/report-v1.json v2=eval/report.json \\
        --model v1=checkpoints/... [--card ../public/models/emojiworld/MODEL_CARD.md]

Each report is `flamingo-web eval --out` on models/eval/episodes/all.jsonl (OpenMoji, held-out data
only). A target over several tasks (every scene-question task, every shot count) is judged on its
weakest task, which the table names. With --card, the table replaces the card's text between
<!-- targets:start --> and <!-- targets:end -->.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from report.results import by_family

WEIGHTS_LIMIT = 20e6  # bytes of float32 weights (issue 18)


def accuracy(tasks: dict, task: str) -> float | None:
    return tasks[task]["accuracy"] if task in tasks else None


def weakest(tasks: dict, prefixes: tuple[str, ...]) -> tuple[float, str] | None:
    """The lowest accuracy among the tasks whose family starts with one of `prefixes`, and that task."""
    found = [(t["accuracy"], name) for name, t in tasks.items() if name.startswith(prefixes)]
    return min(found) if found else None


def shots_32_vs_8(tasks: dict) -> tuple[float, str] | None:
    """The largest fall from 8 to 32 shots over the task families that have both (negative: a fall)."""
    gaps = [(shots[32]["accuracy"] - shots[8]["accuracy"], family)
            for family, shots in by_family(tasks).items() if 8 in shots and 32 in shots]
    return min(gaps) if gaps else None


def pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def rows(tasks: dict, weights_bytes: int | None) -> list[tuple[str, str, bool | None]]:
    """(target, what this report measures, met) per target; met is None where the report lacks the tasks."""
    out = []

    def at_least(name, value, limit, note=""):
        out.append((name, "—" if value is None else pct(value) + note, None if value is None else value >= limit))

    at_least("binding 5-way 1-shot ≥ 95 %", accuracy(tasks, "binding-5way-1shot"), 0.95)
    at_least("cross-style binding 5-way 1-shot ≥ 75 %", accuracy(tasks, "binding-5way-crossstyle-1shot"), 0.75)
    at_least("naming 0-shot ≥ 40 %", accuracy(tasks, "naming-0shot"), 0.40)
    zero, four = accuracy(tasks, "naming-0shot"), accuracy(tasks, "naming-4shot")
    gain = None if zero is None or four is None else four - zero
    out.append(("naming 4-shot ≥ 0-shot + 10 points", "—" if gain is None else f"{100 * gain:+.0f} points",
                None if gain is None else gain >= 0.10 - 1e-9))
    at_least("classify-5way 1-shot ≥ 95 %", accuracy(tasks, "classify-5way-1shot"), 0.95)
    for name, prefixes, limit in (("scene questions ≥ 85 % (weakest task)", ("scene-qa",), 0.85),
                                  ("clip questions ≥ 70 % (weakest task)", ("clip-qa",), 0.70)):
        w = weakest(tasks, prefixes)
        at_least(name, None if w is None else w[0], limit, "" if w is None else f" ({w[1]})")
    fall = shots_32_vs_8(tasks)
    out.append(("32 shots ≥ 8 shots on every task (largest fall)",
                "—" if fall is None else f"{100 * fall[0]:+.0f} points ({fall[1]})", None if fall is None else fall[0] >= 0))
    out.append(("float32 weights ≤ 20 MB", "—" if weights_bytes is None else f"{weights_bytes / 1e6:.1f} MB",
                None if weights_bytes is None else weights_bytes <= WEIGHTS_LIMIT))
    return out


def table(reports: dict[str, dict], weights: dict[str, int | None]) -> str:
    names = list(reports)
    measured = {n: rows(reports[n]["tasks"], weights.get(n)) for n in names}
    mark = {True: "met", False: "**not met**", None: "—"}
    lines = ["| target (OpenMoji, CLI) | " + " | ".join(names) + f" | {names[-1]}: met? |",
             "| --- | " + " | ".join("---:" for _ in names) + " | --- |"]
    for i, (target, *_rest) in enumerate(measured[names[-1]]):
        cells = [measured[n][i][1] for n in names]
        lines.append(f"| {target} | " + " | ".join(cells) + f" | {mark[measured[names[-1]][i][2]]} |")
    means = [f"{100 * mean_accuracy(reports[n]['tasks']):.1f} %" for n in names]
    lines.append("| mean accuracy over the tasks (not a target: v2's ship rule) | " + " | ".join(means) + " | — |")
    return "\n".join(lines)


def mean_accuracy(tasks: dict) -> float:
    """The unweighted mean over tasks (every task has the same number of episodes)."""
    return sum(t["accuracy"] for t in tasks.values()) / len(tasks)


def model_weights_bytes(model_dir: Path) -> int:
    """The float32 graphs' bytes, from the model folder's manifest (the default files, not the variants)."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    return sum(f["bytes"] for name, f in manifest["files"].items() if f["path"].endswith(".onnx"))


def pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"{what} {item!r}: write NAME=PATH, e.g. v2=eval/report.json")
        out[name] = path
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="+", metavar="NAME=REPORT", help="the last one is judged")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=DIR", help="a model folder, for its size")
    ap.add_argument("--card")
    args = ap.parse_args()
    reports = {n: json.loads(Path(p).read_text()) for n, p in pairs(args.reports, "report").items()}
    weights = {n: model_weights_bytes(Path(p)) for n, p in pairs(args.model, "--model").items()}
    md = table(reports, weights)
    if args.card:
        card = Path(args.card)
        start, end = "<!-- targets:start -->", "<!-- targets:end -->"
        head, rest = card.read_text().split(start, 1)
        card.write_text(head + start + "\n" + md + "\n" + end + rest.split(end, 1)[1])
    print(md)


if __name__ == "__main__":
    main()
