"""The ablation table (models/eval/ablations.md) from the runs' logs and CLI reports.

    cd models && /usr/bin/python3 -m report.ablations [eval/ablations]

Each folder holds one stage-3 run's log.jsonl and eval.jsonl (train.flamingo) and the
report.json of `flamingo-web eval` on the exported run. Training loss is the mean of the last five
logged steps (every run sees the same batches: same seed, same data stream).
"""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "eval", "ablations")
order = ['baseline', 'no-tanh', 'xattn-every-2', 'mlp-resampler', 'unfrozen-lm', 'no-interleaved']
print('| run | train loss, pages | pairs | clips | validation binding 5-way (noto) | binding-5way-1shot | scene-qa-4shot | classify-5way-1shot | naming-novel-1shot | CPU min |')
print('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for name in order:
    d = f'{root}/{name}'
    if not os.path.exists(f'{d}/log.jsonl'):
        continue
    logs = [json.loads(l) for l in open(f'{d}/log.jsonl')][-5:]
    mean = lambda k: sum(r[k] for r in logs if k in r) / max(1, sum(1 for r in logs if k in r)) if any(k in r for r in logs) else None
    ev = [json.loads(l) for l in open(f'{d}/eval.jsonl')][-1] if os.path.exists(f'{d}/eval.jsonl') else {}
    rep = json.load(open(f'{d}/report.json'))['tasks'] if os.path.exists(f'{d}/report.json') else {}
    cell = lambda t: f"{100 * rep[t]['accuracy']:.0f}" if t in rep else ''
    fmt = lambda x: f'{x:.3f}' if x is not None else '—'
    print(f"| {name} | {fmt(mean('loss_pages'))} | {fmt(mean('loss_pairs'))} | {fmt(mean('loss_clips'))} | "
          f"{100 * ev.get('binding_probe', float('nan')):.0f} | {cell('binding-5way-1shot')} | {cell('scene-qa-4shot')} | "
          f"{cell('classify-5way-1shot')} | {cell('naming-novel-1shot')} | {ev.get('cpu_s', 0) / 60:.1f} |")
