"""Cassettes: the recorded model and FHIR traffic of one attempt, its file format and the manifest of a
recorded run (`files`), and one vcrpy cassette per attempt in flight (`attempt`). The pytest wiring
(record, replay or live) lives in `medbench.plugin.recording`."""
