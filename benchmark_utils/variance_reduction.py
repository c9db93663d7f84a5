"""Momentum-based variance reduction (STORM, Cutkosky & Orabona 2019)."""


def storm_update(d, g_new, g_old, momentum):
    """STORM correction, in place on ``d``; returns ``d``.

        d <- g_new + (1 - momentum) * (d - g_old)

    ``g_new`` and ``g_old`` are the same stochastic estimator (same batches)
    at the new and at the previous point. ``momentum = 1`` gives the plain
    estimator ``g_new`` (``g_old`` may then be None).
    """
    if momentum == 1:
        return d.copy_(g_new)
    return d.sub_(g_old).mul_(1 - momentum).add_(g_new)
