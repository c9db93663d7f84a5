"""Approximations of H^{-1} b with Hessian-vector products."""
import torch


def conjugate_gradient(matvec, b, x0=None, tol=1e-10, max_iter=None):
    """Solve ``A x = b`` for a symmetric positive definite ``A``.

    ``matvec(v)`` returns ``A v``. Stops when ``||A x - b|| <= tol * ||b||``
    or after ``max_iter`` products (default: the dimension).
    """
    max_iter = b.numel() if max_iter is None else max_iter
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - matvec(x) if x0 is not None else b.clone()
    p = r.clone()
    rr = r @ r
    target = (tol * b.norm()) ** 2
    for _ in range(max_iter):
        if rr <= target:
            break
        ap = matvec(p)
        alpha = rr / (p @ ap)
        x.add_(p, alpha=alpha)
        r.sub_(ap, alpha=alpha)
        rr_new = r @ r
        p.mul_(rr_new / rr).add_(r)
        rr = rr_new
    return x


def neumann(hvp_fn, b, n_steps, step):
    """Neumann series ``step * sum_{q=0}^{n_steps} (I - step H)^q b``.

    It approximates ``H^{-1} b`` (exactly as ``n_steps -> inf`` when
    ``0 < step < 2 / L``, L the largest eigenvalue of H). ``hvp_fn(p)``
    returns ``H p``; StocBiO passes a callable that draws a fresh minibatch
    at every call, so each term uses its own stochastic Hessian. ``b`` is not
    modified. Costs ``n_steps`` Hessian-vector products.
    """
    p = b.clone()
    total = b.clone()
    for _ in range(n_steps):
        p.sub_(hvp_fn(p), alpha=step)
        total.add_(p)
    return total.mul_(step)
