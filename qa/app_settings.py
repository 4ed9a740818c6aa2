"""The app's settings now live with the library's in `qa.config` (one way to read settings).

This module keeps `from qa.app_settings import AppSettings` working for existing code.
"""

from qa.config import AppSettings
from qa.paths import default_feedback_log

__all__ = ["AppSettings", "DEFAULT_FEEDBACK_LOG"]

#: Kept for existing imports; the default now depends on a checkout or an installed package.
DEFAULT_FEEDBACK_LOG = default_feedback_log()
