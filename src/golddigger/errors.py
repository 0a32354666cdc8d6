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


class OptionError(GoldDiggerError):
    """An option (flag, dialog field, argument) has a value that cannot work."""


class RegionError(AnnotationError):
    """An image's counting region is missing, unreadable or empty."""


class OutputError(GoldDiggerError):
    """The output folder cannot take the results (in use, other settings, collisions)."""


class InputError(GoldDiggerError):
    """An input file (CSV, label list, model file) has content that cannot be used."""
