"""The public Smart-City dashboard's data side: use-case templates, summaries, JSON API, live
events.

- `usecase.py` loads the use-case templates (`usecases/*.toml`) and assigns Datastreams to them;
- `texts.py` reads the German and English catalogues (`catalogues/*.toml`);
- `summaries.py` computes each use case's headline, status, figures, trend and details from the
  latest-value cache and the rollups;
- `service.py` is the Python API the JSON endpoints and the server-rendered pages share;
- `api.py` holds the JSON endpoints under `/api/v1`, `live.py` the Server-Sent Events stream,
  `sta_extension.py` the `$aggregate` SensorThings extension, `openapi.py` the API document.
"""
