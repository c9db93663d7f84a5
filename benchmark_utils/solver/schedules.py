"""Step-size schedules: ``schedule(k)`` is the factor of iteration k >= 1.

A schedule is a function of the (outer) iteration counter k = 1, 2, ...
returning the factor that multiplies a base step size (or multiplier
increment, or regularization weight).
"""
from benchmark_utils.validation import check_choice, check_interval

#: Largest exponent of a user-set :func:`polynomial` schedule: 1 / k^10 is
#: below 1e-30 after 1000 iterations, so a larger one only switches a term
#: off sooner, and k^exponent overflows a float (an OverflowError in the
#: middle of a run) from k = 2 once the exponent passes 1024.
MAX_EXPONENT = 10.0

#: Exponents of the ``"decreasing"`` schedule of F2SA (Kwon et al., ICML
#: 2023, also used by the F2SA-Adam report's code): alpha_k = alpha /
#: k^(5/7) (y), gamma_k = gamma / k^(4/7) (z), beta_k = beta / k^(4/7) (x),
#: delta_k = delta / k^(1/7) (multiplier increment).
F2SA_EXPONENTS = {"alpha": 5 / 7, "gamma": 4 / 7, "beta": 4 / 7,
                  "delta": 1 / 7}

#: Exponents of the ``"decreasing"`` schedule of the STORM solvers MRBO and
#: SUSTAIN (those of the JAX bilevel benchmark): beta_k = beta / k^(1/3)
#: (y), alpha_k = alpha / k^(1/3) (x), momentum m_k = min(1, m / k^(2/3)).
STORM_EXPONENTS = {"inner": 1 / 3, "outer": 1 / 3, "momentum": 2 / 3}


def constant(k):
    return 1.0


def polynomial(exponent, offset=0):
    """k -> 1 / (k + offset) ** exponent."""
    def schedule(k):
        return 1.0 / (k + offset) ** exponent
    return schedule


def check_exponent(value, name):
    """An exponent of :func:`polynomial` in (0, :data:`MAX_EXPONENT`],
    returned as a float."""
    return float(check_interval(value, name, 0, MAX_EXPONENT))


def decreasing_or_constant(kind, exponents, name="schedule"):
    """One schedule per entry of ``exponents`` (a dict name -> exponent).

    ``kind="decreasing"``: ``polynomial(exponent)`` (k -> 1 / k^exponent);
    ``kind="constant"``: every schedule is :func:`constant`. Raises a
    ValueError naming ``name`` for any other ``kind``.
    """
    check_choice(kind, name, ["decreasing", "constant"])
    if kind == "constant":
        return {key: constant for key in exponents}
    return {key: polynomial(exponent) for key, exponent in exponents.items()}
