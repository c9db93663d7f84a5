"""Bilevel problems (``BilevelProblem`` subclasses) and exact tools on them."""
