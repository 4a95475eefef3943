"""Gradio's own words (upload boxes, toasts, the queue line, the login page) in the studio's language.

They go through Gradio's i18n (`demo.launch(i18n=gr.I18n(...))`): the frontend looks up
flat dotted keys such as "upload_text.drop_image" in the custom translations before its own
dictionaries. The studio's language is the owner's choice (--lang), not the browser's, so the same
words are given for every locale Gradio ships; an English studio keeps Gradio's own English.
"""

from __future__ import annotations

import gradio as gr

#: The locales Gradio's frontend ships dictionaries for (gradio/templates/frontend/assets/<code>-*.js).
GRADIO_LOCALES = ("ar", "ca", "ckb", "de", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "id", "ja", "ko",
                  "lt", "nb", "nl", "pl", "pt-BR", "pt", "ro", "ru", "sv", "ta", "th", "tr", "uk", "ur", "uz",
                  "zh-CN", "zh-TW")

#: Plain Korean for the Gradio words an owner meets (keys as in Gradio's lang/en.json).
KO = {
    "upload_text.click_to_upload": "눌러서 사진 고르기",
    "upload_text.drop_image": "사진을 여기로 끌어 놓기",
    "upload_text.drop_video": "영상을 여기로 끌어 놓기",
    "upload_text.drop_audio": "소리 파일을 여기로 끌어 놓기",
    "upload_text.drop_file": "파일을 여기로 끌어 놓기",
    "upload_text.drop_csv": "표 파일을 여기로 끌어 놓기",
    "upload_text.drop_gallery": "사진·영상을 여기로 끌어 놓기",
    "upload_text.paste_clipboard": "복사한 사진 붙여 넣기",
    "common.or": "또는",
    "common.error": "알림",
    "common.clear": "지우기",
    "common.download": "내려받기",
    "common.download_all": "모두 내려받기",
    "common.edit": "고치기",
    "common.empty": "비어 있음",
    "common.loading": "불러오는 중",
    "common.remove": "빼기",
    "common.settings": "설정",
    "common.share": "공유",
    "common.submit": "보내기",
    "common.undo": "되돌리기",
    "common.progress": "진행",
    "file.uploading": "올리는 중…",
    "image.image": "사진",
    "image.remove_image": "사진 빼기",
    "image.drop_to_upload": "사진을 여기로 끌어 놓으면 올라갑니다",
    "image.allow_webcam_access": "사진을 찍으려면 카메라 사용을 허락해 주세요.",
    "video.drop_to_upload": "영상을 여기로 끌어 놓으면 올라갑니다",
    "status.queue_position": "차례를 기다리는 중: {position}/{size}",
    "login.username": "아이디",
    "login.password": "비밀번호",
    "login.login": "들어가기",
    "login.incorrect_credentials": "아이디나 비밀번호가 맞지 않습니다",
    "login.enable_cookies": "브라우저의 쿠키를 켜 주세요.",
    "dropdown.dropdown": "고르기",
    "slider.slider": "조절",
    "number.number": "숫자",
    "checkbox.checkbox": "선택",
    "blocks.connection_can_break": "휴대폰에서는 이 화면을 벗어나거나 화면이 꺼지면 연결이 끊겨 차례를 잃을 수 있습니다.",
    "blocks.lost_connection": "연결이 끊겼습니다. 다시 잇는 중…",
    "blocks.waiting_for_inputs": "사진이 다 올라갈 때까지 기다렸다가 다시 눌러 주세요.",
}

WORDS = {"ko": KO}


def gradio_i18n(lang: str) -> gr.I18n | None:
    """The `i18n=` of demo.launch for the studio's language (None: Gradio's own words)."""
    words = WORDS.get(lang)
    if not words:
        return None
    return gr.I18n(**{locale: dict(words) for locale in GRADIO_LOCALES})
