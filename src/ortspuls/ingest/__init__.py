"""LoRaWAN and HTTP ingest: network-server adapters (The Things Stack v3, ChirpStack v4),
payload codecs in an embedded JavaScript engine, device registry and automatic provisioning of
SensorThings entities, field mappings, HTTP pollers and the raw uplink log.

Every observation it produces is stored by the observation writer (`timeseries/writer.py`).
"""
