"""Admin forms: the "Send notification" page and the Notification add/change form.

Both validate with the sending API's own rules (``api._validate``), so the admin
can never accept what ``send_notification`` would refuse (an empty title, a
``javascript:`` link, ...) and the rules live in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.admin.sites import AdminSite
from django.contrib.admin.widgets import AutocompleteSelectMultiple, FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from . import api
from .categories import DEFAULT_CATEGORY, get_categories
from .models import Level, Notification, is_id


def category_choices() -> list[tuple[str, str]]:
    """The project's categories as form choices (read per form: settings may change in tests)."""
    return [(slug, str(category.label)) for slug, category in get_categories().items()]


def _add_api_errors(
    form: forms.BaseForm,
    title: Any,
    body: Any,
    level: Any,
    url: Any,
    data: Any,
    category: Any = DEFAULT_CATEGORY,
    group_key: Any = "",
) -> None:
    """Run the API's validation and attach its messages to the matching fields."""
    for check in (
        lambda: api._validate(title, body, level, url, data),
        lambda: api.validate_category(category, group_key),
    ):
        try:
            check()
        except ValidationError as exc:
            _attach(form, exc)


def _attach(form: forms.BaseForm, exc: ValidationError) -> None:
    for field, messages in exc.message_dict.items():
        if field in form.errors:
            continue  # the form field's own check already said what is wrong
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message)


def user_widget(admin_site: AdminSite) -> forms.SelectMultiple:
    """Select2 autocomplete over the User admin when it can serve one, else a plain filter box.

    The autocomplete view needs the User model registered on ``admin_site`` with
    ``search_fields`` (Django's ``UserAdmin`` has them) and the sender to have
    the "view user" permission; projects without a User admin get the dual list box.
    """
    User = get_user_model()
    try:
        user_admin = admin_site.get_model_admin(User)
    except NotRegistered:
        user_admin = None
    if user_admin is not None and user_admin.search_fields:
        return AutocompleteSelectMultiple(Notification._meta.get_field("recipient"), admin_site)
    return FilteredSelectMultiple(_("users"), is_stacked=False)


class IdsField(forms.ModelMultipleChoiceField):
    """``ModelMultipleChoiceField`` that answers "not a valid value" for any posted text.

    A value that is not an id, or one past 64 bits, would reach the database
    (``OverflowError`` on SQLite) or the autocomplete widget's re-render
    (``ValueError``): a 500 instead of the form error a wrong id gets.
    """

    def _check_values(self, value: Any) -> Any:
        for pk in value if isinstance(value, list | tuple) else [value]:
            if not is_id(pk):
                raise ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                )
        return super()._check_values(value)  # type: ignore[misc]

    def bound_data(self, data: Any, initial: Any) -> Any:
        """Re-render only the values that can be ids (the widget looks them up)."""
        data = super().bound_data(data, initial)
        return [pk for pk in data if is_id(pk)] if isinstance(data, list | tuple) else data


class SendNotificationForm(forms.Form):
    """Recipients (users, groups or everyone) and the notification's content."""

    users = IdsField(
        queryset=get_user_model()._default_manager.none(),
        required=False,
        help_text=_("Type to search users (needs the permission to view users)."),
    )
    groups = IdsField(
        queryset=Group.objects.none(),
        required=False,
        widget=FilteredSelectMultiple(_("groups"), is_stacked=False),
        help_text=_("Every active member of these groups is notified."),
    )
    everyone = forms.BooleanField(
        label=_("Everyone"),
        required=False,
        help_text=_("Notify every active user (then leave users and groups empty)."),
    )
    title = forms.CharField(label=_("Title"), max_length=api.TITLE_MAX_LENGTH)
    body = forms.CharField(label=_("Body"), required=False, widget=forms.Textarea(attrs={"rows": 4}))
    level = forms.ChoiceField(label=_("Level"), choices=Level.choices, initial=Level.INFO)
    url = forms.CharField(
        label=_("Link"),
        required=False,
        max_length=2000,
        help_text=_("Optional: a relative link (/orders/7/) or an http(s)/mailto URL."),
    )
    category = forms.ChoiceField(
        label=_("Category"),
        initial=DEFAULT_CATEGORY,
        required=False,
        help_text=_("Each recipient's preferences for the category decide how they hear about it."),
    )
    group_key = forms.CharField(
        label=_("Group"),
        required=False,
        max_length=api.GROUP_KEY_MAX_LENGTH,
        help_text=_("Optional: notifications of one category with the same group show as one entry."),
    )

    def __init__(self, *args: Any, admin_site: AdminSite, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        category = self.fields["category"]
        assert isinstance(category, forms.ChoiceField)
        category.choices = category_choices()
        users = self.fields["users"]
        assert isinstance(users, forms.ModelMultipleChoiceField)
        users.widget = user_widget(admin_site)
        # Setting the queryset after the widget hands the widget its choices.
        users.queryset = get_user_model()._default_manager.all()
        groups = self.fields["groups"]
        assert isinstance(groups, forms.ModelMultipleChoiceField)
        groups.queryset = Group.objects.order_by("name")
        self.user_ids: list[int] = []

    def clean_category(self) -> str:
        """Left empty (an older form, a script posting the form): the default category."""
        return self.cleaned_data.get("category") or DEFAULT_CATEGORY

    def recipient_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("users", "groups", "everyone")]

    def content_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("title", "body", "level", "url", "category", "group_key")]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        users = list(cleaned.get("users") or [])
        groups = list(cleaned.get("groups") or [])
        everyone = cleaned.get("everyone")
        if everyone and (users or groups):
            raise ValidationError(_("Choose either everyone or some users and groups, not both."))
        _add_api_errors(
            self,
            cleaned.get("title", "-"),  # a missing title is already a field error
            cleaned.get("body", ""),
            cleaned.get("level", Level.INFO),
            cleaned.get("url", ""),
            None,
            cleaned.get("category", DEFAULT_CATEGORY),
            cleaned.get("group_key", ""),
        )
        if not (everyone or users or groups):
            if "users" not in self.errors and "groups" not in self.errors:
                raise ValidationError(_("Choose who receives the notification: users, groups or everyone."))
            return cleaned
        self.user_ids = api.resolve_recipients(api.EVERYONE if everyone else [*users, *groups])
        if not self.user_ids:
            raise ValidationError(_("No active user matches these recipients; nobody would be notified."))
        return cleaned

    def save(self, actor: Any = None) -> Sequence[Notification]:
        """Send the notification; return the created rows (one per user)."""
        if self.errors:
            raise ValueError("save() called on an invalid form")
        data = self.cleaned_data
        recipients: api.Recipients = (
            api.EVERYONE if data["everyone"] else get_user_model()._default_manager.filter(pk__in=self.user_ids)
        )
        return api.send_notification(
            recipients,
            data["title"],
            body=data["body"],
            level=data["level"],
            url=data["url"],
            actor=actor,
            category=data["category"],
            group_key=data["group_key"],
        )


class DataField(forms.JSONField):
    """``forms.JSONField`` that answers a form error, never a 500, for any text typed in.

    ``json.loads`` raises ``RecursionError`` on deeply nested input, and a
    parsed value holding a lone surrogate (``"\\ud800"``) cannot be shown again
    in the UTF-8 page that reports the error: both are kept as the typed text.
    """

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError(
                _("Data is nested more than %(max)d levels deep."), params={"max": api.DATA_MAX_DEPTH}
            ) from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            value = super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)
        if not isinstance(value, forms.fields.InvalidJSONInput) and value is not None and api.data_problem(value):
            return forms.fields.InvalidJSONInput(data)
        return value


class NotificationAdminForm(forms.ModelForm):
    """The admin add/change form, held to the sending API's rules."""

    class Meta:
        model = Notification
        fields = ("recipient", "title", "body", "level", "url", "data", "actor", "category", "group_key")
        field_classes = {"data": DataField}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "category" in self.fields:
            self.fields["category"] = forms.ChoiceField(
                label=_("Category"), choices=category_choices(), initial=DEFAULT_CATEGORY, required=False
            )

    def clean_category(self) -> str:
        return self.cleaned_data.get("category") or DEFAULT_CATEGORY

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        values = {
            name: cleaned[name] if name in cleaned else getattr(self.instance, name)
            for name in ("title", "body", "level", "url", "data", "category", "group_key")
        }
        _add_api_errors(self, **values)
        return cleaned
