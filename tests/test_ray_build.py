"""A build with ``[engine] kind = "ray"`` and no running Ray: one local Ray for all its stages,
shut down at the end (the engine's outputs are compared in ``test_ray_engine.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")


def test_a_ray_build_starts_ray_once_and_shuts_it_down(tmp_path: Path) -> None:
    """Without a running Ray, a build with ``[engine] kind = "ray"`` starts one local Ray for
    all its stages and shuts it down at the end."""
    from dataclasses import replace

    import csft_data.demo as demo
    from csft_data.pipeline.config import EngineConfig
    from csft_data.pipeline.recipe import load_recipe
    from csft_data.pipeline.runner import build

    ray.shutdown()  # none of this module's own; a no-op unless another test left one up
    inits = []
    init = ray.init

    def counted(*args: Any, **kw: Any) -> Any:
        inits.append(kw)
        return init(*args, num_cpus=2, **kw)

    recipe = load_recipe(Path(demo.__file__).parent / "recipe.toml")
    r = replace(recipe, out_dir=tmp_path / "out", engine=EngineConfig(kind="ray"))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(ray, "init", counted)
        build(r, on_notice=None)
    assert len(inits) == 1
    assert not ray.is_initialized()
