"""Generated parts of the "Tensor-parallel vocabularies" page: Megatron-LM's error in numbers, the derivations.

Everything here is computed, not typed in: the worked example evaluates the
shard-size formula (:func:`lstheory.testing.vocab_parallel.shard_size_smoothing_losses`,
which the claim ``tensor_parallel.megatron_label_smoothing`` checks against a
gloo transcription of Megatron-LM's loss) and lstheory's dense loss on seeded
logits, in float64, rounded to four decimals.  Both pages are computed once per process
(``lstheory docs --check`` and the docs tests ask for them several times).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lstheory.docgen.pages import GENERATED_NOTE

WORKED_EXAMPLE = {"num_classes": 50257, "num_rows": 64, "eps": 0.1, "seed": 0, "world_sizes": (1, 2, 4, 8)}
"""GPT-2's vocabulary, logits falling with the token id like a frequency-ordered vocabulary."""


def _float32_underflow_gap() -> int:
    """The smallest whole logit gap at which float32 softmax rounds the smaller probability to 0."""
    import torch

    gaps = torch.arange(1, 200, dtype=torch.float32)
    return int(gaps[torch.exp(-gaps) == 0][0])


@lru_cache(maxsize=None)
def megatron_error_table() -> str:
    """Markdown: each rank's loss under Megatron-LM's smoothing against lstheory's, per world size."""
    import torch

    from lstheory.testing.vocab_parallel import frequency_ordered_logits, shard_size_smoothing_losses
    from lstheory.torch import label_smoothed_cross_entropy, vocab_shard_bounds

    k, n, eps, seed = (WORKED_EXAMPLE[key] for key in ("num_classes", "num_rows", "eps", "seed"))
    logits, target = frequency_ordered_logits(n, k, seed)
    dense = float(label_smoothed_cross_entropy(torch.from_numpy(logits), torch.from_numpy(target), eps))
    lines = [
        GENERATED_NOTE,
        f"K = {k}, eps = {eps} (off_target, Megatron-LM's convention), the mean over {n} rows of logits falling "
        f"with the token id (`-log(1 + id)` plus noise of standard deviation 0.5, seed {seed}), float64. "
        f"lstheory's loss, dense or vocabulary-parallel at any world size: **{dense:.4f}**.",
        "",
        "| world size | shard sizes K_r | smoothing each rank applies, eps K_r/(K_r - 1) | loss each rank reports | "
        "largest relative error |",
        "|---:|---|---|---|---:|",
    ]
    for world_size in WORKED_EXAMPLE["world_sizes"]:
        bounds = vocab_shard_bounds(k, world_size)
        sizes = sorted({stop - start for start, stop in bounds})
        smoothing = sorted({f"{eps * (stop - start) / (stop - start - 1):.7f}" for start, stop in bounds})
        losses = shard_size_smoothing_losses(logits, target, eps, bounds)
        error = float(np.max(np.abs(losses - dense)) / dense)
        lines.append(f"| {world_size} | {' or '.join(map(str, sizes))} | {' or '.join(smoothing)} | "
                     f"{' / '.join(f'{v:.4f}' for v in losses)} | {error:.2%} |")
    lines += ["", f"In float32 (Megatron-LM casts the logits to float) `log(softmax)` is `-inf` once a logit gap "
              f"reaches {_float32_underflow_gap()}: `exp(-gap)` rounds to 0, and the loss is `inf`.", ""]
    return "\n".join(lines)


@lru_cache(maxsize=None)
def derivations_section() -> str:
    """The two derivations of :mod:`lstheory.symbolic.tensor_parallel`, as Markdown with LaTeX."""
    from lstheory.symbolic.tensor_parallel import megatron_shard_smoothing, vocab_parallel_decomposition

    parts = [GENERATED_NOTE, vocab_parallel_decomposition().markdown(), megatron_shard_smoothing().markdown()]
    return "\n".join(parts).replace("\n## ", "\n### ")


def generated_pages() -> dict[str, str]:
    """File name (under ``docs/generated/``) -> content."""
    return {"megatron_error.md": megatron_error_table(), "tensor_parallel_derivations.md": derivations_section()}
