"""Diagnostic probes of trained stages (validation data only, never the held-out style), run from models/:

    python3 -m probes.bridge     # stage 3's validation probes and more on any trained bridge
    python3 -m probes.lm         # how far the frozen LM's in-context copying reaches (more labels, longer prompts)
    python3 -m probes.motion     # where a clip's direction of motion is lost (linear probes)
"""
