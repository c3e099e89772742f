"""The CFFM attention's two formulations: windowed (training) and gathered (inference, exported graphs)."""

from __future__ import annotations

import pytest
import torch

import vpscli.models.cffm_attention as cffm
from vpscli.models.cffm_keys import window_key_index
from vpscli.models.cffm_transformer import CFFMTransformer

SIZES = [(28, 40), (16, 28), (21, 21)]  # the bundled 320×224 map, the paper's, and one padded to 21×21


@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_gathered_and_windowed_transformers_give_the_same_bits(hw, monkeypatch):
    """Both copy the same numbers into the same layout, so the whole two-block transformer agrees bit for
    bit (maps not a multiple of the window are padded; a batch of two keeps its windows batch-major)."""
    torch.manual_seed(0)
    model = CFFMTransformer(64, depth=2, heads=4).eval()
    x = torch.randn(2, 4, 64, *hw)
    with torch.no_grad():
        assert cffm.gathering()
        gathered = model(x)
        monkeypatch.setattr(cffm, "gathering", lambda: False)
        windowed = model(x)
    assert torch.equal(gathered, windowed)
    assert not torch.equal(gathered[:, -1], x[:, -1])  # the target frame did change; references did not
    assert torch.equal(gathered[:, :-1], x[:, :-1])


def test_window_key_index_reads_what_the_rolls_and_unfolds_read():
    """Each window's keys, as the original's rolls, window partitions and ``F.unfold`` place them on a map of
    position numbers (0 where unfold pads, the table's zero row)."""
    attn = cffm.CFFMAttention(8, heads=1)
    hp, wp = 14, 21
    groups_hw = [(2, 3, 5, 1), (2, 3, 7, 1), (4, 6, 5, 2), (6, 9, 3, 3)]  # pooled target, then levels 1, 2, 3
    sizes = [hp * wp] + [h * w for h, w, _, _ in groups_hw]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]

    def numbered(start: int, h: int, w: int) -> torch.Tensor:
        return (torch.arange(h * w, dtype=torch.float32) + start + 1).view(1, h, w, 1)

    target = numbered(0, hp, wp)
    keys = [cffm._windows(target, 7)]
    rolled = [
        cffm._windows(torch.roll(target, s, dims=(1, 2)), 7) for s in ((-3, -3), (-3, 3), (3, -3), (3, 3))
    ]
    # the ring: the original's masks, written out (a rolled window's positions that repeat the window's own)
    masks = torch.ones(4, 7, 7)
    for k, (rows, cols) in enumerate(
        [
            (slice(None, -3), slice(None, -3)),
            (slice(None, -3), slice(3, None)),
            (slice(3, None), slice(None, -3)),
            (slice(3, None), slice(3, None)),
        ]
    ):
        masks[k, rows, cols] = 0
    ring = masks.flatten().nonzero().view(-1)
    assert torch.equal(attn.valid_ind_rolled, ring) and len(ring) == 132
    keys.append(torch.cat(rolled, 1)[:, ring])
    for (h, w, kernel, stride), start in zip(groups_hw, starts[1:]):
        tokens = numbered(start, h, w).permute(0, 3, 1, 2)
        keys.append(cffm._unfold_tokens(tokens, kernel, stride, 1)[:, 0])
    expected = torch.cat(keys, 1)[..., 0].long() - 1  # −1 where unfold padded
    index = torch.as_tensor(window_key_index((hp, wp), 7, 3, groups_hw))
    zero_row = sum(sizes)
    assert index.shape == (6, 49 + 132 + 25 + 49 + 25 + 9)
    assert torch.equal(torch.where(index == zero_row, -1, index), expected)


def test_a_traced_transformer_is_the_eager_one():
    """Tracing (what the OpenVINO and ONNX conversions do) records the gathered rows as constants: two
    traced invocations make the same graph (torch's own check), and it computes the eager answers."""
    torch.manual_seed(1)
    model = CFFMTransformer(64, depth=1, heads=4).eval()
    x = torch.randn(1, 4, 64, 16, 28)
    with torch.no_grad():
        traced = torch.jit.trace(model, (x,), check_inputs=[(x,), (x + 1,)])
        assert torch.equal(traced(x), model(x))


def test_training_keeps_the_windowed_form_and_its_gradients(monkeypatch):
    """With a gradient the original's windows run, never the gathered form (their backward is torch's own),
    and every attention parameter receives a gradient."""

    def refuse(*args):
        raise AssertionError("the gathered form ran with a gradient")

    monkeypatch.setattr(cffm.CFFMAttention, "_gathered", refuse)
    torch.manual_seed(2)
    model = CFFMTransformer(64, depth=1, heads=4)
    assert not cffm.gathering()
    model(torch.randn(1, 4, 64, 14, 14))[:, -1].square().mean().backward()
    attn = model.blocks[0].attn
    for p in (
        attn.qkv.weight,
        attn.relative_position_bias_table,
        attn.relative_position_bias_table_to_neighbors,
    ):
        assert p.grad is not None and p.grad.abs().sum() > 0
