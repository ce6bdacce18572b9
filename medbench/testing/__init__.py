"""Test tooling that ships with medbench so scripts and users can attack their own setup: hostile
model replies (`hostile_replies`), hostile HTTP for the FHIR server (`hostile_http`) and a
fault-injecting proxy in front of a model endpoint (`fault_proxy`). Nothing in a benchmark run
imports these."""
