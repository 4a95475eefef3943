#!/usr/bin/env python3
"""Fit-AD Studio launcher.

    python launch.py                 open the studio on http://127.0.0.1:7860
    python launch.py --lang en       English UI
    python launch.py --no-browser    start without opening the web browser
    python launch.py --share --auth owner:'maple-7-river-cloud'   a password-protected share link
    python launch.py demo            headless: write sample ads into outputs/ and print their paths

Startup loads no model and makes no network call; analytics are off.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# before gradio is imported anywhere: no analytics, no version check phoning home
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

from studio.config import ENGINE_CHOICES, MEMORY_PLANS, Settings, parse_auth  # noqa: E402
from studio.errors import StudioError  # noqa: E402
from studio.i18n import t  # noqa: E402

log = logging.getLogger("fitad")


SERVER_ONLY = ("--port", "--share", "--auth", "--no-browser")


def add_common_arguments(p: argparse.ArgumentParser, *, defaults: bool = True, server: bool = True) -> None:
    """The flags every command takes. Subcommands add them without defaults, so that a flag given
    before the command name (`launch.py --lang en demo`) is not overwritten by the subparser.
    Headless commands (server=False) still accept the server's flags but do not list them in --help."""
    before = len(p._actions)
    p.add_argument("--port", type=int, default=7860, help="port on 127.0.0.1 (default 7860)")
    p.add_argument("--engine", choices=ENGINE_CHOICES, default="auto",
                   help="auto: FLUX when its weights are in models/ and CUDA is present, else lite; "
                        "flux: FLUX.1 Fill + ControlNet; lite: no weights, CPU compositor; "
                        "tiny: random tiny FLUX set (tests/demos of the real code path)")
    p.add_argument("--share", action="store_true",
                   help="also open a public share link (needs internet); refuses to start without --auth")
    p.add_argument("--auth", metavar="USER:PASS|FILE",
                   help="password for the app: 'user:pass', or a file with one user:pass per line")
    p.add_argument("--lang", choices=("ko", "en"), default="ko", help="UI language (default Korean)")
    p.add_argument("--models-dir", type=Path, default=None, help="where weights live (default ./models)")
    p.add_argument("--outputs-dir", type=Path, default=None,
                   help="where results and the history database go (default ./outputs)")
    p.add_argument("--ollama-host", default=None, help="local Ollama server (default $OLLAMA_HOST or http://127.0.0.1:11434)")
    p.add_argument("--ollama-model", default=None, help="Ollama model for ad copy (default qwen2.5:7b-instruct)")
    p.add_argument("--llm-timeout", type=float, default=None, metavar="SECONDS",
                   help="longest wait for the local LLM before template copy is used (default 30, or $FITAD_LLM_TIMEOUT)")
    p.add_argument("--memory-plan", choices=MEMORY_PLANS, default="auto",
                   help="override the GPU memory plan chosen from the detected VRAM")
    p.add_argument("--no-browser", action="store_true",
                   help="do not open the studio in the web browser on start")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="where the history database goes (default: <outputs>-data, never inside the served outputs)")
    p.add_argument("--quantize", choices=("none", "8bit", "4bit"), default="none",
                   help="load the FLUX transformer in 8/4-bit with bitsandbytes (CUDA only)")
    if not defaults:
        for action in p._actions[before:]:
            action.default = argparse.SUPPRESS
    if not server:
        for action in p._actions[before:]:
            if any(opt in SERVER_ONLY for opt in action.option_strings):
                action.help = argparse.SUPPRESS


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from studio.cli import SUBCOMMANDS

    epilog = "commands:\n  (none)   open the studio in the browser\n" + "".join(
        f"  {name:<8} {help_}\n" for name, (_, help_) in SUBCOMMANDS.items())
    p = argparse.ArgumentParser(
        prog="launch.py",
        description="Fit-AD Studio: upload-ready ads from one photo, on your own PC. "
                    "핏애드 스튜디오: 사진 한 장으로 광고를 만듭니다.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    add_common_arguments(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    add_common_arguments(sub.add_parser("serve", help="open the studio (the default)"), defaults=False)
    for name, (module, help_) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        add_common_arguments(sp, defaults=False, server=False)
        importlib.import_module(module).add_arguments(sp)
    return p


def settings_from_args(args: argparse.Namespace) -> Settings:
    base = Settings()
    changes: dict[str, object] = {
        "port": args.port, "engine": args.engine, "share": args.share, "lang": args.lang,
        "auth": parse_auth(args.auth), "memory_plan": args.memory_plan, "quantize": args.quantize,
        "open_browser": not getattr(args, "no_browser", False),
    }
    if getattr(args, "llm_timeout", None):
        if not 1 <= args.llm_timeout <= 600:
            raise StudioError("launch.bad_llm_timeout")
        changes["llm_timeout_s"] = float(args.llm_timeout)
    if getattr(args, "data_dir", None):
        changes["data_dir"] = args.data_dir.resolve()
    if args.models_dir:
        changes["models_dir"] = args.models_dir.resolve()
    if args.outputs_dir:
        changes["outputs_dir"] = args.outputs_dir.resolve()
    if args.ollama_host:
        changes["ollama_host"] = args.ollama_host
    if args.ollama_model:
        changes["ollama_model"] = args.ollama_model
    return base.with_(**changes)


def check_share_passwords(settings: Settings) -> None:
    """A public share link needs a password, and a strong one."""
    if not settings.share:
        return
    from studio.ui.server import password_problems  # gradio: only when a share link is asked for

    if not settings.auth:
        raise StudioError("launch.share_needs_auth")
    for user, password in settings.auth:
        problems = password_problems(user, password)
        if problems:
            raise StudioError("serve.pw_weak", why=" ".join(t(p, settings.lang) for p in problems))


def serve(settings: Settings) -> None:
    from studio.services import build_services
    from studio.ui.app import CSS, build_app
    from studio.ui.server import launch_kwargs, pick_port

    port = pick_port(settings.host, settings.port)
    if port is None:
        raise StudioError("serve.port_none", port=settings.port)
    url = f"http://{settings.host}:{port}/"
    if port != settings.port:
        print(t("serve.port_taken", settings.lang, port=settings.port, new=port, url=url), flush=True)
        settings = settings.with_(port=port)
    from studio.runtime.warmup import prepare_in_background

    prepare_in_background(settings.models_dir, settings.lang)   # only when setup was skipped
    services = build_services(settings)
    choice = services.engines.choice("inpaint")
    log.info("engine: %s (%s)", choice.name, choice.reason("en"))
    print(t("engine.active", settings.lang, engine=choice.name), "—", choice.reason(settings.lang), flush=True)
    print(t("serve.open_at", settings.lang, url=url), flush=True)
    demo = build_app(services)
    demo.queue(default_concurrency_limit=4)
    try:
        # quiet: Gradio's own start-up lines would tell the owner to set `share=True` in code; the
        # studio prints its address above, and the public link (--share --auth) is still printed
        demo.launch(css=CSS, quiet=True, **launch_kwargs(settings))
    except OSError as exc:  # lost the port to another program between the check and the bind
        log.warning("could not listen on %s: %s", url, exc)
        raise StudioError("serve.port_none", port=settings.port) from exc


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    lang = args.lang
    try:
        settings = settings_from_args(args)
        check_share_passwords(settings)
        command = args.command or "serve"
        if command != "serve":
            import importlib

            from studio.cli import SUBCOMMANDS

            return int(importlib.import_module(SUBCOMMANDS[command][0]).run(settings, args))
        serve(settings)
    except StudioError as exc:
        print(exc.message(lang), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
