"""InvokeAI's habit on the tiny set: the idle previous pipeline waits in system RAM when RAM allows,
so switching back places the same weights again instead of reloading them; without room it is
freed as before; one pipeline waits at most; closing a parked engine leaves the resident one whole."""

from __future__ import annotations

from studio.config import Settings
from studio.engines.base import Text2ImageJob
from studio.engines.registry import EngineProvider
from studio.runtime.manager import PARK_HEADROOM_GB, ModelManager
from tests.test_engine_switch import SIZE, _inpaint_job, _pretend_card


class _Ram:
    """A RAM gauge the test sets (GiB available now)."""

    def __init__(self, free_gb: float) -> None:
        self.free_gb = free_gb
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.free_gb


def _provider(settings: Settings, ram: _Ram | None) -> EngineProvider:
    s = settings.with_(engine="tiny", task_engines=(("text2image", "tiny"),))
    return EngineProvider(s, manager=ModelManager(vram_gb=80.0, ram_free_gb=ram))


def _t2i_job() -> Text2ImageJob:
    return Text2ImageJob(prompt="coffee cup", width=SIZE, height=SIZE, steps=1)


def test_switching_back_reuses_the_parked_pipeline(settings: Settings) -> None:
    ram = _Ram(64.0)
    provider = _provider(settings, ram)
    manager = provider.manager
    fill, t2i = provider.get("inpaint"), provider.get("text2image")
    _pretend_card(fill, 80.0)
    _pretend_card(t2i, 80.0)
    first = fill.inpaint(_inpaint_job()).images[0]
    transformer = fill.pipeline.transformer
    assert 0 < fill.weights_gb() < 0.1                              # measured: the tiny set is small

    assert t2i.text2image(_t2i_job()).images[0].size == (SIZE, SIZE)
    assert manager.resident == t2i.key and manager.parked == fill.key
    assert fill.loaded and fill._placed is None                     # kept, off the card, hooks removed
    assert all(p.device.type == "cpu" for p in transformer.parameters())

    again = fill.inpaint(_inpaint_job()).images[0]
    assert fill.pipeline.transformer is transformer                 # the same weights: nothing re-read
    assert manager.resident == fill.key and manager.parked == t2i.key
    assert again.tobytes() == first.tobytes()                       # and it works as before
    assert manager.components.loads == 5                            # shared T5/CLIP/VAE still loaded once
    assert [e for e in manager.events if e[0] in ("load", "free", "park", "unpark")] == [
        ("load", fill.key), ("park", fill.key), ("load", t2i.key),
        ("unpark", fill.key), ("park", t2i.key), ("load", fill.key)]
    assert ram.calls >= 2


def test_without_room_in_ram_the_previous_pipeline_is_freed(settings: Settings) -> None:
    ram = _Ram(PARK_HEADROOM_GB - 0.5)                              # less than the headroom alone
    provider = _provider(settings, ram)
    manager = provider.manager
    fill, t2i = provider.get("inpaint"), provider.get("text2image")
    fill.inpaint(_inpaint_job())
    transformer = fill.pipeline.transformer
    t2i.text2image(_t2i_job())
    assert manager.parked is None and not fill.loaded and ram.calls >= 1
    fill.inpaint(_inpaint_job())
    assert fill.pipeline.transformer is not transformer             # reloaded from its parts, as before


def test_a_bare_manager_never_parks(settings: Settings) -> None:
    provider = _provider(settings, None)
    fill, t2i = provider.get("inpaint"), provider.get("text2image")
    fill.inpaint(_inpaint_job())
    t2i.text2image(_t2i_job())
    assert provider.manager.parked is None and not fill.loaded


def test_closing_a_parked_engine_leaves_the_resident_one_whole(settings: Settings) -> None:
    provider = _provider(settings, _Ram(64.0))
    manager = provider.manager
    fill, t2i = provider.get("inpaint"), provider.get("text2image")
    _pretend_card(fill, 80.0)
    _pretend_card(t2i, 80.0)
    fill.inpaint(_inpaint_job())
    t2i.text2image(_t2i_job())
    placed = t2i._placed
    assert manager.parked == fill.key and placed is not None
    provider.release("inpaint", fill.name)                          # e.g. the owner picks another engine
    assert manager.parked is None and not fill.loaded and ("free", fill.key) in manager.events
    assert manager.resident == t2i.key and t2i._placed is placed    # its placement untouched
    assert t2i.text2image(_t2i_job()).images[0].size == (SIZE, SIZE)
    manager.free_all()
    assert manager.resident is None and manager.parked is None and len(manager.components) == 0
