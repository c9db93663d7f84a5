"""Autograd oracles of a bilevel problem.

Every function takes a loss ``fn(inner_var, outer_var, idx) -> scalar`` and
returns first or second order derivatives of it. They are the default oracles
of :class:`benchmark_utils.problems.base.BilevelProblem` and the reference that
closed-form oracles are tested against.

Notation: ``H v = d2_yy g v`` and ``J v = d2_xy g v`` (the
x-gradient of ``<grad_y g, v>``).

:func:`dense_second_order` builds H and J as dense matrices with
``torch.func``, for solvers that need them whole (small dimensions only).
"""
import torch


def _leaves(*tensors):
    return [t.detach().requires_grad_(True) for t in tensors]


def value_and_grads(fn, inner_var, outer_var, idx=None):
    """Return ``fn`` and its gradients in ``inner_var`` and ``outer_var``."""
    with torch.enable_grad():
        y, x = _leaves(inner_var, outer_var)
        value = fn(y, x, idx)
        grad_y, grad_x = torch.autograd.grad(value, (y, x), allow_unused=True)
    return (value.detach(), _dense(grad_y, inner_var),
            _dense(grad_x, outer_var))


def grad_y(fn, inner_var, outer_var, idx=None):
    with torch.enable_grad():
        y = inner_var.detach().requires_grad_(True)
        value = fn(y, outer_var.detach(), idx)
        (grad,) = torch.autograd.grad(value, y, allow_unused=True)
    return _dense(grad, inner_var)


def grad_x(fn, inner_var, outer_var, idx=None):
    with torch.enable_grad():
        x = outer_var.detach().requires_grad_(True)
        value = fn(inner_var.detach(), x, idx)
        if not value.requires_grad:  # fn does not depend on x
            return torch.zeros_like(outer_var)
        (grad,) = torch.autograd.grad(value, x, allow_unused=True)
    return _dense(grad, outer_var)


def inner_oracles(fn, inner_var, outer_var, v, idx=None):
    """``(grad_y g, H v, J v)`` from one forward and one double backward.

    The gradient is built with ``create_graph=True`` so that the products with
    ``v`` come from a single backward pass of ``<grad_y g, v>``.
    """
    with torch.enable_grad():
        y, x = _leaves(inner_var, outer_var)
        value = fn(y, x, idx)
        (grad,) = torch.autograd.grad(value, y, create_graph=True)
        hvp, cross = torch.autograd.grad(
            grad, (y, x), grad_outputs=v.detach(), allow_unused=True
        )
    return grad.detach(), _dense(hvp, inner_var), _dense(cross, outer_var)


def hvp(fn, inner_var, outer_var, v, idx=None):
    """``H v``: the y-gradient of ``<grad_y g, v>``."""
    with torch.enable_grad():
        y = inner_var.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(y, outer_var.detach(), idx), y,
                                      create_graph=True)
        (prod,) = torch.autograd.grad(grad, y, grad_outputs=v.detach(),
                                      allow_unused=True)
    return _dense(prod, inner_var)


def cross(fn, inner_var, outer_var, v, idx=None):
    """``J v``: the x-gradient of ``<grad_y g, v>``."""
    with torch.enable_grad():
        y, x = _leaves(inner_var, outer_var)
        (grad,) = torch.autograd.grad(fn(y, x, idx), y, create_graph=True)
        if not grad.requires_grad:  # g is linear in y
            return torch.zeros_like(outer_var)
        (prod,) = torch.autograd.grad(grad, x, grad_outputs=v.detach(),
                                      allow_unused=True)
    return _dense(prod, outer_var)


def _dense(grad, like):
    # A loss that does not depend on a variable has a zero gradient, which
    # autograd reports as None.
    return torch.zeros_like(like) if grad is None else grad.detach()



# -- dense second-order matrices (small dimensions only) --------------------
def dense_second_order(fn, inner_var, outer_var, idx=None):
    """The dense matrices ``(H, J)`` of ``fn`` at (x, y) on the batch idx:
    ``H = d2_yy fn`` (d x d) and ``J = d2_xy fn`` (p x d), so that
    ``H @ v`` and ``J @ v`` are the ``hvp`` and ``cross`` products.

    ``torch.func.jacrev`` of ``(y, x) -> grad_y fn`` in both arguments at
    once: d reverse products (vmapped), each giving a column of H and of
    J, the equivalent of d ``hvp`` and d ``cross`` calls. Memory d (d + p).
    ``fn`` must be differentiable by ``torch.func`` (dense tensors).
    """
    def grad_y(y, x):
        return torch.func.grad(lambda y_: fn(y_, x, idx))(y)

    with torch.enable_grad():
        hess, cross_t = torch.func.jacrev(grad_y, argnums=(0, 1))(
            inner_var.detach(), outer_var.detach())
    # jacrev's row k is d(grad_y fn)_k: row k of H (symmetric) and column k
    # of J
    return hess.detach(), cross_t.detach().T
