"""The Stock tab through the HTTP API (gradio_client), as the UI drives it."""

from __future__ import annotations

import zipfile

from conftest import RunningApp


def test_stock_tab_plans_runs_streams_and_exports(settings) -> None:
    app = RunningApp(settings)
    try:
        client = app.client()
        bid = client.predict("keyword", "카페, 라떼", "cafe", 3, ["lite"], "jpeg", 90, 300, 1, api_name="/stock_plan")
        assert isinstance(bid, str) and len(bid) == 32
        gallery, status = client.predict(bid, api_name="/stock_run")
        assert len(gallery) == 3
        assert "3/3" in status
        zpath = client.predict(bid, api_name="/stock_export")
        with zipfile.ZipFile(zpath["path"] if isinstance(zpath, dict) else zpath) as zf:
            names = zf.namelist()
        assert sum(n.endswith(".jpg") for n in names) == 3 and any(n.startswith("adobe_") for n in names)
        assert app.services.store.count("stock") == 3
    finally:
        app.close()
