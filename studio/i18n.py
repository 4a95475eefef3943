"""User-facing text in Korean (default) and English.

Messages live in one table keyed by a stable id; `t(key, lang, **fields)` formats one.
Log messages stay English and never go through here.
"""

from __future__ import annotations

import logging
from typing import Literal

Lang = Literal["ko", "en"]
LANGS: tuple[Lang, ...] = ("ko", "en")

log = logging.getLogger(__name__)

# key -> (ko, en)
MESSAGES: dict[str, tuple[str, str]] = {
    # --- image loading -------------------------------------------------------------------
    "image.empty": ("파일이 비어 있습니다. 사진을 다시 올려 주세요.",
                    "The file is empty. Please upload the photo again."),
    "image.not_image": ("이미지 파일이 아닙니다({name}). JPG, PNG, WEBP 사진을 올려 주세요.",
                        "This is not an image file ({name}). Please upload a JPG, PNG or WEBP photo."),
    "image.unsupported": ("지원하지 않는 이미지 형식입니다({fmt}). JPG, PNG, WEBP로 저장해 올려 주세요.",
                          "Unsupported image format ({fmt}). Please save it as JPG, PNG or WEBP."),
    "image.bomb": ("이미지가 너무 큽니다({w}×{h}, {mp:.0f}MP). 1억 화소 이하의 사진을 올려 주세요.",
                   "The image is too large ({w}×{h}, {mp:.0f} MP). Please upload a photo under 100 MP."),
    "image.truncated": ("이미지 파일이 손상되었거나 덜 내려받아졌습니다. 원본 사진을 다시 올려 주세요.",
                        "The image file is damaged or incomplete. Please upload the original photo again."),
    "image.too_small": ("사진이 너무 작습니다({w}×{h}). 가로·세로 모두 {min}px 이상인 사진을 올려 주세요.",
                        "The photo is too small ({w}×{h}). Please upload one at least {min}px on each side."),
    "image.downscaled": ("사진이 커서 {w}×{h}로 줄였습니다.",
                         "The photo was large, so it was resized to {w}×{h}."),
    "image.animated": ("움직이는 이미지라 첫 장면만 사용합니다.",
                       "This is an animated image; only its first frame is used."),
    "image.truncated_loaded": ("파일 끝부분이 잘려 있어 읽을 수 있는 부분만 불러왔습니다.",
                               "The end of the file was cut off; the readable part was loaded."),
    "image.missing": ("사진을 먼저 올려 주세요.", "Please upload a photo first."),
    # --- app / launch ----------------------------------------------------------------------
    "launch.share_needs_auth": (
        "--share 링크는 비밀번호 없이 열 수 없습니다. --auth 사용자:비밀번호 를 함께 지정하세요.",
        "--share refuses to start without a password. Add --auth user:pass."),
    "launch.bad_auth": ("--auth 형식이 잘못되었습니다. '사용자:비밀번호' 또는 그런 줄이 담긴 파일 경로를 주세요.",
                        "--auth must be 'user:pass' or a file holding such lines."),
    "engine.reason.forced": ("'{engine}' 엔진을 직접 지정했습니다.", "The '{engine}' engine was chosen explicitly."),
    "engine.reason.flux_ready": ("FLUX Fill 가중치와 GPU(CUDA)가 있어 FLUX 엔진을 씁니다.",
                                 "FLUX Fill weights and a CUDA GPU are present, so the FLUX engine is used."),
    "engine.reason.no_weights": ("FLUX Fill 가중치가 없어 Lite 엔진(가중치 없이 배경 합성)을 씁니다. 모델 탭에서 내려받을 수 있습니다.",
                                 "No FLUX Fill weights, so the Lite engine (no-weights compositor) is used. Download them in the Models tab."),
    "engine.reason.no_cuda": ("FLUX 가중치는 있지만 CUDA GPU가 없어 Lite 엔진을 씁니다.",
                              "FLUX weights are present but there is no CUDA GPU, so the Lite engine is used."),
    "engine.active": ("활성 엔진: {engine}", "Active engine: {engine}"),
    # --- store / gallery ---------------------------------------------------------------------
    "store.disk_full": ("디스크 공간이 부족해 저장하지 못했습니다. 공간을 비운 뒤 다시 시도하세요. 기록은 바뀌지 않았습니다.",
                        "The disk is full, so nothing was saved. Free some space and try again; the history is unchanged."),
    "store.write_failed": ("결과를 저장하지 못했습니다({err}). 기록은 바뀌지 않았습니다.",
                           "The result could not be saved ({err}). The history is unchanged."),
    "store.not_found": ("기록 #{id}를 찾을 수 없습니다.", "History item #{id} was not found."),
    "gallery.empty": ("아직 만든 광고가 없습니다. 인물·제품 탭에서 만들어 보세요.",
                      "No ads yet. Make one in the Person or Product tab."),
    "gallery.deleted": ("기록 #{id}를 지웠습니다.", "Deleted history item #{id}."),
    "gallery.pick_first": ("갤러리에서 항목을 먼저 고르세요.", "Pick an item in the gallery first."),
    # --- jobs -----------------------------------------------------------------------------
    "job.cancelled": ("작업을 취소했습니다.", "The job was cancelled."),
    "job.busy": ("다른 작업이 GPU를 쓰는 중입니다. 끝나면 자동으로 시작합니다.",
                 "Another job is using the GPU; this one starts when it finishes."),
    "job.failed": ("작업이 실패했습니다: {err}", "The job failed: {err}"),
    "tab.coming": ("이 기능은 준비 중입니다: {what}", "This capability is coming: {what}"),
}


def t(key: str, lang: str = "ko", **fields: object) -> str:
    """Format message `key` in `lang` (falls back to Korean, then to the key itself)."""
    pair = MESSAGES.get(key)
    if pair is None:
        log.warning("missing message key %s", key)
        return key
    text = pair[1] if lang == "en" else pair[0]
    try:
        return text.format(**fields)
    except (KeyError, IndexError, ValueError):
        log.warning("message %s could not be formatted with %s", key, sorted(fields))
        return text


def register(messages: dict[str, tuple[str, str]]) -> None:
    """Let a module add its own messages (keys must be new: no silent overrides)."""
    clash = set(messages) & set(MESSAGES)
    if clash:
        raise ValueError(f"message keys already defined: {sorted(clash)}")
    MESSAGES.update(messages)
