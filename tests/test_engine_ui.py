"""The engine switch per task in the Models tab: statuses, the active engine's reason, a switch
that loads at once, and a failed load that keeps the previous engine with a notice."""

from __future__ import annotations

from studio.config import Settings
from studio.services import build_services


def test_engine_panel_switches_and_reports_a_rollback(settings: Settings) -> None:
    import gradio as gr

    from studio.ui.tabs.engines_panel import apply_engine_choice, build_engine_panel, engine_status_markdown

    svc = build_services(settings.with_(engine="lite", commercial_only=False))  # Fill is non-commercial
    try:
        with gr.Blocks():
            build_engine_panel(svc)  # builds for every task without errors
        md = engine_status_markdown(svc, "inpaint")
        assert "모델 파일 없음" in md and "빠른 배경 합성" in md  # flux: no weights; lite active (in words)
        out = apply_engine_choice(svc, "inpaint", "flux")  # no FLUX weights: stays on lite
        assert svc.engines.active_name("inpaint") == "lite"
        assert "불러오지 못해" in out and "flux-fill" in out
        out = apply_engine_choice(svc, "text2image", "tiny")
        assert svc.engines.active_name("text2image") == "tiny" and "시험용 작은 모델" in out
    finally:
        svc.store.close()


def test_ad_tab_switches_the_inpaint_engine_through_the_api(running_app) -> None:
    """The ad tabs carry the same switch: the owner picks an engine there, a failed load keeps the
    previous one and says why in Korean."""
    client = running_app.client()
    note = client.predict("flux", api_name="/product_engine")  # Fill is non-commercial: the switch (on) keeps lite
    assert running_app.services.engines.active_name("inpaint") == "lite"
    assert "비상업" in note and "빠른 배경 합성" in note
    note = client.predict("tiny", api_name="/person_engine")
    assert running_app.services.engines.active_name("inpaint") == "tiny" and "tiny" in note
