"""The admin UI in Chromium: login, every page without axe-core violations (German and
English), visibility changes, a key shown once, users, and login through OpenID Connect."""

from __future__ import annotations

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from tests.admin.conftest import Site
from tests.tenancy.conftest import PASSWORD

PAGES = ("/admin/t/nord/", "/admin/t/nord/users", "/admin/t/nord/keys",
         "/admin/t/nord/identity", "/admin/t/nord/integrations", "/admin/t/nord/audit",
         "/admin/t/nord/settings")


def _axe_clean(page, what: str) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{what}:\n{results.generate_report()}"


def _login(page, site: Site, email: str = "admin@nord.example") -> None:
    page.goto(f"{site.url}/admin/")
    assert page.url.startswith(f"{site.url}/admin/login")
    page.get_by_label("E-Mail-Adresse").fill(email)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_load_state()


def test_login_page_is_german_and_accessible(page, site):
    page.goto(f"{site.url}/admin/login")
    assert page.get_attribute("html", "lang") == "de"
    assert page.get_by_role("heading", level=1).inner_text() == "Anmeldung zur Verwaltung"
    _axe_clean(page, "login")
    # A wrong password: the message is announced (role=alert) and the page stays clean.
    page.get_by_label("E-Mail-Adresse").fill("admin@nord.example")
    page.get_by_label("Passwort").fill("falsches-passwort")
    page.get_by_role("button", name="Anmelden").click()
    assert "E-Mail-Adresse oder Passwort ist falsch." in page.get_by_role("alert").inner_text()
    _axe_clean(page, "login with error")


def test_every_admin_page_is_accessible(page, site):
    _login(page, site)
    assert page.url == f"{site.url}/admin/t/nord/"
    for path in PAGES:
        page.goto(site.url + path)
        assert page.get_attribute("html", "lang") == "de"
        nav = page.get_by_role("navigation", name="Verwaltung")
        assert nav.is_visible()
        _axe_clean(page, path)
    for path in ("/admin/t/nord/?lang=en", "/admin/t/nord/keys"):
        page.goto(site.url + path)
        assert page.get_attribute("html", "lang") == "en"  # the choice is remembered
        assert page.get_by_role("navigation", name="Administration").is_visible()
        _axe_clean(page, path + " (English)")
    page.goto(f"{site.url}/admin/t/nord/?lang=de")


def test_operator_home_and_new_tenant(page, site):
    _login(page, site, "betrieb@kreis.example")
    assert page.url == f"{site.url}/admin/"
    _axe_clean(page, "home")
    page.get_by_label("Name (Pflichtfeld)", exact=True).fill("Markt Westdorf")
    page.get_by_label("Kurzname").fill("west")
    page.get_by_label("Gehört zum Landkreis").select_option("kreis")
    page.get_by_role("button", name="Anlegen").click()
    assert "Die Kommune ist angelegt." in page.get_by_role("status").inner_text()
    assert page.get_by_role("link", name="Markt Westdorf").is_visible()
    assert httpx.get(f"{site.url}/t/west/v1.1").status_code == 200
    # A bad short name: an error the user can act on, the form keeps its values.
    page.get_by_label("Name (Pflichtfeld)", exact=True).fill("Doppelt")
    page.get_by_label("Kurzname").fill("west")
    page.get_by_role("button", name="Anlegen").click()
    assert "exists already" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Name (Pflichtfeld)", exact=True).input_value() == "Doppelt"
    _axe_clean(page, "home with error")


def test_visibility_change_hides_the_thing(page, site):
    _login(page, site)
    thing = f"{site.url}/v1.1/Things({site.thing_id})"
    assert httpx.get(thing).status_code == 200
    page.goto(f"{site.url}/admin/t/nord/")
    section = page.get_by_role("region", name="Wetterstation Rathaus")
    section.get_by_label("Sichtbarkeit").first.select_option("internal")
    section.get_by_role("button", name="Speichern – Wetterstation Rathaus").click()
    assert "Die Änderung ist gespeichert." in page.get_by_role("status").inner_text()
    assert httpx.get(thing).status_code == 404
    assert httpx.get(thing, headers={"Authorization": f"Bearer {site.key}"}).status_code == 200
    # Share the Datastream with the county, then make the Thing public again.
    stream = page.get_by_role("group", name="Lufttemperatur Rathaus")
    stream.get_by_label("Landkreis Beispiel").check()
    stream.get_by_label("Anwendungsfall im Dashboard").select_option("wetter")
    stream.get_by_role("button", name="Speichern – Lufttemperatur Rathaus").click()
    stream = page.get_by_role("group", name="Lufttemperatur Rathaus")
    assert stream.get_by_label("Landkreis Beispiel").is_checked()
    section = page.get_by_role("region", name="Wetterstation Rathaus")
    section.get_by_label("Sichtbarkeit").first.select_option("public")
    section.get_by_role("button", name="Speichern – Wetterstation Rathaus").click()
    assert httpx.get(thing).status_code == 200
    _axe_clean(page, "data page after saving")
    page.goto(f"{site.url}/admin/t/nord/audit")
    assert "Sichtbarkeit geändert" in page.get_by_role("table").inner_text()


def test_api_key_is_shown_once(page, site):
    _login(page, site)
    page.goto(f"{site.url}/admin/t/nord/keys")
    page.get_by_label("Bezeichnung").fill("Pegelsonde Mühlbach")
    page.get_by_label("Berechtigung").select_option("write")
    page.get_by_role("button", name="Anlegen").click()
    key = page.get_by_label("Der Schlüssel").input_value()
    assert key.startswith("ops_")
    _axe_clean(page, "key created")
    answer = httpx.post(f"{site.url}/v1.1/Datastreams({site.datastream_id})/Observations",
                        json={"result": 21.5}, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 201
    page.goto(f"{site.url}/admin/t/nord/keys")
    assert key not in page.content()
    row = page.get_by_role("row", name="Pegelsonde Mühlbach")
    row.get_by_role("button", name="Sperren – Pegelsonde Mühlbach").click()
    assert "gesperrt" in page.get_by_role("status").inner_text()


def test_users_and_roles(page, site):
    _login(page, site)
    page.goto(f"{site.url}/admin/t/nord/users")
    page.get_by_label("E-Mail-Adresse").fill("bea@nord.example")
    page.get_by_label("Name", exact=True).fill("Bea Beispiel")
    page.get_by_label("Rolle", exact=True).select_option("editor")
    page.get_by_label("Erstes Passwort").fill("Ein-langes-Passwort-1")
    page.get_by_role("button", name="Hinzufügen").click()
    assert "Zugang zu dieser Kommune" in page.get_by_role("status").inner_text()
    row = page.get_by_role("row", name="bea@nord.example")
    assert row.get_by_label("Rolle von bea@nord.example").input_value() == "editor"
    _axe_clean(page, "users")
    # The last admin cannot be removed.
    admin_row = page.get_by_role("row", name="admin@nord.example")
    admin_row.get_by_role("button", name="Zugang entziehen – admin@nord.example").click()
    assert "letzte Administration" in page.get_by_role("alert").inner_text()


@pytest.mark.parametrize("lang", ["de"])
def test_login_through_the_identity_provider(page, site, lang):
    provider = site.provider
    _login(page, site)
    page.goto(f"{site.url}/admin/t/nord/identity")
    page.get_by_label("Name auf der Anmeldeseite").fill("Verwaltungskonto Nordheim")
    page.get_by_label("Kurzname").fill("nordheim")
    page.get_by_label("Aussteller (Issuer-URL)").fill(provider.issuer)
    page.get_by_label("Client-ID").fill(provider.client_id)
    page.get_by_label("Client-Geheimnis").fill(provider.client_secret)
    page.get_by_role("button", name="Einrichten").click()
    assert f"{site.url}/admin/oidc/nordheim/callback" in page.content()
    _axe_clean(page, "identity providers")
    page.get_by_role("button", name="Abmelden").click()
    assert "Sie sind abgemeldet." in page.get_by_role("status").inner_text()
    provider.reset(sub="anna-1", email="admin@nord.example", email_verified=True)
    page.get_by_role("link", name="Anmelden mit Verwaltungskonto Nordheim").click()
    page.wait_for_url(f"{site.url}/admin/t/nord/")
    assert "Angemeldet als admin@nord.example" in page.content()
