"""Settings groups: the docker backend's settings land in ``settings.docker`` (with its
``limits`` and ``pool``) from the nested names and from the flat names of old alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import FLAT_NAMES, Settings
from orchestrator.images import sandbox_image_tag
from orchestrator.models.catalog import catalog_model
from orchestrator.sandboxes.base import IsolationLevel
from orchestrator.sandboxes.docker_options import (
    ContainerLimits,
    DockerSettings,
    Runtime,
    Transport,
)
from orchestrator.sandboxes.pool import PoolConfig

pytestmark = pytest.mark.usefixtures("clean_latm_environment")


def test_the_defaults_are_the_groups_own() -> None:
    settings = Settings()
    assert settings.docker == DockerSettings()
    assert settings.docker.limits == ContainerLimits()
    assert settings.docker.pool == PoolConfig()
    assert settings.docker.image == sandbox_image_tag()
    assert settings.min_isolation is IsolationLevel.RLIMITS


def test_the_documented_flat_names_land_in_their_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "LATM_DOCKER_IMAGE": "latm-sandbox:custom",
        "LATM_DOCKER_RUNTIME": "runsc",
        "LATM_DOCKER_TENANT_RUNTIMES": '{"acme": "runsc"}',
        "LATM_DOCKER_TRANSPORT": "tunnel",
        "LATM_DOCKER_SOCKET_DIR": "/run/latm-test",
        "LATM_DOCKER_MEMORY_MB": "1024",
        "LATM_DOCKER_CPUS": "2.5",
        "LATM_DOCKER_PIDS": "256",
        "LATM_DOCKER_TMPFS_MB": "32",
        "LATM_POOL_MIN_IDLE": "0",
        "LATM_POOL_MAX_SIZE": "8",
        "LATM_POOL_MAX_USES": "50",
        "LATM_POOL_MAX_IDLE_S": "60",
        "LATM_POOL_ACQUIRE_TIMEOUT_S": "5",
        "LATM_MIN_ISOLATION": "container",
    }.items():
        monkeypatch.setenv(name, value)
    docker = Settings().docker
    assert docker.image == "latm-sandbox:custom"
    assert docker.runtime is Runtime.RUNSC
    assert docker.tenant_runtimes == {"acme": Runtime.RUNSC}
    assert docker.transport is Transport.TUNNEL
    assert docker.socket_dir == Path("/run/latm-test")
    assert docker.limits == ContainerLimits(memory_mb=1024, cpus=2.5, pids=256, tmpfs_mb=32)
    assert docker.pool == PoolConfig(
        min_idle=0, max_size=8, max_uses=50, max_idle_s=60, acquire_timeout_s=5
    )
    assert Settings().min_isolation is IsolationLevel.CONTAINER


def test_every_flat_name_leads_to_a_field_of_its_group() -> None:
    for name, path in FLAT_NAMES.items():
        model: type[object] = Settings
        for key in path:
            fields = model.model_fields  # type: ignore[attr-defined]
            assert key in fields, name
            model = fields[key].annotation
        assert name.endswith(path[-1])


def test_the_nested_names_work_and_win_over_the_flat_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LATM_DOCKER__RUNTIME", "runsc")
    monkeypatch.setenv("LATM_DOCKER__LIMITS__MEMORY_MB", "2048")
    monkeypatch.setenv("LATM_DOCKER__POOL__MAX_SIZE", "6")
    monkeypatch.setenv("LATM_POOL_MAX_SIZE", "3")  # the nested name above wins
    monkeypatch.setenv("LATM_POOL_MIN_IDLE", "2")  # a flat name for another field still counts
    docker = Settings().docker
    assert docker.runtime is Runtime.RUNSC
    assert docker.limits.memory_mb == 2048
    assert (docker.pool.min_idle, docker.pool.max_size) == (2, 6)


def test_dotenv_and_config_file_take_both_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("LATM_POOL_MAX_USES=7\nLATM_DOCKER__LIMITS__PIDS=64\n")
    config = tmp_path / "latm.toml"
    config.write_text(
        'docker_runtime = "runsc"\npool_max_uses = 9\ndocker_pids = 32\n'
        "[docker.pool]\nmax_idle_s = 12\n"
    )
    monkeypatch.setenv("LATM_CONFIG_FILE", str(config))
    monkeypatch.setenv("LATM_DOCKER_CPUS", "3")
    docker = Settings().docker
    assert docker.runtime is Runtime.RUNSC  # the file
    assert docker.pool.max_uses == 7  # .env outranks the file
    assert docker.limits.pids == 64  # so does its nested form
    assert docker.pool.max_idle_s == 12  # the file's nested form
    assert docker.limits.cpus == 3  # the environment


def test_constructor_arguments_outrank_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATM_POOL_MAX_SIZE", "8")
    monkeypatch.setenv("LATM_POOL_MIN_IDLE", "3")
    settings = Settings(pool_min_idle=0)  # type: ignore[call-arg] # a flat name of old
    assert (settings.docker.pool.min_idle, settings.docker.pool.max_size) == (0, 8)
    pool = PoolConfig(min_idle=1, max_size=2)
    assert Settings(docker=DockerSettings(pool=pool)).docker.pool == pool


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LATM_DOCKER_RUNTIME", "kata"),
        ("LATM_DOCKER_TENANT_RUNTIMES", '{"acme": "kata"}'),
        ("LATM_DOCKER_TRANSPORT", "carrier-pigeon"),
        ("LATM_DOCKER_MEMORY_MB", "16"),
        ("LATM_POOL_MAX_SIZE", "0"),
        ("LATM_DOCKER__POOL__MIN_IDLE", "9"),  # above max_size
        ("LATM_MIN_ISOLATION", "none"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=r"(?i)runtime|transport|memory|max_size|isolation"):
        Settings()


def test_an_empty_image_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATM_DOCKER_IMAGE", "")
    assert Settings().docker.image == sandbox_image_tag()


def test_the_larger_local_model_makes_and_the_smaller_one_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings()
    assert settings.maker_model == "local:qwen2.5-coder-1.5b"
    assert settings.user_model == "local:qwen2.5-coder-0.5b"
    for spec in (settings.maker_model, settings.user_model):
        assert catalog_model(spec.removeprefix("local:")).parts  # both are in the catalog
    monkeypatch.setenv("LATM_MAKER_MODEL", "local:qwen2.5-coder-0.5b")
    assert Settings().maker_model == Settings().user_model  # the 0.5B-only setting of old
