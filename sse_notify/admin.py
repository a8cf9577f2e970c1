"""Django admin: the notification changelist, a "Send notification" page, a User action.

- Notification changelist: search by recipient and title, filters by level and
  read state, date hierarchy, "mark read" / "mark unread" actions that go
  through the queryset API so counts stay right and open tabs are told.
- "Send notification" page at ``admin:sse_notify_notification_send``
  (``<admin>/sse_notify/notification/send/``): users, groups or everyone. Needs
  the ``sse_notify.add_notification`` permission.
- "Send notification to selected users", an action added to the User admin
  (see :func:`add_user_action` for how and why).
- ``Inbox`` (per-user counter and unread count) is shown read-only: editing or
  deleting one would break the sequence every stream resumes from.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .categories import get_categories
from .forms import NotificationAdminForm, SendNotificationForm
from .models import Inbox, Notification, Preference, is_id

SEND_URL_NAME = "sse_notify_notification_send"
#: Most users the User-changelist action hands to the send page (they travel in the URL).
MAX_PRESELECTED_USERS = 500


class ReadFilter(admin.SimpleListFilter):
    title = _("read state")
    parameter_name = "read"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("no", _("Unread")), ("yes", _("Read"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Notification]) -> QuerySet[Notification]:
        if self.value() == "no":
            return queryset.filter(read_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(read_at__isnull=False)
        return queryset


class CategoryFilter(admin.SimpleListFilter):
    """Filter by category, labelled as the project declares them (plus any stray slug in the data)."""

    title = _("category")
    parameter_name = "category"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(slug, category.label) for slug, category in get_categories().items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(category=self.value())
        return queryset


def _user_search_fields(prefix: str) -> tuple[str, ...]:
    """Username and e-mail lookups that exist on the project's user model."""
    User = get_user_model()
    names = [User.USERNAME_FIELD, User.get_email_field_name()]
    fields: list[str] = []
    for name in dict.fromkeys(names):
        try:
            User._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        fields.append(f"{prefix}{name}")
    return tuple(fields)


def _model_admin(site: admin.AdminSite, model: Any) -> admin.ModelAdmin[Any] | None:
    """The site's ModelAdmin for ``model``, or None if it has none."""
    try:
        return site.get_model_admin(model)
    except NotRegistered:
        return None


def _user_admin_searchable(site: admin.AdminSite) -> bool:
    user_admin = _model_admin(site, get_user_model())
    return bool(user_admin is not None and user_admin.search_fields)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    form = NotificationAdminForm
    change_list_template = "admin/sse_notify/notification/change_list.html"
    send_template = "admin/sse_notify/notification/send.html"
    list_display = ("title", "recipient", "category", "level", "is_read", "created_at", "seq")
    # email_state: what the email runner did with it (e.g. "Being sent" long ago = an interrupted run).
    list_filter = (CategoryFilter, "level", ReadFilter, "email_state")
    list_select_related = ("recipient",)
    date_hierarchy = "created_at"
    # Autocomplete over the User admin when it exists (see get_autocomplete_fields);
    # the raw id widget otherwise, so a project without a User admin still works.
    raw_id_fields = ("recipient", "actor")
    actions = ("mark_read", "mark_unread")

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        return (*_user_search_fields("recipient__"), "title", "=group_key")

    def get_autocomplete_fields(self, request: HttpRequest) -> tuple[str, ...]:
        return ("recipient", "actor") if _user_admin_searchable(self.admin_site) else ()

    def get_fields(self, request: HttpRequest, obj: Notification | None = None) -> list[Any]:
        fields: list[Any] = ["recipient", "title", "body", "level", "url", "data", "actor", "category", "group_key"]
        if obj is not None:
            fields += ["seq", "created_at", "read_at", "in_app", "desktop", "email_state", "emailed_at"]
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Notification | None = None) -> tuple[str, ...]:
        # seq is the stream cursor: allocated on creation, never edited. Read state
        # changes through the actions, which keep unread counts and open tabs right;
        # a sent notification keeps its recipient.
        # in_app/desktop are the recipient's choices at send time: a record, not a setting.
        if obj is None:
            return ("seq",)
        return (
            "recipient", "actor", "seq", "created_at", "read_at", "category", "in_app", "desktop",
            "email_state", "emailed_at",
        )  # fmt: skip

    @admin.display(boolean=True, description=_("read"), ordering="read_at")
    def is_read(self, obj: Notification) -> bool:
        return obj.is_read

    @admin.action(description=_("Mark selected notifications as read"), permissions=["change"])
    def mark_read(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        changed = queryset.mark_read()  # type: ignore[attr-defined]
        self.message_user(
            request,
            ngettext("Marked %d notification as read.", "Marked %d notifications as read.", changed) % changed,
            messages.SUCCESS,
        )

    @admin.action(description=_("Mark selected notifications as unread"), permissions=["change"])
    def mark_unread(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        changed = queryset.mark_unread()  # type: ignore[attr-defined]
        self.message_user(
            request,
            ngettext("Marked %d notification as unread.", "Marked %d notifications as unread.", changed) % changed,
            messages.SUCCESS,
        )

    def get_urls(self) -> list[URLPattern]:
        send = path("send/", self.admin_site.admin_view(self.send_view), name=SEND_URL_NAME)
        return [send, *super().get_urls()]

    def send_view(self, request: HttpRequest) -> HttpResponse:
        """The "Send notification" page: GET shows the form, POST sends (all or nothing)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = SendNotificationForm(request.POST, admin_site=self.admin_site)
            if form.is_valid():
                sent = form.save(actor=request.user)
                self.message_user(
                    request,
                    ngettext(
                        "Notification “%(title)s” sent to %(count)d user.",
                        "Notification “%(title)s” sent to %(count)d users.",
                        len(sent),
                    )
                    % {"title": form.cleaned_data["title"], "count": len(sent)},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse(f"{self.admin_site.name}:sse_notify_notification_changelist"))
        else:
            form = SendNotificationForm(initial=self._initial_from_query(request), admin_site=self.admin_site)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send notification"),
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
            "has_view_permission": self.has_view_permission(request),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.send_template, context)

    def _initial_from_query(self, request: HttpRequest) -> dict[str, Any]:
        """``?users=1,2,3`` (from the User action) preselects those users.

        Only for senders who may view users: the preselected options show usernames.
        """
        user_admin = _model_admin(self.admin_site, get_user_model())
        if user_admin is None or not user_admin.has_view_permission(request):
            return {}
        # is_id, not str.isdigit: "²" or an id past 64 bits (OverflowError on SQLite) was a 500.
        ids = [part for part in request.GET.get("users", "").split(",") if is_id(part)]
        return {"users": [int(pk) for pk in ids[:MAX_PRESELECTED_USERS]]} if ids else {}


class _PerUserReadOnly(admin.ModelAdmin):
    """Per-user state that staff may look up by user but not add or change here."""

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        return _user_search_fields("user__")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Inbox)
class InboxAdmin(_PerUserReadOnly):
    """Read-only: support staff can see a user's counters; nobody can corrupt them."""

    list_display = ("user", "unread", "last_seq", "pruned_seq")
    list_select_related = ("user",)
    readonly_fields = ("user", "unread", "last_seq", "pruned_seq")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting an inbox would restart the user's seq at 1 and clash with their rows.
        return False


@admin.register(Preference)
class PreferenceAdmin(_PerUserReadOnly):
    """Support staff can see a person's choices (empty = the category's default).

    Read-only, like ``Inbox``: choices change through ``set_preferences`` (the
    page, the JSON endpoint, an email's unsubscribe link), which keeps required
    categories fixed and tells the person's open tabs. Deleting a row resets
    that category to its defaults.
    """

    list_display = ("user", "category", "in_app", "desktop", "email", "updated_at")
    list_filter = ("category", "email")
    list_select_related = ("user",)
    readonly_fields = ("user", "category", "in_app", "desktop", "email", "updated_at")


@admin.action(description=_("Send notification to selected users"))
def send_notification_to_users(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
    """User-changelist action: open the send page with the selected users filled in.

    The ids travel in the query string, as Django's docs suggest for actions with
    an intermediate page; more than ``MAX_PRESELECTED_USERS`` are refused with a
    pointer to groups or "everyone".
    """
    if not request.user.has_perm(f"{Notification._meta.app_label}.add_notification"):
        modeladmin.message_user(request, _("You may not send notifications."), messages.ERROR)
        return None
    ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: MAX_PRESELECTED_USERS + 1])
    if len(ids) > MAX_PRESELECTED_USERS:
        modeladmin.message_user(
            request,
            _("Select at most %(max)d users; to reach more, send to a group or to everyone.")
            % {"max": MAX_PRESELECTED_USERS},
            messages.WARNING,
        )
        return None
    url = reverse(f"{modeladmin.admin_site.name}:{SEND_URL_NAME}")
    return HttpResponseRedirect(f"{url}?{urlencode({'users': ','.join(map(str, ids))})}")


def add_user_action(site: admin.AdminSite = admin.site) -> bool:
    """Add :func:`send_notification_to_users` to the User admin registered on ``site``.

    Why this way: the project owns its User admin (often a custom subclass), so
    we neither unregister nor subclass it. We copy the action list onto that
    ModelAdmin *instance* (the class, possibly shared with other sites, is left
    alone). It runs when this module is imported by admin autodiscovery and again
    from ``AppConfig.ready()``, which comes after every ``admin.py`` was imported
    when ``django.contrib.admin`` is listed before this app, so a project that
    re-registers User in its own ``admin.py`` still gets the action. Projects
    that want full control can list ``send_notification_to_users`` in their own
    ``UserAdmin.actions`` instead. Returns whether the action is now present.
    """
    user_admin = _model_admin(site, get_user_model())
    if user_admin is None or user_admin.actions is None:
        return False
    current = list(user_admin.actions)
    if send_notification_to_users not in current and "send_notification_to_users" not in current:
        user_admin.actions = [*current, send_notification_to_users]
    return True


add_user_action()
