"""Closed-form oracles of hyper-cleaning with the convolutional network.

:class:`CNNProblem` is :class:`~benchmark_utils.problems.networks.
NetworkProblem` for the :class:`~benchmark_utils.problems.networks.LeNet`
network, with every minibatch oracle written out layer by layer instead
of by autograd (the same values, which the tests compare).

The network on a batch of images a, with K1, K2 the convolution kernels
(padding 2), c1, c2 their biases, W3, W4 the dense weights stored (in,
out), b3, b4 their biases, ``conv`` the convolution and ``pool`` the 2x2
max-pooling with its argmax indices:

    z1 = conv(a, K1) + c1,   p1 = relu(pool(z1))
    z2 = conv(p1, K2) + c2,  p2 = relu(pool(z2)),  h = flatten(p2)
    u3 = relu(h W3 + b3),    z4 = u3 W4 + b4  (the logits)

(relu(pool(z)) = pool(relu(z)): ReLU is monotone, and both select the
same argmax, so the derivatives agree too.) With P = softmax(z4),
R = P - onehot(b) and the sample weights w_i = sigmoid(s x_i) / n, the
gradient's backward pass:

    G4 = w R,                     G3 = m3 (G4 W4^T)
    Gz2 = unpool(m2 (G3 W3^T)),   Gz1 = unpool(m1 conv_in(Gz2, K2))
    grad_y g = (conv_w(a, Gz1), sum Gz1, conv_w(p1, Gz2), sum Gz2,
                h^T G3, sum G3, u3^T G4, sum G4) + reg y

where m1, m2, m3 are the ReLU masks (p1 > 0, p2 > 0, u3 > 0),
``unpool`` puts each pooled value back at the forward's argmax (zeros
elsewhere), ``conv_in(G, K)`` is the convolution's gradient in its input
(a transposed convolution) and ``conv_w(x, G)`` its gradient in its
kernel. The network is piecewise bilinear in (y, its activations): ReLU
and max-pooling are piecewise linear, with their masks and argmax fixed
near almost every point. Along a direction v = (V1, d1, V2, d2, V3, e3,
V4, e4), the tangent pass (``pick`` reads the forward's argmax of each
window):

    dp1 = m1 pick(conv(a, V1) + d1)
    dp2 = m2 pick(conv(p1, V2) + conv(dp1, K2) + d2),  dh = flatten(dp2)
    du3 = m3 (dh W3 + h V3 + e3),  dz4 = du3 W4 + u3 V4 + e4

and the derivative of the backward pass along it:

    dG4 = w (P dz4 - P <P, dz4>),  dG3 = m3 (dG4 W4^T + G4 V4^T)
    dGz2 = unpool(m2 (dG3 W3^T + G3 V3^T))
    dGz1 = unpool(m1 (conv_in(dGz2, K2) + conv_in(Gz2, V2)))
    H v = (conv_w(a, dGz1), sum dGz1,
           conv_w(p1, dGz2) + conv_w(dp1, Gz2), sum dGz2,
           h^T dG3 + dh^T G3, sum dG3, u3^T dG4 + du3^T G4, sum dG4)
          + reg v
    (J v)_i = s w_i (1 - sigmoid(s x_i)) <R_i, dz4_i>

One forward serves the gradient, H v and J v of ``inner_oracles``, and
there conv_in(Gz2, K2) and conv_in(dGz2, K2) + conv_in(Gz2, V2) are one
transposed convolution of the stacked gradients [Gz2, dGz2] by the
kernel [[K2, V2], [0, K2]] (see ``_hvp_blocks``).

Why not autograd (``benchmarks/network_throughput.py``, docs/SPEED.md):
PyTorch's max-pooling of a (batch, channels, height, width) tensor runs a
scalar loop, several times slower than its channels-last kernel and than
the convolution before it, and autograd's double backward of the first
convolution computes a transposed convolution to the one-channel images
(which need no gradient) outside oneDNN, a fifth of the time of its H v
in a profile.
Here every activation is channels-last (the layout in which oneDNN's
convolutions and PyTorch's pooling read memory without a reorder), the
pooling's argmax indices come from the forward and are reused by every
``pick`` and ``unpool``, the ReLU masks are read off the activations
(``threshold_backward``), and each convolution is one oneDNN call
(forward, or ``convolution_backward`` for one of its two gradients).
"""
import torch
import torch.nn.functional as F

from benchmark_utils.batches import take
from benchmark_utils.problems.networks import (
    LeNet,
    NetworkProblem,
    _cat,
    _chunks,
)

_CHANNELS_LAST = torch.channels_last


def _channels_last(t):
    """``t`` in channels-last layout. With one channel both layouts hold
    the same memory, and ``contiguous`` keeps the (ambiguous) strides, with
    which a convolution writes its output in the default layout: the
    strides are set explicitly."""
    if t.shape[1] != 1:
        return t.contiguous(memory_format=_CHANNELS_LAST)
    if not t.is_contiguous():
        t = t.contiguous()
    _, _, height, width = t.shape
    return t.as_strided(t.shape, (height * width, 1, width, 1))


def _flat(t):
    """A channels-last (batch, C, H, W) tensor as rows in (C, H, W)
    order, the order of the dense layer's inputs."""
    return t.reshape(len(t), -1)


def _pick(dz, indices):
    """The tangent of max-pooling: ``dz`` at the forward's argmax indices
    (flat positions in each channel's plane), channels-last in and out."""
    n, channels, height, width = dz.shape
    out_shape = (n, indices.shape[2], indices.shape[3], channels)
    rows = dz.permute(0, 2, 3, 1).reshape(n, height * width, channels)
    where = indices.permute(0, 2, 3, 1).reshape(n, -1, channels)
    return rows.gather(1, where).view(out_shape).permute(0, 3, 1, 2)


def _unpool(G, z, indices):
    """The gradient of max-pooling: G at the argmax positions, zeros
    elsewhere (z: the pooling's input, read for its shape and layout)."""
    return torch.ops.aten.max_pool2d_with_indices_backward(
        G, z, [2, 2], [2, 2], [0, 0], [1, 1], False, indices)


def _mask(G, activation):
    """G where ``activation`` (a ReLU's output) is positive, else 0."""
    return torch.ops.aten.threshold_backward(G, activation, 0)


class _Conv:
    """A stride-1 convolution of the network and its two gradients."""

    def __init__(self, layer):
        self.padding = list(layer.padding)

    def __call__(self, x, kernel, bias=None):
        return F.conv2d(x, kernel, bias, padding=self.padding)

    def _backward(self, G, x, kernel, mask):
        return torch.ops.aten.convolution_backward(
            G, x, kernel, None, [1, 1], self.padding, [1, 1], False,
            [0, 0], 1, mask)

    def grad_input(self, G, x, kernel):
        return self._backward(G, x, kernel, [True, False, False])[0]

    def grad_kernel(self, G, x, kernel):
        return self._backward(G, x, kernel, [False, True, False])[1]


class _Forward:
    """A chunk's activations, pooling indices and logits."""

    __slots__ = ("a", "z1", "i1", "p1", "z2", "i2", "p2", "h", "u3", "z4")


class CNNProblem(NetworkProblem):
    """:class:`NetworkProblem` of a :class:`LeNet`, with closed-form
    oracles (see the module docstring)."""

    def __init__(self, module, *args, **kwargs):
        if not isinstance(module, LeNet):
            raise ValueError(f"CNNProblem needs a LeNet module, got "
                             f"{type(module).__name__}.")
        self._conv1, self._conv2 = _Conv(module.conv1), _Conv(module.conv2)
        self._onehots = {}
        super().__init__(module, *args, **kwargs)

    def _blocks(self, flat):
        """(K1, c1, K2, c2, W3, b3, W4, b4) views of a flat vector, the
        kernels channels-last."""
        K1, c1, K2, c2, W3, b3, W4, b4 = self.parameters_of(flat).values()
        return (_channels_last(K1), c1, _channels_last(K2), c2, W3, b3, W4,
                b4)

    def _onehot(self, split, idx):
        """One-hot labels of a batch (rows of a table built once)."""
        table = self._onehots.get(split)
        if table is None:
            labels = self.splits[split].labels
            table = self._onehots[split] = F.one_hot(
                labels, self.n_classes).to(self.dtype)
        return table if idx is None else take(table, idx)

    # -- passes -------------------------------------------------------------
    def _forward(self, p, A):
        """The forward pass of a chunk A, with the blocks p of y."""
        K1, c1, K2, c2, W3, b3, W4, b4 = p
        f = _Forward()
        f.a = _channels_last(A)
        f.z1 = self._conv1(f.a, K1, c1)
        q1, f.i1 = F.max_pool2d_with_indices(f.z1, 2)
        f.p1 = q1.relu_()
        f.z2 = self._conv2(f.p1, K2, c2)
        q2, f.i2 = F.max_pool2d_with_indices(f.z2, 2)
        f.p2 = q2.relu_()
        f.h = _flat(f.p2)
        f.u3 = torch.addmm(b3, f.h, W3).relu_()
        f.z4 = torch.addmm(b4, f.u3, W4)
        return f

    def logits(self, inner_var, A):
        return self._forward(self._blocks(inner_var), A).z4

    def _tangent(self, p, q, f):
        """(dp1, dh, du3, dz4) along the direction of blocks q."""
        _, _, K2, _, W3, _, W4, _ = p
        V1, d1, V2, d2, V3, e3, V4, e4 = q
        dp1 = _mask(_pick(self._conv1(f.a, V1, d1), f.i1), f.p1)
        dz2 = self._conv2(f.p1, V2, d2).add_(self._conv2(dp1, K2))
        dh = _flat(_mask(_pick(dz2, f.i2), f.p2))
        du3 = _mask(torch.addmm(e3, dh, W3).addmm_(f.h, V3), f.u3)
        return dp1, dh, du3, torch.addmm(e4, du3, W4).addmm_(f.u3, V4)

    def _top(self, p, f, G4):
        """(G3, Gq2, Gz2): the gradient's backward pass from the logits'
        gradient G4 down to the second convolution's output (Gq2 pooled and
        masked, Gz2 unpooled)."""
        _, _, _, _, W3, _, W4, _ = p
        G3 = _mask(torch.mm(G4, W4.T), f.u3)
        Gq2 = _mask(torch.mm(G3, W3.T).view(f.p2.shape), f.p2)
        return G3, Gq2, _unpool(Gq2, f.z2, f.i2)

    def _first_layer(self, p, f, Gp1):
        """The first convolution's (kernel, bias) blocks from the gradient
        Gp1 of its pooled activation p1."""
        Gq1 = _mask(Gp1, f.p1)
        Gz1 = _unpool(Gq1, f.z1, f.i1)
        return [self._conv1.grad_kernel(Gz1, f.a, p[0]),
                Gq1.sum(dim=(0, 2, 3))]

    def _gradient(self, p, f, G4):
        """The 8 gradient blocks of a chunk from its logits' gradient."""
        K2 = p[2]
        G3, Gq2, Gz2 = self._top(p, f, G4)
        Gp1 = self._conv2.grad_input(Gz2, f.p1, K2)
        return self._first_layer(p, f, Gp1) + [
            self._conv2.grad_kernel(Gz2, f.p1, K2), Gq2.sum(dim=(0, 2, 3)),
            torch.mm(f.h.T, G3), G3.sum(dim=0), torch.mm(f.u3.T, G4),
            G4.sum(dim=0)]

    def _hvp_blocks(self, p, q, f, P, G4, w, tangent, want_grad):
        """The 8 blocks of H v (without the ridge term) of a chunk along
        the direction of blocks q, and the 8 gradient blocks if
        ``want_grad`` (else None)."""
        dp1, dh, du3, dz4 = tangent
        _, _, K2, _, W3, _, W4, _ = p
        _, _, V2, _, V3, _, V4, _ = q
        G3, Gq2, Gz2 = self._top(p, f, G4)
        PdZ = P * dz4
        dG4 = PdZ.sub_(P * PdZ.sum(dim=1, keepdim=True)).mul_(w)
        dG3 = _mask(torch.mm(dG4, W4.T).addmm_(G4, V4.T), f.u3)
        dGq2 = _mask(torch.mm(dG3, W3.T).addmm_(G3, V3.T)
                     .view(f.p2.shape), f.p2)
        dGz2 = _unpool(dGq2, f.z2, f.i2)
        if want_grad:
            # Gp1 = conv_in(Gz2, K2) and dGp1 = conv_in(dGz2, K2) +
            # conv_in(Gz2, V2) as one transposed convolution from 32 to 16
            # channels, of kernel [[K2, V2], [0, K2]]: oneDNN's convolutions
            # whose input or output have 8 channels run at half the speed
            # per product of those with 16, which more than pays for the
            # zero block.
            kernel = _channels_last(torch.cat([
                torch.cat([K2, V2], dim=1),
                torch.cat([torch.zeros_like(K2), K2], dim=1)]))
            both = self._conv2.grad_input(
                torch.cat([Gz2, dGz2], dim=1),
                torch.cat([f.p1, dp1], dim=1), kernel)
            Gp1, dGp1 = both.split(K2.shape[1], dim=1)
        else:
            dGp1 = self._conv2.grad_input(dGz2, f.p1, K2).add_(
                self._conv2.grad_input(Gz2, f.p1, V2))
        hv = self._first_layer(p, f, dGp1) + [
            self._conv2.grad_kernel(dGz2, f.p1, K2).add_(
                self._conv2.grad_kernel(Gz2, dp1, K2)),
            dGq2.sum(dim=(0, 2, 3)),
            torch.mm(f.h.T, dG3).addmm_(dh.T, G3), dG3.sum(dim=0),
            torch.mm(f.u3.T, dG4).addmm_(du3.T, G4), dG4.sum(dim=0)]
        if not want_grad:
            return hv, None
        return hv, self._first_layer(p, f, Gp1) + [
            self._conv2.grad_kernel(Gz2, f.p1, K2), Gq2.sum(dim=(0, 2, 3)),
            torch.mm(f.h.T, G3), G3.sum(dim=0), torch.mm(f.u3.T, G4),
            G4.sum(dim=0)]

    def _write(self, out, blocks, first, base=None):
        """Write a chunk's blocks into ``out`` (+ reg base) on the first
        chunk, add them on the next ones."""
        views = self.parameters_of(out).values()
        if not first:
            for o, g in zip(views, blocks):
                o.add_(g)
            return
        for o, g in zip(views, blocks):
            o.copy_(g)
        if base is not None:
            out.add_(base, alpha=self.reg)

    # -- oracles ------------------------------------------------------------
    def _inner_pass(self, inner_var, outer_var, v, idx, want_grad, want_hv,
                    want_jv):
        """(grad_y g, H v, J v) on a batch, each None unless wanted: one
        forward per chunk serves the three."""
        chunks, n = self._train_chunks(outer_var, idx)
        grad = torch.empty_like(inner_var) if want_grad else None
        hv = torch.empty_like(inner_var) if want_hv else None
        dce = []
        Y = self._onehot("train", idx)
        p = self._blocks(inner_var)
        q = self._blocks(v) if (want_hv or want_jv) else None
        for k, (A, _, s, c) in enumerate(chunks):
            f = self._forward(p, A)
            P = torch.softmax(f.z4, dim=1)
            R = P - Y.narrow(0, *c)
            if q is not None:
                tangent = self._tangent(p, q, f)
                if want_jv:
                    dce.append((R * tangent[3]).sum(dim=1))
            if not (want_grad or want_hv):
                continue
            w = (s / n)[:, None]
            G4 = R.mul_(w)
            if want_hv:
                h_blocks, g_blocks = self._hvp_blocks(
                    p, q, f, P, G4, w, tangent, want_grad)
                self._write(hv, h_blocks, k == 0, v)
            else:
                g_blocks = self._gradient(p, f, G4)
            if want_grad:
                self._write(grad, g_blocks, k == 0, inner_var)
        jv = None
        if want_jv:
            jv = self._x_direction(outer_var, idx, _cat(dce),
                                   _cat([c[2] for c in chunks]))
        return grad, hv, jv

    def grad_inner_y(self, inner_var, outer_var, idx=None):
        return self._inner_pass(inner_var, outer_var, None, idx, True, False,
                                False)[0]

    def hvp(self, inner_var, outer_var, v, idx=None):
        return self._inner_pass(inner_var, outer_var, v, idx, False, True,
                                False)[1]

    def cross(self, inner_var, outer_var, v, idx=None):
        return self._inner_pass(inner_var, outer_var, v, idx, False, False,
                                True)[2]

    def inner_oracles(self, inner_var, outer_var, v, idx=None):
        return self._inner_pass(inner_var, outer_var, v, idx, True, True,
                                True)

    def grad_inner(self, inner_var, outer_var, idx=None):
        chunks, n = self._train_chunks(outer_var, idx)
        out = torch.empty_like(inner_var)
        Y = self._onehot("train", idx)
        p = self._blocks(inner_var)
        ce = []
        for k, (A, labels, s, c) in enumerate(chunks):
            f = self._forward(p, A)
            logp = torch.log_softmax(f.z4, dim=1)
            ce.append(-logp.gather(1, labels[:, None])[:, 0])
            G4 = (logp.exp_() - Y.narrow(0, *c)).mul_((s / n)[:, None])
            self._write(out, self._gradient(p, f, G4), k == 0, inner_var)
        return out, self._x_direction(outer_var, idx, _cat(ce),
                                      _cat([c[2] for c in chunks]))

    def grad_outer_y(self, inner_var, outer_var, idx=None):
        A_all = self.splits["val"].rows(idx)[0]
        Y_all = self._onehot("val", idx)
        n = A_all.shape[0]
        out = torch.empty_like(inner_var)
        p = self._blocks(inner_var)
        for k, c in enumerate(_chunks(n, self.chunk_size)):
            f = self._forward(p, A_all.narrow(0, *c))
            G4 = (torch.softmax(f.z4, dim=1) - Y_all.narrow(0, *c)).mul_(
                1.0 / n)
            self._write(out, self._gradient(p, f, G4), k == 0)
        return out
