"""The entity types of SensorThings API 1.1 (Sensing, with the MultiDatastream extension)."""

from __future__ import annotations

from ortspuls.model.types import EntityType, Field, Relation
from ortspuls.model.types import FieldKind as K

_NAME = Field("name", K.STRING, required=True)
_DESCRIPTION = Field("description", K.STRING, required=True)
_PROPERTIES = Field("properties", K.OBJECT)
_ENCODING = Field("encodingType", K.STRING, required=True)

THING = EntityType(
    name="Thing",
    set_name="Things",
    table="things",
    fields=(_NAME, _DESCRIPTION, _PROPERTIES),
    relations=(
        Relation("Locations", "Location", many=True, inverse="Things",
                 link_table="thing_locations", link_columns=("thing_id", "location_id")),
        Relation("HistoricalLocations", "HistoricalLocation", many=True, inverse="Thing",
                 remote_fk="thing_id"),
        Relation("Datastreams", "Datastream", many=True, inverse="Thing", remote_fk="thing_id"),
        Relation("MultiDatastreams", "MultiDatastream", many=True, inverse="Thing",
                 remote_fk="thing_id"),
    ),
)

LOCATION = EntityType(
    name="Location",
    set_name="Locations",
    table="locations",
    fields=(_NAME, _DESCRIPTION, _ENCODING, Field("location", K.GEOMETRY, required=True),
            _PROPERTIES),
    relations=(
        Relation("Things", "Thing", many=True, inverse="Locations",
                 link_table="thing_locations", link_columns=("location_id", "thing_id")),
        Relation("HistoricalLocations", "HistoricalLocation", many=True, inverse="Locations",
                 link_table="historical_location_locations",
                 link_columns=("location_id", "historical_location_id")),
    ),
)

HISTORICAL_LOCATION = EntityType(
    name="HistoricalLocation",
    set_name="HistoricalLocations",
    table="historical_locations",
    fields=(Field("time", K.TIME, required=True),),
    relations=(
        Relation("Thing", "Thing", many=False, inverse="HistoricalLocations", fk="thing_id",
                 required=True, cascade_delete=True),
        Relation("Locations", "Location", many=True, inverse="HistoricalLocations",
                 link_table="historical_location_locations",
                 link_columns=("historical_location_id", "location_id")),
    ),
)

SENSOR = EntityType(
    name="Sensor",
    set_name="Sensors",
    table="sensors",
    fields=(_NAME, _DESCRIPTION, _ENCODING, Field("metadata", K.JSON, required=True), _PROPERTIES),
    relations=(
        Relation("Datastreams", "Datastream", many=True, inverse="Sensor", remote_fk="sensor_id"),
        Relation("MultiDatastreams", "MultiDatastream", many=True, inverse="Sensor",
                 remote_fk="sensor_id"),
    ),
)

OBSERVED_PROPERTY = EntityType(
    name="ObservedProperty",
    set_name="ObservedProperties",
    table="observed_properties",
    fields=(_NAME, Field("definition", K.STRING, required=True), _DESCRIPTION, _PROPERTIES),
    relations=(
        Relation("Datastreams", "Datastream", many=True, inverse="ObservedProperty",
                 remote_fk="observed_property_id"),
        Relation("MultiDatastreams", "MultiDatastream", many=True, inverse="ObservedProperties",
                 link_table="multi_datastream_observed_properties",
                 link_columns=("observed_property_id", "multi_datastream_id")),
    ),
)

DATASTREAM = EntityType(
    name="Datastream",
    set_name="Datastreams",
    table="datastreams",
    fields=(
        _NAME,
        _DESCRIPTION,
        Field("unitOfMeasurement", K.OBJECT, required=True),
        Field("observationType", K.STRING, required=True),
        Field("observedArea", K.GEOMETRY, editable=False),
        Field("phenomenonTime", K.INTERVAL, editable=False),
        Field("resultTime", K.INTERVAL, editable=False),
        _PROPERTIES,
    ),
    relations=(
        Relation("Thing", "Thing", many=False, inverse="Datastreams", fk="thing_id",
                 required=True, cascade_delete=True),
        Relation("Sensor", "Sensor", many=False, inverse="Datastreams", fk="sensor_id",
                 required=True, cascade_delete=True),
        Relation("ObservedProperty", "ObservedProperty", many=False, inverse="Datastreams",
                 fk="observed_property_id", required=True, cascade_delete=True),
        Relation("Observations", "Observation", many=True, inverse="Datastream",
                 remote_fk="datastream_id"),
    ),
)

OBSERVATION = EntityType(
    name="Observation",
    set_name="Observations",
    table="observations",
    fields=(
        Field("phenomenonTime", K.TIME_OR_INTERVAL),
        Field("resultTime", K.TIME),
        Field("result", K.RESULT, required=True),
        Field("resultQuality", K.JSON),
        Field("validTime", K.INTERVAL),
        Field("parameters", K.OBJECT),
    ),
    relations=(
        # An Observation belongs to a Datastream or (MultiDatastream extension) to a
        # MultiDatastream; the writer enforces that exactly one is given.
        Relation("Datastream", "Datastream", many=False, inverse="Observations",
                 fk="datastream_id", cascade_delete=True),
        Relation("MultiDatastream", "MultiDatastream", many=False, inverse="Observations",
                 fk="multi_datastream_id", cascade_delete=True),
        Relation("FeatureOfInterest", "FeatureOfInterest", many=False, inverse="Observations",
                 fk="feature_id", required=True, cascade_delete=True),
    ),
)

MULTI_DATASTREAM = EntityType(
    name="MultiDatastream",
    set_name="MultiDatastreams",
    table="multi_datastreams",
    fields=(
        _NAME,
        _DESCRIPTION,
        Field("unitOfMeasurements", K.ARRAY, required=True),
        Field("observationType", K.STRING, required=True),
        Field("multiObservationDataTypes", K.ARRAY, required=True),
        Field("observedArea", K.GEOMETRY, editable=False),
        Field("phenomenonTime", K.INTERVAL, editable=False),
        Field("resultTime", K.INTERVAL, editable=False),
        _PROPERTIES,
    ),
    relations=(
        Relation("Thing", "Thing", many=False, inverse="MultiDatastreams", fk="thing_id",
                 required=True, cascade_delete=True),
        Relation("Sensor", "Sensor", many=False, inverse="MultiDatastreams", fk="sensor_id",
                 required=True, cascade_delete=True),
        # Ordered: the n-th ObservedProperty describes the n-th component of each result.
        Relation("ObservedProperties", "ObservedProperty", many=True, inverse="MultiDatastreams",
                 link_table="multi_datastream_observed_properties",
                 link_columns=("multi_datastream_id", "observed_property_id")),
        Relation("Observations", "Observation", many=True, inverse="MultiDatastream",
                 remote_fk="multi_datastream_id"),
    ),
)

FEATURE_OF_INTEREST = EntityType(
    name="FeatureOfInterest",
    set_name="FeaturesOfInterest",
    table="features",
    fields=(_NAME, _DESCRIPTION, _ENCODING, Field("feature", K.GEOMETRY, required=True),
            _PROPERTIES),
    relations=(
        Relation("Observations", "Observation", many=True, inverse="FeatureOfInterest",
                 remote_fk="feature_id"),
    ),
)

ENTITY_TYPES: dict[str, EntityType] = {
    e.name: e
    for e in (THING, LOCATION, HISTORICAL_LOCATION, SENSOR, OBSERVED_PROPERTY, DATASTREAM,
              MULTI_DATASTREAM, OBSERVATION, FEATURE_OF_INTEREST)
}
ENTITY_SETS: dict[str, EntityType] = {e.set_name: e for e in ENTITY_TYPES.values()}
# The entity sets of the Sensing core, without extensions (MultiDatastream).
CORE_ENTITY_SETS = tuple(s for s in ENTITY_SETS if s != "MultiDatastreams")
MODEL = ENTITY_TYPES
