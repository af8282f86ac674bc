"""The demo town Musterstadt: a year of coherent, deterministic data from about 40 simulated
LoRaWAN sensors over the eight dashboard use cases, and a live simulator that keeps sending
their uplinks through the real ingest endpoints.

- `town`: the town, its outline and its devices;
- `calendar`, `model`: the deterministic weather and event model driving every sensor;
- `payloads`, `repository/`: payload bytes, the demo's codecs (TTN Device Repository layout);
- `uplinks`: The Things Stack and ChirpStack messages of the simulated devices;
- `seed`: configuration through the ingest path, history in bulk;
- `simulator`: the live uplinks in the server process (`ortspuls serve --demo`);
- `cli`: `ortspuls demo seed` and the preparation of `ortspuls serve --demo`.
"""
