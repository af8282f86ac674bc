"""The public Smart-City dashboard: server-rendered pages, their texts, styles and browser code.

`routes()` lists the page routes, the CSV download and the static files for `ortspuls.app`.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route


def routes() -> list[BaseRoute]:
    # Imported here so that `ortspuls.web.i18n` and friends load without the dashboard service.
    from ortspuls.web import downloads, pages
    from ortspuls.web.assets import STATIC_DIR, VersionedStaticFiles

    return [
        Route("/", pages.overview),
        Route("/usecase/{slug}", pages.usecase_detail),
        Route("/map", pages.map_page),
        Route("/map/outline.geojson", pages.town_outline),
        Route("/barrierefreiheit", pages.accessibility),
        Route("/leichte-sprache", pages.easy_read),
        Route("/_fragments/tiles", pages.tile_fragments),
        Route("/api/v1/datastreams/{id:int}/series.csv", downloads.series_csv),
        Mount("/static", VersionedStaticFiles(directory=STATIC_DIR), name="static"),
    ]
