"""The admin UI at /admin: login (password or the municipality's identity provider), tenants,
users and roles, API keys, identity providers, LoRaWAN integrations, visibility and sharing of
Things and Datastreams, use-case assignment, the audit log and tenant settings.

German first (`catalogues/de.toml`), English beside it; built on the public pages' frame and
styles (`ortspuls.web`); every form is protected by the session's CSRF token.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles


def routes() -> list[BaseRoute]:
    """Full paths under /admin (plain routes: a Mount's root_path would enter every link)."""
    from ortspuls.admin import views as v
    from ortspuls.admin.render import STATIC_DIR

    get, post, both = ["GET"], ["POST"], ["GET", "POST"]

    def tenant(path: str, handler, methods, role: str, section: str) -> Route:
        return Route(f"/admin/t/{{tenant}}/{path}",
                     v.tenant_page(role, section, section)(handler), methods=methods)

    return [
        Route("/admin/", v.home, methods=get),
        Route("/admin/login", v.login, methods=both),
        Route("/admin/logout", v.logout, methods=post),
        Route("/admin/oidc/{provider}/start", v.oidc_start, methods=get),
        Route("/admin/oidc/{provider}/callback", v.oidc_callback, methods=get),
        Route("/admin/tenants", v.add_tenant, methods=post),
        tenant("", v.data_get, get, "viewer", "data"),
        tenant("things/{id:int}", v.thing_post, post, "editor", "data"),
        tenant("streams/{kind}/{id:int}", v.stream_post, post, "editor", "data"),
        tenant("users", v.users_get, get, "admin", "users"),
        tenant("users", v.users_post, post, "admin", "users"),
        tenant("users/{id:int}", v.user_post, post, "admin", "users"),
        tenant("keys", v.keys_get, get, "admin", "keys"),
        tenant("keys", v.keys_post, post, "admin", "keys"),
        tenant("keys/{id:int}/revoke", v.key_revoke, post, "admin", "keys"),
        tenant("identity", v.identity_get, get, "admin", "identity"),
        tenant("identity", v.identity_post, post, "admin", "identity"),
        tenant("identity/{id:int}/remove", v.identity_remove, post, "admin", "identity"),
        tenant("integrations", v.integrations_get, get, "admin", "integrations"),
        tenant("integrations", v.integrations_post, post, "admin", "integrations"),
        tenant("integrations/{name}/revoke", v.integration_revoke, post, "admin",
               "integrations"),
        tenant("audit", v.audit_get, get, "admin", "audit"),
        tenant("settings", v.settings_get, get, "admin", "settings"),
        tenant("settings", v.settings_post, post, "admin", "settings"),
        Mount("/admin/static", StaticFiles(directory=STATIC_DIR), name="admin-static"),
    ]
