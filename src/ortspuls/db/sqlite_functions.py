"""SQL functions registered on every SQLite connection.

PostgreSQL has PostGIS; on SQLite the spatial functions of the query language are computed with
shapely from the WKB stored in geometry columns.
"""

from __future__ import annotations

import functools

import shapely


@functools.lru_cache(maxsize=256)
def _geom(value: bytes | str | None):
    if value is None:
        return None
    if isinstance(value, str):
        return shapely.from_wkt(value)
    return shapely.from_wkb(value)


def _binary(predicate):
    def call(a, b):
        ga, gb = _geom(a), _geom(b)
        if ga is None or gb is None:
            return None
        return int(bool(predicate(ga, gb)))

    return call


_PREDICATES = {
    "st_equals": lambda a, b: a.equals(b),
    "st_disjoint": lambda a, b: a.disjoint(b),
    "st_touches": lambda a, b: a.touches(b),
    "st_within": lambda a, b: a.within(b),
    "st_overlaps": lambda a, b: a.overlaps(b),
    "st_crosses": lambda a, b: a.crosses(b),
    "st_intersects": lambda a, b: a.intersects(b),
    "st_contains": lambda a, b: a.contains(b),
}


def _relate(a, b, pattern):
    ga, gb = _geom(a), _geom(b)
    if ga is None or gb is None or pattern is None:
        return None
    return int(bool(ga.relate_pattern(gb, pattern)))


def _distance(a, b):
    ga, gb = _geom(a), _geom(b)
    if ga is None or gb is None:
        return None
    return float(ga.distance(gb))


def _length(a):
    ga = _geom(a)
    if ga is None:
        return None
    # As PostGIS ST_Length: the length of the linear parts; points and areas have none.
    parts = getattr(ga, "geoms", [ga])
    return float(sum(p.length for p in parts if p.geom_type in ("LineString", "LinearRing",
                                                                  "MultiLineString")))


def _from_wkt(text):
    if text is None:
        return None
    return shapely.to_wkb(shapely.from_wkt(text))


def _lower(text):
    return text.lower() if isinstance(text, str) else text


def _upper(text):
    return text.upper() if isinstance(text, str) else text


def register(dbapi_connection) -> None:
    """Register the functions on a DBAPI connection (sqlite3 or SQLAlchemy's aiosqlite adapter)."""
    create = dbapi_connection.create_function
    for name, predicate in _PREDICATES.items():
        create(name, 2, _binary(predicate), deterministic=True)
    create("st_relate", 3, _relate, deterministic=True)
    create("st_distance", 2, _distance, deterministic=True)
    create("st_length", 1, _length, deterministic=True)
    create("st_geomfromtext", 1, _from_wkt, deterministic=True)
    # SQLite's lower()/upper() only change ASCII letters; tolower()/toupper() in $filter use
    # these so "Mühlbach" and "MÜHLBACH" match as they do on PostgreSQL.
    create("unicode_lower", 1, _lower, deterministic=True)
    create("unicode_upper", 1, _upper, deterministic=True)
