"""Exceptions that carry a message meant for the user."""

from __future__ import annotations


class GoldDiggerError(ValueError):
    """A problem with the user's input that has a clear fix.

    The CLI prints ``str(error)`` as one line and exits non-zero; library users can
    catch it as a ``ValueError``.
    """


class ImageReadError(GoldDiggerError):
    """An image file cannot be read or is not a usable micrograph."""


class CalibrationError(GoldDiggerError):
    """The pixel size is missing or not plausible for electron microscopy."""


class AnnotationError(GoldDiggerError):
    """A particle list or ROI file cannot be read."""


class ModelError(GoldDiggerError):
    """A model folder is incomplete, corrupt or incompatible."""
