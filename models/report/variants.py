"""The model card's variants table: each quantised variant against float32, from `eval` reports.

    cd models && /usr/bin/python3 -m report.variants --model ../public/models/emojiworld --float32 f32.json \\
        --variant q4=q4.json --variant fp16=fp16.json [--speed speed.json] \\
        --out eval/variants.json --card ../public/models/emojiworld/MODEL_CARD.md

Reports come from `npx flamingo-web eval --variant NAME --episodes eval/episodes/all.jsonl --out R`;
the speed file from `npx tsx scripts/variant-speed.ts --out S`. Writes eval/variants.json (read by
src/cli/variants.test.ts) and replaces the card's text between <!-- variants:start/end -->.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

GRAPHS = ".onnx"


def load(path):
    return json.loads(Path(path).read_text())


def model_bytes(manifest: dict, variant: str | None) -> int:
    files = dict(manifest["files"])
    if variant:
        files.update(manifest["variants"][variant]["files"])
    return sum(f["bytes"] for f in files.values())


def compare(base: dict, other: dict) -> dict:
    by_id = {e["id"]: e for e in base["episodes"]}
    episodes = other["episodes"]
    same = sum(e["prediction"] == by_id[e["id"]]["prediction"] for e in episodes)
    flipped = sum(e["correct"] != by_id[e["id"]]["correct"] for e in episodes)
    tasks = {t: v["accuracy"] for t, v in other["tasks"].items()}
    delta = {t: tasks[t] - base["tasks"][t]["accuracy"] for t in tasks}
    return {"agreement": same / len(episodes), "episodes": len(episodes), "flipped": flipped,
            "accuracy": sum(e["correct"] for e in episodes) / len(episodes), "tasks": tasks, "delta": delta}


def decode_cost(speed: dict) -> dict:
    """variant → {shots: CPU ms per decoded token} from scripts/variant-speed.ts."""
    out: dict = {}
    for r in speed["rows"]:
        out.setdefault(r["variant"], {})[str(r["shots"])] = round(r["cpuMsPerToken"], 2)
    return out


def points(change: float) -> str:
    return f"{round(100 * change, 1) + 0:+.1f}" if round(100 * change, 1) else "±0"


def card_text(summary: dict) -> str:
    f32 = summary["float32"]
    lines = ["| variant | backends (auto picks it for) | model bytes | vs float32 | same answer as float32 | "
             f"accuracy (all {f32['episodes']:,}) | decode, CPU ms/token (0 / 8 shots) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]

    def speed(entry):
        s = entry.get("decode_cpu_ms_per_token")
        return " / ".join(f"{v:.2f}" for v in s.values()) if s else "—"

    lines.append(f"| float32 (default) | every backend | {f32['bytes']:,} | 1.00 | — | "
                 f"{100 * f32['accuracy']:.1f} % | {speed(f32)} |")
    for name, v in summary["variants"].items():
        backends = (", ".join(v["backends"]) or "none: by name only") + (f" with {', '.join(v['requires'])}" if v.get("requires") else "")
        lines.append(f"| {name} | {backends} | {v['bytes']:,} | {v['bytes'] / f32['bytes']:.2f} | "
                     f"{100 * v['agreement']:.1f} % | {100 * v['accuracy']:.1f} % ({points(v['accuracy'] - f32['accuracy'])}) "
                     f"| {speed(v)} |")
    names = list(summary["variants"])
    lines += ["", "<details><summary>Accuracy change per task, in points (50 episodes each: one episode is 2 points)</summary>",
              "", "| task | float32 | " + " | ".join(f"{n} Δ" for n in names) + " |",
              "| --- | ---: | " + " | ".join("---:" for _ in names) + " |"]
    for task, acc in f32["tasks"].items():
        cells = [f"{100 * summary['variants'][n]['delta'][task]:+.0f}" if round(100 * summary['variants'][n]['delta'][task])
                 else "0" for n in names]
        lines.append(f"| {task} | {100 * acc:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", "</details>"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--float32", required=True)
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=REPORT")
    ap.add_argument("--speed", help="scripts/variant-speed.ts output")
    ap.add_argument("--measured", default="", help="where and how (machine, date)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--card")
    args = ap.parse_args()
    manifest = load(Path(args.model) / "manifest.json")
    base = load(args.float32)
    benches = decode_cost(load(args.speed)) if args.speed else {}
    summary = {"measured": args.measured,
               "float32": {"bytes": model_bytes(manifest, None),
                           "accuracy": sum(e["correct"] for e in base["episodes"]) / len(base["episodes"]),
                           "episodes": len(base["episodes"]),
                           "tasks": {t: v["accuracy"] for t, v in base["tasks"].items()}},
               "variants": {}}
    if "float32" in benches:
        summary["float32"]["decode_cpu_ms_per_token"] = benches["float32"]
    for spec in args.variant:
        name, path = spec.split("=", 1)
        meta = manifest["variants"][name]
        entry = {"backends": meta["backends"], **({"requires": meta["requires"]} if meta.get("requires") else {}),
                 "bytes": model_bytes(manifest, name), **compare(base, load(path))}
        if name in benches:
            entry["decode_cpu_ms_per_token"] = benches[name]
        summary["variants"][name] = entry
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    if args.card:
        card = Path(args.card)
        text = card.read_text()
        block = f"<!-- variants:start -->\n{card_text(summary)}\n<!-- variants:end -->"
        if "<!-- variants:start -->" in text:
            text = re.sub(r"<!-- variants:start -->.*?<!-- variants:end -->", lambda _: block, text, flags=re.S)
        else:
            text = text.replace("\n## Prompt format", f"\n## Variants\n{block}\n\n## Prompt format", 1)
        card.write_text(text)
    print(card_text(summary))


if __name__ == "__main__":
    main()
