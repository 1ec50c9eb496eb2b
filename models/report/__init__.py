"""Tables and plots from evaluation reports, and the model card blocks they rewrite, run from models/:

    python3 -m report.results eval/report.json --card ../public/models/emojiworld/MODEL_CARD.md   # <!-- results -->
    python3 -m report.variants --model ... --float32 ... --card ...                                # <!-- variants -->
    python3 -m report.ablations eval/ablations-2000                                                # ablation table
"""
