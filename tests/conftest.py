"""Shared test set-up: the `gpu` marker skips with its reason where no CUDA device is present."""

from __future__ import annotations

import pytest


def _cuda_missing_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device on this machine"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    for item in items:
        if "gpu" in item.keywords:
            reason = reason or _cuda_missing_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"gpu test: {reason}"))


@pytest.fixture(scope="session")
def fetched_assets() -> None:
    """Fails (never skips) with the fetch command unless every asset of fdp.assets is present and verified."""
    from fdp.assets import FETCH_HINT, assets_dir, missing_assets

    missing = missing_assets()
    if missing:
        pytest.fail(f"assets not fetched into {assets_dir()}: {', '.join(missing)}; {FETCH_HINT}", pytrace=False)
