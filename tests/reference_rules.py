"""Reference implementations of every solver's update rules.

tests/test_reference_rules.py runs each solver a few iterations beside its
reference below and compares, after every iteration, the iterates, the
reported model and the oracle counts. A reference is written from the
rules of the solver's paper as the benchmark states them (the solver's
module docstring, docs/SOLVERS.md), and shares nothing with the solver
code but:

- the problem's oracles, called through :class:`Oracles`, which counts
  them by the benchmark's definition (a gradient call gives both partial
  gradients of one function, a fused ``inner_oracles`` call counts one
  gradient, one Hessian-vector and one cross product; values are free);
- the batches the solver drew, in the order it drew them
  (:class:`Draws`): a reference takes them in the order its rules consume
  them, so a batch used at the wrong place, or one too many or too few,
  shows;
- the random stream of the solver's generator (truncations p, Gaussian
  directions), drawn again in the order the rules state.

Every reference is a generator ``reference(ctx)`` (``ctx``: a
:class:`Context`) that yields, after each iteration, the expected
variables: ``"model"`` (the inner variable ``get_result`` reports),
``"outer_var"``, and any other state attribute of the solver by its name.
Only plain tensor arithmetic is used here, out of place.
"""
import math
from dataclasses import dataclass

import torch


# -- what a reference receives ------------------------------------------------
class Oracles:
    """The problem's oracles, counted as ``CountingProblem`` documents:
    ``grad``, ``hvp``, ``cross`` and ``value`` calls, the ``inner_samples``
    / ``outer_samples`` they processed (a batch of b samples adds b per
    product, the full set n) and their ``cost`` in half-gradients per
    sample (a value 1, a gradient 2, H v and J v 4 each). ``unchecked``
    names the counts that a reference does not fix (e.g. the products of
    an iterative solve run to a tolerance)."""

    WEIGHTS = dict(value=1, grad=2, hvp=4, cross=4)

    def __init__(self, problem):
        self.problem = problem
        self.counts = dict(grad=0, hvp=0, cross=0, value=0, inner_samples=0,
                           outer_samples=0, cost=0)
        self.unchecked = set()

    def _charge(self, kinds, idx, outer=False):
        full = self.problem.n_outer if outer else self.problem.n_inner
        n = full if idx is None else len(idx)
        for kind in kinds:
            self.counts[kind] += 1
            self.counts["cost"] += self.WEIGHTS[kind] * n
        self.counts["outer_samples" if outer else "inner_samples"] += \
            len(kinds) * n

    def grad_inner(self, y, x, idx):
        self._charge(["grad"], idx)
        return self.problem.grad_inner(y, x, idx)

    def grad_inner_y(self, y, x, idx):
        self._charge(["grad"], idx)
        return self.problem.grad_inner_y(y, x, idx)

    def grad_inner_x(self, y, x, idx):
        self._charge(["grad"], idx)
        return self.problem.grad_inner_x(y, x, idx)

    def grad_outer(self, y, x, idx):
        self._charge(["grad"], idx, outer=True)
        return self.problem.grad_outer(y, x, idx)

    def grad_outer_y(self, y, x, idx):
        self._charge(["grad"], idx, outer=True)
        return self.problem.grad_outer_y(y, x, idx)

    def grad_outer_x(self, y, x, idx):
        self._charge(["grad"], idx, outer=True)
        return self.problem.grad_outer_x(y, x, idx)

    def hvp(self, y, x, v, idx):
        self._charge(["hvp"], idx)
        return self.problem.hvp(y, x, v, idx)

    def cross(self, y, x, v, idx):
        self._charge(["cross"], idx)
        return self.problem.cross(y, x, v, idx)

    def inner_oracles(self, y, x, v, idx):
        self._charge(["grad", "hvp", "cross"], idx)
        return self.problem.inner_oracles(y, x, v, idx)

    def inner(self, y, x, idx=None):
        self._charge(["value"], idx)
        return self.problem.inner(y, x, idx)

    def outer(self, y, x, idx=None):
        self._charge(["value"], idx, outer=True)
        return self.problem.outer(y, x, idx)


class Draws:
    """What the solver drew, handed out in order.

    ``inner()`` / ``outer()``: the next batch of the inner / outer sampler
    (None for the full set). ``partition(name)``: the batches of the
    solver's fixed partition ``name`` (memory methods) and ``sample(name)``
    its next ``(batch_id, batch)`` draw. ``generator``: a copy of the
    solver's generator as it was before ``init_state``. ``notes``: the
    branches of the rules a reference went through (e.g. a clamp that
    acted), so that a test can require them.
    """

    def __init__(self):
        self.recorded = {"inner": [], "outer": []}
        self.partitions = {}
        self.generator = None
        self.solver = None
        self.notes = set()
        self._taken = {}

    def _take(self, key):
        recorded = self.recorded[key]
        k = self._taken.get(key, 0)
        if k >= len(recorded):
            raise AssertionError(
                f"the rules use more {key!r} draws than the solver made "
                f"({len(recorded)} so far)")
        self._taken[key] = k + 1
        return recorded[k]

    def inner(self):
        return self._take("inner")

    def outer(self):
        return self._take("outer")

    def partition(self, name):
        return self.partitions[name]

    def sample(self, name):
        return self._take(name)

    def untaken(self):
        """{stream: number of draws of the solver the rules did not use}."""
        left = {key: len(values) - self._taken.get(key, 0)
                for key, values in self.recorded.items()}
        return {key: n for key, n in left.items() if n}


@dataclass
class Context:
    problem: object
    params: dict
    oracles: Oracles
    draws: Draws
    n_iter: int
    #: relative tolerance of the comparison
    rtol: float = 1e-10


# -- shared arithmetic of the rules -------------------------------------------
def start(problem):
    return problem.inner_var0.clone(), problem.outer_var0.clone()


def neumann_step(ctx):
    """The Neumann step: the parameter, or 1 / L with L the problem's bound
    of H's largest eigenvalue."""
    value = ctx.params.get("neumann_step")
    return 1 / ctx.problem.inner_hessian_bound() if value is None else value


def neumann_series(hvp, b, n_terms, eta):
    """NS: eta * sum_{q=0..n} prod_{l<=q} (I - eta H_l) b, one call of
    ``hvp`` (a fresh H_l) per product."""
    term, total = b, b
    for _ in range(n_terms):
        term = term - eta * hvp(term)
        total = total + term
    return eta * total


def truncated_series(hvp, b, p, n_terms, eta):
    """RNS: Q * eta * prod_{l<=p} (I - eta H_l) b."""
    u = b
    for _ in range(p):
        u = u - eta * hvp(u)
    return n_terms * eta * u


def draw_truncation(ctx):
    """p uniform in {0, ..., Q-1}, from the solver's generator."""
    return int(torch.randint(ctx.params["n_neumann_steps"], (1,),
                             generator=ctx.draws.generator))


def decay(k, exponent, decreasing=True):
    return k ** -exponent if decreasing else 1.0


def dense_matrices(oracles, y, x, idx):
    """(H, J) of g_idx at (x, y) as dense matrices, column c the products
    with the c-th unit vector (d Hessian-vector and d cross products)."""
    eye = torch.eye(y.numel(), dtype=y.dtype)
    hess = torch.stack([oracles.hvp(y, x, e, idx) for e in eye], dim=1)
    cross = torch.stack([oracles.cross(y, x, e, idx) for e in eye], dim=1)
    return hess, cross


def newton_inner(problem, x, y, tol=1e-14):
    """y*(x) by Newton's method with dense full-batch Hessians and a
    halving line search on g (uncounted: the references of the full-solve
    solvers fix no count of these products)."""
    eye = torch.eye(y.numel(), dtype=y.dtype)
    grad = problem.grad_inner_y(y, x)
    threshold = tol * max(1.0, float(grad.norm()))
    for _ in range(100):
        if float(grad.norm()) <= threshold:
            return y
        hess = torch.stack([problem.hvp(y, x, e) for e in eye], dim=1)
        direction = -torch.linalg.solve(hess, grad)
        value, step = problem.inner(y, x), 1.0
        while problem.inner(y + step * direction, x) > value + 1e-12 and \
                step > 1e-8:
            step /= 2
        y = y + step * direction
        grad = problem.grad_inner_y(y, x)
    raise AssertionError("the reference Newton solve did not converge")


class AdamRule:
    """Adam with bias correction and eps inside the square root:
    theta <- theta - lr * m_hat / sqrt(v_hat + eps), t from 1."""

    def __init__(self, beta1, beta2, eps):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.reset()

    def reset(self):
        self.m = self.v = 0.0
        self.t = 0

    def __call__(self, param, grad, lr):
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1 ** self.t)
        v_hat = self.v / (1 - self.beta2 ** self.t)
        return param - lr * m_hat / torch.sqrt(v_hat + self.eps)


class HeavyBall:
    """buf <- momentum * buf + g (buf = g at the first step);
    theta <- theta - lr * buf."""

    def __init__(self, momentum=0.9):
        self.momentum, self.buf = momentum, None

    def __call__(self, param, grad, lr):
        self.buf = grad if self.buf is None else \
            self.momentum * self.buf + grad
        return param - lr * self.buf


def plain_step(param, grad, lr):
    return param - lr * grad


def sarah_period(ctx):
    """q = max(1, int(period_frac * (n_inner + n_outer) / batch_size)),
    batch_size "full" read as the larger set."""
    problem, batch = ctx.problem, ctx.params["batch_size"]
    if batch == "full":
        batch = max(problem.n_inner, problem.n_outer)
    return max(1, int(ctx.params["period_frac"]
                      * (problem.n_inner + problem.n_outer) / batch))


# -- SOBA, SABA (Dagreou, Ablin, Vaiter, Moreau, NeurIPS 2022) ----------------
def soba(ctx):
    o, p = ctx.oracles, ctx.params
    rho = p["step_size"]
    gamma = p["outer_ratio"] * rho
    y, x = start(ctx.problem)
    v = torch.zeros_like(y)
    while True:
        i, j = ctx.draws.inner(), ctx.draws.outer()
        grad_f_y, grad_f_x = o.grad_outer(y, x, j)
        d_y = o.grad_inner_y(y, x, i)
        d_v = o.hvp(y, x, v, i) + grad_f_y
        d_x = o.cross(y, x, v, i) + grad_f_x
        y, v, x = y - rho * d_y, v - rho * d_v, x - gamma * d_x
        yield dict(model=y, outer_var=x, v=v)


class _Memory:
    """SAGA memory of one table: the last values per fixed batch, and the
    estimate new - memory[b] + sum_b' weight[b'] memory[b']."""

    def __init__(self, weights):
        self.weights, self.rows = weights, {}

    def estimate(self, b, new):
        if len(self.weights) == 1:   # one batch: plain gradient descent
            return new
        mean = sum(w * self.rows[c] for c, w in enumerate(self.weights))
        estimate = new - self.rows[b] + mean
        self.rows[b] = new
        return estimate


def saba(ctx):
    o, p, draws, problem = ctx.oracles, ctx.params, ctx.draws, ctx.problem
    rho = p["step_size"]
    gamma = p["outer_ratio"] * rho
    y, x = start(problem)
    v = torch.zeros_like(y)
    tables = {}
    for name, n in (("inner_partition", problem.n_inner),
                    ("outer_partition", problem.n_outer)):
        batches = draws.partition(name)
        if len(batches) > 1:
            # a partition of the samples, weighted by batch size
            assert torch.equal(torch.cat(batches).sort().values,
                               torch.arange(n)), name
        weights = [1.0 if b is None else len(b) / n for b in batches]
        tables[name] = [_Memory(weights) for _ in range(5 if name[0] == "i"
                                                        else 2)]
    # memory initialization: one pass over every batch at (y0, v0 = 0, x0)
    for name, directions in (
            ("inner_partition", lambda idx: (o.grad_inner_y(y, x, idx),
                                             o.hvp(y, x, v, idx),
                                             o.cross(y, x, v, idx))),
            ("outer_partition", lambda idx: o.grad_outer(y, x, idx))):
        batches = draws.partition(name)
        if len(batches) > 1:
            for b, idx in enumerate(batches):
                for table, value in zip(tables[name], directions(idx)):
                    table.rows[b] = value
    while True:
        b_i, i = draws.sample("inner_partition")
        b_j, j = draws.sample("outer_partition")
        grad_g, hvp, cross = (
            table.estimate(b_i, value) for table, value in zip(
                tables["inner_partition"], (o.grad_inner_y(y, x, i),
                                            o.hvp(y, x, v, i),
                                            o.cross(y, x, v, i))))
        grad_f_y, grad_f_x = (
            table.estimate(b_j, value) for table, value in zip(
                tables["outer_partition"], o.grad_outer(y, x, j)))
        y, v, x = (y - rho * grad_g, v - rho * (hvp + grad_f_y),
                   x - gamma * (cross + grad_f_x))
        yield dict(model=y, outer_var=x, v=v)


# -- StocBiO (Ji, Yang, Liang, ICML 2021) -------------------------------------
def stocbio(ctx):
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    beta = p["step_size"]
    alpha = p["outer_ratio"] * beta
    eta = neumann_step(ctx)
    y, x = start(ctx.problem)
    while True:
        for _ in range(p["n_inner_steps"]):
            y = y - beta * o.grad_inner_y(y, x, draws.inner())
        b, c = o.grad_outer(y, x, draws.outer())
        v = -neumann_series(lambda u: o.hvp(y, x, u, draws.inner()), b,
                            p["n_neumann_steps"], eta)
        x = x - alpha * (c + o.cross(y, x, v, draws.inner()))
        yield dict(model=y, outer_var=x)


# -- full-solve baselines -----------------------------------------------------
def implicit_gd(ctx):
    """x <- x - step * grad h(x), grad h = grad_x f + J v*, v* = -H^{-1}
    grad_y f at y*(x), both solved exactly."""
    problem, o = ctx.problem, ctx.oracles
    # the solves run to a tolerance: their products are not fixed by the
    # rules; the one cross product per iteration is
    o.unchecked.update({"grad", "hvp", "value", "inner_samples",
                        "outer_samples", "cost"})
    y, x = start(problem)
    y = newton_inner(problem, x, y)
    eye = torch.eye(y.numel(), dtype=y.dtype)
    while True:
        grad_f_y, grad_f_x = problem.grad_outer(y, x)
        hess = torch.stack([problem.hvp(y, x, e) for e in eye], dim=1)
        v = -torch.linalg.solve(hess, grad_f_y)
        x = x - ctx.params["step_size"] * (grad_f_x + o.cross(y, x, v, None))
        y = newton_inner(problem, x, y)
        yield dict(model=y, outer_var=x)


def inner_only(ctx):
    """x stays at x0; the model reaches y*(x0) (checked once the solver's
    Newton steps have converged, at the last iteration)."""
    problem, o = ctx.problem, ctx.oracles
    o.unchecked.update({"grad", "hvp", "value", "inner_samples",
                        "outer_samples", "cost"})
    y, x = start(problem)
    for k in range(1, ctx.n_iter + 1):
        expected = dict(outer_var=x)
        if k == ctx.n_iter:
            expected["model"] = newton_inner(problem, x, y)
        yield expected


def optuna(ctx):
    """The trials are the black box's draws: the first is x0, every trial
    lies in the box, its value is h(x) = f(x, y*(x)) (y*(x) solved from
    inner_var0) and the reported model is the best trial so far."""
    problem, o, p = ctx.problem, ctx.oracles, ctx.params
    o.unchecked.update({"grad", "hvp", "value", "inner_samples",
                        "outer_samples", "cost"})
    y0, x0 = start(problem)
    best = None
    for k in range(ctx.n_iter):
        trial = ctx.draws.solver.study.trials[k]
        x = torch.tensor([trial.params[f"x{c}"] for c in range(x0.numel())],
                         dtype=x0.dtype)
        if k == 0:
            assert torch.equal(x, x0), "the first trial is not x0"
        low = torch.clamp(x0, max=p["low"])
        high = torch.clamp(x0, min=p["high"])
        assert bool(((low <= x) & (x <= high)).all()), "trial out of box"
        y = newton_inner(problem, x, y0)
        value = float(problem.outer(y, x))
        assert math.isclose(trial.value, value, rel_tol=ctx.rtol), \
            f"trial {k}: Optuna was told {trial.value}, h(x) = {value}"
        if best is None or value < best[0]:
            best = (value, y, x)
        yield dict(model=best[1], outer_var=best[2])


# -- FSLA (Li, Gu, Huang, AAAI 2022) ------------------------------------------
def fsla(ctx):
    """Algorithm 1, translated (x the outer, y the inner variable; v tracks
    +H^{-1} grad_y f): five batches xi1..xi5 per iteration (inner, outer,
    inner, outer, inner), d initialized with grad_x f_j(x0, y0) (v0 = 0),
    every step and the momentum scaled by 1 / sqrt(k + 1) with
    schedule "sqrt"."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    tau0 = p["step_size"]
    alpha0 = p["outer_ratio"] * tau0
    beta0 = tau0 if p["hia_step"] is None else p["hia_step"]
    y, x = start(ctx.problem)
    v = torch.zeros_like(y)
    d = o.grad_outer_x(y, x, draws.outer())
    for k in range(1, ctx.n_iter + 1):
        s = (k + 1) ** -0.5 if p["schedule"] == "sqrt" else 1.0
        tau, alpha, beta, eta = (tau0 * s, alpha0 * s, beta0 * s,
                                 p["momentum"] * s)
        xi1, xi3, xi5 = draws.inner(), draws.inner(), draws.inner()
        xi2, xi4 = draws.outer(), draws.outer()
        x_new = x - alpha * d
        y_new = y - tau * o.grad_inner_y(y, x_new, xi1)
        v_new = beta * o.grad_outer_y(y, x_new, xi2) + v \
            - beta * o.hvp(y, x_new, v, xi3)
        g_new = o.grad_outer_x(y_new, x_new, xi4) \
            - o.cross(y_new, x_new, v_new, xi5)
        if eta < 1:
            g_old = o.grad_outer_x(y, x, xi4) - o.cross(y, x, v, xi5)
            d = g_new + (1 - eta) * (d - g_old)
        else:
            d = g_new
        x, y, v = x_new, y_new, v_new
        yield dict(model=y, outer_var=x, v=v, d=d)


# -- penalty methods ----------------------------------------------------------
def _f2sa_steps(p, k):
    """(alpha_k, gamma_k, beta_k, delta_k): Kwon et al.'s exponents 5/7,
    4/7, 4/7, 1/7 with schedule "decreasing"."""
    dec = p["schedule"] == "decreasing"
    alpha = p["step_size"]
    return (alpha * decay(k, 5 / 7, dec),
            p["inner_ratio"] * alpha * decay(k, 4 / 7, dec),
            p["outer_ratio"] * alpha * decay(k, 4 / 7, dec),
            p["delta_lmbda"] * decay(k, 1 / 7, dec))


def _f2sa(ctx, rules):
    """F2SA (Kwon, Kwon, Wright, Nowak, ICML 2023; Algorithm 2 of the
    F2SA-Adam report) moving z, y, x by ``rules`` (plain steps, or Adam,
    Algorithm 3, whose y and z moments restart at every outer iteration)."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    y, x = start(ctx.problem)
    z, lmbda = y.clone(), p["lmbda0"]
    move_z, move_y, move_x = rules
    for k in range(1, ctx.n_iter + 1):
        alpha_k, gamma_k, beta_k, delta_k = _f2sa_steps(p, k)
        for rule in (move_y, move_z):
            getattr(rule, "reset", lambda: None)()
        for _ in range(p["n_inner_steps"]):
            z = move_z(z, o.grad_inner_y(z, x, draws.inner()), gamma_k)
            i, j = draws.inner(), draws.outer()
            y = move_y(y, o.grad_outer_y(y, x, j)
                       + lmbda * o.grad_inner_y(y, x, i), alpha_k)
        i, j = draws.inner(), draws.outer()
        x = move_x(x, o.grad_outer_x(y, x, j) + lmbda * (
            o.grad_inner_x(y, x, i) - o.grad_inner_x(z, x, i)), beta_k)
        lmbda = lmbda + delta_k
        yield dict(model=z, outer_var=x, y=y, z=z, lmbda=lmbda)


def f2sa(ctx):
    return _f2sa(ctx, (plain_step, plain_step, plain_step))


def f2sa_adam(ctx):
    p = ctx.params
    return _f2sa(ctx, tuple(AdamRule(p["beta1"], p["beta2"], p["eps"])
                            for _ in range(3)))


def bvfim(ctx):
    """BVFIM (Liu, Liu, Yuan, Zeng, Zhang, ICML 2021), eqs. (18)-(21):
    the barrier's denominator g_star - g_i(x, y) floored at
    ``barrier_floor``, g_star on the batch of the g_i(x, y) it is compared
    with."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    s = p["step_size"]
    alpha = p["outer_ratio"] * s
    y, x = start(ctx.problem)
    z = y.clone()
    for k in range(1, ctx.n_iter + 1):
        mu1, mu2, theta = (p[name] * k ** -p["decay"]
                           for name in ("mu1", "mu2", "theta"))
        tau = p["tau"] * k ** -p["tau_decay"]
        for _ in range(p["n_inner_steps"]):
            z = z - s * (o.grad_inner_y(z, x, draws.inner()) + mu1 * z)

        def weight(i):
            gap = o.inner(z, x, i) + 0.5 * mu1 * (z @ z) + mu2 \
                - o.inner(y, x, i)
            if gap < p["barrier_floor"]:
                draws.notes.add("barrier floor")
            return tau / max(float(gap), p["barrier_floor"])
        for _ in range(p["n_inner_steps"]):
            i, j = draws.inner(), draws.outer()
            y = y - s * (o.grad_outer_y(y, x, j) + theta * y
                         + weight(i) * o.grad_inner_y(y, x, i))
        i, j = draws.inner(), draws.outer()
        x = x - alpha * (o.grad_outer_x(y, x, j) + weight(i) * (
            o.grad_inner_x(y, x, i) - o.grad_inner_x(z, x, i)))
        yield dict(model=z, outer_var=x, y=y, z=z)


def minimaxopt(ctx):
    """MinimaxOPT (Wang, Pan, Pi, Zhang, 2023), the benchmark's form: one
    gradient descent-ascent step on L(x, y, z) = f + lambda (g(y) - g(z)),
    every direction at the current point, through ``optimizer``; lambda
    multiplied by ``lmbda_factor`` (capped) every ``stage_length``
    iterations."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    y, x = start(ctx.problem)
    z, lmbda = y.clone(), p["lmbda0"]
    make = {"sgd": lambda: plain_step, "momentum": HeavyBall,
            "adam": lambda: AdamRule(0.9, 0.999, 1e-8)}[p["optimizer"]]
    move_z, move_y, move_x = make(), make(), make()
    eta_x = p["outer_ratio"] * p["step_size"]
    for k in range(1, ctx.n_iter + 1):
        i, j = draws.inner(), draws.outer()
        g_y_z, g_x_z = o.grad_inner(z, x, i)
        g_y_y, g_x_y = o.grad_inner(y, x, i)
        f_y, f_x = o.grad_outer(y, x, j)
        z = move_z(z, g_y_z, p["step_size"])
        y = move_y(y, f_y / lmbda + g_y_y, p["step_size"])
        x = move_x(x, f_x + lmbda * (g_x_y - g_x_z), eta_x)
        if k % p["stage_length"] == 0:
            lmbda = min(lmbda * p["lmbda_factor"], p["lmbda_max"])
        yield dict(model=z, outer_var=x, y=y, z=z, lmbda=lmbda)


# -- approximate implicit differentiation -------------------------------------
def amigo(ctx):
    """AmIGO (Arbel & Mairal, ICLR 2022), Algorithms 1-3."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    beta = p["step_size"]
    alpha = p["outer_ratio"] * beta
    eta = beta if p["v_step"] is None else p["v_step"]
    n_v = p["n_inner_steps"] if p["n_v_steps"] is None else p["n_v_steps"]
    y, x = start(ctx.problem)
    v = torch.zeros_like(y)
    while True:
        for _ in range(p["n_inner_steps"]):
            y = y - beta * o.grad_inner_y(y, x, draws.inner())
        b, c = o.grad_outer(y, x, draws.outer())
        for _ in range(n_v):
            v = v - eta * (o.hvp(y, x, v, draws.inner()) + b)
        x = x - alpha * (c + o.cross(y, x, v, draws.inner()))
        yield dict(model=y, outer_var=x, v=v)


def aid_cg(ctx):
    """AID-BiO with N conjugate-gradient steps on H_i w = grad_y f_j, warm
    started from the previous w (the residual then costs one product)."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    beta = p["step_size"]
    alpha = p["outer_ratio"] * beta
    y, x = start(ctx.problem)
    w = torch.zeros_like(y)
    while True:
        for _ in range(p["n_inner_steps"]):
            y = y - beta * o.grad_inner_y(y, x, draws.inner())
        b, c = o.grad_outer(y, x, draws.outer())
        i = draws.inner()

        def matvec(u):
            return o.hvp(y, x, u, i)
        if p["warm_start_v"]:
            residual = b - matvec(w)
        else:
            w, residual = torch.zeros_like(b), b
        direction, rr = residual, residual @ residual
        for _ in range(p["n_cg_steps"]):
            product = matvec(direction)
            step = rr / (direction @ product)
            w = w + step * direction
            residual = residual - step * product
            rr, rr_old = residual @ residual, rr
            direction = residual + rr / rr_old * direction
        x = x - alpha * (c - o.cross(y, x, w, i))
        yield dict(model=y, outer_var=x, w=w)


def itd(ctx):
    """Reverse-mode differentiation of f_j(x, y_T(x)) through T gradient
    steps on g (Franceschi et al., ICML 2017): a forward pass storing
    (y_t, i_t), then for t = T-1..0, d <- d - beta J_t a, a <- a - beta
    H_t a (one fused call at (x, y_t) on i_t)."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    beta = p["step_size"]
    gamma = p["outer_ratio"] * beta
    y, x = start(ctx.problem)
    while True:
        y_t = y if p["warm_start"] else ctx.problem.inner_var0.clone()
        history = []
        for _ in range(p["n_inner_steps"]):
            i = draws.inner()
            history.append((y_t, i))
            y_t = y_t - beta * o.grad_inner_y(y_t, x, i)
        a, d = o.grad_outer(y_t, x, draws.outer())
        for y_s, i in reversed(history):
            _, hvp, cross = o.inner_oracles(y_s, x, a, i)
            d, a = d - beta * cross, a - beta * hvp
        x, y = x - gamma * d, y_t
        yield dict(model=y, outer_var=x)


#: TTSA's schedules: (exponent of beta_k, exponent of alpha_k)
TTSA_EXPONENTS = {"decreasing": (0.4, 0.6), "strongly_convex": (2 / 3, 1.0),
                  "constant": (0.0, 0.0)}


def ttsa(ctx):
    """TTSA (Hong, Wai, Wang, Yang, SIAM J. Optim. 2023) with the randomly
    truncated Neumann series (Ghadimi & Wang 2018, Algorithm 3)."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    beta = p["step_size"]
    alpha = p["outer_ratio"] * beta
    eta, n_terms = neumann_step(ctx), p["n_neumann_steps"]
    e_inner, e_outer = TTSA_EXPONENTS[p["schedule"]]
    y, x = start(ctx.problem)
    for k in range(1, ctx.n_iter + 1):
        y = y - beta * k ** -e_inner * o.grad_inner_y(y, x, draws.inner())
        b, c = o.grad_outer(y, x, draws.outer())
        s = truncated_series(lambda u: o.hvp(y, x, u, draws.inner()), b,
                             draw_truncation(ctx), n_terms, eta)
        x = x - alpha * k ** -e_outer * (c - o.cross(y, x, s, draws.inner()))
        yield dict(model=y, outer_var=x)


def bsa(ctx):
    """BSA (Ghadimi & Wang 2018, Algorithms 2-3): T inner steps, then the
    randomly truncated series; steps / sqrt(k) when decreasing."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    eta, n_terms = neumann_step(ctx), p["n_neumann_steps"]
    y, x = start(ctx.problem)
    for k in range(1, ctx.n_iter + 1):
        factor = decay(k, 0.5, p["schedule"] == "decreasing")
        beta = p["step_size"] * factor
        alpha = p["outer_ratio"] * p["step_size"] * factor
        for _ in range(p["n_inner_steps"]):
            y = y - beta * o.grad_inner_y(y, x, draws.inner())
        b, c = o.grad_outer(y, x, draws.outer())
        s = truncated_series(lambda u: o.hvp(y, x, u, draws.inner()), b,
                             draw_truncation(ctx), n_terms, eta)
        x = x - alpha * (c - o.cross(y, x, s, draws.inner()))
        yield dict(model=y, outer_var=x)


# -- recursive variance reduction ---------------------------------------------
def _draw_b(ctx, n_products):
    """B = (j, i, i_1..i_n), drawn in that order."""
    draws = ctx.draws
    j, i = draws.outer(), draws.inner()
    return j, i, [draws.inner() for _ in range(n_products)]


def _phi(ctx, y, x, batches, series):
    """(grad_y g_i(x, y), Phi(x, y; B) = grad_x f_j - J_i s), s from
    ``series(hvp, b)`` on the Neumann batches of B; J s from a fused call
    (its H s unused)."""
    o = ctx.oracles
    j, i, neumann = batches
    b, c = o.grad_outer(y, x, j)
    products = iter(neumann)
    s = series(lambda u: o.hvp(y, x, u, next(products)), b)
    grad_g, _, cross = o.inner_oracles(y, x, s, i)
    return grad_g, c - cross


def _storm(ctx, random_truncation):
    """MRBO (Yang, Ji, Liang, NeurIPS 2021, Algorithm 1) and SUSTAIN
    (Khanduri et al., NeurIPS 2021, Algorithm 1): STORM on grad_y g and on
    Phi, both points on one B (and one p); plain estimates at k = 1; the
    previous point is not evaluated when m_k = 1."""
    p = ctx.params
    eta, n_terms = neumann_step(ctx), p["n_neumann_steps"]
    dec = p["schedule"] == "decreasing"
    y, x = start(ctx.problem)
    y_prev = x_prev = None
    for k in range(1, ctx.n_iter + 1):
        beta = p["step_size"] * decay(k, 1 / 3, dec)
        alpha = p["outer_ratio"] * p["step_size"] * decay(k, 1 / 3, dec)
        m = min(1.0, p["momentum"] * decay(k, 2 / 3, dec))
        if random_truncation:
            n_products = draw_truncation(ctx)

            def series(hvp, b):
                return truncated_series(hvp, b, n_products, n_terms, eta)
        else:
            n_products = n_terms

            def series(hvp, b):
                return neumann_series(hvp, b, n_terms, eta)
        batches = _draw_b(ctx, n_products)
        grad_g, phi = _phi(ctx, y, x, batches, series)
        if k == 1 or m == 1:
            d_y, d_x = grad_g, phi
        else:
            old_g, old_phi = _phi(ctx, y_prev, x_prev, batches, series)
            d_y = grad_g + (1 - m) * (d_y - old_g)
            d_x = phi + (1 - m) * (d_x - old_phi)
        y_prev, x_prev = y, x
        y, x = y - beta * d_y, x - alpha * d_x
        yield dict(model=y, outer_var=x, d_y=d_y, d_x=d_x)


def mrbo(ctx):
    return _storm(ctx, random_truncation=False)


def sustain(ctx):
    return _storm(ctx, random_truncation=True)


def vrbo(ctx):
    """VRBO (Yang, Ji, Liang, NeurIPS 2021, Algorithm 2), each SARAH
    correction taken between the two points where its direction is valid:
    full refresh every q outer iterations, x step and its correction, then
    m steps on y, each with its correction."""
    p = ctx.params
    eta, n_terms = neumann_step(ctx), p["n_neumann_steps"]
    beta = p["step_size"]
    alpha = p["outer_ratio"] * beta
    period = sarah_period(ctx)

    def series(hvp, b):
        return neumann_series(hvp, b, n_terms, eta)

    def correct(d_y, d_x, new, old):
        batches = _draw_b(ctx, n_terms)
        g_new, phi_new = _phi(ctx, *new, batches, series)
        g_old, phi_old = _phi(ctx, *old, batches, series)
        return d_y + (g_new - g_old), d_x + (phi_new - phi_old)

    y, x = start(ctx.problem)
    for k in range(ctx.n_iter):
        if k % period == 0:
            ctx.draws.notes.add("full pass")
            d_y, d_x = _phi(ctx, y, x, (None, None, [None] * n_terms),
                            series)
        x_new = x - alpha * d_x
        d_y, d_x = correct(d_y, d_x, (y, x_new), (y, x))
        x = x_new
        for _ in range(p["n_inner_steps"]):
            y_old, y = y, y - beta * d_y
            d_y, d_x = correct(d_y, d_x, (y, x), (y_old, x))
        yield dict(model=y, outer_var=x, d_y=d_y, d_x=d_x)


def srba(ctx):
    """SRBA (Dagreou, Moreau, Vaiter, Ablin, AISTATS 2024): SARAH on SOBA's
    three directions, a full pass every q iterations (t = 0 included), v
    projected on the ball of radius ``v_radius`` if set."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    rho = p["step_size"]
    gamma = p["outer_ratio"] * rho
    period = sarah_period(ctx)

    def directions(y, v, x, i, j):
        grad_f_y, grad_f_x = o.grad_outer(y, x, j)
        return (o.grad_inner_y(y, x, i), o.hvp(y, x, v, i) + grad_f_y,
                o.cross(y, x, v, i) + grad_f_x)

    y, x = start(ctx.problem)
    v = torch.zeros_like(y)
    previous = None
    for t in range(ctx.n_iter):
        if t % period == 0:
            draws.notes.add("full pass")
            d = directions(y, v, x, None, None)
        else:
            i, j = draws.inner(), draws.outer()
            new = directions(y, v, x, i, j)
            old = directions(*previous, i, j)
            d = tuple(d_c + (n_c - o_c)
                      for d_c, n_c, o_c in zip(d, new, old))
        previous = (y, v, x)
        y, v, x = y - rho * d[0], v - rho * d[1], x - gamma * d[2]
        if p["v_radius"] is not None and float(v.norm()) > p["v_radius"]:
            draws.notes.add("projection")
            v = v * (p["v_radius"] / v.norm())
        yield dict(model=y, outer_var=x, v=v, d_y=d[0], d_v=d[1], d_x=d[2])


# -- first-order value-function and zeroth-order methods ----------------------
def bome(ctx):
    """BOME (Ye, Liu, Wright, Stone, Liu, NeurIPS 2022), Algorithm 1, with
    the benchmark's reported model z: one gradient step of g per iteration,
    at the current x on the batch i0, before x moves."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    beta = p["step_size"]
    gamma = p["outer_ratio"] * beta
    y, x = start(ctx.problem)
    z = y.clone()
    while True:
        y_hat = y
        for _ in range(p["n_inner_steps"]):
            y_hat = y_hat - beta * o.grad_inner_y(y_hat, x, draws.inner())
        i0, j = draws.inner(), draws.outer()
        f_y, f_x = o.grad_outer(y, x, j)
        q_y, g_x = o.grad_inner(y, x, i0)
        q_x = g_x - o.grad_inner_x(y_hat, x, i0)
        q_norm2 = q_y @ q_y + q_x @ q_x
        if p["phi"] == "grad_norm":
            phi = p["eta"] * q_norm2
        else:
            phi = p["eta"] * (o.inner(y, x, i0) - o.inner(y_hat, x, i0))
        excess = phi - f_y @ q_y - f_x @ q_x
        if excess < 0:
            draws.notes.add("multiplier clamped")
        lmbda = max(float(excess), 0.0) / (float(q_norm2) + p["eps"])
        z = z - beta * o.grad_inner_y(z, x, i0)
        y, x = y - beta * (f_y + lmbda * q_y), x - gamma * (f_x + lmbda * q_x)
        yield dict(model=z, outer_var=x, inner_var=y, y_hat=y_hat,
                   lmbda=lmbda)


def pzobo(ctx):
    """PZOBO (Sow, Ji, Liang, NeurIPS 2022), Algorithm 1: T steps from y_s
    at x, the same steps (same batches) at x + mu u_q, u_q ~ N(0, I) from
    the solver's generator, d = c + 1/Q sum_q <(y_T^q - y_T) / mu, b> u_q."""
    o, p, draws, problem = ctx.oracles, ctx.params, ctx.draws, ctx.problem
    beta, mu, n_dir = p["step_size"], p["mu"], p["n_directions"]
    gamma = p["outer_ratio"] * beta
    y, x = start(problem)
    while True:
        batches = [draws.inner() for _ in range(p["n_inner_steps"])]

        def unrolled(at):
            y_t = y
            for i in batches:
                y_t = y_t - beta * o.grad_inner_y(y_t, at, i)
            return y_t
        y_T = unrolled(x)
        directions = [torch.randn(problem.dim_outer, dtype=problem.dtype,
                                  generator=draws.generator)
                      for _ in range(n_dir)]
        b, c = o.grad_outer(y_T, x, draws.outer())
        d = c + sum(((unrolled(x + mu * u) - y_T) / mu) @ b * u
                    for u in directions) / n_dir
        x, y = x - gamma * d, y_T
        yield dict(model=y, outer_var=x)


def stable(ctx):
    """STABLE (Chen, Sun, Xiao, Yin, AISTATS 2022), Algorithm 1: STORM on
    the dense H and J of one inner batch, H projected on {H >= floor I},
    x on c - J H^{-1} b, y corrected by -H^{-1} J^T (x_new - x)."""
    o, p, draws = ctx.oracles, ctx.params, ctx.draws
    dec = p["schedule"] == "decreasing"
    y, x = start(ctx.problem)
    y_prev = x_prev = None
    for k in range(1, ctx.n_iter + 1):
        beta = p["step_size"] * decay(k, 0.5, dec)
        alpha = p["outer_ratio"] * p["step_size"] * decay(k, 0.5, dec)
        tau = p["tau"] * decay(k, 0.5, dec)
        i, j = draws.inner(), draws.outer()
        hess_new, cross_new = dense_matrices(o, y, x, i)
        if k == 1:
            hess, cross = hess_new, cross_new
        else:
            hess_old, cross_old = dense_matrices(o, y_prev, x_prev, i)
            hess = (1 - tau) * (hess - hess_old) + hess_new
            cross = (1 - tau) * (cross - cross_old) + cross_new
        eigvals, eigvecs = torch.linalg.eigh((hess + hess.T) / 2)
        if float(eigvals.min()) < p["hessian_floor"]:
            draws.notes.add("projection")
        hess = eigvecs @ torch.diag(eigvals.clamp(min=p["hessian_floor"])) \
            @ eigvecs.T
        b, c = o.grad_outer(y, x, j)
        x_new = x - alpha * (c - cross @ torch.linalg.solve(hess, b))
        y_new = y - beta * o.grad_inner_y(y, x, i) - torch.linalg.solve(
            hess, cross.T @ (x_new - x))
        y_prev, x_prev = y, x
        y, x = y_new, x_new
        yield dict(model=y, outer_var=x, hess=hess, cross=cross)


# -- registry -----------------------------------------------------------------
@dataclass
class Case:
    """Parameters of one comparison (``batch_size`` 8 unless given), its
    number of iterations, the branches the reference must go through on
    at least one problem (``notes``), and the tolerance."""

    params: dict
    n_iter: int = 3
    notes: tuple = ()
    rtol: float = 1e-10


#: solver name -> (reference, cases)
REFERENCES = {
    "SOBA": (soba, [Case(dict(step_size=0.3, outer_ratio=0.5))]),
    "SABA": (saba, [Case(dict(step_size=0.3, outer_ratio=0.5))]),
    "StocBiO": (stocbio, [Case(dict(step_size=0.3, n_inner_steps=2,
                                    n_neumann_steps=3))]),
    "Implicit-GD": (implicit_gd, [Case(dict(step_size=0.5, inner_tol=1e-13,
                                            cg_tol=1e-13), rtol=1e-9)]),
    # one inexact Newton step per iteration, to the solver's fixed
    # tolerance 1e-10 on ||grad g||: y*(x0) to about 1e-9
    "Inner-Only": (inner_only, [Case(dict(), n_iter=12, rtol=1e-8)]),
    # the solver's Newton-CG stops once its line search cannot decrease g
    # any more, which can leave ||grad g|| near 1e-9 whatever inner_tol
    "Optuna": (optuna, [Case(dict(inner_tol=1e-12), n_iter=4, rtol=1e-7)]),
    "F2SA": (f2sa, [
        Case(dict(step_size=0.1, n_inner_steps=2, delta_lmbda=0.5)),
        Case(dict(step_size=0.1, n_inner_steps=2, schedule="constant",
                  lmbda0=2.0, delta_lmbda=0.3))]),
    "F2SA-Adam": (f2sa_adam, [Case(dict(step_size=0.05, n_inner_steps=2,
                                        outer_ratio=2.0))]),
    "FSLA": (fsla, [
        Case(dict(step_size=0.3, momentum=0.5)),
        # eta = 1: no correction, the previous point is not evaluated
        Case(dict(step_size=0.3, hia_step=0.2, momentum=1.0,
                  schedule="constant"))]),
    "BVFIM": (bvfim, [
        Case(dict(n_inner_steps=2)),
        # a floor above the gap g_star - g: the clamped branch
        Case(dict(n_inner_steps=2, barrier_floor=0.5),
             notes=("barrier floor",))]),
    # lambda: 1, 2 after iteration 2, min(4, 3) after iteration 4
    "MinimaxOPT": (minimaxopt, [
        Case(dict(step_size=0.1, stage_length=2, lmbda_max=3.0,
                  optimizer=name), n_iter=4)
        for name in ("sgd", "momentum", "adam")]),
    "AmIGO": (amigo, [Case(dict(step_size=0.3, n_inner_steps=2, n_v_steps=3,
                                v_step=0.2))]),
    "AID-CG": (aid_cg, [
        Case(dict(n_inner_steps=2, n_cg_steps=2)),
        Case(dict(n_inner_steps=2, n_cg_steps=2, warm_start_v=False))]),
    "ITD": (itd, [Case(dict(n_inner_steps=3)),
                  Case(dict(n_inner_steps=3, warm_start=False))]),
    "TTSA": (ttsa, [Case(dict(n_neumann_steps=4, schedule=name))
                    for name in TTSA_EXPONENTS]),
    "BSA": (bsa, [Case(dict(n_inner_steps=2, n_neumann_steps=4))]),
    "MRBO": (mrbo, [Case(dict(n_neumann_steps=2)),
                    Case(dict(n_neumann_steps=2, schedule="constant",
                              momentum=0.3, neumann_step=0.2))]),
    # q = int(0.4 * 40 / 8) = 2: a full pass at outer iterations 0 and 2
    "VRBO": (vrbo, [Case(dict(n_inner_steps=2, n_neumann_steps=2,
                              period_frac=0.4), notes=("full pass",))]),
    "SUSTAIN": (sustain, [Case(dict(n_neumann_steps=4))]),
    "SRBA": (srba, [
        Case(dict(period_frac=0.4), n_iter=4),
        Case(dict(period_frac=0.4, v_radius=0.05), n_iter=4,
             notes=("projection",))]),
    # a small eta, so that the multiplier's clamp at 0 acts
    "BOME": (bome, [
        Case(dict(n_inner_steps=2, eta=0.05), notes=("multiplier clamped",)),
        Case(dict(n_inner_steps=2, phi="value"))]),
    "PZOBO": (pzobo, [Case(dict(n_inner_steps=2, n_directions=3))]),
    "STABLE": (stable, [
        Case(dict(step_size=0.3)),
        # a floor above H's smallest eigenvalues: the projection acts
        Case(dict(step_size=0.3, hessian_floor=0.5, schedule="decreasing"),
             notes=("projection",))]),
}
