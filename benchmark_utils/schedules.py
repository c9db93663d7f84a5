"""Step-size schedules: ``schedule(k)`` is the factor of iteration k >= 1."""


def constant(k):
    return 1.0


def polynomial(exponent, offset=0):
    """k -> 1 / (k + offset) ** exponent."""
    def schedule(k):
        return 1.0 / (k + offset) ** exponent
    return schedule
