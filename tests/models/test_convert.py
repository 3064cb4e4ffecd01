"""``aligngoals convert`` (GGUF to a transformers directory), ``--model-arg`` parsing and ``vllm:`` target checks.

The conversion of the embedded model is content-addressed in ~/.cache/aligngoals (about a
minute the first time, reused afterwards, shared with tests/test_vllm.py).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aligngoals.cli.common import parse_model_args
from aligngoals.cli.main import app
from aligngoals.errors import ConfigError, ModelError
from aligngoals.models.base import GenerationRequest, GenerationSettings, LoglikelihoodRequest
from aligngoals.models.convert import MARKER, convert_gguf, ensure_converted, resolve_gguf


def test_model_args_parse_json_values_else_text():
    opts = parse_model_args(["tensor_parallel_size=4", "gpu_memory_utilization=0.85", "enforce_eager=true",
                             "distributed_executor_backend=ray", "dtype=bfloat16", "note=a=b"])
    assert opts == {"tensor_parallel_size": 4, "gpu_memory_utilization": 0.85, "enforce_eager": True,
                    "distributed_executor_backend": "ray", "dtype": "bfloat16", "note": "a=b"}
    assert parse_model_args(None) == {}


@pytest.mark.parametrize("bad", ["tensor_parallel_size", "=4", "tp-size=4", "x=1 x=2"])
def test_model_args_reject_malformed(bad):
    with pytest.raises(ConfigError, match="--model-arg"):
        parse_model_args(bad.split())


def test_convert_rejects_non_gguf_and_existing_output(tmp_path):
    txt = tmp_path / "model.gguf"
    txt.write_text("not a gguf")
    with pytest.raises(ModelError, match="not a GGUF file"):
        resolve_gguf(txt)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_gguf(tmp_path / "missing.gguf")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ModelError, match="already exists"):
        convert_gguf("smollm2", out)
    res = CliRunner().invoke(app, ["convert", "smollm2", "--out", str(out)])
    assert res.exit_code != 0 and "already exists" in str(res.exception)


def test_vllm_target_checks_need_no_engine(tmp_path):
    from aligngoals.models.vllm_backend import resolve_target

    with pytest.raises(ModelError, match="config.json"):
        resolve_target(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="no \\*.safetensors"):
        resolve_target(str(tmp_path))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(ModelError, match="aligngoals convert"):
        resolve_target(str(gguf))
    with pytest.raises(ModelError, match="hub id"):
        resolve_target("not/a/hub/id")
    assert resolve_target("Org/Name")[1] == {"source": "hub", "hub_id": "Org/Name"}


def test_vllm_backend_without_vllm_says_how_to_install():
    try:
        import vllm  # noqa: F401

        pytest.skip("vllm imports here; tests/test_vllm.py covers the engine")
    except ImportError:
        pass
    from aligngoals.models.registry import load_model

    with pytest.raises(ModelError, match="vllm_venv.sh"):
        load_model("vllm:smollm2")


@pytest.mark.slow
def test_converted_directory_equals_the_gguf_through_transformers(hf_model):
    """Same float32 weights, so hf:DIR and hf:smollm2 score and generate identically; chat template kept."""
    from aligngoals.models.registry import load_model

    out = ensure_converted("smollm2")
    meta = json.loads((out / MARKER).read_text())
    assert meta["dtype"] == "float32" and len(meta["gguf_sha256"]) == 64
    assert (out / "model.safetensors").stat().st_size > 500e6
    assert ensure_converted("smollm2") == out  # reused, not redone
    res = CliRunner().invoke(app, ["convert", "smollm2"])  # default: the same cache entry
    assert res.exit_code == 0, res.output
    m = load_model(f"hf:{out}", device="cpu", batch_size=4)
    try:
        reqs = [LoglikelihoodRequest("The capital of France is", " Paris"),
                LoglikelihoodRequest("Human: Hi!\n\nAssistant:", " Hello, how can I help you today?")]
        for a, b in zip(m.loglikelihood(reqs), hf_model.loglikelihood(reqs)):
            assert abs(a.logprob - b.logprob) < 1e-4 and a.n_tokens == b.n_tokens
        chat = [GenerationRequest(messages=({"role": "user", "content": "Name a fruit."},),
                                  settings=GenerationSettings(max_tokens=16))]
        assert m.render(chat[0]) == hf_model.render(chat[0])
        assert m.generate(chat) == hf_model.generate(chat)
    finally:
        m.close()
