"""Recipes: multi-grid experiments built on :mod:`serbench.grid` (the paper's ablation)."""
