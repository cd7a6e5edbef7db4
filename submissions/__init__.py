"""Reference baselines, installed as ``serbench.baselines``: modules of Submission classes."""
