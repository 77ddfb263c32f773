"""The image, built once per session by scripts/container-image; skips, saying why, where that cannot run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.container.podman import BASE, build_image, podman, runtime_missing, ulimits

# PostgreSQL and Redis on 127.0.0.1 for the worker containers: the same throwaway servers tests/scale uses.
from tests.scale.conftest import pg_url, postgres, redis_server

__all__ = ["image", "pg_url", "postgres", "redis_server"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "container: builds the Docker image with podman and runs it "
                            "(CALLWATCH_CONTAINER_TESTS=0 skips)")


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = runtime_missing()
    if reason:
        pytest.skip(reason)
    log = tmp_path_factory.mktemp("image") / "build.log"
    built = build_image(log)
    print(f"\ncontainer image: {built.image or 'not built'} in {built.seconds:.0f} s")
    if built.cannot:
        pytest.skip(built.cannot)
    if built.failure:
        pytest.fail(built.failure, pytrace=False)
    assert built.image is not None
    # Can a container run here at all? The base image failing to run `true` is the machine's doing, not the image's.
    probe = podman("run", "--rm", "--network", "host", *ulimits(), BASE, "true", check=False, timeout=300)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run containers here with runc: {probe.stderr.strip()[-500:]}")
    yield built.image
