"""One-click unsubscribe from a category's email, without signing in (RFC 8058).

Every email names its categories in a signed token (``django.core.signing``,
salted, holding the user id and the category slugs), used both in the
``List-Unsubscribe`` header and in a link in the body. The token is the only
credential: nobody can forge or alter one without ``SECRET_KEY``.

Deliberate choices:

- GET never changes anything. It shows a confirmation page with a button, because
  mail scanners and link previewers fetch every link in a message.
- POST turns the email preference of each category in the token to "off"; doing it
  twice is the same as once. The view is CSRF-exempt: the RFC 8058 POST comes from
  the mail provider's servers, with no cookie and no CSRF token; the signed token is
  what authorises it.
- Tokens do not expire: an unsubscribe link in an old email must still work.
- A category that became ``required`` (or was removed) since the email was sent is
  left alone and not listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

SALT = "sse_notify.email.unsubscribe"


def make_token(user_id: int, categories: Iterable[str]) -> str:
    """A token that turns off email for ``categories`` of user ``user_id``."""
    return signing.dumps({"u": user_id, "c": sorted(set(categories))}, salt=SALT, compress=True)


def read_token(token: str) -> tuple[int, list[str]]:
    """Return ``(user_id, categories)``; raise ``signing.BadSignature`` if forged or malformed."""
    data = signing.loads(token, salt=SALT)
    if not isinstance(data, dict):
        raise signing.BadSignature("Unsubscribe token holds no object.")
    user_id, categories = data.get("u"), data.get("c")
    if not isinstance(user_id, int) or not isinstance(categories, list):
        raise signing.BadSignature("Unsubscribe token is missing its user or categories.")
    if not all(isinstance(c, str) for c in categories):
        raise signing.BadSignature("Unsubscribe token has a category that is not a string.")
    return user_id, categories


def optional_categories(slugs: Iterable[str], declared: Mapping[str, Any] | None = None) -> list[Any]:
    """The declared, non-required categories among ``slugs`` (in declaration order)."""
    from .categories import get_categories

    wanted = set(slugs)
    declared = get_categories() if declared is None else declared
    return [c for slug, c in declared.items() if slug in wanted and not c.required]


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: confirm page. POST (the form, or the mail provider's one-click): email off.

    HEAD (link checkers and mail scanners probe links with it) answers as GET
    would, without a body, and changes nothing.
    """
    from .preferences import set_preference

    try:
        user_id, slugs = read_token(token)
    except signing.BadSignature:
        response = render(request, "sse_notify/email/unsubscribe.html", {"invalid": True}, status=400)
        return _private(response)
    if request.method == "HEAD":
        return _private(HttpResponse(content_type="text/html; charset=utf-8"))
    categories = optional_categories(slugs)
    done = False
    if request.method == "POST":
        # A deleted user has no email to turn off: answer as done, like a repeat.
        if get_user_model()._default_manager.filter(pk=user_id).exists():
            for category in categories:
                set_preference(user_id, category.slug, email="off")
        done = True
    context = {"categories": categories, "done": done, "action": request.path}
    return _private(render(request, "sse_notify/email/unsubscribe.html", context))


def _private(response: HttpResponse) -> HttpResponse:
    # The token in the URL is a credential: keep the page out of caches and indexes.
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response
