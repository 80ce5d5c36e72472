from __future__ import annotations

from pathlib import Path

import pytest

from llm_catalyst.errors import ConfigError, DataError
from llm_catalyst.llm.config import LLMConfig, PriceConfig, load_llm_config
from llm_catalyst.llm.gateway import build_client
from llm_catalyst.llm.scripted import ScriptedClient


def write(tmp_path: Path, text: str, name: str = "llm.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_is_the_local_key_free_model() -> None:
    cfg = LLMConfig()
    assert (cfg.backend, cfg.model, cfg.api_key_env) == (
        "llama_cpp",
        "qwen2.5-coder-1.5b-instruct",
        None,
    )
    assert cfg.price() == PriceConfig()


def test_yaml_at_top_level_or_under_llm(tmp_path) -> None:
    top = load_llm_config(write(tmp_path, "backend: openai\nbase_url: http://x/v1\nmodel: m\n"))
    nested = load_llm_config(
        write(tmp_path, "seed: 3\nllm:\n  backend: openai\n  base_url: http://x/v1\n  model: m\n")
    )
    assert top == nested
    assert top.backend == "openai"


def test_errors_name_file_line_and_field(tmp_path) -> None:
    path = write(tmp_path, "backend: local_hf\nsampling:\n  temperature: -1\n  top_p: 0.9\n")
    with pytest.raises(ConfigError) as info:
        load_llm_config(path)
    assert f"{path}, line 3: sampling.temperature" in str(info.value)


def test_unknown_keys_are_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"line 2: sampling\.temprature: Extra inputs"):
        load_llm_config(write(tmp_path, "sampling:\n  temprature: 0.5\n"))


def test_invalid_yaml_names_the_line(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"llm\.yaml, line 2: not valid YAML"):
        load_llm_config(write(tmp_path, "backend: openai\nmodel: a: b\n"))


@pytest.mark.parametrize(
    "key",
    [
        "sk-proj-AbC123/xyz+secret",
        "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",  # letters, digits, underscore: a name's alphabet
        "ghp_aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dE3fG5",
        "AKIAIOSFODNN7EXAMPLE",
        "A" * 65,
    ],
)
def test_a_pasted_key_is_refused_without_being_echoed(tmp_path, key) -> None:
    with pytest.raises(ConfigError) as info:
        load_llm_config(write(tmp_path, f"api_key_env: {key}\n"))
    assert "NAME of an environment variable" in str(info.value)
    assert key not in str(info.value)


@pytest.mark.parametrize(
    "name", ["OPENAI_API_KEY", "HF_TOKEN", "hf_token", "HUGGINGFACEHUBTOKEN", "AZURE_KEY_2"]
)
def test_a_variable_name_is_taken(name) -> None:
    assert LLMConfig(api_key_env=name).api_key_env == name


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"backend": "openai"}, "needs base_url"),
        ({"backend": "scripted"}, "needs script"),
        (
            {"backend": "openai", "base_url": "http://x/v1", "budget": {"max_cost_usd": 1}},
            "prices has no entry",
        ),
        ({"retry": {"initial_backoff_s": 5, "max_backoff_s": 1}}, "max_backoff_s is below"),
        ({"n_threads": 0}, "greater than or equal to 1"),
    ],
)
def test_inconsistent_settings_are_refused(data, message) -> None:
    with pytest.raises(ValueError, match=message):
        LLMConfig.model_validate(data)


def test_prices_apply_to_remote_models_only() -> None:
    prices = {"gpt-x": {"input_per_mtok": 1.5, "output_per_mtok": 6.0}}
    remote = LLMConfig(backend="openai", base_url="http://x/v1", model="gpt-x", prices=prices)
    assert remote.price() == PriceConfig(input_per_mtok=1.5, output_per_mtok=6.0)
    assert LLMConfig(model="gpt-x", prices=prices).price() == PriceConfig()


def test_scripted_backend_reads_json_and_jsonl(tmp_path) -> None:
    jsonl = write(tmp_path, '"one"\n\n{"texts": ["a", "b"]}\n{"error": "transient"}\n', "s.jsonl")
    client = build_client(LLMConfig(backend="scripted", script=jsonl))
    assert isinstance(client, ScriptedClient)
    as_list = write(tmp_path, '["one", {"texts": ["a", "b"]}, {"error": "transient"}]', "s.json")
    assert ScriptedClient.from_file(as_list)._steps == client._steps


def test_bad_script_lines_are_named(tmp_path) -> None:
    path = write(tmp_path, '"ok"\n{"nope": 1}\n', "s.jsonl")
    with pytest.raises(ConfigError, match=r"s\.jsonl, line 2: a scripted step must be"):
        ScriptedClient.from_file(path)
    broken = write(tmp_path, '"ok"\n{not json\n', "b.jsonl")
    with pytest.raises(DataError, match=r"b\.jsonl, line 2: not valid JSON"):
        ScriptedClient.from_file(broken)
