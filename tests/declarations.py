"""What every solver class declares for the tests, and how a missing
declaration is reported: as a sentence saying what to add."""

#: The keys of each setting of ``convergence_config``: required, optional.
KEYS = {"full_batch": ({"params", "n_iter"}, {"allowance"}),
        "minibatch": ({"params", "n_iter", "gap_ratio"}, set())}
HOW_TO = ("see docs/solver_template.py for the form and "
          "tests/test_convergence.py for what is checked")


def declaration_errors(solver_cls):
    """What is missing or malformed in the convergence declarations of
    ``solver_cls``, as sentences saying what to add (empty if none)."""
    name = getattr(solver_cls, "name", solver_cls.__name__)
    config = getattr(solver_cls, "convergence_config", None)
    if not isinstance(config, dict):
        return [f"{name} declares no convergence_config: add to its class "
                f"convergence_config = {{'full_batch': {{'params': ..., "
                f"'n_iter': ...}}, 'minibatch': {{'params': ..., 'n_iter': "
                f"..., 'gap_ratio': ...}}}}, or a string saying why a check "
                f"does not apply ({HOW_TO})"]
    errors = []
    for kind, (required, optional) in KEYS.items():
        value = config.get(kind)
        if isinstance(value, str):
            continue
        if not isinstance(value, dict):
            errors.append(
                f"{name}.convergence_config has no {kind!r} entry: add its "
                f"settings {sorted(required)} or a string saying why the "
                f"check does not apply ({HOW_TO})")
            continue
        missing = required - set(value)
        unknown = set(value) - required - optional
        if missing or unknown:
            errors.append(
                f"{name}.convergence_config[{kind!r}] needs the keys "
                f"{sorted(required)} (optional: {sorted(optional)}); missing "
                f"{sorted(missing)}, unknown {sorted(unknown)} ({HOW_TO})")
    return errors
