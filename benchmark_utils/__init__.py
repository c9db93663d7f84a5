"""Shared building blocks of the bilevel benchmark (problems, oracles, solvers)."""
