"""The cluster config section, the dashboard address and the token: validation with no cluster."""

from __future__ import annotations

import pytest

from al_ray.cluster.address import is_loopback_host, read_token, redact, resolve_address
from al_ray.cluster.config import DEFAULT_EXCLUDES, ClusterConfig
from al_ray.config import load_config
from al_ray.errors import ClusterError, ConfigError


def test_defaults_ship_project_without_outputs():
    cluster = ClusterConfig()
    assert cluster.address is None
    assert cluster.working_dir is None
    assert cluster.image_uri is None
    assert cluster.entrypoint_num_cpus == 0
    for pattern in (".venv/", ".git/", "runs/", "mlruns/", "__pycache__/", "*.db"):
        assert pattern in cluster.excludes
    assert tuple(cluster.excludes) == DEFAULT_EXCLUDES


@pytest.mark.parametrize("other", [{"pip": ["scikit-learn"]}, {"working_dir": "."}])
def test_image_uri_excludes_working_dir_and_pip(cluster_config, other):
    path = cluster_config(cluster={"image_uri": "example.com/al-ray:1", **other})
    with pytest.raises(ConfigError, match="image_uri cannot be combined with cluster.working_dir or cluster.pip"):
        load_config(path)


def test_image_uri_with_env_vars_is_valid(cluster_config):
    config = load_config(cluster_config(cluster={"image_uri": "example.com/al-ray:1", "env_vars": {"A": "1"}}))
    assert config.cluster.image_uri == "example.com/al-ray:1"


@pytest.mark.parametrize("name", ["RAY_AUTH_TOKEN", "AL_RAY_CONFIG_YAML", "RAY_ADDRESS"])
def test_reserved_env_var_rejected(cluster_config, name):
    with pytest.raises(ConfigError, match=name):
        load_config(cluster_config(cluster={"env_vars": {name: "x"}}))


def test_env_var_name_checked(cluster_config):
    with pytest.raises(ConfigError, match="environment variable names"):
        load_config(cluster_config(cluster={"env_vars": {"1BAD": "x"}}))


def test_shared_paths_must_be_absolute(cluster_config):
    with pytest.raises(ConfigError, match="shared paths must be absolute"):
        load_config(cluster_config(cluster={"shared_paths": ["mnt/shared"]}))


def test_unknown_cluster_key_suggests(cluster_config):
    with pytest.raises(ConfigError, match="did you mean 'image_uri'"):
        load_config(cluster_config(cluster={"image_url": "x"}))


def test_address_flag_beats_config_and_env(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "http://env:8265")
    assert resolve_address("http://flag:8265/", "http://config:8265") == "http://flag:8265"
    assert resolve_address(None, "http://config:8265") == "http://config:8265"
    assert resolve_address(None, None) == "http://env:8265"


def test_missing_address_names_three_sources(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ConfigError) as caught:
        resolve_address(None, None)
    message = str(caught.value)
    assert "--address" in message
    assert "cluster.address" in message
    assert "RAY_ADDRESS" in message


@pytest.mark.parametrize(
    ("address", "kind", "fix"),
    [
        ("ray://head:10001", "Ray Client address", "http://head:8265"),
        ("head:6379", "GCS address", "http://head:8265"),
        ("auto", "find a local cluster", "http://127.0.0.1:8265"),
    ],
)
def test_non_http_address_rejected_with_fix(address, kind, fix):
    with pytest.raises(ConfigError) as caught:
        resolve_address(address, None)
    assert kind in str(caught.value)
    assert fix in str(caught.value)


def test_ray_address_env_must_be_http(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    with pytest.raises(ConfigError, match="RAY_ADDRESS '127.0.0.1:6379'"):
        resolve_address(None, None)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", True),
        ("10.0.0.5", False),
        ("head.example.com", False),
        (None, False),
    ],
)
def test_loopback_hosts(host, expected):
    assert is_loopback_host(host) is expected


def test_token_from_env_then_file(monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    assert read_token() is None
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    assert read_token() == "from-file"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert read_token() == "from-env"


def test_unreadable_token_file_named(monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(ClusterError, match="RAY_AUTH_TOKEN_PATH"):
        read_token()


def test_redact_hides_every_copy():
    assert redact("a s3cret b s3cret", "s3cret") == "a <redacted> b <redacted>"
    assert redact("nothing", None) == "nothing"
