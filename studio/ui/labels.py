"""UI labels (Korean first, English under --lang en). Messages for errors live in studio.i18n."""

from __future__ import annotations

LABELS: dict[str, tuple[str, str]] = {
    "app.title": ("Fit-AD Studio · 핏애드 스튜디오", "Fit-AD Studio"),
    "app.subtitle": ("사진 한 장으로 올릴 수 있는 광고를 만듭니다. 모든 작업은 이 PC 안에서만 이루어집니다.",
                     "Turn one photo into upload-ready ads. Everything stays on this PC."),
    "engine.banner": ("활성 엔진: {engine}", "Active engine: {engine}"),
    "tab.person": ("인물", "Person"),
    "tab.product": ("제품", "Product"),
    "tab.advanced": ("고급", "Advanced"),
    "tab.overlay": ("오버레이", "Overlay"),
    "tab.video": ("영상", "Video"),
    "tab.stock": ("스톡", "Stock"),
    "tab.gallery": ("갤러리", "Gallery"),
    "tab.models": ("모델", "Models"),
    "coming.person": ("얼굴은 그대로, 옷과 배경을 새로 만드는 인물 광고", "Person ads: keep the face, new outfit and background"),
    "coming.product": ("제품은 그대로, 새 장면을 만드는 제품 광고", "Product ads: keep the product, new scene"),
    "coming.advanced": ("얼굴과 제품을 함께 지키는 고급 합성", "Advanced: keep face and product together"),
    "coming.overlay": ("한국어 광고 문구·해시태그와 문구 배치, SNS 크기 내보내기", "Korean copy, hashtags, text layout and SNS exports"),
    "coming.video": ("이미지로 만드는 짧은 세로 광고 영상", "A short vertical ad clip from an image"),
    "coming.stock": ("스톡 사이트용 일괄 생성(프롬프트 모드, 업스케일, 한/영 메타데이터)",
                     "Batch generation for stock sites (prompt modes, upscaling, Korean/English metadata)"),
    "gallery.filter": ("작업 종류", "Workflow"),
    "gallery.all": ("전체", "All"),
    "gallery.refresh": ("새로 고침", "Refresh"),
    "gallery.items": ("만든 광고", "Your ads"),
    "gallery.detail": ("선택한 결과", "Selected result"),
    "gallery.settings": ("설정", "Settings"),
    "gallery.delete": ("선택한 결과 지우기", "Delete selected"),
    "gallery.confirm": ("정말 지울까요? 파일도 함께 지워집니다.", "Delete it? Its files are removed too."),
    "gallery.download": ("파일 내려받기", "Download files"),
    "gallery.reconcile": ("기록 점검: 파일이 없는 기록 {missing}개, 기록이 없는 파일 {orphans}개가 있습니다(아무것도 지우지 않았습니다).",
                          "History check: {missing} rows without a file, {orphans} files without a row (nothing was deleted)."),
    "models.catalog": ("모델 목록", "Model catalog"),
    "models.device": ("이 PC의 장치와 메모리 계획", "This PC's device and memory plan"),
    "models.check": ("장치 확인", "Check device"),
    "models.vision": ("얼굴·포즈·누끼 백엔드", "Face, pose and cut-out backends"),
    "models.download": ("내려받기", "Download"),
    "models.pick": ("내려받을 모델", "Model to download"),
    "models.token": ("Hugging Face 토큰(게이트 모델용, 선택)", "Hugging Face token (gated models, optional)"),
    "models.col.name": ("모델", "Model"),
    "models.col.purpose": ("용도", "Purpose"),
    "models.col.present": ("설치됨", "Present"),
    "models.col.disk": ("디스크(GB)", "Disk (GB)"),
    "models.col.vram": ("VRAM(GB)", "VRAM (GB)"),
    "models.col.licence": ("라이선스", "Licence"),
    "models.col.commercial": ("모델 상업 사용", "Model commercial use"),
    "models.col.outputs": ("결과물 상업 사용", "Outputs commercial use"),
    "yes": ("예", "yes"),
    "no": ("아니요", "no"),
}


def label(key: str, lang: str = "ko", **fields: object) -> str:
    ko, en = LABELS[key]
    text = en if lang == "en" else ko
    return text.format(**fields) if fields else text
