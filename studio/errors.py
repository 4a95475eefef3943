"""One exception type for everything the owner should read.

`StudioError(key, **fields)` carries a message key from `studio.i18n`; the UI turns it into a
`gr.Error` in the active language. Anything else reaching the UI is a bug and is logged with its
traceback, while the owner sees a short, translated "the job failed" message.
"""

from __future__ import annotations

from studio.i18n import t


class StudioError(Exception):
    """An error with a user-facing, translatable message."""

    def __init__(self, key: str, /, **fields: object) -> None:
        self.key = key
        self.fields = fields
        super().__init__(t(key, "en", **fields))

    def message(self, lang: str = "ko") -> str:
        return t(self.key, lang, **self.fields)


class InputError(StudioError):
    """The owner's input is unusable (bad image, empty prompt...)."""


class WeightsError(StudioError):
    """Model weights are missing, corrupt or a git-lfs pointer."""


class CancelledError(StudioError):
    """The owner pressed cancel."""

    def __init__(self) -> None:
        super().__init__("job.cancelled")
