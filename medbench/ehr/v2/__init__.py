"""What the synthetic EHR holds for MedAgentBench v2: per-patient charts seated in a grading branch of
each v2 category, their FHIR resources, and the database a v2 run serves."""
