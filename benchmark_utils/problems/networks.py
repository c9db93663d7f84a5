"""Data hyper-cleaning with a neural network as the inner model.

The problem of :mod:`~benchmark_utils.problems.cleaning` (its outer
variable, scale, start, preprocessing and metrics) with a network
``phi(y; a)`` as the classifier (logits of image ``a`` under the
parameters ``y``):

    g(x, y) = mean_{i in batch} sigmoid(s x_i) CE(phi(y; a_i), b_i)
              + reg/2 ||y||^2
    f(x, y) = mean_{j in validation} CE(phi(y; a_j), b_j)

Networks (:func:`make_network`):

- ``"mlp"``: one hidden layer, ``a -> act(a W1 + b1) W2 + b2`` with
  ``hidden`` units, ``act`` ReLU or the identity (``activation``). The
  identity gives the "2-layer linear network" of BVFIM (R. Liu, Y. Liu,
  S. Zeng, J. Zhang, "Towards gradient-based bilevel optimization with
  non-convex followers and beyond", NeurIPS 2021; used with 300 hidden
  units by R. Liu, X. Liu, X. Yuan, S. Zeng, J. Zhang, "A value-function-
  based interior-point method for non-convex bi-level optimization", ICML
  2021): the same function class as the linear model (of rank <=
  ``hidden``), but a nonconvex parametrization.
- ``"cnn"``: a LeNet-style network with four layers (2 convolutions, 2
  dense; FSLA, J. Li, B. Gu, H. Huang, "A fully single loop algorithm for
  bilevel optimization without Hessian inverse", AAAI 2022, trains a 4-layer
  CNN), for square images of side ``side`` divisible by 4 (28 for MNIST):

    1. conv 5x5, 1 -> 8 channels, padding 2 (side x side kept), ReLU,
       max-pool 2x2 (side / 2);
    2. conv 5x5, 8 -> 16 channels, padding 2, ReLU, max-pool 2x2
       (side / 4); flattened: 16 (side / 4)^2 features (784 for 28x28);
    3. dense 16 (side / 4)^2 -> 64, ReLU;
    4. dense 64 -> n_classes (the logits).

  54,314 parameters for 28x28 images and 10 classes.

The inner variable is the flat vector of the network's parameters, in the
order of ``module.named_parameters()``, each block stored row-major;
dense layers (:class:`Dense`) store their weight as (in, out), so that
a forward product is ``a W`` and the weight gradient ``a^T G`` lands in that
layout without a transpose. Initialization (the zero start of the linear
problem is a saddle point of a network: all its hidden units would stay
equal): every weight uniform in +-sqrt(3 gain / fan_in), so of variance
gain / fan_in, with gain 2 before a ReLU (He et al., ICCV 2015) and 1
otherwise (LeCun), every bias 0; drawn in float64 on the CPU from a
``torch.Generator`` seeded by ``init_seed`` (the data set passes a draw of
its ``random_state``), then cast, so that a seed gives the same start on
every device and dtype.

g is not convex in y (``strongly_convex = False``): y*(x) is a set of
stationary points, of which the ridge ``reg`` keeps every one bounded, and
h(x) is defined locally, by the stationary point a solver follows. The
``value_function`` metric reports f at the stationary point Newton-CG
reaches from the reported y (:meth:`NetworkProblem.value_function`).

The ridge needs a smaller ``reg`` than the linear model's 0.4: on two
layers, (reg / 2)(||W1||^2 + ||W2||^2) >= reg ||W1 W2||_* (equality for
balanced layers), a penalty linear, not quadratic, in the scale of the
end-to-end map, so near y = 0 it outweighs the data term as soon as reg
exceeds (roughly) the largest singular value of the loss's gradient in
that map, and the network collapses to its output bias. Measured on 1000
embedded MNIST images at x0 (300 full-batch gradient steps of size
1 / inner_hessian_bound): reg = 0.4 ends at ||y|| = 0.01, a constant
classifier (10 % test accuracy) for both MLPs; reg = 0.01 trains them
(72.6 % ReLU, 67.9 % identity; the linear model 71.5 % at reg = 0.4,
72.6 % at 0.01). Pass ``reg`` explicitly for networks.

No dropout (MinimaxOPT, J. Wang, H. Pan, Z. Pi, L. Zhang, 2023, trains a
two-layer network with dropout): a dropout mask drawn at each call would
make g a random function, so that two oracle calls at the same point and
batch disagree (H v would not be the derivative of the gradient a solver
uses), and a mask fixed per sample and seed would not be dropout any more
(only a fixed sparse network per sample). The ridge term is the
regularization instead.

Oracles (all in :class:`NetworkProblem`) use
``torch.func.functional_call`` of the module with the parameters as views
of y. Per batch they need the per-sample losses CE_i and the weights
w_i = sigmoid(s x_i) / n:

- grad_y g = sum_i w_i grad CE_i + reg y (one forward, one backward);
- H v: the backward of <grad_y g, v> (reverse over reverse, built with
  ``create_graph``), plus reg v. Forward over reverse (``torch.func.jvp``
  of ``torch.func.vjp``) gives the same products but was measured 2x slower
  on CPU (dual-tensor overhead and transposed copies);
- J v: the i-th coordinate is s w_i (1 - sigmoid(s x_i)) <grad CE_i, v>,
  and <grad CE_i, v> is the forward-mode derivative of CE_i along v
  (``torch.func.jvp``: one forward with its tangent, no backward). In
  ``inner_oracles`` the same numbers come for free from the double backward,
  as the derivative of <grad_y g, v> in the leaf w;
- ``inner_oracles``: one forward, one backward kept as a graph, one
  backward of <grad_y g, v> giving H v and J v together.

A batch follows :mod:`benchmark_utils.batches` (None: the full set; an index
tensor: gathered rows; a marked block: a view). Batches larger than
``chunk_size`` samples (the full set, in evaluation, Newton-CG and the
bound below) are processed in chunks whose contributions are summed, so
that memory stays that of one chunk whatever n_train.
"""
import math

import numpy as np
import torch
from torch.func import functional_call, jvp

from benchmark_utils.batches import take
from benchmark_utils.data.cleaning import check_classes
from benchmark_utils.problems.cleaning import CleaningProblem
from benchmark_utils.problems.implicit import power_iteration
from benchmark_utils.validation import (
    check_choice,
    check_positive_int,
)

NETWORKS = ("mlp", "cnn")
ACTIVATIONS = ("relu", "identity")


class Dense(torch.nn.Module):
    """``a W + b`` with W stored as (in, out) (see the module docstring)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(n_in, n_out))
        self.bias = torch.nn.Parameter(torch.empty(n_out))

    def forward(self, a):
        return torch.addmm(self.bias, a.flatten(1), self.weight)


class MLP(torch.nn.Module):
    """One hidden layer: ``act(a W1 + b1) W2 + b2``."""

    def __init__(self, n_features, n_classes, hidden=300, activation="relu"):
        super().__init__()
        self.input_shape = (n_features,)
        self.hidden = Dense(n_features, hidden)
        self.act = (torch.nn.ReLU() if activation == "relu"
                    else torch.nn.Identity())
        self.out = Dense(hidden, n_classes)
        self.gains = {"hidden.weight": 2.0 if activation == "relu" else 1.0}

    def forward(self, a):
        return self.out(self.act(self.hidden(a)))


class LeNet(torch.nn.Module):
    """Two 5x5 convolutions with max-pooling, two dense layers (see the
    module docstring)."""

    def __init__(self, side, n_classes):
        super().__init__()
        self.input_shape = (1, side, side)
        self.conv1 = torch.nn.Conv2d(1, 8, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(8, 16, 5, padding=2)
        self.fc1 = Dense(16 * (side // 4) ** 2, 64)
        self.fc2 = Dense(64, n_classes)
        self.gains = {"conv1.weight": 2.0, "conv2.weight": 2.0,
                      "fc1.weight": 2.0}

    def forward(self, a):
        pool, relu = torch.nn.functional.max_pool2d, torch.relu
        a = pool(relu(self.conv1(a)), 2)
        a = pool(relu(self.conv2(a)), 2)
        return self.fc2(relu(self.fc1(a)))


def make_network(model, n_features, n_classes, hidden=300,
                 activation="relu"):
    """The module of ``model`` ("mlp" or "cnn") for ``n_features`` inputs
    (the CNN reads them as a square image whose side is divisible by 4)."""
    check_choice(model, "model", NETWORKS)
    if model == "mlp":
        check_positive_int(hidden, "hidden")
        check_choice(activation, "activation", ACTIVATIONS)
        return MLP(n_features, n_classes, hidden, activation)
    side = math.isqrt(n_features)
    if side * side != n_features or side % 4:
        raise ValueError(f"model='cnn' needs square images whose side is "
                         f"divisible by 4, got {n_features} features.")
    return LeNet(side, n_classes)


def init_parameters(module, init_seed):
    """The flat start described in the module docstring (float64, CPU)."""
    gen = torch.Generator().manual_seed(init_seed)
    blocks = []
    gains = getattr(module, "gains", {})
    for name, param in module.named_parameters():
        if name.endswith("bias"):
            blocks.append(torch.zeros(param.numel(), dtype=torch.float64))
            continue
        # Dense weights are (in, out), convolutions (out, in, k, k)
        fan_in = (param.shape[0] if param.ndim == 2
                  else param[0].numel())
        bound = math.sqrt(3 * gains.get(name, 1.0) / fan_in)
        blocks.append((torch.rand(param.numel(), generator=gen,
                                  dtype=torch.float64) * 2 - 1) * bound)
    return torch.cat(blocks)


def _accumulate(total, term):
    """``total + term``, in place after the first term (``total`` None)."""
    return term if total is None else total.add_(term)


def _cat(tensors):
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def _chunks(n, chunk_size):
    if n <= chunk_size:  # (n may be a traced symbolic size: no range(n))
        return [(0, n)]
    return [(start, min(chunk_size, n - start))
            for start in range(0, n, chunk_size)]


class NetworkProblem(CleaningProblem):
    """Data hyper-cleaning with a network (see the module docstring).

    Parameters
    ----------
    module : torch.nn.Module mapping a batch of inputs of shape
        ``(batch, *module.input_shape)`` to logits ``(batch, n_classes)``
        (from :func:`make_network`); its own parameter values are not used,
        only their names and shapes.
    init_seed : int, seed of the initialization.
    value_function : bool, report ``value_function`` in ``metrics``
        (default False).
    chunk_size : int, the largest number of samples processed at once.
    The others : those of :class:`~benchmark_utils.problems.cleaning.
        CleaningProblem` (features are flat rows, reshaped to the module's
        input shape; ``reg`` is the ridge on all parameters).
    """

    strongly_convex = False

    def __init__(self, module, X_train, y_train, X_val, y_val, X_test=None,
                 y_test=None, init_seed=0, value_function=False,
                 chunk_size=2048, **kwargs):
        self.init_seed = check_positive_int(init_seed, "init_seed",
                                            allow_zero=True)
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        self.module = module
        params = list(module.named_parameters())
        self._names = [name for name, _ in params]
        self._shapes = [tuple(p.shape) for _, p in params]
        self._sizes = [p.numel() for _, p in params]
        super().__init__(X_train, y_train, X_val, y_val, X_test, y_test,
                         value_function=value_function, **kwargs)

    def _inputs(self, X, split_name):
        shape = tuple(self.module.input_shape)
        if X.shape[1] != math.prod(shape):
            raise ValueError(f"X_{split_name} must have {math.prod(shape)} "
                             f"features (the network's input), got shape "
                             f"{tuple(X.shape)}.")
        return X.reshape(len(X), *shape).contiguous()

    def _inner_start(self, dtype, device):
        return init_parameters(self.module, self.init_seed).to(
            dtype=dtype, device=device)

    # -- the network ------------------------------------------------------
    def parameters_of(self, inner_var):
        """``{name: view of inner_var}``, the module's parameters."""
        return {name: block.view(shape) for name, block, shape in
                zip(self._names, inner_var.split(self._sizes),
                    self._shapes)}

    def logits(self, inner_var, A):
        return functional_call(self.module, self.parameters_of(inner_var),
                               (A,))

    def _losses(self, inner_var, A, labels):
        """Per-sample cross-entropies of a chunk."""
        return torch.nn.functional.cross_entropy(
            self.logits(inner_var, A), labels, reduction="none")

    def _train_chunks(self, outer_var, idx):
        """[(rows, labels, sigmoid(s x_i), the chunk's batch indices or
        None for the full set's (start, n))] and the batch size."""
        split = self.splits["train"]
        A, labels = split.rows(idx)
        s = torch.sigmoid(self.outer_scale * (
            outer_var if idx is None else take(outer_var, idx)))
        n = A.shape[0]
        if n <= self.chunk_size:
            return [(A, labels, s, (0, n))], n
        return [(A.narrow(0, *c), labels.narrow(0, *c), s.narrow(0, *c), c)
                for c in _chunks(n, self.chunk_size)], n

    # -- losses -------------------------------------------------------------
    def inner(self, inner_var, outer_var, idx=None):
        chunks, n = self._train_chunks(outer_var, idx)
        total = sum((s * self._losses(inner_var, A, lab)).sum()
                    for A, lab, s, _ in chunks)
        return total / n + 0.5 * self.reg * inner_var @ inner_var

    def outer(self, inner_var, outer_var, idx=None):
        A, labels = self.splits["val"].rows(idx)
        n = A.shape[0]
        return sum(self._losses(inner_var, A.narrow(0, *c),
                                labels.narrow(0, *c)).sum()
                   for c in _chunks(n, self.chunk_size)) / n

    # -- oracles ------------------------------------------------------------
    def _grad(self, y, A, labels, weights, create_graph=False):
        """(sum_i weights_i grad CE_i, CE) on a chunk; y requires grad."""
        ce = self._losses(y, A, labels)
        (grad,) = torch.autograd.grad(ce @ weights, y,
                                      create_graph=create_graph)
        return grad, ce

    def grad_inner(self, inner_var, outer_var, idx=None):
        chunks, n = self._train_chunks(outer_var, idx)
        grad_y, ce_all = None, []
        with torch.enable_grad():
            y = inner_var.detach().requires_grad_(True)
            for A, lab, s, _ in chunks:
                grad, ce = self._grad(y, A, lab, s / n)
                grad_y = _accumulate(grad_y, grad)
                ce_all.append(ce.detach())
        return (grad_y.add_(inner_var, alpha=self.reg),
                self._x_direction(outer_var, idx, _cat(ce_all),
                                  _cat([c[2] for c in chunks])))

    def grad_inner_y(self, inner_var, outer_var, idx=None):
        chunks, n = self._train_chunks(outer_var, idx)
        grad_y = None
        with torch.enable_grad():
            y = inner_var.detach().requires_grad_(True)
            for A, lab, s, _ in chunks:
                grad_y = _accumulate(grad_y, self._grad(y, A, lab, s / n)[0])
        return grad_y.add_(inner_var, alpha=self.reg)

    def grad_inner_x(self, inner_var, outer_var, idx=None):
        chunks, n = self._train_chunks(outer_var, idx)
        with torch.no_grad():
            ce = _cat([self._losses(inner_var, A, lab)
                       for A, lab, _, _ in chunks])
        return self._x_direction(outer_var, idx, ce,
                                 _cat([c[2] for c in chunks]))

    def grad_outer_y(self, inner_var, outer_var, idx=None):
        A, labels = self.splits["val"].rows(idx)
        n = A.shape[0]
        grad = None
        with torch.enable_grad():
            y = inner_var.detach().requires_grad_(True)
            for c in _chunks(n, self.chunk_size):
                ce = self._losses(y, A.narrow(0, *c), labels.narrow(0, *c))
                grad = _accumulate(
                    grad, torch.autograd.grad(ce.sum() / n, y)[0])
        return grad

    def grad_outer(self, inner_var, outer_var, idx=None):
        return (self.grad_outer_y(inner_var, outer_var, idx),
                torch.zeros_like(outer_var))

    def hvp(self, inner_var, outer_var, v, idx=None):
        chunks, n = self._train_chunks(outer_var, idx)
        v = v.detach()
        out = None
        with torch.enable_grad():
            y = inner_var.detach().requires_grad_(True)
            for A, lab, s, _ in chunks:
                grad, _ = self._grad(y, A, lab, s / n, create_graph=True)
                out = _accumulate(
                    out, torch.autograd.grad(grad, y, grad_outputs=v)[0])
        return out.add_(v, alpha=self.reg)

    def cross(self, inner_var, outer_var, v, idx=None):
        chunks, n = self._train_chunks(outer_var, idx)
        y, v = inner_var.detach(), v.detach()
        dce = _cat([jvp(lambda p: self._losses(p, A, lab), (y,), (v,))[1]
                    for A, lab, _, _ in chunks])
        return self._x_direction(outer_var, idx, dce,
                                 _cat([c[2] for c in chunks]))

    def inner_oracles(self, inner_var, outer_var, v, idx=None):
        """(grad_y g, H v, J v): one forward, one backward kept as a graph
        and one backward of <grad_y g, v> in (y, w) per chunk."""
        chunks, n = self._train_chunks(outer_var, idx)
        v = v.detach()
        grad_y = hv = None
        dce = []
        with torch.enable_grad():
            y = inner_var.detach().requires_grad_(True)
            for A, lab, s, _ in chunks:
                w = (s / n).requires_grad_(True)
                grad, _ = self._grad(y, A, lab, w, create_graph=True)
                # d = <grad CE_i, v>: the per-sample factor of J v
                h, d = torch.autograd.grad(grad, (y, w), grad_outputs=v)
                grad_y = _accumulate(grad_y, grad.detach())
                hv = _accumulate(hv, h)
                dce.append(d)
        return (grad_y.add_(inner_var, alpha=self.reg),
                hv.add_(v, alpha=self.reg),
                self._x_direction(outer_var, idx, _cat(dce),
                                  _cat([c[2] for c in chunks])))

    def inner_hessian_bound(self):
        """A bound on |eigenvalues| of H along a run: 2x the largest
        |eigenvalue| at the start, found by 30 power iterations on the
        first ``min(n_train, 1024)`` training samples (a seeded random
        draw: the data sets store samples in random order).

        A network's curvature varies, so no bound holds for every (x, y);
        this one is measured where runs start. The subsample errs on the
        safe side on average: lambda_max is convex, so the mean of
        lambda_max(H_S) over random subsets S is >= lambda_max(H) (and
        alike for -lambda_min). The factor 2 leaves room for curvature that
        grows along a run (1 / L steps, as StocBiO's Neumann step, stay
        stable up to 4x the measured value). Computed once, cached.
        """
        if getattr(self, "_hessian_bound", None) is None:
            n = min(self.n_inner, 1024)
            idx = torch.arange(n, device=self.device)
            y, x = self.inner_var0, self.outer_var0
            value = power_iteration(lambda v: self.hvp(y, x, v, idx),
                                    self.dim_inner, n_iter=30,
                                    dtype=self.dtype, device=self.device)
            self._hessian_bound = 2.0 * abs(value)
        return self._hessian_bound

    # -- metrics ------------------------------------------------------------
    def predict(self, inner_var, split_name):
        A = self.splits[split_name].A
        with torch.no_grad():
            return torch.cat([self.logits(inner_var, A.narrow(0, *c))
                              .argmax(dim=1)
                              for c in _chunks(len(A), self.chunk_size)])


class MLPProblem(NetworkProblem):
    """:class:`NetworkProblem` of an :class:`MLP`, with closed-form
    oracles (the same values as the autograd ones of the parent class,
    which the tests compare them with).

    With Z1 = a W1 + b1, u = act(Z1), Z2 = u W2 + b2, P = softmax(Z2),
    R = P - onehot(b), the sample weights w_i = sigmoid(s x_i) / n, the
    mask m = act'(Z1) (0 / 1 for ReLU, 1 for the identity; act'' = 0 for
    both) and a direction v = (V1, c1, V2, c2):

        G2 = w R,  G1 = m (G2 W2^T)
        grad_y g = (a^T G1, sum G1, u^T G2, sum G2) + reg y
        dZ1 = a V1 + c1,  du = m dZ1,  dZ2 = du W2 + u V2 + c2
        dG2 = w (P dZ2 - P <P, dZ2>),  dG1 = m (dG2 W2^T + G2 V2^T)
        H v = (a^T dG1, sum dG1, du^T G2 + u^T dG2, sum dG2) + reg v
        (J v)_i = s w_i (1 - sigmoid(s x_i)) <R_i, dZ2_i>

    Why not autograd: on a batch of 64 the parameter-sized vectors
    (238,510 floats for 784-300-10) cost a third of a product each, and
    autograd's double backward adds several (the concatenation of the
    blocks of each gradient, the ridge terms, accumulations). Here every
    weight gradient is one product written straight into its block of the
    output, the ridge term added in place, and the four large products of
    ``inner_oracles`` (a W1, a V1, a^T G1, a^T dG1) are the minimum (SOBA
    then needs 6 products where one plain torch.nn forward + backward pass
    needs 2): SOBA's iteration measured 3.4-3.5x that pass eagerly and
    2.8x with ``compile=True`` (
    ``benchmarks/network_throughput.py``, float32, one thread, a shared
    2-core machine), against 5.4x with the double backward of the parent
    class.
    """

    def __init__(self, module, *args, **kwargs):
        if not isinstance(module, MLP):
            raise ValueError(f"MLPProblem needs an MLP module, got "
                             f"{type(module).__name__}.")
        self._relu = isinstance(module.act, torch.nn.ReLU)
        self._onehots = {}
        super().__init__(module, *args, **kwargs)

    def _blocks(self, flat):
        """(W1, b1, W2, b2) views of a flat vector in y's layout."""
        p = self.parameters_of(flat)
        return (p["hidden.weight"], p["hidden.bias"], p["out.weight"],
                p["out.bias"])

    def _onehot(self, split, idx):
        """One-hot labels of a batch (rows of a table built once)."""
        table = self._onehots.get(split)
        if table is None:
            labels = self.splits[split].labels
            table = self._onehots[split] = torch.nn.functional.one_hot(
                labels, self.n_classes).to(self.dtype)
        return table if idx is None else take(table, idx)

    def _forward(self, y, A):
        """(u, Z2)."""
        W1, b1, W2, b2 = self._blocks(y)
        u = torch.addmm(b1, A, W1)
        if self._relu:
            u.relu_()
        return u, torch.addmm(b2, u, W2)

    def _mask(self, G, u):
        """m G, with m = act'(Z1) read off u = act(Z1) (u > 0 iff Z1 > 0
        for ReLU): one operator, where a float mask costs a comparison, a
        conversion and a product at each use."""
        if not self._relu:
            return G
        return torch.ops.aten.threshold_backward(G, u, 0)

    def _backward(self, total, base, A, u, G1, G2, extra=None):
        """The gradient blocks (a^T G1, sum G1, u^T G2 [+ extra], sum G2)
        of a chunk as one flat vector in y's layout, plus reg ``base`` (if
        not None) on the first chunk (``total`` None), else plus
        ``total``, the sum over the previous chunks.

        The blocks are computed apart, then concatenated, so that inductor
        (``compile=True``) writes each product straight into its part of
        the concatenation and fuses the ridge term and the solver's update
        into one pass over it; products written into views of a
        preallocated output became masked scatters over all of y once
        traced, one per block (1.5 ms per SOBA iteration on the 784-300-10
        MLP, more than its six products). Eagerly the concatenation costs
        one copy of y per gradient (docs/SPEED.md)."""
        if total is None:
            blocks = [torch.mm(A.T, G1).view(-1), G1.sum(dim=0),
                      torch.mm(u.T, G2).view(-1), G2.sum(dim=0)]
            if base is not None:
                # (addmm's beta costs a pass more than this in-place add;
                # on the flattened products, not on the products
                # themselves: inductor's fusion of mm + add into addmm
                # drops the add's alpha, torch 2.13)
                for block, term in zip(blocks, base.split(self._sizes)):
                    block.add_(term, alpha=self.reg)
        else:
            tW1, tb1, tW2, tb2 = self._blocks(total)
            blocks = [torch.addmm(tW1, A.T, G1).view(-1), tb1 + G1.sum(dim=0),
                      torch.addmm(tW2, u.T, G2).view(-1),
                      tb2 + G2.sum(dim=0)]
        if extra is not None:
            blocks[2].view(self._shapes[2]).addmm_(*extra)
        return torch.cat(blocks)

    def _residual(self, Z2, Y):
        P = torch.softmax(Z2, dim=1)
        return P, P - Y

    def grad_inner_y(self, inner_var, outer_var, idx=None):
        chunks, n = self._train_chunks(outer_var, idx)
        out = None
        W2 = self._blocks(inner_var)[2]
        Y = self._onehot("train", idx)
        for A, _, s, c in chunks:
            u, Z2 = self._forward(inner_var, A)
            G2 = self._residual(Z2, Y.narrow(0, *c))[1].mul_(
                (s / n)[:, None])
            G1 = self._mask(torch.mm(G2, W2.T), u)
            out = self._backward(out, inner_var, A, u, G1, G2)
        return out

    def grad_outer_y(self, inner_var, outer_var, idx=None):
        A_all = self.splits["val"].rows(idx)[0]
        Y_all = self._onehot("val", idx)
        n = A_all.shape[0]
        out = None
        W2 = self._blocks(inner_var)[2]
        for c in _chunks(n, self.chunk_size):
            A = A_all.narrow(0, *c)
            u, Z2 = self._forward(inner_var, A)
            G2 = self._residual(Z2, Y_all.narrow(0, *c))[1].mul_(1.0 / n)
            G1 = self._mask(torch.mm(G2, W2.T), u)
            out = self._backward(out, None, A, u, G1, G2)
        return out

    def grad_inner(self, inner_var, outer_var, idx=None):
        chunks, n = self._train_chunks(outer_var, idx)
        out = None
        W2 = self._blocks(inner_var)[2]
        ce_all = []
        Y = self._onehot("train", idx)
        for A, lab, s, c in chunks:
            u, Z2 = self._forward(inner_var, A)
            logp = torch.log_softmax(Z2, dim=1)
            ce_all.append(-logp.gather(1, lab[:, None])[:, 0])
            G2 = (logp.exp_() - Y.narrow(0, *c)).mul_(
                (s / n)[:, None])
            G1 = self._mask(torch.mm(G2, W2.T), u)
            out = self._backward(out, inner_var, A, u, G1, G2)
        return out, self._x_direction(outer_var, idx, _cat(ce_all),
                                      _cat([c[2] for c in chunks]))

    def _tangent(self, v, A, u, W2):
        """(du, dZ2) along the direction v."""
        V1, c1, V2, c2 = self._blocks(v)
        du = self._mask(torch.addmm(c1, A, V1), u)
        return du, torch.addmm(c2, du, W2).addmm_(u, V2)

    def _second_order(self, inner_var, outer_var, v, idx, want_grad,
                      want_hv, want_jv):
        chunks, n = self._train_chunks(outer_var, idx)
        W2 = self._blocks(inner_var)[2]
        V2 = self._blocks(v)[2]
        grad = hv = None
        dce = []
        Y = self._onehot("train", idx)
        for A, _, s, c in chunks:
            u, Z2 = self._forward(inner_var, A)
            P, R = self._residual(Z2, Y.narrow(0, *c))
            du, dZ2 = self._tangent(v, A, u, W2)
            if want_jv:
                dce.append((R * dZ2).sum(dim=1))
            w = (s / n)[:, None]
            G2 = R.mul_(w)
            if want_grad:
                G1 = self._mask(torch.mm(G2, W2.T), u)
                grad = self._backward(grad, inner_var, A, u, G1, G2)
            if want_hv:
                PdZ = P * dZ2
                dG2 = PdZ.sub_(P * PdZ.sum(dim=1, keepdim=True)).mul_(w)
                dG1 = self._mask(torch.mm(dG2, W2.T).addmm_(G2, V2.T), u)
                hv = self._backward(hv, v, A, u, dG1, dG2,
                                    extra=(du.T, G2))
        jv = None
        if want_jv:
            jv = self._x_direction(outer_var, idx, _cat(dce),
                                   _cat([c[2] for c in chunks]))
        return grad, hv, jv

    def hvp(self, inner_var, outer_var, v, idx=None):
        return self._second_order(inner_var, outer_var, v, idx, False, True,
                                  False)[1]

    def cross(self, inner_var, outer_var, v, idx=None):
        return self._second_order(inner_var, outer_var, v, idx, False,
                                  False, True)[2]

    def inner_oracles(self, inner_var, outer_var, v, idx=None):
        return self._second_order(inner_var, outer_var, v, idx, True, True,
                                  True)


def make_network_hyper_cleaning(model, X_train, y_train, X_val, y_val,
                                X_test=None, y_test=None, hidden=300,
                                activation="relu", n_classes=None, **kwargs):
    """A network problem (:class:`MLPProblem` for ``model="mlp"``, else
    :class:`NetworkProblem`) from raw features and clean labels
    (:meth:`~benchmark_utils.problems.cleaning.CleaningProblem.from_raw`:
    ``ratio``, ``random_state``, and the problem's parameters, e.g.
    ``init_seed``, which seeds the network's start)."""
    labels = [y_train, y_val] + ([] if y_test is None else [y_test])
    n_classes = check_classes([np.asarray(lab) for lab in labels],
                              n_classes)
    module = make_network(model, np.shape(X_train)[1], n_classes, hidden,
                          activation)
    # (imported here: cnn.py builds on this module)
    from benchmark_utils.problems.cnn import CNNProblem
    problem_class = MLPProblem if model == "mlp" else CNNProblem
    return problem_class.from_raw(X_train, y_train, X_val, y_val, X_test,
                                  y_test, n_classes=n_classes, module=module,
                                  **kwargs)
