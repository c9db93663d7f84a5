"""Implicit differentiation on a problem: H^{-1} b, y*(x), h(x), grad h(x).

- :func:`conjugate_gradient`, :func:`neumann` and :func:`random_neumann`
  (randomly truncated): approximations of ``H^{-1} b`` from
  Hessian-vector products only; :func:`power_iteration`,
  the largest eigenvalue of a symmetric operator (for step sizes 1 / L);
- :func:`solve_inner`: the full-batch inner solve y*(x) = argmin_y g(x, y)
  (Newton-CG, warm started, preconditioned where the problem offers
  ``inner_preconditioner(inner_var, outer_var)``);
- :func:`warm_value_function`: h(x) = f(x, y*(x)) with warm starts across
  calls (the ``value_function`` metric);
- :func:`hypergradient`: grad h(x) by the implicit function theorem.
"""
import torch

from benchmark_utils.validation import check_positive, check_positive_int


def conjugate_gradient(matvec, b, x0=None, tol=1e-10, max_iter=None,
                       preconditioner=None):
    """Solve ``A x = b`` for a symmetric positive definite ``A``.

    ``matvec(v)`` returns ``A v``. Starts from ``x0`` (a warm start, not
    modified; default 0) and stops when ``||A x - b|| <= tol * ||b||`` or
    after ``max_iter`` steps (default: the dimension), one product each; a
    warm start costs one more product, for its residual ``b - A x0``. With
    ``tol=0`` it runs exactly ``max_iter`` steps, unless the residual is
    exactly zero or the curvature ``p.A p`` stops being positive (a
    semi-definite or rounding-dominated ``A``), where it stops with the
    current ``x`` rather than divide by zero.

    ``preconditioner``: a function ``r -> M^{-1} r`` for a symmetric
    positive definite ``M`` close to ``A`` (preconditioned CG: the same
    iterates as CG on the system scaled by ``M^{-1/2}``); the stopping test
    stays on the residual of ``A x = b``. None: plain CG.
    """
    max_iter = b.numel() if max_iter is None else max_iter
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - matvec(x) if x0 is not None else b.clone()
    target = (tol * b.norm()) ** 2
    if preconditioner is not None:
        return _preconditioned_cg(matvec, preconditioner, x, r, target,
                                  max_iter)
    p = r.clone()
    rr = r @ r
    for _ in range(max_iter):
        if rr <= target:
            break
        ap = matvec(p)
        pap = p @ ap
        if not pap > 0:
            break
        alpha = rr / pap
        x.add_(p, alpha=alpha)
        r.sub_(ap, alpha=alpha)
        rr_new = r @ r
        p.mul_(rr_new / rr).add_(r)
        rr = rr_new
    return x


def _preconditioned_cg(matvec, preconditioner, x, r, target, max_iter):
    """The loop of :func:`conjugate_gradient` with ``z = M^{-1} r``: steps
    along ``p = z + beta p`` with ``alpha = r.z / p.A p``."""
    z = preconditioner(r)
    p = z.clone()
    rz = r @ z
    rr = r @ r
    for _ in range(max_iter):
        if rr <= target or not rz > 0:
            break
        ap = matvec(p)
        pap = p @ ap
        if not pap > 0:
            break
        alpha = rz / pap
        x.add_(p, alpha=alpha)
        r.sub_(ap, alpha=alpha)
        rr = r @ r
        z = preconditioner(r)
        rz_new = r @ z
        # p <- z + beta p in one pass (on vectors of millions of entries,
        # each pass costs about as much as a tenth of a product)
        torch.add(z, p, alpha=rz_new / rz, out=p)
        rz = rz_new
    return x


def power_iteration(matvec, dim, n_iter=100, dtype=torch.float64,
                    device="cpu", seed=0):
    """Largest eigenvalue of a symmetric positive semi-definite operator
    ``matvec`` on vectors of size ``dim``: ``n_iter`` power iterations from
    a seeded random start (a lower estimate that converges from below)."""
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(dim, generator=gen, dtype=torch.float64).to(
        dtype=dtype, device=device)
    v /= v.norm()
    value = 0.0
    for _ in range(n_iter):
        w = matvec(v)
        value = float(v @ w)
        norm = w.norm()
        if not norm > 0:
            break
        v = w / norm
    return value


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


def neumann_step(problem, value=None, name="neumann_step"):
    """The step of a Neumann series on ``problem``: ``value`` (validated), or
    by default 1 / L with L the problem's upper bound of the largest
    eigenvalue of H (``inner_hessian_bound``), so that the series converges
    (a small step such as the inner step keeps only a few percent of
    H^{-1} and makes a method stall at a wrong point)."""
    if value is None:
        return 1 / problem.inner_hessian_bound()
    return check_positive(value, name)


def random_neumann(hvp_fn, b, n_steps, step, generator):
    """Randomly truncated Neumann series ``n_steps * step * (I - step H)^p b``
    with ``p`` drawn uniformly in ``{0, ..., n_steps - 1}`` by ``generator``
    (a ``torch.Generator``).

    The estimator of S. Ghadimi, M. Wang, "Approximation methods for bilevel
    programming", arXiv 1802.02246, 2018, Algorithm 3. For a fixed H its
    mean over p is ``step * sum_{q=0}^{n_steps-1} (I - step H)^q b``, the
    series of :func:`neumann` with ``n_steps - 1`` products, which
    approximates ``H^{-1} b`` (exactly as ``n_steps -> inf`` when
    ``0 < step < 2 / L``); the mean misses ``(I - step H)^n_steps H^{-1} b``.
    ``hvp_fn(u)`` returns ``H u`` and, as for :func:`neumann`, may draw a
    fresh minibatch at every call. ``b`` is not modified. Costs p
    Hessian-vector products, ``(n_steps - 1) / 2`` on average.
    """
    n_steps = check_positive_int(n_steps, "n_steps")
    n_products = int(torch.randint(n_steps, (1,), generator=generator))
    u = b.clone()
    for _ in range(n_products):
        u.sub_(hvp_fn(u), alpha=step)
    return u.mul_(n_steps * step)


def _floor_tol(tol, dtype):
    """``tol`` floored at 10 machine epsilons of ``dtype`` (1e-10 is out of
    reach in float32)."""
    return max(tol, 10 * torch.finfo(dtype).eps)


def _preconditioner(problem, inner_var, outer_var):
    """The problem's preconditioner of H at (x, y)
    (``problem.inner_preconditioner``, a function ``r -> M^{-1} r``), or
    None for problems without one."""
    make = getattr(problem, "inner_preconditioner", None)
    return None if make is None else make(inner_var, outer_var)


def _forcing(gnorm, previous, forcing, threshold):
    """Relative tolerance of the next Newton system. The first one:
    sqrt(||g||) (as fast as Newton's local convergence allows, so that a
    warm start or a single step lands close). The next ones: S. C.
    Eisenstat and H. F. Walker's choice 2 ("Choosing the forcing terms in
    an inexact Newton method", SIAM J. Sci. Comput., 1996), 0.9 (||g_k|| /
    ||g_{k-1}||)^2, safeguarded by 0.9 forcing_{k-1}^2 when that exceeds
    0.1: loose while the gradient decreases slowly (damped steps gain
    little from accurate directions), tight once Newton converges fast.
    At most 0.5; never below half the stopping threshold over ||g|| (the
    step that ends the solve needs no more)."""
    if previous is None:
        forcing = gnorm ** 0.5
    else:
        safeguard = 0.9 * forcing ** 2
        forcing = 0.9 * (gnorm / previous) ** 2
        if safeguard > 0.1:
            forcing = max(forcing, safeguard)
    return min(0.5, max(forcing, 0.5 * threshold / gnorm))


def solve_inner(problem, outer_var, inner_var=None, tol=1e-6, max_iter=50):
    """Newton-CG with an Armijo line search, warm started at ``inner_var``.

    Stops when ``||grad_y g|| <= tol * max(1, ||grad_y g(x, y_start)||)``
    (``tol`` floored at 10 machine epsilons of the dtype: 1e-10 is out of
    reach in float32) or when the line search can no longer decrease g
    (once the predicted decrease is below the rounding of g's value, a full
    step is judged by the gradient norm instead). Each Newton system is
    solved by conjugate gradient to the relative residual of
    :func:`_forcing`, preconditioned by the problem's
    ``inner_preconditioner`` where it has one (the diagonal of H on
    regularization selection). Returns ``(inner_var, grad_norm)``.
    """
    y = (problem.inner_var0 if inner_var is None else inner_var).clone()
    grad = problem.grad_inner_y(y, outer_var)
    gnorm = float(grad.norm())
    eps = torch.finfo(y.dtype).eps
    tol = _floor_tol(tol, y.dtype)
    threshold = tol * max(1.0, gnorm)
    forcing, previous = None, None
    for _ in range(max_iter):
        if not gnorm > threshold:  # also stops on nan
            break
        forcing = _forcing(gnorm, previous, forcing, threshold)
        previous = gnorm
        direction = conjugate_gradient(
            lambda v: problem.hvp(y, outer_var, v), -grad, tol=forcing,
            max_iter=200,
            preconditioner=_preconditioner(problem, y, outer_var),
        )
        slope = float(grad @ direction)
        value = problem.inner(y, outer_var)
        if -slope <= 10 * eps * abs(float(value)):
            # The step's decrease of g is below the rounding of its value,
            # which can no longer tell a better point: the full step is
            # taken if it reduces the gradient, else the solve ends.
            candidate = y + direction
            new_grad = problem.grad_inner_y(candidate, outer_var)
            new_gnorm = float(new_grad.norm())
            if not new_gnorm < gnorm:
                break
            y, grad, gnorm = candidate, new_grad, new_gnorm
            continue
        step = 1.0
        for _ in range(20):
            candidate = y + step * direction
            new_value = problem.inner(candidate, outer_var)
            # Strict decrease: at the dtype's precision floor the Armijo test
            # alone would accept steps that leave g unchanged forever.
            if new_value < value and \
                    new_value <= value + 1e-4 * step * slope:
                break
            step /= 2
        else:
            break
        y = candidate
        grad = problem.grad_inner_y(y, outer_var)
        gnorm = float(grad.norm())
    return y, gnorm


def warm_value_function(problem, outer_var, tol, max_iter=50):
    """h(x) = f(x, y*(x)) with y*(x) solved warm started at the solution of
    the previous call (kept on ``problem._y_star``; a non-finite or
    missing one restarts from ``inner_var0``). Returns ``(h, grad_norm)``."""
    warm = getattr(problem, "_y_star", None)
    if warm is None or warm.shape != problem.inner_var0.shape or \
            not bool(torch.isfinite(warm).all()):
        warm = None
    y_star, gnorm = solve_inner(problem, outer_var, inner_var=warm, tol=tol,
                                max_iter=max_iter)
    problem._y_star = y_star
    return float(problem.outer(y_star, outer_var)), gnorm


def hypergradient(problem, outer_var, inner_var, tol=1e-10, max_iter=None,
                  v0=None):
    """grad h(x) = grad_x f + J v with v = -H^{-1} grad_y f, at (x, inner_var).

    The linear system is solved by conjugate gradient (warm started at
    ``v0``, preconditioned by the problem's ``inner_preconditioner`` where
    it has one), to the relative residual ``tol`` floored at 10 machine
    epsilons of the dtype (in float32 a smaller one is never reached, and
    CG would run its ``max_iter`` steps, by default the dimension).
    Returns ``(hypergradient, v)``.
    """
    grad_y_f, grad_x_f = problem.grad_outer(inner_var, outer_var)
    v = conjugate_gradient(
        lambda u: problem.hvp(inner_var, outer_var, u), -grad_y_f,
        x0=v0, tol=_floor_tol(tol, grad_y_f.dtype), max_iter=max_iter,
        preconditioner=_preconditioner(problem, inner_var, outer_var),
    )
    return grad_x_f + problem.cross(inner_var, outer_var, v), v
