"""The paper's methods: losses, the co-occurrence penalty, rater fusion, crowd layers, training.

Baselines in ``submissions/`` build on these; the harness (tasks, runner,
scorer) does not depend on them.  Each module cites its section of
``docs/methods.md``.
"""
