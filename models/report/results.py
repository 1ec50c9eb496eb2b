"""Turn CLI evaluation reports into the model card's table and plot.

    cd models && /usr/bin/python3 -m report.results eval/report.json [--card ../public/models/emojiworld/MODEL_CARD.md] [--baseline OLD.json]
    cd models && /usr/bin/python3 -m report.results eval/report.json --questions eval/episodes/all.jsonl
    cd models && /usr/bin/python3 -m report.results eval/report.json --supports eval/episodes/all.jsonl

Reads the JSON written by `flamingo-web eval --out` (accuracy per task, held-out data only) and
writes eval/results.md (the table) and eval/accuracy-vs-shots.png (accuracy against shots per
task family, like the paper's Figure). The numbers are the CLI's: ONNX graphs, not PyTorch.
"""
from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

SHOTS = (0, 1, 2, 3, 4, 8, 16, 32)
TASK_RE = re.compile(r"^(?P<family>.+?)-(?P<shots>\d+)shot$")


def by_family(tasks: dict) -> dict:
    fam = defaultdict(dict)
    for task, t in tasks.items():
        m = TASK_RE.match(task)
        if m:
            fam[m["family"]][int(m["shots"])] = t
        else:
            fam[task][None] = t
    return dict(sorted(fam.items()))


def table(tasks: dict, baseline: dict | None = None) -> str:
    """Accuracy (%) per task family and shot count; with `baseline` (another report's tasks, same
    episodes) each cell is "this (baseline)"."""
    fam = by_family(tasks)
    old = by_family(baseline) if baseline else {}

    def cell(name, k, shots):
        if k not in shots:
            return ""
        if not baseline:
            return f"{100 * shots[k]['accuracy']:.1f}"
        before = old.get(name, {}).get(k)
        return f"{100 * shots[k]['accuracy']:.0f}" + (f" ({100 * before['accuracy']:.0f})" if before else "")

    lines = ["| task | " + " | ".join(f"{k}-shot" for k in SHOTS) + " | n |",
             "| --- | " + " | ".join("---:" for _ in SHOTS) + " | ---: |"]
    for name, shots in fam.items():
        cells = [cell(name, k, shots) for k in SHOTS]
        n = max(t["n"] for t in shots.values())
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {n} |")
    past = [f"{task} {t['pastTrainedContext']}/{t['n']}" for task, t in tasks.items() if t.get("pastTrainedContext")]
    if past:
        lines += ["", "Prompts longer than the sequences the model was trained on (manifest `lm.context_length`): "
                  + ", ".join(past) + "."]
    return "\n".join(lines)


def question_families(report: dict, episodes: Path) -> str:
    """Scene and clip QA by question family ('how many', 'which way', ...): which questions fail.
    Joins the report's per-episode results with the episode file's query text."""
    correct = {e["id"]: e["correct"] for e in report["episodes"]}
    hits, totals = defaultdict(int), defaultdict(int)
    for line in episodes.read_text().splitlines():
        e = json.loads(line)
        if e["id"] not in correct or not e["task"].startswith(("scene-qa", "clip-qa")):
            continue
        question = [s["text"] for s in e["segments"] if "text" in s][-1]
        key = (e["task"].split("-")[0], " ".join(question.split()[1:3]).rstrip("?"))
        hits[key] += correct[e["id"]]
        totals[key] += 1
    rows = [f"| {kind} | {family} | {hits[kind, family]}/{totals[kind, family]} |" for kind, family in sorted(totals)]
    return "\n".join(["| kind | question | correct |", "| --- | --- | ---: |", *rows])


def answer_of(text: str) -> str:
    """A support's answer: what follows its last ':' ("Output: dog face." -> "dog face"), compared as the CLI does."""
    return text.rsplit(":", 1)[-1].strip().lower().removesuffix(".").strip()


def rices_supports(report: dict, episodes: Path) -> str:
    """For every task with RICES supports (the CLI reports the pool entries it chose, least to most similar): how
    often the right answer is among the supports and in the last (most similar) one, how often the prediction
    copies some support's answer, and from how far back (1 = the most similar). Tells a failure to find the
    answer among look-alikes from its absence."""
    chosen = {e["id"]: e for e in report["episodes"] if e.get("supports")}
    pools, rows = {}, defaultdict(list)
    for line in episodes.read_text().splitlines():
        e = json.loads(line)
        if e["id"] not in chosen:
            continue
        path = (episodes.parent / e["rices"]["pool"]).resolve()
        if path not in pools:
            pools[path] = [answer_of([s["text"] for s in json.loads(l)["segments"] if "text" in s][-1])
                           for l in path.read_text().splitlines() if l.strip()]
        r = chosen[e["id"]]
        answers = [pools[path][i] for i in r["supports"]][::-1]  # most similar first
        prediction, answer = answer_of(r["prediction"]), answer_of(r["answer"])
        rows[e["task"]].append((answer in answers, answers[0] == answer,
                                answers.index(prediction) + 1 if prediction in answers else 0, r["correct"]))
    pct = lambda xs: f"{100 * sum(xs) / len(xs):.0f}"
    out = ["| task | n | answer among supports | answer most similar | copies a support | copies the most similar "
           "| copies one further back (median place) | correct |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for task in sorted(rows, key=lambda t: (TASK_RE.match(t)["family"], int(TASK_RE.match(t)["shots"]))
                       if TASK_RE.match(t) else (t, 0)):
        r = rows[task]
        back = sorted(place for _, _, place, _ in r if place > 1)
        out.append(f"| {task} | {len(r)} | {pct([a for a, *_ in r])} | {pct([m for _, m, *_ in r])} | "
                   f"{pct([p > 0 for *_, p, _ in r])} | {pct([p == 1 for *_, p, _ in r])} | "
                   f"{pct([p > 1 for *_, p, _ in r])} ({back[len(back) // 2] if back else '-'}) | {pct([c for *_, c in r])} |")
    return "\n".join(out)


def plot(tasks: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fam = {k: v for k, v in by_family(tasks).items() if len(v) > 1}
    fig, ax = plt.subplots(figsize=(8.5, 4.2), dpi=110)
    for name, shots in fam.items():
        ks = sorted(k for k in shots if k is not None)
        xs = [max(k, 0.5) for k in ks]  # 0-shot drawn at 0.5 on the log axis
        ax.plot(xs, [100 * shots[k]["accuracy"] for k in ks], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks([0.5, 1, 2, 3, 4, 8, 16, 32], ["0", "1", "2", "3", "4", "8", "16", "32"])
    ax.set_xlabel("shots")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("EmojiWorld, held-out style (openmoji): accuracy vs shots")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--out", default=None, help="folder for results.md and the plot (default: the report's)")
    ap.add_argument("--card", help="a model card whose <!-- results --> block gets the table, the plot beside it")
    ap.add_argument("--baseline", metavar="REPORT", help="another model's report on the same episodes: cells read 'this (baseline)'")
    ap.add_argument("--questions", metavar="EPISODES", help="only print scene / clip QA by question family")
    ap.add_argument("--supports", metavar="EPISODES", help="only print what the RICES episodes' predictions copied")
    args = ap.parse_args()
    report = json.loads(Path(args.report).read_text())
    if args.questions:
        print(question_families(report, Path(args.questions)))
        return
    if args.supports:
        print(rices_supports(report, Path(args.supports)))
        return
    out = Path(args.out or Path(args.report).parent)
    md = table(report["tasks"], json.loads(Path(args.baseline).read_text())["tasks"] if args.baseline else None)
    (out / "results.md").write_text(md + "\n")
    plot(report["tasks"], out / "accuracy-vs-shots.png")
    if args.card:
        card = Path(args.card)
        text = card.read_text()
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        head, rest = text.split(start, 1)
        card.write_text(head + start + "\n" + md + "\n" + end + rest.split(end, 1)[1])
        plot(report["tasks"], card.parent / "accuracy-vs-shots.png")
    print(md)


if __name__ == "__main__":
    main()
