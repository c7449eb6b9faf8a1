"""The production settings plus one bare JSON view: the baseline the capture benchmark compares with."""

from consentry.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
