"""Small composable update rules: SGD, heavy-ball momentum and Adam.

Each rule keeps the state of ONE variable and updates it in place:

    rule.update(param, grad, lr)   # param <- param - lr * direction(grad)
    rule.reset()                   # forget moments / step counter

so that a solver holds one rule per variable (F2SA-Adam resets the y and z
rules at every outer iteration and keeps the x rule, Algorithm 3 of the
F2SA-Adam report). ``param`` must be a tensor the solver owns (it is
modified in place).
"""
import torch

from benchmark_utils.validation import (
    check_choice,
    check_interval,
    check_positive,
)


class SGD:
    """param <- param - lr * grad."""

    def reset(self):
        pass

    def update(self, param, grad, lr):
        param.add_(grad, alpha=-lr)
        return param


class Momentum:
    """Heavy ball: buf <- momentum * buf + grad; param <- param - lr * buf.

    The buffer starts at zero, so the first step is a plain SGD step
    (PyTorch's convention without dampening).
    """

    def __init__(self, momentum=0.9):
        self.momentum = check_interval(momentum, "momentum", 0, 1,
                                       closed="left")
        self.reset()

    def reset(self):
        self.buf = None

    def update(self, param, grad, lr):
        if self.buf is None:
            self.buf = grad.clone()
        else:
            self.buf.mul_(self.momentum).add_(grad)
        param.add_(self.buf, alpha=-lr)
        return param


class Adam:
    """Adam with bias correction, eps INSIDE the square root (eq. 12 of
    Yang, Jiang, Tatli, Xiao's F2SA-Adam report).

        t <- t + 1                       (t = 1 at the first update)
        m <- beta1 m + (1 - beta1) g
        v <- beta2 v + (1 - beta2) g^2
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)
        param <- param - lr * m_hat / sqrt(v_hat + eps)

    ``reset()`` sets m = v = 0 and t = 0.
    """

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8):
        self.beta1 = check_interval(beta1, "beta1", 0, 1, closed="neither")
        self.beta2 = check_interval(beta2, "beta2", 0, 1, closed="neither")
        self.eps = check_positive(eps, "eps")
        self.reset()

    def reset(self):
        self.m = self.v = None
        self.t = 0

    def direction(self, grad):
        """Advance the moments with ``grad``; return
        m_hat / sqrt(v_hat + eps)."""
        self._advance(grad)
        m_hat = self.m / (1 - self.beta1 ** self.t)
        v_hat = self.v / (1 - self.beta2 ** self.t)
        return m_hat / (v_hat + self.eps).sqrt()

    def _advance(self, grad):
        self.t += 1
        if self.m is None:
            self.m = torch.zeros_like(grad)
            self.v = torch.zeros_like(grad)
        self.m.mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)

    def update(self, param, grad, lr):
        self._advance(grad)
        # sqrt(v / (1 - b2^t) + eps), then one fused addcdiv with the
        # first-moment bias correction folded into the scalar.
        denom = self.v.mul(1 / (1 - self.beta2 ** self.t))
        denom.add_(self.eps).sqrt_()
        param.addcdiv_(self.m, denom, value=-lr / (1 - self.beta1 ** self.t))
        return param


OPTIMIZERS = ("sgd", "momentum", "adam")


def make_optimizer(name, beta1=0.9, beta2=0.999, eps=1e-8, momentum=0.9,
                   param_name="optimizer"):
    """A fresh rule by name: 'sgd', 'momentum' or 'adam'."""
    check_choice(name, param_name, OPTIMIZERS)
    if name == "sgd":
        return SGD()
    if name == "momentum":
        return Momentum(momentum)
    return Adam(beta1, beta2, eps)
