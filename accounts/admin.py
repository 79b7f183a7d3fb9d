from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts.models import (
    ApiIdempotencyKey,
    ApiKey,
    Invitation,
    Membership,
    Organization,
    Role,
    TenantModel,
    User,
)


def admin_organizations(user):
    """Organizations whose back office ``user`` may run: those where they are an admin."""
    return Organization.objects.filter(memberships__user=user, memberships__role=Role.ADMIN)


class TenantAdmin(admin.ModelAdmin):
    """Base for every tenant-owned model in Django admin.

    Platform superusers see everything. A staff user who is an organization admin sees and edits
    only their own organizations' rows: querysets, foreign-key choices and actions are scoped
    here, once, so each ModelAdmin only declares columns and filters.
    """

    tenant_path = "organization"  # lookup from the model to its Organization

    def _scoped(self, request) -> bool:
        return not request.user.is_superuser

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not self._scoped(request):
            return queryset
        organizations = admin_organizations(request.user)
        lookup = f"{self.tenant_path}__in" if self.tenant_path else "pk__in"
        return queryset.filter(**{lookup: organizations})

    def get_list_filter(self, request):
        """Related-object filters list only objects in the scoped rows (never other tenants')."""
        filters = super().get_list_filter(request)
        if not self._scoped(request):
            return filters
        return [
            (name, admin.RelatedOnlyFieldListFilter)
            if isinstance(name, str) and "__" not in name and self.opts.get_field(name).is_relation
            else name
            for name in filters
        ]

    def _is_org_admin(self, request) -> bool:
        # Asked for every model on every admin page: look it up once per request.
        if not hasattr(request, "_porfin_is_org_admin"):
            request._porfin_is_org_admin = (
                request.user.is_active
                and request.user.is_staff
                and admin_organizations(request.user).exists()
            )
        return request._porfin_is_org_admin

    def _owns(self, request, obj) -> bool:
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request):
        return (
            super().has_module_permission(request)
            if not self._scoped(request)
            else self._is_org_admin(request)
        )

    def has_view_permission(self, request, obj=None):
        if not self._scoped(request):
            return super().has_view_permission(request, obj)
        return self._is_org_admin(request) and self._owns(request, obj)

    def has_change_permission(self, request, obj=None):
        if not self._scoped(request):
            return super().has_change_permission(request, obj)
        return self._is_org_admin(request) and self._owns(request, obj)

    has_delete_permission = has_change_permission

    def has_add_permission(self, request):
        if not self._scoped(request):
            return super().has_add_permission(request)
        return self._is_org_admin(request)

    def _scope_choices(self, request, related_model, kwargs):
        if not self._scoped(request):
            return kwargs
        organizations = admin_organizations(request.user)
        if related_model is Organization:
            kwargs["queryset"] = organizations
        elif issubclass(related_model, TenantModel):
            kwargs["queryset"] = related_model.objects.filter(organization__in=organizations)
        elif related_model is User:
            kwargs["queryset"] = User.objects.filter(
                memberships__organization__in=organizations
            ).distinct()
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs = self._scope_choices(request, db_field.related_model, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs = self._scope_choices(request, db_field.related_model, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ReadOnlyTenantAdmin(TenantAdmin):
    """For logs and histories: visible, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Organization)
class OrganizationAdmin(TenantAdmin):
    tenant_path = ""
    list_display = ["name", "slug", "plan", "language", "time_zone", "require_mfa", "created_at"]
    list_filter = ["plan", "language", "require_mfa"]
    search_fields = ["name", "slug"]
    readonly_fields = ["code", "created_at"]
    prepopulated_fields = {"slug": ["name"]}

    def has_add_permission(self, request):
        return request.user.is_superuser


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["organization"]


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__email", "user__name", "organization__name"]
    readonly_fields = ["created_at"]


@admin.register(Invitation)
class InvitationAdmin(TenantAdmin):
    list_display = ["email", "organization", "role", "invited_by", "expires_at", "accepted_at"]
    list_filter = ["role", "organization"]
    search_fields = ["email", "organization__name"]
    readonly_fields = ["code", "token", "created_at", "accepted_at", "accepted_by"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """People are platform-wide: only superusers manage them here; org admins use Memberships."""

    ordering = ["email"]
    list_display = ["email", "name", "is_staff", "is_superuser", "is_active", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "name"]
    readonly_fields = ["last_login", "date_joined"]
    inlines = [MembershipInline]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Profile"), {"fields": ["name", "language"]}),
        (_("Permissions"), {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]

    def has_module_permission(self, request):
        return request.user.is_superuser


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyTenantAdmin):
    """Keys are created and revoked in Settings › API keys (the secret is shown only there)."""

    list_display = ["name", "prefix", "organization", "created_by", "last_used_at", "revoked_at"]
    list_filter = ["organization"]
    search_fields = ["name", "prefix"]
    exclude = ["key_hash"]


@admin.register(ApiIdempotencyKey)
class ApiIdempotencyKeyAdmin(ReadOnlyTenantAdmin):
    list_display = ["key", "organization", "completed", "response_status", "created_at"]
    list_filter = ["organization", "completed"]
    search_fields = ["key"]
