"""serbench: a speech emotion recognition benchmark that counts every rater.

The data flows one way: corpus reader -> ratings table -> task (folds, rule
targets) -> runner -> predictions -> scorer -> leaderboard.  This package holds
the harness; task definitions live in the repository's ``tasks/`` folder.
"""

__version__ = "0.1.0"
