"""Reverse-mode differentiation through unrolled inner gradient steps.

Iterative differentiation (ITD) treats the output of T inner gradient steps
from a start y_0 (independent of x),

    y_{t+1} = y_t - beta_t * grad_y g_{i_t}(x, y_t),    t = 0..T-1,

as a function y_T(x) and differentiates F(x) = f_j(x, y_T(x)) exactly.
Reverse mode (Franceschi, Donini, Frasconi, Pontil, ICML 2017) needs the
iterates: :func:`unroll` runs the forward pass and stores each y_t with its
batch i_t and step beta_t (T vectors of the inner dimension); then
:func:`reverse_hypergradient`, from ``a = grad_y f_j(x, y_T)`` and
``d = grad_x f_j(x, y_T)``, runs for t = T-1 down to 0

    d <- d - beta_t * J_{i_t}(x, y_t) a
    a <- a - beta_t * H_{i_t}(x, y_t) a

and returns d = dF/dx. Only Hessian-vector and cross products are needed,
so the closed-form oracles serve (they return detached tensors, which
autograd could not differentiate through); one fused ``inner_oracles`` call
per step gives both.

:class:`Backtracking` is the optional step rule of the forward pass: a
backtracking (Armijo) line search on the full-batch g, as jaxopt's
``GradientDescent`` with ``stepsize=0`` (Blondel et al., NeurIPS 2022). Its
accepted steps are then treated as constants of the map y_T(x).
"""
import torch


class Backtracking:
    """Backtracking line search for the steps of gradient descent on g.

    At each step the trial step s starts at ``trial`` and halves, at most
    ``max_halvings`` times, until ``g(y - s gy) <= g(y) - s / 2 ||gy||^2``;
    the last trial is accepted even if it fails. The next step's trial is
    2 s, or ``initial`` again once s <= ``min_step``. :meth:`reset` restores
    the trial to ``initial`` (jaxopt restarts it at every solve).
    """

    def __init__(self, initial=1.0, max_halvings=15, min_step=1e-6):
        self.initial = initial
        self.max_halvings = max_halvings
        self.min_step = min_step
        self.reset()

    def reset(self):
        self.trial = self.initial

    def __call__(self, value_fn, y, grad, value):
        """Accepted ``(step, y - step * grad, g(y - step * grad))``, with
        ``value`` = g(y) and ``value_fn(y)`` = g(y) (the full batch)."""
        step = self.trial
        decrease = 0.5 * float(grad @ grad)
        for k in range(self.max_halvings + 1):
            candidate = torch.add(y, grad, alpha=-step)
            new_value = float(value_fn(candidate))
            if new_value <= value - step * decrease or \
                    k == self.max_halvings:
                break
            step /= 2
        self.trial = self.initial if step <= self.min_step else 2 * step
        return step, candidate, new_value


def unroll(oracles, inner_var, outer_var, n_steps, step_size, draw_batch,
           line_search=None, tol=0.0):
    """Forward pass: ``n_steps`` gradient steps on g from ``inner_var`` (not
    modified), on a fresh batch ``draw_batch()`` each step.

    Returns ``(y_T, history)`` with ``history`` the list of
    ``(y_t, i_t, beta_t)`` that :func:`reverse_hypergradient` reads. With a
    ``line_search`` (a :class:`Backtracking`; full batch only, as it
    compares values of g) each beta_t is its accepted step instead of
    ``step_size``, and the loop stops early, before a step, once
    ``||grad_y g(x, y_t)|| <= tol``.
    """
    y, history = inner_var, []
    value = None
    if line_search is not None:
        line_search.reset()
        value = float(oracles.inner(y, outer_var))
    for _ in range(n_steps):
        batch = draw_batch()
        grad = oracles.grad_inner_y(y, outer_var, batch)
        if line_search is None:
            step, y_next = step_size, torch.add(y, grad, alpha=-step_size)
        else:
            if float(grad.norm()) <= tol:
                break
            step, y_next, value = line_search(
                lambda u: oracles.inner(u, outer_var), y, grad, value)
        history.append((y, batch, step))
        y = y_next
    return y, history


def reverse_hypergradient(oracles, outer_var, history, grad_y, grad_x):
    """dF/dx for F(x) = f(x, y_T(x)), y_T the unrolled map of ``history``
    (from :func:`unroll`) and ``(grad_y, grad_x)`` the partial gradients of f
    at (x, y_T). Costs one fused ``inner_oracles`` call per stored step
    (its gradient part unused). Does not modify its inputs."""
    a, d = grad_y.clone(), grad_x.clone()
    for y_t, batch, step in reversed(history):
        _, hvp, cross = oracles.inner_oracles(y_t, outer_var, a, batch)
        d.sub_(cross, alpha=step)
        a.sub_(hvp, alpha=step)
    return d
