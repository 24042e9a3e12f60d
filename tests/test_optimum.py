"""`lstheory.optimum` and `lstheory optimum`: the optimum in one call; framework names as conventions."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

import lstheory
from lstheory.cli import main


def test_pytorch_k1000_eps01_in_one_call():
    best = lstheory.optimum(1000, 0.1, convention="uniform")
    assert best.logit_gap == lstheory.logit_gap(1000, 0.1, convention="uniform")
    assert (best.p_true, best.p_other) == lstheory.smoothed_target(1000, 0.1, convention="uniform")
    assert best.min_loss == lstheory.min_loss(1000, 0.1, convention="uniform")
    assert best.min_loss_bits == pytest.approx(best.min_loss / math.log(2), rel=1e-15)
    assert best.eps_uniform == 0.1 and best.eps_off_target == lstheory.convert_eps(1000, 0.1, src="uniform",
                                                                                   dst="off_target")
    # Independent values: log(1 + K(1-eps)/eps) and the target's entropy, by hand.
    assert best.logit_gap == pytest.approx(math.log(1 + 1000 * 0.9 / 0.1), rel=1e-14)
    entropy = -(0.9001 * math.log(0.9001) + 999 * 0.0001 * math.log(0.0001))
    assert best.min_loss == pytest.approx(entropy, rel=1e-13)


def test_scalars_are_plain_floats():
    assert repr(lstheory.smoothed_target(1000, 0.1, convention="uniform")) == "(0.9001, 0.0001)"
    for value in (lstheory.logit_gap(10, 0.1), lstheory.min_loss(10, 0.1), lstheory.convert_eps(10, 0.1, src="uniform",
                                                                                                dst="off_target")):
        assert type(value) is float
    assert lstheory.logit_gap([10, 100], 0.1).shape == (2,)  # arrays stay arrays


def test_no_equivalent_in_the_other_convention_is_none():
    assert lstheory.optimum(10, 0.95).eps_uniform is None


def test_cli_json_has_the_documented_keys_and_values(capsys):
    assert main(["optimum", "--classes", "1000", "--eps", "0.1", "--convention", "uniform", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"num_classes", "eps", "convention", "logit_gap", "p_true", "p_other", "min_loss", "eps_off_target",
            "eps_uniform"} <= set(data)
    assert f"{data['logit_gap']:.4f}" == "9.1051" and data["p_true"] == 0.9001 and f"{data['min_loss']:.4f}" == "1.0148"


def test_cli_text_names_the_optimal_confidence(capsys):
    assert main(["optimum", "--classes", "10", "--eps", "0"]) == 0
    out = capsys.readouterr().out
    assert "optimal confidence p_true" in out and "inf" in out and "nats" in out and "bits" in out


@pytest.mark.parametrize("name, says", [
    ("pytorch", "use 'uniform'"), ("PyTorch", "use 'uniform'"), ("keras", "use 'uniform'"), ("optax", "use 'uniform'"),
    ("timm", "use 'uniform'"), ("huggingface", "use 'uniform'"), ("transformers", "use 'uniform'"),
    ("megatron", "use 'off_target'"), ("fairseq", "v0.10.2 it is 'uniform'"),
])
def test_framework_names_get_the_framework_convention(name, says):
    with pytest.raises(ValueError, match="that is a framework") as error:
        lstheory.logit_gap(10, 0.1, convention=name)
    assert says in str(error.value) and "'off_target', 'uniform'" in str(error.value)


def test_fairseq_names_both_versions():
    with pytest.raises(ValueError) as error:
        lstheory.optimum(10, 0.1, convention="fairseq")
    assert "'uniform'" in str(error.value) and "'off_target'" in str(error.value) and "#3182" in str(error.value)


def test_unknown_convention_keeps_the_plain_message():
    with pytest.raises(ValueError) as error:
        lstheory.logit_gap(10, 0.1, convention="eps_over_k")
    assert "framework" not in str(error.value)


def test_cli_framework_name_is_a_one_line_usage_error():
    done = subprocess.run([sys.executable, "-m", "lstheory", "optimum", "--classes", "1000", "--eps", "0.1",
                           "--convention", "pytorch"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "use 'uniform'" in done.stderr
