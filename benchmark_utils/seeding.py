"""The seed of a data set's random draws (splits, label corruption, a
network's start, a simulated problem).

A data set's ``random_state`` parameter is an int (a fixed draw) or None
(the default): the draw then follows benchopt's repetition, so that
``--n-repetitions 5`` compares the solvers on five data draws, every solver
seeing the same draw at the same repetition (benchopt derives the seed from
its ``--seed``, the data set class and the repetition index). Outside a
benchopt run (a data set built by hand, ``benchopt prepare``) None gives the
draw of repetition 0 of the default seed.
"""
from benchmark_utils.validation import check_positive_int

#: The largest accepted seed (numpy's and torch's generators take 64 bits).
MAX_SEED = 2 ** 63 - 1


def dataset_seed(dataset):
    """The seed of ``dataset``'s draws (module docstring)."""
    if dataset.random_state is not None:
        seed = check_positive_int(dataset.random_state, "random_state",
                                  allow_zero=True)
        if seed > MAX_SEED:
            raise ValueError(f"random_state must be an int in [0, 2**63 - "
                             f"1] or None, got {dataset.random_state!r}.")
        return seed
    get_seed = getattr(dataset, "get_seed", None)  # (a benchopt data set)
    try:
        return _default_seed() if get_seed is None \
            else get_seed(use_repetition=True)
    except ValueError:  # no benchopt run (or no repetition) in context
        return _default_seed()


def _default_seed():
    """The seed benchopt gives repetition 0 with its default ``--seed``."""
    from benchopt.utils.run_context import RunContext

    return RunContext(base_seed="0", repetition=0).get_seed(
        "Dataset", use_repetition=True)
