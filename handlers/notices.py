"""How outbox entries are said: one renderer per kind, in the recipient's language.

Services write what happened (``kind`` and its facts); the feature module that
knows how to say it registers a renderer here with ``@notice(kind)``. The outbox
worker renders each entry when it delivers it, inside ``use_language`` of the
recipient, so a notice speaks the language its reader chose, even one chosen
after the notice was written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from telegram import InlineKeyboardMarkup

from storage import outbox

Rendered = tuple[str, InlineKeyboardMarkup | None]
Renderer = Callable[[dict[str, Any]], Rendered]

RENDERERS: dict[str, Renderer] = {}


def notice(kind: str) -> Callable[[Renderer], Renderer]:
    def register(render: Renderer) -> Renderer:
        if kind in RENDERERS:
            raise RuntimeError(f"two renderers for outbox kind {kind!r}")
        RENDERERS[kind] = render
        return render

    return register


class UnknownNotice(LookupError):
    pass


def render(kind: str, params: dict[str, Any]) -> Rendered:
    renderer = RENDERERS.get(kind)
    if renderer is None:
        raise UnknownNotice(kind)
    return renderer(params)


@notice(outbox.TEXT)
def _text(params: dict[str, Any]) -> Rendered:
    """A message rendered before it was queued (a reply that met flood control)."""
    markup = params.get("markup")
    return str(params["text"]), InlineKeyboardMarkup.de_json(markup, None) if markup else None
