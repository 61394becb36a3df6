"""The sentences the bot says, per language, with overrides from the routing file."""

from __future__ import annotations

import string
from functools import cache
from importlib import resources
from typing import Any

import yaml

FALLBACK_LANGUAGE = "en"


@cache
def default_texts() -> dict[str, dict[str, str]]:
    raw = resources.files("bridge.core").joinpath("default_texts.yaml").read_text("utf-8")
    return {lang: dict(entries) for lang, entries in yaml.safe_load(raw).items()}


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class Texts:
    """Look up a sentence for a language: exact code, its prefix (``zh-hans`` → ``zh``), then
    the fallback language; overrides win over the shipped defaults at each step."""

    def __init__(
        self,
        overrides: dict[str, dict[str, str]] | None = None,
        fallback: str = FALLBACK_LANGUAGE,
    ) -> None:
        self.fallback = fallback
        merged: dict[str, dict[str, str]] = {k: dict(v) for k, v in default_texts().items()}
        for lang, entries in (overrides or {}).items():
            merged.setdefault(lang.lower(), {}).update(entries)
        self.table = merged

    def languages(self, language: str | None) -> list[str]:
        chain = []
        if language:
            code = language.lower().replace("_", "-")
            chain += [code, code.split("-")[0]]
        chain += [self.fallback, FALLBACK_LANGUAGE]
        return list(dict.fromkeys(chain))

    def get(self, key: str, language: str | None = None, **values: Any) -> str:
        for lang in self.languages(language):
            template = self.table.get(lang, {}).get(key)
            if template is not None:
                try:
                    return template.format(**values)
                except (KeyError, IndexError, ValueError):
                    # Placeholders are checked when the routing file loads; this guards
                    # only the shipped defaults against a caller passing too little.
                    continue
        return key
