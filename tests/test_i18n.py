"""omni_mer.core.i18n: one reading of a language tag, one set of modality display names."""

import pytest

from omni_mer.core.config import MODALITIES
from omni_mer.core.i18n import LANGUAGES, MODALITY_NAMES, language_code


@pytest.mark.parametrize("tag, code", [("zh", "zh"), ("zh-CN", "zh"), ("ZH_tw", "zh"), (" zh ", "zh"), ("en", "en"),
                                       ("en-US", "en"), ("fr", "en"), ("", "en"), (None, "en")])
def test_language_code(tag, code):
    assert language_code(tag) == code


def test_every_language_names_every_modality():
    assert set(MODALITY_NAMES) == set(LANGUAGES)
    assert all(tuple(names) == MODALITIES for names in MODALITY_NAMES.values())
