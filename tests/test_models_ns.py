"""The pure-PyTorch NS op and block against literal loop implementations of the original
CUDA kernels (spec §3.1, §3.4), in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vpscli.models.ns import NSBlock, ns_aggregate, ns_relevance, window_taps


def loop_relevance(q: np.ndarray, k: np.ndarray, r: int, dil: int) -> np.ndarray:
    """``weight_forward`` as the kernel's loops: every slot written, 0 when out of the map."""
    b_, t_, c_, h_, w_ = q.shape
    tk = k.shape[1]
    d = 2 * r + 1
    out = np.full((b_, t_, tk * d * d, h_, w_), np.nan)
    for n in range(b_):
        for t in range(t_):
            for h in range(h_):
                for w in range(w_):
                    for s in range(tk):
                        for a in range(d):
                            for bb in range(d):
                                dh, dw = (a - r) * dil, (bb - r) * dil
                                j = s * d * d + a * d + bb
                                acc = 0.0
                                if 0 <= h + dh < h_ and 0 <= w + dw < w_:
                                    for c in range(c_):
                                        acc += q[n, t, c, h, w] * k[n, s, c, h + dh, w + dw]
                                out[n, t, j, h, w] = acc
    return out


def loop_aggregate(weight: np.ndarray, v: np.ndarray, r: int, dil: int) -> np.ndarray:
    """``map_forward`` as the kernel's loops: in-map neighbours only."""
    b_, t_, _, h_, w_ = weight.shape
    tk, c_ = v.shape[1], v.shape[2]
    d = 2 * r + 1
    out = np.zeros((b_, t_, c_, h_, w_))
    for n in range(b_):
        for t in range(t_):
            for h in range(h_):
                for w in range(w_):
                    for s in range(tk):
                        for a in range(d):
                            for bb in range(d):
                                dh, dw = (a - r) * dil, (bb - r) * dil
                                if 0 <= h + dh < h_ and 0 <= w + dw < w_:
                                    j = s * d * d + a * d + bb
                                    out[n, t, :, h, w] += weight[n, t, j, h, w] * v[n, s, :, h + dh, w + dw]
    return out


CASES = [
    # (B, Tq, Tk, C, H, W, r, dil)
    (1, 2, 2, 3, 5, 6, 3, 1),
    (2, 2, 2, 2, 5, 6, 3, 3),
    (1, 1, 3, 2, 4, 6, 3, 7),  # dilation 7: offsets ±21, map 4×6 — every off-centre slot is out of range
    (1, 2, 2, 2, 6, 5, 1, 2),
]


@pytest.mark.parametrize("case", CASES)
def test_relevance_and_aggregation_match_kernel_loops(case):
    b, tq, tk, c, h, w, r, dil = case
    g = torch.Generator().manual_seed(sum(case))
    q = torch.randn(b, tq, c, h, w, generator=g, dtype=torch.float64)
    k = torch.randn(b, tk, c, h, w, generator=g, dtype=torch.float64)
    v = torch.randn(b, tk, c, h, w, generator=g, dtype=torch.float64)
    ours = ns_relevance(q, k, r, dil)
    ref = loop_relevance(q.numpy(), k.numpy(), r, dil)
    assert not np.isnan(ref).any()  # the kernel writes every slot
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-10)
    agg = ns_aggregate(ours, v, r, dil)
    np.testing.assert_allclose(agg.numpy(), loop_aggregate(ref, v.numpy(), r, dil), rtol=0, atol=1e-10)


def test_ns_op_gradcheck():
    g = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(1, 2, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)
    )
    assert torch.autograd.gradcheck(lambda a, b: ns_relevance(a, b, 1, 2), (q, k))
    wgt = torch.randn(1, 2, 18, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: ns_aggregate(a, b, 1, 2), (wgt, v))


def loop_block(
    block: NSBlock, first: torch.Tensor, x: torch.Tensor, oob: str = "zero", weights: str = "logits"
):
    """The official NS_Block forward with the loop kernels; ``oob``/``weights`` select the
    two wrong readings of spec §3.4 ("-inf" logits out of range; "softmax" aggregation)."""
    heads, hd = block.heads, block.head_dim

    def pointwise(conv, t):
        return torch.einsum("oc,btchw->btohw", conv.weight.flatten(1), t)

    query, key, value = (
        pointwise(block.query_conv, first),
        pointwise(block.key_conv, x),
        pointwise(block.value_conv, x),
    )
    outs, probs = [], []
    for i in range(heads):
        sl = slice(i * hd, (i + 1) * hd)
        q = block.bn(query[:, :, sl]).detach().numpy()
        r, dil = block.radius[i], block.dilation[i]
        logits = loop_relevance(q, key[:, :, sl].detach().numpy(), r, dil) / math.sqrt(hd)
        if oob == "-inf":
            ones = np.ones_like(key[:, :, :1].detach().numpy())
            inside = loop_relevance(np.ones_like(q[:, :, :1]), ones, r, dil) > 0
            logits = np.where(inside, logits, -np.inf)
        p = torch.softmax(torch.from_numpy(logits), dim=2)
        probs.append(p)
        agg_w = p.numpy() if weights == "softmax" else np.where(np.isinf(logits), 0.0, logits)
        outs.append(torch.from_numpy(loop_aggregate(agg_w, value[:, :, sl].detach().numpy(), r, dil)))
    gate = torch.cat(probs, 2).amax(2)
    out = pointwise(block.output_Linear, torch.cat(outs, 2)) * gate.unsqueeze(2)
    return out.expand(x.shape[0], x.shape[1], *out.shape[2:]) if out.shape[1] != x.shape[1] else out


@pytest.mark.parametrize("grad", [False, True], ids=["gathered", "unfolded"])
@pytest.mark.parametrize("dilation,tq", [((1, 3, 5, 7), 3), ((3, 4, 3, 4), 1), ((1, 2, 1, 2), 3)])
def test_ns_block_matches_loops_and_catches_both_traps(dilation, tq, grad):
    """Both formulations (gathered without a gradient, unfolded with one) against the kernels' loops."""
    torch.manual_seed(0)
    h, w = 5, 7  # smaller than the dilated windows of the PNS-Net heads
    block = NSBlock(16, (4, h, w)[1:], heads=4, dilation=dilation).double()
    with torch.no_grad():
        block.bn.weight.normal_(1, 0.2)
        block.bn.bias.normal_(0, 0.2)
    x = torch.randn(1, 3, 16, h, w, dtype=torch.float64)
    first = x if tq == 3 else torch.randn(1, 1, 16, h, w, dtype=torch.float64)
    with torch.set_grad_enabled(grad):
        ours = block(first, x).detach()
    with torch.no_grad():
        ref = loop_block(block, first, x).detach()
    assert ours.shape == (1, 3, 16, h, w)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-10)
    # Trap (a): −inf for out-of-range neighbours changes the gate near the borders.
    trap_inf = loop_block(block, first, x, oob="-inf").detach()
    assert (ours - trap_inf).abs().max() > 1e-6
    # Trap (b): aggregating with softmax probabilities instead of raw logits changes everything.
    trap_softmax = loop_block(block, first, x, weights="softmax").detach()
    assert (ours - trap_softmax).abs().max() > 1e-6


def test_pnsplus_global_block_is_frame_invariant_and_equals_repeated_anchor():
    torch.manual_seed(1)
    block = NSBlock(32, (6, 8), dilation=(3, 4, 3, 4)).eval()
    anchor, local = torch.randn(2, 1, 32, 6, 8), torch.randn(2, 5, 32, 6, 8)
    with torch.no_grad():
        once = block(anchor, local)
        repeated = block(anchor.repeat(1, 5, 1, 1, 1), local)  # what the official code computes
    torch.testing.assert_close(once, repeated, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(once[:, 0], once[:, 4])


def test_window_taps_index_the_unfolded_slots():
    """Tap j of pixel p is the neighbour ns_relevance puts in slot j (−1 where that slot reads padding)."""
    h, w, r, dil = 5, 6, 2, 2
    taps = window_taps((h, w), r, dil)
    ids = torch.arange(1.0, h * w + 1).view(1, 1, 1, h, w)  # pixel p holds p + 1, padding 0
    unfolded = ns_relevance(torch.ones(1, 1, 1, h, w), ids, r, dil)[0, 0].reshape(-1, h * w).t() - 1
    assert taps.shape == (h * w, (2 * r + 1) ** 2)
    assert torch.equal(taps, unfolded.long())


def test_gathered_and_unfolded_blocks_agree_in_float32_at_the_default_size():
    """The default's 16×28 map and five frames: the two orders of the same sums agree to float rounding,
    the gate included (a pixel's output is its aggregated values times the gate)."""
    torch.manual_seed(3)
    block = NSBlock(32, (16, 28), dilation=(1, 3, 5, 7))
    x = torch.randn(2, 5, 32, 16, 28)
    with torch.no_grad():
        gathered = block(x, x)
    with torch.enable_grad():
        unfolded = block(x, x).detach()
    torch.testing.assert_close(gathered, unfolded, rtol=1e-4, atol=1e-5 * unfolded.abs().max().item())


@pytest.mark.parametrize("warm", [False, True], ids=["fresh", "index-cached"])
def test_a_traced_block_is_the_eager_one(warm):
    """The exported graphs trace the gathered block: its constant tap index must be the same in torch's two
    traced invocations (torch's own check fails otherwise), and the traced block computes the eager answers."""

    class SelfAttending(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = NSBlock(32, (6, 8), dilation=(1, 2, 1, 2))

        def forward(self, t):
            return self.block(t, t)

    torch.manual_seed(4)
    model = SelfAttending().eval()
    x = torch.randn(1, 5, 32, 6, 8)
    with torch.no_grad():
        if warm:
            model(x)  # the index made before tracing (a fresh block makes it in the first traced invocation)
        traced = torch.jit.trace(model, (x,), check_inputs=[(x,), (x + 1,)])
        assert torch.equal(traced(x + 2), model(x + 2))
